// Core-affine active opens through the whole runtime, on a port that reports
// RSS: net_null with two RX queues and two engines. The runtime reads the
// port's key and redirection table from the PMD; every connect must then
// pick a local port whose reply (peer -> us) the NIC's Toeplitz hash sends
// to the RX queue of lwIP's engine (engine 0 polls queue 0), and a port
// bind chose must be moved there before the SYN. net_null hashes nothing,
// so the hand-off being skipped is not observable here; that its inputs
// come from the PMD and its choice matches the reference hash is. The SYNs
// go nowhere (no ARP answer on net_null); each socket is closed unconnected.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <array>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/port_rss.hh"
#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"
#include "tests/support/toeplitz.hh"
#include "tests/support/winsock_helpers.hh"

namespace {

constexpr std::array<uint8_t, 4> kUs{198, 18, 0, 2};
constexpr std::array<uint8_t, 4> kPeer{198, 18, 0, 1};

uint16_t reply_queue(const ringsock::testing::PortRss& rss, uint16_t peer_port, uint16_t local_port)
{
    const uint32_t hash = ringsock::testing::reference_toeplitz(
        ringsock::testing::ipv4_tuple(kPeer, kUs, peer_port, local_port), rss.key);
    return rss.reta[hash % rss.reta.size()];
}

uint16_t local_port_of(SOCKET s)
{
    sockaddr_in name{};
    int len = sizeof(name);
    EXPECT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&name), &len), 0) << WSAGetLastError();
    return ntohs(name.sin_port);
}

TEST(TcpAffinity, ActiveOpensPickPortsWhoseRepliesLandOnLwipsEngine)
{
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0) << ringsock_startup_error();
    ASSERT_EQ(ringsock_engine_count(), 2);
    const ringsock::testing::PortRss rss = ringsock::testing::read_first_port_rss();
    ASSERT_EQ(rss.error, "");
    const std::set<uint16_t> named(rss.reta.begin(), rss.reta.end());
    ASSERT_EQ(named, (std::set<uint16_t>{0, 1}))
        << "net_null leaves its table all zero; the port must have spread it over both queues";

    std::vector<SOCKET> sockets;
    std::set<uint16_t> chosen;
    int moved = 0;
    for (int i = 0; i < 200; ++i) {
        SOCKET s = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        ASSERT_NE(s, INVALID_SOCKET);
        sockets.push_back(s);
        u_long nonblocking = 1;
        ASSERT_EQ(ioctlsocket(s, FIONBIO, &nonblocking), 0);
        uint16_t bound_port = 0;
        if (i % 2 == 1) {
            // bind picks a port before anyone knows the peer.
            sockaddr_in any{};
            any.sin_family = AF_INET;
            ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0) << WSAGetLastError();
            bound_port = local_port_of(s);
        }
        const uint16_t peer_port = static_cast<uint16_t>(5000 + i % 7);
        sockaddr_in to = ringsock::testing::ipv4_address("198.18.0.1", peer_port);
        ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)), SOCKET_ERROR);
        ASSERT_EQ(WSAGetLastError(), WSAEWOULDBLOCK);
        const uint16_t local = local_port_of(s);
        EXPECT_EQ(reply_queue(rss, peer_port, local), 0) << "connection " << i << " from port " << local;
        EXPECT_TRUE(chosen.insert(local).second) << "port " << local << " given twice";
        if (bound_port != 0 && bound_port != local) ++moved;
    }
    // Half the ports hash to the other queue: some bound ports had to move,
    // or the choice was not made at all.
    EXPECT_GT(moved, 0);
    for (SOCKET s : sockets)
        EXPECT_EQ(closesocket(s), 0);
    EXPECT_EQ(WSACleanup(), 0);
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    // Three lcores on two CPUs: the application's, and two engines sharing
    // CPU 1. net_null never runs dry, so the engines never sleep.
    const char* overrides[] = {"port.rx_queues=2",
                               "port.tx_queues=2",
                               "eal.lcores=0-1",
                               "eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]",
                               "eal.memory_mb=256",
                               "mempool.mbufs=8191",
                               "interface.ipv4=\"198.18.0.2/24\""};
    const std::string profile = ringsock::testing::source_root() + "/drivers_config/null.toml";
    if (ringsock_configure(profile.c_str(), 7, overrides) != 0) {
        std::fprintf(stderr, "%s\n", ringsock_startup_error());
        return 1;
    }
    return RUN_ALL_TESTS();
}
