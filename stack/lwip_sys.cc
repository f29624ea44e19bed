// stack/lwip_sys.cc — the operating-system half of ringsock's lwIP port
// (NO_SYS=1): sys_now() for lwIP's timers and LWIP_RAND()'s generator.
//
// sys_now() may be called from any thread (it only reads CLOCK_MONOTONIC,
// a vDSO call, about 20 ns, once per sys_check_timeouts per burst); it does
// not need the EAL, so unit tests link lwIP without starting DPDK.
// ringsock_lwip_rand() keeps its state per thread (lwIP calls it on the
// lwIP engine only); it is not for secrets. Limits: sys_now() wraps after
// 49.7 days, which lwIP's timeout arithmetic (TIME_LESS_THAN) expects.

#include <sys/random.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" {
#include "lwip/sys.h"
}

namespace {

std::uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

// splitmix64 (Steele, Lea, Flood 2014): one add and three multiply-xorshift
// steps per number; every 64-bit seed gives a full-period sequence.
struct Splitmix64 {
    std::uint64_t state;

    std::uint64_t next()
    {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

Splitmix64 seeded_generator()
{
    std::uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
        // Not a secret: the clock is an acceptable seed for port and timer
        // jitter when getrandom() is unavailable (old kernel, seccomp).
        seed = monotonic_ns();
    }
    return Splitmix64{seed};
}

} // namespace

extern "C" u32_t sys_now(void)
{
    return static_cast<u32_t>(monotonic_ns() / 1'000'000U);
}

extern "C" std::uint32_t ringsock_lwip_rand(void)
{
    thread_local Splitmix64 generator = seeded_generator();
    return static_cast<std::uint32_t>(generator.next() >> 32);
}
