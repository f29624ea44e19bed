// WakeHub's slow half: the spin, the futex sleep and the futex wake.
#include "api/wake_hub.hh"

#include <cerrno>
#include <climits>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dataplane/application_thread.hh"

namespace ringsock::api {

namespace {

inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what
// steady_clock reads on Linux; a null timeout sleeps until woken.
long futex_wait(std::atomic<uint32_t>* word, uint32_t expected, const timespec* absolute) noexcept
{
    static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
    return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected, absolute, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
}

timespec to_timespec(WakeHub::Clock::time_point t) noexcept
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    return ts;
}

} // namespace

bool WakeHub::wait(uint32_t seen, std::optional<Clock::time_point> deadline) noexcept
{
    if (epoch_.load(std::memory_order_acquire) != seen) return true;
    auto now = Clock::now();
    if (deadline && now >= *deadline) return false;

    // Spin: a completion usually lands within microseconds of a busy
    // engine's last one. The clock is read every 32 pauses.
    auto spin_end = now + kSpin;
    if (deadline && *deadline < spin_end) spin_end = *deadline;
    for (;;) {
        for (int i = 0; i < 32; ++i) {
            if (epoch_.load(std::memory_order_acquire) != seen) return true;
            cpu_relax();
        }
        if (Clock::now() >= spin_end) break;
    }

    // Sleep, holding no cached mbufs: an idle application thread's cache
    // is out of the engines' reach. The count goes up before the epoch is re-read (both seq_cst,
    // against notify's add-then-load): either the notifier sees a sleeper
    // and wakes, or this thread sees the new epoch; and the futex itself
    // refuses to sleep when the word no longer equals `seen`.
    dataplane::release_cached_mbufs();
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    bool changed = false;
    for (;;) {
        if (epoch_.load(std::memory_order_seq_cst) != seen) {
            changed = true;
            break;
        }
        timespec ts{};
        const timespec* timeout = nullptr;
        if (deadline) {
            if (Clock::now() >= *deadline) break;
            ts = to_timespec(*deadline);
            timeout = &ts;
        }
        // 0 (woken, maybe spuriously), EAGAIN (the epoch moved), EINTR,
        // ETIMEDOUT: all loop back to the tests above.
        futex_wait(&epoch_, seen, timeout);
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    // Acquire for the caller's re-test, whichever way we left.
    return changed || epoch_.load(std::memory_order_acquire) != seen;
}

void WakeHub::wake_all() noexcept
{
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

} // namespace ringsock::api
