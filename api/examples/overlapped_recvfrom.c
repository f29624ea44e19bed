/* An event-based overlapped WSARecvFrom loop, written as a Windows developer
 * writes it. To port it from Windows, two things changed:
 *   - the includes: <ringsock/winsock2.h> and <ringsock/ws2tcpip.h> instead
 *     of <winsock2.h> and <ws2tcpip.h>;
 *   - start-up: ringsock_configure() names the profile (the NIC or vdev and
 *     our addresses) before WSAStartup.
 * Everything between is Winsock as MSDN documents it.
 *
 *   overlapped_recvfrom PROFILE [PORT [DATAGRAMS]]
 */
#include <ringsock/ringsock.h>
#include <ringsock/winsock2.h>
#include <ringsock/ws2tcpip.h>

#include <stdio.h>
#include <stdlib.h>

#define DEPTH 8
#define BUFLEN 2048

typedef struct {
    WSAOVERLAPPED ov;
    WSABUF buf;
    char data[BUFLEN];
    SOCKADDR_IN from;
    int fromlen;
    DWORD flags;
} RECV_CONTEXT;

static int post(SOCKET s, RECV_CONTEXT* ctx)
{
    DWORD received = 0;
    ctx->buf.len = BUFLEN;
    ctx->buf.buf = ctx->data;
    ctx->fromlen = sizeof(ctx->from);
    ctx->flags = 0;
    if (WSARecvFrom(s, &ctx->buf, 1, &received, &ctx->flags, (SOCKADDR*)&ctx->from, &ctx->fromlen, &ctx->ov,
                    NULL) == SOCKET_ERROR &&
        WSAGetLastError() != WSA_IO_PENDING) {
        fprintf(stderr, "WSARecvFrom failed: %d\n", WSAGetLastError());
        return -1;
    }
    return 0; /* completed at once or pending: the event says when either way */
}

int main(int argc, char** argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROFILE [PORT [DATAGRAMS]]\n", argv[0]);
        return 2;
    }
    const u_short port = (u_short)(argc > 2 ? atoi(argv[2]) : 9);
    const long want = argc > 3 ? atol(argv[3]) : 10;

    /* ringsock: the one start-up difference. */
    if (ringsock_configure(argv[1], 0, NULL) != 0) {
        fprintf(stderr, "%s\n", ringsock_startup_error());
        return 2;
    }

    WSADATA wsa;
    int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (rc != 0) {
        fprintf(stderr, "WSAStartup failed: %d (%s)\n", rc, ringsock_startup_error());
        return 1;
    }
    SOCKET s = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    SOCKADDR_IN local = {0};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    local.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s == INVALID_SOCKET || bind(s, (SOCKADDR*)&local, sizeof(local)) == SOCKET_ERROR) {
        fprintf(stderr, "socket/bind failed: %d\n", WSAGetLastError());
        WSACleanup();
        return 1;
    }

    RECV_CONTEXT ctx[DEPTH] = {0};
    WSAEVENT events[DEPTH];
    for (int i = 0; i < DEPTH; ++i) {
        events[i] = ctx[i].ov.hEvent = WSACreateEvent();
        if (post(s, &ctx[i]) != 0) return 1;
    }
    printf("listening on UDP port %u\n", port);
    fflush(stdout);

    long count = 0;
    while (count < want) {
        DWORD w = WSAWaitForMultipleEvents(DEPTH, events, FALSE, 10000, FALSE);
        if (w == WSA_WAIT_TIMEOUT) {
            printf("no datagram for 10 s\n");
            break;
        }
        if (w == WSA_WAIT_FAILED) {
            fprintf(stderr, "WSAWaitForMultipleEvents failed: %d\n", WSAGetLastError());
            break;
        }
        const int i = (int)(w - WSA_WAIT_EVENT_0);
        DWORD bytes = 0, flags = 0;
        WSAResetEvent(events[i]);
        if (WSAGetOverlappedResult(s, &ctx[i].ov, &bytes, FALSE, &flags)) {
            char from[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &ctx[i].from.sin_addr, from, sizeof(from));
            printf("%lu bytes from %s:%u\n", (unsigned long)bytes, from, ntohs(ctx[i].from.sin_port));
            ++count;
        } else if (WSAGetLastError() == WSAEMSGSIZE) {
            printf("datagram larger than %d bytes: truncated\n", BUFLEN);
        } else {
            fprintf(stderr, "receive failed: %d\n", WSAGetLastError());
            break;
        }
        if (post(s, &ctx[i]) != 0) break;
    }

    closesocket(s); /* pending receives complete with WSA_OPERATION_ABORTED */
    for (int i = 0; i < DEPTH; ++i)
        WSACloseEvent(events[i]);
    WSACleanup();
    printf("received %ld datagram(s)\n", count);
    return 0;
}
