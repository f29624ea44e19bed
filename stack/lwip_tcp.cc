#include "stack/lwip_tcp.hh"

#include <algorithm>
#include <cstring>
#include <new>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

namespace ringsock::stack {

namespace {

ip_addr_t to_lwip(const TcpEndpoint& e)
{
    ip_addr_t a{};
    if (e.family == TcpEndpoint::kEitherFamily) {
        IP_SET_TYPE_VAL(a, IPADDR_TYPE_ANY); // all zero: lwIP's IP_ANY_TYPE
    } else if (e.family == 6) {
        IP_SET_TYPE_VAL(a, IPADDR_TYPE_V6);
        std::memcpy(ip_2_ip6(&a)->addr, e.addr.data(), 16);
        ip6_addr_clear_zone(ip_2_ip6(&a));
    } else {
        IP_SET_TYPE_VAL(a, IPADDR_TYPE_V4);
        std::memcpy(&ip_2_ip4(&a)->addr, e.addr.data(), 4);
    }
    return a;
}

TcpEndpoint from_lwip(const ip_addr_t& a, uint16_t port)
{
    TcpEndpoint e;
    e.port = port;
    if (IP_IS_V6_VAL(a)) {
        e.family = 6;
        std::memcpy(e.addr.data(), ip_2_ip6(&a)->addr, 16);
    } else {
        e.family = 4;
        std::memcpy(e.addr.data(), &ip_2_ip4(&a)->addr, 4);
    }
    return e;
}

} // namespace

std::unique_ptr<TcpConnection> TcpConnection::create(uint8_t family)
{
    tcp_pcb* pcb = tcp_new_ip_type(family == TcpEndpoint::kEitherFamily ? IPADDR_TYPE_ANY
                                   : family == 6                        ? IPADDR_TYPE_V6
                                                                        : IPADDR_TYPE_V4);
    if (pcb == nullptr) return nullptr;
    try {
        return std::unique_ptr<TcpConnection>(new TcpConnection(pcb));
    } catch (const std::bad_alloc&) {
        tcp_abort(pcb); // never opened: frees it quietly
        return nullptr;
    }
}

TcpConnection::TcpConnection(tcp_pcb* pcb) : pcb_(pcb)
{
    attach_callbacks();
}

TcpConnection::~TcpConnection()
{
    abort();
}

void TcpConnection::attach_callbacks() noexcept
{
    tcp_arg(pcb_, this);
    tcp_recv(pcb_, on_recv);
    tcp_sent(pcb_, on_sent);
    tcp_err(pcb_, on_error);
}

void TcpConnection::detach_callbacks(tcp_pcb* pcb) noexcept
{
    // lwIP's defaults then: received data is dropped and the window
    // reopened, a FIN answered with a close.
    tcp_arg(pcb, nullptr);
    tcp_recv(pcb, nullptr);
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
}

bool TcpConnection::bind(const TcpEndpoint& local) noexcept
{
    if (pcb_ == nullptr) return false;
    const ip_addr_t a = to_lwip(local);
    return tcp_bind(pcb_, &a, local.port) == ERR_OK;
}

bool TcpConnection::connect(const TcpEndpoint& remote) noexcept
{
    if (pcb_ == nullptr) return false;
    const ip_addr_t a = to_lwip(remote);
    return tcp_connect(pcb_, &a, remote.port, on_connected_cb) == ERR_OK;
}

TcpEndpoint TcpConnection::local() const noexcept
{
    return pcb_ != nullptr ? from_lwip(pcb_->local_ip, pcb_->local_port) : TcpEndpoint{};
}

TcpEndpoint TcpConnection::remote() const noexcept
{
    return pcb_ != nullptr ? from_lwip(pcb_->remote_ip, pcb_->remote_port) : TcpEndpoint{};
}

uint64_t TcpConnection::copy_to(const MutableSegment* dest, std::size_t count, uint64_t dest_offset,
                                uint64_t max) const noexcept
{
    return received_.copy_to(dest, count, dest_offset, max);
}

void TcpConnection::consume(uint64_t n) noexcept
{
    uint64_t window = received_.consume(n);
    while (pcb_ != nullptr && window != 0) {
        const auto step = static_cast<u16_t>(std::min<uint64_t>(window, 0xffff));
        tcp_recved(pcb_, step);
        window -= step;
    }
}

uint32_t TcpConnection::send_space() const noexcept
{
    if (pcb_ == nullptr || tcp_sndqueuelen(pcb_) >= TCP_SND_QUEUELEN - 4) return 0;
    return tcp_sndbuf(pcb_);
}

bool TcpConnection::write(const void* data, uint16_t length, bool more) noexcept
{
    if (pcb_ == nullptr) return false;
    const u8_t flags = TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0);
    if (tcp_write(pcb_, data, length, flags) != ERR_OK) return false;
    written_ += length;
    return true;
}

void TcpConnection::push() noexcept
{
    if (pcb_ != nullptr) tcp_output(pcb_);
}

bool TcpConnection::send_pending() const noexcept
{
    return pcb_ != nullptr && (pcb_->unsent != nullptr || pcb_->unacked != nullptr);
}

bool TcpConnection::shutdown_send() noexcept
{
    if (pcb_ == nullptr) return true;
    return tcp_shutdown(pcb_, 0, 1) == ERR_OK;
}

void TcpConnection::set_ttl(uint8_t ttl) noexcept
{
    if (pcb_ != nullptr) pcb_->ttl = ttl;
}

void TcpConnection::set_nodelay(bool on) noexcept
{
    if (pcb_ == nullptr) return;
    if (on)
        tcp_nagle_disable(pcb_);
    else
        tcp_nagle_enable(pcb_);
}

void TcpConnection::set_keepalive(bool on, uint32_t idle_ms, uint32_t interval_ms, uint32_t probes) noexcept
{
    if (pcb_ == nullptr) return;
    keepalive_ = on;
    pcb_->keep_idle = idle_ms;
    pcb_->keep_intvl = interval_ms;
    pcb_->keep_cnt = probes;
    if (on)
        ip_set_option(pcb_, SOF_KEEPALIVE);
    else
        ip_reset_option(pcb_, SOF_KEEPALIVE);
}

void TcpConnection::close() noexcept
{
    if (pcb_ == nullptr) return;
    tcp_pcb* pcb = pcb_;
    pcb_ = nullptr;
    detach_callbacks(pcb);
    // Unread bytes: lwIP resets rather than pretend they were read.
    if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

void TcpConnection::abort() noexcept
{
    if (pcb_ == nullptr) return;
    tcp_pcb* pcb = pcb_;
    pcb_ = nullptr;
    detach_callbacks(pcb);
    tcp_abort(pcb);
}

err_t TcpConnection::on_recv(void* arg, tcp_pcb*, pbuf* p, err_t)
{
    auto* c = static_cast<TcpConnection*>(arg);
    if (p == nullptr) {
        c->fin_ = true;
    } else {
        // No memory: lwIP keeps the segment as refused data and offers it
        // again (dropping the data segments that arrive meanwhile).
        if (!c->received_.push(p)) {
            if (c->events_ != nullptr) c->events_->on_refused(*c);
            return ERR_MEM;
        }
    }
    if (c->events_ != nullptr) c->events_->on_readable(*c);
    return ERR_OK;
}

err_t TcpConnection::on_sent(void* arg, tcp_pcb*, u16_t len)
{
    auto* c = static_cast<TcpConnection*>(arg);
    c->acknowledged_ += len;
    if (c->events_ != nullptr) c->events_->on_writable(*c);
    return ERR_OK;
}

err_t TcpConnection::on_connected_cb(void* arg, tcp_pcb*, err_t err)
{
    auto* c = static_cast<TcpConnection*>(arg);
    if (err == ERR_OK && c->events_ != nullptr) c->events_->on_connected(*c);
    return ERR_OK;
}

void TcpConnection::on_error(void* arg, err_t err)
{
    auto* c = static_cast<TcpConnection*>(arg);
    if (c == nullptr) return;
    c->pcb_ = nullptr; // lwIP freed it
    if (c->events_ == nullptr) return;
    // ERR_CLSD: both sides sent FIN and the last ACK came; lwIP freed the
    // pcb of a connection that ended well (what it holds stays readable).
    const bool idle = c->written_ == c->acknowledged_;
    const TcpFailure why = err == ERR_RST          ? TcpFailure::reset
                           : err == ERR_CLSD       ? TcpFailure::closed
                           : c->keepalive_ && idle ? TcpFailure::keepalive_lost
                                                   : TcpFailure::aborted;
    c->events_->on_failed(*c, why);
}

std::unique_ptr<TcpListener> TcpListener::listen(TcpConnection& bound, uint8_t backlog, Events& events)
{
    if (bound.pcb_ == nullptr) return nullptr;
    err_t err = ERR_OK;
    tcp_pcb* listening = tcp_listen_with_backlog_and_err(bound.pcb_, backlog, &err);
    if (listening == nullptr) return nullptr;
    bound.pcb_ = nullptr; // lwIP freed the bound pcb for the smaller listening one
    return std::unique_ptr<TcpListener>(new TcpListener(listening, events));
}

TcpListener::TcpListener(tcp_pcb* pcb, Events& events) : pcb_(pcb), events_(events)
{
    tcp_arg(pcb_, this);
    tcp_accept(pcb_, on_accept);
}

void TcpListener::set_ttl(uint8_t ttl) noexcept
{
    pcb_->ttl = ttl;
}

TcpListener::~TcpListener()
{
    tcp_arg(pcb_, nullptr);
    tcp_accept(pcb_, nullptr);
    tcp_close(pcb_); // a listener's close cannot fail
}

void TcpListener::accepted(TcpConnection& c) noexcept
{
    if (c.pcb_ != nullptr) tcp_backlog_accepted(c.pcb_);
}

err_t TcpListener::on_accept(void* arg, tcp_pcb* pcb, err_t err)
{
    auto* l = static_cast<TcpListener*>(arg);
    if (err != ERR_OK || pcb == nullptr || l == nullptr) return ERR_VAL;
    // No memory for it: refused with a reset (lwIP is told it is gone)
    // rather than an exception out of lwIP's C callback.
    std::unique_ptr<TcpConnection> c;
    try {
        c.reset(new TcpConnection(pcb));
    } catch (const std::bad_alloc&) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    // Counted against the backlog until the application takes it.
    tcp_backlog_delayed(pcb);
    // Refused: the connection was destroyed, which reset it.
    return l->events_.on_incoming(*l, std::move(c)) ? ERR_OK : ERR_ABRT;
}

} // namespace ringsock::stack
