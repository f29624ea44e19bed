// ApcQueue: admission, the engines' push, user APCs, the owner's run loop
// and the thread-exit protocol.
//
// Abandonment is a Dekker handshake between the exiting owner and late
// producers, both with seq_cst fences: the owner sets `abandoned_`, fences,
// then empties every ring and the user queue; a producer enqueues, fences,
// then reads `abandoned_` and empties what it produced into if set. Either
// the owner's drain sees the entry or the producer sees the flag (or both,
// and the multi-consumer dequeue hands each entry to one of them). Producers
// hold a reference to the slot through all of it, so the slot is recycled
// only when every ring is empty.
#include "api/apc_queue.hh"

#include <bit>

#include "api/wait_objects.hh"

namespace ringsock::api {

namespace {

// The calling thread's queue, closed when the thread exits. `exited`
// stays readable after the owner's destructor ran (it is trivially
// destructible), so a late call from another thread_local's destructor gets
// the refusing queue instead of a destroyed owner.
struct ThreadOwner {
    ApcQueue* queue = nullptr;
    ThreadOwner() = default;
    ThreadOwner(const ThreadOwner&) = delete;
    ThreadOwner& operator=(const ThreadOwner&) = delete;
    ~ThreadOwner();
};
thread_local ThreadOwner t_owner;
thread_local bool t_exited = false;

ThreadOwner::~ThreadOwner()
{
    t_exited = true;
    if (queue != nullptr) queue->abandon();
}

// For threads beyond the table's capacity: refuses everything.
ApcQueue& refusing_queue() noexcept
{
    static ApcQueue* q = [] {
        static ApcQueue refusing;
        refusing.abandon();
        return &refusing;
    }();
    return *q;
}

} // namespace

ApcQueue& ApcQueue::current() noexcept
{
    if (t_owner.queue != nullptr) [[likely]]
        return *t_owner.queue;
    if (t_exited) return refusing_queue();
    auto opened = wait_objects().threads().open();
    if (!opened) [[unlikely]]
        return refusing_queue();
    t_owner.queue = opened->object;
    return *opened->object;
}

void ApcQueue::reset(uint64_t handle) noexcept
{
    running_ = false;
    dropped_.store(0, std::memory_order_relaxed);
    abandoned_.store(false, std::memory_order_release);
    handle_.store(handle, std::memory_order_release);
}

bool ApcQueue::try_reserve(unsigned engine) noexcept
{
    if (engine >= kMaxEngines) [[unlikely]]
        return false;
    if (abandoned_.load(std::memory_order_acquire)) [[unlikely]]
        return false;
    const uint64_t h = handle();
    auto& threads = wait_objects().threads();
    if (threads.retain(h) == nullptr) [[unlikely]]
        return false;
    Ring* ring = rings_[engine].get();
    if (ring == nullptr) [[unlikely]] {
        ring = rings_[engine].get_or_create(kRingCapacity);
        if (ring == nullptr) {
            threads.release(h);
            return false;
        }
        // Release: the ring's pointer is published before its bit.
        ring_mask_.fetch_or(uint64_t{1} << engine, std::memory_order_acq_rel);
    }
    if (!ring->try_reserve(1)) {
        threads.release(h);
        return false;
    }
    return true;
}

void ApcQueue::unreserve(unsigned engine) noexcept
{
    rings_[engine].get()->unreserve(1);
    wait_objects().threads().release(handle());
}

void ApcQueue::push(unsigned engine, const ApcEntry& entry) noexcept
{
    WaitObjects& w = wait_objects();
    const uint64_t h = handle(); // stable: our reservation keeps the slot
    Ring& ring = *rings_[engine].get();
    if (ring.enqueue_burst(&entry, 1) != 1) [[unlikely]]
        dropped_.fetch_add(1, std::memory_order_relaxed); // pushed without a reservation
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (abandoned_.load(std::memory_order_relaxed)) [[unlikely]]
        drop_ring(ring);
    w.threads().release(h);
    w.hub().notify();
}

bool ApcQueue::post_user_apc(LPWSAUSERAPC fn, DWORD_PTR context) noexcept
{
    if (fn == nullptr || abandoned_.load(std::memory_order_acquire)) return false;
    MpmcQueue<UserApc>* q = user_.get_or_create(kUserCapacity);
    if (q == nullptr || !q->try_push(UserApc{fn, context})) return false;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (abandoned_.load(std::memory_order_relaxed)) [[unlikely]]
        drop_user();
    wait_objects().hub().notify();
    return true;
}

bool ApcQueue::has_pending() const noexcept
{
    if (const auto* q = user_.get(); q != nullptr && !q->empty()) return true;
    uint64_t mask = ring_mask_.load(std::memory_order_acquire);
    while (mask != 0) {
        const auto e = static_cast<unsigned>(std::countr_zero(mask));
        mask &= mask - 1;
        if (!rings_[e].get()->empty()) return true;
    }
    return false;
}

uint32_t ApcQueue::reserved(unsigned engine) const noexcept
{
    const Ring* ring = engine < kMaxEngines ? rings_[engine].get() : nullptr;
    return ring == nullptr ? 0 : ring->reserved();
}

void ApcQueue::run(const ApcEntry& entry) noexcept
{
    if (entry.routine != nullptr) {
        entry.routine(entry.error, entry.bytes, entry.overlapped, entry.flags);
    } else {
        const auto fn = reinterpret_cast<LPWSAUSERAPC>(reinterpret_cast<uintptr_t>(entry.overlapped));
        if (fn != nullptr) fn(entry.context);
    }
}

unsigned ApcQueue::run_pending() noexcept
{
    if (running_) return 0; // inside one of our routines: never nest
    running_ = true;
    unsigned ran = 0;
    for (;;) {
        unsigned pass = 0;
        if (MpmcQueue<UserApc>* q = user_.get(); q != nullptr) {
            // At most one queue's worth per pass, so a thread that keeps
            // posting cannot hold the rings off.
            UserApc apc{};
            for (uint32_t i = 0; i < kUserCapacity && q->try_pop(apc); ++i) {
                apc.fn(apc.context);
                ++pass;
            }
        }
        uint64_t mask = ring_mask_.load(std::memory_order_acquire);
        while (mask != 0) {
            const auto e = static_cast<unsigned>(std::countr_zero(mask));
            mask &= mask - 1;
            Ring& ring = *rings_[e].get();
            ApcEntry batch[kBurst];
            // Consumer side: one claim per burst, each entry's reservation
            // released by it. The multi-consumer dequeue although only the
            // owner consumes: after an abandonment the drains (also
            // multi-consumer) leave the single-consumer tail cache behind
            // the head, and the next thread to get this slot would misread
            // it; one uncontended compare-and-swap per burst is the price.
            for (uint32_t n; (n = ring.dequeue_burst_mc(batch, kBurst)) != 0;) {
                for (uint32_t i = 0; i < n; ++i)
                    run(batch[i]);
                pass += n;
            }
        }
        if (pass == 0) break;
        ran += pass;
    }
    running_ = false;
    return ran;
}

void ApcQueue::drop_ring(Ring& ring) noexcept
{
    ApcEntry batch[kBurst];
    for (uint32_t n; (n = ring.dequeue_burst_mc(batch, kBurst)) != 0;)
        dropped_.fetch_add(n, std::memory_order_relaxed);
}

void ApcQueue::drop_user() noexcept
{
    MpmcQueue<UserApc>* q = user_.get();
    if (q == nullptr) return;
    UserApc apc{};
    while (q->try_pop(apc))
        dropped_.fetch_add(1, std::memory_order_relaxed);
}

void ApcQueue::abandon() noexcept
{
    abandoned_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint64_t mask = ring_mask_.load(std::memory_order_acquire);
    while (mask != 0) {
        const auto e = static_cast<unsigned>(std::countr_zero(mask));
        mask &= mask - 1;
        drop_ring(*rings_[e].get());
    }
    drop_user();
    // The handle's reference last: until here nothing can recycle the slot.
    if (const uint64_t h = handle(); h != 0) wait_objects().threads().close(h);
}

} // namespace ringsock::api
