// TCP through lwIP's raw API against the Linux kernel in a namespace: an
// echo server on our stack (tests/support/lwip_tcp_echo.hh) and a Python
// client in the namespace (tests/data/tcp_echo_client.py). Bulk data must
// come back byte for byte (SHA-256 of what was sent and what came back),
// also through a lossy, reordering link; a peer's reset must be seen as a
// reset and its close as a close; a peer that opens holes must not take
// the port's mbufs with what waits beyond them; and every mbuf lwIP held
// must be back in the pool afterwards.
//
// Built twice: test_stack_tcp over net_pcap on a veth (lwIP sums and checks
// every checksum itself) and test_stack_tcp_tap over net_tap with the
// kernel side in the namespace (RINGSOCK_STACK_TCP_OVER_TAP: the port sums
// IPv4 headers and TCP on transmit and vouches on receive, so the same
// transfers prove the offload path; the counters test checks it was taken).
//
// Needs root (namespaces, tc); skipped with the reason otherwise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>
#include <utility>
#include <string>

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "tests/support/lwip_tcp_client.hh"
#include "tests/support/lwip_tcp_echo.hh"
#include "tests/support/stack_host.hh"
#include "tests/support/subprocess.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;
using ringsock::testing::LwipTcpEchoServer;

#ifdef RINGSOCK_STACK_TCP_OVER_TAP
constexpr const char* kNamespace = "rstcptap";
constexpr auto kLink = ringsock::testing::StackHost::Link::tap_in_namespace;
#else
constexpr const char* kNamespace = "rstcp";
constexpr auto kLink = ringsock::testing::StackHost::Link::pcap_on_veth;
#endif

ringsock::testing::StackHost* host = nullptr;

// The client, run in the namespace: tests/data/tcp_echo_client.py.
std::string client_script()
{
    return ringsock::testing::source_root() + "/tests/data/tcp_echo_client.py";
}

// Loss and reordering for the life of the guard, removed on every exit
// path, failed assertions included. netem on the namespace's eth0 where the
// kernel has sch_netem (the kernel's data and ACKs are lost, reordered,
// delayed); where it has not (these build VMs' kernels ship without it),
// the same rates applied in-process at lwIP's netif, both directions, so
// lwIP's own retransmissions are exercised as well as the kernel's.
class Impairment {
public:
    Impairment(unsigned loss_per_mille, unsigned reorder_per_mille)
    {
        const Finished done = ringsock::testing::run_shell(
            host->in_namespace("tc qdisc add dev eth0 root netem loss " + percent(loss_per_mille) + " reorder " +
                               percent(reorder_per_mille) + " delay 1ms"));
        netem_ = done.exit_code == 0;
        if (!netem_) in_process_.emplace(host->lwip().raw(), loss_per_mille, reorder_per_mille, 20240611);
        why_ = netem_ ? "netem on the namespace's eth0" : "in-process at lwIP's netif (" + done.output + ")";
    }
    ~Impairment()
    {
        if (netem_) ringsock::testing::run_shell(host->in_namespace("tc qdisc del dev eth0 root"));
    }
    // How, and what it dropped and reordered, for the report.
    std::string report() const
    {
        if (netem_)
            return why_ + ": " + ringsock::testing::run_shell(host->in_namespace("tc -s qdisc show dev eth0")).output;
        const auto& c = in_process_->counters();
        return why_ + ": into lwIP dropped " + std::to_string(c.rx_dropped) + " reordered " +
               std::to_string(c.rx_reordered) + ", out of lwIP dropped " + std::to_string(c.tx_dropped) +
               " reordered " + std::to_string(c.tx_reordered);
    }

private:
    static std::string percent(unsigned per_mille)
    {
        return std::to_string(per_mille / 10) + "." + std::to_string(per_mille % 10) + "%";
    }
    bool netem_ = false;
    std::optional<ringsock::testing::LwipImpairment> in_process_;
    std::string why_;
};

// Our port's MAC as 12 hex digits, for frames a test builds by hand.
std::string our_mac_hex()
{
    char hex[13];
    const auto& m = host->mac();
    std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x%02x%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return hex;
}

class StackTcp : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!host->ready()) GTEST_SKIP() << host->why();
        host->poll_for(100ms); // flush what the last test left in the TX buffer
        mbufs_before_ = host->mbufs_in_use();
        pcbs_before_ = ringsock::testing::lwip_tcp_pcbs_in_use();
    }
    // Every RX mbuf lwIP took (zero-copy pbufs in receive and out-of-order
    // queues, the echo server's queue) is back once the connections are
    // gone; TCP pcbs too (the kernel side closes first, so TIME_WAIT is
    // the kernel's, not lwIP's).
    void TearDown() override
    {
        if (!host->ready()) return;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline &&
               (host->mbufs_in_use() != mbufs_before_ || ringsock::testing::lwip_tcp_pcbs_in_use() != pcbs_before_))
            host->poll_for(50ms);
        EXPECT_EQ(host->mbufs_in_use(), mbufs_before_) << "mbufs still held after the test";
        EXPECT_EQ(ringsock::testing::lwip_tcp_pcbs_in_use(), pcbs_before_)
            << "TCP pcbs still held; " << ringsock::testing::lwip_tcp_counters();
    }

    // Runs the client against a fresh echo server on `port`; returns what
    // it printed. The server is gone (and any connection left aborted)
    // before this returns.
    Finished run_client(uint16_t port, size_t bytes, const std::string& mode, std::chrono::seconds limit,
                        LwipTcpEchoServer::Counters& counters, const std::string& server_address = "198.18.0.2")
    {
        LwipTcpEchoServer server(port);
        Child client({"/bin/sh", "-c",
                      host->in_namespace("python3 " + client_script() + " " + server_address + " " +
                                         std::to_string(port) + " " + std::to_string(bytes) + " " + mode)});
        const auto start = std::chrono::steady_clock::now();
        Finished done = host->run_until_exit(client, limit);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // The last ACKs and the close (or the reset) reach lwIP after the
        // client has exited.
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (server.open_connections() != 0 && std::chrono::steady_clock::now() < deadline)
            host->poll_for(20ms);
        counters = server.counters();
        std::printf("[ client   ] %s %zu bytes: %.2f s, mbufs in use at the end %u, server queued %zu\n%s",
                    mode.c_str(), bytes, seconds, host->mbufs_in_use(), server.bytes_queued(), done.output.c_str());
        std::printf(
            "[ lwip     ] accepted %llu echoed %llu resets %llu closes %llu other %llu stalls %llu; %s\n",
            static_cast<unsigned long long>(counters.accepted), static_cast<unsigned long long>(counters.bytes_echoed),
            static_cast<unsigned long long>(counters.resets), static_cast<unsigned long long>(counters.closes),
            static_cast<unsigned long long>(counters.other_errors),
            static_cast<unsigned long long>(counters.write_stalls), ringsock::testing::lwip_tcp_counters().c_str());
        return done;
    }

    // The "<label> <bytes> sha256 <hex>" line the client prints, as
    // {bytes, hash}; empty strings when absent. (No std::regex: GCC 12
    // warns inside it under -fsanitize with -Werror.)
    static std::pair<std::string, std::string> client_line(const std::string& output, const std::string& label)
    {
        const auto at = output.find(label + " ");
        if (at == std::string::npos) return {};
        std::istringstream line(output.substr(at + label.size() + 1));
        std::string bytes, word, hash;
        line >> bytes >> word >> hash;
        if (word != "sha256" || hash.size() != 64) return {};
        return {bytes, hash};
    }

    // Asserts the client's two hashes are present and equal.
    static void expect_identical(const Finished& done, size_t bytes)
    {
        const auto sent = client_line(done.output, "sent");
        const auto received = client_line(done.output, "received");
        ASSERT_FALSE(sent.second.empty()) << done.output;
        ASSERT_FALSE(received.second.empty()) << done.output;
        EXPECT_EQ(sent.first, std::to_string(bytes));
        EXPECT_EQ(received.first, std::to_string(bytes));
        EXPECT_EQ(sent.second, received.second);
    }

    unsigned mbufs_before_ = 0;
    unsigned pcbs_before_ = 0;
};

TEST_F(StackTcp, KernelClientGetsBack64MiBIdentical)
{
    constexpr size_t kBytes = 64u << 20;
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7001, kBytes, "echo", 120s, counters);
    ASSERT_TRUE(done.finished) << "client still running after 120 s: " << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.bytes_echoed, kBytes);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
}

TEST_F(StackTcp, EchoIsIdenticalThroughLossAndReordering)
{
    // 1% loss and 1% reordering each way. 8 MiB keeps this suite short; the
    // 64 MiB transfers through the same impairment are test_api_tcp_impaired
    // (lwIP sends slower than the kernel there: Reno, no SACK processing).
    constexpr size_t kBytes = 8u << 20;
    Impairment impairment(10, 10);
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7002, kBytes, "echo", 150s, counters);
    std::printf("[ impaired ] %s\n", impairment.report().c_str());
    ASSERT_TRUE(done.finished) << "client still running after 150 s: " << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.bytes_echoed, kBytes);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
}

TEST_F(StackTcp, APeerResetIsSeenAsAReset)
{
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7003, 0, "reset", 30s, counters);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.resets, 1u);
    EXPECT_EQ(counters.closes, 0u);
}

TEST_F(StackTcp, PeerCloseIsSeenAsAClose)
{
    constexpr size_t kBytes = 100000;
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7004, kBytes, "echo", 30s, counters);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
    EXPECT_EQ(counters.other_errors, 0u);
}

TEST_F(StackTcp, WeConnectToAKernelServerAndItGetsEveryByte)
{
    // The kernel reads exactly the bytes it expects, checks them against
    // the same pattern, answers "ok N" or "mismatch", and closes first.
    constexpr size_t kBytes = 8u << 20;
    Child server({"/bin/sh", "-c",
                  host->in_namespace("timeout 60 python3 -c '\n"
                                     "import socket, sys\n"
                                     "n = int(sys.argv[1])\n"
                                     "block = bytes((i * 7 + 3) % 256 for i in range(256))\n"
                                     "expected = (block * (n // 256 + 1))[:n]\n"
                                     "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                     "s.bind((\"198.18.0.1\", 7200)); s.listen(1)\n"
                                     "print(\"listening\", flush=True)\n"
                                     "c, peer = s.accept()\n"
                                     "got = bytearray()\n"
                                     "while len(got) < n:\n"
                                     "    chunk = c.recv(1 << 20)\n"
                                     "    if not chunk: break\n"
                                     "    got += chunk\n"
                                     "answer = (\"ok %d\" % len(got)) if bytes(got) == expected else \"mismatch\"\n"
                                     "c.sendall(answer.encode()); c.close()\n"
                                     "print(answer, peer, flush=True)\n"
                                     "' " +
                                     std::to_string(kBytes))});
    const auto ready = std::chrono::steady_clock::now() + 20s;
    while (server.poll_output().find("listening") == std::string::npos && std::chrono::steady_clock::now() < ready)
        host->poll_for(50ms);
    ASSERT_NE(server.poll_output().find("listening"), std::string::npos) << server.poll_output();

    ringsock::testing::LwipTcpClient client({198, 18, 0, 1}, 7200, kBytes);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!client.peer_closed() && !client.failed() && std::chrono::steady_clock::now() < deadline)
        host->poll_for(20ms);
    const Finished done = host->run_until_exit(server, 10s);
    EXPECT_TRUE(client.connected());
    EXPECT_FALSE(client.failed());
    EXPECT_EQ(client.bytes_sent(), kBytes);
    EXPECT_EQ(client.received(), "ok " + std::to_string(kBytes)) << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
}

// lwIP's checksums follow the port: on a port that sums IPv4 headers and
// TCP on transmit (net_tap), lwIP leaves them out and every frame it sends
// with them is marked for the port; on one that checks on receive, frames
// the PMD vouched for skip lwIP's checks. On a port with neither (net_pcap)
// nothing is marked or trusted. Either way ping and a transfer work, which
// they could not if a checksum were missing.
// lwIP's group memberships reach the port's multicast filter: a port that
// is not promiscuous must still receive the groups its sockets joined and
// the solicited-node groups neighbour discovery needs. Two groups that
// share a MAC count once; leaving both removes it.
TEST_F(StackTcp, GroupMembershipsReachThePortsMulticastFilter)
{
    ringsock::stack::LwipInterface& lwip = host->lwip();
    const std::size_t before = lwip.multicast_macs();
    EXPECT_GE(before, 3u) << "224.0.0.1, ff02::1 and a solicited-node group from the start";
    ASSERT_TRUE(lwip.join_ipv4_group({239, 1, 2, 3}));
    EXPECT_EQ(lwip.multicast_macs(), before + 1);
    ASSERT_TRUE(lwip.join_ipv4_group({239, 129, 2, 3})) << "the same MAC, 01:00:5e:01:02:03";
    EXPECT_EQ(lwip.multicast_macs(), before + 1);
#ifdef RINGSOCK_STACK_TCP_OVER_TAP
    // The PMD accepted the list. What its kernel side then holds cannot be
    // read here: that side was moved into the namespace, out of reach of
    // the PMD's ioctls, which address it by name in ours.
    EXPECT_FALSE(lwip.all_multicast()) << "net_tap takes an address list";
#else
    EXPECT_TRUE(lwip.all_multicast()) << "net_pcap has no address list: all-multicast stands in";
#endif
    ASSERT_TRUE(lwip.leave_ipv4_group({239, 1, 2, 3}));
    EXPECT_EQ(lwip.multicast_macs(), before + 1) << "239.129.2.3 still needs it";
    ASSERT_TRUE(lwip.leave_ipv4_group({239, 129, 2, 3}));
    EXPECT_EQ(lwip.multicast_macs(), before);
}

// The same for IPv6 groups through MLD: 33:33 and the group's last four
// bytes, which ff3e::4242 and ff3e::1:0:4242 share.
TEST_F(StackTcp, Ipv6GroupMembershipsReachThePortsMulticastFilter)
{
    ringsock::stack::LwipInterface& lwip = host->lwip();
    const std::size_t before = lwip.multicast_macs();
    const ringsock::stack::Ipv6Address first{0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x42};
    const ringsock::stack::Ipv6Address second{0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x42, 0x42};
    ASSERT_TRUE(lwip.join_ipv6_group(first));
    EXPECT_EQ(lwip.multicast_macs(), before + 1);
    ASSERT_TRUE(lwip.join_ipv6_group(second)) << "the same MAC, 33:33:00:00:42:42";
    EXPECT_EQ(lwip.multicast_macs(), before + 1);
    ASSERT_TRUE(lwip.leave_ipv6_group(first));
    EXPECT_EQ(lwip.multicast_macs(), before + 1) << "ff3e::1:0:4242 still needs it";
    ASSERT_TRUE(lwip.leave_ipv6_group(second));
    EXPECT_EQ(lwip.multicast_macs(), before);
    EXPECT_FALSE(lwip.leave_ipv6_group(second)) << "not a member any more";
}

TEST_F(StackTcp, ChecksumsAreLeftToThePortExactlyWhenItOffersThem)
{
    const bool tx_offload = (host->port().tx_offloads() & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0;
    const bool rx_offload = (host->port().rx_offloads() & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) != 0;
#ifdef RINGSOCK_STACK_TCP_OVER_TAP
    ASSERT_TRUE(tx_offload && rx_offload) << "net_tap offers TCP checksum offload both ways";
    ASSERT_TRUE(host->port().tx_offloads() & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
#endif
    const auto& c = host->lwip().counters();
    const uint64_t offloaded_before = c.tx_checksum_offloaded.get();
    const uint64_t trusted_before = c.rx_checksum_trusted.get();
    const uint64_t sent_before = c.tx_frames.get();

    Child ping({"/bin/sh", "-c", host->in_namespace("ping -c 20 -i 0.01 -W 2 198.18.0.2")});
    const Finished pinged = host->run_until_exit(ping, 20s);
    EXPECT_EQ(pinged.exit_code, 0) << pinged.output;
    EXPECT_NE(pinged.output.find(" 0% packet loss"), std::string::npos) << pinged.output;
    // Over IPv4 and IPv6: the port sums TCP with either pseudo-header.
    for (const char* address : {"198.18.0.2", "2001:2::2"}) {
        LwipTcpEchoServer::Counters counters;
        const Finished done = run_client(7005, 1u << 20, "echo", 30s, counters, address);
        EXPECT_EQ(done.exit_code, 0) << address << ": " << done.output;
        expect_identical(done, 1u << 20);
    }

    const uint64_t sent = c.tx_frames.get() - sent_before;
    const uint64_t offloaded = c.tx_checksum_offloaded.get() - offloaded_before;
    const uint64_t trusted = c.rx_checksum_trusted.get() - trusted_before;
    std::printf("[ checksum ] sent %llu, offloaded %llu, received and trusted %llu\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(offloaded),
                static_cast<unsigned long long>(trusted));
    if (tx_offload) {
        // Every IPv4 frame (ping replies, segments) and every TCP segment;
        // only ARP and IPv6 control frames (ND, MLD) go unmarked.
        EXPECT_GE(offloaded, 20u + 2 * 100u);
        EXPECT_LE(offloaded, sent);
    } else {
        EXPECT_EQ(offloaded, 0u);
    }
    if (rx_offload)
        EXPECT_GE(trusted, 20u + 2 * 100u); // the echo requests and the client's segments
    else
        EXPECT_EQ(trusted, 0u);
}

// A segment with a wrong TCP checksum never opens a connection: the
// classifier drops it on the PMD's word where the port checks (counted as
// bad_checksum), lwIP's TCP input where it does not (counted as chkerr).
TEST_F(StackTcp, ASegmentWithABadChecksumIsDroppedAndCounted)
{
    const bool rx_offload = (host->port().rx_offloads() & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) != 0;
    LwipTcpEchoServer server(7006);
    const auto bad_checksum = [] {
        return host->classifier().snapshot().drops[static_cast<std::size_t>(ringsock::stack::DropReason::bad_checksum)];
    };
    const uint64_t classifier_before = bad_checksum();
    const uint64_t lwip_before = ringsock::testing::lwip_tcp_checksum_errors();

    const std::string mac_hex = our_mac_hex();
    // A SYN built by hand (IPv4 header summed right, TCP sum wrong) on a
    // raw socket: the kernel would sum a segment it sent itself.
    Child sender({"/bin/sh", "-c",
                  host->in_namespace(std::string("python3 -c '\n"
                                                 "import socket, struct\n"
                                                 "def csum(b):\n"
                                                 "    s = sum(struct.unpack(\"!%dH\" % (len(b) // 2), b))\n"
                                                 "    while s >> 16: s = (s & 0xffff) + (s >> 16)\n"
                                                 "    return ~s & 0xffff\n"
                                                 "src, dst = socket.inet_aton(\"198.18.0.1\"), "
                                                 "socket.inet_aton(\"198.18.0.2\")\n"
                                                 "tcp = struct.pack(\"!HHIIBBHHH\", 40100, 7006, 1, 0, 5 << 4, 0x02, "
                                                 "65535, 0xdead, 0)\n"
                                                 "ip = struct.pack(\"!BBHHHBBH4s4s\", 0x45, 0, 40, 1, 0, 64, 6, 0, "
                                                 "src, dst)\n"
                                                 "ip = ip[:10] + struct.pack(\"!H\", csum(ip)) + ip[12:]\n"
                                                 "frame = bytes.fromhex(\"") +
                                     mac_hex +
                                     "\") + b\"\\x02\\x00\\x00\\x00\\x00\\x01\\x08\\x00\" + ip + tcp\n"
                                     "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
                                     "s.bind((\"eth0\", 0))\n"
                                     "for _ in range(3): s.send(frame)\n"
                                     "print(\"sent\", flush=True)\n'")});
    const Finished sent = host->run_until_exit(sender, 60s);
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
    host->poll_for(300ms);

    const uint64_t classifier_drops = bad_checksum() - classifier_before;
    const uint64_t lwip_drops = ringsock::testing::lwip_tcp_checksum_errors() - lwip_before;
    EXPECT_EQ(classifier_drops + lwip_drops, 3u);
    EXPECT_EQ(classifier_drops, rx_offload ? 3u : 0u);
    EXPECT_EQ(server.counters().accepted, 0u);
}

// What the out-of-order peer (tests/data/tcp_out_of_order_peer.py) left
// behind while it ran: the most mbufs in use at once, over those in use
// before, and what the port and lwIP counted meanwhile.
struct OutOfOrderRun {
    Finished done;
    unsigned peak_held = 0;
    uint64_t rx_nombuf = 0;
    uint64_t out_of_order_freed = 0;
    uint64_t out_of_order_capped = 0; // pbufs lwIP dropped beyond a queue's cap
    uint64_t bytes_taken = 0;         // echoed or waiting to be: what lwIP delivered in order
};

OutOfOrderRun run_out_of_order_peer(uint16_t port, unsigned connections, unsigned segments)
{
    LwipTcpEchoServer server(port);
    const std::string mac_hex = our_mac_hex();
    const unsigned before = host->mbufs_in_use();
    const uint64_t nombuf_before = host->port().stats().rx_nombuf;
    const uint64_t freed_before = host->lwip().counters().tcp_out_of_order_freed.get();
    const uint64_t capped_before = host->lwip().counters().tcp_out_of_order_capped.get();
    Child peer({"/bin/sh", "-c",
                host->in_namespace("python3 " + ringsock::testing::source_root() +
                                   "/tests/data/tcp_out_of_order_peer.py --peer-mac " + mac_hex + " --port " +
                                   std::to_string(port) + " --connections " + std::to_string(connections) +
                                   " --segments " + std::to_string(segments) + " --seconds 60")});
    OutOfOrderRun run;
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    for (;;) {
        for (int i = 0; i < 200; ++i)
            host->engine().poll_once();
        const unsigned held = host->mbufs_in_use();
        if (held > before) run.peak_held = std::max(run.peak_held, held - before);
        run.done = peer.wait(0ms);
        if (run.done.finished || std::chrono::steady_clock::now() > deadline) break;
    }
    // The peer's resets reach lwIP after it has exited.
    const auto settle = std::chrono::steady_clock::now() + 5s;
    while (server.open_connections() != 0 && std::chrono::steady_clock::now() < settle)
        host->poll_for(20ms);
    run.rx_nombuf = host->port().stats().rx_nombuf - nombuf_before;
    run.out_of_order_freed = host->lwip().counters().tcp_out_of_order_freed.get() - freed_before;
    run.out_of_order_capped = host->lwip().counters().tcp_out_of_order_capped.get() - capped_before;
    run.bytes_taken = server.counters().bytes_echoed + server.bytes_queued();
    std::printf("[ holes    ] %u x %u segments: at most %u mbufs held, the port lacked %llu, freed from the "
                "out-of-order queues %llu, dropped beyond their cap %llu\n%s",
                connections, segments, run.peak_held, static_cast<unsigned long long>(run.rx_nombuf),
                static_cast<unsigned long long>(run.out_of_order_freed),
                static_cast<unsigned long long>(run.out_of_order_capped), run.done.output.c_str());
    return run;
}

// One peer sends a window of 100-byte segments beyond a hole: each would
// wait in the mbuf it came in, 12,000 of them against a pool of 8,191.
// lwIP keeps the first 1,024 (TCP_OOSEQ_MAX_PBUFS) and drops the rest,
// counted (tcp_out_of_order_capped), which the peer resends once the hole
// is filled; the pool never ran short. The count is of those that reached
// lwIP: the kernel's backlog on the veth drops 1-3 % of the flood before
// our port sees it (more on a loaded machine, hence the loose bound).
TEST_F(StackTcp, OneConnectionsOutOfOrderSegmentsCannotTakeThePool)
{
    constexpr unsigned kSegments = 12000;
    const OutOfOrderRun run = run_out_of_order_peer(7007, 1, kSegments);
    ASSERT_EQ(run.done.exit_code, 0) << run.done.output;
    EXPECT_NE(run.done.output.find("ping answered"), std::string::npos);
    EXPECT_LE(run.peak_held, 1024u + 128u) << "one connection pinned more than its out-of-order cap";
    EXPECT_EQ(run.rx_nombuf, 0u);
    EXPECT_EQ(run.out_of_order_freed, 0u) << "the cap alone should have bounded it";
    EXPECT_LE(run.out_of_order_capped, kSegments - 1024u);
    EXPECT_GE(run.out_of_order_capped, (kSegments - 1024u) / 2) << "drops beyond the cap went uncounted";
    EXPECT_EQ(run.bytes_taken, 100u * (kSegments + 1));
}

// lwIP's TCP leaves with TTL 64, as the UDP paths and Linux do, not 255.
TEST_F(StackTcp, OurSegmentsLeaveWithTtl64)
{
    const OutOfOrderRun run = run_out_of_order_peer(7009, 2, 10);
    ASSERT_EQ(run.done.exit_code, 0) << run.done.output;
    EXPECT_NE(run.done.output.find("syn-ack ttl 64\n"), std::string::npos) << run.done.output;
}

// Sixteen connections each keep 1,000 segments beyond a hole, under the
// per-connection cap but 16,000 together: once the pool is short lwIP's
// out-of-order queues are given back (tcp_out_of_order.hh), the port never
// lacks an mbuf, a ping is answered, and every stream still arrives whole.
TEST_F(StackTcp, ManyConnectionsOutOfOrderSegmentsAreGivenBackWhenThePoolRunsShort)
{
    constexpr unsigned kConnections = 16, kSegments = 1000;
    const OutOfOrderRun run = run_out_of_order_peer(7008, kConnections, kSegments);
    ASSERT_EQ(run.done.exit_code, 0) << run.done.output;
    EXPECT_NE(run.done.output.find("ping answered"), std::string::npos);
    EXPECT_EQ(run.rx_nombuf, 0u) << "the port ran out of mbufs";
    EXPECT_GT(run.out_of_order_freed, 0u);
    EXPECT_EQ(run.out_of_order_capped, 0u) << "each queue stayed under its cap";
    EXPECT_LT(run.peak_held, host->pool()->size - 512) << "the pool came close to empty";
    EXPECT_EQ(run.bytes_taken, uint64_t{kConnections} * 100u * (kSegments + 1));
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    int rc = 0;
    {
        ringsock::testing::StackHost bed(kNamespace, kNamespace, kLink);
        host = &bed;
        rc = RUN_ALL_TESTS();
        host = nullptr;
    }
    return rc;
}
