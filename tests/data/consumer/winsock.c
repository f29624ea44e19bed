/* A C program outside the tree that uses only the installed public API
 * header, as a ported Windows program would: without a profile, WSAStartup
 * must refuse with WSASYSNOTREADY and say why. */
#include <ringsock/ringsock.h>
#include <ringsock/winsock2.h>

#include <stdio.h>

int main(void)
{
    WSADATA wsa;
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (s != INVALID_SOCKET || WSAGetLastError() != WSANOTINITIALISED) return 1;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != WSASYSNOTREADY) return 2;
    printf("winsock consumer: %s\n", ringsock_startup_error());
    return 0;
}
