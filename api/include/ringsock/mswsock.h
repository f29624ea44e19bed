/* ringsock's <mswsock.h>: the Microsoft extensions for stream sockets.
 * As on Windows, a program may call AcceptEx and GetAcceptExSockaddrs
 * directly or fetch all three through WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)
 * with the GUIDs below; ConnectEx only the second way.
 *
 * AcceptEx's output buffer: dwReceiveDataLength bytes of the connection's
 * first data, then the local address block (dwLocalAddressLength bytes),
 * then the remote one; each block holds a SOCKADDR_IN or SOCKADDR_IN6 at
 * its start and must be at least 16 bytes longer than the largest address
 * of the socket's family. GetAcceptExSockaddrs finds them. */
#ifndef RINGSOCK_MSWSOCK_H
#define RINGSOCK_MSWSOCK_H

#include "winsock2.h"

/* setsockopt on the accepted (connected) socket after AcceptEx (ConnectEx);
 * ringsock's sockets are complete without it, so it only checks its value. */
#define SO_UPDATE_ACCEPT_CONTEXT 0x700B
#define SO_UPDATE_CONNECT_CONTEXT 0x7010

#define WSAID_ACCEPTEX {0xb5367df1, 0xcbac, 0x11cf, {0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92}}
#define WSAID_GETACCEPTEXSOCKADDRS {0xb5367df2, 0xcbac, 0x11cf, {0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92}}
#define WSAID_CONNECTEX {0x25a207b9, 0xddf3, 0x4660, {0x8e, 0xe9, 0x76, 0xe5, 0x8c, 0x74, 0x06, 0x3e}}
#define WSAID_WSARECVMSG {0xf689d7c8, 0x6f1f, 0x436b, {0x8a, 0x53, 0xe5, 0x4f, 0xe3, 0x51, 0xc3, 0x22}}
#define WSAID_WSASENDMSG {0xa441e712, 0x754f, 0x43ca, {0x84, 0xa7, 0x0d, 0xee, 0x44, 0xcf, 0x60, 0x6d}}

typedef BOOL(PASCAL* LPFN_ACCEPTEX)(SOCKET sListenSocket, SOCKET sAcceptSocket, PVOID lpOutputBuffer,
                                    DWORD dwReceiveDataLength, DWORD dwLocalAddressLength,
                                    DWORD dwRemoteAddressLength, LPDWORD lpdwBytesReceived,
                                    LPOVERLAPPED lpOverlapped);
typedef void(PASCAL* LPFN_GETACCEPTEXSOCKADDRS)(PVOID lpOutputBuffer, DWORD dwReceiveDataLength,
                                                DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength,
                                                struct sockaddr** LocalSockaddr, LPINT LocalSockaddrLength,
                                                struct sockaddr** RemoteSockaddr, LPINT RemoteSockaddrLength);
typedef BOOL(PASCAL* LPFN_CONNECTEX)(SOCKET s, const struct sockaddr* name, int namelen, PVOID lpSendBuffer,
                                     DWORD dwSendDataLength, LPDWORD lpdwBytesSent, LPOVERLAPPED lpOverlapped);
/* A datagram socket's receive with the datagram's control data: with
 * IP_PKTINFO (IPV6_PKTINFO) set, an IN_PKTINFO (IN6_PKTINFO) record names
 * the address it was sent to; with IP_HOPLIMIT (IPV6_HOPLIMIT) an IP_TTL
 * (IPV6_HOPLIMIT) record gives its TTL, with IP_ECN (IPV6_ECN) an IP_ECN
 * (IPV6_ECN) one its ECN codepoint; dwFlags comes back with MSG_MCAST or
 * MSG_BCAST for a group's or a broadcast datagram, MSG_TRUNC when the
 * buffers were too short (WSAEMSGSIZE) and MSG_CTRUNC when the control
 * buffer was. Only through WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER). */
typedef INT(PASCAL* LPFN_WSARECVMSG)(SOCKET s, LPWSAMSG lpMsg, LPDWORD lpdwNumberOfBytesRecvd,
                                     LPWSAOVERLAPPED lpOverlapped,
                                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
/* WSASendMsg (<winsock2.h>) fetched the same way. */
typedef INT(PASCAL* LPFN_WSASENDMSG)(SOCKET s, LPWSAMSG lpMsg, DWORD dwFlags, LPDWORD lpNumberOfBytesSent,
                                     LPWSAOVERLAPPED lpOverlapped,
                                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

RINGSOCK_BEGIN_C

BOOL PASCAL AcceptEx(SOCKET sListenSocket, SOCKET sAcceptSocket, PVOID lpOutputBuffer, DWORD dwReceiveDataLength,
                     DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength, LPDWORD lpdwBytesReceived,
                     LPOVERLAPPED lpOverlapped);
void PASCAL GetAcceptExSockaddrs(PVOID lpOutputBuffer, DWORD dwReceiveDataLength, DWORD dwLocalAddressLength,
                                 DWORD dwRemoteAddressLength, struct sockaddr** LocalSockaddr,
                                 LPINT LocalSockaddrLength, struct sockaddr** RemoteSockaddr,
                                 LPINT RemoteSockaddrLength);

RINGSOCK_END_C

#endif /* RINGSOCK_MSWSOCK_H */
