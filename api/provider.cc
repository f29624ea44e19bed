// The service provider: every WSP* call, reporting errors through lpErrno
// as the WSPRecvFrom page describes. The WSA* facade (facade.cc) calls these
// and moves *lpErrno into the thread's last error.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <optional>

#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/engine_thread.hh"
#include "api/event.hh"
#include "api/mbuf_copy.hh"
#include "api/process_state.hh"
#include "api/provider_common.hh"
#include "api/received_message.hh"
#include "api/runtime.hh"
#include "api/socket_hooks.hh"
#include "api/wait_objects.hh"
#include "dataplane/application_thread.hh"
#include "ringsock/mstcpip.h"
#include "ringsock/mswsock.h"
#include "ringsock/ringsock.h"
#include "ringsock/ws2spi.h"
#include "ringsock/ws2tcpip.h"

namespace ringsock::api {

int fail(LPINT lpErrno, int error) noexcept
{
    if (lpErrno != nullptr) *lpErrno = error;
    return SOCKET_ERROR;
}

int succeed(LPINT lpErrno) noexcept
{
    if (lpErrno != nullptr) *lpErrno = 0;
    return 0;
}

// The socket behind `handle`, or the error to report.
Socket* lookup(SOCKET handle, int& error) noexcept
{
    if (!started()) {
        error = WSANOTINITIALISED;
        return nullptr;
    }
    Runtime* rt = runtime();
    Socket* s = rt != nullptr ? rt->find(handle) : nullptr;
    if (s == nullptr) error = WSAENOTSOCK;
    return s;
}

namespace {

bool is_our_address(const Runtime& rt, const Endpoint& e) noexcept
{
    if (e.is_any() || e.is_ipv4_multicast() || e.is_ipv6_multicast()) return true;
    // Any fe80::/10 stands for the link-local address lwIP derives from
    // the MAC.
    return e.is_ipv6_link_local() || rt.is_own_address(e.family, e.addr);
}

} // namespace

int endpoint_for_socket(const Socket& s, const sockaddr* name, int namelen, Endpoint& out) noexcept
{
    if (const int error = endpoint_from_sockaddr(name, namelen, s.family, out); error != 0) return error;
    if (!out.is_ipv4_mapped()) return 0;
    if (!s.dual_stack) return WSAEAFNOSUPPORT;
    out = unmapped(out);
    return 0;
}

int bind_locked(Runtime& rt, Socket& s, Endpoint local, const Endpoint* peer) noexcept
{
    if (!is_our_address(rt, local)) return WSAEADDRNOTAVAIL;
    s.ephemeral_bind = local.port == 0;
    if (local.port == 0) {
        s.local = local;
        local.port = rt.ephemeral_port(s, peer);
        if (local.port == 0) return WSAEADDRINUSE;
    }
    if (!rt.may_bind(s, local)) return WSAEADDRINUSE;
    if (!s.is_stream() && !s.size_queue_for(s.rcvbuf.load(std::memory_order_relaxed))) return WSAENOBUFS;
    s.local = local;
    rt.note_bound(s);
    s.bound.store(true, std::memory_order_release);
    ControlCall call;
    if (s.is_stream()) s.home_engine = 0; // lwIP's engine runs TCP
    if (const int error = rt.control(s.home_engine, Op::attach, &s, call); error != 0) {
        rt.forget_bound(s);
        s.bound.store(false, std::memory_order_release);
        return error;
    }
    if (!s.is_stream()) rt.update_placement(s.local.port);
    return 0;
}

int ensure_bound(Runtime& rt, Socket& s, const Endpoint* peer) noexcept
{
    if (s.bound.load(std::memory_order_acquire)) return 0;
    if (rt.on_an_engine()) return WSAEWOULDBLOCK; // see Runtime::on_an_engine
    std::lock_guard lock(rt.control_mutex());
    if (s.bound.load(std::memory_order_acquire)) return 0;
    Endpoint any;
    any.family = s.family;
    return bind_locked(rt, s, any, peer);
}

// The WSABUF array a receive or send names: present, at least one buffer,
// and no buffer of non-zero length without memory (WSAEFAULT otherwise).
bool buffers_valid(const WSABUF* buffers, DWORD count) noexcept
{
    if (buffers == nullptr || count == 0) return false;
    for (DWORD i = 0; i < count; ++i)
        if (buffers[i].buf == nullptr && buffers[i].len != 0) return false;
    return true;
}

namespace {

// Checks common to every receive; 0 or the error.
int check_recv(Socket& s, LPWSABUF buffers, DWORD count, LPDWORD flags, bool overlapped, bool from_call, sockaddr* from,
               LPINT fromlen) noexcept
{
    if (!buffers_valid(buffers, count) || flags == nullptr) return WSAEFAULT;
    if ((*flags & MSG_OOB) != 0) return WSAEOPNOTSUPP; // datagram sockets have no OOB data
    if ((*flags & ~(MSG_PEEK | MSG_PARTIAL)) != 0) return WSAEOPNOTSUPP;
    if (overlapped && (*flags & MSG_PEEK) != 0) return WSAEOPNOTSUPP; // "valid only for nonoverlapped sockets"
    if (overlapped && !s.overlapped_capable) return WSAEINVAL;
    if (!s.bound.load(std::memory_order_acquire)) return WSAEINVAL;
    if (s.shut_for_receive()) return WSAESHUTDOWN;
    if (from_call && s.connected.load(std::memory_order_acquire)) return WSAEISCONN;
    if (from != nullptr && (fromlen == nullptr || *fromlen < sockaddr_size(s.family))) return WSAEFAULT;
    return 0;
}

// Copies one datagram into `buffers` in array order with no holes.
DWORD fill(const WSABUF* buffers, DWORD count, const QueuedDatagram& q, DWORD& bytes) noexcept
{
    const uint32_t copied = copy_payload(q.mbuf, q.payload_offset, q.payload_length, buffers, count);
    bytes = copied;
    return copied < q.payload_length ? WSAEMSGSIZE : 0;
}

// An application thread inside a socket's queue. With `outstanding` it
// forms a Dekker pair with the engine (which serves no posted receive from
// the queue while one is inside), and with `open` one with closesocket
// (which keeps the port association until none is). may_take(): nothing
// outstanding and the socket still open, so the queue is the visitor's.
// A visit on the socket's own engine (run to completion) is not counted:
// the engine cannot serve meanwhile, and closesocket's detach runs on that
// engine, so it is over before close goes on. The first such visit claims
// the queue for the engine (Socket::engine_consumes); application threads
// may not take from it after that, and once none is inside, the engine
// takes alone().
class QueueVisit {
public:
    explicit QueueVisit(Socket& s) noexcept : s_(s), on_home_engine_(current_engine == static_cast<int>(s.home_engine))
    {
        if (!on_home_engine_)
            s_.app_consumers.fetch_add(1, std::memory_order_seq_cst);
        else if (!s_.engine_takes_alone) [[unlikely]]
            claim_for_engine();
    }
    ~QueueVisit()
    {
        if (!on_home_engine_) s_.app_consumers.fetch_sub(1, std::memory_order_seq_cst);
    }
    QueueVisit(const QueueVisit&) = delete;
    QueueVisit& operator=(const QueueVisit&) = delete;
    bool may_take() const noexcept
    {
        return s_.outstanding.load(std::memory_order_seq_cst) == 0 && s_.open.load(std::memory_order_seq_cst) &&
               (on_home_engine_ || !s_.engine_consumes.load(std::memory_order_seq_cst));
    }
    // The visitor is the queue's only consumer.
    bool alone() const noexcept { return on_home_engine_ && s_.engine_takes_alone; }

private:
    // The engine's side of the Dekker pair with the visitors' count: a
    // visitor that came in after app_consumers read zero here sees the
    // flag and leaves the queue alone. Until it reads zero, the engine
    // takes with the multi-consumer path as before.
    void claim_for_engine() noexcept
    {
        if (!s_.engine_consumes.load(std::memory_order_relaxed))
            s_.engine_consumes.store(true, std::memory_order_seq_cst);
        if (s_.app_consumers.load(std::memory_order_seq_cst) == 0) s_.engine_takes_alone = true;
    }

    Socket& s_;
    bool on_home_engine_;
};

// The next queued datagrams' mbufs (both header lines: the PMD's
// allocation resets fields in the second, which the free reads) and
// payloads were written on another core (by the engine's PMD, or a NIC's
// DMA): start pulling them while this one is copied and freed. Two ahead
// hide the line transfers (one ahead hid half of them). A payload is found
// from the datagram just taken, as mbufs of one pool keep their data at
// the same offset from the header; a wrong guess (another pool, a stale or
// torn entry) costs a useless prefetch, never a fault.
void prefetch_next_queued(const Socket& s, const QueuedDatagram& taken) noexcept
{
    constexpr uint32_t kAhead = 2;
    const auto data_from_header = static_cast<const char*>(taken.mbuf->buf_addr) + taken.mbuf->data_off -
                                  reinterpret_cast<const char*>(taken.mbuf);
    for (uint32_t ahead = 0; ahead < kAhead; ++ahead) {
        QueuedDatagram next;
        s.queue().peek_racy(next, ahead);
        if (next.mbuf == nullptr || next.mbuf == taken.mbuf) return;
        rte_prefetch0(next.mbuf);
        rte_prefetch0(reinterpret_cast<const char*>(next.mbuf) + RTE_CACHE_LINE_SIZE);
        rte_prefetch0(reinterpret_cast<const char*>(next.mbuf) + data_from_header + next.payload_offset);
    }
}

// During a visit that may_take(): the oldest queued datagram into
// `buffers` (and its source into `from`, its control data and flags into
// `message`, when given), its mbuf freed. False when none waits.
bool take_queued(Socket& s, const QueueVisit& visit, const WSABUF* buffers, DWORD count, sockaddr* from, LPINT fromlen,
                 WSAMSG* message, DWORD& bytes, DWORD& error) noexcept
{
    QueuedDatagram q;
    if (visit.alone()) {
        if (s.queue().dequeue_burst(&q, 1) != 1) return false;
        // The only writer now: a plain store, not a locked add.
        s.dequeued_bytes.store(s.dequeued_bytes.load(std::memory_order_relaxed) + q.payload_length,
                               std::memory_order_relaxed);
    } else {
        if (s.queue().dequeue_burst_mc(&q, 1) != 1) return false;
        s.dequeued_bytes.fetch_add(q.payload_length, std::memory_order_relaxed);
    }
    prefetch_next_queued(s, q);
    error = fill(buffers, count, q, bytes);
    if (from != nullptr) endpoint_to_sockaddr(s.family, q.from, from, fromlen);
    if (message != nullptr) [[unlikely]]
        write_message_extras(*runtime(), s, *message, *q.mbuf, q.payload_offset, q.from.family, error != 0);
    free_mbuf(q.mbuf);
    return true;
}

// The immediate receive: when nothing is outstanding on the socket and a
// datagram is queued, the caller's thread takes it at once. False when it
// could not (the request must go to the engine).
bool receive_now(Socket& s, const WSABUF* buffers, DWORD count, sockaddr* from, LPINT fromlen, WSAMSG* message,
                 DWORD& bytes, DWORD& error) noexcept
{
    const QueueVisit visit(s);
    return visit.may_take() && take_queued(s, visit, buffers, count, from, fromlen, message, bytes, error);
}

// The event an OVERLAPPED names, if any. An event handle with its
// low-order bit set keeps the completion off the socket's port (Windows'
// GetQueuedCompletionStatus page; libuv's try-writes rely on it): the
// event is the handle without that bit, and the only notification.
Event* overlapped_event(const OVERLAPPED& ov) noexcept
{
    const auto bits = reinterpret_cast<uintptr_t>(ov.hEvent) & ~uintptr_t{1};
    return bits == 0 ? nullptr : wait_objects().event(reinterpret_cast<HANDLE>(bits));
}

bool keeps_off_port(const OVERLAPPED& ov) noexcept
{
    return (reinterpret_cast<uintptr_t>(ov.hEvent) & 1) != 0;
}

// The overlapped receive completed in the call, for a request notified
// through a completion port or an event (or nothing): receive_now(), then
// the caller writes the OVERLAPPED and queues the port's completion itself,
// on the home engine's ring of the port, where the engine queues the
// socket's other completions: no request record, no trip through the
// engine. False when it could not (the request must go to the engine).
// `error` is the receive's own (WSAEMSGSIZE: no completion is queued).
//
// The port is used without a reference of its own: the socket's
// association keeps it while the visit lasts (see QueueVisit), so the
// push happens inside it.
bool complete_at_once(Runtime& rt, Socket& s, const WSABUF* buffers, DWORD count, sockaddr* from, LPINT fromlen,
                      WSAMSG* message, LPWSAOVERLAPPED ov, DWORD& bytes, DWORD& error) noexcept
{
    CompletionPort* port = keeps_off_port(*ov) ? nullptr : s.port.load(std::memory_order_acquire);
    const bool skip_port = port != nullptr && (s.notification_modes.load(std::memory_order_acquire) &
                                               FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) != 0;
    const bool via_port = port != nullptr && !skip_port;
    {
        const QueueVisit visit(s);
        // The port's reservation before the queue: taken and given back on
        // this core when the queue is empty, where an emptiness check
        // would read the engine's line.
        if (!visit.may_take() || (via_port && !port->try_reserve(s.home_engine))) return false;
        if (!take_queued(s, visit, buffers, count, from, fromlen, message, bytes, error)) {
            if (via_port) port->unreserve(s.home_engine); // empty, or another receiver took it first
            return false;
        }
        ov->InternalHigh = bytes;
        ov->Offset = 0;
        std::atomic_ref<ULONG_PTR>(ov->Internal).store(error, std::memory_order_release);
        // A receive that failed at once has no completion indication (the pages).
        if (via_port && error == 0)
            port->push_associated(s.home_engine, completion_of(ov, s.port_key, bytes));
        else if (via_port)
            port->unreserve(s.home_engine);
    }
    // The event is signalled whether or not a port is associated (the
    // pages; choose_notification). Skipping the port, the caller learns the
    // result from the return value and nobody can be waiting for it but on
    // the event: no other wake (the hub's epoch is one line for the whole
    // process, and run-to-completion engines receive at once millions of
    // times a second).
    if (error == 0) {
        if (ov->hEvent != nullptr)
            if (Event* event = overlapped_event(*ov)) event->set(rt.hub());
        if (port == nullptr) rt.hub().notify();
    }
    return true;
}

} // namespace

int choose_notification(Socket& s, Request& r, unsigned engine, LPWSAOVERLAPPED ov,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread) noexcept
{
    r.overlapped = ov;
    r.routine = routine;
    r.event = nullptr;
    r.port = nullptr;
    r.apc = nullptr;
    r.engine = engine;
    if (routine != nullptr) {
        ApcQueue* apc = thread != nullptr ? wait_objects().thread(thread->ThreadHandle) : &ApcQueue::current();
        if (apc == nullptr) return WSAEINVAL;
        if (!apc->try_reserve(r.engine)) return WSAEWOULDBLOCK;
        r.apc = apc;
        r.notify = Notify::apc;
        return 0;
    }
    // "The hEvent parameter of lpOverlapped is signaled when the
    // overlapped operation completes if it contains a valid event object
    // handle" (the pages): a port association adds the port's completion,
    // it does not take the event's place.
    if (ov->hEvent != nullptr) r.event = overlapped_event(*ov);
    CompletionPort* port = keeps_off_port(*ov) ? nullptr : s.port.load(std::memory_order_acquire);
    if (port != nullptr) {
        if (!port->try_reserve(r.engine)) return WSAEWOULDBLOCK;
        r.port = port;
        r.key = s.port_key;
        r.notify = Notify::port;
        return 0;
    }
    r.notify = Notify::event;
    return 0;
}

void release_notification(Request& r) noexcept
{
    if (r.notify == Notify::apc) r.apc->unreserve(r.engine);
    if (r.notify == Notify::port) r.port->unreserve(r.engine);
}

bool may_report_in_place(const Socket& s, const Request& r) noexcept
{
    return r.notify != Notify::port ||
           (s.notification_modes.load(std::memory_order_acquire) & FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == 0;
}

void notify_waiting_caller(Request& r, OVERLAPPED& mine, unsigned engine) noexcept
{
    r.notify = Notify::sync;
    r.overlapped = &mine;
    r.engine = engine;
    r.event = nullptr;
    r.port = nullptr;
    r.apc = nullptr;
    r.routine = nullptr;
}

void wait_or_time_out(Runtime& rt, Socket& s, unsigned engine, OVERLAPPED& mine, uint32_t timeout_ms) noexcept
{
    if (rt.wait_for(&mine, timeout_ms)) return;
    ControlCall call;
    call.target = &mine;
    call.cancel_error = WSAETIMEDOUT;
    rt.control(engine, Op::cancel, &s, call);
    rt.wait_for(&mine, 0);
}

namespace {

// A receive with a completion routine that completed in the caller: the
// OVERLAPPED is written here, the routine queued through the engine (its
// APC ring carries the engine's completions for this thread, so the
// routine runs in order with them). Ports and events never come here:
// complete_at_once() serves them without the engine.
void notify_routine_through_engine(Runtime& rt, Socket& s, Request& r, DWORD bytes) noexcept
{
    LPWSAOVERLAPPED ov = r.overlapped;
    ov->InternalHigh = bytes;
    ov->Offset = 0;
    std::atomic_ref<ULONG_PTR>(ov->Internal).store(0, std::memory_order_release);
    r.result_error = 0;
    r.result_bytes = bytes;
    r.result_flags = 0;
    if (!rt.engine(r.engine).submit(Submission{Op::notify, 0, &s, &r})) {
        release_notification(r);
        rt.requests().give_back(&r);
    }
}

int receive(SOCKET handle, LPWSABUF buffers, DWORD count, LPDWORD received, LPDWORD flags, sockaddr* from,
            LPINT fromlen, LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread,
            LPINT lpErrno, bool from_call, WSAMSG* message = nullptr) noexcept
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return fail(lpErrno, error);
    // A stream socket ignores lpFrom: its peer is fixed.
    if (s->is_stream()) return stream_receive(*s, buffers, count, received, flags, ov, routine, thread, lpErrno);
    Runtime& rt = *runtime();
    if (rt.registers_application_threads()) dataplane::register_application_thread(); // an mbuf cache
    const bool overlapped = ov != nullptr || routine != nullptr;
    if (overlapped && ov == nullptr) return fail(lpErrno, WSAEFAULT);
    if ((error = check_recv(*s, buffers, count, flags, overlapped, from_call, from, fromlen)) != 0)
        return fail(lpErrno, error);
    if (!overlapped && received == nullptr) return fail(lpErrno, WSAEFAULT);
    const bool peek = (*flags & MSG_PEEK) != 0;

    if (overlapped) {
        if (s->outstanding.load(std::memory_order_relaxed) >= Socket::kMaxOutstanding)
            return fail(lpErrno, WSAEWOULDBLOCK); // too many outstanding overlapped requests
        if (routine == nullptr) {
            DWORD bytes = 0;
            DWORD status = 0;
            if (complete_at_once(rt, *s, buffers, count, from, fromlen, message, ov, bytes, status)) {
                if (received != nullptr) *received = bytes;
                *flags = 0; // a whole message (UDP has no MSG_PARTIAL)
                return status != 0 ? fail(lpErrno, static_cast<int>(status)) : succeed(lpErrno);
            }
        }
        Request* r = rt.requests().take();
        if (r == nullptr) return fail(lpErrno, WSAEWOULDBLOCK);
        if ((error = choose_notification(*s, *r, s->home_engine, ov, routine, thread)) != 0) {
            rt.requests().give_back(r);
            return fail(lpErrno, error);
        }
        // A completion routine is queued through the engine: one taken now
        // goes there as a notification, behind the socket's earlier ones.
        // Ports and events were tried above; trying again here could let
        // a notification through the engine fall behind the caller's next
        // completion at once.
        DWORD bytes = 0;
        DWORD status = 0;
        if (routine != nullptr && receive_now(*s, buffers, count, from, fromlen, message, bytes, status)) {
            if (received != nullptr) *received = bytes;
            *flags = 0; // a whole message (UDP has no MSG_PARTIAL)
            if (status != 0) {
                // Failed at once: no completion indication (the pages).
                std::atomic_ref<ULONG_PTR>(ov->Internal).store(status, std::memory_order_release);
                ov->InternalHigh = bytes;
                release_notification(*r);
                rt.requests().give_back(r);
                return fail(lpErrno, static_cast<int>(status));
            }
            notify_routine_through_engine(rt, *s, *r, bytes);
            return succeed(lpErrno);
        }
        if (!r->capture(buffers, count)) {
            release_notification(*r);
            rt.requests().give_back(r);
            return fail(lpErrno, WSAENOBUFS);
        }
        r->kind = RequestKind::recv;
        r->peek = false;
        r->no_wait = false;
        r->socket = s;
        r->socket_generation = s->generation.load(std::memory_order_relaxed);
        r->from = from;
        r->fromlen = fromlen;
        r->message = message;
        ov->InternalHigh = 0;
        ov->Offset = 0;
        std::atomic_ref<ULONG_PTR>(ov->Internal).store(STATUS_PENDING, std::memory_order_release);
        if (r->event != nullptr) r->event->reset();
        const bool may_succeed_in_place = may_report_in_place(*s, *r);
        s->outstanding.fetch_add(1, std::memory_order_seq_cst);
        if (!rt.engine(r->engine).submit(Submission{Op::recv, 0, s, r})) {
            s->outstanding.fetch_sub(1);
            release_notification(*r);
            rt.requests().give_back(r);
            return fail(lpErrno, WSAENOBUFS);
        }
        // Run to completion: on the home engine's lcore the submission ran
        // in place and may have completed (its notification already went;
        // one on a port that skips on success keeps it pending).
        if (may_succeed_in_place && rt.engine(s->home_engine).on_own_lcore()) {
            const auto status = std::atomic_ref<ULONG_PTR>(ov->Internal).load(std::memory_order_acquire);
            if (status == 0) {
                if (received != nullptr) *received = static_cast<DWORD>(ov->InternalHigh);
                *flags = ov->Offset;
                return succeed(lpErrno);
            }
        }
        // Pending: *received and *flags stay as they were (the pages).
        return fail(lpErrno, WSA_IO_PENDING);
    }

    // Non-overlapped: copy what is queued, or block (or not) for it.
    DWORD bytes = 0;
    DWORD status = 0;
    if (!peek && receive_now(*s, buffers, count, from, fromlen, message, bytes, status)) {
        *received = bytes;
        *flags = 0;
        return status != 0 ? fail(lpErrno, static_cast<int>(status)) : succeed(lpErrno);
    }
    // On the engine itself a wait could never end: never block there.
    const bool nonblocking = s->nonblocking.load(std::memory_order_relaxed) || rt.engine(s->home_engine).on_own_lcore();
    if (nonblocking && !peek && s->outstanding.load() == 0 && s->queue().empty()) return fail(lpErrno, WSAEWOULDBLOCK);
    Request* r = rt.requests().take();
    if (r == nullptr) return fail(lpErrno, WSAENOBUFS);
    OVERLAPPED mine{};
    if (!r->capture(buffers, count)) {
        rt.requests().give_back(r);
        return fail(lpErrno, WSAENOBUFS);
    }
    r->kind = RequestKind::recv;
    notify_waiting_caller(*r, mine, s->home_engine);
    r->peek = peek;
    r->no_wait = nonblocking;
    r->socket = s;
    r->socket_generation = s->generation.load(std::memory_order_relaxed);
    r->from = from;
    r->fromlen = fromlen;
    r->message = message;
    std::atomic_ref<ULONG_PTR>(mine.Internal).store(STATUS_PENDING, std::memory_order_release);
    s->outstanding.fetch_add(1, std::memory_order_seq_cst);
    if (!rt.engine(r->engine).submit(Submission{Op::recv, 0, s, r})) {
        s->outstanding.fetch_sub(1);
        rt.requests().give_back(r);
        return fail(lpErrno, WSAENOBUFS);
    }
    wait_or_time_out(rt, *s, s->home_engine, mine, s->rcvtimeo_ms.load(std::memory_order_relaxed));
    const auto result = static_cast<DWORD>(std::atomic_ref<ULONG_PTR>(mine.Internal).load(std::memory_order_acquire));
    *received = static_cast<DWORD>(mine.InternalHigh);
    if (result != 0) return fail(lpErrno, static_cast<int>(result));
    *flags = 0;
    return succeed(lpErrno);
}

} // namespace

INT PASCAL wsa_recv_msg(SOCKET handle, LPWSAMSG message, LPDWORD received, LPWSAOVERLAPPED ov,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE routine) noexcept
{
    int error = 0;
    const auto refuse = [](int code) {
        WSASetLastError(code);
        return SOCKET_ERROR;
    };
    Socket* s = lookup(handle, error);
    if (s == nullptr) return refuse(error);
    // "Can only be used with datagrams and raw sockets."
    if (s->is_stream()) return refuse(WSAEOPNOTSUPP);
    if (message == nullptr) return refuse(WSAEFAULT);
    // A null name or control buffer with a non-zero length is WSAEFAULT
    // (the page); a null name with length zero asks for no name.
    if ((message->name == nullptr && message->namelen != 0) ||
        (message->Control.buf == nullptr && message->Control.len != 0))
        return refuse(WSAEFAULT);
    // The flags in go in as WSARecv's; the flags out are written into the
    // message with the control data, by whoever completes the receive.
    DWORD flags = message->dwFlags;
    const int result =
        receive(handle, message->lpBuffers, message->dwBufferCount, received, &flags, message->name,
                message->name != nullptr ? &message->namelen : nullptr, ov, routine, nullptr, &error, false, message);
    WSASetLastError(result == 0 ? 0 : error);
    return result;
}

namespace {

int transmit(SOCKET handle, LPWSABUF buffers, DWORD count, LPDWORD sent, DWORD flags, const sockaddr* to, int tolen,
             LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, LPINT lpErrno,
             uint8_t traffic_class = 0) noexcept
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return fail(lpErrno, error);
    // A stream socket ignores lpTo: its peer is fixed.
    if (s->is_stream()) return stream_send(*s, buffers, count, sent, flags, ov, routine, thread, lpErrno);
    Runtime& rt = *runtime();
    if (rt.registers_application_threads()) dataplane::register_application_thread(); // an mbuf cache
    const bool overlapped = ov != nullptr || routine != nullptr;
    if (overlapped && ov == nullptr) return fail(lpErrno, WSAEFAULT);
    if (!buffers_valid(buffers, count)) return fail(lpErrno, WSAEFAULT);
    if ((flags & MSG_OOB) != 0) return fail(lpErrno, WSAEOPNOTSUPP);
    if (overlapped && !s->overlapped_capable) return fail(lpErrno, WSAEINVAL);
    if (!overlapped && sent == nullptr) return fail(lpErrno, WSAEFAULT);
    if (s->shut_for_send()) return fail(lpErrno, WSAESHUTDOWN);
    Endpoint dest;
    if (to != nullptr) {
        if ((error = endpoint_for_socket(*s, to, tolen, dest)) != 0) return fail(lpErrno, error);
        if (dest.is_any() || dest.port == 0) return fail(lpErrno, WSAEADDRNOTAVAIL);
    } else if (s->connected.load(std::memory_order_acquire)) {
        dest = s->peer;
    } else {
        return fail(lpErrno, WSAENOTCONN);
    }
    if (dest.family == 4 && dest.addr[0] == 255 && dest.addr[1] == 255 && dest.addr[2] == 255 && dest.addr[3] == 255)
        return fail(lpErrno, WSAEACCES); // broadcast needs SO_BROADCAST, which is not offered
    // The loopback network is the host kernel's: this interface owns none
    // of it (lwIP would loop it in and find no one).
    if (dest.is_loopback()) return fail(lpErrno, WSAENETUNREACH);
    if ((error = ensure_bound(rt, *s)) != 0) return fail(lpErrno, error);
    if (!s->carries(dest.family)) return fail(lpErrno, WSAEAFNOSUPPORT); // bound to the other family
    uint64_t total = 0;
    for (DWORD i = 0; i < count; ++i)
        total += buffers[i].len;
    if (total > (dest.family == 6 ? 65527u : 65507u)) return fail(lpErrno, WSAEMSGSIZE);

    Request* r = rt.requests().take();
    if (r == nullptr) return fail(lpErrno, overlapped ? WSAEWOULDBLOCK : WSAENOBUFS);
    // The home engine builds and sends it when the next hop's MAC is
    // cached; otherwise lwIP's engine (which resolves it). The engine that
    // sends completes, so the slot is taken on its rings.
    stack::MacAddress next_hop{};
    r->fast = rt.fast_send_mac(*s, dest, total, next_hop);
    r->next_hop = next_hop;
    r->traffic_class = traffic_class;
    const unsigned sender = r->fast ? s->home_engine : 0;
    OVERLAPPED mine{};
    if (overlapped) {
        if ((error = choose_notification(*s, *r, sender, ov, routine, thread)) != 0) {
            rt.requests().give_back(r);
            return fail(lpErrno, error);
        }
    } else {
        notify_waiting_caller(*r, mine, sender);
    }
    if (!r->capture(buffers, count)) {
        if (overlapped) release_notification(*r);
        rt.requests().give_back(r);
        return fail(lpErrno, WSAENOBUFS);
    }
    r->kind = RequestKind::send;
    r->socket = s;
    r->socket_generation = s->generation.load(std::memory_order_relaxed);
    r->to = dest;
    LPWSAOVERLAPPED target = r->overlapped;
    target->InternalHigh = 0;
    target->Offset = 0;
    std::atomic_ref<ULONG_PTR>(target->Internal).store(STATUS_PENDING, std::memory_order_release);
    if (r->event != nullptr) r->event->reset();
    s->sends_outstanding.fetch_add(1, std::memory_order_relaxed);
    if (!rt.engine(sender).submit(Submission{Op::send, 0, s, r})) {
        s->sends_outstanding.fetch_sub(1);
        if (overlapped) release_notification(*r);
        rt.requests().give_back(r);
        return fail(lpErrno, WSAENOBUFS);
    }
    if (overlapped) return fail(lpErrno, WSA_IO_PENDING);
    rt.wait_for(&mine, 0);
    const auto result = static_cast<DWORD>(std::atomic_ref<ULONG_PTR>(mine.Internal).load(std::memory_order_acquire));
    if (result != 0) return fail(lpErrno, static_cast<int>(result));
    *sent = static_cast<DWORD>(mine.InternalHigh);
    return succeed(lpErrno);
}

// WSASendMsg's control records: an IP_PKTINFO (IPV6_PKTINFO) record whose
// address is unspecified or the one the datagram to `dest` leaves from
// anyway (one address per family, and for IPv6 per scope: a record can
// confirm the source, not choose another), and an IP_ECN (IPV6_ECN) one,
// an INT from 0 to 3, the ECN codepoint the datagram carries into
// `traffic_class` (QUIC's ECN, as msquic sends it). 0 or the error.
int check_send_records(const Runtime& rt, const Socket& s, const WSAMSG& message, const Endpoint& dest,
                       uint8_t& traffic_class) noexcept
{
    if (message.Control.len == 0) return 0;
    if (message.Control.len < sizeof(WSACMSGHDR)) return WSAEINVAL;
    // WSA_CMSG_FIRSTHDR/NXTHDR's walk, in offsets: the macros add the
    // caller's cmsg_len to a pointer, which any length near SIZE_MAX
    // overflows before a check could refuse it.
    const auto* control = reinterpret_cast<const unsigned char*>(message.Control.buf);
    const std::size_t length = message.Control.len;
    for (std::size_t at = 0; at < length && length - at >= sizeof(WSACMSGHDR);) {
        const auto* header = reinterpret_cast<const WSACMSGHDR*>(control + at);
        if (header->cmsg_len < sizeof(WSACMSGHDR) || header->cmsg_len > length - at) return WSAEINVAL;
        at += WSA_CMSGHDR_ALIGN(header->cmsg_len); // the next record's, if one fits
        if (header->cmsg_type == IP_ECN && (header->cmsg_level == IPPROTO_IP || header->cmsg_level == IPPROTO_IPV6)) {
            static_assert(IP_ECN == IPV6_ECN);
            // IPv4's for an IPv4 datagram; IPv6's on an IPv6 socket, a
            // dual-stack one's IPv4 datagrams too.
            const bool fits_family = header->cmsg_level == IPPROTO_IP ? dest.family == 4 : s.family == 6;
            INT ecn = 0;
            if (!fits_family || header->cmsg_len < WSA_CMSG_LEN(sizeof(INT))) return WSAEINVAL;
            std::memcpy(&ecn, WSA_CMSG_DATA(header), sizeof(ecn));
            if (ecn < 0 || ecn > 3) return WSAEINVAL;
            traffic_class = static_cast<uint8_t>(ecn);
            continue;
        }
        Endpoint source;
        if (header->cmsg_level == IPPROTO_IP && header->cmsg_type == IP_PKTINFO &&
            header->cmsg_len >= WSA_CMSG_LEN(sizeof(IN_PKTINFO))) {
            IN_PKTINFO info;
            std::memcpy(&info, WSA_CMSG_DATA(header), sizeof(info));
            if (!names_our_interface(info.ipi_ifindex)) return WSAEADDRNOTAVAIL;
            source.family = 4;
            std::memcpy(source.addr.data(), &info.ipi_addr, 4);
        } else if (header->cmsg_level == IPPROTO_IPV6 && header->cmsg_type == IPV6_PKTINFO &&
                   header->cmsg_len >= WSA_CMSG_LEN(sizeof(IN6_PKTINFO))) {
            IN6_PKTINFO info;
            std::memcpy(&info, WSA_CMSG_DATA(header), sizeof(info));
            if (!names_our_interface(info.ipi6_ifindex)) return WSAEADDRNOTAVAIL;
            source.family = 6;
            std::memcpy(source.addr.data(), &info.ipi6_addr, 16);
            source = unmapped(source);
        } else {
            return WSAEINVAL; // no other record is offered
        }
        if (source.family != dest.family) return WSAEINVAL;
        if (source.is_any()) continue;
        bool leaves_from = false;
        if (dest.family == 4) {
            leaves_from = rt.is_own_address(4, source.addr);
        } else {
            stack::Ipv6Address chosen{};
            leaves_from = rt.ipv6_source(s, dest, chosen) && chosen == source.addr;
        }
        if (!leaves_from) return WSAEADDRNOTAVAIL;
    }
    return 0;
}

// WSASendMsg's work: WSASendTo's with the message's name and buffers, once
// its control records are checked.
int send_message(SOCKET handle, const WSAMSG* message, DWORD flags, LPDWORD sent, LPWSAOVERLAPPED ov,
                 LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPINT lpErrno) noexcept
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return fail(lpErrno, error);
    // "Can only be used with datagrams and raw sockets."
    if (s->is_stream()) return fail(lpErrno, WSAEOPNOTSUPP);
    if (message == nullptr || (message->Control.buf == nullptr && message->Control.len != 0))
        return fail(lpErrno, WSAEFAULT);
    uint8_t traffic_class = 0;
    if (message->Control.len != 0) {
        Endpoint dest;
        if (message->name != nullptr) {
            if ((error = endpoint_for_socket(*s, message->name, message->namelen, dest)) != 0)
                return fail(lpErrno, error);
        } else if (s->connected.load(std::memory_order_acquire)) {
            dest = s->peer;
        } else {
            return fail(lpErrno, WSAENOTCONN);
        }
        if ((error = check_send_records(*runtime(), *s, *message, dest, traffic_class)) != 0)
            return fail(lpErrno, error);
    }
    return transmit(handle, message->lpBuffers, message->dwBufferCount, sent, flags, message->name, message->namelen,
                    ov, routine, nullptr, lpErrno, traffic_class);
}

} // namespace

DWORD associate_socket_with_port(SOCKET handle, CompletionPort& port, ULONG_PTR key) noexcept
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return ERROR_INVALID_HANDLE;
    if (runtime()->on_an_engine()) return ERROR_NOT_SUPPORTED; // see Runtime::on_an_engine
    std::lock_guard lock(runtime()->control_mutex());
    if (s->port.load() != nullptr) return ERROR_INVALID_PARAMETER;
    s->port_key = key;
    s->port.store(&port, std::memory_order_release);
    return 0;
}

bool caller_is_an_engine() noexcept
{
    Runtime* rt = runtime();
    return rt != nullptr && rt->on_an_engine();
}

DWORD set_socket_notification_modes(SOCKET handle, UCHAR flags) noexcept
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return ERROR_INVALID_HANDLE;
    s->notification_modes.store(flags, std::memory_order_release);
    return 0;
}

bool is_socket_handle(HANDLE handle) noexcept
{
    int error = 0;
    return lookup(reinterpret_cast<SOCKET>(handle), error) != nullptr;
}

} // namespace ringsock::api

using namespace ringsock::api;

extern "C" {

SOCKET WINAPI WSPSocket(int af, int type, int protocol, LPWSAPROTOCOL_INFOW, GROUP, DWORD dwFlags, LPINT lpErrno)
{
    if (!started()) {
        fail(lpErrno, WSANOTINITIALISED);
        return INVALID_SOCKET;
    }
    uint8_t family = 0;
    if (af == AF_INET)
        family = 4;
    else if (af == AF_INET6)
        family = 6;
    else {
        fail(lpErrno, WSAEAFNOSUPPORT);
        return INVALID_SOCKET;
    }
    if (type != SOCK_DGRAM && type != SOCK_STREAM) {
        fail(lpErrno, WSAESOCKTNOSUPPORT);
        return INVALID_SOCKET;
    }
    if (protocol != 0 && protocol != (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP)) {
        fail(lpErrno, WSAEPROTONOSUPPORT);
        return INVALID_SOCKET;
    }
    if (runtime()->on_an_engine()) {
        fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
        return INVALID_SOCKET;
    }
    Socket* s = runtime()->open_socket(family, type, (dwFlags & WSA_FLAG_OVERLAPPED) != 0);
    if (s == nullptr) {
        fail(lpErrno, WSAEMFILE);
        return INVALID_SOCKET;
    }
    succeed(lpErrno);
    return s->handle();
}

int WINAPI WSPBind(SOCKET s, const struct sockaddr* name, int namelen, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    Runtime& rt = *runtime();
    if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
    std::lock_guard lock(rt.control_mutex());
    // Read under the mutex that IPV6_V6ONLY is set under.
    Endpoint local;
    if ((error = endpoint_for_socket(*sock, name, namelen, local)) != 0) return fail(lpErrno, error);
    if (sock->bound.load()) return fail(lpErrno, WSAEINVAL);
    if ((error = bind_locked(rt, *sock, local)) != 0) return fail(lpErrno, error);
    return succeed(lpErrno);
}

int WINAPI WSPConnect(SOCKET s, const struct sockaddr* name, int namelen, LPWSABUF, LPWSABUF, void*, void*,
                      LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    Endpoint peer;
    if ((error = endpoint_for_socket(*sock, name, namelen, peer)) != 0) return fail(lpErrno, error);
    Runtime& rt = *runtime();
    if (sock->is_stream()) return stream_connect(*sock, peer, lpErrno);
    if (peer.is_any()) {
        // An all-zero address dissolves the association.
        sock->connected.store(false, std::memory_order_release);
        return succeed(lpErrno);
    }
    if (peer.port == 0) return fail(lpErrno, WSAEADDRNOTAVAIL);
    if ((error = ensure_bound(rt, *sock)) != 0) return fail(lpErrno, error);
    if (!sock->carries(peer.family)) return fail(lpErrno, WSAEAFNOSUPPORT); // bound to the other family
    if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK);            // see Runtime::on_an_engine
    std::lock_guard lock(rt.control_mutex());
    sock->connected.store(false, std::memory_order_release);
    sock->peer = peer;
    sock->connected.store(true, std::memory_order_release);
    return succeed(lpErrno);
}

int WINAPI WSPCloseSocket(SOCKET s, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    if (runtime()->on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
    if (sock->is_stream()) return stream_close(*sock, lpErrno);
    runtime()->close_socket(*sock);
    return succeed(lpErrno);
}

int WINAPI WSPShutdown(SOCKET s, int how, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    uint8_t bits = 0;
    switch (how) {
    case SD_RECEIVE:
        bits = 1;
        break;
    case SD_SEND:
        bits = 2;
        break;
    case SD_BOTH:
        bits = 3;
        break;
    default:
        return fail(lpErrno, WSAEINVAL);
    }
    if (sock->is_stream()) return stream_shutdown(*sock, bits, lpErrno);
    // A datagram socket shuts down locally; receives already posted stay.
    sock->shutdown_how.fetch_or(bits, std::memory_order_acq_rel);
    return succeed(lpErrno);
}

} // extern "C"

// Helpers of the calls around them, kept out of the C linkage block.
namespace {

// getsockname/getpeername: the socket's local or peer address, or
// `absent` when it has none yet (unbound: WSAEINVAL; unconnected: WSAENOTCONN).
int write_name(SOCKET s, bool peer, int absent, sockaddr* name, LPINT namelen, LPINT lpErrno) noexcept
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    if (!(peer ? sock->connected : sock->bound).load(std::memory_order_acquire)) return fail(lpErrno, absent);
    if ((error = endpoint_to_sockaddr(sock->family, peer ? sock->peer : sock->local, name, namelen)) != 0)
        return fail(lpErrno, error);
    return succeed(lpErrno);
}

} // namespace

extern "C" {

int WINAPI WSPGetSockName(SOCKET s, struct sockaddr* name, LPINT namelen, LPINT lpErrno)
{
    return write_name(s, false, WSAEINVAL, name, namelen, lpErrno);
}

int WINAPI WSPGetPeerName(SOCKET s, struct sockaddr* name, LPINT namelen, LPINT lpErrno)
{
    return write_name(s, true, WSAENOTCONN, name, namelen, lpErrno);
}

} // extern "C"

namespace {

// Whether an IPv4 interface as Winsock names one (IP_MULTICAST_IF, an
// ip_mreq's imr_interface; network order) is the one: 0.0.0.0 for the
// default, its address, or its index written in the 0.x.x.x block.
bool names_our_ipv4_interface(const Runtime& rt, const void* in_addr) noexcept
{
    std::array<uint8_t, 4> named{};
    std::memcpy(named.data(), in_addr, named.size());
    if (named == rt.interface().ipv4.address) return true;
    if (named[0] != 0) return false;
    return names_our_interface(uint32_t{named[1]} << 16 | uint32_t{named[2]} << 8 | named[3]);
}

// The group of the ip_mreq (family 4) or ipv6_mreq (6) in `optval`: 0, or
// WSAEFAULT (too short) or WSAEINVAL (not a group). Its interface is
// interface_of_request's.
int group_of_request(uint8_t family, const char* optval, int optlen, Endpoint& group) noexcept
{
    static_assert(offsetof(ip_mreq, imr_multiaddr) == 0 && offsetof(ipv6_mreq, ipv6mr_multiaddr) == 0);
    if (optlen < static_cast<int>(family == 4 ? sizeof(ip_mreq) : sizeof(ipv6_mreq))) return WSAEFAULT;
    group.family = family;
    std::memcpy(group.addr.data(), optval, family == 4 ? 4 : 16);
    return (family == 4 ? group.is_ipv4_multicast() : group.is_ipv6_multicast()) ? 0 : WSAEINVAL;
}

// The interface an ip_mreq (family 4) or ipv6_mreq (6) that
// group_of_request read joins on: 0 when it is the one, WSAEADDRNOTAVAIL
// for any other (not ours to join on).
int interface_of_request(const Runtime& rt, uint8_t family, const char* optval) noexcept
{
    if (family == 4)
        return names_our_ipv4_interface(rt, optval + offsetof(ip_mreq, imr_interface)) ? 0 : WSAEADDRNOTAVAIL;
    ULONG index = 0;
    std::memcpy(&index, optval + offsetof(ipv6_mreq, ipv6mr_interface), sizeof(index));
    return names_our_interface(index) ? 0 : WSAEADDRNOTAVAIL;
}

// The WSARecvMsg record an option asks for (IP_PKTINFO, IP_HOPLIMIT,
// IP_ECN at IPPROTO_IP, their IPv6 twins at IPPROTO_IPV6); 0 for any other
// option.
uint8_t message_record_of(int level, int optname) noexcept
{
    static_assert(IP_PKTINFO == IPV6_PKTINFO && IP_HOPLIMIT == IPV6_HOPLIMIT && IP_ECN == IPV6_ECN);
    if (level != IPPROTO_IP && level != IPPROTO_IPV6) return 0;
    const bool ipv4 = level == IPPROTO_IP;
    switch (optname) {
    case IP_PKTINFO:
        return ipv4 ? kIpv4PacketInfo : kIpv6PacketInfo;
    case IP_HOPLIMIT:
        return ipv4 ? kIpv4HopLimit : kIpv6HopLimit;
    case IP_ECN:
        return ipv4 ? kIpv4Ecn : kIpv6Ecn;
    default:
        return 0;
    }
}

constexpr uint8_t kIpv6Records = kIpv6PacketInfo | kIpv6HopLimit | kIpv6Ecn;

// IP_TTL at IPPROTO_IP (4), IPV6_UNICAST_HOPS at IPPROTO_IPV6 (6); 0 for
// any other option.
uint8_t unicast_ttl_family(int level, int optname) noexcept
{
    static_assert(IP_TTL == IPV6_UNICAST_HOPS);
    if (optname != IP_TTL) return 0;
    return level == IPPROTO_IP ? 4 : level == IPPROTO_IPV6 ? 6 : 0;
}

// IP_MULTICAST_TTL/LOOP/IF at IPPROTO_IP and IPV6_MULTICAST_HOPS/LOOP/IF
// at IPPROTO_IPV6 (the same values): the family the option is for, 0 when
// it is none of them.
uint8_t multicast_send_family(int level, int optname) noexcept
{
    static_assert(IPV6_MULTICAST_HOPS == IP_MULTICAST_TTL && IPV6_MULTICAST_LOOP == IP_MULTICAST_LOOP &&
                  IPV6_MULTICAST_IF == IP_MULTICAST_IF);
    if (optname != IP_MULTICAST_TTL && optname != IP_MULTICAST_LOOP && optname != IP_MULTICAST_IF) return 0;
    return level == IPPROTO_IP ? 4 : level == IPPROTO_IPV6 ? 6 : 0;
}

// The socket's membership of a group changed (`m`) or ended (null): the
// home engine's copy follows.
void filter_on_engine(Runtime& rt, Socket& sock, const Endpoint& group, Membership* m) noexcept
{
    Membership ended{group, {}};
    ControlCall filter;
    filter.value = m != nullptr ? 1 : 0;
    filter.context = m != nullptr ? m : &ended;
    rt.control(sock.home_engine, Op::filter_group, &sock, filter);
}

// What a membership option asks of a socket's group.
enum class GroupChange : uint8_t {
    join,           // IP_ADD_MEMBERSHIP, IPV6_ADD_MEMBERSHIP: from any source
    leave,          // IP_DROP_MEMBERSHIP, IPV6_DROP_MEMBERSHIP: sources and all
    add_source,     // IP_ADD_SOURCE_MEMBERSHIP: join, or one more source
    drop_source,    // IP_DROP_SOURCE_MEMBERSHIP: the last one leaves
    block_source,   // IP_BLOCK_SOURCE: of an any-source membership
    unblock_source, // IP_UNBLOCK_SOURCE
};

// The source change an IPv4 option asks (ip_mreq_source), if any.
std::optional<GroupChange> source_change(int level, int optname) noexcept
{
    if (level != IPPROTO_IP) return std::nullopt;
    switch (optname) {
    case IP_ADD_SOURCE_MEMBERSHIP:
        return GroupChange::add_source;
    case IP_DROP_SOURCE_MEMBERSHIP:
        return GroupChange::drop_source;
    case IP_BLOCK_SOURCE:
        return GroupChange::block_source;
    case IP_UNBLOCK_SOURCE:
        return GroupChange::unblock_source;
    default:
        return std::nullopt;
    }
}

// The change a protocol-independent option asks (GROUP_REQ or, with a
// source, GROUP_SOURCE_REQ), if any.
std::optional<GroupChange> group_request_change(int optname) noexcept
{
    switch (optname) {
    case MCAST_JOIN_GROUP:
        return GroupChange::join;
    case MCAST_LEAVE_GROUP:
        return GroupChange::leave;
    case MCAST_JOIN_SOURCE_GROUP:
        return GroupChange::add_source;
    case MCAST_LEAVE_SOURCE_GROUP:
        return GroupChange::drop_source;
    case MCAST_BLOCK_SOURCE:
        return GroupChange::block_source;
    case MCAST_UNBLOCK_SOURCE:
        return GroupChange::unblock_source;
    default:
        return std::nullopt;
    }
}

// Whether `source` can send: a unicast address (not unspecified, not a
// group, and for IPv4 not in 255.0.0.0/8, where the limited broadcast
// lives).
bool unicast_source(const Endpoint& source) noexcept
{
    if (source.is_any() || source.is_ipv4_multicast() || source.is_ipv6_multicast()) return false;
    return source.family != 4 || source.addr[0] != 255;
}

// lwIP's membership of `group` (IGMP or MLD, on the lwIP engine; the
// port's MAC filter follows): joined on a socket's first join, left on its
// last leave.
int lwip_membership(Runtime& rt, Socket& sock, const Endpoint& group, Op op) noexcept
{
    ControlCall membership;
    membership.group = group;
    return rt.control(0, op, &sock, membership);
}

// Changes `sock`'s membership of `group` as `change` asks (`source`: the
// one named, for the source changes): lwIP's membership on the first join
// and the last leave, and the socket's own filter on its home engine (a
// group's datagrams reach only its members, from the sources they listed
// or did not block). A group is joined from any source or by source, not
// both, and sources are blocked only in the first way and added only in
// the second (WSAEINVAL otherwise); a second join, or a source added or
// blocked twice, fails with WSAEADDRINUSE; leaving, dropping or unblocking
// what is not there with WSAEADDRNOTAVAIL; leaving drops the sources too.
int change_membership(Runtime& rt, Socket& sock, const Endpoint& group, const Endpoint& source, GroupChange change,
                      LPINT lpErrno) noexcept
{
    if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
    std::lock_guard lock(rt.control_mutex());
    auto it = std::find_if(sock.groups.begin(), sock.groups.end(),
                           [&](const Membership& m) { return m.group.same_address(group); });
    if (it == sock.groups.end()) {
        if (change != GroupChange::join && change != GroupChange::add_source) return fail(lpErrno, WSAEADDRNOTAVAIL);
        if (const int error = lwip_membership(rt, sock, group, Op::join); error != 0) return fail(lpErrno, error);
        Membership m{group, {}, change == GroupChange::join};
        if (!m.any_source) m.sources.push_back(source);
        sock.groups.push_back(std::move(m));
        filter_on_engine(rt, sock, group, &sock.groups.back());
        return succeed(lpErrno);
    }
    Membership& m = *it;
    bool leaves = change == GroupChange::leave;
    if (change == GroupChange::join) return fail(lpErrno, m.any_source ? WSAEADDRINUSE : WSAEINVAL);
    if (!leaves) {
        const bool blocking = change == GroupChange::block_source || change == GroupChange::unblock_source;
        if (blocking != m.any_source) return fail(lpErrno, WSAEINVAL); // the group's other way
        const bool adds = change == GroupChange::add_source || change == GroupChange::block_source;
        const auto listed =
            std::find_if(m.sources.begin(), m.sources.end(), [&](const Endpoint& e) { return e.same_address(source); });
        if (adds) {
            if (listed != m.sources.end()) return fail(lpErrno, WSAEADDRINUSE);
            if (m.sources.size() == Membership::kMaxSources) return fail(lpErrno, WSAENOBUFS);
            m.sources.push_back(source);
        } else {
            if (listed == m.sources.end()) return fail(lpErrno, WSAEADDRNOTAVAIL);
            m.sources.erase(listed);
            leaves = !m.any_source && m.sources.empty(); // no source left to receive from
        }
    }
    if (!leaves) {
        filter_on_engine(rt, sock, group, &m);
        return succeed(lpErrno);
    }
    filter_on_engine(rt, sock, group, nullptr);
    lwip_membership(rt, sock, group, Op::leave);
    sock.groups.erase(it);
    return succeed(lpErrno);
}

} // namespace

extern "C" {

int WINAPI WSPSetSockOpt(SOCKET s, int level, int optname, const char* optval, int optlen, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    // SO_UPDATE_CONNECT_CONTEXT is the one option that takes no value.
    if (optval == nullptr && !(level == SOL_SOCKET && optname == SO_UPDATE_CONNECT_CONTEXT))
        return fail(lpErrno, WSAEFAULT);
    Runtime& rt = *runtime();
    const auto as_int = [&](int& out) {
        if (optlen < static_cast<int>(sizeof(int))) return false;
        std::memcpy(&out, optval, sizeof(int));
        return true;
    };
    int value = 0;
    if (level == SOL_SOCKET) {
        switch (optname) {
        case SO_RCVBUF:
        case SO_SNDBUF:
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            if (value < 0) return fail(lpErrno, WSAEINVAL);
            (optname == SO_RCVBUF ? sock->rcvbuf : sock->sndbuf).store(value, std::memory_order_relaxed);
            return succeed(lpErrno);
        case SO_REUSEADDR:
        case SO_RINGSOCK_PORT_SHARE:
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            if (sock->bound.load()) return fail(lpErrno, WSAEINVAL);
            (optname == SO_REUSEADDR ? sock->reuseaddr : sock->port_share) = value != 0;
            return succeed(lpErrno);
        case SO_RINGSOCK_HOME_ENGINE:
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            if (value < 0 || static_cast<unsigned>(value) >= rt.engine_count()) return fail(lpErrno, WSAEINVAL);
            if (sock->bound.load()) return fail(lpErrno, WSAEINVAL);
            sock->home_engine = static_cast<unsigned>(value);
            return succeed(lpErrno);
        case SO_RCVTIMEO:
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            sock->rcvtimeo_ms.store(static_cast<uint32_t>(value), std::memory_order_relaxed);
            return succeed(lpErrno);
        case SO_LINGER: {
            if (!sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
            if (optlen < static_cast<int>(sizeof(linger))) return fail(lpErrno, WSAEFAULT);
            linger l;
            std::memcpy(&l, optval, sizeof(l));
            sock->linger_seconds.store(l.l_onoff != 0 ? l.l_linger : -1, std::memory_order_relaxed);
            return succeed(lpErrno);
        }
        case SO_DONTLINGER:
            if (!sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            if (value != 0) sock->linger_seconds.store(-1, std::memory_order_relaxed);
            return succeed(lpErrno);
        case SO_KEEPALIVE:
            if (!sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
            if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
            sock->keepalive.store(value != 0, std::memory_order_relaxed);
            stream_options_changed(*sock);
            return succeed(lpErrno);
        case SO_UPDATE_ACCEPT_CONTEXT:
        case SO_UPDATE_CONNECT_CONTEXT:
            // Windows completes an AcceptEx/ConnectEx socket with these; a
            // ringsock socket is complete already. The value must still name
            // the listener (a socket) for the accept form.
            if (!sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
            if (optname == SO_UPDATE_ACCEPT_CONTEXT) {
                SOCKET listener = 0;
                if (optlen < static_cast<int>(sizeof(SOCKET))) return fail(lpErrno, WSAEFAULT);
                std::memcpy(&listener, optval, sizeof(listener));
                if (lookup(listener, error) == nullptr) return fail(lpErrno, WSAENOTSOCK);
            }
            if (!sock->connected.load()) return fail(lpErrno, WSAENOTCONN);
            return succeed(lpErrno);
        default:
            return fail(lpErrno, WSAENOPROTOOPT);
        }
    }
    if (level == IPPROTO_TCP && optname == TCP_NODELAY) {
        if (!sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
        if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
        sock->nodelay.store(value != 0, std::memory_order_relaxed);
        stream_options_changed(*sock);
        return succeed(lpErrno);
    }
    // The IP-level multicast options: a stream socket has none
    // (WSAENOPROTOOPT); an option of the other family is not valid here.
    const auto datagram_option_misuse = [&](uint8_t family) {
        return sock->is_stream() ? WSAENOPROTOOPT : sock->family != family ? WSAEINVAL : 0;
    };
    // Group membership: IPv4's on a dual-stack socket too, for the IPv4
    // datagrams it carries (as Linux and .NET's dual-mode sockets allow;
    // the Winsock pages say nothing). The send options above stay the
    // family's own: the socket has one TTL and one loop flag.
    const auto membership_option_misuse = [&](uint8_t family) {
        if (const int misuse = datagram_option_misuse(family); misuse != WSAEINVAL) return misuse;
        return family == 4 && sock->family == 6 && sock->carries(4) ? 0 : WSAEINVAL;
    };
    // IPv6 only (Winsock's default) or dual stack, chosen before bind: the
    // socket's table entries and lwIP's pcb are made for it at bind.
    if (level == IPPROTO_IPV6 && optname == IPV6_V6ONLY) {
        if (sock->family != 6) return fail(lpErrno, WSAEINVAL);
        if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
        if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
        std::lock_guard lock(rt.control_mutex());
        if (sock->bound.load()) return fail(lpErrno, WSAEINVAL);
        sock->dual_stack = value == 0;
        return succeed(lpErrno);
    }
    // IP_TTL on an IPv4 socket, IPV6_UNICAST_HOPS on an IPv6 one (a
    // dual-stack one's IPv4 sends too): 1 to 255, or -1 for the default.
    if (const uint8_t family = unicast_ttl_family(level, optname); family != 0) {
        if (sock->family != family) return fail(lpErrno, WSAEINVAL);
        if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
        if (value == -1) value = Socket::kDefaultUnicastTtl;
        if (value < 1 || value > 255) return fail(lpErrno, WSAEINVAL);
        sock->unicast_ttl.store(static_cast<uint8_t>(value), std::memory_order_relaxed);
        if (sock->is_stream()) stream_options_changed(*sock);
        return succeed(lpErrno);
    }
    // WSARecvMsg's records: IPv4's on any datagram socket (a dual-stack
    // one's IPv4 datagrams too), IPv6's on an IPv6 one.
    if (const uint8_t record = message_record_of(level, optname); record != 0) {
        if (sock->is_stream()) return fail(lpErrno, WSAENOPROTOOPT);
        if ((record & kIpv6Records) != 0 && sock->family != 6) return fail(lpErrno, WSAEINVAL);
        if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
        if (value != 0)
            sock->message_records.fetch_or(record, std::memory_order_relaxed);
        else
            sock->message_records.fetch_and(static_cast<uint8_t>(~record), std::memory_order_relaxed);
        return succeed(lpErrno);
    }
    if (const uint8_t family = multicast_send_family(level, optname); family != 0) {
        if ((error = datagram_option_misuse(family)) != 0) return fail(lpErrno, error);
        if (!as_int(value)) return fail(lpErrno, WSAEFAULT);
        switch (optname) {
        case IP_MULTICAST_TTL:
            if (value < 0 || value > 255) return fail(lpErrno, WSAEINVAL);
            sock->multicast_ttl.store(static_cast<uint8_t>(value), std::memory_order_relaxed);
            return succeed(lpErrno);
        case IP_MULTICAST_LOOP:
            sock->multicast_loop.store(value != 0, std::memory_order_relaxed);
            return succeed(lpErrno);
        default: { // IP_MULTICAST_IF: the one interface, by 0 (the default), its IPv4 address or its index
            const bool ours =
                family == 4 ? names_our_ipv4_interface(rt, &value) : names_our_interface(static_cast<uint32_t>(value));
            if (!ours) return fail(lpErrno, WSAEADDRNOTAVAIL);
            sock->multicast_interface.store(static_cast<uint32_t>(value), std::memory_order_relaxed);
            return succeed(lpErrno);
        }
        }
    }
    const bool ipv4_membership = level == IPPROTO_IP && (optname == IP_ADD_MEMBERSHIP || optname == IP_DROP_MEMBERSHIP);
    const bool ipv6_membership =
        level == IPPROTO_IPV6 && (optname == IPV6_ADD_MEMBERSHIP || optname == IPV6_DROP_MEMBERSHIP);
    if (ipv4_membership || ipv6_membership) {
        const uint8_t family = ipv4_membership ? 4 : 6;
        if ((error = membership_option_misuse(family)) != 0) return fail(lpErrno, error);
        Endpoint group;
        if ((error = group_of_request(family, optval, optlen, group)) != 0) return fail(lpErrno, error);
        if ((error = interface_of_request(rt, family, optval)) != 0) return fail(lpErrno, error);
        const bool join = ipv4_membership ? optname == IP_ADD_MEMBERSHIP : optname == IPV6_ADD_MEMBERSHIP;
        return change_membership(rt, *sock, group, Endpoint{}, join ? GroupChange::join : GroupChange::leave, lpErrno);
    }
    // By source (IPv4): the socket filters by source; lwIP reports the
    // group as IGMPv2 does, with no source list (see README).
    if (const auto change = source_change(level, optname)) {
        if ((error = membership_option_misuse(4)) != 0) return fail(lpErrno, error);
        if (optlen < static_cast<int>(sizeof(ip_mreq_source))) return fail(lpErrno, WSAEFAULT);
        Endpoint group;
        if ((error = group_of_request(4, optval, optlen, group)) != 0) return fail(lpErrno, error);
        ip_mreq_source request;
        std::memcpy(&request, optval, sizeof(request));
        if (!names_our_ipv4_interface(rt, &request.imr_interface)) return fail(lpErrno, WSAEADDRNOTAVAIL);
        Endpoint source;
        source.family = 4;
        std::memcpy(source.addr.data(), &request.imr_sourceaddr, 4);
        if (!unicast_source(source)) return fail(lpErrno, WSAEINVAL);
        return change_membership(rt, *sock, group, source, *change, lpErrno);
    }
    // Protocol-independent (Winsock's preferred form): the group, and the
    // source, as sockaddrs of the level's family; IPv6 by source too.
    if (const auto change = group_request_change(optname); change && (level == IPPROTO_IP || level == IPPROTO_IPV6)) {
        const uint8_t family = level == IPPROTO_IP ? 4 : 6;
        if ((error = membership_option_misuse(family)) != 0) return fail(lpErrno, error);
        const bool by_source = *change != GroupChange::join && *change != GroupChange::leave;
        if (optlen < static_cast<int>(by_source ? sizeof(GROUP_SOURCE_REQ) : sizeof(GROUP_REQ)))
            return fail(lpErrno, WSAEFAULT);
        static_assert(offsetof(GROUP_REQ, gr_group) == offsetof(GROUP_SOURCE_REQ, gsr_group));
        GROUP_SOURCE_REQ request{};
        std::memcpy(&request, optval, by_source ? sizeof(GROUP_SOURCE_REQ) : sizeof(GROUP_REQ));
        if (!names_our_interface(request.gsr_interface)) return fail(lpErrno, WSAEADDRNOTAVAIL);
        Endpoint group, source;
        // A scope naming another link: WSAEADDRNOTAVAIL, as the interface;
        // anything else wrong with an address: WSAEINVAL.
        const auto address_of = [&](const SOCKADDR_STORAGE& from, Endpoint& to) {
            const int e = endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&from), sizeof(from), family, to);
            return e == WSAEADDRNOTAVAIL ? e : e != 0 ? WSAEINVAL : 0;
        };
        if ((error = address_of(request.gsr_group, group)) != 0) return fail(lpErrno, error);
        if (!(group.is_ipv4_multicast() || group.is_ipv6_multicast())) return fail(lpErrno, WSAEINVAL);
        if (by_source && (error = address_of(request.gsr_source, source)) != 0) return fail(lpErrno, error);
        if (by_source && !unicast_source(source)) return fail(lpErrno, WSAEINVAL);
        group.port = source.port = 0;
        return change_membership(rt, *sock, group, source, *change, lpErrno);
    }
    return fail(lpErrno, WSAENOPROTOOPT);
}

int WINAPI WSPGetSockOpt(SOCKET s, int level, int optname, char* optval, LPINT optlen, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    if (optval == nullptr || optlen == nullptr || *optlen < static_cast<int>(sizeof(int)))
        return fail(lpErrno, WSAEFAULT);
    int value = 0;
    if (level == IPPROTO_TCP && optname == TCP_NODELAY && sock->is_stream()) {
        value = sock->nodelay.load() ? 1 : 0;
        std::memcpy(optval, &value, sizeof(int));
        *optlen = sizeof(int);
        return succeed(lpErrno);
    }
    if (level == SOL_SOCKET && optname == SO_LINGER && sock->is_stream()) {
        if (*optlen < static_cast<int>(sizeof(linger))) return fail(lpErrno, WSAEFAULT);
        const int32_t seconds = sock->linger_seconds.load();
        const linger l{static_cast<u_short>(seconds >= 0 ? 1 : 0), static_cast<u_short>(seconds >= 0 ? seconds : 0)};
        std::memcpy(optval, &l, sizeof(l));
        *optlen = sizeof(l);
        return succeed(lpErrno);
    }
    if (level == IPPROTO_IPV6 && optname == IPV6_V6ONLY && sock->family == 6) {
        value = sock->dual_stack ? 0 : 1;
        std::memcpy(optval, &value, sizeof(int));
        *optlen = sizeof(int);
        return succeed(lpErrno);
    }
    if (unicast_ttl_family(level, optname) == sock->family) {
        value = sock->unicast_ttl.load(std::memory_order_relaxed);
        std::memcpy(optval, &value, sizeof(int));
        *optlen = sizeof(int);
        return succeed(lpErrno);
    }
    if (const uint8_t record = message_record_of(level, optname);
        record != 0 && !sock->is_stream() && ((record & kIpv6Records) == 0 || sock->family == 6)) {
        value = (sock->message_records.load(std::memory_order_relaxed) & record) != 0 ? 1 : 0;
        std::memcpy(optval, &value, sizeof(int));
        *optlen = sizeof(int);
        return succeed(lpErrno);
    }
    if (multicast_send_family(level, optname) == sock->family && !sock->is_stream()) {
        // Each as set (the interface in the form it was named).
        value = optname == IP_MULTICAST_TTL ? sock->multicast_ttl.load(std::memory_order_relaxed)
                : optname == IP_MULTICAST_LOOP
                    ? (sock->multicast_loop.load(std::memory_order_relaxed) ? 1 : 0)
                    : static_cast<int>(sock->multicast_interface.load(std::memory_order_relaxed));
        std::memcpy(optval, &value, sizeof(int));
        *optlen = sizeof(int);
        return succeed(lpErrno);
    }
    if (level != SOL_SOCKET) return fail(lpErrno, WSAENOPROTOOPT);
    switch (optname) {
    case SO_KEEPALIVE:
        value = sock->keepalive.load() ? 1 : 0;
        break;
    case SO_ACCEPTCONN:
        value = sock->listening.load() ? 1 : 0;
        break;
    case SO_RCVBUF:
        value = sock->rcvbuf.load();
        break;
    case SO_SNDBUF:
        value = sock->sndbuf.load();
        break;
    case SO_REUSEADDR:
        value = sock->reuseaddr ? 1 : 0;
        break;
    case SO_RINGSOCK_PORT_SHARE:
        value = sock->port_share ? 1 : 0;
        break;
    case SO_RINGSOCK_HOME_ENGINE:
        value = static_cast<int>(sock->home_engine);
        break;
    case SO_RINGSOCK_RCV_DROPS:
        value = static_cast<int>(sock->rcv_drops.load());
        break;
    case SO_RCVTIMEO:
        value = static_cast<int>(sock->rcvtimeo_ms.load());
        break;
    case SO_TYPE:
        value = sock->type;
        break;
    case SO_ERROR:
        // A stream socket's failure, reported once.
        value = sock->stream_error.exchange(0);
        break;
    default:
        return fail(lpErrno, WSAENOPROTOOPT);
    }
    std::memcpy(optval, &value, sizeof(int));
    *optlen = sizeof(int);
    return succeed(lpErrno);
}

int WINAPI WSPIoctl(SOCKET s, DWORD code, LPVOID in, DWORD in_size, LPVOID out, DWORD out_size, LPDWORD returned,
                    LPWSAOVERLAPPED, LPWSAOVERLAPPED_COMPLETION_ROUTINE, LPWSATHREADID, LPINT lpErrno)
{
    int error = 0;
    Socket* sock = lookup(s, error);
    if (sock == nullptr) return fail(lpErrno, error);
    if (code == static_cast<DWORD>(FIONBIO)) {
        if (in == nullptr || in_size < sizeof(u_long)) return fail(lpErrno, WSAEFAULT);
        u_long on = 0;
        std::memcpy(&on, in, sizeof(on));
        sock->nonblocking.store(on != 0, std::memory_order_relaxed);
        if (returned != nullptr) *returned = 0;
        return succeed(lpErrno);
    }
    if (code == static_cast<DWORD>(SIO_GET_EXTENSION_FUNCTION_POINTER)) {
        if (in == nullptr || in_size < sizeof(GUID) || out == nullptr || out_size < sizeof(void*))
            return fail(lpErrno, WSAEFAULT);
        GUID guid;
        std::memcpy(&guid, in, sizeof(guid));
        void* function = extension_function(guid);
        if (function == nullptr) return fail(lpErrno, WSAEINVAL);
        std::memcpy(out, &function, sizeof(function));
        if (returned != nullptr) *returned = sizeof(function);
        return succeed(lpErrno);
    }
    if (code == static_cast<DWORD>(SIO_KEEPALIVE_VALS)) {
        if (!sock->is_stream()) return fail(lpErrno, WSAEOPNOTSUPP);
        if (in == nullptr || in_size < sizeof(tcp_keepalive)) return fail(lpErrno, WSAEFAULT);
        tcp_keepalive vals;
        std::memcpy(&vals, in, sizeof(vals));
        if (vals.onoff != 0 && (vals.keepalivetime == 0 || vals.keepaliveinterval == 0))
            return fail(lpErrno, WSAEINVAL);
        if (vals.onoff != 0) {
            sock->keepalive_idle_ms.store(vals.keepalivetime, std::memory_order_relaxed);
            sock->keepalive_interval_ms.store(vals.keepaliveinterval, std::memory_order_relaxed);
        }
        sock->keepalive.store(vals.onoff != 0, std::memory_order_relaxed);
        stream_options_changed(*sock);
        if (returned != nullptr) *returned = 0;
        return succeed(lpErrno);
    }
    if (code == static_cast<DWORD>(FIONREAD)) {
        if (out == nullptr || out_size < sizeof(u_long)) return fail(lpErrno, WSAEFAULT);
        const u_long queued = static_cast<u_long>(std::max<int64_t>(0, sock->bytes_waiting()));
        std::memcpy(out, &queued, sizeof(queued));
        if (returned != nullptr) *returned = sizeof(u_long);
        return succeed(lpErrno);
    }
    return fail(lpErrno, WSAEINVAL);
}

int WINAPI WSPRecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine,
                   LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    return receive(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, nullptr, nullptr, lpOverlapped,
                   lpCompletionRoutine, lpThreadId, lpErrno, false);
}

int WINAPI WSPRecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                       struct sockaddr* lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped,
                       LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine, LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    return receive(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen, lpOverlapped,
                   lpCompletionRoutine, lpThreadId, lpErrno, true);
}

int WINAPI WSPSend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine,
                   LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    return transmit(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, nullptr, 0, lpOverlapped,
                    lpCompletionRoutine, lpThreadId, lpErrno);
}

int WINAPI WSASendMsg(SOCKET Handle, LPWSAMSG lpMsg, DWORD dwFlags, LPDWORD lpNumberOfBytesSent,
                      LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine)
{
    int error = 0;
    const int result =
        send_message(Handle, lpMsg, dwFlags, lpNumberOfBytesSent, lpOverlapped, lpCompletionRoutine, &error);
    if (result == SOCKET_ERROR) WSASetLastError(error);
    return result;
}

int WINAPI WSPSendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                     const struct sockaddr* lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine, LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    if (lpTo == nullptr) return fail(lpErrno, WSAEFAULT);
    return transmit(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen, lpOverlapped,
                    lpCompletionRoutine, lpThreadId, lpErrno);
}

BOOL WINAPI WSPGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait,
                                   LPDWORD lpdwFlags, LPINT lpErrno)
{
    int error = 0;
    if (lookup(s, error) == nullptr) {
        fail(lpErrno, error);
        return FALSE;
    }
    if (lpOverlapped == nullptr || lpcbTransfer == nullptr || lpdwFlags == nullptr) {
        fail(lpErrno, WSAEFAULT);
        return FALSE;
    }
    std::atomic_ref<ULONG_PTR> status(lpOverlapped->Internal);
    if (status.load(std::memory_order_acquire) == STATUS_PENDING) {
        // On an engine, waiting would wait for the caller (ringsock_poll_on_engine).
        if (!fWait || caller_is_an_engine()) {
            fail(lpErrno, WSA_IO_INCOMPLETE);
            return FALSE;
        }
        runtime()->wait_for(lpOverlapped, 0);
    }
    const auto result = static_cast<DWORD>(status.load(std::memory_order_acquire));
    *lpcbTransfer = static_cast<DWORD>(lpOverlapped->InternalHigh);
    *lpdwFlags = lpOverlapped->Offset;
    if (result != 0) {
        fail(lpErrno, static_cast<int>(result));
        return FALSE;
    }
    succeed(lpErrno);
    return TRUE;
}

} // extern "C"
