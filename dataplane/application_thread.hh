// Threads the application made, as EAL sees them. EAL gives its own lcores
// a per-lcore mempool cache; any other thread frees and allocates each mbuf
// with an atomic operation on the pool's ring, whose lines the engines'
// cores write too. An application with a thread per engine, none of them
// the thread that started EAL, paid that on every datagram it received.
// Registering such a thread (rte_thread_register) gives it an lcore id of
// its own and with it a cache like an engine's.
#pragma once

namespace ringsock::dataplane {

// Registers the calling thread with EAL the first time it calls, so its
// mbuf frees and allocations go through a cache of its own. Costs one
// thread-local read afterwards. Does nothing on EAL's lcores (engines, the
// thread that started EAL) and, after one try, on a thread EAL refused
// (every lcore id taken, or a secondary process attached): that thread
// keeps the uncached path, which is correct, only slower. Once a thread is
// registered, EAL refuses secondary processes (dpdk-dumpcap, dpdk-pdump):
// the runtime calls this only when eal.register_application_threads says so. When the thread ends,
// the mbufs cached under its lcore id go back to their pools and the id
// back to EAL.
inline void register_application_thread() noexcept;

// The calling thread's EAL lcore id (LCORE_ID_ANY on a thread without
// one), as rte_lcore_id() says, but remembered in initial-exec TLS: EAL's
// own per-lcore variable lives in librte_eal, so every rte_lcore_id() in
// libringsock, and every mempool put or get that asks it for the cache,
// is a call to __tls_get_addr. Kept right across registration above and
// across the unregistration when the thread ends.
inline unsigned this_lcore() noexcept;

namespace detail {
// Asked on every receive: initial-exec (libringsock is linked, never
// dlopen()ed late), and inline below, so each ask is one load.
inline constexpr unsigned kLcoreUnknown = ~0u - 1; // LCORE_ID_ANY is ~0u
inline thread_local unsigned thread_lcore __attribute__((tls_model("initial-exec"))) = kLcoreUnknown;
inline thread_local bool registration_tried __attribute__((tls_model("initial-exec"))) = false;
unsigned ask_lcore() noexcept;
void try_registration() noexcept;
} // namespace detail

inline void register_application_thread() noexcept
{
    if (!detail::registration_tried) [[unlikely]]
        detail::try_registration();
}

inline unsigned this_lcore() noexcept
{
    const unsigned lcore = detail::thread_lcore;
    return lcore != detail::kLcoreUnknown ? lcore : detail::ask_lcore();
}

// Returns the mbufs the calling thread's lcore cache holds to their pools:
// for a thread about to sleep, so that what it cached while busy is not
// out of the engines' reach while it waits. Nothing on a thread without an
// lcore id.
void release_cached_mbufs() noexcept;

} // namespace ringsock::dataplane
