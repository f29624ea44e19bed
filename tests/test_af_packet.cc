// The Linux kernel as the peer: net_af_packet on the host end of a veth
// whose other end is in a namespace this test creates. Frames the
// namespace's kernel sends must all be counted by an engine, exactly once,
// and every mbuf must come back when the port closes.
//
// Needs root (namespaces, raw sockets); skipped with the reason otherwise.
#include <chrono>
#include <optional>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/port.hh"
#include "dataplane/profile.hh"
#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

using namespace ringsock::dataplane;
using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Namespace;

constexpr const char* kNamespace = "rsafpkt";

struct Testbed {
    std::optional<Namespace> netns;
    Profile profile;
    std::optional<Eal> eal;
    std::optional<MempoolSet> mempools;
};
Testbed* testbed = nullptr;

// Counts frames of the test ethertype by sequence number; frees all.
class SequenceCounter final : public BurstHandler {
public:
    explicit SequenceCounter(unsigned expected) : seen_(expected, 0) {}

    uint16_t on_burst(Engine&, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i) {
            const rte_mbuf* m = pkts[i];
            if (m->data_len >= 18) {
                const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
                if (eth->ether_type == rte_cpu_to_be_16(0x88B5)) {
                    const auto* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, sizeof(rte_ether_hdr));
                    const uint32_t sequence =
                        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
                    ++ours;
                    if (sequence < seen_.size()) ++seen_[sequence];
                } else {
                    ++other;
                }
            }
        }
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }

    unsigned missing() const
    {
        unsigned count = 0;
        for (auto s : seen_)
            count += s == 0;
        return count;
    }
    unsigned duplicated() const
    {
        unsigned count = 0;
        for (auto s : seen_)
            count += s > 1;
        return count;
    }

    uint64_t ours = 0;
    uint64_t other = 0;

private:
    std::vector<uint8_t> seen_;
};

class AfPacket : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!testbed->eal) GTEST_SKIP() << (testbed->netns ? testbed->netns->why() : "no testbed");
    }
};

TEST_F(AfPacket, EveryFrameTheKernelSendsIsCountedExactlyOnce)
{
    constexpr unsigned kFrames = 3000;
    const Mempool& pool = testbed->mempools->for_socket(0);
    const unsigned before = pool.in_use();
    {
        Port port(testbed->profile.port, [&](uint16_t) -> const Mempool& { return pool; });
        EXPECT_EQ(port.driver(), "net_af_packet");
        Engine engine(rte_lcore_id(), testbed->profile.engine);
        engine.add_rx_queue({port.id(), 0});
        SequenceCounter counter(kFrames);
        engine.add_handler(counter);

        Child sender({"/bin/sh", "-c", testbed->netns->exec(ringsock::testing::raw_frame_sender(kFrames))});
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (counter.ours < kFrames && std::chrono::steady_clock::now() < deadline)
            engine.poll_once();
        const auto sent = sender.wait(10s);
        // Anything late still in the socket ring is drained before judging.
        for (int i = 0; i < 1000; ++i)
            engine.poll_once();

        EXPECT_EQ(sent.exit_code, 0) << sent.output;
        EXPECT_EQ(counter.ours, kFrames) << "other frames seen: " << counter.other;
        EXPECT_EQ(counter.missing(), 0u);
        EXPECT_EQ(counter.duplicated(), 0u);
        EXPECT_EQ(engine.counters().unclaimed.get(), 0u);
        EXPECT_EQ(port.stats().imissed, 0u);
    }
    EXPECT_EQ(pool.in_use(), before);
}

TEST_F(AfPacket, FramesWeSendReachTheNamespacesKernel)
{
    // The namespace counts what arrives on eth0 through its interface
    // statistics; we send broadcast frames of the test ethertype.
    constexpr unsigned kFrames = 500;
    const Mempool& pool = testbed->mempools->for_socket(0);
    const unsigned before = pool.in_use();
    const auto rx_packets = [] {
        const auto out =
            ringsock::testing::run_shell(testbed->netns->exec("cat /sys/class/net/eth0/statistics/rx_packets"));
        return std::stoull(out.output);
    };
    {
        Port port(testbed->profile.port, [&](uint16_t) -> const Mempool& { return pool; });
        Engine engine(rte_lcore_id(), testbed->profile.engine);
        engine.add_tx_queue(port.id(), 0);
        const uint64_t start = rx_packets();
        for (unsigned i = 0; i < kFrames; ++i) {
            rte_mbuf* m = rte_pktmbuf_alloc(pool.get());
            ASSERT_NE(m, nullptr);
            auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, 60));
            std::memset(eth, 0, 60);
            std::memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
            eth->src_addr.addr_bytes[0] = 0x02;
            eth->ether_type = rte_cpu_to_be_16(0x88B5);
            engine.send(port.id(), m);
            if (i % 32 == 31) engine.flush_tx();
        }
        engine.flush_tx();
        EXPECT_EQ(engine.counters().tx_packets.get() + engine.counters().tx_drops.get(), kFrames);
        uint64_t arrived = 0;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while ((arrived = rx_packets() - start) < engine.counters().tx_packets.get() &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
        EXPECT_GE(arrived, engine.counters().tx_packets.get());
        EXPECT_GT(engine.counters().tx_packets.get(), 0u);
    }
    EXPECT_EQ(pool.in_use(), before);
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    Testbed bed;
    testbed = &bed;
    bed.netns.emplace(kNamespace);
    if (bed.netns->ok()) {
        bed.profile =
            load_profile(ringsock::testing::source_root() + "/drivers_config/af_packet.toml",
                         {"port.device=net_af_packet0,iface=" + bed.netns->host_interface() + ",qpairs=1",
                          "eal.lcores=0", "eal.memory_mb=256", "mempool.mbufs=8191", "port.link_timeout_ms=2000"});
        bed.eal.emplace(bed.profile, "test_af_packet");
        bed.mempools.emplace("afp_mbufs", bed.profile.mempool, std::vector<int>{0});
    }
    const int rc = RUN_ALL_TESTS();
    bed.mempools.reset();
    bed.eal.reset();
    bed.netns.reset();
    return rc;
}
