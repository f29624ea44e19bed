#include "stack/rx_pbuf.hh"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/mempool.hh"
#include "lwip/pbuf.h"

namespace ringsock::stack {

namespace {

// The RX pbuf lives at the start of the mbuf's private area, before the
// packet buffer and its headroom, so lwIP can move the payload pointer back
// over headers it stripped (pbuf_add_header) as it does for ICMP replies.
static_assert(sizeof(pbuf_custom) <= 64, "the default mempool.priv_size (64) must hold an RX pbuf");

void free_rx_pbuf(pbuf* p)
{
    auto* custom = reinterpret_cast<pbuf_custom*>(p);
    rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(custom) - 1);
}

} // namespace

pbuf* wrap_rx_mbuf(rte_mbuf* m) noexcept
{
    if (m->nb_segs != 1 || rte_pktmbuf_priv_size(m->pool) < sizeof(pbuf_custom)) return nullptr;
    auto* custom = static_cast<pbuf_custom*>(rte_mbuf_to_priv(m));
    custom->custom_free_function = free_rx_pbuf;
    return pbuf_alloced_custom(PBUF_RAW, m->data_len, PBUF_RAM, custom, rte_pktmbuf_mtod(m, void*), m->data_len);
}

rte_mbuf* rx_mbuf_of(const pbuf* p) noexcept
{
    if ((p->flags & PBUF_FLAG_IS_CUSTOM) == 0) return nullptr;
    const auto* custom = reinterpret_cast<const pbuf_custom*>(p);
    if (custom->custom_free_function != free_rx_pbuf) return nullptr;
    return const_cast<rte_mbuf*>(reinterpret_cast<const rte_mbuf*>(custom) - 1);
}

bool rx_pool_short(const rte_mempool& pool) noexcept
{
    return dataplane::free_in_ring(pool) <= pool.size / 4;
}

bool rx_pool_short(const pbuf* p) noexcept
{
    const rte_mbuf* m = rx_mbuf_of(p);
    return m != nullptr && rx_pool_short(*m->pool);
}

} // namespace ringsock::stack
