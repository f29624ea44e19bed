#include "stack/tcp_out_of_order.hh"

#include <rte_mbuf.h>

#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stack/rx_pbuf.hh"
#include "stack/tcp_segment_pbufs.hh"

namespace ringsock::stack {

namespace {

// Whether a pool is short, asked once per pool per sweep: a queue holds up
// to TCP_OOSEQ_MAX_PBUFS segments, nearly always of one pool, and asking
// reads the pool ring's shared head and tail.
class ShortPools {
public:
    bool holds_short(const pbuf* p) noexcept
    {
        const rte_mbuf* m = rx_mbuf_of(p);
        if (m == nullptr) return false; // a copy: lwIP's heap or its own pool
        if (m->pool != last_pool_) {
            last_pool_ = m->pool;
            last_short_ = rx_pool_short(*m->pool);
        }
        return last_short_;
    }

private:
    const rte_mempool* last_pool_ = nullptr;
    bool last_short_ = false;
};

// True when any segment of the queue lies in a short pool's mbuf. A queue
// may mix pools (frames handed over from another NUMA node's engine) and
// copies (looped-back or chained frames), so each is asked.
bool pins_a_short_pool(const tcp_seg* queue, ShortPools& pools) noexcept
{
    for (const tcp_seg* seg = queue; seg != nullptr; seg = seg->next)
        for (const pbuf* p = seg->p; p != nullptr; p = p->next)
            if (pools.holds_short(p)) return true;
    return false;
}

} // namespace

uint64_t free_out_of_order_pinning_short_pools() noexcept
{
    uint64_t freed = 0;
    ShortPools pools;
    for (tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) {
        if (pcb->ooseq == nullptr || !pins_a_short_pool(pcb->ooseq, pools)) continue;
        freed += pbufs_in(pcb->ooseq);
        tcp_free_ooseq(pcb);
    }
    return freed;
}

} // namespace ringsock::stack
