// Lock-free storage for the wait objects (events, completion ports, APC
// queues): HandleTable, which hands out Windows-style HANDLE values
// (multiples of four, as Windows' are: callers use the low bits, as in an
// OVERLAPPED's event handle with its low-order bit set), and the
// two pieces it and the objects in it are built from — LazyPtr (an object
// allocated on first use and published by one compare-and-swap) and
// MpmcQueue (Vyukov's bounded multi-producer multi-consumer array queue, for
// the calls any thread may make: PostQueuedCompletionStatus, WPUQueueApc).
//
// Any thread may call any member; none takes a lock. Objects live in chunks
// that are allocated when first needed and freed only with the table, so a
// T* obtained from a lookup stays valid memory whatever other threads do;
// what it names is a different object only after the handle was closed and
// every reference released, which a reference (retain) prevents.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace ringsock::api {

// An object made on first use: many threads may race to make it, one wins
// the compare-and-swap, the losers' copies are freed. Owned: deleted with
// the LazyPtr.
template <typename T>
class LazyPtr {
public:
    LazyPtr() = default;
    LazyPtr(const LazyPtr&) = delete;
    LazyPtr& operator=(const LazyPtr&) = delete;
    ~LazyPtr() { std::unique_ptr<T> owned(ptr_.load(std::memory_order_acquire)); }

    // The object, or null when nobody made it yet (acquire: a non-null
    // pointer names a fully constructed object).
    T* get() const noexcept { return ptr_.load(std::memory_order_acquire); }

    // The object, made from `args` if nobody did yet. Null only when
    // making it failed (std::bad_alloc or another exception from T's
    // constructor is caught: a cold path that reports by its result).
    template <typename... Args>
    T* get_or_create(Args&&... args) noexcept
    {
        if (T* p = get(); p != nullptr) [[likely]]
            return p;
        std::unique_ptr<T> fresh;
        try {
            fresh = std::make_unique<T>(std::forward<Args>(args)...);
        } catch (const std::exception&) {
            return nullptr;
        }
        T* expected = nullptr;
        // Release: the constructed object before the pointer; a loser
        // reads the winner's with acquire.
        if (ptr_.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire))
            return fresh.release();
        return expected;
    }

private:
    std::atomic<T*> ptr_{nullptr};
};

// Vyukov's bounded MPMC queue: each cell carries a sequence number that
// says whose turn it is, so producers and consumers claim cells with one
// compare-and-swap on their own index and never wait on each other unless
// the queue is full or empty. T must be trivially copyable.
template <typename T>
class MpmcQueue {
public:
    // `capacity_pow2`: a power of two, at least 2.
    explicit MpmcQueue(uint32_t capacity_pow2)
        : cells_(std::make_unique<Cell[]>(capacity_pow2)), mask_(capacity_pow2 - 1)
    {
        for (uint32_t i = 0; i < capacity_pow2; ++i)
            cells_[i].seq.store(i, std::memory_order_relaxed);
    }
    MpmcQueue(const MpmcQueue&) = delete;
    MpmcQueue& operator=(const MpmcQueue&) = delete;

    uint32_t capacity() const noexcept { return static_cast<uint32_t>(mask_ + 1); }

    // Appends `value`; false when the queue is full. Any thread.
    bool try_push(const T& value) noexcept
    {
        uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& cell = cells_[pos & mask_];
            // Acquire: a consumer's release of this cell (its read of the
            // old value) comes before our write.
            const uint64_t seq = cell.seq.load(std::memory_order_acquire);
            const auto diff = static_cast<int64_t>(seq - pos);
            if (diff == 0) {
                if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    cell.value = value;
                    cell.seq.store(pos + 1, std::memory_order_release); // producer side: value visible
                    return true;
                }
            } else if (diff < 0) {
                return false; // full: the cell still holds an unread value
            } else {
                pos = enqueue_pos_.load(std::memory_order_relaxed);
            }
        }
    }

    // Takes the oldest value; false when the queue is empty. Any thread.
    bool try_pop(T& out) noexcept
    {
        uint64_t pos = dequeue_pos_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& cell = cells_[pos & mask_];
            const uint64_t seq = cell.seq.load(std::memory_order_acquire); // consumer side: the value
            const auto diff = static_cast<int64_t>(seq - (pos + 1));
            if (diff == 0) {
                if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    out = cell.value;
                    // Release: our read before the next producer's write.
                    cell.seq.store(pos + mask_ + 1, std::memory_order_release);
                    return true;
                }
            } else if (diff < 0) {
                return false; // empty
            } else {
                pos = dequeue_pos_.load(std::memory_order_relaxed);
            }
        }
    }

    // Takes up to `max` values into `out`; returns how many.
    uint32_t pop_burst(T* out, uint32_t max) noexcept
    {
        uint32_t n = 0;
        while (n < max && try_pop(out[n]))
            ++n;
        return n;
    }

    // A snapshot: may be stale by the time the caller acts on it.
    bool empty() const noexcept
    {
        const uint64_t pos = dequeue_pos_.load(std::memory_order_acquire);
        const uint64_t seq = cells_[pos & mask_].seq.load(std::memory_order_acquire);
        return static_cast<int64_t>(seq - (pos + 1)) < 0;
    }

private:
    struct Cell {
        std::atomic<uint64_t> seq{0};
        T value{};
    };

    std::unique_ptr<Cell[]> cells_;
    uint64_t mask_;
    alignas(64) std::atomic<uint64_t> enqueue_pos_{0}; // producers'
    alignas(64) std::atomic<uint64_t> dequeue_pos_{0}; // consumers'
};

// Fixed-capacity table of T objects named by opaque 64-bit handles:
//
//     bits 63..56  type tag (never 0x00 or 0xff: no handle is 0, all-ones,
//                  or a SOCKET, whose top byte is 0)
//     bits 55..24  generation of the slot when it was opened
//     bits 23..2   slot index + 1
//     bits 1..0    0: a handle with either set names nothing
//
// Each slot keeps one 64-bit state word: its generation, an "open" bit and
// a reference count. open() takes a slot with one reference (the handle's);
// close() clears the bit and drops that reference; retain()/release() add
// and drop more (an operation in flight, a blocked waiter, a socket's
// association). The slot returns to the free stack when it is closed and
// unreferenced, and its next open() calls `T::reset(handle)` and bumps the
// generation, so stale handles are refused.
//
// T requirements: default-constructible, and `void reset(uint64_t handle)
// noexcept` that makes it like new (it may keep buffers it allocated) using
// atomics only, since a thread holding a stale T* may still read it.
template <typename T>
class HandleTable {
public:
    static constexpr uint32_t kMaxCapacity = (1u << 22) - 1;
    static constexpr uint32_t kChunkSlots = 64; // objects allocated together

    struct Opened {
        uint64_t handle;
        T* object;
    };

    // `capacity`: 1 .. kMaxCapacity slots. `tag`: this table's type tag,
    // not 0x00 or 0xff.
    HandleTable(uint32_t capacity, uint8_t tag)
        : capacity_(capacity), tag_(tag),
          chunks_(std::make_unique<LazyPtr<Chunk>[]>((capacity + kChunkSlots - 1) / kChunkSlots))
    {
    }
    HandleTable(const HandleTable&) = delete;
    HandleTable& operator=(const HandleTable&) = delete;

    uint32_t capacity() const noexcept { return capacity_; }
    uint8_t tag() const noexcept { return tag_; }
    // Slots open or still referenced (a leak check: 0 when all is released).
    uint32_t in_use() const noexcept { return in_use_.load(std::memory_order_acquire); }

    // Whether `handle` carries this table's tag (it may still be stale).
    bool owns(uint64_t handle) const noexcept { return (handle >> 56) == tag_; }

    // A new object and its handle; nothing when every slot is in use or
    // memory for a new chunk could not be had.
    std::optional<Opened> open() noexcept
    {
        uint32_t index = 0;
        if (!pop_free(index) && !take_fresh(index)) return std::nullopt;
        Slot& s = slot(index);
        const uint64_t old = s.state.load(std::memory_order_relaxed);
        const auto generation = static_cast<uint32_t>((old >> 32) + 1);
        const uint64_t handle = encode(generation, index);
        s.object.reset(handle);
        // Release: the reset object before a lookup can accept the handle.
        s.state.store((static_cast<uint64_t>(generation) << 32) | kOpenBit | 1, std::memory_order_release);
        in_use_.fetch_add(1, std::memory_order_acq_rel);
        return Opened{handle, &s.object};
    }

    // The object `handle` names while it is open; null for a foreign,
    // stale, closed or malformed handle. No reference is taken.
    T* get(uint64_t handle) const noexcept
    {
        Slot* s = find(handle);
        if (s == nullptr) return nullptr;
        const uint64_t state = s->state.load(std::memory_order_acquire);
        if ((state >> 32) != generation_of(handle) || (state & kOpenBit) == 0) return nullptr;
        return &s->object;
    }

    // Adds a reference to the open object `handle` names; null (nothing
    // taken) when it is not open. Each success needs one release().
    T* retain(uint64_t handle) noexcept { return retain_if(handle, true); }

    // As retain(), but also for a closed object that is still referenced
    // (not yet recycled): for a caller that reaches the object through a
    // reference of its own, such as a socket's port association.
    T* retain_live(uint64_t handle) noexcept { return retain_if(handle, false); }

    // Drops `n` references taken by retain()/retain_live() on this
    // incarnation of the slot. The last one on a closed slot frees it.
    void release(uint64_t handle, uint32_t n = 1) noexcept
    {
        if (n == 0) return;
        Slot* s = find(handle);
        if (s == nullptr) return;
        const uint64_t after = s->state.fetch_sub(n, std::memory_order_acq_rel) - n;
        if ((after & (kOpenBit | kRefMask)) == 0) free_slot(handle_index(handle));
    }

    // Closes the handle: lookups fail from now on, and the slot is
    // recycled once its last reference is released. False for a handle
    // that is not open (foreign, stale, already closed).
    bool close(uint64_t handle) noexcept
    {
        Slot* s = find(handle);
        if (s == nullptr) return false;
        uint64_t state = s->state.load(std::memory_order_acquire);
        for (;;) {
            if ((state >> 32) != generation_of(handle) || (state & kOpenBit) == 0) return false;
            const uint64_t next = (state & ~kOpenBit) - 1;
            if (s->state.compare_exchange_weak(state, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
                if ((next & kRefMask) == 0) free_slot(handle_index(handle));
                return true;
            }
        }
    }

private:
    static constexpr uint64_t kOpenBit = 1ull << 31;
    static constexpr uint64_t kRefMask = kOpenBit - 1;

    struct alignas(64) Slot {
        std::atomic<uint64_t> state{0};
        std::atomic<uint32_t> next_free{0}; // free stack link: index + 1, 0 ends
        T object{};
    };
    struct Chunk {
        Slot slots[kChunkSlots];
    };

    uint64_t encode(uint32_t generation, uint32_t index) const noexcept
    {
        return (static_cast<uint64_t>(tag_) << 56) | (static_cast<uint64_t>(generation) << 24) |
               (static_cast<uint64_t>(index + 1) << 2);
    }
    static uint32_t generation_of(uint64_t handle) noexcept { return static_cast<uint32_t>(handle >> 24); }
    static uint32_t handle_index(uint64_t handle) noexcept
    {
        return static_cast<uint32_t>((handle & 0xffffff) >> 2) - 1;
    }

    Slot& slot(uint32_t index) const noexcept { return chunks_[index / kChunkSlots].get()->slots[index % kChunkSlots]; }

    // The slot a well-formed handle of this table points at, if it was
    // ever allocated.
    Slot* find(uint64_t handle) const noexcept
    {
        if (!owns(handle) || (handle & 3) != 0) return nullptr;
        const uint64_t index_plus_one = (handle & 0xffffff) >> 2;
        if (index_plus_one == 0 || index_plus_one > capacity_) return nullptr;
        const auto index = static_cast<uint32_t>(index_plus_one - 1);
        Chunk* c = chunks_[index / kChunkSlots].get();
        return c == nullptr ? nullptr : &c->slots[index % kChunkSlots];
    }

    T* retain_if(uint64_t handle, bool must_be_open) noexcept
    {
        Slot* s = find(handle);
        if (s == nullptr) return nullptr;
        uint64_t state = s->state.load(std::memory_order_acquire);
        for (;;) {
            if ((state >> 32) != generation_of(handle)) return nullptr;
            if (must_be_open ? (state & kOpenBit) == 0 : (state & kRefMask) == 0) return nullptr;
            if ((state & kRefMask) == kRefMask) [[unlikely]]
                return nullptr; // 2^31 - 1 references
            if (s->state.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel, std::memory_order_acquire))
                return &s->object;
        }
    }

    // Treiber stack of free slots; the head carries a 32-bit ABA counter
    // above the index + 1. Links live in the slots, which are never freed,
    // so a popper reading a link of a slot another thread just took reads
    // valid memory and its compare-and-swap fails.
    bool pop_free(uint32_t& index) noexcept
    {
        uint64_t head = free_head_.load(std::memory_order_acquire);
        for (;;) {
            const auto top = static_cast<uint32_t>(head);
            if (top == 0) return false;
            const uint32_t next = slot(top - 1).next_free.load(std::memory_order_relaxed);
            const uint64_t replaced = (((head >> 32) + 1) << 32) | next;
            if (free_head_.compare_exchange_weak(head, replaced, std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
                index = top - 1;
                return true;
            }
        }
    }

    void free_slot(uint32_t index) noexcept
    {
        in_use_.fetch_sub(1, std::memory_order_acq_rel);
        Slot& s = slot(index);
        uint64_t head = free_head_.load(std::memory_order_relaxed);
        for (;;) {
            s.next_free.store(static_cast<uint32_t>(head), std::memory_order_relaxed);
            const uint64_t replaced = (((head >> 32) + 1) << 32) | (index + 1);
            // Release: the link before the head that publishes it.
            if (free_head_.compare_exchange_weak(head, replaced, std::memory_order_release, std::memory_order_relaxed))
                return;
        }
    }

    // A never-used slot, its chunk made first so that an index is only
    // consumed once its memory exists.
    bool take_fresh(uint32_t& index) noexcept
    {
        uint32_t n = next_fresh_.load(std::memory_order_relaxed);
        for (;;) {
            if (n >= capacity_) return false;
            if (chunks_[n / kChunkSlots].get_or_create() == nullptr) return false;
            if (next_fresh_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) {
                index = n;
                return true;
            }
        }
    }

    const uint32_t capacity_;
    const uint8_t tag_;
    std::unique_ptr<LazyPtr<Chunk>[]> chunks_;
    alignas(64) std::atomic<uint64_t> free_head_{0};
    std::atomic<uint32_t> next_fresh_{0};
    std::atomic<uint32_t> in_use_{0};
};

} // namespace ringsock::api
