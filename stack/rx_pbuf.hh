// A received frame's mbuf as lwIP's pbuf, without a copy: the pbuf lives in
// the mbuf's private area, and freeing it frees the mbuf. Whoever holds such
// a pbuf holds one of the port's mbufs, which the port refills its RX ring
// from; rx_pool_short says when holders should give theirs back.
#pragma once

struct pbuf;
struct rte_mbuf;
struct rte_mempool;

namespace ringsock::stack {

// Null when the mbuf cannot carry one (chained, or too little private area).
pbuf* wrap_rx_mbuf(rte_mbuf* m) noexcept;

// The mbuf `p`'s first buffer lies in, or null (a copy, or not a frame's).
rte_mbuf* rx_mbuf_of(const pbuf* p) noexcept;

// True when `pool`'s ring has a quarter of the pool or less left: the port
// needs what is left to refill with.
bool rx_pool_short(const rte_mempool& pool) noexcept;
// True when `p` lies in an mbuf of such a pool.
bool rx_pool_short(const pbuf* p) noexcept;

} // namespace ringsock::stack
