/* The public header compiled as C: the same layout as in C++. */
#include <ringsock/mswsock.h>
#include <ringsock/ringsock.h>
#include <ringsock/ws2spi.h>
#include <ringsock/ws2tcpip.h>

#include <stddef.h>

_Static_assert(sizeof(WSAOVERLAPPED) == 32, "OVERLAPPED as on 64-bit Windows");
_Static_assert(offsetof(WSAOVERLAPPED, hEvent) == 24, "hEvent at 24");

int abi_from_c(void);
int abi_from_c(void)
{
    return (int)(sizeof(WSAOVERLAPPED) + offsetof(WSAOVERLAPPED, hEvent) + sizeof(WSABUF) + sizeof(WSADATA) +
                 sizeof(struct sockaddr_in6) + sizeof(OVERLAPPED_ENTRY));
}
