// A thread's APC queue: the completion routines of its overlapped requests
// and the user APCs queued to it (WPUQueueApc), run when it waits
// alertably (SleepEx, WSAWaitForMultipleEvents, GetQueuedCompletionStatusEx
// with fAlertable). One queue per application thread, made on the thread's
// first call to ApcQueue::current(); its handle (the WSATHREADID's
// ThreadHandle) comes from the process's thread table (wait_objects.hh).
//
// Producers: each engine through its own single-producer CompletionRing
// (made on first use, published by one compare-and-swap), after reserving a
// slot when the request is posted so that the completion always fits; any
// thread through a bounded MPMC queue for user APCs. The consumer is the
// owning thread alone (run_pending). No locks on either side.
//
// Lifetime: the queue object lives in the thread table, which never frees
// memory; every reservation holds a reference to the slot, so it is not
// recycled for another thread while an engine may still push to it. When
// its thread exits the queue is abandoned: its handle is closed, what is
// queued and what engines push later is dropped and counted (dropped()).
// Windows cancels the I/O of an exited thread, so nobody is owed those
// routines; the OVERLAPPED was written all the same.
//
// Order: entries from one engine run in the order that engine pushed them;
// across engines and user APCs there is no global order (Windows keeps one
// FIFO per thread).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "api/completion.hh"
#include "api/completion_ring.hh"
#include "api/handle_table.hh"
#include "api/wake_hub.hh"
#include "ringsock/ws2spi.h"

namespace ringsock::api {

class ApcQueue {
public:
    // Completion routines one engine may owe one thread at once: a posted
    // request with a routine reserves one. 1024 × 40 bytes per (thread,
    // engine) pair that is used; more outstanding requests than that are
    // refused with WSAEWOULDBLOCK by the socket layer.
    static constexpr uint32_t kRingCapacity = 1024;
    // User APCs queued and not yet run (WPUQueueApc fails beyond).
    static constexpr uint32_t kUserCapacity = 1024;
    // Entries taken from a ring at a time by run_pending.
    static constexpr uint32_t kBurst = 32;

    ApcQueue() = default;
    ApcQueue(const ApcQueue&) = delete;
    ApcQueue& operator=(const ApcQueue&) = delete;

    // The calling thread's queue, made on first use. When the thread
    // table is full (or the thread is exiting) it is a queue that refuses
    // every reservation and APC, so callers see admission failures rather
    // than a crash.
    static ApcQueue& current() noexcept;

    // The handle naming this queue (WSATHREADID::ThreadHandle); 0 for the
    // refusing queue.
    uint64_t handle() const noexcept { return handle_.load(std::memory_order_acquire); }

    // ---- posting thread ---------------------------------------------------

    // Admission: reserves room on `engine`'s ring for one completion
    // routine (and a reference that keeps this queue from being recycled).
    // False when the ring is full, the engine index is out of range
    // (kMaxEngines), memory for the ring could not be had, or the thread
    // has exited. Each success is followed by exactly one push() or
    // unreserve() for the same engine.
    bool try_reserve(unsigned engine) noexcept;
    // Gives back a reservation that will not be pushed (the post failed).
    void unreserve(unsigned engine) noexcept;

    // ---- engine `engine` (one thread per engine index) -----------------

    // Queues a completion routine: `entry.routine(entry.error, entry.bytes,
    // entry.overlapped, entry.flags)`; an entry with a null routine is a
    // user APC whose function is `entry.overlapped` cast back to
    // LPWSAUSERAPC, called with `entry.context`. Needs a reservation on
    // `engine`, which it consumes; never fails. Wakes the owner. After the
    // owner exited the entry is dropped and counted.
    void push(unsigned engine, const ApcEntry& entry) noexcept;

    // ---- any thread -------------------------------------------------------

    // Queues `fn(context)` (WPUQueueApc). False when kUserCapacity APCs
    // are queued already, fn is null, memory for the queue could not be
    // had, or the owner exited. The caller must keep the queue alive
    // across the call (its own thread's queue, or a retain()ed handle).
    bool post_user_apc(LPWSAUSERAPC fn, DWORD_PTR context) noexcept;

    // Whether anything waits to run (a snapshot).
    bool has_pending() const noexcept;
    bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }
    // Entries dropped because the owner had exited (or, never expected,
    // pushed without a reservation into a full ring).
    uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    // Reservations plus queued entries on `engine`'s ring.
    uint32_t reserved(unsigned engine) const noexcept;

    // ---- owning thread only --------------------------------------------

    // Runs every queued entry, including those that arrive meanwhile,
    // until none is left; returns how many ran. Does not nest: called from
    // inside one of this queue's routines (which itself waits alertably)
    // it runs nothing and returns 0, which is how completion routines are
    // never nested for one socket. Routines must not throw.
    unsigned run_pending() noexcept;
    // Whether run_pending is running a routine now.
    bool running() const noexcept { return running_; }

    // ---- the thread table ----------------------------------------------

    // A new incarnation for a new thread: empty, not abandoned. Rings made
    // for an earlier thread are kept (empty) for reuse.
    void reset(uint64_t handle) noexcept;
    // The owner is exiting: refuse new work, drop what is queued, close
    // the handle. Called once, from the owning thread's exit.
    void abandon() noexcept;

private:
    struct UserApc {
        LPWSAUSERAPC fn;
        DWORD_PTR context;
    };
    using Ring = CompletionRing<ApcEntry>;

    static void run(const ApcEntry& entry) noexcept;
    // After abandonment: empty `ring` (any thread; multi-consumer safe).
    void drop_ring(Ring& ring) noexcept;
    void drop_user() noexcept;

    std::array<LazyPtr<Ring>, kMaxEngines> rings_;
    std::atomic<uint64_t> ring_mask_{0}; // bit e: rings_[e] exists
    LazyPtr<MpmcQueue<UserApc>> user_;
    std::atomic<uint64_t> handle_{0};
    std::atomic<bool> abandoned_{false};
    std::atomic<uint64_t> dropped_{0};
    bool running_ = false; // owner's
};

} // namespace ringsock::api
