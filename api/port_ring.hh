// PortRing: a completion port's ring for one engine's sockets. Like
// CompletionRing it is bounded, admits by reservation and lets any number of
// reapers take entries at once; unlike it, any thread may push. The engine
// pushes the completions it finishes, and so does an application thread
// that completed a receive at once on a socket of that engine: putting that
// completion in the same ring keeps a socket's completions in the order its
// datagrams were taken, with no round trip through the engine (in
// ringsock-bench-api-rx the round trip, with the request record it needed,
// was half of the application thread's time per datagram).
// Header-only; no DPDK, no lwIP.
//
// Producers claim positions with one fetch-and-add and publish each slot by
// writing its sequence number (its position + 1), so a producer never waits
// for another: a slot claimed and not yet published only hides the slots
// after it from the reapers until it is (a completion delayed, never lost).
// Reapers check the sequence numbers, copy, and claim what they copied with
// one compare-and-swap of the head, as CompletionRing::dequeue_burst_mc()
// does; a reaper that lost the race throws its copy away, so nobody holds a
// slot between its claim and its copy and a producer never waits for a
// reaper either.
//
// Admission is what makes the fetch-and-add safe: every entry is pushed
// under a reservation taken with try_reserve(), and a reservation is given
// back only after the head moved past the entry. Hence the entries between
// the head and the claim counter, plus the reservations not yet pushed,
// never exceed the capacity, and the slot a producer claims was always
// reaped already. An entry pushed without a reservation could overwrite an
// unreaped one: push_burst() is for reserved entries only.
//
// Limits: the capacity is a power of two fixed at construction; nothing
// after that allocates, locks, throws or waits. T must be trivially
// copyable; positions are free-running 64-bit counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "api/ring_admission.hh"
#include "api/ring_words.hh"

namespace ringsock::api {

template <typename T>
class PortRing {
public:
    // capacity (in): entries the ring holds; a power of two, at least 1.
    // Throws std::invalid_argument when it is not, std::bad_alloc when the
    // slots cannot be allocated.
    explicit PortRing(uint32_t capacity) : capacity_(capacity), mask_(capacity - 1), admission_(capacity)
    {
        if (capacity == 0 || (capacity & (capacity - 1)) != 0)
            throw std::invalid_argument("PortRing: capacity " + std::to_string(capacity) + " is not a power of two");
        slots_ = std::make_unique<Slot[]>(capacity);
        // Slot i first holds position i: nothing is published until seq is i + 1.
        for (uint32_t i = 0; i < capacity; ++i)
            slots_[i].seq.store(i, std::memory_order_relaxed);
    }
    PortRing(const PortRing&) = delete;
    PortRing& operator=(const PortRing&) = delete;

    uint32_t capacity() const noexcept { return capacity_; }

    // Outstanding reservations plus entries not yet reaped (a snapshot).
    uint32_t reserved() const noexcept { return admission_.reserved(); }

    // Any thread. As CompletionRing::try_reserve(): room for n entries, or
    // false and nothing changed.
    bool try_reserve(uint32_t n = 1) noexcept { return admission_.try_reserve(n); }

    // Any thread. Gives back n reservations that will never be pushed.
    void unreserve(uint32_t n = 1) noexcept { admission_.unreserve(n); }

    // Any thread. Appends items[0 .. n), each under a reservation the
    // caller holds, in order. Never fails.
    void push_burst(const T* items, uint32_t n) noexcept
    {
        if (n == 0) return;
        const uint64_t first = claim_.value.fetch_add(n, std::memory_order_relaxed);
        for (uint32_t i = 0; i < n; ++i) {
            Slot& s = slot(first + i);
            Words::store(s.words, items[i]);
            // Release, pairs with the reapers' acquire of seq: the words are
            // written before the slot is published.
            s.seq.store(first + i + 1, std::memory_order_release);
        }
    }

    // Any number of reaper threads at once. Moves up to max of the oldest
    // published entries to out[0 .. max), in order, giving back one
    // reservation each; returns how many (0 when the oldest is not
    // published). out[] may be written even when it returns 0.
    uint32_t pop_burst(T* out, uint32_t max) noexcept
    {
        // Acquire, pairs with the release of the reaper that stored it.
        uint64_t head = head_.value.load(std::memory_order_acquire);
        for (;;) {
            uint32_t n = 0;
            while (n < max) {
                const Slot& s = slot(head + n);
                // Acquire, pairs with the producer's release: the words.
                if (s.seq.load(std::memory_order_acquire) != head + n + 1) break;
                Words::load_racy(s.words, out[n]);
                ++n;
            }
            if (n == 0) {
                // Empty, or our head is stale (others reaped and producers
                // reused the slot): only a moved head says to look again.
                const uint64_t now = head_.value.load(std::memory_order_acquire);
                if (now == head) return 0;
                head = now;
                continue;
            }
            // A producer may have reused a slot we copied only after the
            // head moved past it, so a successful claim means every copy is
            // of the entry at its position. Release, pairs with the next
            // reservation's acquire (through the admission's release).
            if (head_.value.compare_exchange_weak(head, head + n, std::memory_order_acq_rel,
                                                  std::memory_order_acquire)) {
                admission_.release(n);
                return n;
            }
        }
    }

    // Whether the oldest entry is unpublished or absent (a snapshot).
    bool empty() const noexcept
    {
        const uint64_t head = head_.value.load(std::memory_order_acquire);
        return slot(head).seq.load(std::memory_order_acquire) != head + 1;
    }

private:
    using Words = RingWords<T>;

    struct Slot {
        std::atomic<uint64_t> seq{0};
        typename Words::Word words[Words::kCount]{};
    };
    struct alignas(64) Counter64 {
        std::atomic<uint64_t> value{0};
    };

    Slot& slot(uint64_t position) noexcept { return slots_[position & mask_]; }
    const Slot& slot(uint64_t position) const noexcept { return slots_[position & mask_]; }

    const uint32_t capacity_;
    const uint32_t mask_;
    std::unique_ptr<Slot[]> slots_;
    Counter64 claim_;         // producers'
    Counter64 head_;          // reapers'
    RingAdmission admission_; // posting threads' and reapers'
};

} // namespace ringsock::api
