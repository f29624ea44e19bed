// An I/O completion port: where the completions of the sockets associated
// with it queue until a thread takes them (GetQueuedCompletionStatus[Ex]),
// and where PostQueuedCompletionStatus puts its packets.
//
// Producers: one PortRing per engine (made on first use, published by one
// compare-and-swap), into which the posting thread reserved a slot so that
// the completion always fits; the engine pushes there what it completes,
// and an application thread what it completed at once for a socket of that
// engine (so one socket's completions stay in one FIFO). Any thread
// through a bounded MPMC queue for posted packets. Consumers: any
// number of threads at once, with the rings' multi-consumer dequeue. No
// locks on either side; blocking is the caller's (WakeHub loop).
//
// Lifetime: the port lives in the port table, which never frees memory.
// References (HandleTable::retain) are held by the handle, by every socket
// association (which outlives the socket's requests: closesocket releases
// it only after they completed), and by threads blocked on the port; the
// slot is recycled only when all are gone. After CloseHandle the port is
// abandoned: what is queued, and what engines push
// later for sockets still associated, is dropped and counted, as Windows
// discards the queue of a port nobody can read.
//
// Limits: no concurrency limit (NumberOfConcurrentThreads is ignored); no
// global FIFO across engines and posted packets, only per engine.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "api/completion.hh"
#include "api/handle_table.hh"
#include "api/port_ring.hh"
#include "api/wake_hub.hh"

namespace ringsock::api {

class CompletionPort {
public:
    // Completions one engine may owe one port at once (a posted request
    // reserves one): 4096 × 32 bytes per engine that completes for the port.
    static constexpr uint32_t kDefaultRingCapacity = 4096;
    // PostQueuedCompletionStatus packets queued and not yet taken.
    static constexpr uint32_t kPostedCapacity = 4096;
    static constexpr uint32_t kBurst = 32;

    // `ring_capacity`: per-engine ring size, a power of two.
    explicit CompletionPort(uint32_t ring_capacity = kDefaultRingCapacity) noexcept : ring_capacity_(ring_capacity) {}
    CompletionPort(const CompletionPort&) = delete;
    CompletionPort& operator=(const CompletionPort&) = delete;

    // The port's handle (its HandleTable's), 0 for a port outside a table.
    uint64_t handle() const noexcept { return handle_.load(std::memory_order_acquire); }

    // ---- posting thread ---------------------------------------------------

    // Admission: reserves room on `engine`'s ring for one completion. False
    // when the ring is full, `engine` is out of range (kMaxEngines) or
    // memory for the ring could not be had. An abandoned (closed) port
    // still admits, for sockets still associated with it; their
    // completions are dropped. Each success is followed by exactly one
    // push() or unreserve(). The port is not retained: the socket's
    // association keeps it until the request completed (closesocket waits
    // for `outstanding`, which an engine drops only after the push).
    bool try_reserve(unsigned engine) noexcept;
    // Gives back a reservation that will not be pushed.
    void unreserve(unsigned engine) noexcept;

    // ---- a thread that completed a receive in the call ---------------

    // As push(), for an application thread that holds the socket's
    // association across the call (closesocket waits for it): no fence
    // (see completion_port.cc).
    void push_associated(unsigned engine, const Completion& c) noexcept;

    // ---- engine `engine` (one thread per engine index) -----------------

    // Queues a completion reserved on `engine` by try_reserve(); consumes
    // the reservation, never fails. Wakes waiters.
    void push(unsigned engine, const Completion& c) noexcept { push_burst(engine, &c, 1); }
    // `n` completions, each reserved on `engine`; one wake for the burst.
    void push_burst(unsigned engine, const Completion* c, uint32_t n) noexcept;

    // ---- any thread -------------------------------------------------------

    // Queues a packet (PostQueuedCompletionStatus). False when
    // kPostedCapacity packets wait already, memory for the queue could not
    // be had, or the port is closed. The caller keeps the port alive
    // across the call (a retain()ed handle).
    bool post(const Completion& c) noexcept;

    // Takes up to `max` completions, without blocking; returns how many.
    // Fair across engines: each call starts at the next ring, and posted
    // packets go first on every other call.
    unsigned dequeue(Completion* out, unsigned max) noexcept;

    // Whether CloseHandle closed the port.
    bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }
    // Completions and packets dropped after the port was closed.
    uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    // Reservations plus queued completions on `engine`'s ring.
    uint32_t reserved(unsigned engine) const noexcept;

    // The socket layer: drops the reference that CreateIoCompletionPort
    // took for a socket's association, when the socket closes.
    void release_association() noexcept;

    // ---- the port table and CloseHandle ---------------------------------

    // A new incarnation: empty, open. Rings are kept (empty) for reuse.
    void reset(uint64_t handle) noexcept;
    // CloseHandle, after the handle was closed and while the closer holds a
    // reference: drops what is queued and what arrives later, wakes waiters.
    void abandon() noexcept;

private:
    using Ring = PortRing<Completion>;

    // The ring of `engine`, made on first use; null when it cannot be.
    Ring* ring_for(unsigned engine) noexcept;
    // Queues reserved completions on `engine`'s ring, then drops them if the
    // port was abandoned meanwhile (the Dekker handshake with abandon()).
    void publish(unsigned engine, const Completion* c, uint32_t n) noexcept;
    void drop_ring(Ring& ring) noexcept;
    void drop_posted() noexcept;

    const uint32_t ring_capacity_;
    std::array<LazyPtr<Ring>, kMaxEngines> rings_;
    std::atomic<uint64_t> ring_mask_{0}; // bit e: rings_[e] exists
    LazyPtr<MpmcQueue<Completion>> posted_;
    std::atomic<uint64_t> handle_{0};
    std::atomic<bool> abandoned_{false};
    std::atomic<uint32_t> cursor_{0}; // where the next dequeue starts
    std::atomic<uint64_t> dropped_{0};
};

} // namespace ringsock::api
