// The classifier over hand-built frames: one test per branch and per drop
// reason, truncations at every header boundary, lying length fields,
// checksum offload flags, VLANs, IPv6 extension headers, multi-segment
// mbufs, and the handler's ownership (every mbuf reaches a sink or is freed).
// EAL starts once in main() for mbufs only: no port is opened. Every test
// ends with the mempool as full as it began.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>

#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/profile.hh"
#include "stack/classifier.hh"
#include "stack/counter_groups.hh"
#include "stack/datagram_ip_header.hh"
#include "tests/support/eal_environment.hh"

namespace {

using namespace ringsock::dataplane;
using namespace ringsock::stack;

constexpr const char* kProfile = R"(
[eal]
lcores = "0"
memory_mb = 256
[port]
device = "net_null0"
[mempool]
mbufs = 4095
cache = 0
)";

using ringsock::testing::EalEnvironment;

EalEnvironment* environment = nullptr;

const Mempool& pool()
{
    return environment->mempools->for_socket(0);
}

using Bytes = std::vector<uint8_t>;

// RFC 2544 benchmarking addresses and locally administered MACs.
constexpr MacAddress kOurMac{0x02, 0, 0, 0, 0, 0x01};
constexpr MacAddress kOtherMac{0x02, 0, 0, 0, 0, 0x02};
constexpr MacAddress kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr MacAddress kMulticastMac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
constexpr Ipv4Address kOurIp{198, 18, 0, 2};
constexpr Ipv4Address kPeerIp{198, 18, 0, 1};
constexpr Ipv4Address kOtherIp{198, 18, 0, 9};
constexpr Ipv6Address kOurIp6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
constexpr Ipv6Address kPeerIp6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr Ipv6Address kOtherIp6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09};
constexpr Ipv6Address kAllNodes6{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr uint16_t kBoundPort = 5000;
constexpr uint16_t kUnboundPort = 5001;
constexpr uint16_t kPeerPort = 40000;

void put16(Bytes& b, std::size_t at, uint16_t v)
{
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

// Internet checksum over `b` plus a running sum, written independently of
// DPDK's so the tests do not check the code with itself.
uint16_t inet_checksum(const Bytes& b, uint32_t sum = 0)
{
    for (std::size_t i = 0; i < b.size(); i += 2)
        sum += (uint32_t{b[i]} << 8) | (i + 1 < b.size() ? b[i + 1] : 0u);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

uint32_t sum_of(const uint8_t* p, std::size_t n)
{
    uint32_t s = 0;
    for (std::size_t i = 0; i < n; i += 2)
        s += (uint32_t{p[i]} << 8) | (i + 1 < n ? p[i + 1] : 0u);
    return s;
}

struct Tag {
    uint16_t tpid;
    uint16_t vid;
};

Bytes ether(uint16_t type, const Bytes& payload, const MacAddress& dst = kOurMac, std::vector<Tag> tags = {})
{
    Bytes b(dst.begin(), dst.end());
    b.insert(b.end(), kOtherMac.begin(), kOtherMac.end());
    for (const Tag& t : tags) {
        b.push_back(static_cast<uint8_t>(t.tpid >> 8));
        b.push_back(static_cast<uint8_t>(t.tpid));
        b.push_back(static_cast<uint8_t>(t.vid >> 8));
        b.push_back(static_cast<uint8_t>(t.vid));
    }
    b.push_back(static_cast<uint8_t>(type >> 8));
    b.push_back(static_cast<uint8_t>(type));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

struct Ip4 {
    uint8_t proto = 17;
    Ipv4Address src = kPeerIp;
    Ipv4Address dst = kOurIp;
    Bytes options;     // multiple of 4
    uint16_t frag = 0; // flags + offset field
    uint8_t tos = 0;   // DSCP << 2 | ECN
    uint8_t ttl = 64;
};

Bytes ipv4(const Ip4& h, const Bytes& payload)
{
    const std::size_t hl = 20 + h.options.size();
    Bytes b(hl, 0);
    b[0] = static_cast<uint8_t>(0x40 | (hl / 4));
    put16(b, 2, static_cast<uint16_t>(hl + payload.size()));
    put16(b, 6, h.frag);
    b[1] = h.tos;
    b[8] = h.ttl;
    b[9] = h.proto;
    std::copy(h.src.begin(), h.src.end(), b.begin() + 12);
    std::copy(h.dst.begin(), h.dst.end(), b.begin() + 16);
    std::copy(h.options.begin(), h.options.end(), b.begin() + 20);
    put16(b, 10, inet_checksum(b));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

Bytes udp_header(uint16_t sport, uint16_t dport, const Bytes& payload)
{
    Bytes u(8, 0);
    put16(u, 0, sport);
    put16(u, 2, dport);
    put16(u, 4, static_cast<uint16_t>(8 + payload.size()));
    u.insert(u.end(), payload.begin(), payload.end());
    return u;
}

void finish_udp_checksum(Bytes& u, uint32_t pseudo_sum)
{
    uint16_t c = inet_checksum(u, pseudo_sum);
    put16(u, 6, c == 0 ? 0xffff : c);
}

Bytes udp4(uint16_t sport, uint16_t dport, const Bytes& payload, const Ipv4Address& src = kPeerIp,
           const Ipv4Address& dst = kOurIp)
{
    Bytes u = udp_header(sport, dport, payload);
    uint32_t pseudo = sum_of(src.data(), 4) + sum_of(dst.data(), 4) + 17 + static_cast<uint32_t>(u.size());
    finish_udp_checksum(u, pseudo);
    return u;
}

Bytes udp6(uint16_t sport, uint16_t dport, const Bytes& payload, const Ipv6Address& src = kPeerIp6,
           const Ipv6Address& dst = kOurIp6)
{
    Bytes u = udp_header(sport, dport, payload);
    uint32_t pseudo = sum_of(src.data(), 16) + sum_of(dst.data(), 16) + 17 + static_cast<uint32_t>(u.size());
    finish_udp_checksum(u, pseudo);
    return u;
}

Bytes ipv6(uint8_t next, const Bytes& payload, const Ipv6Address& dst = kOurIp6, const Ipv6Address& src = kPeerIp6)
{
    Bytes b(40, 0);
    b[0] = 0x60;
    put16(b, 4, static_cast<uint16_t>(payload.size()));
    b[6] = next;
    b[7] = 64;
    std::copy(src.begin(), src.end(), b.begin() + 8);
    std::copy(dst.begin(), dst.end(), b.begin() + 24);
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

// An IPv6 extension header of `len8` 8-byte units with `options` after the
// two fixed bytes, padded with PadN/Pad1 to the length.
Bytes ext_header(uint8_t next, uint8_t len8, const Bytes& options = {})
{
    const std::size_t len = (std::size_t{len8} + 1) * 8;
    Bytes b(len, 0);
    b[0] = next;
    b[1] = len8;
    std::copy(options.begin(), options.end(), b.begin() + 2);
    const std::size_t at = 2 + options.size();
    const std::size_t pad = len - at;
    if (pad >= 2) { // PadN; a single byte of padding is Pad1, already zero
        b[at] = 1;
        b[at + 1] = static_cast<uint8_t>(pad - 2);
    }
    return b;
}

Bytes tcp(uint8_t doff_words = 5, std::size_t data = 0)
{
    Bytes t(std::max<std::size_t>(20, std::size_t{doff_words} * 4) + data, 0);
    put16(t, 0, kPeerPort);
    put16(t, 2, 80);
    t[12] = static_cast<uint8_t>(doff_words << 4);
    t[13] = 0x02; // SYN
    return t;
}

Bytes arp()
{
    Bytes a(28, 0);
    put16(a, 0, 1);      // Ethernet
    put16(a, 2, 0x0800); // IPv4
    a[4] = 6;
    a[5] = 4;
    put16(a, 6, 1); // request
    std::copy(kPeerIp.begin(), kPeerIp.end(), a.begin() + 14);
    std::copy(kOurIp.begin(), kOurIp.end(), a.begin() + 24);
    return a;
}

Bytes payload_of(std::size_t n)
{
    Bytes p(n);
    for (std::size_t i = 0; i < n; ++i)
        p[i] = static_cast<uint8_t>(i * 7 + 1);
    return p;
}

// A valid IPv4 UDP frame to the bound port, 14 + 20 + 8 + payload bytes.
Bytes udp4_frame(std::size_t payload = 16, uint16_t dport = kBoundPort)
{
    return ether(0x0800, ipv4({}, udp4(kPeerPort, dport, payload_of(payload))));
}

Bytes udp6_frame(std::size_t payload = 16, uint16_t dport = kBoundPort)
{
    return ether(0x86dd, ipv6(17, udp6(kPeerPort, dport, payload_of(payload))));
}

rte_mbuf* mbuf_of(const Bytes& frame, uint64_t ol_flags = 0)
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool().get());
    EXPECT_NE(m, nullptr);
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())));
    if (!frame.empty()) std::memcpy(data, frame.data(), frame.size());
    m->ol_flags = ol_flags;
    return m;
}

// The frame split over two chained segments, the first `first` bytes long.
rte_mbuf* chained_mbuf_of(const Bytes& frame, std::size_t first)
{
    rte_mbuf* head = mbuf_of(Bytes(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(first)));
    rte_mbuf* tail = mbuf_of(Bytes(frame.begin() + static_cast<std::ptrdiff_t>(first), frame.end()));
    EXPECT_EQ(rte_pktmbuf_chain(head, tail), 0);
    return head;
}

enum class Path { udp, lwip, drop };

struct Outcome {
    Path path = Path::drop;
    std::optional<DropReason> reason;
    UdpDatagram datagram{};
    uint32_t packet_type = 0;
    unsigned l2_len = 0, l3_len = 0, l4_len = 0;
};

std::string describe(const Outcome& o)
{
    switch (o.path) {
    case Path::udp:
        return "udp_fastpath";
    case Path::lwip:
        return "lwip";
    case Path::drop:
        return "drop:" + (o.reason ? std::string(drop_reason_name(*o.reason)) : std::string("?"));
    }
    return "?";
}

ClassifierConfig default_config()
{
    ClassifierConfig c;
    c.mac = kOurMac;
    c.ipv4 = {{kOurIp, 24}};
    c.ipv6 = {kOurIp6};
    return c;
}

class ClassifierTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        in_use_before_ = pool().in_use();
        reset(default_config());
    }
    void TearDown() override
    {
        EXPECT_EQ(pool().in_use(), in_use_before_) << "an mbuf was neither handed on nor freed";
    }

    void reset(const ClassifierConfig& config)
    {
        classifier_.emplace(config);
        classifier_->bind_udp_port(kBoundPort);
    }

    // Classifies one mbuf; frees it if it was accepted. Checks that exactly
    // one counter moved and that it is the one for the outcome.
    Outcome run(rte_mbuf* m)
    {
        const ClassifierSnapshot before = classifier_->snapshot();
        UdpDatagram udp[1];
        rte_mbuf* lwip[1];
        const ClassifiedBurst r = classifier_->classify(&m, 1, udp, lwip);
        const ClassifierSnapshot after = classifier_->snapshot();
        Outcome o;
        EXPECT_EQ(r.udp + r.lwip + r.dropped, 1);
        if (r.udp == 1) {
            o.path = Path::udp;
            o.datagram = udp[0];
            EXPECT_EQ(udp[0].mbuf, m);
            // The header lengths are in the mbuf's second cache line, which
            // the fast path must not write (UdpDatagram has what it needs).
            EXPECT_EQ(m->tx_offload, 0u) << "the fast path wrote the mbuf's second cache line";
            EXPECT_EQ(after.udp_fastpath, before.udp_fastpath + 1);
        } else if (r.lwip == 1) {
            o.path = Path::lwip;
            EXPECT_EQ(lwip[0], m);
            EXPECT_EQ(after.lwip, before.lwip + 1);
        } else {
            EXPECT_EQ(after.total_drops(), before.total_drops() + 1);
            for (std::size_t i = 0; i < kDropReasonCount; ++i)
                if (after.drops[i] != before.drops[i]) o.reason = static_cast<DropReason>(i);
            return o; // the classifier freed it
        }
        o.packet_type = m->packet_type;
        o.l2_len = m->l2_len;
        o.l3_len = m->l3_len;
        o.l4_len = m->l4_len;
        rte_pktmbuf_free(m);
        return o;
    }
    Outcome run(const Bytes& frame, uint64_t ol_flags = 0) { return run(mbuf_of(frame, ol_flags)); }

    void expect_drop(const Bytes& frame, DropReason reason, uint64_t ol_flags = 0)
    {
        const Outcome o = run(frame, ol_flags);
        EXPECT_EQ(describe(o), "drop:" + std::string(drop_reason_name(reason)));
    }
    void expect_path(const Bytes& frame, Path path, uint64_t ol_flags = 0)
    {
        const Outcome o = run(frame, ol_flags);
        EXPECT_EQ(describe(o), describe(Outcome{path, {}, {}, 0, 0, 0, 0}));
    }

    unsigned in_use_before_ = 0;
    std::optional<Classifier> classifier_;
};

// ---------------------------------------------------------------- fast path

TEST_F(ClassifierTest, Ipv4UdpToBoundPortTakesFastPathWithPayloadAddressesAndPorts)
{
    const Outcome o = run(udp4_frame(100));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.family, 4);
    EXPECT_EQ(o.datagram.payload_offset, 14 + 20 + 8);
    EXPECT_EQ(o.datagram.payload_length, 100);
    EXPECT_EQ(o.datagram.src_port, kPeerPort);
    EXPECT_EQ(o.datagram.dst_port, kBoundPort);
    EXPECT_EQ(o.datagram.dst_multicast, 0);
    EXPECT_TRUE(std::equal(kPeerIp.begin(), kPeerIp.end(), o.datagram.src.begin()));
    EXPECT_TRUE(std::equal(kOurIp.begin(), kOurIp.end(), o.datagram.dst.begin()));
    EXPECT_TRUE(std::all_of(o.datagram.src.begin() + 4, o.datagram.src.end(), [](uint8_t b) { return b == 0; }));
    EXPECT_EQ(o.packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP);
}

TEST_F(ClassifierTest, FastPathPayloadOffsetPointsAtThePayloadBytes)
{
    rte_mbuf* m = mbuf_of(udp4_frame(32));
    UdpDatagram udp[1];
    rte_mbuf* lwip[1];
    ASSERT_EQ(classifier_->classify(&m, 1, udp, lwip).udp, 1);
    const Bytes expected = payload_of(32);
    EXPECT_EQ(std::memcmp(rte_pktmbuf_mtod_offset(m, const uint8_t*, udp[0].payload_offset), expected.data(), 32), 0);
    rte_pktmbuf_free(m);
}

TEST_F(ClassifierTest, Ipv6UdpToBoundPortTakesFastPathWithSixteenByteAddresses)
{
    const Outcome o = run(udp6_frame(50));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.family, 6);
    EXPECT_EQ(o.datagram.payload_offset, 14 + 40 + 8);
    EXPECT_EQ(o.datagram.payload_length, 50);
    EXPECT_EQ(o.datagram.src, kPeerIp6);
    EXPECT_EQ(o.datagram.dst, kOurIp6);
    EXPECT_EQ(o.packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV6 | RTE_PTYPE_L4_UDP);
}

TEST_F(ClassifierTest, Ipv4OptionsAreSkippedAndReportedInThePacketType)
{
    Ip4 h;
    h.options = {0x01, 0x01, 0x01, 0x00}; // NOP NOP NOP EOL
    const Outcome o = run(ether(0x0800, ipv4(h, udp4(kPeerPort, kBoundPort, payload_of(10)))));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 14 + 24 + 8);
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV4_EXT);
}

TEST_F(ClassifierTest, EthernetPaddingIsAcceptedAndNotCountedAsPayload)
{
    Bytes frame = udp4_frame(2); // 44 bytes: a NIC pads it to 60
    frame.resize(60, 0);
    const Outcome o = run(frame);
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_length, 2);
}

TEST_F(ClassifierTest, UdpLengthShorterThanIpPayloadLimitsThePayload)
{
    Bytes u = udp4(kPeerPort, kBoundPort, payload_of(20));
    u.resize(u.size() + 4, 0); // trailing bytes inside the IP datagram, outside the UDP length
    const Outcome o = run(ether(0x0800, ipv4({}, u)));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_length, 20);
}

TEST_F(ClassifierTest, UnboundPortBecomesBoundAndBackWithBindAndUnbind)
{
    EXPECT_EQ(describe(run(udp4_frame(8, 7777))), "lwip");
    classifier_->bind_udp_port(7777);
    EXPECT_TRUE(classifier_->udp_port_bound(7777));
    EXPECT_EQ(describe(run(udp4_frame(8, 7777))), "udp_fastpath");
    classifier_->unbind_udp_port(7777);
    EXPECT_EQ(describe(run(udp4_frame(8, 7777))), "lwip");
}

TEST_F(ClassifierTest, PortZeroIsNeverBound)
{
    classifier_->bind_udp_port(0);
    EXPECT_FALSE(classifier_->udp_port_bound(0));
}

// ---------------------------------------------------------------- lwIP

TEST_F(ClassifierTest, UdpToUnboundPortOnOurAddressGoesToLwip)
{
    expect_path(udp4_frame(8, kUnboundPort), Path::lwip);
    expect_path(udp6_frame(8, kUnboundPort), Path::lwip);
}

TEST_F(ClassifierTest, UdpToUnboundPortIsNoSocketWhenLwipIsNotToSeeIt)
{
    ClassifierConfig c = default_config();
    c.unbound_udp_to_lwip = false;
    reset(c);
    expect_drop(udp4_frame(8, kUnboundPort), DropReason::no_socket);
    expect_drop(udp6_frame(8, kUnboundPort), DropReason::no_socket);
}

TEST_F(ClassifierTest, BroadcastAndMulticastUdpToUnboundPortIsNoSocket)
{
    const Ipv4Address bcast{255, 255, 255, 255};
    expect_drop(ether(0x0800, ipv4({17, kPeerIp, bcast, {}, 0}, udp4(kPeerPort, kUnboundPort, {}, kPeerIp, bcast)),
                      kBroadcastMac),
                DropReason::no_socket);
    expect_drop(
        ether(0x86dd, ipv6(17, udp6(kPeerPort, kUnboundPort, {}, kPeerIp6, kAllNodes6), kAllNodes6), kMulticastMac),
        DropReason::no_socket);
}

TEST_F(ClassifierTest, UnboundUdpWithBadChecksumStillGoesToLwipWhichChecksIt)
{
    Bytes frame = udp4_frame(8, kUnboundPort);
    frame[14 + 20 + 6] ^= 0x55;
    const Outcome o = run(frame);
    EXPECT_EQ(describe(o), "lwip");
    // Frames for lwIP carry their header lengths, the fast path's do not.
    EXPECT_EQ(o.l2_len, 14u);
    EXPECT_EQ(o.l3_len, 20u);
    EXPECT_EQ(o.l4_len, 8u);
    EXPECT_EQ(o.packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP);
}

TEST_F(ClassifierTest, ArpGoesToLwip)
{
    const Outcome o = run(ether(0x0806, arp(), kBroadcastMac));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type, RTE_PTYPE_L2_ETHER_ARP);
    EXPECT_EQ(o.l2_len, 14u);
}

TEST_F(ClassifierTest, IcmpIgmpAndTcpGoToLwipWithTheirPacketType)
{
    Outcome o = run(ether(0x0800, ipv4({1, kPeerIp, kOurIp, {}, 0}, Bytes(8, 0))));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_ICMP);

    o = run(ether(0x0800, ipv4({2, kPeerIp, Ipv4Address{224, 0, 0, 1}, {}, 0}, Bytes(8, 0)), kMulticastMac));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_IGMP);

    o = run(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, tcp(8, 10))));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type, RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_TCP);
    EXPECT_EQ(o.l4_len, 32u);

    o = run(ether(0x86dd, ipv6(6, tcp())));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_TCP);
}

TEST_F(ClassifierTest, Icmpv6GoesToLwip)
{
    const Outcome o = run(ether(0x86dd, ipv6(58, Bytes(8, 0), kAllNodes6), kMulticastMac));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_ICMP);
}

TEST_F(ClassifierTest, UnknownIpProtocolGoesToLwipForProtocolUnreachable)
{
    const Outcome o = run(ether(0x0800, ipv4({132, kPeerIp, kOurIp, {}, 0}, Bytes(12, 0))));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_NONFRAG);
}

TEST_F(ClassifierTest, Ipv4FragmentsGoToLwipEvenForABoundPort)
{
    // First fragment: MF set, offset 0, carrying the UDP header.
    Outcome o =
        run(ether(0x0800, ipv4({17, kPeerIp, kOurIp, {}, 0x2000}, udp4(kPeerPort, kBoundPort, payload_of(16)))));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_FRAG);
    // Last fragment: MF clear, offset non-zero, no UDP header at all.
    o = run(ether(0x0800, ipv4({17, kPeerIp, kOurIp, {}, 0x0003}, Bytes(3, 0))));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_FRAG);
}

// ---------------------------------------------------------------- IPv6 extension headers

TEST_F(ClassifierTest, Ipv6HopByHopAndDestinationOptionsOfPaddingAreSkippedToTheFastPath)
{
    Bytes chain = ext_header(60, 0);     // hop-by-hop, 8 bytes, PadN
    const Bytes dst = ext_header(17, 1); // destination options, 16 bytes
    chain.insert(chain.end(), dst.begin(), dst.end());
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(9));
    chain.insert(chain.end(), u.begin(), u.end());
    const Outcome o = run(ether(0x86dd, ipv6(0, chain)));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 14 + 40 + 8 + 16 + 8);
    EXPECT_EQ(o.datagram.payload_length, 9);
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV6_EXT);
}

TEST_F(ClassifierTest, Ipv6HopByHopWithARealOptionGoesToLwip)
{
    Bytes chain = ext_header(17, 0, {0x05, 0x02, 0x00, 0x00}); // router alert
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(4));
    chain.insert(chain.end(), u.begin(), u.end());
    expect_path(ether(0x86dd, ipv6(0, chain)), Path::lwip);
}

TEST_F(ClassifierTest, Ipv6FragmentAndRoutingHeadersGoToLwip)
{
    Bytes frag{17, 0, 0x00, 0x01, 0, 0, 0, 1}; // offset 0, M set
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(4));
    frag.insert(frag.end(), u.begin(), u.end());
    Outcome o = run(ether(0x86dd, ipv6(44, frag)));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_FRAG);

    Bytes routing = ext_header(17, 0);
    routing.insert(routing.end(), u.begin(), u.end());
    expect_path(ether(0x86dd, ipv6(43, routing)), Path::lwip);
}

// A segment routing header (type 4) with one segment: next header, length
// in 8-byte units past the first 8, type, segments left, last entry, flags,
// tag, then the 16-byte segment.
Bytes segment_routing_header(uint8_t next, uint8_t segments_left)
{
    Bytes h(24, 0);
    h[0] = next;
    h[1] = 2;
    h[2] = 4;
    h[3] = segments_left;
    return h;
}

// RFC 8200 4.4: a routing header with no segments left is ignored and the
// next header processed; this node is the path's end (an SRv6 end node that
// keeps the header). The datagram takes the fast path like one behind
// padding options; with segments left it is lwIP's, and so is one
// fragmented behind the header.
TEST_F(ClassifierTest, Ipv6RoutingHeaderWithNoSegmentsLeftIsSkippedToTheFastPath)
{
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(11));
    Bytes chain = segment_routing_header(17, 0);
    chain.insert(chain.end(), u.begin(), u.end());
    Outcome o = run(ether(0x86dd, ipv6(43, chain)));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 14 + 40 + 24 + 8);
    EXPECT_EQ(o.datagram.payload_length, 11);
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV6_EXT);

    // Behind hop-by-hop padding, and followed by destination options.
    chain = ext_header(43, 0);
    const Bytes routing = segment_routing_header(60, 0);
    chain.insert(chain.end(), routing.begin(), routing.end());
    const Bytes dst = ext_header(17, 0);
    chain.insert(chain.end(), dst.begin(), dst.end());
    chain.insert(chain.end(), u.begin(), u.end());
    o = run(ether(0x86dd, ipv6(0, chain)));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 14 + 40 + 8 + 24 + 8 + 8);

    chain = segment_routing_header(17, 1);
    chain.insert(chain.end(), u.begin(), u.end());
    expect_path(ether(0x86dd, ipv6(43, chain)), Path::lwip);

    chain = segment_routing_header(44, 0);
    Bytes frag{17, 0, 0x00, 0x01, 0, 0, 0, 1}; // offset 0, M set
    chain.insert(chain.end(), frag.begin(), frag.end());
    chain.insert(chain.end(), u.begin(), u.end());
    o = run(ether(0x86dd, ipv6(43, chain)));
    EXPECT_EQ(describe(o), "lwip");
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L4_MASK, RTE_PTYPE_L4_FRAG);
}

TEST_F(ClassifierTest, Ipv6RoutingHeaderWithNoSegmentsLeftIsBoundedLikeOptions)
{
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(4));
    Bytes h = segment_routing_header(17, 0);
    h[1] = 9; // claims 80 bytes, 24 present
    h.insert(h.end(), u.begin(), u.end());
    expect_drop(ether(0x86dd, ipv6(43, h)), DropReason::bad_length);
    // Five routing headers in a row: past the walk's bound.
    Bytes chain;
    for (int i = 0; i < 5; ++i) {
        const Bytes r = segment_routing_header(i < 4 ? 43 : 17, 0);
        chain.insert(chain.end(), r.begin(), r.end());
    }
    chain.insert(chain.end(), u.begin(), u.end());
    expect_drop(ether(0x86dd, ipv6(43, chain)), DropReason::bad_header);
}

TEST_F(ClassifierTest, Ipv6ExtensionHeaderLongerThanThePayloadIsBadLength)
{
    Bytes h = ext_header(17, 0);
    h[1] = 4; // claims 40 bytes, 8 present
    expect_drop(ether(0x86dd, ipv6(0, h)), DropReason::bad_length);
    expect_drop(ether(0x86dd, ipv6(0, Bytes{17, 0, 1, 0})), DropReason::bad_length); // 4 < 8 bytes
}

TEST_F(ClassifierTest, Ipv6OptionRunningPastItsHeaderIsBadHeader)
{
    Bytes h{17, 0, 0x1e, 0x09, 0, 0, 0, 0}; // option of 9 bytes in 6
    expect_drop(ether(0x86dd, ipv6(0, h)), DropReason::bad_header);
}

TEST_F(ClassifierTest, Ipv6ChainOfTooManyOptionHeadersIsBadHeader)
{
    Bytes chain;
    for (int i = 0; i < 5; ++i) {
        const Bytes h = ext_header(i == 4 ? 17 : 60, 0);
        chain.insert(chain.end(), h.begin(), h.end());
    }
    const Bytes u = udp6(kPeerPort, kBoundPort, {});
    chain.insert(chain.end(), u.begin(), u.end());
    expect_drop(ether(0x86dd, ipv6(0, chain)), DropReason::bad_header);
}

// ---------------------------------------------------------------- truncation

TEST_F(ClassifierTest, EveryPrefixOfAnIpv4UdpFrameIsDroppedWithTheReasonForWhereItEnds)
{
    const Bytes frame = udp4_frame(16);
    for (std::size_t cut = 0; cut < frame.size(); ++cut) {
        SCOPED_TRACE("frame cut at " + std::to_string(cut));
        const Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(cut));
        // Inside Ethernet or the fixed IPv4 header: truncated. Past it, the
        // total length field claims bytes the frame lacks: bad_length.
        expect_drop(prefix, cut < 14 + 20 ? DropReason::truncated : DropReason::bad_length);
    }
}

TEST_F(ClassifierTest, EveryPrefixOfAnIpv6UdpFrameIsDropped)
{
    const Bytes frame = udp6_frame(16);
    for (std::size_t cut = 0; cut < frame.size(); ++cut) {
        SCOPED_TRACE("frame cut at " + std::to_string(cut));
        const Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(cut));
        expect_drop(prefix, cut < 14 + 40 ? DropReason::truncated : DropReason::bad_length);
    }
}

TEST_F(ClassifierTest, FrameEndingInsideAVlanTagIsTruncated)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    reset(c);
    const Bytes frame = ether(0x0800, {}, kOurMac, {{0x8100, 10}});
    expect_drop(Bytes(frame.begin(), frame.begin() + 16), DropReason::truncated);
}

TEST_F(ClassifierTest, ShortArpIsTruncated)
{
    const Bytes a = arp();
    expect_drop(ether(0x0806, Bytes(a.begin(), a.begin() + 7)), DropReason::truncated);
    expect_drop(ether(0x0806, Bytes(a.begin(), a.begin() + 27)), DropReason::truncated);
}

TEST_F(ClassifierTest, ArpForAnotherHardwareOrProtocolSizeIsBadHeader)
{
    Bytes a = arp();
    a[4] = 8;
    expect_drop(ether(0x0806, a), DropReason::bad_header);
}

TEST_F(ClassifierTest, HeadersSpanningSegmentsAreTruncated)
{
    const Bytes frame = udp4_frame(16);
    // First segment ends inside the IPv4 header, then inside the UDP header.
    Outcome o = run(chained_mbuf_of(frame, 14 + 10));
    EXPECT_EQ(describe(o), "drop:truncated");
    o = run(chained_mbuf_of(frame, 14 + 20 + 4));
    EXPECT_EQ(describe(o), "drop:truncated");
}

TEST_F(ClassifierTest, Ipv6ExtensionAndTcpHeadersSpanningSegmentsAreTruncated)
{
    Bytes chain = ext_header(17, 1); // 16 bytes of destination options
    const Bytes u = udp6(kPeerPort, kBoundPort, payload_of(4));
    chain.insert(chain.end(), u.begin(), u.end());
    Outcome o = run(chained_mbuf_of(ether(0x86dd, ipv6(60, chain)), 14 + 40 + 4)); // inside its first 8 bytes
    EXPECT_EQ(describe(o), "drop:truncated");
    o = run(chained_mbuf_of(ether(0x86dd, ipv6(60, chain)), 14 + 40 + 12)); // inside its length
    EXPECT_EQ(describe(o), "drop:truncated");
    o = run(chained_mbuf_of(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, tcp(8))), 14 + 20 + 24));
    EXPECT_EQ(describe(o), "drop:truncated");
}

TEST_F(ClassifierTest, PayloadInALaterSegmentStillTakesTheFastPathWithItsChecksumVerified)
{
    const Bytes frame = udp4_frame(64);
    Outcome o = run(chained_mbuf_of(frame, 14 + 20 + 8 + 5));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 42);
    EXPECT_EQ(o.datagram.payload_length, 64);

    Bytes corrupt = frame;
    corrupt.back() ^= 0x01; // in the second segment
    o = run(chained_mbuf_of(corrupt, 14 + 20 + 8 + 5));
    EXPECT_EQ(describe(o), "drop:bad_checksum");
}

// ---------------------------------------------------------------- lying lengths and bad headers

TEST_F(ClassifierTest, Ipv4TotalLengthLargerThanTheFrameIsBadLength)
{
    Bytes frame = udp4_frame(16);
    frame.pop_back(); // total length now one byte too large
    expect_drop(frame, DropReason::bad_length);
}

TEST_F(ClassifierTest, Ipv4TotalLengthSmallerThanItsHeaderIsBadLength)
{
    Ip4 h;
    Bytes ip = ipv4(h, udp4(kPeerPort, kBoundPort, {}));
    put16(ip, 2, 19);
    put16(ip, 10, 0);
    put16(ip, 10, inet_checksum(Bytes(ip.begin(), ip.begin() + 20)));
    expect_drop(ether(0x0800, ip), DropReason::bad_length);
}

TEST_F(ClassifierTest, IhlBelowFiveIsBadHeader)
{
    Bytes frame = udp4_frame(16);
    frame[14] = 0x44;
    expect_drop(frame, DropReason::bad_header);
}

TEST_F(ClassifierTest, IhlPastTheFrameIsBadLength)
{
    Bytes ip(24, 0);
    ip[0] = 0x4f; // 60-byte header in a 24-byte datagram
    expect_drop(ether(0x0800, ip), DropReason::bad_length);
}

TEST_F(ClassifierTest, UdpLengthLargerThanIpPayloadIsBadLength)
{
    Bytes u = udp4(kPeerPort, kBoundPort, payload_of(8));
    put16(u, 4, static_cast<uint16_t>(u.size() + 1));
    expect_drop(ether(0x0800, ipv4({}, u)), DropReason::bad_length);
}

TEST_F(ClassifierTest, UdpLengthBelowItsHeaderIsBadLength)
{
    Bytes u = udp4(kPeerPort, kBoundPort, payload_of(8));
    put16(u, 4, 7);
    expect_drop(ether(0x0800, ipv4({}, u)), DropReason::bad_length);
}

TEST_F(ClassifierTest, IpPayloadTooShortForItsL4HeaderIsBadLength)
{
    expect_drop(ether(0x0800, ipv4({17, kPeerIp, kOurIp, {}, 0}, Bytes(7, 0))), DropReason::bad_length);
    expect_drop(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, Bytes(19, 0))), DropReason::bad_length);
}

TEST_F(ClassifierTest, Ipv6PayloadLengthLargerThanTheFrameIsBadLength)
{
    Bytes frame = udp6_frame(16);
    put16(frame, 14 + 4, static_cast<uint16_t>(8 + 16 + 1));
    expect_drop(frame, DropReason::bad_length);
}

TEST_F(ClassifierTest, TcpDataOffsetBelowFiveIsBadHeaderAndPastThePayloadIsBadLength)
{
    Bytes t = tcp();
    t[12] = 0x40;
    expect_drop(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, t)), DropReason::bad_header);
    t[12] = 0x60; // 24-byte header in a 20-byte segment
    expect_drop(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, t)), DropReason::bad_length);
}

TEST_F(ClassifierTest, WrongIpVersionIsBadVersion)
{
    Bytes v4 = udp4_frame(8);
    v4[14] = 0x65;
    expect_drop(v4, DropReason::bad_version);
    Bytes v6 = udp6_frame(8);
    v6[14] = 0x40;
    expect_drop(v6, DropReason::bad_version);
}

TEST_F(ClassifierTest, UnknownEthertypeIsDropped)
{
    expect_drop(ether(0x88b5, Bytes(46, 0)), DropReason::unknown_ethertype);
}

// ---------------------------------------------------------------- checksums

TEST_F(ClassifierTest, BadIpv4HeaderChecksumIsDropped)
{
    Bytes frame = udp4_frame(8);
    frame[14 + 10] ^= 0x01;
    expect_drop(frame, DropReason::bad_checksum);
}

TEST_F(ClassifierTest, IpChecksumGoodFlagSkipsTheSoftwareCheck)
{
    Bytes frame = udp4_frame(8);
    frame[14 + 10] ^= 0x01;
    expect_path(frame, Path::udp, RTE_MBUF_F_RX_IP_CKSUM_GOOD);
    expect_path(frame, Path::udp, RTE_MBUF_F_RX_IP_CKSUM_NONE);
}

TEST_F(ClassifierTest, IpChecksumBadFlagDropsAValidHeader)
{
    expect_drop(udp4_frame(8), DropReason::bad_checksum, RTE_MBUF_F_RX_IP_CKSUM_BAD);
}

TEST_F(ClassifierTest, SoftwareChecksumsOffTrustsFramesWithoutAVerdict)
{
    ClassifierConfig c = default_config();
    c.software_checksums = false;
    reset(c);
    Bytes frame = udp4_frame(8);
    frame[14 + 10] ^= 0x01;
    frame[14 + 20 + 6] ^= 0x01;
    expect_path(frame, Path::udp);
    expect_drop(udp4_frame(8), DropReason::bad_checksum, RTE_MBUF_F_RX_IP_CKSUM_BAD);
}

TEST_F(ClassifierTest, BadUdpChecksumToBoundPortIsDropped)
{
    Bytes frame = udp4_frame(8);
    frame[14 + 20 + 6] ^= 0x01;
    expect_drop(frame, DropReason::bad_checksum);
    Bytes frame6 = udp6_frame(8);
    frame6.back() ^= 0x80;
    expect_drop(frame6, DropReason::bad_checksum);
}

TEST_F(ClassifierTest, L4ChecksumFlagsAreHonoured)
{
    Bytes bad = udp4_frame(8);
    bad[14 + 20 + 6] ^= 0x01;
    expect_path(bad, Path::udp, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
    expect_drop(udp4_frame(8), DropReason::bad_checksum, RTE_MBUF_F_RX_L4_CKSUM_BAD);
    expect_drop(udp4_frame(8, kUnboundPort), DropReason::bad_checksum, RTE_MBUF_F_RX_L4_CKSUM_BAD);
    expect_drop(ether(0x0800, ipv4({6, kPeerIp, kOurIp, {}, 0}, tcp())), DropReason::bad_checksum,
                RTE_MBUF_F_RX_L4_CKSUM_BAD);
}

TEST_F(ClassifierTest, ZeroUdpChecksumIsAllowedOverIpv4AndNotOverIpv6)
{
    Bytes v4 = udp4_frame(8);
    put16(v4, 14 + 20 + 6, 0);
    expect_path(v4, Path::udp);
    Bytes v6 = udp6_frame(8);
    put16(v6, 14 + 40 + 6, 0);
    expect_drop(v6, DropReason::bad_checksum);
}

// ---------------------------------------------------------------- addressing

TEST_F(ClassifierTest, UnicastForAnotherMacIsNotForUs)
{
    expect_drop(ether(0x0800, ipv4({}, udp4(kPeerPort, kBoundPort, {})), kOtherMac), DropReason::not_for_us);
}

TEST_F(ClassifierTest, AnyMacIsAcceptedWhenTheClassifierIsNotToldOurs)
{
    ClassifierConfig c = default_config();
    c.mac.reset();
    reset(c);
    expect_path(ether(0x0800, ipv4({}, udp4(kPeerPort, kBoundPort, {})), kOtherMac), Path::udp);
}

TEST_F(ClassifierTest, BroadcastAndMulticastMacsAreAccepted)
{
    expect_path(ether(0x0806, arp(), kBroadcastMac), Path::lwip);
    const Ipv4Address group{239, 1, 2, 3};
    const Outcome o = run(ether(
        0x0800, ipv4({17, kPeerIp, group, {}, 0}, udp4(kPeerPort, kBoundPort, {}, kPeerIp, group)), kMulticastMac));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.dst_multicast, 1);
}

TEST_F(ClassifierTest, Ipv4ForAnotherHostIsNotForUs)
{
    expect_drop(ether(0x0800, ipv4({17, kPeerIp, kOtherIp, {}, 0}, udp4(kPeerPort, kBoundPort, {}, kPeerIp, kOtherIp))),
                DropReason::not_for_us);
}

TEST_F(ClassifierTest, Ipv4LimitedAndDirectedBroadcastAreAccepted)
{
    for (const Ipv4Address dst : {Ipv4Address{255, 255, 255, 255}, Ipv4Address{198, 18, 0, 255}}) {
        const Outcome o = run(ether(
            0x0800, ipv4({17, kPeerIp, dst, {}, 0}, udp4(kPeerPort, kBoundPort, {}, kPeerIp, dst)), kBroadcastMac));
        ASSERT_EQ(describe(o), "udp_fastpath");
        EXPECT_EQ(o.datagram.dst_multicast, 1);
    }
}

TEST_F(ClassifierTest, AnyIpv4DestinationIsAcceptedWhenNoAddressIsConfigured)
{
    ClassifierConfig c = default_config();
    c.ipv4.clear();
    reset(c);
    expect_path(ether(0x0800, ipv4({17, kPeerIp, kOtherIp, {}, 0}, udp4(kPeerPort, kBoundPort, {}, kPeerIp, kOtherIp))),
                Path::udp);
}

TEST_F(ClassifierTest, Ipv6ForAnotherHostIsNotForUsAndMulticastIsAccepted)
{
    expect_drop(ether(0x86dd, ipv6(17, udp6(kPeerPort, kBoundPort, {}, kPeerIp6, kOtherIp6), kOtherIp6)),
                DropReason::not_for_us);
    const Outcome o =
        run(ether(0x86dd, ipv6(17, udp6(kPeerPort, kBoundPort, {}, kPeerIp6, kAllNodes6), kAllNodes6), kMulticastMac));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.dst_multicast, 1);
}

// RFC 1122 3.2.1.3 and RFC 4291 2.5.3/2.7: loopback, multicast and
// broadcast addresses never arrive as a sender from a wire, nor loopback
// as a destination; IPv4-mapped addresses on the wire (RFC 4942 2.2) would
// pose as IPv4 peers to dual-stack sockets. Dropped before the fast path
// and lwIP, UDP, ICMP and fragments alike, whatever addresses we have.
TEST_F(ClassifierTest, MartianAddressesAreDroppedBeforeTheFastPathAndLwip)
{
    const auto udp4_between = [](const Ipv4Address& src, const Ipv4Address& dst) {
        return ether(0x0800, ipv4({17, src, dst, {}, 0}, udp4(kPeerPort, kBoundPort, {1, 2}, src, dst)));
    };
    const auto udp6_between = [](const Ipv6Address& src, const Ipv6Address& dst) {
        return ether(0x86dd, ipv6(17, udp6(kPeerPort, kBoundPort, {1, 2}, src, dst), dst, src));
    };
    const Ipv6Address loopback6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const Ipv6Address mapped_peer{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1};
    const Ipv6Address mapped_us{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2};
    for (const bool told : {true, false}) {
        SCOPED_TRACE(told ? "our addresses configured" : "no addresses configured");
        ClassifierConfig c = default_config();
        if (!told) {
            c.ipv4.clear();
            c.ipv6.clear();
        }
        reset(c);
        for (const Ipv4Address src : {Ipv4Address{127, 0, 0, 1}, Ipv4Address{127, 9, 8, 7}, Ipv4Address{224, 0, 0, 1},
                                      Ipv4Address{239, 255, 255, 255}, Ipv4Address{255, 255, 255, 255}})
            expect_drop(udp4_between(src, kOurIp), DropReason::martian);
        expect_drop(udp4_between(kPeerIp, {127, 0, 0, 1}), DropReason::martian);
        expect_drop(ether(0x0800, ipv4({1, {127, 0, 0, 1}, kOurIp, {}, 0}, Bytes(8, 0))), DropReason::martian);
        expect_drop(ether(0x0800, ipv4({17, {127, 0, 0, 1}, kOurIp, {}, 0x2000}, Bytes(16, 0))), DropReason::martian);
        expect_drop(udp6_between(loopback6, kOurIp6), DropReason::martian);
        expect_drop(udp6_between(kPeerIp6, loopback6), DropReason::martian);
        expect_drop(udp6_between(kAllNodes6, kOurIp6), DropReason::martian);
        expect_drop(udp6_between(mapped_peer, kOurIp6), DropReason::martian);
        expect_drop(udp6_between(kPeerIp6, mapped_us), DropReason::martian);
        expect_drop(ether(0x86dd, ipv6(58, Bytes(8, 0), kOurIp6, loopback6)), DropReason::martian);

        // Their neighbours are ordinary senders.
        for (const Ipv4Address src : {Ipv4Address{126, 255, 255, 255}, Ipv4Address{128, 0, 0, 1},
                                      Ipv4Address{223, 255, 255, 255}, Ipv4Address{240, 0, 0, 1}})
            expect_path(udp4_between(src, kOurIp), Path::udp);
        for (const Ipv6Address src : {Ipv6Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
                                      Ipv6Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 198, 18, 0, 1},
                                      Ipv6Address{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}})
            expect_path(udp6_between(src, kOurIp6), Path::udp);
        // Duplicate address detection sends from the unspecified address.
        expect_path(ether(0x86dd, ipv6(58, Bytes(8, 0), kOurIp6, Ipv6Address{})), Path::lwip);
    }
}

// A packet from one of our own addresses, or from our subnet's broadcast,
// came from a host pretending to be us: answering it answers ourselves
// (an echo to its own address loops through lwIP's loopback for ever, a
// TCP SYN from our own address and port is the LAND attack), so it is a
// martian, as Linux counts it with accept_local off. 0/8 may be a source
// only while a host learns its address (RFC 1122 3.2.1.3: DHCP to the
// broadcast, an IGMP querier with no address), never to a unicast
// destination. IPv6's ICMPv6 from our own address stays lwIP's: duplicate
// address detection learns of a duplicate from exactly such an advert.
TEST_F(ClassifierTest, PacketsFromOurOwnAddressesAreMartians)
{
    const auto udp4_between = [](const Ipv4Address& src, const Ipv4Address& dst) {
        return ether(0x0800, ipv4({17, src, dst, {}, 0}, udp4(kBoundPort, kBoundPort, {1, 2}, src, dst)));
    };
    const auto udp6_between = [](const Ipv6Address& src, const Ipv6Address& dst) {
        return ether(0x86dd, ipv6(17, udp6(kBoundPort, kBoundPort, {1, 2}, src, dst), dst, src));
    };
    const Ipv4Address our_broadcast{198, 18, 0, 255};
    const Ipv4Address limited_broadcast{255, 255, 255, 255};
    for (const Ipv4Address dst : {kOurIp, our_broadcast, limited_broadcast, Ipv4Address{224, 0, 0, 1}}) {
        const MacAddress mac = dst == kOurIp ? kOurMac : dst[0] == 224 ? kMulticastMac : kBroadcastMac;
        for (const Ipv4Address src : {kOurIp, our_broadcast}) {
            expect_drop(ether(0x0800, ipv4({17, src, dst, {}, 0}, udp4(kBoundPort, kBoundPort, {1, 2}, src, dst)), mac),
                        DropReason::martian);
            expect_drop(ether(0x0800, ipv4({6, src, dst, {}, 0}, tcp()), mac), DropReason::martian);
            expect_drop(ether(0x0800, ipv4({1, src, dst, {}, 0}, Bytes(8, 0)), mac), DropReason::martian);
            expect_drop(ether(0x0800, ipv4({17, src, dst, {}, 0x2000}, Bytes(16, 0)), mac), DropReason::martian);
        }
    }
    expect_drop(udp4_between({0, 0, 0, 0}, kOurIp), DropReason::martian);
    expect_drop(udp4_between({0, 1, 2, 3}, kOurIp), DropReason::martian);
    expect_drop(ether(0x0800, ipv4({6, {0, 0, 0, 0}, kOurIp, {}, 0}, tcp())), DropReason::martian);
    // A DHCP client's discover and an address-less querier's IGMP query.
    expect_path(ether(0x0800,
                      ipv4({17, {0, 0, 0, 0}, limited_broadcast, {}, 0},
                           udp4(kBoundPort, kBoundPort, {1, 2}, {0, 0, 0, 0}, limited_broadcast)),
                      kBroadcastMac),
                Path::udp);
    expect_path(ether(0x0800, ipv4({2, {0, 0, 0, 0}, {224, 0, 0, 1}, {}, 0}, Bytes(8, 0)), kMulticastMac), Path::lwip);
    // Our neighbours on the subnet are ordinary senders.
    expect_path(udp4_between({198, 18, 0, 1}, kOurIp), Path::udp);
    expect_path(udp4_between({198, 18, 0, 254}, kOurIp), Path::udp);

    expect_drop(udp6_between(kOurIp6, kOurIp6), DropReason::martian);
    expect_drop(udp6_between(kOurIp6, kAllNodes6), DropReason::martian);
    expect_drop(ether(0x86dd, ipv6(6, tcp(), kOurIp6, kOurIp6)), DropReason::martian);
    expect_drop(ether(0x86dd, ipv6(44, Bytes(16, 0), kOurIp6, kOurIp6)), DropReason::martian);
    expect_path(ether(0x86dd, ipv6(58, Bytes(8, 0), kAllNodes6, kOurIp6), kMulticastMac), Path::lwip);
    expect_path(udp6_between(kPeerIp6, kOurIp6), Path::udp);

    // With no address of ours known, no source is ours.
    ClassifierConfig c = default_config();
    c.ipv4.clear();
    c.ipv6.clear();
    reset(c);
    expect_path(udp4_between(kOurIp, kOurIp), Path::udp);
    expect_path(udp6_between(kOurIp6, kOurIp6), Path::udp);
}

// ---------------------------------------------------------------- VLAN

TEST_F(ClassifierTest, ConfiguredVlanIsAcceptedAndUntaggedStillIs)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    reset(c);
    const Outcome o = run(ether(0x0800, ipv4({}, udp4(kPeerPort, kBoundPort, payload_of(4))), kOurMac, {{0x8100, 10}}));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 18 + 20 + 8);
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L2_MASK, RTE_PTYPE_L2_ETHER_VLAN);
    expect_path(udp4_frame(4), Path::udp);
}

TEST_F(ClassifierTest, OtherVlanIsVlanMismatch)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    reset(c);
    expect_drop(ether(0x0800, ipv4({}, udp4(kPeerPort, kBoundPort, {})), kOurMac, {{0x8100, 11}}),
                DropReason::vlan_mismatch);
}

TEST_F(ClassifierTest, AnyTagIsVlanMismatchWhenNoVlanIsConfigured)
{
    expect_drop(ether(0x0806, arp(), kBroadcastMac, {{0x8100, 10}}), DropReason::vlan_mismatch);
}

TEST_F(ClassifierTest, PriorityTagWithVlanZeroIsTakenAsUntagged)
{
    const Outcome o = run(ether(0x0800, ipv4({}, udp4(kPeerPort, kBoundPort, {})), kOurMac, {{0x8100, 0x6000}}));
    EXPECT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 18 + 20 + 8);
}

TEST_F(ClassifierTest, DoubleTagMatchingOuterAndInnerIsAccepted)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    c.outer_vlan = 100;
    reset(c);
    const Bytes ip = ipv4({}, udp4(kPeerPort, kBoundPort, payload_of(4)));
    const Outcome o = run(ether(0x0800, ip, kOurMac, {{0x88a8, 100}, {0x8100, 10}}));
    ASSERT_EQ(describe(o), "udp_fastpath");
    EXPECT_EQ(o.datagram.payload_offset, 22 + 20 + 8);
    EXPECT_EQ(o.packet_type & RTE_PTYPE_L2_MASK, RTE_PTYPE_L2_ETHER_QINQ);
    expect_drop(ether(0x0800, ip, kOurMac, {{0x88a8, 101}, {0x8100, 10}}), DropReason::vlan_mismatch);
    expect_drop(ether(0x0800, ip, kOurMac, {{0x88a8, 100}, {0x8100, 11}}), DropReason::vlan_mismatch);
    expect_drop(ether(0x0800, ip, kOurMac, {{0x88a8, 100}, {0x8100, 10}, {0x8100, 10}}), DropReason::vlan_mismatch);
}

TEST_F(ClassifierTest, TagStrippedByTheNicMustMatchToo)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    reset(c);
    rte_mbuf* m = mbuf_of(udp4_frame(4), RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
    m->vlan_tci = 10;
    EXPECT_EQ(describe(run(m)), "udp_fastpath");
    m = mbuf_of(udp4_frame(4), RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
    m->vlan_tci = 12;
    EXPECT_EQ(describe(run(m)), "drop:vlan_mismatch");
}

// ---------------------------------------------------------------- destination read back

// WSARecvMsg's IP_PKTINFO, IP_HOPLIMIT and IP_ECN read a fast-path
// datagram's IP header back from its frame (the socket queue does not keep
// it): the destination the classifier saw, the TTL or hop limit and the
// traffic class with its ECN bits, through IPv4 options, two VLAN tags and
// IPv6 extension headers; nothing for the other family or when the
// headers do not end before the payload offset given.
TEST_F(ClassifierTest, ADatagramsIpHeaderIsReadBackFromItsFrame)
{
    ClassifierConfig c = default_config();
    c.vlan = 10;
    c.outer_vlan = 100;
    reset(c);
    const std::vector<Tag> tags{{0x88a8, 100}, {0x8100, 10}};
    Ip4 with_options;
    with_options.options = {0x01, 0x01, 0x01, 0x00};
    with_options.tos = 0xb9; // EF, ECT(1)
    with_options.ttl = 17;
    Bytes chain = ext_header(17, 0);
    const Bytes u6 = udp6(kPeerPort, kBoundPort, payload_of(5));
    chain.insert(chain.end(), u6.begin(), u6.end());
    Bytes frame6 = ether(0x86dd, ipv6(0, chain), kOurMac, tags);
    constexpr std::size_t kIpv6At = 14 + 8;
    frame6[kIpv6At] = 0x6b; // traffic class 0xbb: EF, CE
    frame6[kIpv6At + 1] = 0xb0;
    frame6[kIpv6At + 7] = 3; // hop limit
    struct Case {
        Bytes frame;
        uint8_t family;
        uint8_t hop_limit;
        uint8_t traffic_class;
        uint8_t ecn;
    };
    for (const Case& k :
         {Case{ether(0x0800, ipv4(with_options, udp4(kPeerPort, kBoundPort, payload_of(4))), kOurMac, tags), 4, 17,
               0xb9, 1},
          Case{frame6, 6, 3, 0xbb, 3}}) {
        rte_mbuf* m = mbuf_of(k.frame);
        UdpDatagram udp[1];
        rte_mbuf* lwip[1];
        ASSERT_EQ(classifier_->classify(&m, 1, udp, lwip).udp, 1);
        DatagramIpHeader header;
        EXPECT_TRUE(read_datagram_ip_header(*udp[0].mbuf, udp[0].payload_offset, k.family, header));
        EXPECT_EQ(header.destination, udp[0].dst);
        EXPECT_EQ(header.hop_limit, k.hop_limit);
        EXPECT_EQ(header.traffic_class, k.traffic_class);
        EXPECT_EQ(header.ecn(), k.ecn);
        EXPECT_FALSE(read_datagram_ip_header(*udp[0].mbuf, udp[0].payload_offset, k.family == 4 ? 6 : 4, header));
        EXPECT_FALSE(read_datagram_ip_header(*udp[0].mbuf, 22 + 16, k.family, header)) << "headers cut short";
        rte_pktmbuf_free(udp[0].mbuf);
    }
}

// ---------------------------------------------------------------- bursts, handler, counters

class RecordingUdpSink final : public UdpSink {
public:
    void on_udp(UdpDatagram* d, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i) {
            ports.push_back(d[i].dst_port);
            rte_pktmbuf_free(d[i].mbuf);
        }
        ++calls;
    }
    std::vector<uint16_t> ports;
    unsigned calls = 0;
};

class RecordingLwipSink final : public LwipSink {
public:
    void on_lwip(rte_mbuf** pkts, uint16_t n) override
    {
        frames += n;
        ++calls;
        rte_pktmbuf_free_bulk(pkts, n);
    }
    unsigned frames = 0;
    unsigned calls = 0;
};

TEST_F(ClassifierTest, BurstKeepsArrivalOrderWithinEachOutput)
{
    std::vector<rte_mbuf*> burst;
    for (uint16_t i = 0; i < 6; ++i) {
        classifier_->bind_udp_port(static_cast<uint16_t>(6000 + i));
        burst.push_back(mbuf_of(udp4_frame(4, static_cast<uint16_t>(6000 + i))));
        burst.push_back(mbuf_of(ether(0x0806, arp(), kBroadcastMac)));
        burst.push_back(mbuf_of(Bytes(10, 0)));
    }
    std::vector<UdpDatagram> udp(burst.size());
    std::vector<rte_mbuf*> lwip(burst.size());
    const ClassifiedBurst r =
        classifier_->classify(burst.data(), static_cast<uint16_t>(burst.size()), udp.data(), lwip.data());
    EXPECT_EQ(r.udp, 6);
    EXPECT_EQ(r.lwip, 6);
    EXPECT_EQ(r.dropped, 6);
    for (uint16_t i = 0; i < r.udp; ++i) {
        EXPECT_EQ(udp[i].dst_port, 6000 + i);
        EXPECT_EQ(udp[i].mbuf, burst[3 * i]);
        rte_pktmbuf_free(udp[i].mbuf);
    }
    for (uint16_t i = 0; i < r.lwip; ++i)
        EXPECT_EQ(lwip[i], burst[3 * i + 1]);
    rte_pktmbuf_free_bulk(lwip.data(), r.lwip);
}

TEST_F(ClassifierTest, HandlerHandsEveryMbufToASinkOrFreesIt)
{
    Engine engine(rte_lcore_id(), environment->profile.engine);
    RecordingUdpSink udp_sink;
    RecordingLwipSink lwip_sink;
    ClassifierHandler handler(*classifier_, udp_sink, lwip_sink);

    // More than one chunk, every kind of outcome.
    const std::vector<Bytes> kinds = {
        udp4_frame(8),
        udp6_frame(8),
        udp4_frame(8, kUnboundPort),
        ether(0x0806, arp(), kBroadcastMac),
        Bytes(5, 0),
        ether(0x88b5, Bytes(46, 0)),
        ether(0x0800, ipv4({}, udp4(1, 2, {})), kOtherMac),
    };
    constexpr uint16_t kFrames = ClassifierHandler::kChunk * 2 + 11;
    std::vector<rte_mbuf*> burst;
    for (uint16_t i = 0; i < kFrames; ++i)
        burst.push_back(mbuf_of(kinds[i % kinds.size()]));
    ASSERT_GT(pool().in_use(), in_use_before_);

    const uint16_t left = handler.on_burst(engine, {0, 0}, burst.data(), kFrames);
    EXPECT_EQ(left, 0);
    const ClassifierSnapshot s = classifier_->snapshot();
    EXPECT_EQ(udp_sink.ports.size(), s.udp_fastpath);
    EXPECT_EQ(lwip_sink.frames, s.lwip);
    EXPECT_EQ(s.udp_fastpath + s.lwip + s.total_drops(), kFrames);
    EXPECT_EQ(engine.counters().handler_drops.get(), s.total_drops());
    EXPECT_EQ(udp_sink.calls, 3u) << "one sink call per chunk, not per frame";
    EXPECT_EQ(s.drop(DropReason::truncated) + s.drop(DropReason::unknown_ethertype) + s.drop(DropReason::not_for_us),
              s.total_drops());
    // TearDown checks the pool is back where it started.
}

TEST(ClassifierNames, EveryDropReasonHasADistinctName)
{
    std::vector<std::string_view> names;
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
        names.push_back(drop_reason_name(static_cast<DropReason>(i)));
    std::sort(names.begin(), names.end());
    EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
    EXPECT_EQ(drop_reason_name(DropReason::not_for_us), "not_for_us");
}

TEST(ClassifierConfigCheck, OutOfRangeConfigurationIsRefusedAtConstruction)
{
    ClassifierConfig c = default_config();
    c.vlan = 4096;
    EXPECT_THROW(Classifier{c}, std::invalid_argument);
    c = default_config();
    c.ipv4 = {{kOurIp, 33}};
    EXPECT_THROW(Classifier{c}, std::invalid_argument);
    c = default_config();
    c.ipv6.assign(ClassifierConfig::kMaxAddresses + 1, kOurIp6);
    EXPECT_THROW(Classifier{c}, std::invalid_argument);
}

TEST(ClassifierTelemetry, TheCounterGroupNamesEveryVerdictAndDropReason)
{
    Classifier classifier(default_config());
    const auto counters = classifier_counter_group(classifier)();
    ASSERT_EQ(counters.size(), 2 + kDropReasonCount);
    EXPECT_EQ(counters[0].first, "udp_fastpath");
    EXPECT_EQ(counters[1].first, "lwip");
    for (std::size_t r = 0; r < kDropReasonCount; ++r)
        EXPECT_EQ(counters[2 + r].first, "drop_" + std::string(drop_reason_name(static_cast<DropReason>(r))));
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    environment = new EalEnvironment(kProfile, "test_classifier"); // gtest owns and deletes it
    ::testing::AddGlobalTestEnvironment(environment);
    return RUN_ALL_TESTS();
}
