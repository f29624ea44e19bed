// The per-lcore engine: run to completion over its RX queues, hand each
// burst to the handlers registered on it, flush its TX buffers, repeat.
//
// An engine belongs to one lcore. Everything here except counters() and
// the constructor is called only on that lcore; handlers are registered
// before the engine runs. Nothing on the loop allocates, locks or logs.
//
// Ownership of a burst: the handler chain receives mbufs it owns. A handler
// takes (frees, queues or transmits) the mbufs it wants and moves the rest
// to the front of the array, returning their count; the next handler sees
// only those. What the last handler leaves is freed and counted as
// `unclaimed`. send() takes ownership of the mbuf whether or not it leaves.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/counters.hh"
#include "dataplane/profile.hh"

struct rte_mbuf;
struct rte_eth_dev_tx_buffer;

namespace ringsock::dataplane {

class Engine;

struct RxQueueRef {
    uint16_t port = 0;
    uint16_t queue = 0;
};

class BurstHandler {
public:
    virtual ~BurstHandler() = default;
    // Called with n >= 1 owned mbufs from `from`. Returns how many it left,
    // moved to pkts[0 .. returned). One virtual call per burst, not per frame.
    virtual uint16_t on_burst(Engine& engine, RxQueueRef from, rte_mbuf** pkts, uint16_t n) = 0;
    // Called once per loop iteration, after RX: timers and deferred work.
    virtual void on_poll(Engine&) {}
};

class Engine {
public:
    // Queues are attached with add_rx_queue/add_tx_queue before run().
    Engine(unsigned lcore, const EngineProfile& profile);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void add_rx_queue(RxQueueRef queue);
    // This engine's own TX queue on `port` (one writer per queue: no lock).
    void add_tx_queue(uint16_t port, uint16_t queue);
    void add_handler(BurstHandler& handler);

    // Polls until `stop` reads true, then flushes TX. On the engine's lcore.
    void run(const std::atomic<bool>& stop);
    // One iteration: every RX queue once, handlers, TX flush. Returns frames received.
    unsigned poll_once();
    // Buffers `mbuf` for `port`'s TX queue; sent when the buffer fills or
    // at the end of this iteration. Takes ownership in every case; returns
    // false if it was dropped at once (no TX queue on that port).
    bool send(uint16_t port, rte_mbuf* mbuf);
    void flush_tx();

    unsigned lcore() const noexcept { return lcore_; }
    const std::vector<RxQueueRef>& rx_queues() const noexcept { return rx_queues_; }
    EngineCounters& counters() noexcept { return counters_; }
    const EngineCounters& counters() const noexcept { return counters_; }
    // Counters of the i-th RX queue in rx_queues().
    const QueueCounters& queue_counters(std::size_t i) const noexcept { return queue_counters_[i]; }

private:
    struct TxQueue;
    TxQueue* tx_queue_of(uint16_t port) noexcept;
    void dispatch(RxQueueRef from, rte_mbuf** pkts, uint16_t n);

    EngineCounters counters_;
    unsigned lcore_;
    EngineProfile profile_;
    std::vector<RxQueueRef> rx_queues_;
    std::unique_ptr<QueueCounters[]> queue_counters_;
    std::vector<std::unique_ptr<TxQueue>> tx_queues_;
    std::vector<BurstHandler*> handlers_;
};

} // namespace ringsock::dataplane
