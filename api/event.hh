// A Winsock event object (WSACreateEvent): manual reset, created
// non-signalled. Set by the thread that completes an overlapped request (an
// engine, or the caller when the request completed at once) or by
// WSASetEvent; reset by WSAResetEvent or when a request that names it is
// posted; read by WSAWaitForMultipleEvents. Any thread may call any member;
// one atomic flag, no lock. Waiting is not here: waiters read the flag in
// the WakeHub loop, and set() notifies the hub when the flag changes.
#pragma once

#include <atomic>
#include <cstdint>

#include "api/wake_hub.hh"

namespace ringsock::api {

class Event {
public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    // Signals the event. Wakes waiters (hub.notify()) only when it was not
    // already signalled. Release: what the setter wrote before (the
    // OVERLAPPED) is visible to a thread that sees the event set.
    void set(WakeHub& hub) noexcept
    {
        if (!signalled_.exchange(true, std::memory_order_acq_rel)) hub.notify();
    }

    // Back to non-signalled; waiting never does this (manual reset).
    void reset() noexcept { signalled_.store(false, std::memory_order_release); }

    bool is_set() const noexcept { return signalled_.load(std::memory_order_acquire); }

    // The handle this incarnation was opened under (its HandleTable's).
    uint64_t handle() const noexcept { return handle_.load(std::memory_order_relaxed); }

    // HandleTable: a new incarnation under `handle`, non-signalled.
    void reset(uint64_t handle) noexcept;

private:
    std::atomic<bool> signalled_{false};
    std::atomic<uint64_t> handle_{0};
};

} // namespace ringsock::api
