/* ringsock's <winsock2.h>: Winsock 2's types, constants and calls with
 * Windows' names, numeric values and 64-bit layouts, served by ringsock's
 * userspace stack. A Windows program ports by including
 * <ringsock/winsock2.h> (and <ringsock/ws2tcpip.h>) instead of Windows'
 * headers and by naming its profile before WSAStartup (see
 * <ringsock/ringsock.h>). Never include it beside <sys/socket.h> or
 * <netinet/in.h>: like Windows', it defines sockaddr and friends itself. */
#ifndef RINGSOCK_WINSOCK2_H
#define RINGSOCK_WINSOCK2_H

#include <sys/types.h>

#include "windows.h"

typedef UINT_PTR SOCKET;
#define INVALID_SOCKET ((SOCKET)(~0))
#define SOCKET_ERROR (-1)

/* u_char, u_short, u_int and u_long are the C library's (<sys/types.h>
 * defines them for every C++ program on Linux): u_long is therefore 64 bits
 * here, where Windows' is 32. It appears only in ioctlsocket's argument and
 * the byte-order calls, where the wider type changes no result. Strict ISO
 * C modes hide them, so they are declared here the same way then. */
#ifndef __u_char_defined
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
#define __u_char_defined
#endif
typedef USHORT ADDRESS_FAMILY;
typedef unsigned int GROUP;

/* ringsock's own sources that also include the C library's socket headers
 * (through DPDK) define RINGSOCK_NO_BSD_NAMES: they get Winsock's types,
 * error codes and WSA* calls, and leave sockaddr, the AF_/SO_/MSG_
 * constants and the BSD-named calls to the C library. Programs never
 * define it. */
#ifndef RINGSOCK_NO_BSD_NAMES

/* ---- addresses -------------------------------------------------------- */

#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 23
#define PF_UNSPEC AF_UNSPEC
#define PF_INET AF_INET
#define PF_INET6 AF_INET6

#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3

#define IPPROTO_IP 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_IPV6 41

typedef struct in_addr {
    union {
        struct {
            UCHAR s_b1, s_b2, s_b3, s_b4;
        } S_un_b;
        struct {
            USHORT s_w1, s_w2;
        } S_un_w;
        ULONG S_addr;
    } S_un;
} IN_ADDR, *PIN_ADDR, *LPIN_ADDR;
#define s_addr S_un.S_addr
#define s_net S_un.S_un_b.s_b1
#define s_host S_un.S_un_b.s_b2
#define s_lh S_un.S_un_b.s_b3
#define s_impno S_un.S_un_b.s_b4

#define INADDR_ANY ((ULONG)0x00000000)
#define INADDR_LOOPBACK ((ULONG)0x7f000001)
#define INADDR_BROADCAST ((ULONG)0xffffffff)
#define INADDR_NONE 0xffffffff

typedef struct sockaddr {
    ADDRESS_FAMILY sa_family;
    CHAR sa_data[14];
} SOCKADDR, *PSOCKADDR, *LPSOCKADDR;

typedef struct sockaddr_in {
    ADDRESS_FAMILY sin_family;
    USHORT sin_port;
    IN_ADDR sin_addr;
    CHAR sin_zero[8];
} SOCKADDR_IN, *PSOCKADDR_IN, *LPSOCKADDR_IN;

#define _SS_MAXSIZE 128
#define _SS_ALIGNSIZE (sizeof(int64_t))
typedef struct sockaddr_storage {
    ADDRESS_FAMILY ss_family;
    CHAR __ss_pad1[_SS_ALIGNSIZE - sizeof(USHORT)];
    int64_t __ss_align;
    CHAR __ss_pad2[_SS_MAXSIZE - (sizeof(USHORT) + (_SS_ALIGNSIZE - sizeof(USHORT)) + _SS_ALIGNSIZE)];
} SOCKADDR_STORAGE, *PSOCKADDR_STORAGE, *LPSOCKADDR_STORAGE;

#else
struct sockaddr;
#endif /* RINGSOCK_NO_BSD_NAMES */

/* ---- buffers, overlapped I/O, events ----------------------------------- */

typedef struct _WSABUF {
    ULONG len;
    CHAR* buf;
} WSABUF, *LPWSABUF;

/* WSARecvMsg's message (<mswsock.h>): the source's name, the data's
 * buffers, the control data (WSACMSGHDR records) and the flags out. */
typedef struct _WSAMSG {
    struct sockaddr* name;
    INT namelen;
    LPWSABUF lpBuffers;
    ULONG dwBufferCount;
    WSABUF Control;
    ULONG dwFlags;
} WSAMSG, *PWSAMSG, *LPWSAMSG;

/* One control record; its data follows at WSA_CMSG_DATA. */
typedef struct _WSACMSGHDR {
    SIZE_T cmsg_len;
    INT cmsg_level;
    INT cmsg_type;
} WSACMSGHDR, *PWSACMSGHDR, *LPWSACMSGHDR;

#define WSA_CMSGHDR_ALIGN(length) (((length) + sizeof(SIZE_T) - 1) & ~(sizeof(SIZE_T) - 1))
#define WSA_CMSGDATA_ALIGN(length) (((length) + 8 - 1) & ~(SIZE_T)(8 - 1))
#define WSA_CMSG_FIRSTHDR(msg)                                                                                         \
    (((msg)->Control.len >= sizeof(WSACMSGHDR)) ? (LPWSACMSGHDR)(msg)->Control.buf : (LPWSACMSGHDR)NULL)
#define WSA_CMSG_NXTHDR(msg, cmsg)                                                                                     \
    (((cmsg) == NULL) ? WSA_CMSG_FIRSTHDR(msg)                                                                         \
                      : ((((PUCHAR)(cmsg) + WSA_CMSGHDR_ALIGN((cmsg)->cmsg_len) + sizeof(WSACMSGHDR)) >                \
                          (PUCHAR)((msg)->Control.buf) + (msg)->Control.len)                                           \
                             ? (LPWSACMSGHDR)NULL                                                                      \
                             : (LPWSACMSGHDR)((PUCHAR)(cmsg) + WSA_CMSGHDR_ALIGN((cmsg)->cmsg_len))))
#define WSA_CMSG_DATA(cmsg) ((PUCHAR)(cmsg) + WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR)))
#define WSA_CMSG_SPACE(length) (WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR) + WSA_CMSGHDR_ALIGN(length)))
#define WSA_CMSG_LEN(length) (WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR)) + (length))

typedef OVERLAPPED WSAOVERLAPPED;
typedef LPOVERLAPPED LPWSAOVERLAPPED;
typedef HANDLE WSAEVENT;
typedef WSAEVENT* LPWSAEVENT;

#define WSA_INVALID_EVENT ((WSAEVENT)NULL)
#define WSA_MAXIMUM_WAIT_EVENTS 64
#define WSA_WAIT_EVENT_0 WAIT_OBJECT_0
#define WSA_WAIT_IO_COMPLETION WAIT_IO_COMPLETION
#define WSA_WAIT_TIMEOUT WAIT_TIMEOUT
#define WSA_WAIT_FAILED WAIT_FAILED
#define WSA_INFINITE INFINITE

/* Runs in the thread that started the operation, at its alertable waits. */
typedef void(CALLBACK* LPWSAOVERLAPPED_COMPLETION_ROUTINE)(DWORD dwError, DWORD cbTransferred,
                                                           LPWSAOVERLAPPED lpOverlapped, DWORD dwFlags);

/* ---- start-up --------------------------------------------------------- */

#define WSADESCRIPTION_LEN 256
#define WSASYS_STATUS_LEN 128

/* The 64-bit layout (iMaxSockets before lpVendorInfo, as _WIN64 has it). */
typedef struct WSAData {
    WORD wVersion;
    WORD wHighVersion;
    unsigned short iMaxSockets;
    unsigned short iMaxUdpDg;
    char* lpVendorInfo;
    char szDescription[WSADESCRIPTION_LEN + 1];
    char szSystemStatus[WSASYS_STATUS_LEN + 1];
} WSADATA, *LPWSADATA;

/* Opaque here: ringsock has one provider, so WSASocket takes NULL. */
typedef struct _WSAPROTOCOL_INFOA WSAPROTOCOL_INFOA, *LPWSAPROTOCOL_INFOA;
typedef struct _WSAPROTOCOL_INFOW WSAPROTOCOL_INFOW, *LPWSAPROTOCOL_INFOW;

#define WSA_FLAG_OVERLAPPED 0x01
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80

#ifndef RINGSOCK_NO_BSD_NAMES
/* ---- flags, options, ioctls ------------------------------------------- */

#define MSG_OOB 0x1
#define MSG_PEEK 0x2
#define MSG_DONTROUTE 0x4
#define MSG_WAITALL 0x8
#define MSG_PUSH_IMMEDIATE 0x20
#define MSG_PARTIAL 0x8000
#define MSG_TRUNC 0x0100
#define MSG_CTRUNC 0x0200
#define MSG_BCAST 0x0400
#define MSG_MCAST 0x0800

#define SD_RECEIVE 0x00
#define SD_SEND 0x01
#define SD_BOTH 0x02

#define SOL_SOCKET 0xffff
#define SO_DEBUG 0x0001
#define SO_ACCEPTCONN 0x0002
#define SO_REUSEADDR 0x0004
#define SO_KEEPALIVE 0x0008
#define SO_DONTROUTE 0x0010
#define SO_BROADCAST 0x0020
#define SO_LINGER 0x0080
#define SO_OOBINLINE 0x0100
#define SO_EXCLUSIVEADDRUSE ((int)(~SO_REUSEADDR))
#define SO_SNDBUF 0x1001
#define SO_RCVBUF 0x1002
#define SO_SNDLOWAT 0x1003
#define SO_RCVLOWAT 0x1004
#define SO_SNDTIMEO 0x1005
#define SO_RCVTIMEO 0x1006
#define SO_ERROR 0x1007
#define SO_TYPE 0x1008
#define SO_DONTLINGER ((int)(~SO_LINGER))

/* SO_LINGER's value: l_onoff non-zero with l_linger 0 resets the
 * connection at closesocket; with l_linger > 0 a blocking closesocket
 * waits up to that many seconds for the queued bytes to be acknowledged. */
typedef struct linger {
    u_short l_onoff;
    u_short l_linger;
} LINGER, *PLINGER, *LPLINGER;

#define SOMAXCONN 0x7fffffff
#define SOMAXCONN_HINT(b) (-(b))

/* IPPROTO_TCP level */
#define TCP_NODELAY 0x0001

#define IOCPARM_MASK 0x7f
#define IOC_VOID 0x20000000
#define IOC_OUT 0x40000000
#define IOC_IN 0x80000000
#define _IO(x, y) (IOC_VOID | ((x) << 8) | (y))
#define _IOR(x, y, t) (IOC_OUT | (((long)sizeof(t) & IOCPARM_MASK) << 16) | ((x) << 8) | (y))
#define _IOW(x, y, t) (IOC_IN | (((long)sizeof(t) & IOCPARM_MASK) << 16) | ((x) << 8) | (y))
/* As LONG, the type ioctlsocket takes (Windows' long is 32 bits). */
#define FIONREAD ((LONG)0x4004667F)
#define FIONBIO ((LONG)0x8004667E)

#define IOC_WS2 0x08000000
#define IOC_INOUT (IOC_IN | IOC_OUT)
#define _WSAIORW(x, y) (IOC_INOUT | (x) | (y))
/* In: the extension's GUID (<ringsock/mswsock.h>); out: its function pointer. */
#define SIO_GET_EXTENSION_FUNCTION_POINTER _WSAIORW(IOC_WS2, 6)

#endif /* RINGSOCK_NO_BSD_NAMES */

/* ---- error codes ------------------------------------------------------- */

#define WSA_INVALID_HANDLE 6
#define WSA_NOT_ENOUGH_MEMORY 8
#define WSA_INVALID_PARAMETER 87
#define WSA_OPERATION_ABORTED 995
#define WSA_IO_INCOMPLETE 996
#define WSA_IO_PENDING 997

#define WSABASEERR 10000
#define WSAEINTR 10004
#define WSAEBADF 10009
#define WSAEACCES 10013
#define WSAEFAULT 10014
#define WSAEINVAL 10022
#define WSAEMFILE 10024
#define WSAEWOULDBLOCK 10035
#define WSAEINPROGRESS 10036
#define WSAEALREADY 10037
#define WSAENOTSOCK 10038
#define WSAEDESTADDRREQ 10039
#define WSAEMSGSIZE 10040
#define WSAEPROTOTYPE 10041
#define WSAENOPROTOOPT 10042
#define WSAEPROTONOSUPPORT 10043
#define WSAESOCKTNOSUPPORT 10044
#define WSAEOPNOTSUPP 10045
#define WSAEPFNOSUPPORT 10046
#define WSAEAFNOSUPPORT 10047
#define WSAEADDRINUSE 10048
#define WSAEADDRNOTAVAIL 10049
#define WSAENETDOWN 10050
#define WSAENETUNREACH 10051
#define WSAENETRESET 10052
#define WSAECONNABORTED 10053
#define WSAECONNRESET 10054
#define WSAENOBUFS 10055
#define WSAEISCONN 10056
#define WSAENOTCONN 10057
#define WSAESHUTDOWN 10058
#define WSAETOOMANYREFS 10059
#define WSAETIMEDOUT 10060
#define WSAECONNREFUSED 10061
#define WSAELOOP 10062
#define WSAENAMETOOLONG 10063
#define WSAEHOSTDOWN 10064
#define WSAEHOSTUNREACH 10065
#define WSAENOTEMPTY 10066
#define WSAEPROCLIM 10067
#define WSAEUSERS 10068
#define WSAEDQUOT 10069
#define WSAESTALE 10070
#define WSAEREMOTE 10071
#define WSASYSNOTREADY 10091
#define WSAVERNOTSUPPORTED 10092
#define WSANOTINITIALISED 10093
#define WSAEDISCON 10101
#define WSAENOMORE 10102
#define WSAECANCELLED 10103
#define WSAEINVALIDPROCTABLE 10104
#define WSAEINVALIDPROVIDER 10105
#define WSAEPROVIDERFAILEDINIT 10106
#define WSASYSCALLFAILURE 10107

/* ---- calls ------------------------------------------------------------- */

RINGSOCK_BEGIN_C

int WINAPI WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData);
int WINAPI WSACleanup(void);
int WINAPI WSAGetLastError(void);
void WINAPI WSASetLastError(int iError);

#ifndef RINGSOCK_NO_BSD_NAMES
SOCKET WINAPI socket(int af, int type, int protocol) RINGSOCK_SYMBOL(socket);
#endif
SOCKET WINAPI WSASocketA(int af, int type, int protocol, LPWSAPROTOCOL_INFOA lpProtocolInfo, GROUP g,
                         DWORD dwFlags);
SOCKET WINAPI WSASocketW(int af, int type, int protocol, LPWSAPROTOCOL_INFOW lpProtocolInfo, GROUP g,
                         DWORD dwFlags);
#ifdef UNICODE
#define WSASocket WSASocketW
#else
#define WSASocket WSASocketA
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI bind(SOCKET s, const struct sockaddr* name, int namelen) RINGSOCK_SYMBOL(bind);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI connect(SOCKET s, const struct sockaddr* name, int namelen) RINGSOCK_SYMBOL(connect);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI listen(SOCKET s, int backlog) RINGSOCK_SYMBOL(listen);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
SOCKET WINAPI accept(SOCKET s, struct sockaddr* addr, int* addrlen) RINGSOCK_SYMBOL(accept);
#endif
int WINAPI closesocket(SOCKET s);
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI shutdown(SOCKET s, int how) RINGSOCK_SYMBOL(shutdown);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI getsockname(SOCKET s, struct sockaddr* name, int* namelen) RINGSOCK_SYMBOL(getsockname);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI getpeername(SOCKET s, struct sockaddr* name, int* namelen) RINGSOCK_SYMBOL(getpeername);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI setsockopt(SOCKET s, int level, int optname, const char* optval, int optlen) RINGSOCK_SYMBOL(setsockopt);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI getsockopt(SOCKET s, int level, int optname, char* optval, int* optlen) RINGSOCK_SYMBOL(getsockopt);
#endif
int WINAPI ioctlsocket(SOCKET s, LONG cmd, u_long* argp);
int WINAPI WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer, LPVOID lpvOutBuffer,
                    DWORD cbOutBuffer, LPDWORD lpcbBytesReturned, LPWSAOVERLAPPED lpOverlapped,
                    LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

int WINAPI WSARecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WINAPI WSARecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd,
                       LPDWORD lpFlags, struct sockaddr* lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped,
                       LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WINAPI WSASend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WINAPI WSASendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                     const struct sockaddr* lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
/* WSASendTo with the destination and buffers in a WSAMSG (lpMsg->name may
 * be NULL on a connected socket); its control data may hold an IP_PKTINFO
 * or IPV6_PKTINFO record naming the source, which must be unspecified or
 * the address the datagram leaves from anyway (<ws2ipdef.h>; ringsock has
 * one per family and scope), else WSAEADDRNOTAVAIL; any other record
 * WSAEINVAL. Datagram sockets only (WSAEOPNOTSUPP). */
int WINAPI WSASendMsg(SOCKET Handle, LPWSAMSG lpMsg, DWORD dwFlags, LPDWORD lpNumberOfBytesSent,
                      LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI recv(SOCKET s, char* buf, int len, int flags) RINGSOCK_SYMBOL(recv);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI recvfrom(SOCKET s, char* buf, int len, int flags, struct sockaddr* from, int* fromlen)
    RINGSOCK_SYMBOL(recvfrom);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI send(SOCKET s, const char* buf, int len, int flags) RINGSOCK_SYMBOL(send);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
int WINAPI sendto(SOCKET s, const char* buf, int len, int flags, const struct sockaddr* to, int tolen)
    RINGSOCK_SYMBOL(sendto);
#endif

BOOL WINAPI WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait,
                                   LPDWORD lpdwFlags);

WSAEVENT WINAPI WSACreateEvent(void);
BOOL WINAPI WSASetEvent(WSAEVENT hEvent);
BOOL WINAPI WSAResetEvent(WSAEVENT hEvent);
BOOL WINAPI WSACloseEvent(WSAEVENT hEvent);
DWORD WINAPI WSAWaitForMultipleEvents(DWORD cEvents, const WSAEVENT* lphEvents, BOOL fWaitAll, DWORD dwTimeout,
                                      BOOL fAlertable);

#ifndef RINGSOCK_NO_BSD_NAMES
u_short WINAPI htons(u_short hostshort) RINGSOCK_SYMBOL(htons);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
u_short WINAPI ntohs(u_short netshort) RINGSOCK_SYMBOL(ntohs);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
u_long WINAPI htonl(u_long hostlong) RINGSOCK_SYMBOL(htonl);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
u_long WINAPI ntohl(u_long netlong) RINGSOCK_SYMBOL(ntohl);
#endif
#ifndef RINGSOCK_NO_BSD_NAMES
ULONG WINAPI inet_addr(const char* cp) RINGSOCK_SYMBOL(inet_addr);
#endif

RINGSOCK_END_C

#endif /* RINGSOCK_WINSOCK2_H */
