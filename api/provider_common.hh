// What the provider's datagram calls (provider.cc) and stream calls
// (stream_provider.cc) share: error reporting through lpErrno, the handle
// lookup, implicit binds and the choice of a request's notification.
#pragma once

#include "api/runtime.hh"
#include "api/socket.hh"
#include "ringsock/ws2spi.h"

namespace ringsock::api {

// SOCKET_ERROR with *lpErrno = error; 0 with *lpErrno = 0.
int fail(LPINT lpErrno, int error) noexcept;
int succeed(LPINT lpErrno) noexcept;
// The open socket behind `handle`, or null with the error to report.
Socket* lookup(SOCKET handle, int& error) noexcept;
// `name` as the socket `s` uses it: endpoint_from_sockaddr's checks, then an
// IPv4-mapped address becomes the IPv4 endpoint it stands for on a
// dual-stack socket and is refused (WSAEAFNOSUPPORT) on an IPv6-only one.
int endpoint_for_socket(const Socket& s, const sockaddr* name, int namelen, Endpoint& out) noexcept;
// bind's work, also used for the implicit binds of connect and sendto.
// Caller holds the control mutex. `peer`: a stream socket's active open,
// for a core-affine ephemeral port (Runtime::ephemeral_port).
int bind_locked(Runtime& rt, Socket& s, Endpoint local, const Endpoint* peer = nullptr) noexcept;
// Binds to the wildcard address and an ephemeral port if not bound yet.
int ensure_bound(Runtime& rt, Socket& s, const Endpoint* peer = nullptr) noexcept;
// An active open from a socket whose port bind chose: moves it to a port
// whose replies land on lwIP's engine when the one it has does not.
void make_port_affine(Runtime& rt, Socket& s, const Endpoint& peer) noexcept;
// WSARecvMsg (<mswsock.h>), reached through SIO_GET_EXTENSION_FUNCTION_POINTER.
INT PASCAL wsa_recv_msg(SOCKET handle, LPWSAMSG message, LPDWORD received, LPWSAOVERLAPPED ov,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE routine) noexcept;
// The WSABUF array a receive or send names: present, at least one buffer,
// and no buffer of non-zero length without memory.
bool buffers_valid(const WSABUF* buffers, DWORD count) noexcept;
// Where an overlapped request's completion goes; reserves its ring slot on
// `engine`, the engine that will complete the request. 0 or the error.
int choose_notification(Socket& s, Request& r, unsigned engine, LPWSAOVERLAPPED ov,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread) noexcept;
void release_notification(Request& r) noexcept;
// Whether a request that its caller's own engine completed in place (run to
// completion) may report success to the caller: not when its completion went
// to a port that skips completions on success, where the caller would
// finish it twice. It reports WSA_IO_PENDING then, and the port has it.
// Read before the submission: the request is back in the pool once done.
bool may_report_in_place(const Socket& s, const Request& r) noexcept;
// A blocking call's request: completed into `mine`, which the caller waits
// on (wait_or_time_out), by `engine`.
void notify_waiting_caller(Request& r, OVERLAPPED& mine, unsigned engine) noexcept;
// Waits for `mine`; past `timeout_ms` (0: never) takes the request back from
// `engine` with WSAETIMEDOUT unless it finished meanwhile (SO_RCVTIMEO).
void wait_or_time_out(Runtime& rt, Socket& s, unsigned engine, OVERLAPPED& mine, uint32_t timeout_ms) noexcept;

// Stream sockets (stream_provider.cc): the provider's calls once they know
// the socket is SOCK_STREAM.
int stream_receive(Socket& s, LPWSABUF buffers, DWORD count, LPDWORD received, LPDWORD flags, LPWSAOVERLAPPED ov,
                   LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, LPINT lpErrno) noexcept;
int stream_send(Socket& s, LPWSABUF buffers, DWORD count, LPDWORD sent, DWORD flags, LPWSAOVERLAPPED ov,
                LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread, LPINT lpErrno) noexcept;
int stream_connect(Socket& s, const Endpoint& peer, LPINT lpErrno) noexcept;
int stream_shutdown(Socket& s, uint8_t bits, LPINT lpErrno) noexcept;
// SO_LINGER's wait before a blocking closesocket (on a non-blocking one,
// WSAEWOULDBLOCK while sent bytes are unacknowledged), then the close.
int stream_close(Socket& s, LPINT lpErrno) noexcept;
// Pushes TCP_NODELAY / SO_KEEPALIVE to a live connection.
void stream_options_changed(Socket& s) noexcept;
// SIO_GET_EXTENSION_FUNCTION_POINTER: the function for `guid`, or null.
void* extension_function(const GUID& guid) noexcept;

} // namespace ringsock::api
