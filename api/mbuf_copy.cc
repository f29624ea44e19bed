#define RINGSOCK_NO_BSD_NAMES
#include "api/mbuf_copy.hh"

#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/application_thread.hh"

namespace ringsock::api {

uint32_t copy_payload(const rte_mbuf* m, uint32_t offset, uint32_t length, const WSABUF* buffers,
                      uint32_t count) noexcept
{
    uint32_t copied = 0;
    for (uint32_t i = 0; i < count && copied < length; ++i) {
        const uint32_t take = std::min<uint32_t>(buffers[i].len, length - copied);
        if (take == 0) continue;
        // Contiguous data comes back in place and is copied here; data
        // spanning segments is gathered into the buffer by the read itself.
        const void* src = rte_pktmbuf_read(m, offset + copied, take, buffers[i].buf);
        if (src != buffers[i].buf) std::memcpy(buffers[i].buf, src, take);
        copied += take;
    }
    return copied;
}

// rte_pktmbuf_free() with the mempool cache found from this_lcore():
// DPDK's asks rte_lcore_id() for every segment, a call to __tls_get_addr
// from this shared library (3 % of a run-to-completion receive in perf).
void free_mbuf(rte_mbuf* m) noexcept
{
    const unsigned lcore = dataplane::this_lcore();
    while (m != nullptr) {
        rte_mbuf* next = m->next;
        if (rte_mbuf* freed = rte_pktmbuf_prefree_seg(m)) {
            void* object = freed;
            rte_mempool_generic_put(freed->pool, &object, 1, rte_mempool_default_cache(freed->pool, lcore));
        }
        m = next;
    }
}

} // namespace ringsock::api
