/* The public header compiled as C: the same layout as in C++. */
#include <ringsock/mswsock.h>
#include <ringsock/ringsock.h>
#include <ringsock/ws2spi.h>
#include <ringsock/ws2tcpip.h>

#include <stddef.h>

_Static_assert(sizeof(WSAOVERLAPPED) == 32, "OVERLAPPED as on 64-bit Windows");
_Static_assert(offsetof(WSAOVERLAPPED, hEvent) == 24, "hEvent at 24");
_Static_assert(sizeof(WSAMSG) == 56 && offsetof(WSAMSG, dwFlags) == 48, "WSAMSG as on 64-bit Windows");
_Static_assert(WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) == 40, "control records as on 64-bit Windows");
_Static_assert(IP_HOPLIMIT == 21 && IPV6_HOPLIMIT == 21 && IP_ECN == 50 && IPV6_ECN == 50 &&
                   WSA_CMSG_SPACE(sizeof(INT)) == 24,
               "receive records as on Windows");

int abi_from_c(void);
int abi_from_c(void)
{
    return (int)(sizeof(WSAOVERLAPPED) + offsetof(WSAOVERLAPPED, hEvent) + sizeof(WSABUF) + sizeof(WSADATA) +
                 sizeof(struct sockaddr_in6) + sizeof(OVERLAPPED_ENTRY));
}
