/* ringsock's <ws2spi.h>: the service provider layer under the WSA* calls.
 * Each WSP* call reports its error through lpErrno rather than the
 * thread's last error, and overlapped calls name the thread whose alertable
 * waits run the completion routine (lpThreadId, from WPUOpenCurrentThread).
 * ringsock is its own and only provider; these are the calls its facade
 * makes, exported for code written against the SPI. */
#ifndef RINGSOCK_WS2SPI_H
#define RINGSOCK_WS2SPI_H

#include "winsock2.h"

typedef struct _WSATHREADID {
    HANDLE ThreadHandle;
    DWORD_PTR Reserved;
} WSATHREADID, *LPWSATHREADID;

typedef void(CALLBACK* LPWSAUSERAPC)(DWORD_PTR dwContext);

RINGSOCK_BEGIN_C

/* The calling thread's identity for lpThreadId; valid until WPUCloseThread. */
int WINAPI WPUOpenCurrentThread(LPWSATHREADID lpThreadId, LPINT lpErrno);
int WINAPI WPUCloseThread(LPWSATHREADID lpThreadId, LPINT lpErrno);
/* Queues lpfnUserApc(dwContext) to run in the thread named by lpThreadId at
 * its next alertable wait; callable from any thread. */
int WINAPI WPUQueueApc(LPWSATHREADID lpThreadId, LPWSAUSERAPC lpfnUserApc, DWORD_PTR dwContext, LPINT lpErrno);

SOCKET WINAPI WSPSocket(int af, int type, int protocol, LPWSAPROTOCOL_INFOW lpProtocolInfo, GROUP g, DWORD dwFlags,
                        LPINT lpErrno);
int WINAPI WSPBind(SOCKET s, const struct sockaddr* name, int namelen, LPINT lpErrno);
int WINAPI WSPConnect(SOCKET s, const struct sockaddr* name, int namelen, LPWSABUF lpCallerData,
                      LPWSABUF lpCalleeData, void* lpSQOS, void* lpGQOS, LPINT lpErrno);
int WINAPI WSPListen(SOCKET s, int backlog, LPINT lpErrno);
/* lpfnCondition must be NULL (conditional acceptance is not offered). */
SOCKET WINAPI WSPAccept(SOCKET s, struct sockaddr* addr, LPINT addrlen, void* lpfnCondition, DWORD_PTR dwCallbackData,
                        LPINT lpErrno);
int WINAPI WSPCloseSocket(SOCKET s, LPINT lpErrno);
int WINAPI WSPShutdown(SOCKET s, int how, LPINT lpErrno);
int WINAPI WSPGetSockName(SOCKET s, struct sockaddr* name, LPINT namelen, LPINT lpErrno);
int WINAPI WSPGetPeerName(SOCKET s, struct sockaddr* name, LPINT namelen, LPINT lpErrno);
int WINAPI WSPSetSockOpt(SOCKET s, int level, int optname, const char* optval, int optlen, LPINT lpErrno);
int WINAPI WSPGetSockOpt(SOCKET s, int level, int optname, char* optval, LPINT optlen, LPINT lpErrno);
int WINAPI WSPIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer, LPVOID lpvOutBuffer,
                    DWORD cbOutBuffer, LPDWORD lpcbBytesReturned, LPWSAOVERLAPPED lpOverlapped,
                    LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine, LPWSATHREADID lpThreadId,
                    LPINT lpErrno);

int WINAPI WSPRecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine,
                   LPWSATHREADID lpThreadId, LPINT lpErrno);
int WINAPI WSPRecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd,
                       LPDWORD lpFlags, struct sockaddr* lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped,
                       LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine, LPWSATHREADID lpThreadId,
                       LPINT lpErrno);
int WINAPI WSPSend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine,
                   LPWSATHREADID lpThreadId, LPINT lpErrno);
int WINAPI WSPSendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                     const struct sockaddr* lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine, LPWSATHREADID lpThreadId,
                     LPINT lpErrno);
BOOL WINAPI WSPGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait,
                                   LPDWORD lpdwFlags, LPINT lpErrno);

RINGSOCK_END_C

#endif /* RINGSOCK_WS2SPI_H */
