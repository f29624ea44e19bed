// Pins the calling thread to one CPU, for the kernel baselines whose
// sender and receiver must not share a core. False when the kernel refuses
// (no such CPU, or outside the cgroup's set).
#pragma once

#include <pthread.h>
#include <sched.h>

namespace ringsock::bench {

inline bool pin_thread(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

} // namespace ringsock::bench
