// Stream sockets on lwIP's TCP: the lwIP engine's part of every SOCK_STREAM
// socket. Each socket's connection (or listener) lives here, with its
// posted receives, sends, accepts and connect, and WSARecv's byte-stream
// rules are applied here: buffers filled in order until full, until the
// buffered bytes run out or the connection closes; completion with at
// least one byte (every byte under MSG_WAITALL); zero bytes for the peer's
// FIN, then at once for every later receive; WSAECONNRESET for a reset
// (WSAENETRESET when keep-alive probes went unanswered), on the pending
// receive and every later one. Bytes leave lwIP's window only
// as receives consume them. Sends complete once lwIP has taken all their
// bytes, in call order.
//
// Runs on the lwIP engine's lcore only (lwIP is single-threaded); the
// SocketEngine of engine 0 owns it and passes it the stream operations.
#pragma once

#include <memory>

#include "api/socket.hh"
#include "stack/lwip_tcp.hh"

namespace ringsock::api {

class SocketEngine;
struct SocketEngineCounters;
struct StreamState;

class StreamEngine {
public:
    explicit StreamEngine(SocketEngine& engine) : engine_(engine) {}
    ~StreamEngine();
    StreamEngine(const StreamEngine&) = delete;
    StreamEngine& operator=(const StreamEngine&) = delete;

    // bind: a pcb on the socket's local address. 0, WSAEADDRINUSE or WSAENOBUFS.
    int bind(Socket& s) noexcept;
    // listen: 0, WSAEINVAL (not bound here) or WSAENOBUFS.
    int listen(Socket& s, int backlog) noexcept;
    void post_recv(Request& r) noexcept;
    void post_send(Request& r) noexcept;
    void post_accept(Request& r) noexcept;
    void post_connect(Request& r) noexcept;
    // shutdown(SD_SEND): FIN after the sends already posted.
    void shutdown_send(Socket& s) noexcept;
    // TCP_NODELAY and SO_KEEPALIVE onto the connection.
    void apply_options(Socket& s) noexcept;
    // Whether every byte sent has been acknowledged (SO_LINGER's wait).
    bool drained(Socket& s) noexcept;
    // A blocking receive's SO_RCVTIMEO: completes it with `error` if still
    // pending. True when found.
    bool cancel(Socket& s, LPWSAOVERLAPPED target, DWORD error) noexcept;
    // closesocket: every outstanding request completes aborted; the
    // connection closes gracefully, or with RST under SO_LINGER {1, 0}; a
    // listener's unaccepted connections are reset.
    void close(Socket& s) noexcept;

    // For StreamState's lwIP events.
    void connected(StreamState& st) noexcept;
    void readable(StreamState& st) noexcept;
    void writable(StreamState& st) noexcept;
    // lwIP ended the connection: RST, retransmissions or keep-alives gave up.
    void failed(StreamState& st, stack::TcpFailure why) noexcept;
    // Both FINs acknowledged: lwIP freed the pcb of a connection that ended well.
    void finished(StreamState& st) noexcept;
    // Throws std::bad_alloc when the backlog cannot grow (`child` is then reset).
    void incoming(StreamState& listener, std::unique_ptr<StreamState> child);
    SocketEngineCounters& counters() noexcept;

private:
    void serve_receives(StreamState& st) noexcept;
    void serve_first_data(StreamState& st) noexcept;
    void pump_sends(StreamState& st) noexcept;
    void match_accepts(StreamState& st) noexcept;
    void abort_all(StreamState& st, DWORD error) noexcept;
    void finish(Request& r, DWORD error, DWORD bytes) noexcept;

    SocketEngine& engine_;
};

} // namespace ringsock::api
