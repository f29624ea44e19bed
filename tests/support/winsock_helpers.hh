// Small helpers the API tests share, written against the public Winsock
// header only (include it before this file; never beside the C library's
// socket headers).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace ringsock::testing {

inline sockaddr_in ipv4_address(const char* ip, uint16_t port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET, ip, &a.sin_addr), 1) << ip;
    return a;
}

// A UDP socket bound to 0.0.0.0:port (WSA_FLAG_OVERLAPPED unless told).
inline SOCKET bound_udp_socket(uint16_t port, DWORD flags = WSA_FLAG_OVERLAPPED)
{
    SOCKET s = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, flags);
    EXPECT_NE(s, INVALID_SOCKET) << WSAGetLastError();
    sockaddr_in local = ipv4_address("0.0.0.0", port);
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0) << WSAGetLastError();
    return s;
}

// Until at least `n` bytes are queued on `s` (FIONREAD), at most 5 s.
inline bool wait_queued(SOCKET s, u_long n)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    u_long queued = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (ioctlsocket(s, FIONREAD, &queued) == 0 && queued >= n) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

// The error of one overlapped WSARecv that must fail at once (unbound,
// shut down, not overlapped, closed): WSAGetLastError() after it, or 0 when
// it did not fail with SOCKET_ERROR.
inline int overlapped_recv_error(SOCKET s)
{
    char b[8];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    if (WSARecv(s, &buf, 1, &got, &flags, &ov, nullptr) != SOCKET_ERROR) return 0;
    return WSAGetLastError();
}

// Configures the API tests' stack before WSAStartup: net_pcap on `iface`
// (a testbed veth), an engine on lcore 1, EAL file prefix `prefix` (so
// dpdk-telemetry.py finds the process). False, after printing why, when the
// profile or overrides are refused.
inline bool configure_pcap_stack(const std::string& source_root, const std::string& iface, const std::string& prefix)
{
    const std::string device = "port.device=net_pcap0,iface=" + iface;
    const std::string file_prefix = "eal.file_prefix=" + prefix;
    const char* overrides[] = {
        device.c_str(),     "eal.lcores=0-1", "eal.memory_mb=256", "mempool.mbufs=8191", "port.link_timeout_ms=2000",
        file_prefix.c_str()};
    const std::string profile = source_root + "/drivers_config/pcap.toml";
    if (ringsock_configure(profile.c_str(), 6, overrides) == 0) return true;
    std::fprintf(stderr, "%s\n", ringsock_startup_error());
    return false;
}

inline bool signalled(WSAEVENT ev, DWORD timeout_ms)
{
    return WSAWaitForMultipleEvents(1, &ev, FALSE, timeout_ms, FALSE) == WSA_WAIT_EVENT_0;
}

// How long `call` took: a call that must not wait. Should it still run
// after 3 s, `rescue` (which must end the wait, e.g. by sending what it
// waits for) runs on another thread, so a failing test fails instead of
// hanging.
template <typename Call, typename Rescue>
std::chrono::steady_clock::duration time_without_waiting(Call call, Rescue rescue)
{
    std::atomic<bool> returned{false};
    std::thread rescuer([&] {
        for (int i = 0; i < 300 && !returned.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!returned.load()) rescue();
    });
    const auto started = std::chrono::steady_clock::now();
    call();
    const auto took = std::chrono::steady_clock::now() - started;
    returned = true;
    rescuer.join();
    return took;
}

} // namespace ringsock::testing
