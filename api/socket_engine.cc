#define RINGSOCK_NO_BSD_NAMES
#include "api/socket_engine.hh"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/engine_thread.hh"
#include "api/event.hh"
#include "api/mbuf_copy.hh"
#include "api/received_message.hh"
#include "api/request_segments.hh"
#include "api/runtime.hh"
#include "api/stream_engine.hh"
#include "dataplane/mempool.hh"
#include "stack/lwip_netif.hh"
#include "stack/lwip_udp.hh"
#include "stack/software_rss.hh"
#include "stack/udp_frame.hh"

namespace ringsock::api {

namespace {

Endpoint source_of(const stack::UdpDatagram& d)
{
    Endpoint e;
    e.family = d.family;
    e.port = d.src_port;
    e.addr = d.src;
    return e;
}

// The queue entry for d, composed in registers word by word as the ring
// stores it. Built field by field on the stack instead, the ring's copy
// loaded 16 bytes at a time what narrower stores had just written: a
// store-forwarding stall on every queued datagram (two fifths of
// deliver()'s samples in perf, about 5 % of a run-to-completion receive).
QueuedDatagram queued_entry(const stack::UdpDatagram& d) noexcept
{
    static_assert(std::endian::native == std::endian::little);
    static_assert(sizeof(QueuedDatagram) == 32 && offsetof(QueuedDatagram, payload_offset) == 8 &&
                  offsetof(QueuedDatagram, payload_length) == 10 && offsetof(QueuedDatagram, from) == 12);
    static_assert(offsetof(Endpoint, family) == 0 && offsetof(Endpoint, port) == 2 && offsetof(Endpoint, addr) == 4);
    uint64_t src_low = 0;
    uint64_t src_high = 0;
    std::memcpy(&src_low, d.src.data(), sizeof(src_low));
    std::memcpy(&src_high, d.src.data() + sizeof(src_low), sizeof(src_high));
    const std::array<uint64_t, 4> words{reinterpret_cast<uintptr_t>(d.mbuf),
                                        uint64_t{d.payload_offset} | uint64_t{d.payload_length} << 16 |
                                            uint64_t{d.family} << 32 | uint64_t{d.src_port} << 48,
                                        src_low, src_high};
    return std::bit_cast<QueuedDatagram>(words);
}

// A group's datagrams reach only the sockets that joined it, from a
// source they listed or did not block, as on Windows (RFC 3376's
// per-socket reception state: a socket that joined nothing receives no
// group), not every socket bound to the port as Linux does by default;
// broadcast reaches every socket on the port. The process's own sends
// (`looped`) reach only sockets that keep IP_MULTICAST_LOOP on.
bool receives(const Socket& s, const Endpoint& destination, const stack::UdpDatagram& d, bool looped) noexcept
{
    if (!destination.is_ipv4_multicast() && !destination.is_ipv6_multicast()) return true;
    if (looped && !s.multicast_loop.load(std::memory_order_relaxed)) return false;
    for (const Membership& m : s.member_groups) {
        if (!m.group.same_address(destination)) continue;
        if (m.any_source && m.sources.empty()) return true;
        Endpoint source;
        source.family = d.family;
        source.addr = d.src;
        return m.lists(source) != m.any_source;
    }
    return false;
}

// Every request in the pool plus a control call per thread, rounded up to
// the ring's power of two: a submission never finds the ring full.
uint32_t submission_slots(Runtime& runtime)
{
    return std::bit_ceil(static_cast<uint32_t>(runtime.requests().size() + 4096));
}

Endpoint destination_of(const stack::UdpDatagram& d)
{
    Endpoint e;
    e.family = d.family;
    e.port = d.dst_port;
    e.addr = d.dst;
    return e;
}

} // namespace

SocketEngine::SocketEngine(Runtime& runtime, unsigned index, dataplane::Engine& engine, stack::Classifier& classifier,
                           stack::LwipInterface* lwip)
    : runtime_(runtime), index_(index), engine_(engine), classifier_(classifier), lwip_(lwip),
      submissions_(submission_slots(runtime)), forward_(65536, -1), spread_(65536, 0), present_(65536, 0),
      by_port_(65536, nullptr)
{
    const std::string inbound = "rs_handover_" + std::to_string(index);
    inbound_ = rte_ring_create(inbound.c_str(), 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (inbound_ == nullptr) throw std::runtime_error("cannot create the hand-over ring " + inbound);
    hand_overs_ = std::make_unique<HandOvers[]>(kMaxEngines);
    if (index == 0) streams_ = std::make_unique<StreamEngine>(*this);
    deferred_.reserve(Runtime::kMaxSockets);
    reassembled_.reserve(kMaxReassembled);
    serving_.reserve(Runtime::kMaxSockets);
    pollers_.reserve(kMaxPollers);
}

SocketEngine::~SocketEngine()
{
    for (rte_mbuf* m : reassembled_)
        rte_pktmbuf_free(m);
    void* m = nullptr;
    while (rte_ring_sc_dequeue(inbound_, &m) == 0)
        rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(inbound_);
}

bool SocketEngine::on_own_lcore() const noexcept
{
    return current_engine == static_cast<int>(index_);
}

bool SocketEngine::submit(const Submission& s) noexcept
{
    if (on_own_lcore()) {
        execute(s);
        return true;
    }
    return submissions_.try_push(s);
}

void SocketEngine::on_poll(dataplane::Engine&)
{
    submissions_.consume(32, [this](const Submission& s) { execute(s); });
    take_handed_over();
    if (!reassembled_.empty()) take_reassembled();
    if (lwip_ != nullptr) refresh_neighbours();
    if (!deferred_.empty()) {
        // serve() may defer a socket again: work from a copy, in storage
        // reserved once, so the loop never allocates.
        serving_.assign(deferred_.begin(), deferred_.end());
        deferred_.clear();
        for (Socket* s : serving_)
            serve(*s, true);
    }
    push_staged();
    if (!pollers_.empty()) run_pollers();
    runtime_.flush_returns(index_);
}

void SocketEngine::run_pollers() noexcept
{
    // A poller that returns nonzero leaves; the rest keep their order.
    // Should one end them all meanwhile (end_polls executed in place), the
    // loop notices rather than trusting its index.
    for (std::size_t i = 0; i < pollers_.size();) {
        ControlCall* call = pollers_[i];
        const bool done = call->poll(call->context) != 0;
        if (i >= pollers_.size() || pollers_[i] != call) continue; // ended meanwhile
        if (done) {
            pollers_.erase(pollers_.begin() + static_cast<std::ptrdiff_t>(i));
            answer(*call, 0);
        } else {
            ++i;
        }
    }
    // What the pollers completed in place reaches its ports in this poll.
    push_staged();
}

void SocketEngine::execute_stream(const Submission& s) noexcept
{
    Socket& socket = *s.socket;
    const auto call = [&]() -> ControlCall& { return *static_cast<ControlCall*>(s.arg); }; // control operations
    switch (s.op) {
    case Op::recv:
        streams_->post_recv(*static_cast<Request*>(s.arg));
        break;
    case Op::send:
        streams_->post_send(*static_cast<Request*>(s.arg));
        break;
    case Op::accept:
        streams_->post_accept(*static_cast<Request*>(s.arg));
        break;
    case Op::connect:
        streams_->post_connect(*static_cast<Request*>(s.arg));
        break;
    case Op::attach: {
        const int result = streams_->bind(socket);
        if (result == 0 && std::find(attached_.begin(), attached_.end(), &socket) == attached_.end())
            attached_.push_back(&socket);
        answer(call(), result);
        break;
    }
    case Op::detach:
        streams_->close(socket);
        attached_.erase(std::remove(attached_.begin(), attached_.end(), &socket), attached_.end());
        answer(call(), 0);
        break;
    case Op::cancel:
        streams_->cancel(socket, call().target, call().cancel_error);
        answer(call(), 0);
        break;
    case Op::listen:
        answer(call(), streams_->listen(socket, call().value));
        break;
    case Op::shutdown_send:
        streams_->shutdown_send(socket);
        answer(call(), 0);
        break;
    case Op::stream_options:
        streams_->apply_options(socket);
        answer(call(), 0);
        break;
    case Op::drained:
        call().value = streams_->drained(socket) ? 1 : 0;
        answer(call(), 0);
        break;
    default:
        answer(call(), WSAEOPNOTSUPP);
        break;
    }
}

void SocketEngine::execute(const Submission& s) noexcept
{
    if (streams_ && s.socket != nullptr && s.socket->is_stream() && s.op != Op::notify && s.op != Op::call &&
        s.op != Op::drop_sender && s.op != Op::join && s.op != Op::leave && s.op != Op::filter_group) {
        execute_stream(s);
        return;
    }
    switch (s.op) {
    case Op::recv:
        post_recv(*static_cast<Request*>(s.arg));
        break;
    case Op::send:
        post_send(*static_cast<Request*>(s.arg));
        break;
    case Op::notify:
        runtime_.notify_only(*static_cast<Request*>(s.arg), index_);
        break;
    case Op::attach:
        attach(*s.socket);
        answer(*static_cast<ControlCall*>(s.arg), 0);
        break;
    case Op::detach:
        detach(*s.socket);
        answer(*static_cast<ControlCall*>(s.arg), 0);
        break;
    case Op::cancel:
        cancel(*s.socket, *static_cast<ControlCall*>(s.arg));
        break;
    case Op::join:
    case Op::leave: {
        auto& call = *static_cast<ControlCall*>(s.arg);
        bool ok = false;
        if (lwip_ != nullptr && call.group.family == 4) {
            stack::Ipv4Address group{};
            std::copy_n(call.group.addr.begin(), 4, group.begin());
            ok = s.op == Op::join ? lwip_->join_ipv4_group(group) : lwip_->leave_ipv4_group(group);
        } else if (lwip_ != nullptr) {
            ok = s.op == Op::join ? lwip_->join_ipv6_group(call.group.addr) : lwip_->leave_ipv6_group(call.group.addr);
        }
        answer(call, ok ? 0 : (s.op == Op::join ? WSAENOBUFS : WSAEADDRNOTAVAIL));
        break;
    }
    case Op::filter_group: {
        auto& call = *static_cast<ControlCall*>(s.arg);
        auto& groups = s.socket->member_groups;
        const auto* membership = static_cast<const Membership*>(call.context);
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const Membership& m) { return m.group.same_address(membership->group); });
        if (call.value == 0) {
            if (it != groups.end()) groups.erase(it);
        } else if (it != groups.end()) {
            *it = *membership;
        } else {
            groups.push_back(*membership);
        }
        answer(call, 0);
        break;
    }
    case Op::placement: {
        auto& call = *static_cast<ControlCall*>(s.arg);
        forward_[call.port] = call.home == static_cast<int>(index_) ? int16_t{-1} : call.home;
        spread_[call.port] = call.engines;
        present_[call.port] = call.present;
        // The port is the socket layer's here while any engine has a socket
        // on it: this engine's classifier must pass its datagrams on.
        if (call.home >= 0)
            classifier_.bind_udp_port(call.port);
        else if (by_port_[call.port] == nullptr)
            classifier_.unbind_udp_port(call.port);
        answer(call, 0);
        break;
    }
    case Op::call: {
        auto& call = *static_cast<ControlCall*>(s.arg);
        call.function(call.context);
        answer(call, 0);
        break;
    }
    case Op::poll: {
        auto& call = *static_cast<ControlCall*>(s.arg);
        if (pollers_.size() == kMaxPollers)
            answer(call, WSAENOBUFS);
        else
            pollers_.push_back(&call);
        break;
    }
    case Op::end_polls:
        for (ControlCall* poller : pollers_)
            answer(*poller, WSAEINTR);
        pollers_.clear();
        answer(*static_cast<ControlCall*>(s.arg), 0);
        break;
    case Op::drop_sender:
        delete static_cast<stack::LwipUdpSender*>(s.socket->lwip_pcb);
        s.socket->lwip_pcb = nullptr;
        answer(*static_cast<ControlCall*>(s.arg), 0);
        break;
    case Op::listen:
    case Op::accept:
    case Op::connect:
    case Op::shutdown_send:
    case Op::stream_options:
    case Op::drained:
        // Stream operations reach the lwIP engine only (the provider sends
        // them there); anywhere else they are refused, never lost.
        if (s.op == Op::accept || s.op == Op::connect)
            finish(*static_cast<Request*>(s.arg), WSAEOPNOTSUPP, 0, 0);
        else
            answer(*static_cast<ControlCall*>(s.arg), WSAEOPNOTSUPP);
        break;
    }
}

void SocketEngine::answer(ControlCall& call, int result) noexcept
{
    call.result = result;
    call.done.store(true, std::memory_order_release);
    runtime_.hub().notify();
}

void SocketEngine::attach(Socket& s) noexcept
{
    if (s.in_table) return;
    Socket*& head = by_port_[s.local.port];
    s.next_on_port = head;
    head = &s;
    s.in_table = true;
    attached_.push_back(&s);
    classifier_.bind_udp_port(s.local.port);
}

void SocketEngine::detach(Socket& s) noexcept
{
    if (s.in_table) {
        for (Socket** link = &by_port_[s.local.port]; *link != nullptr; link = &(*link)->next_on_port) {
            if (*link == &s) {
                *link = s.next_on_port;
                break;
            }
        }
        s.next_on_port = nullptr;
        s.in_table = false;
        if (by_port_[s.local.port] == nullptr && forward_[s.local.port] < 0) classifier_.unbind_udp_port(s.local.port);
        attached_.erase(std::remove(attached_.begin(), attached_.end(), &s), attached_.end());
    }
    deferred_.erase(std::remove(deferred_.begin(), deferred_.end(), &s), deferred_.end());
    // Every pending receive completes once, aborted, in posting order.
    while (Request* r = s.fifo_head) {
        s.fifo_head = r->next;
        finish(*r, WSA_OPERATION_ABORTED, 0, 0);
    }
    s.fifo_tail = nullptr;
    QueuedDatagram q[32];
    while (uint32_t n = s.queue().dequeue_burst_mc(q, 32)) {
        for (uint32_t i = 0; i < n; ++i) {
            s.dequeued_bytes.fetch_add(q[i].payload_length, std::memory_order_relaxed);
            rte_pktmbuf_free(q[i].mbuf);
        }
    }
}

void SocketEngine::abort_everything() noexcept
{
    for (ControlCall* call : pollers_)
        answer(*call, WSAENETDOWN);
    pollers_.clear();
    while (!attached_.empty()) {
        Socket& s = *attached_.back();
        if (s.is_stream() && streams_) {
            streams_->close(s);
            attached_.pop_back();
        } else {
            detach(s);
        }
    }
    while (submissions_.consume(32, [this](const Submission& s) {
        if (s.op == Op::notify)
            runtime_.notify_only(*static_cast<Request*>(s.arg), index_);
        else if (s.op == Op::recv || s.op == Op::send || s.op == Op::accept || s.op == Op::connect)
            finish(*static_cast<Request*>(s.arg), WSA_OPERATION_ABORTED, 0, 0);
        else
            answer(*static_cast<ControlCall*>(s.arg), WSAENETDOWN);
    }) != 0) {}
    push_staged();
    runtime_.flush_returns(index_);
}

void SocketEngine::finish(Request& r, DWORD error, DWORD bytes, DWORD flags) noexcept
{
    std::atomic<uint32_t>& outstanding = r.socket->outstanding_for(r.kind == RequestKind::send);
    counters_.completions.add(1);
    if (r.notify == Notify::port) {
        // Written straight into the staging slot (nobody reads it before
        // commit_staged()): a Completion built on the stack across the
        // calls below was copied in with 16-byte loads over its 8-byte
        // stores, a store-forwarding stall that was half of finish()'s
        // samples on the send path.
        stage(r.port, completion_of(r.overlapped, r.key, bytes, error, flags), outstanding);
        Event* event = r.event; // the request goes back to the pool below
        runtime_.write_result(r, error, bytes, flags, index_);
        if (event != nullptr) event->set(runtime_.hub());
        commit_staged();
        return;
    }
    runtime_.complete(r, error, bytes, flags, index_);
    outstanding.fetch_sub(1, std::memory_order_acq_rel);
}

void SocketEngine::stage(CompletionPort* port, const Completion& c, std::atomic<uint32_t>& outstanding) noexcept
{
    staged_ports_[staged_count_] = port;
    staged_[staged_count_] = c;
    staged_outstanding_[staged_count_] = &outstanding;
}

void SocketEngine::commit_staged() noexcept
{
    if (++staged_count_ == kStagedCompletions) push_staged();
}

namespace {

// Calls f(first, count) for each run of equal values in values[0, n).
template <typename T, typename F>
void for_each_run(const T* values, uint32_t n, F&& f) noexcept
{
    for (uint32_t i = 0; i < n;) {
        uint32_t end = i + 1;
        while (end < n && values[end] == values[i])
            ++end;
        f(i, end - i);
        i = end;
    }
}

} // namespace

void SocketEngine::push_staged() noexcept
{
    const uint32_t n = staged_count_;
    for_each_run(staged_ports_.data(), n, [&](uint32_t first, uint32_t count) {
        staged_ports_[first]->push_burst(index_, &staged_[first], count);
    });
    // One locked instruction per socket's run of completions, not one each:
    // a receiving socket's are consecutive.
    for_each_run(staged_outstanding_.data(), n, [&](uint32_t first, uint32_t count) {
        staged_outstanding_[first]->fetch_sub(count, std::memory_order_acq_rel);
    });
    staged_count_ = 0;
}

DWORD SocketEngine::copy_datagram(Request& r, rte_mbuf* m, uint32_t offset, uint32_t length, const Endpoint& from,
                                  DWORD& bytes) noexcept
{
    const uint32_t copied = copy_payload(m, offset, length, r.buffers, r.buffer_count);
    bytes = copied;
    if (r.from != nullptr && r.fromlen != nullptr) endpoint_to_sockaddr(r.socket->family, from, r.from, r.fromlen);
    if (r.message != nullptr) [[unlikely]]
        write_message_extras(runtime_, *r.socket, *r.message, *m, static_cast<uint16_t>(offset), from.family,
                             copied < length);
    // UDP is unreliable and has no MSG_PARTIAL: the rest is lost.
    return copied < length ? WSAEMSGSIZE : 0;
}

void SocketEngine::post_recv(Request& r) noexcept
{
    Socket& s = *r.socket;
    if (!s.open.load(std::memory_order_acquire) ||
        s.generation.load(std::memory_order_acquire) != r.socket_generation || !s.in_table) {
        finish(r, WSA_OPERATION_ABORTED, 0, 0);
        return;
    }
    r.next = nullptr;
    if (s.fifo_tail != nullptr)
        s.fifo_tail->next = &r;
    else
        s.fifo_head = &r;
    s.fifo_tail = &r;
    serve(s, r.no_wait);
}

void SocketEngine::serve(Socket& s, bool answer_no_waits) noexcept
{
    while (Request* r = s.fifo_head) {
        // The Dekker pair with the immediate path (see Socket): our side
        // published `outstanding` when the request was posted.
        if (s.app_consumers.load(std::memory_order_seq_cst) != 0) {
            if (std::find(deferred_.begin(), deferred_.end(), &s) == deferred_.end()) deferred_.push_back(&s);
            return;
        }
        if (s.queue().empty()) {
            if (!r->no_wait) {
                if (answer_no_waits) refuse_no_waits_behind(s, *r);
                return;
            }
            s.fifo_head = r->next;
            if (s.fifo_head == nullptr) s.fifo_tail = nullptr;
            finish(*r, WSAEWOULDBLOCK, 0, 0);
            continue;
        }
        s.fifo_head = r->next;
        if (s.fifo_head == nullptr) s.fifo_tail = nullptr;
        QueuedDatagram q;
        DWORD bytes = 0;
        DWORD error = 0;
        if (r->peek) {
            s.queue().peek(q);
            error = copy_datagram(*r, q.mbuf, q.payload_offset, q.payload_length, q.from, bytes);
        } else {
            s.queue().dequeue_burst_mc(&q, 1); // the immediate path dequeues with _mc too
            s.dequeued_bytes.fetch_add(q.payload_length, std::memory_order_relaxed);
            error = copy_datagram(*r, q.mbuf, q.payload_offset, q.payload_length, q.from, bytes);
            rte_pktmbuf_free(q.mbuf);
        }
        counters_.delivered.add(1);
        finish(*r, error, bytes, 0);
    }
}

void SocketEngine::refuse_no_waits_behind(Socket& s, Request& waiting) noexcept
{
    // A non-blocking receive behind one that waits: the next datagram is
    // the waiting one's, and a non-blocking call does not wait for the one
    // after it. Walked only when such a receive was just posted, or a
    // deferred socket is served again (it may hold one).
    Request* before = &waiting;
    while (Request* r = before->next) {
        if (!r->no_wait) {
            before = r;
            continue;
        }
        before->next = r->next;
        if (s.fifo_tail == r) s.fifo_tail = before;
        finish(*r, WSAEWOULDBLOCK, 0, 0);
    }
}

Socket* SocketEngine::lookup(const stack::UdpDatagram& d) noexcept
{
    // The address bound, then the family's wildcard, then (IPv4) an IPv6
    // dual-stack socket's.
    Socket* wildcard = nullptr;
    Socket* dual_wildcard = nullptr;
    for (Socket* s = by_port_[d.dst_port]; s != nullptr; s = s->next_on_port) {
        if (s->local.family != d.family) {
            if (dual_wildcard == nullptr && s->carries(d.family)) dual_wildcard = s;
            continue;
        }
        if (address_halves_differ(s->local.addr, d.dst) == 0) return s;
        if (wildcard == nullptr && s->local.is_any()) wildcard = s;
    }
    return wildcard != nullptr ? wildcard : dual_wildcard;
}

void SocketEngine::deliver(Socket& s, const stack::UdpDatagram& d) noexcept
{
    const Endpoint from = source_of(d);
    if (s.connected.load(std::memory_order_acquire) && !(s.peer == from)) {
        counters_.filtered.add(1);
        rte_pktmbuf_free(d.mbuf);
        return;
    }
    if (s.shut_for_receive()) {
        counters_.no_socket.add(1);
        rte_pktmbuf_free(d.mbuf);
        return;
    }
    Request* r = s.fifo_head;
    if (r != nullptr && !r->peek && s.queue().empty() && s.app_consumers.load(std::memory_order_seq_cst) == 0) {
        // A receive is waiting: straight into its buffers.
        s.fifo_head = r->next;
        if (s.fifo_head == nullptr) s.fifo_tail = nullptr;
        DWORD bytes = 0;
        const DWORD error = copy_datagram(*r, d.mbuf, d.payload_offset, d.payload_length, from, bytes);
        rte_pktmbuf_free(d.mbuf);
        counters_.delivered.add(1);
        finish(*r, error, bytes, 0);
        return;
    }
    if (pool_short() && holds_its_share(s)) [[unlikely]] {
        s.rcv_drops.fetch_add(1, std::memory_order_relaxed);
        counters_.pool_short_drops.add(1);
        rte_pktmbuf_free(d.mbuf);
        return;
    }
    const int64_t limit = s.rcvbuf.load(std::memory_order_relaxed);
    const int64_t enqueued = s.enqueued_bytes.load(std::memory_order_relaxed); // this engine's own count
    if (enqueued - s.dequeued_seen + d.payload_length > limit)
        s.dequeued_seen = s.dequeued_bytes.load(std::memory_order_relaxed);
    const QueuedDatagram q = queued_entry(d);
    const bool fits = enqueued - s.dequeued_seen + d.payload_length <= limit;
    // Counted before it is visible, so FIONREAD never sees it taken first.
    if (fits) s.enqueued_bytes.store(enqueued + d.payload_length, std::memory_order_relaxed);
    if (!fits || s.queue().enqueue_burst(&q, 1) != 1) {
        if (fits) s.enqueued_bytes.store(enqueued, std::memory_order_relaxed);
        // Never block the engine: count it where the application can see it.
        s.rcv_drops.fetch_add(1, std::memory_order_relaxed);
        counters_.rcvbuf_drops.add(1);
        rte_pktmbuf_free(d.mbuf);
        return;
    }
    counters_.queued.add(1);
    if (s.fifo_head != nullptr) serve(s);
}

bool SocketEngine::pool_short() noexcept
{
    if (!pool_checked_) {
        pool_checked_ = true;
        pool_was_short_ = rx_pool_ != nullptr && dataplane::free_in_ring(*rx_pool_) < pool_floor_;
    }
    return pool_was_short_;
}

bool SocketEngine::holds_its_share(Socket& s) noexcept
{
    if (s.over_share_in_burst == burst_serial_) return true;
    if (s.queue().size() < kQueuedWhilePoolShort) return false;
    s.over_share_in_burst = burst_serial_;
    return true;
}

void SocketEngine::miss(const stack::UdpDatagram& d) noexcept
{
    // RSS (or a one-queue port) brought it to the wrong engine: hand it to
    // the engine whose sockets own the port.
    const int16_t home = forward_[d.dst_port];
    if (home >= 0 && static_cast<unsigned>(home) != index_) {
        stage_hand_over(static_cast<unsigned>(home), d.mbuf);
        return;
    }
    drop_unrouted(d);
}

bool SocketEngine::fan_out(const stack::UdpDatagram& d) noexcept
{
    uint64_t others = present_[d.dst_port] & ~(uint64_t{1} << index_);
    bool any = false;
    while (others != 0) {
        const unsigned e = static_cast<unsigned>(__builtin_ctzll(others));
        others &= others - 1;
        // A clone: its own metadata (each engine classifies it again), the
        // same data, freed by whoever frees last.
        rte_mbuf* copy = rte_pktmbuf_clone(d.mbuf, runtime_.tx_pool(index_));
        if (copy == nullptr) {
            counters_.fanout_no_mbuf.add(1);
            continue;
        }
        counters_.fanned_out.add(1);
        stage_hand_over(e, copy);
        any = true;
    }
    return any;
}

void SocketEngine::drop_unrouted(const stack::UdpDatagram& d) noexcept
{
    counters_.no_socket.add(1);
    rte_pktmbuf_free(d.mbuf);
}

void SocketEngine::hand_over(rte_mbuf* const* frames, uint32_t n, SocketEngineCounters& from) noexcept
{
    const unsigned taken = rte_ring_mp_enqueue_burst(inbound_, reinterpret_cast<void* const*>(frames), n, nullptr);
    if (taken != 0) from.handed_over.add(taken);
    if (taken < n) [[unlikely]] {
        from.handover_full.add(n - taken);
        for (uint32_t i = taken; i < n; ++i)
            rte_pktmbuf_free(frames[i]);
    }
}

void SocketEngine::stage_hand_over(unsigned engine, rte_mbuf* m) noexcept
{
    HandOvers& waiting = hand_overs_[engine];
    waiting.frames[waiting.count++] = m;
    hand_overs_waiting_ |= uint64_t{1} << engine;
    if (waiting.count == kHandOverBurst) [[unlikely]] {
        runtime_.engine(engine).hand_over(waiting.frames.data(), waiting.count, counters_);
        waiting.count = 0;
        hand_overs_waiting_ &= ~(uint64_t{1} << engine);
    }
}

void SocketEngine::flush_hand_overs() noexcept
{
    for (uint64_t engines = hand_overs_waiting_; engines != 0; engines &= engines - 1) {
        const auto engine = static_cast<unsigned>(std::countr_zero(engines));
        HandOvers& waiting = hand_overs_[engine];
        runtime_.engine(engine).hand_over(waiting.frames.data(), waiting.count, counters_);
        waiting.count = 0;
    }
    hand_overs_waiting_ = 0;
}

void SocketEngine::take_handed_over() noexcept
{
    rte_mbuf* frames[32];
    const unsigned n = rte_ring_sc_dequeue_burst(inbound_, reinterpret_cast<void**>(frames), 32, nullptr);
    if (n == 0) return;
    stack::UdpDatagram udp[32];
    rte_mbuf* other[32];
    const stack::ClassifiedBurst got =
        classifier_.classify(frames, static_cast<uint16_t>(n), udp, other, stack::Classifier::Arrival::vetted);
    if (got.udp != 0) route(udp, got.udp, false);
    for (uint16_t i = 0; i < got.lwip; ++i) {
        // Unbound here too since it was handed over (closed meanwhile).
        counters_.no_socket.add(1);
        rte_pktmbuf_free(other[i]);
    }
}

bool SocketEngine::wants_udp_port(uint16_t port) const noexcept
{
    return classifier_.udp_port_bound(port);
}

void SocketEngine::on_reassembled(rte_mbuf* frame) noexcept
{
    if (reassembled_.size() == kMaxReassembled) {
        counters_.reassembled_full.add(1);
        rte_pktmbuf_free(frame);
        return;
    }
    reassembled_.push_back(frame);
}

void SocketEngine::take_reassembled() noexcept
{
    stack::UdpDatagram udp[kMaxReassembled];
    rte_mbuf* other[kMaxReassembled];
    const auto n = static_cast<uint16_t>(reassembled_.size());
    const stack::ClassifiedBurst got =
        classifier_.classify(reassembled_.data(), n, udp, other, stack::Classifier::Arrival::vetted);
    reassembled_.clear();
    counters_.reassembled.add(got.udp);
    if (got.udp != 0) route(udp, got.udp, true);
    for (uint16_t i = 0; i < got.lwip; ++i) {
        counters_.no_socket.add(1); // unbound meanwhile: lwIP already had its turn
        rte_pktmbuf_free(other[i]);
    }
}

int SocketEngine::flow_owner(const stack::UdpDatagram& d) const noexcept
{
    // The engines that hold a socket on the port share its flows as a
    // NIC's redirection table shares them among queues: with a socket on
    // every engine, the very engine a queue per engine would have given.
    const uint64_t engines = spread_[d.dst_port];
    unsigned k = stack::SoftwareRss::pick(rss_->hash(d), static_cast<unsigned>(__builtin_popcountll(engines)));
    uint64_t rest = engines;
    while (k-- != 0)
        rest &= rest - 1;
    return __builtin_ctzll(rest);
}

void SocketEngine::on_udp(stack::UdpDatagram* d, uint16_t n)
{
    route(d, n, true);
}

void SocketEngine::route(stack::UdpDatagram* d, uint16_t n, bool first_sight) noexcept
{
    pool_checked_ = false;
    ++burst_serial_;
    for (uint16_t i = 0; i < n; ++i) {
        if (d[i].dst_multicast != 0) {
            const bool copied = first_sight && fan_out(d[i]);
            // Every socket bound to the port (wildcard or the group itself)
            // that receives it gets its own reference to the one mbuf.
            const Endpoint group = destination_of(d[i]);
            const bool looped = runtime_.is_own_address(d[i].family, d[i].src);
            Socket* targets[16];
            unsigned count = 0;
            // A dual-stack socket on :: takes IPv4's groups and broadcasts.
            for (Socket* s = by_port_[d[i].dst_port]; s != nullptr && count < 16; s = s->next_on_port)
                if ((s->local.family == d[i].family ? s->local.is_any() || s->local.same_address(group)
                                                    : s->carries(d[i].family)) &&
                    receives(*s, group, d[i], looped))
                    targets[count++] = s;
            if (count == 0) {
                if (copied)
                    rte_pktmbuf_free(d[i].mbuf); // the other engines have theirs
                else if (first_sight)
                    miss(d[i]);
                else
                    drop_unrouted(d[i]);
                continue;
            }
            if (count > 1) rte_pktmbuf_refcnt_update(d[i].mbuf, static_cast<int16_t>(count - 1));
            for (unsigned k = 0; k < count; ++k)
                deliver(*targets[k], d[i]);
            continue;
        }
        if (first_sight && rss_ != nullptr && spread_[d[i].dst_port] != 0) [[unlikely]] {
            const int owner = flow_owner(d[i]);
            if (static_cast<unsigned>(owner) != index_) {
                counters_.rss_spread.add(1);
                stage_hand_over(static_cast<unsigned>(owner), d[i].mbuf);
                continue;
            }
        }
        Socket* s = lookup(d[i]);
        if (s == nullptr) {
            // Handed-over datagrams stop here: forwarding them again could
            // send them back and forth between two engines.
            if (first_sight)
                miss(d[i]);
            else
                drop_unrouted(d[i]);
            continue;
        }
        deliver(*s, d[i]);
    }
    if (hand_overs_waiting_ != 0) flush_hand_overs();
}

void SocketEngine::cancel(Socket& s, ControlCall& call) noexcept
{
    Request* prev = nullptr;
    for (Request* r = s.fifo_head; r != nullptr; prev = r, r = r->next) {
        if (r->overlapped != call.target) continue;
        if (prev != nullptr)
            prev->next = r->next;
        else
            s.fifo_head = r->next;
        if (s.fifo_tail == r) s.fifo_tail = prev;
        finish(*r, call.cancel_error, 0, 0);
        break;
    }
    // Not found: it completed already; the caller reads its status.
    answer(call, 0);
}

namespace {

// How long a neighbour's MAC is used after lwIP last confirmed it; lwIP's
// own entries live 300 s (ARP_MAXAGE), refreshed once a second below.
constexpr uint64_t kNeighbourLifetimeSeconds = 30;

stack::Ipv4Address ipv4_of(const Endpoint& e)
{
    return {e.addr[0], e.addr[1], e.addr[2], e.addr[3]};
}

} // namespace

void SocketEngine::learn_next_hop(const Endpoint& dest) noexcept
{
    const uint64_t expires = rte_get_tsc_cycles() + kNeighbourLifetimeSeconds * rte_get_tsc_hz();
    stack::MacAddress mac;
    if (dest.family == 6) {
        // lwIP has just sent to it: a stale neighbour is being confirmed.
        if (Runtime::ipv6_fast_destination(dest) &&
            lwip_->ipv6_neighbour(dest.addr, mac) != stack::LwipInterface::Ipv6Neighbour::none)
            runtime_.ipv6_neighbours().store(dest.addr, mac, expires);
        return;
    }
    stack::Ipv4Address hop;
    if (!runtime_.next_hop(dest, hop) || !lwip_->arp_entry(hop, mac)) return;
    runtime_.ipv4_neighbours().store(hop, mac, expires);
}

void SocketEngine::refresh_neighbours() noexcept
{
    // A once-a-second job: the clock is read every 1024th poll, not on
    // every one (it showed in the engine's profile).
    if ((++polls_since_refresh_check_ & 1023u) != 0) return;
    const uint64_t now = rte_get_tsc_cycles();
    if (now < next_neighbour_refresh_) return;
    next_neighbour_refresh_ = now + rte_get_tsc_hz();
    const uint64_t expires = now + kNeighbourLifetimeSeconds * rte_get_tsc_hz();
    stack::Ipv4NeighbourCache& ipv4 = runtime_.ipv4_neighbours();
    ipv4.for_each([&](const stack::Ipv4Address& ip, uint64_t until) {
        stack::MacAddress mac;
        if (lwip_->arp_entry(ip, mac))
            ipv4.store(ip, mac, expires); // also picks up a changed MAC
        else if (until > now)
            lwip_->arp_query(ip); // lwIP aged it out: ask again while ours still serves
        else
            ipv4.forget(ip);
    });
    // lwIP confirms an IPv6 neighbour only when it sends to it itself
    // (RFC 4861 7.3: a stale entry is probed when used), and the fast
    // path's datagrams bypass it. So only a reachable one is extended; an
    // unconfirmed one keeps its time (its MAC updated), and when it runs
    // out the next datagram goes through lwIP, which probes, and is
    // learned again after it.
    stack::Ipv6NeighbourCache& ipv6 = runtime_.ipv6_neighbours();
    ipv6.for_each([&](const stack::Ipv6Address& destination, uint64_t until) {
        stack::MacAddress mac;
        const auto known = lwip_->ipv6_neighbour(destination, mac);
        if (until <= now)
            ipv6.forget(destination);
        else if (known != stack::LwipInterface::Ipv6Neighbour::none)
            ipv6.store(destination, mac, known == stack::LwipInterface::Ipv6Neighbour::reachable ? expires : until);
    });
}

void SocketEngine::post_send_fast(Request& r) noexcept
{
    Socket& s = *r.socket;
    const bool offload_udp = runtime_.offloads_udp_checksum();
    const SegmentsOf<stack::ConstSegment> seg(r);
    rte_mbuf* m = nullptr;
    if (r.to.family == 6) {
        stack::Udp6Frame frame;
        frame.src_mac = runtime_.interface().mac;
        frame.dst_mac = r.next_hop;
        runtime_.ipv6_source(s, r.to, frame.src); // checked when the send took the fast path
        frame.dst = r.to.addr;
        frame.src_port = s.local.port;
        frame.dst_port = r.to.port;
        frame.hop_limit = s.unicast_ttl.load(std::memory_order_relaxed);
        frame.traffic_class = r.traffic_class;
        frame.offload_udp_checksum = offload_udp;
        m = stack::build_udp6_frame(runtime_.tx_pool(index_), frame, seg.data(), r.buffer_count, r.total_length);
    } else {
        stack::Udp4Frame frame;
        frame.src_mac = runtime_.interface().mac;
        frame.dst_mac = r.next_hop;
        frame.src = s.local.is_any() ? runtime_.interface().ipv4.address : ipv4_of(s.local);
        frame.dst = ipv4_of(r.to);
        frame.src_port = s.local.port;
        frame.dst_port = r.to.port;
        frame.ip_id = next_ip_id_++;
        frame.ttl = s.unicast_ttl.load(std::memory_order_relaxed);
        frame.type_of_service = r.traffic_class;
        frame.offload_ipv4_checksum = runtime_.offloads_ipv4_checksum();
        frame.offload_udp_checksum = offload_udp;
        m = stack::build_udp4_frame(runtime_.tx_pool(index_), frame, seg.data(), r.buffer_count, r.total_length);
    }
    if (m == nullptr) {
        counters_.send_failures.add(1);
        finish(r, WSAENOBUFS, 0, 0);
        return;
    }
    // Handed to the port: a full TX ring drops it as the wire would, which
    // the engine counts (tx_drops); the send itself succeeded.
    engine_.send(runtime_.interface().port, m);
    counters_.sent_fast.add(1);
    finish(r, 0, static_cast<DWORD>(r.total_length), 0);
}

void SocketEngine::post_send(Request& r) noexcept
{
    Socket& s = *r.socket;
    if (!s.open.load(std::memory_order_acquire) ||
        s.generation.load(std::memory_order_acquire) != r.socket_generation) {
        finish(r, WSA_OPERATION_ABORTED, 0, 0);
        return;
    }
    if (r.fast) {
        post_send_fast(r);
        return;
    }
    auto* sender = static_cast<stack::LwipUdpSender*>(s.lwip_pcb);
    if (sender == nullptr) {
        // A dual-stack socket on :: sends either family from one pcb.
        const uint8_t family = s.carries(4) && s.carries(6) ? stack::LwipUdpSender::kEitherFamily : s.local.family;
        sender = new (std::nothrow) stack::LwipUdpSender(family, s.local.addr, s.local.port);
        s.lwip_pcb = sender;
    }
    if (sender == nullptr || !sender->ok()) {
        counters_.send_failures.add(1);
        finish(r, WSAENOBUFS, 0, 0);
        return;
    }
    const SegmentsOf<stack::ConstSegment> seg(r);
    const stack::UdpSendResult result = sender->send(r.to.family, r.to.addr, r.to.port, seg.data(), r.buffer_count,
                                                     r.total_length, s.unicast_ttl.load(std::memory_order_relaxed),
                                                     s.multicast_ttl.load(std::memory_order_relaxed), r.traffic_class);
    switch (result) {
    case stack::UdpSendResult::sent:
        counters_.sent.add(1);
        finish(r, 0, static_cast<DWORD>(r.total_length), 0);
        learn_next_hop(r.to);
        return;
    case stack::UdpSendResult::too_big:
        finish(r, WSAEMSGSIZE, 0, 0);
        break;
    case stack::UdpSendResult::no_route:
        finish(r, WSAENETUNREACH, 0, 0);
        break;
    case stack::UdpSendResult::no_memory:
        finish(r, WSAENOBUFS, 0, 0);
        break;
    case stack::UdpSendResult::invalid:
        finish(r, WSAEINVAL, 0, 0);
        break;
    }
    counters_.send_failures.add(1);
}

} // namespace ringsock::api
