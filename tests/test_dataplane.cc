// EAL, mempools, ports and engines on virtual devices, in one process (EAL
// starts once per process): net_null for a port that always has traffic,
// and a pair of net_ring ports wired back to back over two rte_rings (what
// one sends the other receives) for frames we send and count ourselves.
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/application_thread.hh"
#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/port.hh"
#include "dataplane/profile.hh"
#include "tests/support/eal_environment.hh"

namespace {

using namespace ringsock::dataplane;

constexpr const char* kProfile = R"(
[eal]
lcores = "0,1"
memory_mb = 256
[port]
device = "net_null0"
link_timeout_ms = 1000
[mempool]
mbufs = 8191
cache = 64
)";

constexpr uint16_t kTestEtherType = 0x88B5; // IEEE 802 local experimental

using ringsock::testing::EalEnvironment;

EalEnvironment* environment = nullptr;

const Mempool& pool()
{
    return environment->mempools->for_socket(0);
}

PortProfile port_profile(const std::string& device)
{
    PortProfile port = environment->profile.port;
    port.device = device;
    return port;
}

std::unique_ptr<Port> open_port(const PortProfile& profile)
{
    return std::make_unique<Port>(profile, [](uint16_t) -> const Mempool& { return pool(); });
}

// Two net_ring ethdevs back to back: ring_a carries 0 -> 1, ring_b 1 -> 0.
// The ports it makes are taken over (and detached) by Port objects; the
// rings outlive them.
class RingPair {
public:
    RingPair()
        : a_(rte_ring_create("rs_pair_a", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ)),
          b_(rte_ring_create("rs_pair_b", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ))
    {
        EXPECT_NE(a_, nullptr);
        EXPECT_NE(b_, nullptr);
        EXPECT_GE(rte_eth_from_rings("rs_ring0", &b_, 1, &a_, 1, 0), 0);
        EXPECT_GE(rte_eth_from_rings("rs_ring1", &a_, 1, &b_, 1, 0), 0);
    }
    ~RingPair()
    {
        // A test may leave one end unused by any Port: detach it here.
        for (const char* name : {"net_ring_rs_ring0", "net_ring_rs_ring1"}) {
            uint16_t id = 0;
            if (rte_eth_dev_get_port_by_name(name, &id) == 0) rte_eth_dev_close(id);
            rte_vdev_uninit(name);
        }
        rte_ring_free(a_);
        rte_ring_free(b_);
    }
    RingPair(const RingPair&) = delete;
    RingPair& operator=(const RingPair&) = delete;

private:
    rte_ring* a_;
    rte_ring* b_;
};

constexpr const char* kRing0 = "net_ring_rs_ring0"; // rte_eth_from_rings prefixes "net_ring_"
constexpr const char* kRing1 = "net_ring_rs_ring1";

// A sender engine on one end of a ring pair and a receiver engine on the
// other, both polled from the test's thread.
struct RingLink {
    RingPair pair;
    std::unique_ptr<Port> receiver_port = open_port(port_profile(kRing0));
    std::unique_ptr<Port> sender_port = open_port(port_profile(kRing1));
    Engine sender{rte_lcore_id(), environment->profile.engine};
    Engine receiver{rte_lcore_id(), environment->profile.engine};

    RingLink()
    {
        sender.add_tx_queue(sender_port->id(), 0);
        receiver.add_rx_queue({receiver_port->id(), 0});
    }
};

// A broadcast frame of our test ethertype, `size` bytes without the FCS.
rte_mbuf* test_frame(uint16_t size, uint32_t sequence)
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool().get());
    if (m == nullptr) return nullptr;
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, size));
    std::memset(data, 0, size);
    auto* eth = reinterpret_cast<rte_ether_hdr*>(data);
    std::memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
    eth->src_addr.addr_bytes[0] = 0x02;
    eth->ether_type = rte_cpu_to_be_16(kTestEtherType);
    std::memcpy(data + sizeof(rte_ether_hdr), &sequence, sizeof(sequence));
    return m;
}

class CountingSink final : public BurstHandler {
public:
    uint16_t on_burst(Engine&, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        frames += n;
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
    uint64_t frames = 0;
};

// Takes only odd-sized frames, leaves the rest for the next handler.
class OddSizeTaker final : public BurstHandler {
public:
    uint16_t on_burst(Engine&, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        uint16_t kept = 0;
        for (uint16_t i = 0; i < n; ++i) {
            if (pkts[i]->pkt_len % 2 == 1) {
                ++taken;
                rte_pktmbuf_free(pkts[i]);
            } else {
                pkts[kept++] = pkts[i];
            }
        }
        return kept;
    }
    uint64_t taken = 0;
};

TEST(Eal, StartsWithoutHugepagesAndItsOwnFilePrefix)
{
    const auto& args = environment->eal->arguments();
    const bool no_huge = std::find(args.begin(), args.end(), "--no-huge") != args.end();
    EXPECT_EQ(no_huge, !environment->eal->hugepages());
    EXPECT_EQ(environment->eal->file_prefix().rfind("ringsock-", 0), 0u);
    EXPECT_EQ(rte_lcore_count(), 2u);
}

// Application threads free and allocate through the pool's ring and can be
// descheduled inside that operation; in DPDK's default ring_mp_mc every
// other thread of the pool then spins until they run again (see
// MempoolProfile::ops). The profile's ops are the pool's.
TEST(Mempool, RingBeneathTheCachesTakesTheProfilesOpsRelaxedTailSyncByDefault)
{
    EXPECT_EQ(MempoolProfile{}.ops, "ring_mt_rts");
    EXPECT_EQ(environment->profile.mempool.ops, "ring_mt_rts");
    const rte_mempool* mp = pool().get();
    EXPECT_STREQ(rte_mempool_get_ops(mp->ops_index)->name, "ring_mt_rts");
}

TEST(Port, NullPortStartsWithLinkAndReceives)
{
    const unsigned before = pool().in_use();
    {
        auto port = open_port(port_profile("net_null0"));
        EXPECT_EQ(port->driver(), "net_null");
        EXPECT_TRUE(port->link_up());
        Engine engine(rte_lcore_id(), environment->profile.engine);
        engine.add_rx_queue({port->id(), 0});
        CountingSink sink;
        engine.add_handler(sink);
        for (int i = 0; i < 10; ++i)
            engine.poll_once();
        EXPECT_EQ(sink.frames, 10u * environment->profile.engine.burst);
        EXPECT_EQ(engine.counters().rx_packets.get(), sink.frames);
        EXPECT_EQ(engine.queue_counters(0).rx_packets.get(), sink.frames);
        EXPECT_EQ(engine.counters().rx_bytes.get(), sink.frames * 64);
    }
    EXPECT_EQ(pool().in_use(), before) << "closing the port must give every mbuf back";
}

TEST(Port, RingPortsStart)
{
    RingPair pair;
    auto ring0 = open_port(port_profile(kRing0));
    auto ring1 = open_port(port_profile(kRing1));
    EXPECT_EQ(ring0->driver(), "net_ring");
    EXPECT_TRUE(ring0->link_up());
    EXPECT_TRUE(ring1->link_up());
    EXPECT_NE(ring0->id(), ring1->id());
}

TEST(Port, RequiredOffloadTheDriverLacksIsRefused)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_offloads.push_back({"timestamp", RTE_ETH_RX_OFFLOAD_TIMESTAMP, OffloadPolicy::required});
    try {
        open_port(profile);
        FAIL() << "a required offload net_null lacks was accepted";
    } catch (const PortError& e) {
        EXPECT_NE(std::string(e.what()).find("port.offloads.rx.timestamp is required"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("net_null"), std::string::npos) << e.what();
    }
}

TEST(Port, PreferredOffloadTheDriverLacksIsDropped)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_offloads.push_back({"timestamp", RTE_ETH_RX_OFFLOAD_TIMESTAMP, OffloadPolicy::preferred});
    auto port = open_port(profile);
    EXPECT_EQ(port->rx_offloads() & RTE_ETH_RX_OFFLOAD_TIMESTAMP, 0u);
}

TEST(Port, MoreQueuesThanTheDriverHasAreRefused)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_queues = 2000; // net_null has RTE_MAX_QUEUES_PER_PORT (1024)
    EXPECT_THROW(
        {
            try {
                open_port(profile);
            } catch (const PortError& e) {
                EXPECT_NE(std::string(e.what()).find("port.rx_queues = 2000 but the PMD has at most"),
                          std::string::npos)
                    << e.what();
                throw;
            }
        },
        PortError);
}

void expect_port_error(const PortProfile& profile, const std::string& expected)
{
    try {
        open_port(profile);
        ADD_FAILURE() << "no PortError; expected: " << expected;
    } catch (const PortError& e) {
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
}

TEST(Port, RssKeyOfTheWrongLengthIsRefused)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_queues = 2;
    profile.rss.key.assign(52, 0x6d);
    // net_null reports no key length at all, so any key is the wrong length.
    expect_port_error(profile, "port.rss.key is 52 bytes but the PMD's RSS key is 0 bytes");
}

TEST(Port, RssRetaSizeTheDriverDoesNotHaveIsRefused)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_queues = 2;
    profile.rss.reta_size = 512;
    expect_port_error(profile, "port.rss.reta_size = 512 but the PMD reports a redirection table of 128");
}

TEST(Port, RssWithSeveralQueuesStartsWhenTheDriverAgrees)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_queues = 2;
    profile.rss.reta_size = 128;
    auto port = open_port(profile);
    EXPECT_EQ(port->rx_queues(), 2);
}

TEST(Port, AFailedStartReleasesTheDevice)
{
    PortProfile profile = port_profile("net_null0");
    profile.rx_queues = 2000;
    EXPECT_THROW(open_port(profile), PortError);
    // The same device opens again at once: nothing was left half-configured.
    EXPECT_NO_THROW(open_port(port_profile("net_null0")));
}

TEST(Port, MtuOutsideTheDriverRangeIsRefused)
{
    // Below RTE_ETHER_MIN_MTU (68), the least any PMD reports as its minimum;
    // the profile loader would refuse it too, so the Port check is tested
    // on its own here.
    PortProfile profile = port_profile("net_null0");
    profile.mtu = 40;
    expect_port_error(profile, "port.mtu = 40 is outside the PMD's range");
}

TEST(Port, UnknownDeviceIsNamed)
{
    try {
        open_port(port_profile("net_nothing7"));
        FAIL();
    } catch (const PortError& e) {
        EXPECT_NE(std::string(e.what()).find("net_nothing7"), std::string::npos) << e.what();
    }
}

TEST(Engine, EveryFrameSentOnOneRingEndIsCountedExactlyOnceOnTheOther)
{
    constexpr uint32_t kFrames = 20000;
    RingLink link;
    Engine& sender = link.sender;
    Engine& receiver = link.receiver;
    const uint16_t sender_port = link.sender_port->id();
    const unsigned before = pool().in_use();
    CountingSink sink;
    receiver.add_handler(sink);

    uint32_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((sent < kFrames || sink.frames < kFrames) && std::chrono::steady_clock::now() < deadline) {
        // Send in steps the ring (1024 deep) can hold, then drain it.
        for (int i = 0; i < 256 && sent < kFrames; ++i) {
            rte_mbuf* frame = test_frame(60, sent);
            ASSERT_NE(frame, nullptr);
            ASSERT_TRUE(sender.send(sender_port, frame));
            ++sent;
        }
        sender.flush_tx();
        while (receiver.poll_once() != 0) {}
    }
    EXPECT_EQ(sink.frames, kFrames);
    EXPECT_EQ(sender.counters().tx_packets.get(), kFrames);
    EXPECT_EQ(sender.counters().tx_drops.get(), 0u);
    EXPECT_EQ(receiver.counters().rx_bytes.get(), uint64_t{kFrames} * 60);
    EXPECT_EQ(pool().in_use(), before);
}

TEST(Engine, HandlersChainAndWhatNoneTakesIsFreedAndCounted)
{
    RingLink link;
    Engine& sender = link.sender;
    Engine& receiver = link.receiver;
    const uint16_t sender_port = link.sender_port->id();
    const unsigned before = pool().in_use();
    OddSizeTaker odd;
    receiver.add_handler(odd);

    for (uint32_t i = 0; i < 100; ++i)
        ASSERT_TRUE(sender.send(sender_port, test_frame(i % 2 ? 61 : 60, i)));
    sender.flush_tx();
    while (receiver.poll_once() != 0) {}
    EXPECT_EQ(odd.taken, 50u);
    EXPECT_EQ(receiver.counters().unclaimed.get(), 50u);
    EXPECT_EQ(pool().in_use(), before);
}

TEST(Engine, SendWithoutATxQueueDropsAndCounts)
{
    auto port = open_port(port_profile("net_null0"));
    const unsigned before = pool().in_use();
    Engine engine(rte_lcore_id(), environment->profile.engine);
    EXPECT_FALSE(engine.send(port->id(), test_frame(60, 0)));
    EXPECT_EQ(engine.counters().tx_drops.get(), 1u);
    EXPECT_EQ(pool().in_use(), before);
}

TEST(Engine, RunsOnAWorkerLcoreUntilStopped)
{
    const unsigned worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
    ASSERT_LT(worker, RTE_MAX_LCORE);
    const unsigned before = pool().in_use();
    {
        auto port = open_port(port_profile("net_null0"));
        Engine engine(worker, environment->profile.engine);
        engine.add_rx_queue({port->id(), 0});
        CountingSink sink;
        engine.add_handler(sink);
        std::atomic<bool> stop{false};
        struct Launch {
            Engine* engine;
            std::atomic<bool>* stop;
        } launch{&engine, &stop};
        ASSERT_EQ(rte_eal_remote_launch(
                      [](void* arg) {
                          auto* l = static_cast<Launch*>(arg);
                          l->engine->run(*l->stop);
                          return 0;
                      },
                      &launch, worker),
                  0);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        stop = true;
        EXPECT_EQ(rte_eal_wait_lcore(worker), 0);
        EXPECT_GT(sink.frames, 0u);
        EXPECT_EQ(engine.counters().rx_packets.get(), sink.frames);
        EXPECT_GT(engine.counters().busy_polls.get(), 0u);
    }
    EXPECT_EQ(pool().in_use(), before);
}

// Frees `n` mbufs the calling thread allocates, leaving them in its cache.
void cycle_mbufs(rte_mempool* mp, unsigned n)
{
    std::vector<rte_mbuf*> m(n);
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(mp, m.data(), n), 0);
    for (rte_mbuf* one : m)
        rte_pktmbuf_free(one);
}

TEST(ApplicationThread, GetsACacheOfItsOwnAndReturnsItsMbufsAndIdWhenItEnds)
{
    rte_mempool* mp = pool().get();
    const unsigned main_lcore = rte_lcore_id();
    register_application_thread();
    EXPECT_EQ(rte_lcore_id(), main_lcore) << "EAL's own lcores keep their id";

    unsigned lcore = LCORE_ID_ANY;
    unsigned cached = 0, cached_after_release = ~0u;
    std::thread([&] {
        ASSERT_EQ(rte_lcore_id(), LCORE_ID_ANY);
        register_application_thread();
        lcore = rte_lcore_id();
        if (lcore == LCORE_ID_ANY) return;
        EXPECT_EQ(rte_lcore_has_role(lcore, ROLE_NON_EAL), 1);
        register_application_thread();
        EXPECT_EQ(rte_lcore_id(), lcore) << "registered once";
        cycle_mbufs(mp, 32);
        cached = rte_mempool_default_cache(mp, lcore)->len;
        release_cached_mbufs();
        cached_after_release = rte_mempool_default_cache(mp, lcore)->len;
        cycle_mbufs(mp, 32); // and the thread ends with a full cache
    }).join();
    ASSERT_NE(lcore, LCORE_ID_ANY) << "EAL refused to register the thread";
    EXPECT_GE(cached, 32u) << "the frees went through the thread's own cache";
    EXPECT_EQ(cached_after_release, 0u);
    EXPECT_EQ(rte_mempool_default_cache(mp, lcore)->len, 0u) << "the ended thread's cache went back to the pool";
    EXPECT_EQ(rte_lcore_has_role(lcore, ROLE_NON_EAL), 0) << "its lcore id went back to EAL";
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    environment = new EalEnvironment(kProfile, "test_dataplane"); // gtest owns and deletes it
    ::testing::AddGlobalTestEnvironment(environment);
    return RUN_ALL_TESTS();
}
