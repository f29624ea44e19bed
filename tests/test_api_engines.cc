// The socket layer with two engines on a one-queue port: every frame lands
// on engine 0, so a socket homed on engine 1 receives only if engine 0
// hands its datagrams over, and port-shared sockets on both engines split
// the flows only if engine 0 spreads them by software RSS. Two EAL lcores share one CPU here (--lcores),
// which is enough to prove the hand-over, not to measure it. Through the
// public header; the kernel in a namespace sends.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"
#include "tests/support/toeplitz.hh"

namespace {

ringsock::testing::Namespace* g_netns = nullptr;

void kernel_sends(uint16_t port, const std::string& sizes, const std::string& extra = "")
{
    const auto f = ringsock::testing::run_shell(g_netns->exec("python3 " + ringsock::testing::source_root() +
                                                              "/tests/data/udp_peer.py send --port " +
                                                              std::to_string(port) + " --sizes " + sizes + extra));
    ASSERT_EQ(f.exit_code, 0) << f.output;
}

SOCKET socket_on_engine(int engine, uint16_t port, bool port_share = false)
{
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    const int share = port_share ? 1 : 0;
    EXPECT_EQ(setsockopt(s, SOL_SOCKET, SO_RINGSOCK_PORT_SHARE, reinterpret_cast<const char*>(&share), sizeof(int)), 0);
    EXPECT_EQ(setsockopt(s, SOL_SOCKET, SO_RINGSOCK_HOME_ENGINE, reinterpret_cast<const char*>(&engine), sizeof(int)),
              0)
        << WSAGetLastError();
    const int timeout_ms = 5000;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&timeout_ms), sizeof(int));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0) << WSAGetLastError();
    return s;
}

class ApiEngines : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (g_netns == nullptr) GTEST_SKIP() << "no namespace testbed";
        WSADATA data;
        ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0) << ringsock_startup_error();
        ASSERT_EQ(ringsock_engine_count(), 2);
    }
    void TearDown() override
    {
        if (g_netns != nullptr) {
            EXPECT_EQ(WSACleanup(), 0);
        }
    }
};

TEST_F(ApiEngines, SocketOnTheEngineWithoutTheQueueReceivesHandedOverDatagrams)
{
    SOCKET s = socket_on_engine(1, 7301);
    kernel_sends(7301, "12,34");
    // Both, in either order: these are the namespace's first datagrams to
    // us, and the kernel may send the second before it flushes the first
    // from its ARP queue (seen once under a loaded sanitized run).
    char b[64];
    const int first = recv(s, b, sizeof(b), 0);
    const int second = recv(s, b, sizeof(b), 0);
    EXPECT_EQ(std::min(first, second), 12) << WSAGetLastError();
    EXPECT_EQ(std::max(first, second), 34) << WSAGetLastError();
    closesocket(s);
}

TEST_F(ApiEngines, PortIsReleasedOnEveryEngineAtClose)
{
    SOCKET s = socket_on_engine(1, 7302);
    closesocket(s);
    // Bound again on engine 0: delivered there, not handed to engine 1.
    SOCKET again = socket_on_engine(0, 7302);
    kernel_sends(7302, "5");
    char b[16];
    EXPECT_EQ(recv(again, b, sizeof(b), 0), 5) << WSAGetLastError();
    closesocket(again);
}

TEST_F(ApiEngines, PortSharedSocketsSplitTheFlowsAsANicWithAQueuePerEngineWould)
{
    // One socket per engine on one port; 64 flows (source ports) of two
    // datagrams each. The port has one queue, so engine 0 hashes each
    // flow with the Toeplitz key (net_pcap has none: the specification's)
    // and hands engine 1 its half. Each flow must arrive whole at the
    // socket of the engine the reference hash names, and nothing be lost.
    constexpr uint16_t kPort = 7303;
    constexpr uint16_t kFirstSource = 41000;
    constexpr int kFlows = 64;
    SOCKET on[2] = {socket_on_engine(0, kPort, true), socket_on_engine(1, kPort, true)};
    std::map<uint16_t, int> expected; // source port -> engine
    int per_engine[2] = {0, 0};
    for (int f = 0; f < kFlows; ++f) {
        const uint16_t source = static_cast<uint16_t>(kFirstSource + f);
        const uint32_t hash = ringsock::testing::reference_toeplitz(
            ringsock::testing::ipv4_tuple({198, 18, 0, 1}, {198, 18, 0, 2}, source, kPort),
            ringsock::testing::kToeplitzSpecKey);
        expected[source] = static_cast<int>((hash & 511) % 2); // a 512-entry RETA over two queues
        ++per_engine[expected[source]];
    }
    ASSERT_GT(per_engine[0], 0);
    ASSERT_GT(per_engine[1], 0);

    kernel_sends(kPort, "20,21", " --src-port " + std::to_string(kFirstSource) + " --flows " + std::to_string(kFlows));
    std::map<uint16_t, std::multiset<int>> got; // source port -> engines it arrived on
    for (int e = 0; e < 2; ++e) {
        // Short timeouts once the expected count is in: a stray extra
        // datagram would show up as a count mismatch below.
        for (int i = 0; i < 2 * per_engine[e]; ++i) {
            char b[64];
            sockaddr_in from{};
            int fromlen = sizeof(from);
            const int n = recvfrom(on[e], b, sizeof(b), 0, reinterpret_cast<sockaddr*>(&from), &fromlen);
            ASSERT_GT(n, 0) << "engine " << e << " datagram " << i << ": " << WSAGetLastError();
            got[ntohs(from.sin_port)].insert(e);
        }
    }
    for (const auto& [source, engine] : expected)
        EXPECT_EQ(got[source], (std::multiset<int>{engine, engine})) << "flow from port " << source;
    int drops = 0;
    int len = sizeof(drops);
    for (SOCKET s : on) {
        EXPECT_EQ(getsockopt(s, SOL_SOCKET, SO_RINGSOCK_RCV_DROPS, reinterpret_cast<char*>(&drops), &len), 0);
        EXPECT_EQ(drops, 0);
        closesocket(s);
    }
}

TEST_F(ApiEngines, AMulticastDatagramReachesTheMemberSocketOnEveryEngine)
{
    // Market data: one socket per engine on the group's port, each a
    // member. Every datagram must reach both, though only engine 0 polls
    // the port's one queue.
    constexpr uint16_t kPort = 7304;
    SOCKET on[2] = {socket_on_engine(0, kPort, true), socket_on_engine(1, kPort, true)};
    ip_mreq mreq{};
    inet_pton(AF_INET, "239.1.2.4", &mreq.imr_multiaddr);
    for (SOCKET s : on)
        ASSERT_EQ(setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, reinterpret_cast<const char*>(&mreq), sizeof(mreq)), 0)
            << WSAGetLastError();
    kernel_sends(kPort, "11,22,33", " --src-port 40304 --dst 239.1.2.4");
    for (int e = 0; e < 2; ++e) {
        for (int expected : {11, 22, 33}) {
            char b[64];
            EXPECT_EQ(recv(on[e], b, sizeof(b), 0), expected) << "engine " << e << ": " << WSAGetLastError();
        }
        u_long queued = 1;
        EXPECT_EQ(ioctlsocket(on[e], FIONREAD, &queued), 0);
        EXPECT_EQ(queued, 0u) << "engine " << e << " got a datagram twice";
    }
    for (SOCKET s : on)
        closesocket(s);
}

// What a function run on engine 0 got when it asked for more functions.
struct FromAnEngine {
    int own_result = -2;
    bool own_ran_in_place = false;
    int other_result = -2;
    bool other_ran = false;
    std::thread::id engine_thread;
};

void run_from_engine_zero(void* context)
{
    auto& f = *static_cast<FromAnEngine*>(context);
    f.engine_thread = std::this_thread::get_id();
    f.own_result = ringsock_run_on_engine(
        0,
        [](void* c) {
            auto& g = *static_cast<FromAnEngine*>(c);
            g.own_ran_in_place = std::this_thread::get_id() == g.engine_thread;
        },
        &f);
    // Engine 1 may be running a function that waits for engine 0: had
    // engine 0 waited for it, neither would move again.
    f.other_result = ringsock_run_on_engine(
        1, [](void* c) { static_cast<FromAnEngine*>(c)->other_ran = true; }, &f);
}

TEST_F(ApiEngines, RunOnEngineFromAnEngineRunsItsOwnInPlaceAndRefusesAnother)
{
    FromAnEngine f;
    ASSERT_EQ(ringsock_run_on_engine(0, run_from_engine_zero, &f), 0);
    EXPECT_EQ(f.own_result, 0);
    EXPECT_TRUE(f.own_ran_in_place) << "ran elsewhere than engine 0's own lcore";
    EXPECT_EQ(f.other_result, WSAEWOULDBLOCK);
    EXPECT_FALSE(f.other_ran);
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    std::unique_ptr<ringsock::testing::Namespace> netns;
    if (ringsock::testing::running_as_root()) {
        netns = std::make_unique<ringsock::testing::Namespace>("rsapieng");
        if (netns->ok()) {
            g_netns = netns.get();
            const std::string device = "port.device=net_pcap0,iface=" + netns->host_interface();
            // Three lcores on two CPUs: the application's, and two engines
            // sharing CPU 1 (they sleep when idle so each gets its turn).
            const char* overrides[] = {device.c_str(),
                                       "eal.lcores=0-1",
                                       "eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]",
                                       "eal.memory_mb=256",
                                       "mempool.mbufs=8191",
                                       "engine.idle_sleep_us=50",
                                       "port.link_timeout_ms=2000"};
            const std::string profile = ringsock::testing::source_root() + "/drivers_config/pcap.toml";
            if (ringsock_configure(profile.c_str(), 7, overrides) != 0) {
                std::fprintf(stderr, "%s\n", ringsock_startup_error());
                return 1;
            }
        }
    }
    const int result = RUN_ALL_TESTS();
    g_netns = nullptr;
    return result;
}
