// The WSA* and BSD-named calls: each checks start-up, calls its WSP*
// provider call and moves the provider's error into the thread's last
// error (WSAGetLastError), as ws2_32 does. Also WSAStartup/WSACleanup,
// byte order and address text, and ringsock's start-up extension.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "api/engine_thread.hh"
#include "api/process_state.hh"
#include "api/runtime.hh"
#include "api/socket_hooks.hh"
#include "ringsock/ringsock.h"
#include "ringsock/ws2spi.h"
#include "ringsock/ws2tcpip.h"

using namespace ringsock::api;

namespace {

// The provider's result with its error moved to the thread's last error.
// Callers store the provider's result first: an argument list would not
// order the call before the read of `error`.
int report(int result, int error) noexcept
{
    if (result == SOCKET_ERROR) set_last_error(error);
    return result;
}

uint16_t swap16(uint16_t v) noexcept
{
    return static_cast<uint16_t>((v >> 8) | (v << 8));
}

uint32_t swap32(uint32_t v) noexcept
{
    return __builtin_bswap32(v);
}

} // namespace

extern "C" {

int ringsock_configure(const char* profile_path, int override_count, const char* const* overrides)
{
    if (runtime() != nullptr) return WSAEALREADY;
    if (profile_path == nullptr || override_count < 0 || (override_count > 0 && overrides == nullptr)) {
        startup_error() = "ringsock_configure: expected a profile path and override_count strings";
        return WSAEINVAL;
    }
    StartupConfig config;
    config.profile_path = profile_path;
    for (int i = 0; i < override_count; ++i) {
        if (overrides[i] == nullptr) {
            startup_error() = "ringsock_configure: override " + std::to_string(i) + " is null";
            return WSAEINVAL;
        }
        config.overrides.emplace_back(overrides[i]);
    }
    startup_config() = std::move(config);
    startup_error().clear();
    return 0;
}

const char* ringsock_startup_error(void)
{
    return startup_error().c_str();
}

int ringsock_engine_count(void)
{
    Runtime* rt = runtime();
    return rt != nullptr ? static_cast<int>(rt->engine_count()) : 0;
}

int ringsock_run_on_engine(int engine, void (*function)(void* context), void* context)
{
    Runtime* rt = runtime();
    if (!started() || rt == nullptr) return WSANOTINITIALISED;
    if (function == nullptr || engine < 0 || static_cast<unsigned>(engine) >= rt->engine_count()) return WSAEINVAL;
    // From an engine, its own runs the function in place; another one would
    // be waited for, and it may be waiting for this one.
    if (rt->on_an_engine() && current_engine != engine) return WSAEWOULDBLOCK;
    ControlCall call;
    call.function = function;
    call.context = context;
    return rt->control(static_cast<unsigned>(engine), Op::call, nullptr, call);
}

int ringsock_poll_on_engine(int engine, int (*poll)(void* context), void* context)
{
    Runtime* rt = runtime();
    if (!started() || rt == nullptr) return WSANOTINITIALISED;
    if (poll == nullptr || engine < 0 || static_cast<unsigned>(engine) >= rt->engine_count()) return WSAEINVAL;
    // The caller would wait for an engine that may be waiting for it.
    if (rt->on_an_engine()) return WSAEWOULDBLOCK;
    ControlCall call;
    call.poll = poll;
    call.context = context;
    if (!rt->engine(static_cast<unsigned>(engine)).submit(Submission{Op::poll, 0, nullptr, &call})) return WSAENOBUFS;
    // Not through the wake hub as other control calls wait: a poller may run
    // for hours, and the hub's epoch moves with every completion, so a
    // waiter there would spin on a line the engine writes millions of times
    // a second. A millisecond late at the end costs nothing.
    while (!call.done.load(std::memory_order_acquire))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return call.result;
}

int WINAPI WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData)
{
    // WSAStartup returns its error; it does not set the last error.
    if (lpWSAData == nullptr) return WSAEFAULT;
    const BYTE major = LOBYTE(wVersionRequested);
    const BYTE minor = HIBYTE(wVersionRequested);
    if (major < 1 || (major == 1 && minor < 1)) return WSAVERNOTSUPPORTED;
    std::memset(lpWSAData, 0, sizeof(*lpWSAData));
    lpWSAData->wVersion = major > 2 || (major == 2 && minor >= 2) ? MAKEWORD(2, 2) : wVersionRequested;
    lpWSAData->wHighVersion = MAKEWORD(2, 2);
    std::snprintf(lpWSAData->szDescription, sizeof(lpWSAData->szDescription), "ringsock %s", "0.1");
    std::snprintf(lpWSAData->szSystemStatus, sizeof(lpWSAData->szSystemStatus), "Running");
    if (const int error = start_runtime(); error != 0) return error;
    startup_count().fetch_add(1, std::memory_order_acq_rel);
    return 0;
}

int WINAPI WSACleanup(void)
{
    // On an engine (a function run or polling there) the last cleanup would
    // close sockets, which waits for the engines: refused, as other calls
    // that change the socket table are there.
    if (Runtime* rt = runtime(); rt != nullptr && rt->on_an_engine()) {
        set_last_error(WSAEWOULDBLOCK);
        return SOCKET_ERROR;
    }
    int count = startup_count().load(std::memory_order_acquire);
    do {
        if (count == 0) {
            set_last_error(WSANOTINITIALISED);
            return SOCKET_ERROR;
        }
    } while (!startup_count().compare_exchange_weak(count, count - 1, std::memory_order_acq_rel));
    // The last one closes every socket (pending requests complete aborted);
    // the engines keep running for a later WSAStartup.
    if (count == 1) cleanup_runtime();
    return 0;
}

SOCKET WINAPI WSASocketW(int af, int type, int protocol, LPWSAPROTOCOL_INFOW lpProtocolInfo, GROUP g, DWORD dwFlags)
{
    int error = 0;
    const SOCKET s = WSPSocket(af, type, protocol, lpProtocolInfo, g, dwFlags, &error);
    if (s == INVALID_SOCKET) set_last_error(error);
    return s;
}

SOCKET WINAPI WSASocketA(int af, int type, int protocol, LPWSAPROTOCOL_INFOA, GROUP g, DWORD dwFlags)
{
    return WSASocketW(af, type, protocol, nullptr, g, dwFlags);
}

SOCKET WINAPI ringsock_socket(int af, int type, int protocol) __asm__("ringsock_socket");
SOCKET WINAPI ringsock_socket(int af, int type, int protocol)
{
    // socket() makes overlapped sockets, as on Windows.
    return WSASocketW(af, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED);
}

int WINAPI ringsock_bind(SOCKET s, const struct sockaddr* name, int namelen) __asm__("ringsock_bind");
int WINAPI ringsock_bind(SOCKET s, const struct sockaddr* name, int namelen)
{
    int error = 0;
    const int result = WSPBind(s, name, namelen, &error);
    return report(result, error);
}

int WINAPI ringsock_connect(SOCKET s, const struct sockaddr* name, int namelen) __asm__("ringsock_connect");
int WINAPI ringsock_connect(SOCKET s, const struct sockaddr* name, int namelen)
{
    int error = 0;
    const int result = WSPConnect(s, name, namelen, nullptr, nullptr, nullptr, nullptr, &error);
    return report(result, error);
}

int WINAPI ringsock_listen(SOCKET s, int backlog) __asm__("ringsock_listen");
int WINAPI ringsock_listen(SOCKET s, int backlog)
{
    int error = 0;
    const int result = WSPListen(s, backlog, &error);
    return report(result, error);
}

SOCKET WINAPI ringsock_accept(SOCKET s, struct sockaddr* addr, int* addrlen) __asm__("ringsock_accept");
SOCKET WINAPI ringsock_accept(SOCKET s, struct sockaddr* addr, int* addrlen)
{
    int error = 0;
    const SOCKET accepted = WSPAccept(s, addr, addrlen, nullptr, 0, &error);
    report(accepted == INVALID_SOCKET ? SOCKET_ERROR : 0, error);
    return accepted;
}

int WINAPI closesocket(SOCKET s)
{
    int error = 0;
    const int result = WSPCloseSocket(s, &error);
    return report(result, error);
}

int WINAPI ringsock_shutdown(SOCKET s, int how) __asm__("ringsock_shutdown");
int WINAPI ringsock_shutdown(SOCKET s, int how)
{
    int error = 0;
    const int result = WSPShutdown(s, how, &error);
    return report(result, error);
}

int WINAPI ringsock_getsockname(SOCKET s, struct sockaddr* name, int* namelen) __asm__("ringsock_getsockname");
int WINAPI ringsock_getsockname(SOCKET s, struct sockaddr* name, int* namelen)
{
    int error = 0;
    const int result = WSPGetSockName(s, name, namelen, &error);
    return report(result, error);
}

int WINAPI ringsock_getpeername(SOCKET s, struct sockaddr* name, int* namelen) __asm__("ringsock_getpeername");
int WINAPI ringsock_getpeername(SOCKET s, struct sockaddr* name, int* namelen)
{
    int error = 0;
    const int result = WSPGetPeerName(s, name, namelen, &error);
    return report(result, error);
}

int WINAPI ringsock_setsockopt(SOCKET s, int level, int optname, const char* optval,
                               int optlen) __asm__("ringsock_setsockopt");
int WINAPI ringsock_setsockopt(SOCKET s, int level, int optname, const char* optval, int optlen)
{
    int error = 0;
    const int result = WSPSetSockOpt(s, level, optname, optval, optlen, &error);
    return report(result, error);
}

int WINAPI ringsock_getsockopt(SOCKET s, int level, int optname, char* optval,
                               int* optlen) __asm__("ringsock_getsockopt");
int WINAPI ringsock_getsockopt(SOCKET s, int level, int optname, char* optval, int* optlen)
{
    int error = 0;
    const int result = WSPGetSockOpt(s, level, optname, optval, optlen, &error);
    return report(result, error);
}

int WINAPI ioctlsocket(SOCKET s, LONG cmd, u_long* argp)
{
    int error = 0;
    DWORD returned = 0;
    const auto code = static_cast<DWORD>(cmd);
    // FIONBIO reads *argp; FIONREAD (and the rest) write it.
    const bool input = code == static_cast<DWORD>(FIONBIO);
    const int result = WSPIoctl(s, code, input ? argp : nullptr, input ? sizeof(u_long) : 0, input ? nullptr : argp,
                                input ? 0 : sizeof(u_long), &returned, nullptr, nullptr, nullptr, &error);
    return report(result, error);
}

int WINAPI WSAIoctl(SOCKET s, DWORD code, LPVOID in, DWORD in_size, LPVOID out, DWORD out_size, LPDWORD returned,
                    LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
    int error = 0;
    const int result = WSPIoctl(s, code, in, in_size, out, out_size, returned, ov, routine, nullptr, &error);
    return report(result, error);
}

int WINAPI WSARecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine)
{
    int error = 0;
    const int result = WSPRecv(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,
                               lpCompletionRoutine, nullptr, &error);
    return report(result, error);
}

int WINAPI WSARecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                       struct sockaddr* lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped,
                       LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine)
{
    int error = 0;
    const int result = WSPRecvFrom(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpFrom, lpFromlen,
                                   lpOverlapped, lpCompletionRoutine, nullptr, &error);
    return report(result, error);
}

int WINAPI WSASend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                   LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine)
{
    int error = 0;
    const int result = WSPSend(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,
                               lpCompletionRoutine, nullptr, &error);
    return report(result, error);
}

int WINAPI WSASendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
                     const struct sockaddr* lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine)
{
    int error = 0;
    const int result = WSPSendTo(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpTo, iTolen, lpOverlapped,
                                 lpCompletionRoutine, nullptr, &error);
    return report(result, error);
}

int WINAPI ringsock_recv(SOCKET s, char* buf, int len, int flags) __asm__("ringsock_recv");
int WINAPI ringsock_recv(SOCKET s, char* buf, int len, int flags)
{
    if (len < 0) return report(SOCKET_ERROR, WSAEFAULT);
    WSABUF b{static_cast<ULONG>(len), buf};
    DWORD got = 0;
    DWORD f = static_cast<DWORD>(flags);
    int error = 0;
    const int r = WSPRecv(s, &b, 1, &got, &f, nullptr, nullptr, nullptr, &error);
    return r == 0 ? static_cast<int>(got) : report(r, error);
}

int WINAPI ringsock_recvfrom(SOCKET s, char* buf, int len, int flags, struct sockaddr* from,
                             int* fromlen) __asm__("ringsock_recvfrom");
int WINAPI ringsock_recvfrom(SOCKET s, char* buf, int len, int flags, struct sockaddr* from, int* fromlen)
{
    if (len < 0) return report(SOCKET_ERROR, WSAEFAULT);
    WSABUF b{static_cast<ULONG>(len), buf};
    DWORD got = 0;
    DWORD f = static_cast<DWORD>(flags);
    int error = 0;
    const int r = WSPRecvFrom(s, &b, 1, &got, &f, from, fromlen, nullptr, nullptr, nullptr, &error);
    return r == 0 ? static_cast<int>(got) : report(r, error);
}

int WINAPI ringsock_send(SOCKET s, const char* buf, int len, int flags) __asm__("ringsock_send");
int WINAPI ringsock_send(SOCKET s, const char* buf, int len, int flags)
{
    if (len < 0) return report(SOCKET_ERROR, WSAEFAULT);
    WSABUF b{static_cast<ULONG>(len), const_cast<char*>(buf)};
    DWORD sent = 0;
    int error = 0;
    const int r = WSPSend(s, &b, 1, &sent, static_cast<DWORD>(flags), nullptr, nullptr, nullptr, &error);
    return r == 0 ? static_cast<int>(sent) : report(r, error);
}

int WINAPI ringsock_sendto(SOCKET s, const char* buf, int len, int flags, const struct sockaddr* to,
                           int tolen) __asm__("ringsock_sendto");
int WINAPI ringsock_sendto(SOCKET s, const char* buf, int len, int flags, const struct sockaddr* to, int tolen)
{
    if (len < 0) return report(SOCKET_ERROR, WSAEFAULT);
    WSABUF b{static_cast<ULONG>(len), const_cast<char*>(buf)};
    DWORD sent = 0;
    int error = 0;
    const int r = WSPSendTo(s, &b, 1, &sent, static_cast<DWORD>(flags), to, tolen, nullptr, nullptr, nullptr, &error);
    return r == 0 ? static_cast<int>(sent) : report(r, error);
}

BOOL WINAPI WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait,
                                   LPDWORD lpdwFlags)
{
    int error = 0;
    const BOOL ok = WSPGetOverlappedResult(s, lpOverlapped, lpcbTransfer, fWait, lpdwFlags, &error);
    if (!ok) set_last_error(error);
    return ok;
}

BOOL WINAPI SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags)
{
    if ((Flags & ~(FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE)) != 0) {
        set_last_error(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (const DWORD error = set_socket_notification_modes(reinterpret_cast<SOCKET>(FileHandle), Flags); error != 0) {
        set_last_error(static_cast<int>(error));
        return FALSE;
    }
    return TRUE;
}

u_short WINAPI ringsock_htons(u_short v) __asm__("ringsock_htons");
u_short WINAPI ringsock_htons(u_short v)
{
    return swap16(v);
}
u_short WINAPI ringsock_ntohs(u_short v) __asm__("ringsock_ntohs");
u_short WINAPI ringsock_ntohs(u_short v)
{
    return swap16(v);
}
u_long WINAPI ringsock_htonl(u_long v) __asm__("ringsock_htonl");
u_long WINAPI ringsock_htonl(u_long v)
{
    return swap32(static_cast<uint32_t>(v));
}
u_long WINAPI ringsock_ntohl(u_long v) __asm__("ringsock_ntohl");
u_long WINAPI ringsock_ntohl(u_long v)
{
    return swap32(static_cast<uint32_t>(v));
}

} // extern "C"
