#include "dataplane/engine.hh"

#include <stdexcept>
#include <string>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

namespace ringsock::dataplane {

// One TX queue with its buffer. The buffer holds up to a burst of frames so
// that tx_burst is called with full bursts; what tx_burst refuses is freed
// and counted by the error callback, never retried, so a stalled peer cannot
// back the engine up.
struct Engine::TxQueue {
    struct BufferFree {
        void operator()(rte_eth_dev_tx_buffer* buffer) const noexcept { rte_free(buffer); }
    };

    uint16_t port;
    uint16_t queue;
    std::unique_ptr<rte_eth_dev_tx_buffer, BufferFree> buffer;

    TxQueue(uint16_t port_id, uint16_t queue_id, unsigned burst, int socket, RelaxedCounter& drops)
        : port(port_id), queue(queue_id), buffer(static_cast<rte_eth_dev_tx_buffer*>(rte_zmalloc_socket(
                                              "ringsock_tx_buffer", RTE_ETH_TX_BUFFER_SIZE(burst), 0, socket)))
    {
        if (!buffer) throw std::runtime_error("cannot allocate a TX buffer for port " + std::to_string(port));
        rte_eth_tx_buffer_init(buffer.get(), static_cast<uint16_t>(burst));
        rte_eth_tx_buffer_set_err_callback(buffer.get(), &drop_unsent, &drops);
    }

    static void drop_unsent(rte_mbuf** unsent, uint16_t count, void* drops)
    {
        rte_pktmbuf_free_bulk(unsent, count);
        static_cast<RelaxedCounter*>(drops)->add(count);
    }
};

Engine::Engine(unsigned lcore, const EngineProfile& profile) : lcore_(lcore), profile_(profile)
{
    if (profile_.burst == 0 || profile_.burst > EngineProfile::kMaxBurst)
        throw std::invalid_argument("engine.burst must be 1.." + std::to_string(EngineProfile::kMaxBurst));
}

Engine::~Engine() = default;

void Engine::add_rx_queue(RxQueueRef queue)
{
    rx_queues_.push_back(queue);
    queue_counters_ = std::make_unique<QueueCounters[]>(rx_queues_.size());
}

void Engine::add_tx_queue(uint16_t port, uint16_t queue)
{
    tx_queues_.push_back(std::make_unique<TxQueue>(
        port, queue, profile_.burst, static_cast<int>(rte_lcore_to_socket_id(lcore_)), counters_.tx_drops));
}

void Engine::add_handler(BurstHandler& handler)
{
    handlers_.push_back(&handler);
}

Engine::TxQueue* Engine::tx_queue_of(uint16_t port) noexcept
{
    for (auto& tx : tx_queues_)
        if (tx->port == port) return tx.get();
    return nullptr;
}

bool Engine::send(uint16_t port, rte_mbuf* mbuf)
{
    TxQueue* tx = tx_queue_of(port);
    if (tx == nullptr) [[unlikely]] {
        rte_pktmbuf_free(mbuf);
        counters_.tx_drops.add(1);
        return false;
    }
    const uint32_t length = mbuf->pkt_len;
    const uint16_t sent = rte_eth_tx_buffer(tx->port, tx->queue, tx->buffer.get(), mbuf);
    // tx_buffer reports frames only when it flushes; count bytes as queued
    // and correct the packet count from what actually left.
    counters_.tx_bytes.add(length);
    counters_.tx_packets.add(sent);
    return true;
}

void Engine::flush_tx()
{
    for (auto& tx : tx_queues_)
        counters_.tx_packets.add(rte_eth_tx_buffer_flush(tx->port, tx->queue, tx->buffer.get()));
}

void Engine::dispatch(RxQueueRef from, rte_mbuf** pkts, uint16_t n)
{
    for (BurstHandler* handler : handlers_) {
        n = handler->on_burst(*this, from, pkts, n);
        if (n == 0) return;
    }
    counters_.unclaimed.add(n);
    rte_pktmbuf_free_bulk(pkts, n);
}

unsigned Engine::poll_once()
{
    std::array<rte_mbuf*, EngineProfile::kMaxBurst> pkts;
    const auto burst = static_cast<uint16_t>(profile_.burst);
    unsigned received = 0;
    for (std::size_t i = 0; i < rx_queues_.size(); ++i) {
        const RxQueueRef from = rx_queues_[i];
        const uint16_t n = rte_eth_rx_burst(from.port, from.queue, pkts.data(), burst);
        if (n == 0) continue;
        uint64_t bytes = 0;
        for (uint16_t k = 0; k < n; ++k)
            bytes += pkts[k]->pkt_len;
        QueueCounters& queue = queue_counters_[i];
        queue.rx_packets.add(n);
        queue.rx_bytes.add(bytes);
        queue.rx_bursts.add(1);
        counters_.rx_packets.add(n);
        counters_.rx_bytes.add(bytes);
        received += n;
        dispatch(from, pkts.data(), n);
    }
    for (BurstHandler* handler : handlers_)
        handler->on_poll(*this);
    flush_tx();
    counters_.polls.add(1);
    if (received != 0) counters_.busy_polls.add(1);
    return received;
}

void Engine::run(const std::atomic<bool>& stop)
{
    unsigned empty_polls = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        if (poll_once() != 0) {
            empty_polls = 0;
            continue;
        }
        if (++empty_polls < profile_.idle_polls) continue;
        if (profile_.idle_sleep_us != 0)
            rte_delay_us_sleep(profile_.idle_sleep_us);
        else
            rte_pause();
    }
    flush_tx();
}

} // namespace ringsock::dataplane
