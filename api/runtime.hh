// The running stack behind the Winsock calls: the dataplane with one engine
// per worker lcore, a classifier and a SocketEngine on each, lwIP on engine
// 0, the socket table and the request pool. Made by the first WSAStartup
// from the configured profile; kept until the process exits, because EAL
// starts once per process (a WSACleanup that ends the last start-up closes
// every socket instead).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/request_pool.hh"
#include "api/socket.hh"
#include "api/socket_engine.hh"
#include "api/wake_hub.hh"
#include "dataplane/dataplane.hh"
#include "dataplane/telemetry.hh"
#include "stack/classifier.hh"
#include "stack/interface_config.hh"
#include "stack/neighbour_cache.hh"
#include "stack/port_affinity.hh"
#include "stack/software_rss.hh"
#include "stack/lwip_handoff.hh"

struct rte_mempool;

namespace ringsock::api {

class WakeHub;

// What ringsock_configure stored, or the environment's RINGSOCK_PROFILE.
struct StartupConfig {
    std::string profile_path;
    std::vector<std::string> overrides;
};

class Runtime {
public:
    static constexpr uint32_t kMaxSockets = 65536;
    static constexpr uint32_t kRequests = 16384;

    // Throws std::exception with the reason (the profile's file and key,
    // EAL's or the port's complaint).
    explicit Runtime(const StartupConfig& config);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    unsigned engine_count() const noexcept { return static_cast<unsigned>(engines_.size()); }
    SocketEngine& engine(unsigned i) noexcept { return *engines_[i]; }
    SocketEngine& lwip_engine() noexcept { return *engines_[0]; }
    RequestPool& requests() noexcept { return requests_; }
    WakeHub& hub() noexcept;
    const stack::LwipInterfaceConfig& interface() const noexcept { return interface_; }
    // eal.register_application_threads: whether a receiving or sending
    // application thread registers with EAL for an mbuf cache.
    bool registers_application_threads() const noexcept { return register_application_threads_; }

    // Sockets. open_socket: null when kMaxSockets are open.
    Socket* open_socket(uint8_t family, int type, bool overlapped);
    Socket* find(SOCKET handle) noexcept;
    // Completes everything the socket has outstanding with
    // WSA_OPERATION_ABORTED, unbinds it and frees its slot.
    void close_socket(Socket& s);
    void close_all_sockets();
    // Ends every engine's pollers (ringsock_poll_on_engine): their callers
    // return WSAEINTR, and none runs after this returns.
    void end_pollers();
    // Whether the caller runs on an engine's lcore (ringsock_run_on_engine).
    // Control calls refuse there: they take control_mutex(), whose holder
    // may be waiting for this very engine.
    bool on_an_engine() const noexcept;
    // Serialises bind/close/option bookkeeping: the control path, never
    // the engines' loop.
    std::mutex& control_mutex() noexcept { return control_; }
    // Whether `local` may be bound by `s` (address in use otherwise).
    bool may_bind(const Socket& s, const Endpoint& local) const;
    // A free port for `s`. For a stream socket's active open to `peer`,
    // where the NIC spreads flows over several queues, one whose replies
    // land on a queue of lwIP's engine (no hand-off), else any free one.
    uint16_t ephemeral_port(const Socket& s, const Endpoint* peer = nullptr);
    // Whether replies to `s` on `port` from `peer` land on lwIP's engine
    // (always, where the NIC does not spread flows).
    bool port_lands_home(const Socket& s, uint16_t port, const Endpoint& peer) const noexcept;
    uint64_t affine_ports() const noexcept { return affine_ports_.load(std::memory_order_relaxed); }
    uint64_t affinity_fallbacks() const noexcept { return affinity_fallbacks_.load(std::memory_order_relaxed); }
    void note_bound(Socket& s);
    void forget_bound(Socket& s);
    // After a bind or close on `port`: tells every engine where the port's
    // sockets live: the home engine (the first bound socket's), which
    // unicast datagrams landing elsewhere are handed to; which engines hold
    // one (multicast reaches each); and which port-shared ones split its
    // flows by software RSS (when the port has fewer RX queues than
    // engines). Caller holds the control mutex.
    void update_placement(uint16_t port);

    // The UDP send fast path. Any thread: true, with the next hop's MAC,
    // when a datagram of `total` bytes from `s` to `dest` can be built and
    // sent by the socket's home engine (unicast, fits the MTU and one
    // mbuf, a source address known, next hop cached); otherwise lwIP
    // sends it.
    bool fast_send_mac(const Socket& s, const Endpoint& dest, uint64_t total, stack::MacAddress& mac) const noexcept;
    // The IPv4 next hop for `dest` (itself on our subnet, else the
    // gateway); false when there is none or it is not unicast.
    bool next_hop(const Endpoint& dest, stack::Ipv4Address& hop) const noexcept;
    // Whether the IPv6 fast path may send to `dest`: unicast, and neither
    // loopback, unspecified nor IPv4-mapped (lwIP's to refuse or handle).
    static bool ipv6_fast_destination(const Endpoint& dest) noexcept;
    // The IPv6 source for a datagram from `s` to `dest`: the socket's own
    // address when bound to one, else the one of `dest`'s scope, as lwIP
    // chooses (link-local for link-local, else the static address).
    // False when there is none (no static address): lwIP's to decide.
    bool ipv6_source(const Socket& s, const Endpoint& dest, stack::Ipv6Address& source) const noexcept;
    // Whether `address` (of `family`) is one of the interface's: IPv4, the
    // static IPv6 or the link-local one.
    bool is_own_address(uint8_t family, const std::array<uint8_t, 16>& address) const noexcept;
    stack::Ipv4NeighbourCache& ipv4_neighbours() noexcept { return ipv4_neighbours_; }
    stack::Ipv6NeighbourCache& ipv6_neighbours() noexcept { return ipv6_neighbours_; }
    // Whether the port sums these for the fast path's frames.
    bool offloads_ipv4_checksum() const noexcept { return offload_ipv4_; }
    bool offloads_udp_checksum() const noexcept { return offload_udp_; }
    rte_mempool* tx_pool(unsigned engine) const noexcept { return tx_pools_[engine]; }

    // Runs `call` on engine `engine` and waits for its answer.
    int control(unsigned engine, Op op, Socket* socket, ControlCall& call);

    // Writes the OVERLAPPED and notifies as the request asked; gives the
    // request back. `engine`: the completing engine, whose rings were
    // reserved at post time. A port completion is pushed at once here;
    // SocketEngine::finish stages its own instead (write_result), pushing
    // them per poll and only then telling the socket.
    void complete(Request& r, DWORD error, DWORD bytes, DWORD flags, unsigned engine) noexcept;
    // As complete(), notifying nobody: for a port request whose completion
    // the engine queues itself (SocketEngine's staged pushes).
    void write_result(Request& r, DWORD error, DWORD bytes, DWORD flags, unsigned engine) noexcept;
    // Engine `engine` gives a request back (in its batch).
    void give_back(Request& r, unsigned engine) noexcept { requests_.give_back(returns_[engine], &r); }
    // For a request that completed at once in its caller (result_* set,
    // OVERLAPPED already written): its completion routine only (a port
    // packet the caller pushes itself, provider.cc's complete_at_once).
    void notify_only(Request& r, unsigned engine) noexcept;
    // Engine `engine`, once per poll and when it stops: returns the
    // requests complete() and notify_only() gave back to the pool.
    void flush_returns(unsigned engine) noexcept { requests_.flush(returns_[engine]); }

    // Waits until the OVERLAPPED leaves STATUS_PENDING or the deadline
    // (0: forever) passes. True when it completed.
    bool wait_for(LPWSAOVERLAPPED ov, uint32_t timeout_ms) noexcept;

private:
    struct Lane;
    static int lane_main(void* lane);

    stack::LwipInterfaceConfig interface_;
    bool register_application_threads_ = true;
    std::optional<dataplane::Dataplane> dataplane_;
    RequestPool requests_{kRequests};
    std::array<RequestPool::ReturnBatch, kMaxEngines> returns_; // by engine: its thread's alone
    std::vector<std::unique_ptr<stack::Classifier>> classifiers_;
    std::optional<stack::LwipHandoffRing> handoff_ring_;
    std::optional<stack::SoftwareRss> rss_;           // when the port has fewer RX queues than engines
    std::optional<stack::PortAffinity> tcp_affinity_; // when the NIC spreads flows over several queues
    std::atomic<uint64_t> affine_ports_{0};
    std::atomic<uint64_t> affinity_fallbacks_{0};
    stack::Ipv4NeighbourCache ipv4_neighbours_; // by next hop
    stack::Ipv6NeighbourCache ipv6_neighbours_; // by destination
    stack::Ipv6Address ipv6_link_local_{};
    // The most a fast-path datagram carries (MTU, one mbuf), by family.
    uint64_t fast_max_payload4_ = 0;
    uint64_t fast_max_payload6_ = 0;
    unsigned tx_queues_ = 0;
    std::vector<rte_mempool*> tx_pools_; // by engine: its NUMA socket's pool
    bool offload_ipv4_ = false;
    bool offload_udp_ = false;
    std::vector<std::unique_ptr<stack::LwipHandoff>> handoffs_;
    std::vector<std::unique_ptr<SocketEngine>> engines_;
    std::vector<std::unique_ptr<Lane>> lanes_;
    std::atomic<bool> stop_{false};
    std::atomic<unsigned> lanes_ready_{0};
    std::atomic<bool> lane_failed_{false};
    std::string lane_error_;

    std::mutex control_;
    std::unique_ptr<std::atomic<Socket*>[]> sockets_;
    std::vector<uint32_t> free_slots_;
    uint32_t next_slot_ = 0;
    uint16_t next_ephemeral_ = 49152;
    std::vector<std::vector<Socket*>> bound_; // by port, under control_
    std::vector<std::unique_ptr<dataplane::TelemetryGroup>> telemetry_;
};

// The runtime while the stack runs, else null. Process-wide, as Winsock's
// start-up is.
Runtime* runtime() noexcept;
// WSAStartup/WSACleanup's work. start: 0 or a WSA error (reason in
// startup_error()).
int start_runtime();
void cleanup_runtime();
StartupConfig& startup_config();
std::string& startup_error();

} // namespace ringsock::api
