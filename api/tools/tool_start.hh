// What the API tools do before their own work: hand the profile and its
// overrides to ringsock_configure, start Winsock, bind overlapped UDP
// sockets and listen on TCP ports; and, after it, report each engine's
// share. On the public header only, like the tools themselves.
#pragma once

#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <cstdio>
#include <string>
#include <vector>

namespace ringsock::tools {

// 0 when the stack is up; otherwise prints why (prefixed with `program`)
// and returns the exit status to leave with: 2 for a bad profile or
// override, 1 when the stack would not start.
inline int start_winsock(const char* program, const std::string& profile, const std::vector<std::string>& overrides)
{
    std::vector<const char*> set;
    for (const auto& o : overrides)
        set.push_back(o.c_str());
    if (ringsock_configure(profile.c_str(), static_cast<int>(set.size()), set.data()) != 0) {
        std::fprintf(stderr, "%s: %s\n", program, ringsock_startup_error());
        return 2;
    }
    WSADATA data;
    if (int rc = WSAStartup(MAKEWORD(2, 2), &data); rc != 0) {
        std::fprintf(stderr, "%s: WSAStartup failed (%d): %s\n", program, rc, ringsock_startup_error());
        return 1;
    }
    return 0;
}

// An overlapped UDP socket bound to `port` on every IPv4 address, with a
// 4 MiB receive queue so bursts wait rather than drop; INVALID_SOCKET
// (after saying why) when it cannot be bound. With `home_engine` >= 0 the
// socket shares the port (SO_RINGSOCK_PORT_SHARE) and lives on that engine
// (SO_RINGSOCK_HOME_ENGINE): one such socket per engine is the scale-out
// model, each engine completing into its own rings.
inline SOCKET bind_udp(const char* program, int port, int home_engine = -1)
{
    SOCKET s = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(static_cast<u_short>(port));
    const int rcvbuf = 4 << 20;
    const int on = 1;
    bool options_taken = s != INVALID_SOCKET && setsockopt(s, SOL_SOCKET, SO_RCVBUF,
                                                           reinterpret_cast<const char*>(&rcvbuf), sizeof(rcvbuf)) == 0;
    if (options_taken && home_engine >= 0)
        options_taken =
            setsockopt(s, SOL_SOCKET, SO_RINGSOCK_PORT_SHARE, reinterpret_cast<const char*>(&on), sizeof(on)) == 0 &&
            setsockopt(s, SOL_SOCKET, SO_RINGSOCK_HOME_ENGINE, reinterpret_cast<const char*>(&home_engine),
                       sizeof(home_engine)) == 0;
    if (!options_taken || bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
        std::fprintf(stderr, "%s: cannot bind UDP port %d%s: error %d\n", program, port,
                     home_engine >= 0 ? (" on engine " + std::to_string(home_engine)).c_str() : "", WSAGetLastError());
        if (s != INVALID_SOCKET) closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

// An overlapped TCP socket listening on `port` on every IPv4 address;
// INVALID_SOCKET (after saying why) when it cannot.
inline SOCKET listen_tcp(const char* program, int port, int backlog)
{
    SOCKET s = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(static_cast<u_short>(port));
    if (s == INVALID_SOCKET || bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
        listen(s, backlog) != 0) {
        std::fprintf(stderr, "%s: cannot listen on TCP port %d: error %d\n", program, port, WSAGetLastError());
        if (s != INVALID_SOCKET) closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

// With a socket per engine (--per-engine): what each engine's socket
// received, as {"per_engine":[n0,n1,...]} on a line of its own. RSS (or the
// engines' software RSS) decides the split.
inline void print_per_engine(const std::vector<unsigned long long>& received)
{
    std::printf("{\"per_engine\":[");
    for (std::size_t e = 0; e < received.size(); ++e)
        std::printf("%s%llu", e ? "," : "", received[e]);
    std::printf("]}\n");
}

} // namespace ringsock::tools
