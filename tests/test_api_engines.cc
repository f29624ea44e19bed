// The socket layer with two engines on a one-queue port: every frame lands
// on engine 0, so a socket homed on engine 1 receives only if engine 0
// hands its datagrams over. Two EAL lcores share one CPU here (--lcores),
// which is enough to prove the hand-over, not to measure it. Through the
// public header; the kernel in a namespace sends.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

ringsock::testing::Namespace* g_netns = nullptr;

void kernel_sends(uint16_t port, const std::string& sizes)
{
    const auto f = ringsock::testing::run_shell(g_netns->exec("python3 " + ringsock::testing::source_root() +
                                                              "/tests/data/udp_peer.py send --port " +
                                                              std::to_string(port) + " --sizes " + sizes));
    ASSERT_EQ(f.exit_code, 0) << f.output;
}

SOCKET socket_on_engine(int engine, uint16_t port)
{
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
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
    char b[64];
    EXPECT_EQ(recv(s, b, sizeof(b), 0), 12) << WSAGetLastError();
    EXPECT_EQ(recv(s, b, sizeof(b), 0), 34) << WSAGetLastError();
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
