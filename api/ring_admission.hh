// RingAdmission: the reservation count by which CompletionRing and PortRing
// admit entries, as Registered I/O's completion queues do: a request
// reserves room for its completion before it is posted, so the completion
// always fits. Any thread may reserve and give back; reapers give back one
// per entry they took, after their claim of it. Header-only.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringsock::api {

// On a line of its own: reservers and reapers write it, producers never.
class alignas(64) RingAdmission {
public:
    explicit RingAdmission(uint32_t capacity) noexcept : capacity_(capacity) {}
    RingAdmission(const RingAdmission&) = delete;
    RingAdmission& operator=(const RingAdmission&) = delete;

    // Outstanding reservations, entries not yet reaped included (a snapshot).
    uint32_t reserved() const noexcept { return value_.load(std::memory_order_relaxed); }

    // Room for n entries the caller's request will produce; false, changing
    // nothing, when reserved() + n would exceed the capacity. Every success
    // is followed, for each of the n, by exactly one entry or unreserve().
    bool try_reserve(uint32_t n) noexcept
    {
        // Acquire on success, pairs with release(): the reap that freed
        // this room happens-before whatever we hand the request to, and
        // through it the producer's write of the slot.
        uint32_t now = value_.load(std::memory_order_relaxed);
        do {
            if (now > capacity_ || n > capacity_ - now) return false;
        } while (!value_.compare_exchange_weak(now, now + n, std::memory_order_acquire, std::memory_order_relaxed));
        return true;
    }

    // Gives back n reservations that will never produce an entry. n must
    // not exceed what the caller holds.
    void unreserve(uint32_t n) noexcept { value_.fetch_sub(n, std::memory_order_release); }

    // A reaper, after its claim of n entries: release, pairs with
    // try_reserve()'s acquire. Saturates at zero, so that unsolicited
    // entries on a ring without reservations give nothing back.
    void release(uint32_t n) noexcept
    {
        uint32_t now = value_.load(std::memory_order_relaxed);
        while (now != 0) {
            const uint32_t next = now > n ? now - n : 0;
            if (value_.compare_exchange_weak(now, next, std::memory_order_release, std::memory_order_relaxed)) return;
        }
    }

private:
    const uint32_t capacity_;
    std::atomic<uint32_t> value_{0};
};
static_assert(sizeof(RingAdmission) == 64);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

} // namespace ringsock::api
