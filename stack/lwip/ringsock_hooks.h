/*
 * stack/lwip/ringsock_hooks.h — declarations of the functions ringsock
 * plugs into lwIP's hooks (LWIP_HOOK_FILENAME in lwipopts.h). lwIP includes
 * this file late in tcp.c, tcp_in.c, tcp_out.c, memp.c, ip6.c and nd6.c;
 * ringsock code may include it after lwIP's headers. Uses only a forward
 * declaration of lwIP's address type so it does not depend on the order
 * in which lwIP includes its own headers.
 */
#ifndef RINGSOCK_STACK_LWIP_HOOKS_H
#define RINGSOCK_STACK_LWIP_HOOKS_H

#include <stdint.h>

/* Second line of defence for the TCP_MSS trap (see lwipopts.h): every TU
 * that includes this file must still see our TCP_MSS. */
#if defined(TCP_MSS) && TCP_MSS != 1460
#error "ringsock_hooks.h: TCP_MSS is not the value set in lwipopts.h (was <netinet/tcp.h> included?)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct ip_addr;

/*
 * ringsock_lwip_tcp_isn — initial sequence number for a new TCP connection
 * (LWIP_HOOK_TCP_ISN), as RFC 6528 section 3 describes: ISN = M + F(local
 * address, local port, remote address, remote port, secret key), with M a
 * clock ticking every 4 microseconds and F SipHash-2-4 under a 128-bit key
 * drawn from getrandom() at first use (or set with
 * ringsock_lwip_isn_set_key). Called by lwIP on the lwIP engine only, for
 * active opens (tcp_connect) and passive ones (SYN to a listener).
 *  local_ip, remote_ip (in): the connection's addresses (IPv4 or IPv6).
 *  local_port, remote_port (in): ports in host byte order.
 * Returns the ISN. Never fails: when getrandom() is unavailable it aborts
 * the process at first use rather than hand out predictable numbers.
 */
uint32_t ringsock_lwip_tcp_isn(const struct ip_addr *local_ip, uint16_t local_port,
                               const struct ip_addr *remote_ip, uint16_t remote_port);

/*
 * ringsock_lwip_isn_set_key — replace the ISN secret key (in: 16 bytes).
 * For tests that need reproducible ISNs, and for a process that wants to
 * rekey; call on the lwIP engine, before or between connections.
 */
void ringsock_lwip_isn_set_key(const uint8_t key[16]);

struct tcp_pcb;
struct tcp_seg;

/*
 * ringsock_lwip_tcp_ooseq_capped — lwIP is about to free the segments of a
 * connection's out-of-order queue beyond TCP_OOSEQ_MAX_PBUFS
 * (LWIP_HOOK_TCP_OOSEQ_CAPPED, added by our lwip-ooseq-capped-hook.patch):
 * adds their pbufs to the counter the input netif keeps in client-data
 * slot RINGSOCK_NETIF_OOSEQ_CAPPED_SLOT (none there: not counted), so that
 * the drop is seen; the sender resends them. On the lwIP engine, inside
 * tcp_input.
 *  pcb (in): the connection.
 *  dropped (in): the first segment dropped; the rest follow it.
 */
void ringsock_lwip_tcp_ooseq_capped(const struct tcp_pcb *pcb, const struct tcp_seg *dropped);

/* The netif client-data slot (netif_get_client_data) holding a
 * ringsock::dataplane::RelaxedCounter* for ringsock_lwip_tcp_ooseq_capped:
 * the first slot past lwIP's own (LWIP_NUM_NETIF_CLIENT_DATA is 1), taken
 * directly rather than through netif_alloc_client_data_id, which hands
 * out a new slot on each call and so could not serve a second WSAStartup. */
#define RINGSOCK_NETIF_OOSEQ_CAPPED_SLOT LWIP_NETIF_CLIENT_DATA_INDEX_MAX

#ifdef __cplusplus
}
#endif

#endif /* RINGSOCK_STACK_LWIP_HOOKS_H */
