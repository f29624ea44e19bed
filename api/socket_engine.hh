// The socket layer's part of one engine: the engine's socket table (by
// local port), delivery of fast-path datagrams to posted receives or to the
// socket's queue, the completions, the submission ring through which
// application threads reach the engine, the send fast path for its own
// sockets, and the hand-over of datagrams that belong to another engine
// (the socket's home, the flow's engine under software RSS, every engine
// with a member socket for multicast). The lwIP engine (index 0) also
// sends the datagrams the fast path cannot, keeps the neighbour cache
// filled from lwIP's ARP table, and joins multicast groups for everyone.
//
// Everything here runs on the engine's lcore except submit(), which any
// thread may call (a multi-producer SubmissionRing), and counters(). An
// application running on the engine's own lcore calls execute() directly.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "api/completion.hh"
#include "api/endpoint.hh"
#include "api/socket.hh"
#include "api/submission_ring.hh"
#include "dataplane/counters.hh"
#include "dataplane/engine.hh"
#include "stack/classifier.hh"
#include "stack/lwip_udp_reassembly.hh"

namespace ringsock::api {
class StreamEngine;
}

struct rte_mempool;
struct rte_ring;

namespace ringsock::stack {
class LwipInterface;
class SoftwareRss;
} // namespace ringsock::stack

namespace ringsock::api {

class Runtime;

// A call that waits for its engine's answer (bind, close, cancel, join).
struct ControlCall {
    std::atomic<bool> done{false};
    int result = 0;
    Endpoint group;                    // join/leave/filter_group
    uint16_t port = 0;                 // placement: the UDP port
    int16_t home = -1;                 // placement: the engine of the port's first socket, -1: none left
    uint64_t engines = 0;              // placement: engines holding a port-shared socket (bit per engine)
    uint64_t present = 0;              // placement: engines holding any socket on the port
    LPWSAOVERLAPPED target = nullptr;  // cancel
    DWORD cancel_error = 0;            // cancel: the status the cancelled request gets
    int value = 0;                     // listen: the backlog; drained: 1 when all acked; filter_group: 1 set, 0 drop
    void (*function)(void*) = nullptr; // call
    int (*poll)(void*) = nullptr;      // poll: run after every poll until nonzero
    void* context = nullptr;           // call, poll: the function's; filter_group: the Membership
};

// notify: a request that completed at once in the application's thread;
// the engine queues its port packet or completion routine into the ring
// reserved for it (the engine is those rings' one producer).
// placement: where a port's sockets live: its home engine (unicast that
// finds no socket here is handed there instead of going to lwIP), the
// engines whose port-shared sockets split its flows by software RSS (0: not
// spread), and every engine with a socket on it (multicast goes to each).
// filter_group: on the socket's home engine, set (or drop) the socket's
// Membership (`context`) of a group, whose datagrams it receives.
// call: run an application function on this engine (ringsock_run_on_engine).
// poll: run one after each of the engine's polls until it returns nonzero,
// answered then (ringsock_poll_on_engine); end_polls: answer every poller
// with WSAEINTR and run them no more (the last WSACleanup).
// listen, accept, connect, shutdown_send, stream_options, drained: stream
// sockets, on the lwIP engine (api/stream_engine.hh); recv, send, attach,
// detach and cancel reach it too for them.
enum class Op : uint32_t {
    recv,
    send,
    notify,
    attach,
    detach,
    cancel,
    join,
    leave,
    drop_sender,
    filter_group,
    placement,
    call,
    poll,
    end_polls,
    listen,
    accept,
    connect,
    shutdown_send,
    stream_options,
    drained,
};

struct Submission {
    Op op;
    uint32_t reserved_;
    Socket* socket;
    void* arg; // Request* (recv, send) or ControlCall*
};

struct alignas(dataplane::kCacheLine) SocketEngineCounters {
    dataplane::RelaxedCounter delivered;        // datagrams copied into posted buffers
    dataplane::RelaxedCounter queued;           // datagrams queued for a later receive
    dataplane::RelaxedCounter rcvbuf_drops;     // dropped: the socket's SO_RCVBUF was full
    dataplane::RelaxedCounter pool_short_drops; // dropped: the mbuf pool ran short and the socket held its share
    dataplane::RelaxedCounter no_socket;        // dropped: no socket here for the port/address
    dataplane::RelaxedCounter filtered;         // dropped: not from a connected socket's peer
    dataplane::RelaxedCounter completions;      // requests completed
    dataplane::RelaxedCounter sent;             // datagrams handed to lwIP
    dataplane::RelaxedCounter sent_fast;        // datagrams built and sent by this engine (next hop cached)
    dataplane::RelaxedCounter send_failures;    // lwIP refused (no memory, no route)
    dataplane::RelaxedCounter handed_over;      // datagrams passed to their socket's home engine
    dataplane::RelaxedCounter handover_full;    // dropped: the home engine's hand-over ring was full
    dataplane::RelaxedCounter rss_spread;       // of handed_over: sent to their flow's engine by software RSS
    dataplane::RelaxedCounter fanned_out;       // multicast copies handed to other engines with sockets on the port
    dataplane::RelaxedCounter fanout_no_mbuf;   // dropped: no mbuf to copy a multicast datagram for an engine
    dataplane::RelaxedCounter reassembled;      // datagrams lwIP put back together, routed to sockets
    dataplane::RelaxedCounter reassembled_full; // dropped: more reassembled datagrams than one poll takes
    // Stream sockets (lwIP's engine). states_made - states_freed: the
    // connections and listeners alive (each holds an lwIP pcb or its bytes).
    dataplane::RelaxedCounter stream_states_made;
    dataplane::RelaxedCounter stream_states_freed;
    dataplane::RelaxedCounter tcp_accepted;  // connections handed to accept/AcceptEx
    dataplane::RelaxedCounter tcp_connected; // active opens that completed
    dataplane::RelaxedCounter tcp_failed;    // connections ended by a reset or a time-out
    dataplane::RelaxedCounter tcp_refused;   // deliveries a connection had no memory for (lwIP offers them again)
};

class SocketEngine final : public dataplane::BurstHandler, public stack::UdpSink, public stack::ReassembledUdpSink {
public:
    // `lwip` only for the lwIP engine (index 0). Creates the submission ring.
    SocketEngine(Runtime& runtime, unsigned index, dataplane::Engine& engine, stack::Classifier& classifier,
                 stack::LwipInterface* lwip);
    ~SocketEngine() override;
    SocketEngine(const SocketEngine&) = delete;
    SocketEngine& operator=(const SocketEngine&) = delete;

    // Any engine: frames for sockets homed here, classified again on
    // arrival by this engine's classifier, in one enqueue. Takes every
    // mbuf; those the ring has no room for are freed and counted on `from`.
    void hand_over(rte_mbuf* const* frames, uint32_t n, SocketEngineCounters& from) noexcept;

    // Any thread. False only if the ring is full (it is sized for every
    // request the pool holds plus control calls, so: never in practice).
    bool submit(const Submission& s) noexcept;
    // On this engine's lcore (or from submit's drain).
    void execute(const Submission& s) noexcept;
    bool on_own_lcore() const noexcept;

    // UdpSink: fast-path datagrams for ports bound on this engine.
    void on_udp(stack::UdpDatagram* d, uint16_t n) override;
    // BurstHandler: nothing per burst (the classifier takes it); per
    // iteration, the submissions and sockets waiting for an application
    // thread to leave their queue.
    uint16_t on_burst(dataplane::Engine&, dataplane::RxQueueRef, rte_mbuf**, uint16_t n) override { return n; }
    void on_poll(dataplane::Engine&) override;

    // ReassembledUdpSink (lwIP's engine): datagrams lwIP reassembled for
    // ports with a socket on any engine, routed on the next poll as if the NIC
    // had delivered them whole.
    bool wants_udp_port(uint16_t port) const noexcept override;
    void on_reassembled(rte_mbuf* frame) noexcept override;

    // Closing: completes everything still queued or pending with
    // WSA_OPERATION_ABORTED and frees queued datagrams. Engine stopped.
    void abort_everything() noexcept;

    // Software RSS for a port with fewer RX queues than engines (see
    // stack/software_rss.hh); null when the NIC spreads flows itself. Set
    // before the engine starts.
    void set_software_rss(const stack::SoftwareRss* rss) noexcept { rss_ = rss; }

    // The pool this engine's RX queues refill from, and how many free
    // mbufs its ring (below the per-thread caches) must keep for them:
    // with fewer, datagrams are queued only on sockets that hold fewer
    // than kQueuedWhilePoolShort, so one socket nobody reads cannot take
    // the mbufs every other socket, ARP and lwIP receive with. Set before
    // the engine starts; without it, queues are bounded by SO_RCVBUF alone.
    void set_rx_pool(rte_mempool* pool, unsigned floor) noexcept
    {
        rx_pool_ = pool;
        pool_floor_ = floor;
    }
    static constexpr uint32_t kQueuedWhilePoolShort = 32;

    // The lwIP engine's interface, made on its lcore once the engine starts.
    void set_lwip(stack::LwipInterface* lwip) noexcept { lwip_ = lwip; }
    unsigned index() const noexcept { return index_; }
    const SocketEngineCounters& counters() const noexcept { return counters_; }
    SocketEngineCounters& counters() noexcept { return counters_; } // this engine's lcore only

    // Completes `r` (its engine is this one) and counts it.
    void finish(Request& r, DWORD error, DWORD bytes, DWORD flags) noexcept;
    // A socket that came into being here (accepted): torn down with the rest.
    void adopt(Socket& s) noexcept { attached_.push_back(&s); }

    // The engine's last handler: pushes the port completions that handlers
    // after this one (lwIP's timers and callbacks) staged, in the same poll.
    dataplane::BurstHandler& staged_pusher() noexcept { return staged_pusher_; }

private:
    void execute_stream(const Submission& s) noexcept;
    void attach(Socket& s) noexcept;
    void detach(Socket& s) noexcept;
    void post_recv(Request& r) noexcept;
    void post_send(Request& r) noexcept;
    void post_send_fast(Request& r) noexcept;
    // lwIP engine: copies what lwIP's ARP table knows into the neighbour
    // cache, for `dest`'s next hop after a send, and for every cached
    // entry once a second (asking lwIP to re-resolve those it lost).
    void learn_next_hop(const Endpoint& dest) noexcept;
    void refresh_neighbours() noexcept;
    void cancel(Socket& s, ControlCall& call) noexcept;
    // Completes the socket's queued requests from its datagrams, in order.
    // `answer_no_waits`: non-blocking receives may wait behind the first
    // request; answer them (refuse_no_waits_behind) if it must wait.
    void serve(Socket& s, bool answer_no_waits = false) noexcept;
    // Answers WSAEWOULDBLOCK to every non-blocking receive queued behind
    // `waiting`, the socket's first request, which waits for a datagram.
    void refuse_no_waits_behind(Socket& s, Request& waiting) noexcept;
    void deliver(Socket& s, const stack::UdpDatagram& d) noexcept;
    Socket* lookup(const stack::UdpDatagram& d) noexcept;
    DWORD copy_datagram(Request& r, rte_mbuf* m, uint32_t offset, uint32_t length, const Endpoint& from,
                        DWORD& bytes) noexcept;
    void answer(ControlCall& call, int result) noexcept;
    // The application's pollers (ringsock_poll_on_engine), each run after
    // every poll until it returns nonzero; their waiting callers are
    // answered then, with WSAEINTR at the last WSACleanup, or with
    // WSAENETDOWN when the engine stops first.
    void run_pollers() noexcept;
    static constexpr std::size_t kMaxPollers = 8;
    std::vector<ControlCall*> pollers_;

    SocketEngineCounters counters_;
    Runtime& runtime_;
    unsigned index_;
    dataplane::Engine& engine_;
    stack::Classifier& classifier_;
    stack::LwipInterface* lwip_;
    void take_handed_over() noexcept;
    void take_reassembled() noexcept;
    void miss(const stack::UdpDatagram& d) noexcept;
    // Fast-path datagrams. First sight (from the NIC, or reassembled by
    // lwIP): `first_sight`, so they may be handed to the home engine, their
    // flow's engine, or every engine with a member socket. Handed over
    // already: delivered here or dropped, never passed on again (two
    // engines could otherwise hand one datagram back and forth).
    void route(stack::UdpDatagram* d, uint16_t n, bool first_sight) noexcept;
    int flow_owner(const stack::UdpDatagram& d) const noexcept;
    void drop_unrouted(const stack::UdpDatagram& d) noexcept;
    // Frames route() hands to other engines wait here, per engine, and go
    // as one burst each when route() ends (or when 32 wait for one): one
    // multi-producer enqueue, a compare-and-swap on the ring's shared
    // lines, per burst instead of per frame.
    static constexpr uint32_t kHandOverBurst = 32;
    struct HandOvers {
        uint32_t count = 0;
        std::array<rte_mbuf*, kHandOverBurst> frames{};
    };
    void stage_hand_over(unsigned engine, rte_mbuf* m) noexcept;
    void flush_hand_overs() noexcept;
    std::unique_ptr<HandOvers[]> hand_overs_; // by engine index
    uint64_t hand_overs_waiting_ = 0;         // bit per engine with frames in hand_overs_
    // A multicast datagram from the NIC: a copy to every other engine with
    // a socket on the port. True when some went (the datagram is then not
    // a miss here even with no socket of ours).
    bool fan_out(const stack::UdpDatagram& d) noexcept;

    std::unique_ptr<StreamEngine> streams_; // the lwIP engine's stream sockets
    SubmissionRing<Submission> submissions_;
    rte_ring* inbound_ = nullptr;   // frames other engines hand over (MP/SC)
    std::vector<int16_t> forward_;  // by port: the engine owning its sockets, -1: none elsewhere
    std::vector<uint64_t> spread_;  // by port: engines whose port-shared sockets split its flows
    std::vector<uint64_t> present_; // by port: engines with a socket on it
    const stack::SoftwareRss* rss_ = nullptr;
    // Whether the RX pool is short, read at most once per burst (a read of
    // the pool ring's two tails, which every core writes), and only by a
    // burst that queues.
    bool pool_short() noexcept;
    // With the pool short: whether `s` already holds kQueuedWhilePoolShort.
    bool holds_its_share(Socket& s) noexcept;
    rte_mempool* rx_pool_ = nullptr;
    unsigned pool_floor_ = 0;
    bool pool_checked_ = false;
    bool pool_was_short_ = false;
    uint32_t burst_serial_ = 0;           // route() calls, for Socket::over_share_in_burst
    uint16_t next_ip_id_ = 0;             // fast-path IPv4 identification
    uint64_t next_neighbour_refresh_ = 0; // TSC
    uint32_t polls_since_refresh_check_ = 0;
    std::vector<Socket*> by_port_;  // 65536 chains of sockets bound here
    std::vector<Socket*> deferred_; // sockets whose receives wait for an application consumer to leave
    std::vector<Socket*> serving_;  // deferred_ being served this iteration
    std::vector<Socket*> attached_; // every socket in the table (teardown)
    static constexpr std::size_t kMaxReassembled = 32;
    std::vector<rte_mbuf*> reassembled_; // from lwIP, for the next poll

    // Port completions are queued in order and pushed at the end of the
    // poll, or when 32 wait: one push, fence and wake per port per poll
    // instead of per completion. A completed request's
    // socket hears of it (`outstanding`) only after the push, so a receive
    // completing at once in an application thread, which waits for
    // `outstanding` to reach zero, never queues ahead of it.
    static constexpr uint32_t kStagedCompletions = 32;
    // stage() fills the next slot, commit_staged() makes it part of the
    // next push (pushing once 32 wait).
    void stage(CompletionPort* port, const Completion& c, std::atomic<uint32_t>& outstanding) noexcept;
    void commit_staged() noexcept;
    void push_staged() noexcept;
    std::array<CompletionPort*, kStagedCompletions> staged_ports_{};
    std::array<Completion, kStagedCompletions> staged_{};
    std::array<std::atomic<uint32_t>*, kStagedCompletions> staged_outstanding_{};
    uint32_t staged_count_ = 0;
    struct StagedPusher final : dataplane::BurstHandler {
        explicit StagedPusher(SocketEngine& owner) noexcept : owner(owner) {}
        uint16_t on_burst(dataplane::Engine&, dataplane::RxQueueRef, rte_mbuf**, uint16_t n) override { return n; }
        void on_poll(dataplane::Engine&) override { owner.push_staged(); }
        SocketEngine& owner;
    };
    StagedPusher staged_pusher_{*this};
};

} // namespace ringsock::api
