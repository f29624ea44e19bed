#include "dataplane/application_thread.hh"

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {

namespace {

static_assert(detail::kLcoreUnknown != LCORE_ID_ANY);

void flush_cache_of_lcore(rte_mempool* pool, void* lcore) noexcept
{
    rte_mempool_cache* cache = rte_mempool_default_cache(pool, *static_cast<unsigned*>(lcore));
    if (cache != nullptr) rte_mempool_cache_flush(cache, pool);
}

// One per application thread that called in, made by its one try
// (detail::registration_tried); lives until the thread ends.
class Registration {
public:
    Registration() noexcept
    {
        if (rte_thread_register() == 0) {
            lcore_ = rte_lcore_id();
            detail::thread_lcore = lcore_;
            return;
        }
        spdlog::debug("ringsock: EAL refused to register an application thread ({}); its mbufs go uncached",
                      rte_strerror(rte_errno));
    }
    ~Registration()
    {
        if (lcore_ == LCORE_ID_ANY) return;
        // A cache left behind would hold its mbufs until another thread
        // happened to get the same id.
        release_cached_mbufs();
        rte_thread_unregister();
        detail::thread_lcore =
            LCORE_ID_ANY; // a later free on this thread (another thread_local's destructor) goes uncached
    }

    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    unsigned lcore_ = LCORE_ID_ANY;
};

} // namespace

void detail::try_registration() noexcept
{
    registration_tried = true;
    if (this_lcore() != LCORE_ID_ANY) return; // an EAL lcore, or registered already
    // Per thread by nature: EAL's own lcore id is thread-local too.
    thread_local Registration registration;
    static_cast<void>(registration);
}

unsigned detail::ask_lcore() noexcept
{
    thread_lcore = rte_lcore_id();
    return thread_lcore;
}

void release_cached_mbufs() noexcept
{
    unsigned lcore = rte_lcore_id();
    if (lcore != LCORE_ID_ANY) rte_mempool_walk(flush_cache_of_lcore, &lcore);
}

} // namespace ringsock::dataplane
