// A copy of every dataplane counter at one moment: what the live stats
// line, the final summary and telemetry print. Taken on any thread, from
// counters their owners keep writing, so totals are consistent per counter,
// not across counters.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/counters.hh"
#include "dataplane/port.hh"

namespace ringsock::dataplane {

struct QueueSnapshot {
    uint16_t port = 0;
    uint16_t queue = 0;
    unsigned lcore = 0; // the engine polling it
    uint64_t rx_packets = 0, rx_bytes = 0, rx_bursts = 0;
};

struct DataplaneSnapshot {
    std::vector<EngineSnapshot> engines;
    std::vector<QueueSnapshot> queues;
    PortStats port;
    unsigned mbufs_capacity = 0;
    unsigned mbufs_in_use = 0;

    uint64_t rx_packets() const noexcept
    {
        uint64_t total = 0;
        for (const auto& e : engines)
            total += e.rx_packets;
        return total;
    }
    uint64_t rx_bytes() const noexcept
    {
        uint64_t total = 0;
        for (const auto& e : engines)
            total += e.rx_bytes;
        return total;
    }
    // Every frame lost on receive, wherever: the NIC (imissed, ierrors), the
    // PMD (rx_nombuf), or the engines (unclaimed, handler drops).
    uint64_t rx_drops() const noexcept
    {
        uint64_t total = port.imissed + port.ierrors + port.rx_nombuf;
        for (const auto& e : engines)
            total += e.unclaimed + e.handler_drops;
        return total;
    }
};

} // namespace ringsock::dataplane
