// What lwIP's out-of-order queues may hold of the port's mbufs. A segment
// that arrives beyond a hole waits in its connection's queue in the mbuf it
// came in (zero-copy RX), for as long as the hole stays open. lwIP caps a
// queue at TCP_OOSEQ_MAX_PBUFS (lwipopts.h), dropping the newest beyond it;
// a window of small segments from one peer, or many connections' queues
// together, could still take the mbufs the port refills its RX ring from,
// and every frame after that (pings, UDP, the SYN of the next connection)
// would be lost. So, while the pool runs short, the queues are given back:
// the data in them was acknowledged only selectively (SACK), and lwIP
// forgets those blocks, so the senders resend it (RFC 2018 allows a
// receiver to discard SACKed data). lwIP does the same with its own pbuf
// pool (PBUF_POOL_FREE_OOSEQ), which our zero-copy pbufs do not come from.
// Engine lcore only (lwIP's).
#pragma once

#include <cstdint>

namespace ringsock::stack {

// Frees the out-of-order queue of every TCP connection whose queue holds an
// mbuf of a pool that is short (rx_pool_short). Returns the pbufs freed.
uint64_t free_out_of_order_pinning_short_pools() noexcept;

} // namespace ringsock::stack
