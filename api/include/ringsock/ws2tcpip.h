/* ringsock's <ws2tcpip.h>: address conversion and the TCP/IP definitions. */
#ifndef RINGSOCK_WS2TCPIP_H
#define RINGSOCK_WS2TCPIP_H

#include <unistd.h> /* socklen_t: the C library's (unsigned), where Windows' is int */

#include "winsock2.h"
#include "ws2ipdef.h"

#define INET_ADDRSTRLEN 22
#define INET6_ADDRSTRLEN 65

RINGSOCK_BEGIN_C

/* Family AF_INET or AF_INET6 (Windows' values). inet_pton returns 1, 0 for
 * text that is not an address, -1 with WSAEAFNOSUPPORT. */
INT WINAPI inet_pton(INT Family, PCSTR pszAddrString, PVOID pAddrBuf) RINGSOCK_SYMBOL(inet_pton);
PCSTR WINAPI inet_ntop(INT Family, const VOID* pAddr, PSTR pStringBuf, size_t StringBufSize)
    RINGSOCK_SYMBOL(inet_ntop);

RINGSOCK_END_C

#endif /* RINGSOCK_WS2TCPIP_H */
