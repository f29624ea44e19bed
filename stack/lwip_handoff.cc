#include "stack/lwip_handoff.hh"

#include <stdexcept>

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

namespace ringsock::stack {

LwipHandoffRing::LwipHandoffRing(const std::string& name, unsigned slots, int socket)
    : ring_(rte_ring_create(name.c_str(), slots, socket, RING_F_SC_DEQ))
{
    if (ring_ == nullptr)
        throw std::runtime_error("cannot create the lwIP hand-off ring " + name + " of " + std::to_string(slots) +
                                 " slots: " + rte_strerror(rte_errno) + " (slots must be a power of two)");
}

LwipHandoffRing::~LwipHandoffRing()
{
    rte_mbuf* left[64];
    unsigned n = 0;
    while ((n = rte_ring_dequeue_burst(ring_, reinterpret_cast<void**>(left), 64, nullptr)) != 0)
        rte_pktmbuf_free_bulk(left, n);
    rte_ring_free(ring_);
}

void LwipHandoff::on_lwip(rte_mbuf** pkts, uint16_t n)
{
    const unsigned queued = rte_ring_enqueue_burst(ring_, reinterpret_cast<void* const*>(pkts), n, nullptr);
    counters_.handed.add(queued);
    if (queued < n) [[unlikely]] {
        rte_pktmbuf_free_bulk(pkts + queued, n - queued);
        counters_.full.add(n - queued);
    }
}

} // namespace ringsock::stack
