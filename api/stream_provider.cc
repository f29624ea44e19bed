// The provider's calls for stream sockets: listen, accept and AcceptEx,
// connect and ConnectEx, receives and sends with WSARecv's byte-stream
// rules, shutdown, and closesocket's SO_LINGER. Every request goes to the
// lwIP engine (api/stream_engine.hh), which completes it.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "api/provider_common.hh"
#include "api/event.hh"
#include "ringsock/mswsock.h"
#include "ringsock/ws2tcpip.h"

namespace ringsock::api {

namespace {

constexpr unsigned kLwipEngine = 0;

// A request for `s` whose completion goes to the caller's OVERLAPPED (`ov`
// not null) or to `mine`, which a blocking call waits on. Null with the
// error when none can be had.
Request* start(Runtime& rt, Socket& s, LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine,
               LPWSATHREADID thread, OVERLAPPED& mine, int& error) noexcept
{
    Request* r = rt.requests().take();
    if (r == nullptr) {
        error = ov != nullptr ? WSAEWOULDBLOCK : WSAENOBUFS;
        return nullptr;
    }
    if (ov != nullptr) {
        if ((error = choose_notification(s, *r, kLwipEngine, ov, routine, thread)) != 0) {
            rt.requests().give_back(r);
            return nullptr;
        }
    } else {
        notify_waiting_caller(*r, mine, kLwipEngine);
    }
    r->peek = false;
    r->no_wait = false;
    r->wait_all = false;
    r->fast = false;
    r->done = 0;
    r->from = nullptr;
    r->fromlen = nullptr;
    r->accept_socket = nullptr;
    r->accept_generation = 0;
    r->accept_data = r->accept_local = r->accept_remote = 0;
    r->buffer_count = 0;
    r->total_length = 0;
    r->socket = &s;
    r->socket_generation = s.generation.load(std::memory_order_relaxed);
    return r;
}

void abandon(Runtime& rt, Request& r) noexcept
{
    if (r.notify != Notify::sync) release_notification(r);
    rt.requests().give_back(&r);
}

// A receive's or send's request: start() with the caller's WSABUF array
// copied in. Null with the error when the socket has too many outstanding,
// or no request or memory is left.
Request* start_transfer(Runtime& rt, Socket& s, bool overlapped, LPWSAOVERLAPPED ov,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, OVERLAPPED& mine,
                        const WSABUF* buffers, DWORD count, int& error) noexcept
{
    if (overlapped && s.outstanding.load(std::memory_order_relaxed) >= Socket::kMaxOutstanding) {
        error = WSAEWOULDBLOCK; // too many outstanding overlapped requests
        return nullptr;
    }
    Request* r = start(rt, s, overlapped ? ov : nullptr, routine, thread, mine, error);
    if (r != nullptr && !r->capture(buffers, count)) {
        abandon(rt, *r);
        error = WSAENOBUFS;
        return nullptr;
    }
    return r;
}

// Why a stream socket can carry no data now: 0, or the error to report.
int connection_error(const Socket& s) noexcept
{
    if (!s.connected.load(std::memory_order_acquire)) return WSAENOTCONN;
    // Reset (or timed out): every later receive and send fails at once.
    return s.stream_failure.load(std::memory_order_acquire);
}

// Hands `r` to the lwIP engine. Overlapped: WSA_IO_PENDING, or success when
// it completed in place (the caller runs on lwIP's lcore). Blocking: waits
// up to `timeout_ms` (0: for ever; then the request is cancelled with
// WSAETIMEDOUT) and reports the result. *bytes gets the count when known.
int submit(Runtime& rt, Socket& s, Request& r, Op op, uint32_t timeout_ms, LPDWORD bytes, LPINT lpErrno) noexcept
{
    const bool overlapped = r.notify != Notify::sync;
    LPWSAOVERLAPPED target = r.overlapped;
    target->InternalHigh = 0;
    target->Offset = 0;
    std::atomic_ref<ULONG_PTR>(target->Internal).store(STATUS_PENDING, std::memory_order_release);
    if (r.event != nullptr) r.event->reset();
    const bool may_succeed_in_place = overlapped && may_report_in_place(s, r);
    s.outstanding.fetch_add(1, std::memory_order_seq_cst);
    SocketEngine& engine = rt.engine(kLwipEngine);
    if (!engine.submit(Submission{op, 0, &s, &r})) {
        s.outstanding.fetch_sub(1);
        abandon(rt, r);
        return fail(lpErrno, WSAENOBUFS);
    }
    std::atomic_ref<ULONG_PTR> status(target->Internal);
    if (overlapped) {
        if (may_succeed_in_place && engine.on_own_lcore() && status.load(std::memory_order_acquire) == 0) {
            if (bytes != nullptr) *bytes = static_cast<DWORD>(target->InternalHigh);
            return succeed(lpErrno);
        }
        return fail(lpErrno, WSA_IO_PENDING);
    }
    wait_or_time_out(rt, s, kLwipEngine, *target, timeout_ms);
    if (bytes != nullptr) *bytes = static_cast<DWORD>(target->InternalHigh);
    const auto result = static_cast<int>(status.load(std::memory_order_acquire));
    return result != 0 ? fail(lpErrno, result) : succeed(lpErrno);
}

// A blocking call on lwIP's own lcore could never see its answer.
bool must_not_block(Runtime& rt, const Socket& s) noexcept
{
    return s.nonblocking.load(std::memory_order_relaxed) || rt.engine(kLwipEngine).on_own_lcore();
}

BOOL report_bool(int result, int error) noexcept
{
    WSASetLastError(error);
    return result == 0 ? TRUE : FALSE;
}

BOOL PASCAL connect_ex(SOCKET handle, const sockaddr* name, int namelen, PVOID send_buffer, DWORD send_length,
                       LPDWORD sent, LPOVERLAPPED ov)
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return report_bool(SOCKET_ERROR, error);
    if (!s->is_stream()) return report_bool(SOCKET_ERROR, WSAEOPNOTSUPP);
    if (ov == nullptr || (send_buffer == nullptr && send_length != 0)) return report_bool(SOCKET_ERROR, WSAEFAULT);
    Endpoint peer;
    if ((error = endpoint_for_socket(*s, name, namelen, peer)) != 0) return report_bool(SOCKET_ERROR, error);
    // ConnectEx wants a bound socket (bind first, as on Windows).
    if (!s->bound.load(std::memory_order_acquire) || s->listening.load()) return report_bool(SOCKET_ERROR, WSAEINVAL);
    if (!s->carries(peer.family)) return report_bool(SOCKET_ERROR, WSAEAFNOSUPPORT); // bound to the other family
    if (s->connected.load(std::memory_order_acquire)) return report_bool(SOCKET_ERROR, WSAEISCONN);
    if (peer.is_any() || peer.port == 0) return report_bool(SOCKET_ERROR, WSAEADDRNOTAVAIL);
    if (s->connecting.exchange(true)) return report_bool(SOCKET_ERROR, WSAEALREADY);
    Runtime& rt = *runtime();
    make_port_affine(rt, *s, peer);
    OVERLAPPED unused{};
    Request* r = start(rt, *s, ov, nullptr, nullptr, unused, error);
    if (r == nullptr) {
        s->connecting.store(false);
        return report_bool(SOCKET_ERROR, error);
    }
    const WSABUF data{send_length, static_cast<CHAR*>(send_buffer)};
    if (send_length != 0 && !r->capture(&data, 1)) {
        abandon(rt, *r);
        s->connecting.store(false);
        return report_bool(SOCKET_ERROR, WSAENOBUFS);
    }
    r->kind = RequestKind::connect;
    r->to = peer;
    s->peer = peer;
    const int result = submit(rt, *s, *r, Op::connect, 0, sent, &error);
    return report_bool(result, error);
}

} // namespace

int stream_receive(Socket& s, LPWSABUF buffers, DWORD count, LPDWORD received, LPDWORD flags, LPWSAOVERLAPPED ov,
                   LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, LPINT lpErrno) noexcept
{
    const bool overlapped = ov != nullptr || routine != nullptr;
    if (overlapped && ov == nullptr) return fail(lpErrno, WSAEFAULT);
    if (!buffers_valid(buffers, count) || flags == nullptr) return fail(lpErrno, WSAEFAULT);
    if ((*flags & MSG_OOB) != 0) return fail(lpErrno, WSAEOPNOTSUPP); // no urgent data here
    if ((*flags & ~(MSG_PEEK | MSG_WAITALL | MSG_PARTIAL | MSG_PUSH_IMMEDIATE)) != 0)
        return fail(lpErrno, WSAEOPNOTSUPP);
    if (overlapped && (*flags & MSG_PEEK) != 0) return fail(lpErrno, WSAEOPNOTSUPP); // nonoverlapped only
    // Microsoft's recv and WSARecv pages: MSG_WAITALL with MSG_PEEK or
    // MSG_PARTIAL, or on a socket in non-blocking mode, fails with
    // WSAEOPNOTSUPP (a call that must not wait cannot wait for all).
    if ((*flags & MSG_WAITALL) != 0 &&
        ((*flags & (MSG_PEEK | MSG_PARTIAL)) != 0 || (!overlapped && s.nonblocking.load(std::memory_order_relaxed))))
        return fail(lpErrno, WSAEOPNOTSUPP);
    if (overlapped && !s.overlapped_capable) return fail(lpErrno, WSAEINVAL);
    if (!s.connected.load(std::memory_order_acquire)) return fail(lpErrno, WSAENOTCONN);
    if (s.shut_for_receive()) return fail(lpErrno, WSAESHUTDOWN);
    int error = connection_error(s);
    if (error != 0) return fail(lpErrno, error);
    if (!overlapped && received == nullptr) return fail(lpErrno, WSAEFAULT);
    Runtime& rt = *runtime();
    OVERLAPPED mine{};
    Request* r = start_transfer(rt, s, overlapped, ov, routine, thread, mine, buffers, count, error);
    if (r == nullptr) return fail(lpErrno, error);
    r->kind = RequestKind::recv;
    r->peek = (*flags & MSG_PEEK) != 0;
    r->wait_all = (*flags & MSG_WAITALL) != 0;
    r->no_wait = !overlapped && must_not_block(rt, s);
    DWORD bytes = 0;
    const int result = submit(rt, s, *r, Op::recv, overlapped ? 0 : s.rcvtimeo_ms.load(), &bytes, lpErrno);
    if (result == 0 || !overlapped) {
        // Completed (now, or a blocking call): the outputs are written.
        if (received != nullptr) *received = bytes;
        if (result == 0) *flags = 0;
    }
    return result;
}

int stream_send(Socket& s, LPWSABUF buffers, DWORD count, LPDWORD sent, DWORD flags, LPWSAOVERLAPPED ov,
                LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, LPINT lpErrno) noexcept
{
    const bool overlapped = ov != nullptr || routine != nullptr;
    if (overlapped && ov == nullptr) return fail(lpErrno, WSAEFAULT);
    if (!buffers_valid(buffers, count)) return fail(lpErrno, WSAEFAULT);
    if ((flags & MSG_OOB) != 0) return fail(lpErrno, WSAEOPNOTSUPP);
    if (overlapped && !s.overlapped_capable) return fail(lpErrno, WSAEINVAL);
    if (!overlapped && sent == nullptr) return fail(lpErrno, WSAEFAULT);
    if (s.shut_for_send()) return fail(lpErrno, WSAESHUTDOWN);
    int error = connection_error(s);
    if (error != 0) return fail(lpErrno, error);
    Runtime& rt = *runtime();
    OVERLAPPED mine{};
    Request* r = start_transfer(rt, s, overlapped, ov, routine, thread, mine, buffers, count, error);
    if (r == nullptr) return fail(lpErrno, error);
    r->kind = RequestKind::send;
    r->no_wait = !overlapped && must_not_block(rt, s);
    DWORD bytes = 0;
    const int result = submit(rt, s, *r, Op::send, 0, &bytes, lpErrno);
    if (result == 0 && sent != nullptr) *sent = bytes;
    return result;
}

int stream_connect(Socket& s, const Endpoint& peer, LPINT lpErrno) noexcept
{
    if (s.listening.load()) return fail(lpErrno, WSAEINVAL);
    if (s.connected.load(std::memory_order_acquire)) return fail(lpErrno, WSAEISCONN);
    if (peer.is_any() || peer.port == 0) return fail(lpErrno, WSAEADDRNOTAVAIL);
    Runtime& rt = *runtime();
    int error = 0;
    if ((error = ensure_bound(rt, s, &peer)) != 0) return fail(lpErrno, error);
    if (!s.carries(peer.family)) return fail(lpErrno, WSAEAFNOSUPPORT); // bound to the other family
    if (s.connecting.exchange(true)) return fail(lpErrno, WSAEALREADY);
    make_port_affine(rt, s, peer);
    OVERLAPPED mine{};
    const bool background = must_not_block(rt, s);
    // A non-blocking connect goes on alone: its result shows in SO_ERROR
    // and in whether the socket ends up connected.
    Request* r = start(rt, s, background ? &s.background : nullptr, nullptr, nullptr, mine, error);
    if (r == nullptr) {
        s.connecting.store(false);
        return fail(lpErrno, error);
    }
    r->kind = RequestKind::connect;
    r->to = peer;
    s.peer = peer;
    const int result = submit(rt, s, *r, Op::connect, 0, nullptr, &error);
    if (background && result == SOCKET_ERROR && error == WSA_IO_PENDING) return fail(lpErrno, WSAEWOULDBLOCK);
    return result == 0 ? succeed(lpErrno) : fail(lpErrno, error);
}

void make_port_affine(Runtime& rt, Socket& s, const Endpoint& peer) noexcept
{
    if (!s.ephemeral_bind || rt.on_an_engine()) return;
    std::lock_guard lock(rt.control_mutex());
    if (rt.port_lands_home(s, s.local.port, peer)) return;
    const uint16_t port = rt.ephemeral_port(s, &peer);
    if (port == 0 || !rt.port_lands_home(s, port, peer)) return; // none free: the hand-off carries it
    // The engine sees the new port in post_connect and binds a fresh pcb.
    rt.forget_bound(s);
    s.local.port = port;
    rt.note_bound(s);
}

int stream_shutdown(Socket& s, uint8_t bits, LPINT lpErrno) noexcept
{
    if (!s.connected.load(std::memory_order_acquire)) return fail(lpErrno, WSAENOTCONN);
    Runtime& rt = *runtime();
    if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
    const uint8_t before = s.shutdown_how.fetch_or(bits, std::memory_order_acq_rel);
    if ((bits & 2) != 0 && (before & 2) == 0) {
        ControlCall call;
        rt.control(kLwipEngine, Op::shutdown_send, &s, call);
    }
    return succeed(lpErrno);
}

int stream_close(Socket& s, LPINT lpErrno) noexcept
{
    Runtime& rt = *runtime();
    const int32_t linger = s.linger_seconds.load(std::memory_order_relaxed);
    if (linger > 0 && s.connected.load() && s.nonblocking.load(std::memory_order_relaxed)) {
        // A close that would linger cannot wait on a non-blocking socket:
        // WSAEWOULDBLOCK (WSPCloseSocket's page), the handle still valid and
        // no disconnect begun, until what was sent is acknowledged and a
        // later closesocket can complete at once (closesocket's page).
        ControlCall call;
        rt.control(kLwipEngine, Op::drained, &s, call);
        if (call.value != 1) return fail(lpErrno, WSAEWOULDBLOCK);
    } else if (linger > 0 && s.connected.load()) {
        // SO_LINGER {1, n}: wait for the peer to acknowledge what was sent;
        // past the time, the close resets the connection.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(linger);
        for (;;) {
            ControlCall call;
            rt.control(kLwipEngine, Op::drained, &s, call);
            if (call.value == 1) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                s.linger_seconds.store(0, std::memory_order_relaxed);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    rt.close_socket(s);
    return succeed(lpErrno);
}

void stream_options_changed(Socket& s) noexcept
{
    Runtime& rt = *runtime();
    if (!s.bound.load(std::memory_order_acquire) || rt.on_an_engine()) return;
    ControlCall call;
    rt.control(kLwipEngine, Op::stream_options, &s, call);
}

void* extension_function(const GUID& guid) noexcept
{
    static const GUID accept_ex = WSAID_ACCEPTEX;
    static const GUID connect_ex_id = WSAID_CONNECTEX;
    static const GUID sockaddrs = WSAID_GETACCEPTEXSOCKADDRS;
    static const GUID recv_msg = WSAID_WSARECVMSG;
    static const GUID send_msg = WSAID_WSASENDMSG;
    if (std::memcmp(&guid, &accept_ex, sizeof(GUID)) == 0) return reinterpret_cast<void*>(&AcceptEx);
    if (std::memcmp(&guid, &connect_ex_id, sizeof(GUID)) == 0) return reinterpret_cast<void*>(&connect_ex);
    if (std::memcmp(&guid, &sockaddrs, sizeof(GUID)) == 0) return reinterpret_cast<void*>(&GetAcceptExSockaddrs);
    if (std::memcmp(&guid, &recv_msg, sizeof(GUID)) == 0) return reinterpret_cast<void*>(&wsa_recv_msg);
    if (std::memcmp(&guid, &send_msg, sizeof(GUID)) == 0) return reinterpret_cast<void*>(&WSASendMsg);
    return nullptr;
}

} // namespace ringsock::api

using namespace ringsock::api;

extern "C" {

int WINAPI WSPListen(SOCKET handle, int backlog, LPINT lpErrno)
{
    int error = 0;
    Socket* s = lookup(handle, error);
    if (s == nullptr) return fail(lpErrno, error);
    if (!s->is_stream()) return fail(lpErrno, WSAEOPNOTSUPP);
    if (s->connected.load() || s->connecting.load()) return fail(lpErrno, WSAEISCONN);
    if (!s->bound.load(std::memory_order_acquire)) return fail(lpErrno, WSAEINVAL);
    // SOMAXCONN asks for the most; SOMAXCONN_HINT(n) is -n. lwIP counts to 255.
    long wanted = backlog == SOMAXCONN ? 255 : (backlog < 0 ? -static_cast<long>(backlog) : backlog);
    wanted = std::clamp(wanted, 1L, 255L);
    Runtime& rt = *runtime();
    if (rt.on_an_engine()) return fail(lpErrno, WSAEWOULDBLOCK); // see Runtime::on_an_engine
    std::lock_guard lock(rt.control_mutex());
    ControlCall call;
    call.value = static_cast<int>(wanted);
    if ((error = rt.control(kLwipEngine, Op::listen, s, call)) != 0) return fail(lpErrno, error);
    s->listening.store(true, std::memory_order_release);
    return succeed(lpErrno);
}

SOCKET WINAPI WSPAccept(SOCKET handle, struct sockaddr* addr, LPINT addrlen, void* condition, DWORD_PTR, LPINT lpErrno)
{
    int error = 0;
    Socket* listener = lookup(handle, error);
    if (listener == nullptr) {
        fail(lpErrno, error);
        return INVALID_SOCKET;
    }
    const auto refuse = [&](int e) {
        fail(lpErrno, e);
        return INVALID_SOCKET;
    };
    if (!listener->is_stream()) return refuse(WSAEOPNOTSUPP);
    if (!listener->listening.load(std::memory_order_acquire)) return refuse(WSAEINVAL);
    if (condition != nullptr) return refuse(WSAEOPNOTSUPP); // conditional acceptance is not offered
    if (addr != nullptr && (addrlen == nullptr || *addrlen < sockaddr_size(listener->family))) return refuse(WSAEFAULT);
    Runtime& rt = *runtime();
    if (rt.on_an_engine()) return refuse(WSAEWOULDBLOCK); // see Runtime::on_an_engine
    Socket* s = rt.open_socket(listener->family, Socket::kStream, listener->overlapped_capable);
    if (s == nullptr) return refuse(WSAEMFILE);
    // The accepted socket has the listener's properties.
    s->nonblocking.store(listener->nonblocking.load());
    s->nodelay.store(listener->nodelay.load());
    s->dual_stack = listener->dual_stack;
    s->unicast_ttl.store(listener->unicast_ttl.load());
    s->keepalive.store(listener->keepalive.load());
    s->keepalive_idle_ms.store(listener->keepalive_idle_ms.load());
    s->keepalive_interval_ms.store(listener->keepalive_interval_ms.load());
    s->linger_seconds.store(listener->linger_seconds.load());
    s->rcvbuf.store(listener->rcvbuf.load());
    s->sndbuf.store(listener->sndbuf.load());
    OVERLAPPED mine{};
    Request* r = start(rt, *listener, nullptr, nullptr, nullptr, mine, error);
    if (r == nullptr) {
        rt.close_socket(*s);
        return refuse(error);
    }
    r->kind = RequestKind::accept;
    r->accept_socket = s;
    r->accept_generation = s->generation.load();
    r->from = addr;
    r->fromlen = addrlen;
    r->no_wait = must_not_block(rt, *listener);
    if (submit(rt, *listener, *r, Op::accept, 0, nullptr, lpErrno) != 0) {
        rt.close_socket(*s);
        return INVALID_SOCKET;
    }
    return s->handle();
}

BOOL PASCAL AcceptEx(SOCKET listen_handle, SOCKET accept_handle, PVOID output, DWORD data_length, DWORD local_length,
                     DWORD remote_length, LPDWORD received, LPOVERLAPPED ov)
{
    int error = 0;
    Socket* listener = lookup(listen_handle, error);
    Socket* s = listener != nullptr ? lookup(accept_handle, error) : nullptr;
    if (s == nullptr) return report_bool(SOCKET_ERROR, error);
    if (ov == nullptr || output == nullptr) return report_bool(SOCKET_ERROR, WSAEFAULT);
    if (!listener->is_stream() || !listener->listening.load(std::memory_order_acquire))
        return report_bool(SOCKET_ERROR, WSAEINVAL);
    if (!s->is_stream() || s == listener || s->family != listener->family || s->bound.load() || s->connected.load())
        return report_bool(SOCKET_ERROR, WSAEINVAL);
    // Each address block: the family's largest address and 16 bytes more.
    const auto least = static_cast<DWORD>(sockaddr_size(listener->family) + 16);
    if (local_length < least || remote_length < least) return report_bool(SOCKET_ERROR, WSAEFAULT);
    Runtime& rt = *runtime();
    OVERLAPPED unused{};
    Request* r = start(rt, *listener, ov, nullptr, nullptr, unused, error);
    if (r == nullptr) return report_bool(SOCKET_ERROR, error);
    const WSABUF whole{data_length + local_length + remote_length, static_cast<CHAR*>(output)};
    if (!r->capture(&whole, 1)) {
        abandon(rt, *r);
        return report_bool(SOCKET_ERROR, WSAENOBUFS);
    }
    r->kind = RequestKind::accept;
    // As accept()'s socket: the listener's (SO_UPDATE_ACCEPT_CONTEXT's part).
    s->dual_stack = listener->dual_stack;
    s->unicast_ttl.store(listener->unicast_ttl.load());
    r->accept_socket = s;
    r->accept_generation = s->generation.load();
    r->accept_data = data_length;
    r->accept_local = local_length;
    r->accept_remote = remote_length;
    const int result = submit(rt, *listener, *r, Op::accept, 0, received, &error);
    return report_bool(result, error);
}

void PASCAL GetAcceptExSockaddrs(PVOID output, DWORD data_length, DWORD local_length, DWORD, struct sockaddr** local,
                                 LPINT local_size, struct sockaddr** remote, LPINT remote_size)
{
    auto* base = static_cast<char*>(output);
    const auto size_of = [](const sockaddr* a) { return a->sa_family == AF_INET6 ? 28 : 16; };
    *local = reinterpret_cast<sockaddr*>(base + data_length);
    *remote = reinterpret_cast<sockaddr*>(base + data_length + local_length);
    *local_size = size_of(*local);
    *remote_size = size_of(*remote);
}

} // extern "C"
