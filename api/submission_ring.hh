// SubmissionRing: the bounded ring that carries requests from any number of
// application threads to one socket engine. Header-only; no DPDK, no lwIP.
//
// Each slot carries a sequence number besides its entry (Vyukov's bounded
// queue, with one consumer): a producer claims a position by advancing the
// tail, writes the entry and publishes it by storing position + 1 in the
// slot's sequence; the consumer takes entries while the next slot's
// sequence says it is published, and frees a slot by storing position +
// capacity, which is what the producer a lap later waits for.
//
// Why not rte_ring: its multi-producer enqueue touches three lines the
// other side writes (the consumer's tail for room, the slot, and the
// producers' tail it publishes with, which the consumer reads), and in its
// relaxed tail sync mode (which we need, below) two compare-and-swaps. Here
// a producer touches the tail, written by producers only, and the slot it
// fills; the consumer touches the slots alone. In perf, rte_ring's enqueue
// was 7-10 % of the send benchmark's samples.
//
// Preemption: application threads are preemptible and may share CPUs. A
// producer descheduled between its claim and its publish holds up only the
// consumer at its slot (the entries after it wait, as with rte_ring's
// relaxed tail sync); the other producers go on claiming. In rte_ring's
// default mode every later producer would spin until it ran again (two
// threads reaping one completion port on one CPU fell from 1.4 Mpps to
// about 100 datagrams/s).
//
// Threads: try_push() (or try_claim() and publish()) from any thread;
// consume() from one thread at a time. Nothing here allocates after
// construction, locks or throws; a producer retries only when another
// producer claimed the same position first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace ringsock::api {

template <typename T>
class SubmissionRing {
    static_assert(std::is_trivially_copyable_v<T>, "entries are copied");

public:
    // A position claimed by try_claim(), to be published once.
    struct Claim {
        uint64_t position = 0;
    };

    // capacity (in): entries the ring holds; a power of two, at least 1.
    // Throws std::invalid_argument when it is not a power of two, and
    // std::bad_alloc when the slots cannot be allocated.
    explicit SubmissionRing(uint32_t capacity) : capacity_(capacity), mask_(capacity - 1)
    {
        if (capacity == 0 || (capacity & (capacity - 1)) != 0)
            throw std::invalid_argument("SubmissionRing: capacity " + std::to_string(capacity) +
                                        " is not a power of two");
        slots_.reset(
            static_cast<Slot*>(::operator new (std::size_t{capacity} * sizeof(Slot), std::align_val_t{kCacheLine})));
        for (uint32_t i = 0; i < capacity; ++i)
            new (&slots_[i]) Slot{{i}, T{}};
    }
    SubmissionRing(const SubmissionRing&) = delete;
    SubmissionRing& operator=(const SubmissionRing&) = delete;

    uint32_t capacity() const noexcept { return capacity_; }

    // Any thread. Copies item into the ring. Returns false, changing
    // nothing, when the ring is full.
    bool try_push(const T& item) noexcept
    {
        Claim claim;
        if (!try_claim(claim)) return false;
        publish(claim, item);
        return true;
    }

    // try_push() in its two halves, apart so that a test can hold a claim
    // as a preempted producer does. Returns false when the ring is full;
    // on true, the caller must publish() the claim.
    bool try_claim(Claim& out) noexcept
    {
        uint64_t position = producer_.tail.load(std::memory_order_relaxed);
        for (;;) {
            // Acquire, pairs with the consumer's release when it freed the
            // slot: its copy of the last lap's entry is complete.
            const uint64_t sequence = slots_[position & mask_].sequence.load(std::memory_order_acquire);
            const auto lag = static_cast<int64_t>(sequence - position);
            if (lag == 0) {
                // Relaxed: the slot's sequence orders the entry, not the tail.
                if (producer_.tail.compare_exchange_weak(position, position + 1, std::memory_order_relaxed,
                                                         std::memory_order_relaxed)) {
                    out.position = position;
                    return true;
                }
                // position now holds the tail another producer moved on.
            } else if (lag < 0) {
                return false; // the consumer has not freed last lap's entry
            } else {
                position = producer_.tail.load(std::memory_order_relaxed); // claimed meanwhile
            }
        }
    }
    void publish(Claim claim, const T& item) noexcept
    {
        Slot& slot = slots_[claim.position & mask_];
        slot.item = item;
        // Release, pairs with the consumer's acquire: the entry is written
        // before it is seen.
        slot.sequence.store(claim.position + 1, std::memory_order_release);
    }

    // One thread at a time. Takes up to max entries in position order,
    // stopping at the first one not yet published, and calls take(entry)
    // for each, after its slot is free again (take may push). Returns how
    // many it took.
    template <typename Take>
    uint32_t consume(uint32_t max, Take&& take) noexcept(noexcept(take(std::declval<const T&>())))
    {
        uint32_t n = 0;
        while (n < max) {
            const uint64_t position = consumer_.head;
            Slot& slot = slots_[position & mask_];
            // Acquire, pairs with the producer's release in publish().
            if (slot.sequence.load(std::memory_order_acquire) != position + 1) break;
            const T item = slot.item;
            // Release, pairs with the producer's acquire in try_claim(): our
            // copy is done before the slot is written again.
            slot.sequence.store(position + capacity_, std::memory_order_release);
            consumer_.head = position + 1;
            ++n;
            take(item);
        }
        return n;
    }

private:
    static constexpr std::size_t kCacheLine = 64;

    struct Slot {
        std::atomic<uint64_t> sequence;
        T item;
    };
    struct SlotsDelete {
        void operator()(Slot* p) const noexcept { ::operator delete (p, std::align_val_t{kCacheLine}); }
    };
    // Written by producers only: the consumer never reads it.
    struct alignas(kCacheLine) ProducerSide {
        std::atomic<uint64_t> tail{0};
    };
    // The consumer's alone.
    struct alignas(kCacheLine) ConsumerSide {
        uint64_t head = 0;
    };

    const uint32_t capacity_;
    const uint64_t mask_;
    std::unique_ptr<Slot[], SlotsDelete> slots_;
    ProducerSide producer_;
    ConsumerSide consumer_;
};

} // namespace ringsock::api
