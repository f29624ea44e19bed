// One TCP connection or listener on lwIP's raw API, behind types free of
// lwIP's, so the socket layer never includes an lwIP header. The
// connection keeps what lwIP delivered until the socket layer consumes it
// and only then opens the window (tcp_recved), so a reader that stops
// posting receives slows the sender instead of losing data. Everything
// here runs on the lwIP engine's lcore, callbacks included.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "stack/tcp_received.hh"

struct tcp_pcb;

namespace ringsock::stack {

struct TcpEndpoint {
    // A dual-stack socket's local wildcard: any address of either family.
    static constexpr uint8_t kEitherFamily = 0;

    uint8_t family = 4;             // 4 or 6; kEitherFamily (a local address only)
    std::array<uint8_t, 16> addr{}; // network order; all zero: any
    uint16_t port = 0;              // host order
};

// Why lwIP ended a connection on its own (it has freed the pcb).
enum class TcpFailure : uint8_t {
    reset,          // the peer sent RST (while connecting: refused)
    aborted,        // retransmissions gave up (while connecting: timed out)
    keepalive_lost, // keep-alive probes went unanswered with nothing else outstanding
    closed,         // not a failure: both FINs were acknowledged (the bytes held stay readable)
};

class TcpConnection;

class TcpConnectionEvents {
public:
    virtual void on_connected(TcpConnection& c) noexcept = 0;
    virtual void on_readable(TcpConnection& c) noexcept = 0;               // bytes, or the peer's FIN, arrived
    virtual void on_writable(TcpConnection& c) noexcept = 0;               // the peer acknowledged data: room to send
    virtual void on_failed(TcpConnection& c, TcpFailure why) noexcept = 0; // the pcb is gone
    // A delivery refused for want of memory (tcp_received.hh): lwIP keeps
    // it and offers it again, dropping the data segments that arrive
    // meanwhile, so the sender will resend. Each offer refused counts.
    virtual void on_refused(TcpConnection&) noexcept {}

protected:
    ~TcpConnectionEvents() = default;
};

class TcpConnection {
public:
    // A fresh pcb for `family` (kEitherFamily: a dual-stack socket's, which
    // listens on both and connects to either); null when lwIP has none left.
    static std::unique_ptr<TcpConnection> create(uint8_t family);
    // Resets the connection if it is still open (close() first for FIN).
    ~TcpConnection();
    TcpConnection(const TcpConnection&) = delete;
    TcpConnection& operator=(const TcpConnection&) = delete;

    void set_events(TcpConnectionEvents* events) noexcept { events_ = events; }
    bool alive() const noexcept { return pcb_ != nullptr; }

    // False when lwIP has the address in use.
    bool bind(const TcpEndpoint& local) noexcept;
    // Starts the active open; on_connected or on_failed follows. False
    // when lwIP cannot start it (no route, no memory).
    bool connect(const TcpEndpoint& remote) noexcept;
    TcpEndpoint local() const noexcept;
    TcpEndpoint remote() const noexcept;

    // ---- receive ----
    uint64_t readable() const noexcept { return received_.readable(); }
    bool peer_closed() const noexcept { return fin_; }
    // Copies up to `max` readable bytes, oldest first, into `dest`
    // starting `dest_offset` bytes into it; consumes nothing.
    uint64_t copy_to(const MutableSegment* dest, std::size_t count, uint64_t dest_offset, uint64_t max) const noexcept;
    // Drops `n` bytes (at most readable()) and opens the window by as much.
    void consume(uint64_t n) noexcept;

    // ---- send ----
    // Bytes lwIP takes now (its send buffer and segment queue both count).
    uint32_t send_space() const noexcept;
    // Copies `length` bytes into lwIP's send queue; false when it has no
    // room. `more`: further bytes follow at once (no PSH yet).
    bool write(const void* data, uint16_t length, bool more) noexcept;
    void push() noexcept; // tcp_output
    // Sent but not acknowledged, or not sent yet.
    bool send_pending() const noexcept;
    // FIN after the queued bytes. False when lwIP could not queue it yet.
    bool shutdown_send() noexcept;

    void set_nodelay(bool on) noexcept;
    // IP_TTL / IPV6_UNICAST_HOPS: the TTL (hop limit) of every segment sent
    // from now on.
    void set_ttl(uint8_t ttl) noexcept;
    // SO_KEEPALIVE: after `idle_ms` without a segment from the peer, up to
    // `probes` probes `interval_ms` apart; when none is answered the
    // connection fails with keepalive_lost. lwIP checks every 500 ms.
    void set_keepalive(bool on, uint32_t idle_ms, uint32_t interval_ms, uint32_t probes) noexcept;

    // Graceful: lwIP sends what is queued, then FIN, and finishes the
    // close on its own; unread bytes make it a reset (as in the kernels).
    // No event follows either.
    void close() noexcept;
    // RST now; no event follows.
    void abort() noexcept;

private:
    friend class TcpListener;
    explicit TcpConnection(tcp_pcb* pcb);
    void attach_callbacks() noexcept;
    static void detach_callbacks(tcp_pcb* pcb) noexcept;

    static signed char on_recv(void* arg, tcp_pcb* pcb, pbuf* p, signed char err);
    static signed char on_sent(void* arg, tcp_pcb* pcb, uint16_t len);
    static signed char on_connected_cb(void* arg, tcp_pcb* pcb, signed char err);
    static void on_error(void* arg, signed char err);

    tcp_pcb* pcb_;
    TcpConnectionEvents* events_ = nullptr;
    bool fin_ = false;
    bool keepalive_ = false;
    // Payload bytes handed to lwIP and acknowledged by the peer: with none
    // outstanding, an abort on a keep-alive connection can only be lwIP's
    // keep-alive timer (a retransmission time-out needs unacknowledged data).
    uint64_t written_ = 0;
    uint64_t acknowledged_ = 0;
    TcpReceived received_; // delivered by lwIP, not yet consumed
};

class TcpListener {
public:
    class Events {
    public:
        // A connection finished its handshake. It counts against the
        // backlog until accepted() is called on it (or it is dropped).
        // False when it could not be kept (no memory): `c` is destroyed
        // then, which resets it.
        virtual bool on_incoming(TcpListener& l, std::unique_ptr<TcpConnection> c) noexcept = 0;

    protected:
        ~Events() = default;
    };

    // Turns the bound `connection` into a listener; null when lwIP refuses
    // (the connection is then unchanged).
    static std::unique_ptr<TcpListener> listen(TcpConnection& bound, uint8_t backlog, Events& events);
    ~TcpListener();
    TcpListener(const TcpListener&) = delete;
    TcpListener& operator=(const TcpListener&) = delete;

    // The application took `c`: it leaves the backlog.
    static void accepted(TcpConnection& c) noexcept;

    // IP_TTL on the listening socket: the TTL (hop limit) its connections
    // start with, their SYN-ACK included (our lwIP patch).
    void set_ttl(uint8_t ttl) noexcept;

private:
    TcpListener(tcp_pcb* pcb, Events& events);
    static signed char on_accept(void* arg, tcp_pcb* pcb, signed char err);

    tcp_pcb* pcb_;
    Events& events_;
};

} // namespace ringsock::stack
