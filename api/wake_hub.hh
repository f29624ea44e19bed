// The wake hub: how application threads that wait for a wait object (an
// event, a completion port, an APC queue, an OVERLAPPED's status) sleep
// without a lock, and how the engines and other threads that make one ready
// wake them. One process-wide epoch counts "something became ready";
// `notify()` bumps it and issues FUTEX_WAKE only when a thread sleeps, so an
// engine pays one atomic add and one load, no system call, when nobody waits.
//
// Waiters never trust a wake: they read the epoch, test their own condition,
// and only then wait for the epoch to move on, in a loop:
//
//     for (;;) {
//         const uint32_t seen = hub.epoch();
//         if (ready()) break;
//         if (!hub.wait(seen, deadline)) break; // timed out
//     }
//
// Any thread may call any member. Limits: every notify wakes every sleeper
// (they re-test and most sleep again), and 2^32 notifies while one waiter
// sleeps would hide a change from it (the futex compares values).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace ringsock::api {

// Engines (DPDK lcores that finish socket requests) are numbered 0 ..
// kMaxEngines - 1; completion ports and APC queues keep one ring per engine
// index, made when an engine is first used. 64 covers a socket's lcores on
// any machine we target, and a 64-bit mask tracks which rings exist.
inline constexpr unsigned kMaxEngines = 64;

class WakeHub {
public:
    using Clock = std::chrono::steady_clock;

    // How long wait() spins on the epoch before it sleeps: about a futex
    // round trip, so a completion that lands within it costs no syscall.
    static constexpr std::chrono::microseconds kSpin{20};

    WakeHub() = default;
    WakeHub(const WakeHub&) = delete;
    WakeHub& operator=(const WakeHub&) = delete;

    // The current epoch. Read it before testing the condition you wait for
    // (acquire: what a notifier wrote before its notify() is visible once
    // its epoch is).
    uint32_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }

    // Something became ready: bumps the epoch (release) and wakes every
    // sleeper if there is one. Lock-free; a syscall only when a thread sleeps.
    void notify() noexcept
    {
        epoch_.fetch_add(1, std::memory_order_seq_cst);
        if (sleepers_.load(std::memory_order_seq_cst) != 0) [[unlikely]]
            wake_all();
    }

    // Waits until the epoch differs from `seen` (true) or `deadline` passes
    // (false; std::nullopt: no deadline). Spins for kSpin, then sleeps on a
    // futex; spurious and early wakes are absorbed here. Returns at once
    // when the epoch already moved on. The caller re-tests its condition
    // either way.
    bool wait(uint32_t seen, std::optional<Clock::time_point> deadline) noexcept;

    // Threads inside wait()'s sleep phase now (for tests and telemetry).
    uint32_t sleepers() const noexcept { return sleepers_.load(std::memory_order_relaxed); }

private:
    void wake_all() noexcept;

    // Written by every notifier; kept away from the sleeper count, which
    // only waiters write.
    alignas(64) std::atomic<uint32_t> epoch_{0};
    alignas(64) std::atomic<uint32_t> sleepers_{0};
};

} // namespace ringsock::api
