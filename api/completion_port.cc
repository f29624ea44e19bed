// CompletionPort: admission, the engines' push, posted packets, the
// reapers' dequeue and CloseHandle's abandonment. Abandonment uses the same
// Dekker handshake as ApcQueue (see apc_queue.cc): the closer sets the flag,
// fences and drains; a late producer enqueues, fences, reads the flag and
// drains what it produced into. Producers push on a socket association's
// reference (closesocket releases it only when the socket has nothing
// outstanding and no caller inside), so the slot is recycled only with every
// ring empty.
#include "api/completion_port.hh"

#include <bit>

#include "api/wait_objects.hh"

namespace ringsock::api {

void CompletionPort::reset(uint64_t handle) noexcept
{
    // What an application thread pushed after abandon() drained (it does
    // not fence, see push_associated) waits here: nobody can push now, the
    // slot being free of references.
    uint64_t mask = ring_mask_.load(std::memory_order_acquire);
    for (; mask != 0; mask &= mask - 1)
        drop_ring(*rings_[static_cast<unsigned>(std::countr_zero(mask))].get());
    dropped_.store(0, std::memory_order_relaxed);
    cursor_.store(0, std::memory_order_relaxed);
    abandoned_.store(false, std::memory_order_release);
    handle_.store(handle, std::memory_order_release);
}

CompletionPort::Ring* CompletionPort::ring_for(unsigned engine) noexcept
{
    if (engine >= kMaxEngines) [[unlikely]]
        return nullptr;
    Ring* ring = rings_[engine].get();
    if (ring == nullptr) [[unlikely]] {
        ring = rings_[engine].get_or_create(ring_capacity_);
        if (ring == nullptr) return nullptr;
        ring_mask_.fetch_or(uint64_t{1} << engine, std::memory_order_acq_rel); // after the pointer
    }
    return ring;
}

bool CompletionPort::try_reserve(unsigned engine) noexcept
{
    Ring* ring = ring_for(engine);
    return ring != nullptr && ring->try_reserve(1);
}

void CompletionPort::unreserve(unsigned engine) noexcept
{
    rings_[engine].get()->unreserve(1);
}

void CompletionPort::publish(unsigned engine, const Completion* c, uint32_t n) noexcept
{
    Ring& ring = *rings_[engine].get();
    ring.push_burst(c, n);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (abandoned_.load(std::memory_order_relaxed)) [[unlikely]]
        drop_ring(ring);
}

void CompletionPort::push_burst(unsigned engine, const Completion* c, uint32_t n) noexcept
{
    if (n == 0) return;
    publish(engine, c, n);
    wait_objects().hub().notify();
}

void CompletionPort::push_associated(unsigned engine, const Completion& c) noexcept
{
    // No fence here (it was a twentieth of the application thread's time
    // per datagram in ringsock-bench-api-rx): a push that misses a
    // concurrent abandon() leaves its entry in the closed port's ring,
    // where the next push that sees the flag drops it, or reset() does
    // before the slot serves another port. Either way it is lost with the
    // port, as a fenced push racing abandon() may be (a reaper already
    // inside the port can take it first in both cases).
    Ring& ring = *rings_[engine].get();
    ring.push_burst(&c, 1);
    if (abandoned_.load(std::memory_order_relaxed)) [[unlikely]]
        drop_ring(ring);
    wait_objects().hub().notify();
}

bool CompletionPort::post(const Completion& c) noexcept
{
    if (abandoned_.load(std::memory_order_acquire)) return false;
    MpmcQueue<Completion>* q = posted_.get_or_create(kPostedCapacity);
    if (q == nullptr || !q->try_push(c)) return false;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (abandoned_.load(std::memory_order_relaxed)) [[unlikely]]
        drop_posted();
    wait_objects().hub().notify();
    return true;
}

unsigned CompletionPort::dequeue(Completion* out, unsigned max) noexcept
{
    if (max == 0) return 0;
    // A racy increment is enough: it only spreads where calls start.
    const uint32_t turn = cursor_.load(std::memory_order_relaxed);
    cursor_.store(turn + 1, std::memory_order_relaxed);

    unsigned n = 0;
    MpmcQueue<Completion>* posted = posted_.get();
    const bool posted_first = (turn & 1) != 0;
    if (posted != nullptr && posted_first) n += posted->pop_burst(out, max);

    uint64_t mask = ring_mask_.load(std::memory_order_acquire);
    if (mask != 0 && n < max) {
        unsigned engines[kMaxEngines];
        unsigned count = 0;
        for (; mask != 0; mask &= mask - 1)
            engines[count++] = static_cast<unsigned>(std::countr_zero(mask));
        const unsigned first = (turn >> 1) % count;
        for (unsigned i = 0; i < count && n < max; ++i) {
            Ring& ring = *rings_[engines[(first + i) % count]].get();
            // Consumer side (multi-consumer): each taken entry releases its
            // ring reservation.
            n += ring.pop_burst(out + n, max - n);
        }
    }
    if (posted != nullptr && !posted_first && n < max) n += posted->pop_burst(out + n, max - n);
    return n;
}

uint32_t CompletionPort::reserved(unsigned engine) const noexcept
{
    const Ring* ring = engine < kMaxEngines ? rings_[engine].get() : nullptr;
    return ring == nullptr ? 0 : ring->reserved();
}

void CompletionPort::release_association() noexcept
{
    wait_objects().ports().release(handle());
}

void CompletionPort::drop_ring(Ring& ring) noexcept
{
    Completion batch[kBurst];
    for (uint32_t n; (n = ring.pop_burst(batch, kBurst)) != 0;)
        dropped_.fetch_add(n, std::memory_order_relaxed);
}

void CompletionPort::drop_posted() noexcept
{
    MpmcQueue<Completion>* q = posted_.get();
    if (q == nullptr) return;
    Completion batch[kBurst];
    for (uint32_t n; (n = q->pop_burst(batch, kBurst)) != 0;)
        dropped_.fetch_add(n, std::memory_order_relaxed);
}

void CompletionPort::abandon() noexcept
{
    abandoned_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint64_t mask = ring_mask_.load(std::memory_order_acquire);
    for (; mask != 0; mask &= mask - 1)
        drop_ring(*rings_[static_cast<unsigned>(std::countr_zero(mask))].get());
    drop_posted();
    wait_objects().hub().notify(); // blocked reapers see the port closed
}

} // namespace ringsock::api
