/* ringsock's <mstcpip.h>: per-socket TCP keep-alive timing.
 *
 * WSAIoctl(s, SIO_KEEPALIVE_VALS, &vals, sizeof vals, NULL, 0, &returned,
 * NULL, NULL) on a stream socket: onoff turns SO_KEEPALIVE on or off;
 * keepalivetime is the idle time in milliseconds before the first probe,
 * keepaliveinterval the time between unanswered probes. After 10 unanswered
 * probes (Windows' fixed count) the connection is lost: pending and later
 * receives and sends fail with WSAENETRESET. Defaults until set: 2 hours and
 * 1 second. ringsock checks keep-alive timers every 100 ms. A zero time or
 * interval with onoff set is WSAEINVAL; a datagram socket gets
 * WSAEOPNOTSUPP. Accepted sockets inherit the listener's values. */
#ifndef RINGSOCK_MSTCPIP_H
#define RINGSOCK_MSTCPIP_H

#include "winsock2.h"

struct tcp_keepalive {
    ULONG onoff;
    ULONG keepalivetime;
    ULONG keepaliveinterval;
};

#define IOC_VENDOR 0x18000000
#define _WSAIOW(x, y) (IOC_IN | (x) | (y))
#define SIO_KEEPALIVE_VALS _WSAIOW(IOC_VENDOR, 4)

#endif /* RINGSOCK_MSTCPIP_H */
