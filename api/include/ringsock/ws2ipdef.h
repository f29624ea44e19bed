/* ringsock's <ws2ipdef.h>: IPv6 addresses and the IP-level socket options. */
#ifndef RINGSOCK_WS2IPDEF_H
#define RINGSOCK_WS2IPDEF_H

#include "winsock2.h"

typedef struct in6_addr {
    union {
        UCHAR Byte[16];
        USHORT Word[8];
    } u;
} IN6_ADDR, *PIN6_ADDR, *LPIN6_ADDR;
#define s6_addr u.Byte
#define s6_words u.Word

typedef struct sockaddr_in6 {
    ADDRESS_FAMILY sin6_family;
    USHORT sin6_port;
    ULONG sin6_flowinfo;
    IN6_ADDR sin6_addr;
    ULONG sin6_scope_id;
} SOCKADDR_IN6, *PSOCKADDR_IN6, *LPSOCKADDR_IN6;

typedef struct ip_mreq {
    IN_ADDR imr_multiaddr;
    IN_ADDR imr_interface;
} IP_MREQ, *PIP_MREQ;

/* Winsock's order: the source comes before the interface. */
typedef struct ip_mreq_source {
    IN_ADDR imr_multiaddr;
    IN_ADDR imr_sourceaddr;
    IN_ADDR imr_interface;
} IP_MREQ_SOURCE, *PIP_MREQ_SOURCE;

/* IPPROTO_IP level */
#define IP_OPTIONS 1
#define IP_HDRINCL 2
#define IP_TOS 3
#define IP_TTL 4 /* the TTL of unicast datagrams and segments, 64 until set */
#define IP_MULTICAST_IF 9
#define IP_MULTICAST_TTL 10
#define IP_MULTICAST_LOOP 11
#define IP_ADD_MEMBERSHIP 12
#define IP_DROP_MEMBERSHIP 13
#define IP_ADD_SOURCE_MEMBERSHIP 15
#define IP_DROP_SOURCE_MEMBERSHIP 16
#define IP_BLOCK_SOURCE 17
#define IP_UNBLOCK_SOURCE 18
#define IP_PKTINFO 19
/* WSARecvMsg records beside IP_PKTINFO, each an INT: IP_HOPLIMIT (also
 * named IP_RECVTTL) asks for an IP_TTL record with each IPv4 datagram's
 * TTL, IP_ECN (IP_RECVECN) for an IP_ECN record with its ECN codepoint
 * (RFC 3168: 0 not ECT, 1 ECT(1), 2 ECT(0), 3 CE). */
#define IP_HOPLIMIT 21
#define IP_RECVTTL 21
#define IP_ECN 50
#define IP_RECVECN 50

/* IP_PKTINFO's control data (WSARecvMsg): the datagram's destination
 * address and the interface it arrived on. */
typedef struct in_pktinfo {
    IN_ADDR ipi_addr;
    ULONG ipi_ifindex;
} IN_PKTINFO, *PIN_PKTINFO;

typedef struct ipv6_mreq {
    IN6_ADDR ipv6mr_multiaddr;
    ULONG ipv6mr_interface;
} IPV6_MREQ, *PIPV6_MREQ;

/* IPPROTO_IPV6 level */
/* IPV6_UNICAST_HOPS (as IP_TTL): the hop limit of the socket's unicast
 * datagrams and segments, 64 until set. */
#define IPV6_UNICAST_HOPS 4
#define IPV6_MULTICAST_IF 9
#define IPV6_MULTICAST_HOPS 10
#define IPV6_MULTICAST_LOOP 11
#define IPV6_ADD_MEMBERSHIP 12
#define IPV6_DROP_MEMBERSHIP 13
#define IPV6_JOIN_GROUP IPV6_ADD_MEMBERSHIP
#define IPV6_LEAVE_GROUP IPV6_DROP_MEMBERSHIP
#define IPV6_PKTINFO 19
/* IPv6's: an IPV6_HOPLIMIT record with the hop limit, an IPV6_ECN one with
 * the ECN codepoint, each an INT. */
#define IPV6_HOPLIMIT 21
#define IPV6_ECN 50
#define IPV6_RECVECN 50
#define IPV6_V6ONLY 27

typedef struct in6_pktinfo {
    IN6_ADDR ipi6_addr;
    ULONG ipi6_ifindex;
} IN6_PKTINFO, *PIN6_PKTINFO;

/* Protocol-independent multicast (RFC 3678 section 5), at IPPROTO_IP for
 * an IPv4 group and IPPROTO_IPV6 for an IPv6 one. */
#define MCAST_JOIN_GROUP 41
#define MCAST_LEAVE_GROUP 42
#define MCAST_BLOCK_SOURCE 43
#define MCAST_UNBLOCK_SOURCE 44
#define MCAST_JOIN_SOURCE_GROUP 45
#define MCAST_LEAVE_SOURCE_GROUP 46

typedef struct group_req {
    ULONG gr_interface;
    SOCKADDR_STORAGE gr_group;
} GROUP_REQ, *PGROUP_REQ;

typedef struct group_source_req {
    ULONG gsr_interface;
    SOCKADDR_STORAGE gsr_group;
    SOCKADDR_STORAGE gsr_source;
} GROUP_SOURCE_REQ, *PGROUP_SOURCE_REQ;

#endif /* RINGSOCK_WS2IPDEF_H */
