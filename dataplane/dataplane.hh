// The whole dataplane of one process, built from a profile in the order
// DPDK needs and torn down in reverse: EAL, pdump, mempools (one per NUMA
// socket in use), the port, one engine per EAL lcore, telemetry.
//
// RX queue q is polled by engine q mod engines; engine k transmits on TX
// queue k, so no queue has two writers. An engine beyond the port's TX
// queues receives only (its sends are counted as tx_drops).
//
// Construct, register handlers, then run() on the main thread; any thread
// may call request_stop() or snapshot(). One Dataplane per process, because
// EAL can start once per process.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/port.hh"
#include "dataplane/profile.hh"
#include "dataplane/snapshot.hh"
#include "dataplane/telemetry.hh"

namespace ringsock::dataplane {

// rte_pdump_init/uninit as a pair: lets dpdk-dumpcap and dpdk-pdump, as
// secondary processes, capture the port while we run. A --no-huge primary
// cannot host secondaries; capture then needs hugepages (EAL says so).
class PdumpServer {
public:
    PdumpServer();
    ~PdumpServer();
    PdumpServer(const PdumpServer&) = delete;
    PdumpServer& operator=(const PdumpServer&) = delete;

private:
    bool initialised_ = false;
};

// Where engines run: on every EAL lcore (tools: run() uses the main thread
// too), or only on the worker lcores, leaving the main lcore's thread to the
// application (the socket API).
enum class EngineLcores { all, workers };

class Dataplane {
public:
    // Throws EalError, MempoolError or PortError with the reason, or
    // EalError when `lcores` is workers and EAL was given no worker lcore.
    explicit Dataplane(const Profile& profile, std::string program_name = "ringsock",
                       EngineLcores lcores = EngineLcores::all);
    ~Dataplane();
    Dataplane(const Dataplane&) = delete;
    Dataplane& operator=(const Dataplane&) = delete;

    const Profile& profile() const noexcept { return profile_; }
    const Eal& eal() const noexcept { return eal_; }
    const Port& port() const noexcept { return *port_; }
    const MempoolSet& mempools() const noexcept { return *mempools_; }
    std::size_t engine_count() const noexcept { return engines_.size(); }
    Engine& engine(std::size_t index) noexcept { return *engines_[index]; }

    // Runs every engine on its lcore (the main lcore's on the calling
    // thread, which must be the main thread) until request_stop(); then
    // each engine flushes its TX and run() returns.
    void run();
    void request_stop() noexcept { stop_.store(true, std::memory_order_relaxed); }

    DataplaneSnapshot snapshot() const;

    // After run() has returned: stops and closes the port, which returns
    // its RX rings' mbufs, and reports how many mbufs are still taken
    // (0 unless something leaked). Later calls return the same count.
    unsigned close_port();

private:
    struct Launch {
        Engine* engine;
        const std::atomic<bool>* stop;
    };
    static int engine_main(void* launch);

    Profile profile_;
    Eal eal_;
    PdumpServer pdump_;
    std::vector<std::unique_ptr<Engine>> engines_;
    std::optional<MempoolSet> mempools_;
    std::optional<Port> port_;
    std::vector<Launch> launches_;
    std::atomic<bool> stop_{false};
    std::optional<TelemetryPublication> telemetry_;
};

} // namespace ringsock::dataplane
