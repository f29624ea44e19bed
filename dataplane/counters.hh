// Counters written by exactly one engine core and read by anyone (telemetry,
// the live stats line). A counter is a relaxed atomic that its owner bumps
// with a plain load and store: on x86 that is an ordinary add, with no
// locked instruction, and readers on other cores still see whole values.
//
// Each group sits on its own cache lines so one engine's writes never
// invalidate another's.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringsock::dataplane {

inline constexpr std::size_t kCacheLine = 64;

class RelaxedCounter {
public:
    // Owner core only.
    void add(uint64_t n) noexcept
    {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    // Any thread.
    uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};
static_assert(sizeof(RelaxedCounter) == sizeof(uint64_t));
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Per RX queue, written by the engine that polls the queue.
struct alignas(kCacheLine) QueueCounters {
    RelaxedCounter rx_packets;
    RelaxedCounter rx_bytes;
    RelaxedCounter rx_bursts; // non-empty rx_burst calls: rx_packets / rx_bursts is the burst fill
};

// Per engine.
struct alignas(kCacheLine) EngineCounters {
    RelaxedCounter rx_packets;
    RelaxedCounter rx_bytes;
    RelaxedCounter tx_packets;    // accepted by tx_burst
    RelaxedCounter tx_bytes;      // handed to send(), including frames later counted in tx_drops
    RelaxedCounter tx_drops;      // tx_burst had no room, or the engine has no TX queue on the port
    RelaxedCounter unclaimed;     // frames no handler took: freed by the engine
    RelaxedCounter handler_drops; // frames a handler took and dropped (handlers add their own)
    RelaxedCounter polls;         // loop iterations
    RelaxedCounter busy_polls;    // iterations that received something
};

// A copy of one engine's counters at one moment, for printing and telemetry.
struct EngineSnapshot {
    unsigned lcore = 0;
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0, tx_drops = 0;
    uint64_t unclaimed = 0, handler_drops = 0, polls = 0, busy_polls = 0;

    static EngineSnapshot of(unsigned lcore, const EngineCounters& c) noexcept
    {
        return {lcore,
                c.rx_packets.get(),
                c.rx_bytes.get(),
                c.tx_packets.get(),
                c.tx_bytes.get(),
                c.tx_drops.get(),
                c.unclaimed.get(),
                c.handler_drops.get(),
                c.polls.get(),
                c.busy_polls.get()};
    }
};

} // namespace ringsock::dataplane
