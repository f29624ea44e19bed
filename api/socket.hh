// A socket as both sides see it: the application threads that post to it
// and the home engine that owns its receive path.
//
// Ownership: fields under "engine" are touched only by the home engine (the
// lwIP engine for `lwip_pcb`). Fields under "any thread" are atomics, or
// are written before the socket is handed to its engine (bind) and only
// read afterwards. Socket objects are never freed while the stack runs:
// a closed socket's slot is reused under a new generation, so a stale
// SOCKET value is refused and a late message finds memory that is still a
// Socket.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "api/completion_ring.hh"
#include "api/endpoint.hh"
#include "ringsock/winsock2.h"

struct rte_mbuf;

namespace ringsock::api {

class CompletionPort;
class ApcQueue;
class Event;
struct Socket;

// SO_KEEPALIVE as Windows does it: the first probe after 2 hours without a
// segment from the peer, then probes 1 s apart; the connection is lost
// after 10 unanswered (fixed since Windows Vista). SIO_KEEPALIVE_VALS sets
// the first two per socket.
inline constexpr uint32_t kDefaultKeepaliveIdleMs = 2 * 60 * 60 * 1000;
inline constexpr uint32_t kDefaultKeepaliveIntervalMs = 1000;
inline constexpr uint32_t kKeepaliveProbes = 10;

// A datagram waiting in a socket's receive queue: the mbuf itself, no copy.
struct QueuedDatagram {
    rte_mbuf* mbuf;
    uint16_t payload_offset; // from rte_pktmbuf_mtod
    uint16_t payload_length;
    Endpoint from;
};

// How a finished request tells its issuer.
enum class Notify : uint8_t {
    event, // write the OVERLAPPED, set hEvent if it is an event
    port,  // write the OVERLAPPED, queue a packet on the socket's completion port
    apc,   // write the OVERLAPPED, queue the routine to the initiating thread
    sync,  // a blocking call waits on the OVERLAPPED's status (its own, on its stack)
};

enum class RequestKind : uint8_t { recv, send, accept, connect };

// One posted receive or send. Lives in the runtime's request pool from the
// post until its completion; the application's WSABUF array is copied in
// (the pages let callers pass a stack array).
struct Request {
    static constexpr uint32_t kInlineBuffers = 8;

    RequestKind kind = RequestKind::recv;
    Notify notify = Notify::event;
    bool peek = false;    // MSG_PEEK (non-overlapped receive only)
    bool no_wait = false; // non-blocking: complete with WSAEWOULDBLOCK rather than wait
    Socket* socket = nullptr;
    uint32_t socket_generation = 0;
    unsigned engine = 0; // the engine that completes it
    LPWSAOVERLAPPED overlapped = nullptr;
    Event* event = nullptr;
    CompletionPort* port = nullptr;
    ULONG_PTR key = 0;
    ApcQueue* apc = nullptr;
    LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = nullptr;
    sockaddr* from = nullptr; // receive: written at completion
    LPINT fromlen = nullptr;
    WSAMSG* message = nullptr;         // WSARecvMsg's: control data and flags written at completion
    Endpoint to;                       // send
    bool fast = false;                 // send: built and sent by the home engine (udp_frame.hh)
    uint8_t traffic_class = 0;         // send: the TOS (traffic class) byte; WSASendMsg's IP_ECN sets its ECN
    std::array<uint8_t, 6> next_hop{}; // fast send: the next hop's MAC, from the neighbour cache
    WSABUF* buffers = inline_buffers;
    uint32_t buffer_count = 0;
    uint64_t total_length = 0;
    // Stream sockets: bytes received into, or taken from, the buffers so
    // far; MSG_WAITALL; AcceptEx's socket and output buffer layout (the
    // buffer is buffers[0]: accept_data bytes of first data, then the
    // local and the remote address blocks).
    uint64_t done = 0;
    bool wait_all = false;
    Socket* accept_socket = nullptr;
    uint32_t accept_generation = 0;
    uint32_t accept_data = 0;
    uint32_t accept_local = 0;
    uint32_t accept_remote = 0;
    DWORD result_error = 0; // an immediate completion's result, for Op::notify
    DWORD result_bytes = 0;
    DWORD result_flags = 0;
    Request* next = nullptr; // engine's FIFO link
    uint32_t pool_index = 0;
    WSABUF inline_buffers[kInlineBuffers]{};
    std::vector<WSABUF> spill; // more than kInlineBuffers: reused, grows once

    // Copies the caller's array. Returns false when `count` buffers cannot
    // be held (allocation failed).
    bool capture(const WSABUF* bufs, uint32_t count) noexcept;
};

// A multicast group a socket joined (RFC 3678's filter modes): from any
// source but those listed (IP_ADD_MEMBERSHIP, then IP_BLOCK_SOURCE), or
// from the sources listed only (IP_ADD_SOURCE_MEMBERSHIP).
struct Membership {
    Endpoint group;
    std::vector<Endpoint> sources;
    bool any_source = true;                        // the sources are blocked ones; else the only ones received
    static constexpr std::size_t kMaxSources = 64; // bounds the engine's scan per datagram

    bool lists(const Endpoint& source) const noexcept
    {
        return std::any_of(sources.begin(), sources.end(),
                           [&](const Endpoint& listed) { return listed.same_address(source); });
    }
};

// A control record a socket asks WSARecvMsg for, by the option's family:
// an IPv4 datagram on a dual-stack socket that asked only IPv6's gets
// IPv6's record (its address mapped).
enum MessageRecord : uint8_t {
    kIpv4PacketInfo = 1 << 0, // IP_PKTINFO: IN_PKTINFO
    kIpv6PacketInfo = 1 << 1, // IPV6_PKTINFO: IN6_PKTINFO
    kIpv4HopLimit = 1 << 2,   // IP_HOPLIMIT: an IP_TTL record
    kIpv6HopLimit = 1 << 3,   // IPV6_HOPLIMIT
    kIpv4Ecn = 1 << 4,        // IP_ECN
    kIpv6Ecn = 1 << 5,        // IPV6_ECN
};

struct Socket {
    // ---- any thread ----------------------------------------------------
    std::atomic<uint32_t> generation{0};
    uint32_t index = 0;
    std::atomic<bool> open{false};
    uint8_t family = 4;
    int type = 2;                   // SOCK_DGRAM (the same value in Winsock and the C library)
    bool overlapped_capable = true; // created with WSA_FLAG_OVERLAPPED
    std::atomic<bool> nonblocking{false};
    std::atomic<uint32_t> rcvtimeo_ms{0};
    // IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: 1 keeps a group's datagrams
    // on the link unless the application asks for more (Winsock's default).
    std::atomic<uint8_t> multicast_ttl{1};
    // IP_TTL / IPV6_UNICAST_HOPS: everything else the socket sends, its
    // datagrams and its TCP segments (RFC 5082's TTL security sets 255).
    static constexpr uint8_t kDefaultUnicastTtl = 64;
    std::atomic<uint8_t> unicast_ttl{kDefaultUnicastTtl};
    // IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP, Winsock's way: whether this
    // socket receives the process's own multicast sends (a receive-side
    // choice on Windows, unlike Unix's send side). On by default.
    std::atomic<bool> multicast_loop{true};
    // IP_MULTICAST_IF / IPV6_MULTICAST_IF as set (an IPv4 address or
    // 0.0.0.x index in network order, an IPv6 interface index), so that
    // getsockopt reads back what was set. Only the one interface passes the
    // check, so sends need not read it.
    std::atomic<uint32_t> multicast_interface{0};
    // The control records WSARecvMsg writes with each datagram, a
    // MessageRecord bit each (IP_PKTINFO, IP_HOPLIMIT, IP_ECN and IPv6's).
    std::atomic<uint8_t> message_records{0};
    std::atomic<int32_t> rcvbuf{65536};
    std::atomic<int32_t> sndbuf{65536};
    bool reuseaddr = false;
    bool port_share = false;
    bool ephemeral_bind = false; // bind chose the port (port 0 asked): an active open may move it
    // IPV6_V6ONLY off, set before bind (under the runtime's mutex, so the
    // engines, which see the socket only once bound, read it plainly): an
    // IPv6 socket bound to :: also takes IPv4 and names its peers
    // ::ffff:a.b.c.d. Bound to ::ffff:a.b.c.d it is IPv4 inside (`local`
    // has family 4).
    bool dual_stack = false;
    unsigned home_engine = 0;
    std::atomic<bool> bound{false};
    Endpoint local;
    std::atomic<bool> connected{false};
    Endpoint peer;
    std::atomic<uint8_t> shutdown_how{0}; // bit 0: receive, bit 1: send
    std::atomic<CompletionPort*> port{nullptr};
    ULONG_PTR port_key = 0;
    std::atomic<uint8_t> notification_modes{0}; // FILE_SKIP_*
    // The counters both sides write once per datagram each get a cache line
    // of their own, away from what the engine only reads (above) and from
    // each other: sharing one cost the engine a miss on every field it read
    // after the application's last write (ringsock-bench-api-rx's profile).
    // Requests posted, not yet completed: a datagram socket's receives (a
    // stream socket's every request), which the immediate receive must not
    // overtake, and apart from them its sends, which take nothing from the
    // queue and so hold up no receive. Close waits for both.
    alignas(64) std::atomic<uint32_t> outstanding{0};
    alignas(64) std::atomic<uint32_t> sends_outstanding{0};
    // Application threads inside the queue right now (immediate receive).
    // With `outstanding` it forms a Dekker pair: the engine leaves the
    // queue to them while this is non-zero, they leave it to the engine
    // while requests are outstanding, so a queue has one reader at a time
    // apart from immediate receivers among themselves (which dequeue with
    // the ring's multi-consumer path). With `open` it forms a second pair:
    // closesocket waits for it to reach zero before it releases the port
    // association, which an immediate receive pushes its completion on.
    alignas(64) std::atomic<uint32_t> app_consumers{0};
    // Set for good by the first receive made on the socket's own engine (a
    // poller run to completion, ringsock_poll_on_engine): from then on
    // application threads leave the queue to that engine (their receives
    // are posted to it), so that, once it has seen app_consumers at zero
    // after setting this (a Dekker pair), it takes datagrams with the
    // ring's single-consumer path and counts their bytes with plain
    // stores: no locked instruction per datagram, where nobody races it.
    std::atomic<bool> engine_consumes{false};
    // Stream sockets: what lwIP holds readable (the engine stores it).
    // Datagram sockets count the two ends apart instead: bytes ever queued,
    // written by the one engine that fills the queue, and bytes ever taken,
    // by whoever takes; the difference is what waits.
    alignas(64) std::atomic<int64_t> queued_bytes{0};
    alignas(64) std::atomic<int64_t> enqueued_bytes{0};
    alignas(64) std::atomic<int64_t> dequeued_bytes{0};
    alignas(64) std::atomic<uint64_t> rcv_drops{0};
    std::vector<Membership> groups; // joined multicast groups (control path, under the runtime's mutex)
    // Stream sockets (SOCK_STREAM). `connected` above means established.
    std::atomic<bool> listening{false};
    std::atomic<bool> connecting{false};
    std::atomic<int32_t> linger_seconds{-1}; // SO_LINGER: -1 off (graceful close in the background)
    std::atomic<bool> nodelay{false};
    std::atomic<bool> keepalive{false};
    // SIO_KEEPALIVE_VALS; Windows' defaults until set.
    std::atomic<uint32_t> keepalive_idle_ms{kDefaultKeepaliveIdleMs};
    std::atomic<uint32_t> keepalive_interval_ms{kDefaultKeepaliveIntervalMs};
    std::atomic<int32_t> stream_error{0};   // SO_ERROR: why the connection failed (read once)
    std::atomic<int32_t> stream_failure{0}; // the same, kept: later receives and sends fail with it at once
    OVERLAPPED background{};                // a non-blocking connect's request
    std::unique_ptr<CompletionRing<QueuedDatagram>> queue_ =
        std::make_unique<CompletionRing<QueuedDatagram>>(kQueueSlots);
    // Datagrams waiting for a receive, as their mbufs. Sized at bind from
    // SO_RCVBUF (size_queue_for); the same ring for the socket's life after.
    CompletionRing<QueuedDatagram>& queue() noexcept { return *queue_; }
    const CompletionRing<QueuedDatagram>& queue() const noexcept { return *queue_; }
    // At bind, before the engine or a receiver can reach the queue: slots
    // for `rcvbuf` bytes of minimum-size datagrams (one per
    // kRcvbufBytesPerSlot bytes, a power of two, kQueueSlots at least and
    // kMaxQueueSlots at most), so that a larger SO_RCVBUF buffers more
    // small datagrams and not only more large ones. False when the ring
    // cannot be had (the socket keeps the one it has).
    bool size_queue_for(int32_t rcvbuf) noexcept;

    // ---- engine --------------------------------------------------------
    alignas(64) Request* fifo_head = nullptr;
    // dequeued_bytes as the engine last read it: it only grows, so an old
    // value overstates what waits, and the engine reads the consumers'
    // cache line only when the old value says SO_RCVBUF is full.
    int64_t dequeued_seen = 0;
    // engine_consumes is set and no application thread was inside the
    // queue after it: this engine is the queue's only consumer.
    bool engine_takes_alone = false;
    Request* fifo_tail = nullptr;
    Socket* next_on_port = nullptr;
    // The multicast groups whose datagrams this socket receives: the home
    // engine's copy of `groups` (Op::filter_group).
    std::vector<Membership> member_groups;
    void* lwip_pcb = nullptr; // lwIP engine's
    void* stream = nullptr;   // lwIP engine's: the stream socket's connection (api/stream_engine.cc)
    bool in_table = false;
    // The engine's burst in which this socket was last found holding its
    // share of a short pool: its queue's length (the consumers' line) is
    // read at most once a burst, not once a datagram.
    uint32_t over_share_in_burst = 0;

    static constexpr uint32_t kQueueSlots = 1024; // datagrams at least, whatever SO_RCVBUF allows in bytes
    static constexpr uint32_t kMaxQueueSlots = 65536;
    static constexpr uint32_t kRcvbufBytesPerSlot = 64;
    static constexpr uint32_t kMaxOutstanding = 4096;

    static constexpr int kStream = 1; // SOCK_STREAM (the same value in Winsock and the C library)
    bool is_stream() const noexcept { return type == kStream; }
    // The count a request of this socket is in (see `outstanding`).
    std::atomic<uint32_t>& outstanding_for(bool send) noexcept
    {
        return send && !is_stream() ? sends_outstanding : outstanding;
    }
    bool requests_outstanding() const noexcept
    {
        return outstanding.load(std::memory_order_acquire) != 0 ||
               sends_outstanding.load(std::memory_order_acquire) != 0;
    }
    // Whether the bound socket sends and receives `ip_family` (4 or 6).
    bool carries(uint8_t ip_family) const noexcept
    {
        return local.family == ip_family || (ip_family == 4 && dual_stack && local.family == 6 && local.is_any());
    }
    // FIONREAD: bytes waiting to be received.
    int64_t bytes_waiting() const noexcept
    {
        if (is_stream()) return queued_bytes.load(std::memory_order_relaxed);
        const int64_t taken = dequeued_bytes.load(std::memory_order_relaxed);
        return enqueued_bytes.load(std::memory_order_relaxed) - taken;
    }
    bool shut_for_receive() const noexcept { return (shutdown_how.load(std::memory_order_acquire) & 1) != 0; }
    bool shut_for_send() const noexcept { return (shutdown_how.load(std::memory_order_acquire) & 2) != 0; }
    SOCKET handle() const noexcept;
};

// SOCKET values: index and generation, never INVALID_SOCKET or 0.
inline SOCKET socket_handle(uint32_t index, uint32_t generation) noexcept
{
    return (static_cast<SOCKET>(generation) << 24) | (static_cast<SOCKET>(index) + 1);
}
inline SOCKET Socket::handle() const noexcept
{
    return socket_handle(index, generation.load(std::memory_order_relaxed));
}

} // namespace ringsock::api
