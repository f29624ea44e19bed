/*
 * stack/lwip/lwipopts.h — ringsock's lwIP 2.1.3 configuration.
 *
 * Included by every lwIP translation unit (through lwip/opt.h) and by every
 * ringsock file that includes an lwIP header, so both sides agree on every
 * size: the Debian liblwip.so heap overflow came from TUs disagreeing on
 * TCP_MSS. lwIP runs with NO_SYS=1 on one engine lcore (one lwIP per
 * process, state in globals); nothing here is thread-safe. Each option's
 * reason is in README.md beside this file; change both together. C header,
 * also valid C++.
 */
#ifndef RINGSOCK_STACK_LWIP_LWIPOPTS_H
#define RINGSOCK_STACK_LWIP_LWIPOPTS_H

/* The TCP_MSS trap: glibc's <netinet/tcp.h> defines TCP_MSS 512. Any TU that
 * sees it before (or after) this file sizes pools differently from the
 * others. Refuse to build such a TU instead of corrupting the heap. */
#ifdef _NETINET_TCP_H
#error "lwipopts.h: <netinet/tcp.h> was included before lwIP; it redefines TCP_MSS. Keep it out of lwIP translation units."
#endif

/* ---- Operating system, memory ------------------------------------------ */
#define NO_SYS                          1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_TIMERS                     1
#define MEM_ALIGNMENT                   8
#define MEM_LIBC_MALLOC                 0
#define MEMP_MEM_MALLOC                 0
#define MEM_USE_POOLS                   0
#define MEM_SIZE                        (8 * 1024 * 1024)

/* ---- Pools -------------------------------------------------------------- */
#define MEMP_NUM_PBUF                   16384
#define MEMP_NUM_RAW_PCB                16
#define MEMP_NUM_UDP_PCB                64
#define MEMP_NUM_TCP_PCB                1024
#define MEMP_NUM_TCP_PCB_LISTEN         64
#define MEMP_NUM_TCP_SEG                16384
#define MEMP_NUM_REASSDATA              16
#define MEMP_NUM_FRAG_PBUF              256
#define MEMP_NUM_ARP_QUEUE              256
#define MEMP_NUM_IGMP_GROUP             64
#define MEMP_NUM_MLD6_GROUP             64
#define MEMP_NUM_ND6_QUEUE              64
#define PBUF_POOL_SIZE                  1024
/* Room for the largest frame lwIP builds itself: Ethernet + IPv6 + TCP +
 * TCP_MSS = 14 + 40 + 20 + 1460 = 1534, rounded up to MEM_ALIGNMENT. */
#define PBUF_POOL_BUFSIZE               1536
#define LWIP_SUPPORT_CUSTOM_PBUF        1

/* ---- Link layer --------------------------------------------------------- */
#define LWIP_ETHERNET                   1
#define LWIP_ARP                        1
#define ARP_TABLE_SIZE                  128
#define ARP_QUEUEING                    1
/* Datagrams waiting for one neighbour's ARP reply: lwIP's 3 lost all but
 * the last three of a burst sent before the reply came (a sender's first
 * milliseconds to a new peer); Linux keeps about 100. IPv6 waits up to
 * MEMP_NUM_ND6_QUEUE (64) per neighbour the same way. The whole table's
 * waiting datagrams are bounded by MEMP_NUM_ARP_QUEUE. */
#define ARP_QUEUE_LEN                   64
#define ETHARP_SUPPORT_VLAN             0
#define ETH_PAD_SIZE                    0
#define LWIP_NETIF_HWADDRHINT           1
#define LWIP_NETIF_LINK_CALLBACK        1
#define LWIP_NETIF_STATUS_CALLBACK      1
#define LWIP_NETIF_TX_SINGLE_PBUF       0
#define LWIP_HAVE_LOOPIF                0
/* A multicast datagram a socket sends is looped back to the process's own
 * members (Winsock's IP_MULTICAST_LOOP, judged by each receiving socket),
 * and one to our own address to our own sockets; lwIP queues the copy and
 * LwipInterface::poll hands it to input. At most 64 wait at once. */
#define LWIP_NETIF_LOOPBACK             1
#define LWIP_LOOPBACK_MAX_PBUFS         64
#define LWIP_CHECKSUM_CTRL_PER_NETIF    1
#define LWIP_CHKSUM_ALGORITHM           3

/* ---- IPv4 --------------------------------------------------------------- */
#define LWIP_IPV4                       1
/* What the UDP fast path writes (stack/udp_frame.hh) and Linux sends with:
 * TCP, ICMP replies and raw sends through lwIP leave with it too, not with
 * lwIP's 255. (Protocols whose hop limit is fixed keep theirs: IGMP and
 * MLD 1, neighbour discovery 255.) */
#define IP_DEFAULT_TTL                  64
#define IP_FORWARD                      0
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
/* A 65535-byte datagram in 1480-byte fragments is 45 pbufs; 256 lets five
 * maximal datagrams reassemble at once (lwIP's default, 10, caps one at
 * about 14 KB). */
#define IP_REASS_MAX_PBUFS              256
#define IP_REASS_MAXAGE                 15
#define LWIP_ICMP                       1
#define LWIP_IGMP                       1
#define LWIP_DHCP                       0
#define LWIP_AUTOIP                     0
#define LWIP_DNS                        0

/* ---- IPv6 --------------------------------------------------------------- */
#define LWIP_IPV6                       1
#define LWIP_IPV6_REASS                 1
#define LWIP_IPV6_FRAG                  1
/* ip6_frag.c keeps a helper struct in each fragment header (8 bytes); on a
 * 64-bit machine its pointer makes it larger, so lwIP must copy the header
 * aside instead (lwIP asserts on this at the first IPv6 fragment). */
#define IPV6_FRAG_COPYHEADER            1
#define LWIP_IPV6_MLD                   1
/* ICMPv6 echo replies and errors: the hop limit of every other sender. */
#define LWIP_ICMP6_HL                   64
#define LWIP_IPV6_AUTOCONFIG            0
#define LWIP_IPV6_DHCP6                 0
#define LWIP_ND6_NUM_NEIGHBORS          64
#define LWIP_ND6_NUM_DESTINATIONS       64

/* ---- Transport ---------------------------------------------------------- */
#define LWIP_RAW                        1
#define LWIP_UDP                        1
/* What the send fast path writes (stack/udp_frame.hh): a socket's datagrams
 * leave with one TTL (hop limit) whichever path built them. A group's TTL
 * is the socket's IP_MULTICAST_TTL, set per send (stack/lwip_udp.cc). */
#define UDP_TTL                         64
#define LWIP_UDPLITE                    0
#define LWIP_TCP                        1
#define LWIP_CALLBACK_API               1
#define LWIP_EVENT_API                  0
#define LWIP_ALTCP                      0
#define TCP_MSS                         1460
/* 10 Gbit/s x 1 ms = 1 250 000 bytes in flight. 1280 KiB scaled by 2^5
 * (the 16-bit window field then reaches 2 MiB). */
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   5
#define TCP_WND                         (1280 * 1024)
#define TCP_SND_BUF                     (1280 * 1024)
/* lwIP requires at least 2 x TCP_SND_BUF / TCP_MSS (= 1795) segments. */
#define TCP_SND_QUEUELEN                2048
/* lwIP 2.1.3 still checks TCP_SNDLOWAT against a 16-bit limit. */
#define TCP_SNDLOWAT                    (16 * TCP_MSS)
#define TCP_QUEUE_OOSEQ                 1
/* A segment beyond a hole waits in the mbuf it came in: one connection may
 * pin at most this many (a window of full segments is 898), so no single
 * peer can take the port's pool with small ones; the newest beyond it are
 * dropped and resent. Many connections together are bounded by the pool
 * check in stack/tcp_out_of_order.hh. */
#define TCP_OOSEQ_MAX_PBUFS             1024
#define LWIP_TCP_SACK_OUT               1
#define LWIP_TCP_KEEPALIVE              1
#define LWIP_TCP_TIMESTAMPS             0
/* lwIP counts retransmission time-outs in slow ticks of 2 x TCP_TMR_INTERVAL
 * and on a LAN its estimate settles at 3 ticks: with the default 250 ms that
 * is 1.5 s of silence per time-out (a 64 MiB send through 1 % loss spent
 * most of its time there), and a delayed ACK waits up to 250 ms. 50 ms gives
 * 300 ms (Linux: 200 ms floor) and 50 ms delayed ACKs (Linux: 40 ms). The
 * other TCP timers are written in milliseconds and keep their length, but
 * for the zero-window probe's backoff (in ticks: now 0.3 s to 12 s). */
#define TCP_TMR_INTERVAL                50
#define TCP_LISTEN_BACKLOG              1
#define TCP_DEFAULT_LISTEN_BACKLOG      64
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

/* ---- APIs we do not use (NO_SYS=1, raw API only) ------------------------ */
#define LWIP_SOCKET                     0
#define LWIP_NETCONN                    0
#define LWIP_NETIF_API                  0

/* ---- Hooks: keyed TCP initial sequence numbers (RFC 6528), counted ------
 * out-of-order drops (our lwip-ooseq-capped-hook.patch) */
#define LWIP_HOOK_FILENAME              "ringsock_hooks.h"
#define LWIP_HOOK_TCP_ISN               ringsock_lwip_tcp_isn
#define LWIP_HOOK_TCP_OOSEQ_CAPPED      ringsock_lwip_tcp_ooseq_capped
#define LWIP_NUM_NETIF_CLIENT_DATA      1 /* RINGSOCK_NETIF_OOSEQ_CAPPED_SLOT */

/* ---- Statistics, debugging --------------------------------------------- */
#define LWIP_STATS                      1
#define LWIP_STATS_DISPLAY              0
#define MEM_STATS                       1
#define MEMP_STATS                      1
#define SYS_STATS                       0
/* LWIP_DEBUG stays undefined: lwIP tests it with #ifdef. */
#ifdef NDEBUG
#define LWIP_NOASSERT                   1
#endif

#endif /* RINGSOCK_STACK_LWIP_LWIPOPTS_H */
