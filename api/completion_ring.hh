// CompletionRing: a bounded lock-free ring that carries completions from one
// producer (an engine core) to the threads that reap them, sized up front
// with admission control as Registered I/O's completion queues are, so that
// an entry that was admitted always fits. Header-only; no DPDK, no lwIP.
//
// Threads: enqueue_burst() from the one producer only. dequeue_burst() from
// one consumer at a time (the only consumer, or one that has excluded the
// others with a happens-before, as the socket engine does with its Dekker
// handshake); dequeue_burst_mc() from any number of consumer threads at
// once, and it may be mixed with dequeue_burst() under that exclusion.
// try_reserve(), unreserve() and the observers from any thread.
//
// Limits: the capacity is a power of two fixed at construction, where the
// slots are allocated once; nothing after that allocates, locks, throws or
// waits. Entries are copied, so T must be trivially copyable. The indices
// are free-running 64-bit counters masked on access (liburing's are 32-bit;
// ours are wider because dequeue_burst_mc() compares-and-swaps the head,
// and 32 bits could wrap back to the same value while a consumer is
// preempted between its load and its CAS).
//
// Admission: try_reserve() before posting the request whose completion
// will come through the ring; each dequeued entry gives one reservation
// back; unreserve() gives back one that will never produce an entry. Hence
// entries in the ring + outstanding reservations <= capacity, and the
// enqueue of a reserved entry never fails. enqueue_burst() does not check
// reservations: a producer of unsolicited entries must check its return
// value, and should reserve for them too on a ring that also carries
// reserved ones (a dequeue cannot tell the two kinds apart, so an
// unreserved entry would give back a reservation still in use). On a ring
// with no reservations at all, dequeues leave the counter at zero.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "api/ring_admission.hh"
#include "api/ring_words.hh"

namespace ringsock::api {

template <typename T>
class CompletionRing {
    static_assert(std::is_trivially_copyable_v<T>, "ring entries are copied as bytes");

public:
    // capacity (in): entries the ring holds; a power of two, at least 1.
    // Throws std::invalid_argument when it is not a power of two, and
    // std::bad_alloc when the slots cannot be allocated.
    explicit CompletionRing(uint32_t capacity) : capacity_(capacity), mask_(capacity - 1), admission_(capacity)
    {
        if (capacity == 0 || (capacity & (capacity - 1)) != 0)
            throw std::invalid_argument("CompletionRing: capacity " + std::to_string(capacity) +
                                        " is not a power of two");
        const std::size_t bytes = (std::size_t{capacity} * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
        slots_.reset(static_cast<Word*>(::operator new (bytes, std::align_val_t{kCacheLine})));
        std::memset(slots_.get(), 0, bytes);
    }
    CompletionRing(const CompletionRing&) = delete;
    CompletionRing& operator=(const CompletionRing&) = delete;

    uint32_t capacity() const noexcept { return capacity_; }

    // Entries in the ring. Exact for the producer or a lone consumer while
    // the other side is idle; otherwise a snapshot that may be stale by
    // the time it returns. Never more than capacity().
    uint32_t size() const noexcept
    {
        // Head first: the tail read after it is at least as new, so the
        // difference cannot go negative (it can exceed the capacity when
        // both moved in between, hence the clamp).
        const uint64_t head = consumer_.head.load(std::memory_order_acquire);
        const uint64_t tail = producer_.tail.load(std::memory_order_acquire);
        const uint64_t n = tail - head;
        return n > capacity_ ? capacity_ : static_cast<uint32_t>(n);
    }
    bool empty() const noexcept { return size() == 0; }

    // Outstanding reservations (a snapshot).
    uint32_t reserved() const noexcept { return admission_.reserved(); }

    // Any thread. Reserves room for n entries that the caller's request
    // will produce. Returns false, changing nothing, when reserved() + n
    // would exceed capacity(). Every success is followed, for each of the
    // n, by exactly one enqueued entry or one unreserve().
    bool try_reserve(uint32_t n = 1) noexcept { return admission_.try_reserve(n); }

    // Any thread. Gives back n reservations that will never produce an
    // entry (the post failed). n must not exceed what the caller holds.
    void unreserve(uint32_t n = 1) noexcept { admission_.unreserve(n); }

    // Producer only. Copies as many of items[0 .. n) as fit into the ring,
    // in order, and publishes them with one store of the tail. Returns how
    // many were taken (0 .. n); the caller deals with the rest. Does not
    // look at reservations.
    uint32_t enqueue_burst(const T* items, uint32_t n) noexcept
    {
        const uint64_t tail = producer_.tail.load(std::memory_order_relaxed); // only we store it
        uint64_t room = capacity_ - (tail - producer_.head_cache);
        if (room < n) {
            // Acquire, pairs with the consumers' release of the head: their
            // copies of the slots we are about to overwrite are complete.
            producer_.head_cache = consumer_.head.load(std::memory_order_acquire);
            room = capacity_ - (tail - producer_.head_cache);
        }
        if (n > room) n = static_cast<uint32_t>(room);
        if (n == 0) return 0;
        for (uint32_t i = 0; i < n; ++i)
            store_slot(tail + i, items[i]);
        // Release, pairs with the consumers' acquire of the tail: the
        // entries are written before they are published.
        producer_.tail.store(tail + n, std::memory_order_release);
        return n;
    }

    // One consumer at a time (see the file comment). Moves up to max of the
    // oldest entries to out[0 .. max), in order, with one store of the
    // head, and gives back one reservation per entry. Returns how many
    // (0 when empty).
    uint32_t dequeue_burst(T* out, uint32_t max) noexcept
    {
        const uint64_t head = consumer_.head.load(std::memory_order_relaxed); // only we store it now
        uint64_t ready = consumer_.tail_cache - head;
        // A copy behind the head (dequeue_burst_mc() took entries past it)
        // wraps to a huge count: refresh then too.
        if (ready < max || ready > capacity_) {
            // Acquire, pairs with the producer's release of the tail.
            consumer_.tail_cache = producer_.tail.load(std::memory_order_acquire);
            ready = consumer_.tail_cache - head;
        }
        const auto n = static_cast<uint32_t>(ready < max ? ready : max);
        if (n == 0) return 0;
        for (uint32_t i = 0; i < n; ++i)
            load_slot(head + i, out[i]);
        // Release, pairs with the producer's acquire of the head: our
        // copies are done before it may overwrite the slots.
        consumer_.head.store(head + n, std::memory_order_release);
        admission_.release(n);
        return n;
    }

    // Any number of consumer threads at once. As dequeue_burst(): up to max
    // oldest entries to out[0 .. max), one reservation given back per
    // entry, returns how many. Lock-free: it copies the entries and then
    // claims them with a CAS on the head, retrying with the new head when
    // another consumer claimed first (so out[] may be written even when it
    // returns 0). The consumers share a copy of the last tail one of them
    // read, on the head's line: while it still covers `max` entries past
    // the head, nobody reads the producer's line, which the producer
    // rewrites with every burst (that miss was a fifth of an immediate
    // receive's time in ringsock-bench-api-rx).
    uint32_t dequeue_burst_mc(T* out, uint32_t max) noexcept
    {
        // Acquire, pairs with the release of the consumer that stored this
        // head: the tail it had seen (>= head) happens-before our load below.
        uint64_t head = consumer_.head.load(std::memory_order_acquire);
        // Acquire, pairs with the release of the consumer that stored it,
        // which had acquired it from the producer: the entries before it
        // are written. Never ahead of the producer's tail.
        uint64_t tail = consumer_.tail_seen.load(std::memory_order_acquire);
        for (;;) {
            uint64_t ready = tail - head;
            // Not enough known, or the copy is behind the head (wraps huge).
            if (ready < max || ready > capacity_) {
                // Acquire, pairs with the producer's release of the tail.
                tail = producer_.tail.load(std::memory_order_acquire);
                consumer_.tail_seen.store(tail, std::memory_order_release);
                ready = tail - head;
            }
            if (ready > capacity_) [[unlikely]] {
                // Our head is stale by more than a ring: others claimed and
                // the producer refilled in between.
                head = consumer_.head.load(std::memory_order_acquire);
                continue;
            }
            const auto n = static_cast<uint32_t>(ready < max ? ready : max);
            if (n == 0) return 0;
            // With a stale head, the producer may be overwriting these slots
            // as we copy them; the CAS below then fails and the copy is
            // thrown away. The copy is word-wise atomic so that this race is
            // defined behaviour (and quiet under ThreadSanitizer).
            for (uint32_t i = 0; i < n; ++i)
                load_slot_racy(head + i, out[i]);
            // Release, pairs with the producer's acquire of the head (as in
            // dequeue_burst()); acquire on failure, as for the first load.
            if (consumer_.head.compare_exchange_weak(head, head + n, std::memory_order_acq_rel,
                                                     std::memory_order_acquire)) {
                admission_.release(n);
                return n;
            }
        }
    }

    // A look at the entry `ahead` places past the oldest, for prefetching
    // only, from any thread: it may be stale, torn or not yet written
    // (entries are read word by word, so never a data race); nothing is
    // claimed.
    void peek_racy(T& out, uint32_t ahead = 0) const noexcept
    {
        load_slot_racy(consumer_.head.load(std::memory_order_relaxed) + ahead, out);
    }

    // One consumer at a time, as dequeue_burst(): copies the oldest entry to
    // out and leaves it in the ring. Returns false, leaving out alone, when
    // the ring is empty.
    bool peek(T& out) const noexcept
    {
        const uint64_t head = consumer_.head.load(std::memory_order_acquire);
        if (producer_.tail.load(std::memory_order_acquire) == head) return false;
        load_slot(head, out);
        return true;
    }

private:
    // x86's line; 64 also keeps each slot array start line-aligned.
    static constexpr std::size_t kCacheLine = 64;

    using Words = RingWords<T>;
    using Word = typename Words::Word;
    static constexpr std::size_t kWords = Words::kCount;

    Word* slot(uint64_t index) const noexcept { return slots_.get() + (index & mask_) * kWords; }
    void store_slot(uint64_t index, const T& item) noexcept { Words::store(slot(index), item); }
    // Only where no store can be under way: the caller holds the head.
    void load_slot(uint64_t index, T& out) const noexcept { Words::load(slot(index), out); }
    void load_slot_racy(uint64_t index, T& out) const noexcept { Words::load_racy(slot(index), out); }

    struct AlignedDelete {
        void operator()(Word* p) const noexcept { ::operator delete (p, std::align_val_t{kCacheLine}); }
    };

    // Written by the producer, read by the consumers. head_cache is the
    // producer's own copy of the consumers' head, a plain field: only the
    // producer touches it (ThreadSanitizer flags a second producer).
    struct alignas(kCacheLine) ProducerSide {
        std::atomic<uint64_t> tail{0};
        uint64_t head_cache = 0;
    };
    // Written by the consumers, read by the producer. tail_cache belongs to
    // dequeue_burst() alone; tail_seen is dequeue_burst_mc()'s shared copy.
    struct alignas(kCacheLine) ConsumerSide {
        std::atomic<uint64_t> head{0};
        uint64_t tail_cache = 0;
        std::atomic<uint64_t> tail_seen{0};
    };
    static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free);

    // Read-only after construction: a line that every side may share.
    const uint32_t capacity_;
    const uint32_t mask_;
    std::unique_ptr<Word, AlignedDelete> slots_;
    ProducerSide producer_;
    ConsumerSide consumer_;
    RingAdmission admission_; // written by any thread that reserves and by every dequeue
};

} // namespace ringsock::api
