// tests/test_lwip_build.cc — unit tests of our lwIP build: the static
// library from Debian's 2.1.3 orig tarball with stack/lwip/lwipopts.h and
// our port layer (stack/lwip_sys.cc, stack/lwip_isn.cc).
//
// No EAL and no NIC: a netif whose linkoutput copies frames into a vector.
// Checks that lwIP initialises with NO_SYS=1, that every translation unit
// agrees on the pool sizes (the TCP_MSS heap-overflow trap of Debian's
// liblwip.so), that ARP goes out well-formed, that the ISN hook replaced
// lwIP's `6510 + tcp_ticks`, and that every pool and the heap are empty
// again after each test. lwIP is process-global and not thread-safe: the
// tests run on gtest's main thread, one netif at a time.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <set>
#include <vector>

extern "C" {
#include "lwip/opt.h"
#include "lwip/def.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/ip_addr.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "ringsock_hooks.h"
}

// The values this TU sees are the ones lwipopts.h set: nothing (such as
// <netinet/tcp.h>) redefined them on the way.
static_assert(NO_SYS == 1, "lwIP must be built without an OS layer");
static_assert(TCP_MSS == 1460, "TCP_MSS is not the lwipopts.h value");
static_assert(PBUF_POOL_BUFSIZE >= 1514, "a pool pbuf must hold a full Ethernet frame");
static_assert(LWIP_CHECKSUM_CTRL_PER_NETIF == 1);
static_assert(LWIP_SOCKET == 0 && LWIP_NETCONN == 0);
static_assert(TCP_WND >= 1'250'000, "window below 10 Gbit/s x 1 ms");
static_assert(MEMP_STATS == 1 && MEM_STATS == 1);

namespace {

constexpr std::array<std::uint8_t, 6> kMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

void ensure_lwip_initialised()
{
    static const bool done = [] {
        lwip_init();
        return true;
    }();
    (void)done;
}

using Frame = std::vector<std::uint8_t>;

err_t capture_output(struct netif* netif, struct pbuf* p)
{
    auto* frames = static_cast<std::vector<Frame>*>(netif->state);
    Frame frame(p->tot_len);
    if (pbuf_copy_partial(p, frame.data(), p->tot_len, 0) != p->tot_len) {
        return ERR_BUF;
    }
    frames->push_back(std::move(frame));
    return ERR_OK;
}

err_t capture_netif_init(struct netif* netif)
{
    netif->name[0] = 't';
    netif->name[1] = 'c';
    netif->mtu = 1500;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    std::memcpy(netif->hwaddr, kMac.data(), kMac.size());
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP | NETIF_FLAG_MLD6;
    netif->output = etharp_output;
    netif->output_ip6 = ethip6_output;
    netif->linkoutput = capture_output;
    return ERR_OK;
}

// One netif 198.18.0.2/24 whose frames land in `frames`; removed (and its
// ARP/IGMP/MLD state freed) on destruction.
struct CaptureNetif {
    struct netif netif {};
    std::vector<Frame> frames;

    CaptureNetif()
    {
        ensure_lwip_initialised();
        ip4_addr_t ip;
        ip4_addr_t mask;
        ip4_addr_t gw;
        IP4_ADDR(&ip, 198, 18, 0, 2);
        IP4_ADDR(&mask, 255, 255, 255, 0);
        IP4_ADDR(&gw, 198, 18, 0, 1);
        added = netif_add(&netif, &ip, &mask, &gw, &frames, capture_netif_init, ethernet_input) != nullptr;
    }
    ~CaptureNetif()
    {
        if (added) {
            netif_remove(&netif);
        }
    }
    CaptureNetif(const CaptureNetif&) = delete;
    CaptureNetif& operator=(const CaptureNetif&) = delete;

    bool added = false;
};

// Every pool except the timeouts lwip_init() arms, and the heap, are empty.
void expect_no_lwip_allocations()
{
    for (int i = 0; i < MEMP_MAX; ++i) {
        if (i == MEMP_SYS_TIMEOUT) {
            continue;
        }
        EXPECT_EQ(lwip_stats.memp[i]->used, 0U) << "memp pool " << i << " still in use";
        EXPECT_EQ(lwip_stats.memp[i]->err, 0U) << "memp pool " << i << " ran dry";
    }
    EXPECT_EQ(lwip_stats.mem.used, 0U) << "lwIP heap still in use";
}

std::uint16_t be16(const Frame& f, std::size_t at)
{
    return static_cast<std::uint16_t>((f[at] << 8) | f[at + 1]);
}

std::vector<Frame> arp_frames(const std::vector<Frame>& frames)
{
    std::vector<Frame> arp;
    std::copy_if(frames.begin(), frames.end(), std::back_inserter(arp),
                 [](const Frame& f) { return f.size() >= 14 && be16(f, 12) == 0x0806; });
    return arp;
}

// An Ethernet/ARP request from us (198.18.0.2) asking for `target`.
void expect_arp_request(const Frame& f, std::array<std::uint8_t, 4> target)
{
    ASSERT_GE(f.size(), 42U);
    EXPECT_TRUE(std::all_of(f.begin(), f.begin() + 6, [](std::uint8_t b) { return b == 0xff; }))
        << "not sent to the broadcast address";
    EXPECT_TRUE(std::equal(kMac.begin(), kMac.end(), f.begin() + 6));
    EXPECT_EQ(be16(f, 14), 1U);      // hardware type Ethernet
    EXPECT_EQ(be16(f, 16), 0x0800U); // protocol type IPv4
    EXPECT_EQ(f[18], 6U);
    EXPECT_EQ(f[19], 4U);
    EXPECT_EQ(be16(f, 20), 1U); // request
    EXPECT_TRUE(std::equal(kMac.begin(), kMac.end(), f.begin() + 22));
    const std::array<std::uint8_t, 4> ours{198, 18, 0, 2};
    EXPECT_TRUE(std::equal(ours.begin(), ours.end(), f.begin() + 28));
    EXPECT_TRUE(std::equal(target.begin(), target.end(), f.begin() + 38));
}

} // namespace

TEST(LwipBuild, test_init_runs_without_an_os_layer)
{
    ensure_lwip_initialised();
    EXPECT_EQ(lwip_stats.memp[MEMP_PBUF_POOL]->avail, static_cast<mem_size_t>(PBUF_POOL_SIZE));
    EXPECT_EQ(lwip_stats.memp[MEMP_TCP_PCB]->avail, static_cast<mem_size_t>(MEMP_NUM_TCP_PCB));
    // sys_now() comes from our port layer and advances.
    const u32_t before = sys_now();
    sys_check_timeouts();
    EXPECT_LT(sys_now() - before, 1000U);
}

// The Debian liblwip.so bug: memp.c sized PBUF_POOL elements for one
// TCP_MSS while pbuf.c filled them for another. Check that the pool as
// memp.c built it (a C TU) holds what this TU believes a pool pbuf holds.
TEST(LwipBuild, test_pool_sizes_agree_across_translation_units)
{
    ensure_lwip_initialised();
    EXPECT_GE(memp_pools[MEMP_PBUF_POOL]->size,
              LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf)) + LWIP_MEM_ALIGN_SIZE(PBUF_POOL_BUFSIZE));
    EXPECT_EQ(memp_pools[MEMP_TCP_PCB]->size, LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_pcb)));
    EXPECT_EQ(memp_pools[MEMP_TCP_SEG]->size, LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_seg)));
    EXPECT_EQ(memp_pools[MEMP_PBUF_POOL]->num, PBUF_POOL_SIZE);
}

TEST(LwipBuild, test_full_frame_pool_pbuf_stays_within_its_buffers)
{
    ensure_lwip_initialised();
    struct pbuf* p = pbuf_alloc(PBUF_RAW, 1514, PBUF_POOL);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->tot_len, 1514U);
    const std::size_t element = memp_pools[MEMP_PBUF_POOL]->size;
    std::size_t sum = 0;
    for (struct pbuf* q = p; q != nullptr; q = q->next) {
        sum += q->len;
        EXPECT_LE(q->len, PBUF_POOL_BUFSIZE);
        // The payload ends inside the pool element that holds the pbuf.
        const auto* start = reinterpret_cast<const std::uint8_t*>(q);
        const auto* end = static_cast<const std::uint8_t*>(q->payload) + q->len;
        EXPECT_LE(end, start + element);
    }
    EXPECT_EQ(sum, 1514U);
    std::vector<std::uint8_t> in(1514);
    for (std::size_t i = 0; i < in.size(); ++i) {
        in[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    ASSERT_EQ(pbuf_take(p, in.data(), 1514), ERR_OK);
    std::vector<std::uint8_t> out(1514);
    EXPECT_EQ(pbuf_copy_partial(p, out.data(), 1514, 0), 1514U);
    EXPECT_EQ(in, out);
    EXPECT_EQ(lwip_stats.memp[MEMP_PBUF_POOL]->used, 1U);
    pbuf_free(p);
    expect_no_lwip_allocations();
}

TEST(LwipBuild, test_link_up_sends_gratuitous_arp_and_requests_are_well_formed)
{
    {
        CaptureNetif tap;
        ASSERT_TRUE(tap.added);
        netif_set_up(&tap.netif);
        netif_set_link_up(&tap.netif);
        auto arp = arp_frames(tap.frames);
        ASSERT_EQ(arp.size(), 1U) << "no gratuitous ARP at link up";
        expect_arp_request(arp[0], {198, 18, 0, 2});

        ip4_addr_t peer;
        IP4_ADDR(&peer, 198, 18, 0, 1);
        tap.frames.clear();
        ASSERT_EQ(etharp_request(&tap.netif, &peer), ERR_OK);
        arp = arp_frames(tap.frames);
        ASSERT_EQ(arp.size(), 1U);
        expect_arp_request(arp[0], {198, 18, 0, 1});
    }
    expect_no_lwip_allocations();
}

TEST(LwipBuild, test_isn_hook_depends_on_the_four_tuple)
{
    ensure_lwip_initialised();
    ip_addr_t local;
    ip_addr_t remote;
    IP_ADDR4(&local, 198, 18, 0, 2);
    IP_ADDR4(&remote, 198, 18, 0, 1);
    std::set<std::uint32_t> seen;
    for (std::uint16_t port = 49152; port < 49152 + 1000; ++port) {
        seen.insert(ringsock_lwip_tcp_isn(&local, port, &remote, 80));
    }
    // 1000 tuples; a 32-bit PRF collides with probability ~1e-4.
    EXPECT_GE(seen.size(), 999U);
    // Swapping the ends, or the family, changes the hash input.
    EXPECT_NE(ringsock_lwip_tcp_isn(&local, 40000, &remote, 80) & 0xfff00000U,
              ringsock_lwip_tcp_isn(&remote, 80, &local, 40000) & 0xfff00000U);
    ip_addr_t local6;
    ip_addr_t remote6;
    IP_ADDR6(&local6, PP_HTONL(0x20010db8U), 0, 0, PP_HTONL(2));
    IP_ADDR6(&remote6, PP_HTONL(0x20010db8U), 0, 0, PP_HTONL(1));
    EXPECT_NE(ringsock_lwip_tcp_isn(&local6, 40000, &remote6, 80) & 0xfff00000U,
              ringsock_lwip_tcp_isn(&local, 40000, &remote, 80) & 0xfff00000U);
}

TEST(LwipBuild, test_isn_with_a_fixed_key_advances_with_the_clock_only)
{
    ensure_lwip_initialised();
    std::array<std::uint8_t, 16> key{};
    for (std::size_t i = 0; i < key.size(); ++i) {
        key[i] = static_cast<std::uint8_t>(i);
    }
    ringsock_lwip_isn_set_key(key.data());
    ip_addr_t local;
    ip_addr_t remote;
    IP_ADDR4(&local, 198, 18, 0, 2);
    IP_ADDR4(&remote, 198, 18, 0, 1);
    const std::uint32_t a = ringsock_lwip_tcp_isn(&local, 40000, &remote, 80);
    const std::uint32_t b = ringsock_lwip_tcp_isn(&local, 40000, &remote, 80);
    // Same tuple and key: only M (4 us ticks) moved; under a second here.
    EXPECT_LT(b - a, 250'000U);
    key[0] ^= 1;
    ringsock_lwip_isn_set_key(key.data());
    const std::uint32_t c = ringsock_lwip_tcp_isn(&local, 40000, &remote, 80);
    EXPECT_GE(c - b, 250'000U) << "the key does not reach the ISN";
}

// Through lwIP itself: tcp_connect takes its ISN from the hook, not from
// the stock `iss += tcp_ticks` starting at 6510.
TEST(LwipBuild, test_tcp_connect_uses_the_keyed_isn)
{
    {
        CaptureNetif tap;
        ASSERT_TRUE(tap.added);
        netif_set_up(&tap.netif);
        netif_set_link_up(&tap.netif);
        ip_addr_t peer;
        IP_ADDR4(&peer, 198, 18, 0, 1);
        std::array<struct tcp_pcb*, 2> pcbs{tcp_new(), tcp_new()};
        std::array<std::uint32_t, 2> iss{};
        for (std::size_t i = 0; i < pcbs.size(); ++i) {
            ASSERT_NE(pcbs[i], nullptr);
            ASSERT_EQ(tcp_bind(pcbs[i], IP4_ADDR_ANY, static_cast<u16_t>(40000 + i)), ERR_OK);
            ASSERT_EQ(tcp_connect(pcbs[i], &peer, 80, nullptr), ERR_OK);
            iss[i] = pcbs[i]->lastack + 1; // tcp_connect: lastack = iss - 1
            EXPECT_NE(iss[i], 6510U + tcp_ticks);
        }
        EXPECT_NE(iss[0], iss[1]);
        EXPECT_NE(iss[1] - iss[0], tcp_ticks) << "ISNs step like lwIP's stock generator";
        // The SYNs wait in the ARP queue behind a request for the peer.
        auto arp = arp_frames(tap.frames);
        ASSERT_FALSE(arp.empty());
        expect_arp_request(arp.back(), {198, 18, 0, 1});
        for (struct tcp_pcb* pcb : pcbs) {
            tcp_abort(pcb);
        }
    }
    expect_no_lwip_allocations();
}
