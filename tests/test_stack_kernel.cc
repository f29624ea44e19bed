// The stack against the Linux kernel in a namespace (net_af_packet on the
// host end of a veth): the classifier hands ARP, ICMP, ICMPv6 and
// fragments to lwIP on this engine, and the kernel must see a host that
// answers ping and ping -6, resolves and is resolved by ARP, and reassembles
// a fragmented datagram whole.
//
// Needs root (namespaces); skipped with the reason otherwise.
#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/port.hh"
#include "dataplane/profile.hh"
#include "stack/classifier.hh"
#include "stack/interface_config.hh"
#include "stack/lwip_netif.hh"
#include "tests/support/lwip_probe.hh"
#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

using namespace ringsock::dataplane;
using namespace ringsock::stack;
using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;

constexpr const char* kNamespace = "rsstack";

// UDP datagrams the fast path would take: none are bound in these tests.
class NoUdpSockets final : public UdpSink {
public:
    void on_udp(UdpDatagram* d, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i)
            rte_pktmbuf_free(d[i].mbuf);
    }
};

// Records the sizes of IPv4 frames (debug aid for failure messages).
class FrameSizes final : public BurstHandler {
public:
    uint16_t on_burst(Engine&, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i) {
            const auto* b = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            if (pkts[i]->data_len >= 34 && b[12] == 0x08 && b[13] == 0x00)
                seen += std::to_string(pkts[i]->pkt_len) + "/" + std::to_string(pkts[i]->data_len) + "/ip" +
                        std::to_string((b[16] << 8) | b[17]) + "/frag" + std::to_string((b[20] << 8) | b[21]) + " ";
        }
        return n;
    }
    std::string seen;
};

struct Host {
    FrameSizes sizes;
    std::optional<ringsock::testing::Namespace> netns;
    Profile profile;
    std::optional<Eal> eal;
    std::optional<MempoolSet> mempools;
    std::unique_ptr<Port> port;
    std::unique_ptr<Engine> engine;
    std::unique_ptr<Classifier> classifier;
    std::unique_ptr<LwipInterface> lwip;
    NoUdpSockets no_udp;
    std::unique_ptr<ClassifierHandler> classify;
    std::unique_ptr<LwipPoller> poller;
    MacAddress mac{};

    // Polls the engine until `child` exits (or `limit` passes).
    Finished run_until_exit(Child& child, std::chrono::seconds limit)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            for (int i = 0; i < 2000; ++i)
                engine->poll_once();
            Finished done = child.wait(0ms);
            if (done.finished || std::chrono::steady_clock::now() > deadline) return done;
        }
    }

    void poll_for(std::chrono::milliseconds span)
    {
        const auto until = std::chrono::steady_clock::now() + span;
        while (std::chrono::steady_clock::now() < until)
            engine->poll_once();
    }
};
Host* host = nullptr;

class StackWithKernel : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!host->lwip) GTEST_SKIP() << (host->netns ? host->netns->why() : "no testbed");
        host->poll_for(100ms); // flush what the last test left in the TX buffer
        mbufs_before_ = host->mempools->in_use();
    }
    // Every frame lwIP was handed, answered or reassembled has been freed:
    // nothing waits in a pbuf once the exchange is over.
    void TearDown() override
    {
        if (!host->lwip) return;
        host->poll_for(100ms);
        EXPECT_EQ(host->mempools->in_use(), mbufs_before_) << "mbufs still held after the test";
    }
    unsigned mbufs_before_ = 0;
    std::string in_namespace(const std::string& command) const { return host->netns->exec(command); }
};

TEST_F(StackWithKernel, PingFromTheNamespaceIsAnsweredEveryTime)
{
    Child ping({"/bin/sh", "-c", in_namespace("ping -c 100 -i 0.01 -W 2 198.18.0.2")});
    const Finished done = host->run_until_exit(ping, 60s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_NE(done.output.find("100 packets transmitted, 100 received"), std::string::npos) << done.output;
}

TEST_F(StackWithKernel, Ping6FromTheNamespaceIsAnsweredEveryTime)
{
    Child ping({"/bin/sh", "-c", in_namespace("ping -6 -c 100 -i 0.01 -W 2 2001:2::2")});
    const Finished done = host->run_until_exit(ping, 60s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_NE(done.output.find("100 packets transmitted, 100 received"), std::string::npos) << done.output;
}

TEST_F(StackWithKernel, TheKernelLearnsOurMacByArp)
{
    Child ping({"/bin/sh", "-c", in_namespace("sh -c \"ping -c 1 -W 2 198.18.0.2 && ip neigh show 198.18.0.2\"")});
    const Finished done = host->run_until_exit(ping, 30s);
    char mac[18];
    std::snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", host->mac[0], host->mac[1], host->mac[2],
                  host->mac[3], host->mac[4], host->mac[5]);
    EXPECT_NE(done.output.find(std::string("lladdr ") + mac), std::string::npos) << done.output << " vs " << mac;
}

TEST_F(StackWithKernel, WeResolveTheKernelsMacAndItReceivesOurDatagram)
{
    // A listener in the namespace prints what arrives on UDP 9999.
    Child listener({"/bin/sh", "-c",
                    in_namespace("timeout 10 python3 -c '\n"
                                 "import socket\n"
                                 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                 "s.bind((\"198.18.0.1\", 9999))\n"
                                 "print(s.recv(100).decode(), flush=True)\n'")});
    ringsock::testing::LwipUdpReceiver sender(4444);
    const std::vector<uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
    // Sent every 200 ms until the listener (which takes a moment to bind)
    // has it; the first send also waits in lwIP's ARP queue for the reply.
    Finished done;
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!done.finished && std::chrono::steady_clock::now() < deadline) {
        ASSERT_TRUE(sender.send_to({198, 18, 0, 1}, 9999, hello));
        host->poll_for(200ms);
        done = listener.wait(0ms);
    }
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_NE(done.output.find("hello"), std::string::npos) << done.output;

    std::array<uint8_t, 6> kernel_mac{};
    EXPECT_TRUE(ringsock::testing::lwip_arp_entry({198, 18, 0, 1}, kernel_mac));
    const Finished link = ringsock::testing::run_shell(in_namespace("cat /sys/class/net/eth0/address"));
    char text[18];
    std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", kernel_mac[0], kernel_mac[1], kernel_mac[2],
                  kernel_mac[3], kernel_mac[4], kernel_mac[5]);
    EXPECT_NE(link.output.find(text), std::string::npos) << link.output << " vs " << text;
}

TEST_F(StackWithKernel, AFragmentedDatagramArrivesWhole)
{
    ringsock::testing::LwipUdpReceiver receiver(7777);
    // 4000 bytes over an MTU of 1500: three IPv4 fragments. The payload is a
    // byte pattern both sides can compute.
    Child sender({"/bin/sh", "-c",
                  in_namespace("python3 -c '\n"
                               "import socket\n"
                               "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                               "s.sendto(bytes((i * 7 + 3) % 256 for i in range(4000)), (\"198.18.0.2\", 7777))\n'")});
    const Finished sent = host->run_until_exit(sender, 15s);
    EXPECT_EQ(sent.exit_code, 0) << sent.output;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (receiver.datagrams.empty() && std::chrono::steady_clock::now() < deadline)
        host->engine->poll_once();
    const auto c = host->classifier->snapshot();
    ASSERT_EQ(receiver.datagrams.size(), 1u)
        << "classifier: lwip " << c.lwip << " fast path " << c.udp_fastpath << " drops " << c.total_drops()
        << "; lwip rx zero-copy " << host->lwip->counters().rx_zero_copy.get() << " rejected "
        << host->lwip->counters().rx_rejected.get() << "; drop reasons " <<
        [&] {
            std::string out;
            for (size_t r = 0; r < kDropReasonCount; ++r)
                if (c.drops[r] != 0)
                    out += std::string(drop_reason_name(static_cast<DropReason>(r))) + "=" +
                           std::to_string(c.drops[r]) + " ";
            return out;
        }()
        << ringsock::testing::lwip_ip_counters() << " frames " << host->sizes.seen;
    const auto& datagram = receiver.datagrams.front();
    ASSERT_EQ(datagram.size(), 4000u);
    for (size_t i = 0; i < datagram.size(); ++i)
        ASSERT_EQ(datagram[i], (i * 7 + 3) % 256) << "byte " << i;
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    Host bed;
    host = &bed;
    bed.netns.emplace(kNamespace);
    if (bed.netns->ok()) {
        bed.profile = load_profile(ringsock::testing::source_root() + "/drivers_config/pcap.toml",
                                   {"port.device=net_pcap0,iface=" + bed.netns->host_interface(), "eal.lcores=0",
                                    "eal.memory_mb=256", "mempool.mbufs=8191", "port.link_timeout_ms=2000"});
        bed.eal.emplace(bed.profile, "test_stack_kernel");
        bed.mempools.emplace("stack_mbufs", bed.profile.mempool, std::vector<int>{0});
        const Mempool& pool = bed.mempools->for_socket(0);
        bed.port = std::make_unique<Port>(bed.profile.port, [&](uint16_t) -> const Mempool& { return pool; });
        rte_ether_addr mac{};
        rte_eth_macaddr_get(bed.port->id(), &mac);
        std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), bed.mac.begin());
        bed.engine = std::make_unique<Engine>(rte_lcore_id(), bed.profile.engine);
        bed.engine->add_rx_queue({bed.port->id(), 0});
        bed.engine->add_tx_queue(bed.port->id(), 0);
        const auto& iface = bed.profile.interface;
        const LwipInterfaceConfig config = lwip_interface_config(bed.port->id(), bed.mac, iface.ipv4,
                                                                 iface.ipv4_gateway, iface.ipv6, bed.profile.port.mtu);
        bed.classifier = std::make_unique<Classifier>(classifier_config(config));
        bed.lwip = std::make_unique<LwipInterface>(*bed.engine, pool.get(), config);
        bed.classify = std::make_unique<ClassifierHandler>(*bed.classifier, bed.no_udp, *bed.lwip);
        bed.poller = std::make_unique<LwipPoller>(*bed.lwip);
        bed.engine->add_handler(bed.sizes);
        bed.engine->add_handler(*bed.poller);
        bed.engine->add_handler(*bed.classify);
    }
    const int rc = RUN_ALL_TESTS();
    bed.lwip.reset();
    bed.engine.reset();
    bed.port.reset();
    bed.mempools.reset();
    bed.eal.reset();
    bed.netns.reset();
    return rc;
}
