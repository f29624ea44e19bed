// stack/lwip_ooseq_capped.cc — LWIP_HOOK_TCP_OOSEQ_CAPPED: lwIP caps a
// connection's out-of-order queue at TCP_OOSEQ_MAX_PBUFS (lwipopts.h) and
// frees the segments beyond it; this counts them, so that a sender whose
// window outruns the cap is seen in telemetry (tcp_out_of_order_capped)
// rather than only in its retransmissions. Part of the lwIP port library,
// which knows the counter only through the netif's client-data slot
// (ringsock_hooks.h); LwipInterface puts its counter there.

#include <cstdint>

#include "dataplane/counters.hh"
#include "stack/tcp_segment_pbufs.hh"

extern "C" {
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "ringsock_hooks.h"
}

extern "C" void ringsock_lwip_tcp_ooseq_capped(const struct tcp_pcb*, const struct tcp_seg* dropped)
{
    // tcp_input runs inside ip4_input or ip6_input, which name the netif.
    netif* in = ip_current_input_netif();
    if (in == nullptr) return;
    auto* counter =
        static_cast<ringsock::dataplane::RelaxedCounter*>(netif_get_client_data(in, RINGSOCK_NETIF_OOSEQ_CAPPED_SLOT));
    if (counter == nullptr) return;
    counter->add(ringsock::stack::pbufs_in(dropped));
}
