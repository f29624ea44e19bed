// The raw-API echo server: one listening pcb, and per connection a queue of
// the pbufs received and not yet written back; and the netif-level
// impairment (loss, reordering) used where the kernel has no netem. This translation unit
// includes lwIP only (no DPDK ethdev or IP headers, whose IPv6 structs
// clash with lwIP's).
#include "tests/support/lwip_tcp_echo.hh"

#include <algorithm>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <utility>

extern "C" {
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
}

namespace ringsock::testing {
namespace {

struct Connection {
    LwipTcpEchoServer::State* server = nullptr;
    tcp_pcb* pcb = nullptr;
    // Single pbufs (chains are split on arrival: a chain's tot_len is 16
    // bits, and a full receive window is far more than 64 KiB).
    std::deque<pbuf*> queue;
    size_t head_offset = 0; // bytes of queue.front() already written back
    size_t queued = 0;      // bytes in queue not yet written back
    bool peer_closed = false;
};

} // namespace

struct LwipTcpEchoServer::State {
    tcp_pcb* listener = nullptr;
    Counters counters;
    std::unordered_map<tcp_pcb*, std::unique_ptr<Connection>> connections;
    size_t queued = 0;

    static err_t on_accept(void* arg, tcp_pcb* pcb, err_t err);
    static err_t on_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err);
    static err_t on_sent(void* arg, tcp_pcb* pcb, u16_t len);
    static err_t on_poll(void* arg, tcp_pcb* pcb);
    static void on_err(void* arg, err_t err);

    // Writes back as much of the queue as lwIP's send buffer takes, opens
    // the receive window by that much, and closes once the peer has closed
    // and everything is written. ERR_ABRT when the pcb was aborted.
    err_t pump(Connection& c);
    // Frees the connection's queued pbufs and forgets it; its pcb is
    // already freed or closed by the caller.
    void forget(Connection& c);
};

err_t LwipTcpEchoServer::State::on_accept(void* arg, tcp_pcb* pcb, err_t err)
{
    auto* self = static_cast<State*>(arg);
    if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
    auto c = std::make_unique<Connection>();
    c->server = self;
    c->pcb = pcb;
    // Echo latency matters more than segment count here: Nagle plus the
    // peer's delayed ACK would hold back the tail of each burst.
    tcp_nagle_disable(pcb);
    tcp_arg(pcb, c.get());
    tcp_recv(pcb, &State::on_recv);
    tcp_sent(pcb, &State::on_sent);
    tcp_err(pcb, &State::on_err);
    // A safety net: resumes a pump that stopped on ERR_MEM with nothing in
    // flight to bring a sent callback (every 2 coarse ticks, 1 s).
    tcp_poll(pcb, &State::on_poll, 2);
    self->connections.emplace(pcb, std::move(c));
    ++self->counters.accepted;
    return ERR_OK;
}

err_t LwipTcpEchoServer::State::on_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err)
{
    auto* c = static_cast<Connection*>(arg);
    if (c == nullptr) { // a connection we have closed: nothing more is wanted
        if (p != nullptr) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    State* self = c->server;
    if (p == nullptr) {
        c->peer_closed = true;
        ++self->counters.closes;
        return self->pump(*c);
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return ERR_OK;
    }
    // Take each pbuf of the chain on its own: the reference a pbuf's
    // predecessor held passes to the queue.
    for (pbuf* q = p; q != nullptr;) {
        pbuf* next = q->next;
        q->next = nullptr;
        q->tot_len = q->len;
        if (q->len == 0) {
            pbuf_free(q);
        } else {
            c->queue.push_back(q);
            c->queued += q->len;
            self->queued += q->len;
        }
        q = next;
    }
    return self->pump(*c);
}

err_t LwipTcpEchoServer::State::on_sent(void* arg, tcp_pcb*, u16_t)
{
    auto* c = static_cast<Connection*>(arg);
    if (c == nullptr) return ERR_OK;
    return c->server->pump(*c);
}

err_t LwipTcpEchoServer::State::on_poll(void* arg, tcp_pcb*)
{
    auto* c = static_cast<Connection*>(arg);
    if (c == nullptr) return ERR_OK;
    return c->server->pump(*c);
}

void LwipTcpEchoServer::State::on_err(void* arg, err_t err)
{
    // lwIP has freed the pcb already: only our side is left to drop.
    auto* c = static_cast<Connection*>(arg);
    if (c == nullptr) return;
    State* self = c->server;
    if (err == ERR_RST)
        ++self->counters.resets;
    else
        ++self->counters.other_errors;
    c->pcb = nullptr;
    self->forget(*c);
}

err_t LwipTcpEchoServer::State::pump(Connection& c)
{
    tcp_pcb* pcb = c.pcb;
    size_t written = 0;
    while (!c.queue.empty()) {
        pbuf* head = c.queue.front();
        const size_t left = head->len - c.head_offset;
        const size_t room = tcp_sndbuf(pcb);
        if (room == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN) {
            ++counters.write_stalls;
            break;
        }
        const auto n = static_cast<u16_t>(std::min({left, room, size_t{0xFFFF}}));
        const u8_t more = c.queue.size() > 1 || n < left ? TCP_WRITE_FLAG_MORE : 0;
        const err_t rc =
            tcp_write(pcb, static_cast<const uint8_t*>(head->payload) + c.head_offset, n, TCP_WRITE_FLAG_COPY | more);
        if (rc == ERR_MEM) {
            ++counters.write_stalls;
            break; // resumed from the sent (or poll) callback
        }
        if (rc != ERR_OK) {
            tcp_abort(pcb); // calls on_err, which forgets the connection
            return ERR_ABRT;
        }
        written += n;
        c.head_offset += n;
        if (c.head_offset == head->len) {
            c.queue.pop_front();
            c.head_offset = 0;
            pbuf_free(head);
        }
    }
    c.queued -= written;
    queued -= written;
    counters.bytes_echoed += written;
    // Only what went back opens the window: the peer's sending is paced by
    // its own reading of the echo.
    for (size_t w = written; w > 0;) {
        const auto n = static_cast<u16_t>(std::min(w, size_t{0xFFFF}));
        tcp_recved(pcb, n);
        w -= n;
    }
    if (written > 0) tcp_output(pcb);
    if (c.peer_closed && c.queue.empty()) {
        tcp_arg(pcb, nullptr);
        tcp_err(pcb, nullptr);
        tcp_poll(pcb, nullptr, 0);
        tcp_sent(pcb, nullptr);
        if (tcp_close(pcb) != ERR_OK) {
            // Out of memory for the FIN: nothing more will ever be sent
            // here, so a reset is the honest ending.
            tcp_abort(pcb);
            forget(c);
            return ERR_ABRT;
        }
        forget(c);
    }
    return ERR_OK;
}

void LwipTcpEchoServer::State::forget(Connection& c)
{
    for (pbuf* p : c.queue)
        pbuf_free(p);
    queued -= c.queued;
    c.queue.clear();
    c.queued = 0;
    // The map key is the pcb the connection was accepted with; c.pcb is
    // cleared when lwIP has freed it, so look it up by identity.
    for (auto it = connections.begin(); it != connections.end(); ++it)
        if (it->second.get() == &c) {
            connections.erase(it); // destroys c
            return;
        }
}

LwipTcpEchoServer::LwipTcpEchoServer(uint16_t port) : state_(std::make_unique<State>())
{
    tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (pcb == nullptr) throw std::runtime_error("lwIP: no TCP pcb for the echo listener");
    if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
        tcp_close(pcb);
        throw std::runtime_error("lwIP: cannot bind the echo listener to port " + std::to_string(port));
    }
    tcp_pcb* listener = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
    if (listener == nullptr) {
        tcp_close(pcb);
        throw std::runtime_error("lwIP: cannot listen on port " + std::to_string(port));
    }
    state_->listener = listener;
    tcp_arg(listener, state_.get());
    tcp_accept(listener, &State::on_accept);
}

LwipTcpEchoServer::~LwipTcpEchoServer()
{
    while (!state_->connections.empty()) {
        Connection& c = *state_->connections.begin()->second;
        tcp_pcb* pcb = c.pcb;
        // Detached first: tcp_abort calls the err callback, which would
        // count this as the peer's doing.
        tcp_arg(pcb, nullptr);
        tcp_err(pcb, nullptr);
        tcp_abort(pcb);
        state_->forget(c);
    }
    if (state_->listener != nullptr) tcp_close(state_->listener);
}

const LwipTcpEchoServer::Counters& LwipTcpEchoServer::counters() const noexcept
{
    return state_->counters;
}

size_t LwipTcpEchoServer::open_connections() const noexcept
{
    return state_->connections.size();
}

size_t LwipTcpEchoServer::bytes_queued() const noexcept
{
    return state_->queued;
}

std::string lwip_tcp_counters()
{
    const stats_proto& s = lwip_stats.tcp;
    return "tcp: xmit " + std::to_string(s.xmit) + " recv " + std::to_string(s.recv) + " drop " +
           std::to_string(s.drop) + " chkerr " + std::to_string(s.chkerr) + " lenerr " + std::to_string(s.lenerr) +
           " memerr " + std::to_string(s.memerr) + " proterr " + std::to_string(s.proterr) + " err " +
           std::to_string(s.err) + "; pcbs " + std::to_string(lwip_tcp_pcbs_in_use()) + " segs " +
           std::to_string(lwip_stats.memp[MEMP_TCP_SEG]->used) + " pbufs " +
           std::to_string(lwip_stats.memp[MEMP_PBUF_POOL]->used) + " heap " + std::to_string(lwip_stats.mem.used);
}

uint64_t lwip_tcp_checksum_errors()
{
    return lwip_stats.tcp.chkerr;
}

unsigned lwip_tcp_pcbs_in_use()
{
    return lwip_stats.memp[MEMP_TCP_PCB]->used + lwip_stats.memp[MEMP_TCP_PCB_LISTEN]->used;
}

} // namespace ringsock::testing

namespace ringsock::testing {

struct LwipImpairment::State {
    netif* nif = nullptr;
    netif_input_fn input = nullptr;
    netif_linkoutput_fn linkoutput = nullptr;
    unsigned loss = 0;
    unsigned reorder = 0;
    std::minstd_rand random;
    pbuf* rx_held = nullptr; // owned: lwIP's input passed it to us
    pbuf* tx_held = nullptr; // our copy: lwIP keeps the original for retransmission
    Counters counters;

    bool roll(unsigned per_mille) { return random() % 1000 < per_mille; }
    void release_rx()
    {
        if (rx_held == nullptr) return;
        pbuf* p = std::exchange(rx_held, nullptr);
        if (input(p, nif) != ERR_OK) pbuf_free(p);
    }
    void release_tx()
    {
        if (tx_held == nullptr) return;
        pbuf* p = std::exchange(tx_held, nullptr);
        linkoutput(nif, p);
        pbuf_free(p);
    }
};

namespace {

// The one impairment in force; netif callbacks carry no argument of ours.
LwipImpairment::State* impairment = nullptr;

bool is_ipv4_tcp(const pbuf* p)
{
    return p->tot_len >= 34 && pbuf_get_at(p, 12) == 0x08 && pbuf_get_at(p, 13) == 0x00 && pbuf_get_at(p, 23) == 6;
}

err_t impaired_input(pbuf* p, netif* nif)
{
    LwipImpairment::State& s = *impairment;
    if (is_ipv4_tcp(p)) {
        if (s.roll(s.loss)) {
            ++s.counters.rx_dropped;
            pbuf_free(p);
            return ERR_OK;
        }
        if (s.rx_held == nullptr && s.roll(s.reorder)) {
            ++s.counters.rx_reordered;
            s.rx_held = p;
            return ERR_OK;
        }
    }
    const err_t rc = s.input(p, nif);
    s.release_rx();
    return rc;
}

err_t impaired_output(netif* nif, pbuf* p)
{
    LwipImpairment::State& s = *impairment;
    if (is_ipv4_tcp(p)) {
        if (s.roll(s.loss)) {
            ++s.counters.tx_dropped;
            return ERR_OK; // as a lossy link does: lwIP learns of it from the peer
        }
        if (s.tx_held == nullptr && s.roll(s.reorder)) {
            s.tx_held = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
            if (s.tx_held != nullptr) {
                ++s.counters.tx_reordered;
                return ERR_OK;
            }
        }
    }
    const err_t rc = s.linkoutput(nif, p);
    s.release_tx();
    return rc;
}

} // namespace

LwipImpairment::LwipImpairment(netif* nif, unsigned loss_per_mille, unsigned reorder_per_mille, uint32_t seed)
    : state_(std::make_unique<State>())
{
    if (impairment != nullptr) throw std::runtime_error("one LwipImpairment at a time");
    state_->nif = nif;
    state_->input = nif->input;
    state_->linkoutput = nif->linkoutput;
    state_->loss = loss_per_mille;
    state_->reorder = reorder_per_mille;
    state_->random.seed(seed);
    impairment = state_.get();
    nif->input = impaired_input;
    nif->linkoutput = impaired_output;
}

LwipImpairment::~LwipImpairment()
{
    state_->nif->input = state_->input;
    state_->nif->linkoutput = state_->linkoutput;
    state_->release_rx();
    state_->release_tx();
    impairment = nullptr;
}

const LwipImpairment::Counters& LwipImpairment::counters() const noexcept
{
    return state_->counters;
}

} // namespace ringsock::testing
