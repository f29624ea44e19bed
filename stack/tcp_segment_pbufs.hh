// stack/tcp_segment_pbufs.hh — how many pbufs a list of lwIP TCP segments
// holds, the unit lwIP caps out-of-order queues in (TCP_OOSEQ_MAX_PBUFS).
// Inline and header-only because its two users live in different libraries:
// the lwIP port library's drop count (lwip_ooseq_capped.cc), which is linked
// without the stack, and the stack's short-pool sweep (tcp_out_of_order.cc).
#pragma once

#include <cstdint>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
}

namespace ringsock::stack {

inline uint64_t pbufs_in(const tcp_seg* segments) noexcept
{
    uint64_t count = 0;
    for (const tcp_seg* seg = segments; seg != nullptr; seg = seg->next)
        count += pbuf_clen(seg->p);
    return count;
}

} // namespace ringsock::stack
