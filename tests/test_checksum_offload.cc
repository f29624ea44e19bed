// Checksum offload marks on frames as lwIP builds them: which flags, header
// lengths and field contents mark_tx_checksums() leaves, checked by doing
// what rte_mbuf_core.h says a port then does (sum the IPv4 header over a
// zeroed field; add the L4 segment's sum to the pseudo-header sum left in
// its field) and verifying the result with a checksum written here, not
// DPDK's. Also the receive verdict read from the PMD's flags, and the UDP
// send fast path's frames (stack/udp_frame.hh) with and without offload.
// EAL starts once for mbufs only.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>

#include "stack/checksum_offload.hh"
#include "stack/udp_frame.hh"
#include "tests/support/eal_environment.hh"

namespace {

using ringsock::stack::mark_tx_checksums;
using ringsock::stack::rx_checksum_verdict;
using ringsock::stack::TxChecksums;
using ringsock::testing::EalEnvironment;

constexpr const char* kProfile = R"(
[eal]
lcores = "0"
memory_mb = 128
[port]
device = "net_null0"
[mempool]
mbufs = 2047
cache = 0
)";

EalEnvironment* environment = nullptr;

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kIcmp = 1;

uint32_t add_words(const uint8_t* p, std::size_t n, uint32_t sum = 0)
{
    for (std::size_t i = 0; i < n; i += 2)
        sum += (uint32_t{p[i]} << 8) | (i + 1 < n ? p[i + 1] : 0u);
    return sum;
}

uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

void put16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

uint16_t get16(const uint8_t* p)
{
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// Ethernet (optionally one 802.1Q tag), then an IPv4 or IPv6 header, then
// `l4` (protocol `proto`) with its checksum field at zero, as lwIP leaves it
// when the port sums. IPv4: `frag_field` is the flags/offset word.
Bytes frame(bool ipv6, uint8_t proto, const Bytes& l4, bool vlan = false, uint16_t frag_field = 0)
{
    Bytes b = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    if (vlan) b.insert(b.end(), {0x81, 0x00, 0x00, 0x07});
    if (ipv6) {
        b.insert(b.end(), {0x86, 0xdd});
        Bytes ip(40, 0);
        ip[0] = 0x60;
        put16(&ip[4], static_cast<uint16_t>(l4.size()));
        ip[6] = proto;
        ip[7] = 64;
        ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x00, ip[11] = 0x02, ip[23] = 2; // 2001:2::2
        ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x00, ip[27] = 0x02, ip[39] = 1;
        b.insert(b.end(), ip.begin(), ip.end());
    } else {
        b.insert(b.end(), {0x08, 0x00});
        Bytes ip(20, 0);
        ip[0] = 0x45;
        put16(&ip[2], static_cast<uint16_t>(20 + l4.size()));
        put16(&ip[6], frag_field);
        ip[8] = 64;
        ip[9] = proto;
        ip[12] = 198, ip[13] = 18, ip[14] = 0, ip[15] = 2;
        ip[16] = 198, ip[17] = 18, ip[18] = 0, ip[19] = 1;
        b.insert(b.end(), ip.begin(), ip.end());
    }
    b.insert(b.end(), l4.begin(), l4.end());
    return b;
}

// A TCP segment: 20-byte header (ports, seq, ACK|PSH) and `payload_len`
// bytes of an odd-length-friendly pattern.
Bytes tcp_segment(std::size_t payload_len)
{
    Bytes t(20, 0);
    put16(&t[0], 7001);
    put16(&t[2], 40000);
    t[7] = 1;
    t[12] = 5 << 4;
    t[13] = 0x18;
    put16(&t[14], 65535);
    for (std::size_t i = 0; i < payload_len; ++i)
        t.push_back(static_cast<uint8_t>(i * 31 + 7));
    return t;
}

class ChecksumOffload : public ::testing::Test {
protected:
    rte_mbuf* mbuf_of(const Bytes& b)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(environment->pool().get());
        EXPECT_NE(m, nullptr);
        if (!b.empty()) std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(b.size())), b.data(), b.size());
        held_.push_back(m);
        return m;
    }
    void TearDown() override
    {
        for (rte_mbuf* m : held_)
            rte_pktmbuf_free(m);
        EXPECT_EQ(rte_mempool_in_use_count(environment->pool().get()), 0u);
    }

    // What a port does with the marks, then whether the frame verifies.
    static void sum_as_the_port_does(rte_mbuf* m)
    {
        uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
        uint8_t* l3 = p + m->l2_len;
        if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
            ASSERT_EQ(get16(l3 + 10), 0) << "the IPv4 checksum field must be zero for the port";
            put16(l3 + 10, static_cast<uint16_t>(~fold(add_words(l3, m->l3_len))));
        }
        if ((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM) {
            uint8_t* l4 = l3 + m->l3_len;
            const std::size_t l4_len = rte_pktmbuf_data_len(m) - m->l2_len - m->l3_len;
            // The field holds the pseudo-header sum; the port adds the segment.
            put16(l4 + 16, static_cast<uint16_t>(~fold(add_words(l4, l4_len))));
        }
    }
    static bool ipv4_header_verifies(const rte_mbuf* m)
    {
        const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
        return fold(add_words(l3, 20)) == 0xffff;
    }
    // Pseudo-header (RFC 9293 3.1 / RFC 8200 8.1) plus the segment.
    static bool tcp_verifies(const rte_mbuf* m, bool ipv6)
    {
        const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
        const std::size_t l4_len = rte_pktmbuf_data_len(m) - m->l2_len - m->l3_len;
        uint32_t sum = ipv6 ? add_words(l3 + 8, 32) : add_words(l3 + 12, 8);
        sum += kTcp + static_cast<uint32_t>(l4_len);
        sum = add_words(l3 + m->l3_len, l4_len, sum);
        return fold(sum) == 0xffff;
    }

    std::vector<rte_mbuf*> held_;
};

TEST_F(ChecksumOffload, TheOffloadsAPortGrantedBecomeTheChecksumsLwipLeavesOut)
{
    const TxChecksums none = ringsock::stack::tx_checksums_from_offloads(0);
    EXPECT_FALSE(none.ipv4);
    EXPECT_FALSE(none.tcp);
    const TxChecksums all = ringsock::stack::tx_checksums_from_offloads(
        RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
    EXPECT_TRUE(all.ipv4);
    EXPECT_TRUE(all.tcp);
    const TxChecksums tcp_only = ringsock::stack::tx_checksums_from_offloads(RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
    EXPECT_FALSE(tcp_only.ipv4);
    EXPECT_TRUE(tcp_only.tcp);
}

TEST_F(ChecksumOffload, Ipv4TcpIsMarkedForBothSumsAndVerifiesAfterThePortSums)
{
    for (std::size_t payload : {0u, 1u, 1459u, 1460u}) {
        rte_mbuf* m = mbuf_of(frame(false, kTcp, tcp_segment(payload)));
        const auto marks = mark_tx_checksums(m, {.ipv4 = true, .tcp = true});
        EXPECT_TRUE(marks.ipv4);
        EXPECT_TRUE(marks.tcp);
        EXPECT_EQ(m->l2_len, 14u);
        EXPECT_EQ(m->l3_len, 20u);
        EXPECT_EQ(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6), RTE_MBUF_F_TX_IPV4);
        EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
        EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_TCP_CKSUM);
        EXPECT_FALSE(tcp_verifies(m, false)) << "nothing is summed before the port does it";
        sum_as_the_port_does(m);
        EXPECT_TRUE(ipv4_header_verifies(m)) << payload;
        EXPECT_TRUE(tcp_verifies(m, false)) << payload;
    }
}

TEST_F(ChecksumOffload, Ipv6TcpIsMarkedForTcpWithTheIpv6PseudoHeader)
{
    rte_mbuf* m = mbuf_of(frame(true, kTcp, tcp_segment(1001)));
    const auto marks = mark_tx_checksums(m, {.ipv4 = true, .tcp = true});
    EXPECT_FALSE(marks.ipv4);
    EXPECT_TRUE(marks.tcp);
    EXPECT_EQ(m->l3_len, 40u);
    EXPECT_EQ(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_IP_CKSUM), RTE_MBUF_F_TX_IPV6);
    sum_as_the_port_does(m);
    EXPECT_TRUE(tcp_verifies(m, true));
}

TEST_F(ChecksumOffload, AVlanTagIsCountedInTheL2Length)
{
    rte_mbuf* m = mbuf_of(frame(false, kTcp, tcp_segment(100), true));
    ASSERT_TRUE(mark_tx_checksums(m, {.ipv4 = true, .tcp = true}).tcp);
    EXPECT_EQ(m->l2_len, 18u);
    sum_as_the_port_does(m);
    EXPECT_TRUE(ipv4_header_verifies(m));
    EXPECT_TRUE(tcp_verifies(m, false));
}

TEST_F(ChecksumOffload, OnlyWhatThePortOffersIsMarked)
{
    rte_mbuf* tcp_only = mbuf_of(frame(false, kTcp, tcp_segment(10)));
    const auto a = mark_tx_checksums(tcp_only, {.ipv4 = false, .tcp = true});
    EXPECT_FALSE(a.ipv4);
    EXPECT_TRUE(a.tcp);
    EXPECT_FALSE(tcp_only->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
    EXPECT_TRUE(tcp_only->ol_flags & RTE_MBUF_F_TX_IPV4) << "TCP offload needs the L3 type";

    rte_mbuf* ip_only = mbuf_of(frame(false, kTcp, tcp_segment(10)));
    const auto b = mark_tx_checksums(ip_only, {.ipv4 = true, .tcp = false});
    EXPECT_TRUE(b.ipv4);
    EXPECT_FALSE(b.tcp);
    EXPECT_EQ(ip_only->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0u);

    rte_mbuf* neither = mbuf_of(frame(false, kTcp, tcp_segment(10)));
    EXPECT_FALSE(mark_tx_checksums(neither, {}).any());
    EXPECT_EQ(neither->ol_flags, 0u);
}

TEST_F(ChecksumOffload, UdpAndIcmpKeepLwipsSumsAndGetOnlyTheIpv4Header)
{
    Bytes udp(8 + 32, 0xab);
    put16(&udp[4], 40);
    put16(&udp[6], 0x1234); // lwIP's own sum, left alone
    rte_mbuf* u = mbuf_of(frame(false, kUdp, udp));
    const auto mu = mark_tx_checksums(u, {.ipv4 = true, .tcp = true});
    EXPECT_TRUE(mu.ipv4);
    EXPECT_FALSE(mu.tcp);
    EXPECT_EQ(u->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0u);
    EXPECT_EQ(get16(rte_pktmbuf_mtod_offset(u, const uint8_t*, 34 + 6)), 0x1234);

    rte_mbuf* icmp6 = mbuf_of(frame(true, 58, Bytes(16, 1)));
    EXPECT_FALSE(mark_tx_checksums(icmp6, {.ipv4 = true, .tcp = true}).any());
    EXPECT_EQ(icmp6->ol_flags, 0u);

    rte_mbuf* icmp = mbuf_of(frame(false, kIcmp, Bytes(16, 1)));
    EXPECT_TRUE(mark_tx_checksums(icmp, {.ipv4 = true, .tcp = true}).ipv4);
    sum_as_the_port_does(icmp);
    EXPECT_TRUE(ipv4_header_verifies(icmp));
}

TEST_F(ChecksumOffload, AnIpv4FragmentIsNeverMarkedForItsL4Sum)
{
    // More-fragments set, and a later fragment: the port sees a piece only.
    for (uint16_t frag : {uint16_t{0x2000}, uint16_t{0x00b9}}) {
        rte_mbuf* m = mbuf_of(frame(false, kTcp, tcp_segment(64), false, frag));
        const auto marks = mark_tx_checksums(m, {.ipv4 = true, .tcp = true});
        EXPECT_TRUE(marks.ipv4);
        EXPECT_FALSE(marks.tcp);
        EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0u);
    }
}

TEST_F(ChecksumOffload, FramesItCannotParseAreLeftUnmarked)
{
    Bytes arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 2, 0x08, 0x06};
    arp.resize(42, 0);
    rte_mbuf* a = mbuf_of(arp);
    EXPECT_FALSE(mark_tx_checksums(a, {.ipv4 = true, .tcp = true}).any());
    EXPECT_EQ(a->ol_flags, 0u);

    // Every prefix of an IPv4/TCP frame short of the TCP header: no mark
    // that would send the port past the end, and no read past it (ASan).
    const Bytes whole = frame(false, kTcp, tcp_segment(0));
    for (std::size_t len = 0; len < whole.size(); ++len) {
        rte_mbuf* m = mbuf_of(Bytes(whole.begin(), whole.begin() + static_cast<long>(len)));
        const auto marks = mark_tx_checksums(m, {.ipv4 = true, .tcp = true});
        EXPECT_FALSE(marks.tcp) << len;
        EXPECT_EQ(marks.ipv4, len >= 34) << len;
    }
    // An IHL below 5 is no header.
    Bytes bad_ihl = whole;
    bad_ihl[14] = 0x44;
    EXPECT_FALSE(mark_tx_checksums(mbuf_of(bad_ihl), {.ipv4 = true, .tcp = true}).any());
}

TEST_F(ChecksumOffload, TheReceiveVerdictFollowsThePmdsFlags)
{
    rte_mbuf* m = mbuf_of(frame(false, kTcp, tcp_segment(10)));
    m->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_TCP;
    auto verdict = [&](uint64_t flags) {
        m->ol_flags = flags;
        return rx_checksum_verdict(m);
    };
    EXPECT_FALSE(verdict(0).ip_verified); // UNKNOWN: lwIP checks
    EXPECT_FALSE(verdict(0).l4_verified);
    EXPECT_TRUE(verdict(RTE_MBUF_F_RX_IP_CKSUM_GOOD).ip_verified);
    EXPECT_FALSE(verdict(RTE_MBUF_F_RX_IP_CKSUM_GOOD).l4_verified);
    EXPECT_TRUE(verdict(RTE_MBUF_F_RX_IP_CKSUM_NONE).ip_verified);
    EXPECT_FALSE(verdict(RTE_MBUF_F_RX_IP_CKSUM_BAD).ip_verified);
    EXPECT_TRUE(verdict(RTE_MBUF_F_RX_L4_CKSUM_GOOD).l4_verified);
    EXPECT_TRUE(verdict(RTE_MBUF_F_RX_L4_CKSUM_NONE).l4_verified);
    EXPECT_FALSE(verdict(RTE_MBUF_F_RX_L4_CKSUM_BAD).l4_verified);

    // A fragment's L4 flag never excuses the reassembled datagram's check.
    m->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_FRAG;
    const auto frag = verdict(RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD);
    EXPECT_TRUE(frag.ip_verified);
    EXPECT_FALSE(frag.l4_verified);
}

// The fast path's frame: every header field, the payload gathered from
// several pieces, and checksums that verify, summed here in software or
// (after the port does what the marks ask) by the port.
TEST_F(ChecksumOffload, FastPathUdpFramesVerifyWithAndWithoutOffload)
{
    for (bool offload : {false, true}) {
        for (std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{333}, std::size_t{1472}}) {
            Bytes payload(total);
            for (std::size_t i = 0; i < total; ++i)
                payload[i] = static_cast<uint8_t>(i * 13 + 1);
            const std::size_t cut = total / 3;
            const ringsock::stack::ConstSegment pieces[3] = {
                {payload.data(), cut}, {nullptr, 0}, {payload.data() + cut, total - cut}};
            ringsock::stack::Udp4Frame f;
            f.src_mac = {0x02, 0, 0, 0, 0, 0x02};
            f.dst_mac = {0x02, 0, 0, 0, 0, 0x01};
            f.src = {198, 18, 0, 2};
            f.dst = {198, 18, 0, 1};
            f.src_port = 7000;
            f.dst_port = 40000;
            f.ip_id = 0x1234;
            // Every header field is in the sums (they are composed from
            // the values, not read back): a TTL and a TOS of each kind.
            f.ttl = total % 2 == 0 ? 64 : 200;
            f.type_of_service = total < 300 ? 0 : 0xb9;
            f.offload_ipv4_checksum = offload;
            f.offload_udp_checksum = offload;
            rte_mbuf* m = ringsock::stack::build_udp4_frame(environment->pool().get(), f, pieces, 3, total);
            ASSERT_NE(m, nullptr);
            held_.push_back(m);
            ASSERT_EQ(rte_pktmbuf_pkt_len(m), 42 + total);
            const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
            EXPECT_EQ(Bytes(p, p + 12), (Bytes{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02}));
            EXPECT_EQ(get16(p + 12), 0x0800);
            const uint8_t* ip = p + 14;
            EXPECT_EQ(ip[0], 0x45);
            EXPECT_EQ(ip[1], f.type_of_service);
            EXPECT_EQ(get16(ip + 2), 28 + total);
            EXPECT_EQ(get16(ip + 4), 0x1234);
            EXPECT_EQ(get16(ip + 6), 0) << "not fragmented, DF clear";
            EXPECT_EQ(ip[8], f.ttl);
            EXPECT_EQ(ip[9], kUdp);
            EXPECT_EQ(Bytes(ip + 12, ip + 20), (Bytes{198, 18, 0, 2, 198, 18, 0, 1}));
            const uint8_t* udp = ip + 20;
            EXPECT_EQ(get16(udp), 7000);
            EXPECT_EQ(get16(udp + 2), 40000);
            EXPECT_EQ(get16(udp + 4), 8 + total);
            EXPECT_EQ(Bytes(udp + 8, udp + 8 + total), payload);
            EXPECT_EQ(m->l2_len, 14u);
            EXPECT_EQ(m->l3_len, 20u);
            if (offload) {
                EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_IPV4);
                EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
                EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_UDP_CKSUM);
                // What the port does: IPv4 over a zero field; UDP adds the
                // datagram's sum to the pseudo-header sum in its field.
                uint8_t* w = rte_pktmbuf_mtod(m, uint8_t*);
                ASSERT_EQ(get16(w + 24), 0);
                put16(w + 24, static_cast<uint16_t>(~fold(add_words(w + 14, 20))));
                put16(w + 34 + 6, static_cast<uint16_t>(~fold(add_words(w + 34, 8 + total))));
            } else {
                EXPECT_EQ(m->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK), 0u);
            }
            EXPECT_EQ(fold(add_words(ip, 20)), 0xffff) << "IPv4 header, offload " << offload;
            uint32_t sum = add_words(ip + 12, 8) + kUdp + static_cast<uint32_t>(8 + total);
            EXPECT_EQ(fold(add_words(udp, 8 + total, sum)), 0xffff)
                << "UDP, " << total << " bytes, offload " << offload;
            EXPECT_NE(get16(udp + 6), 0) << "a zero sum goes out as 0xffff (0 means none)";
        }
    }
}

// The same for IPv6: version, payload length, next header, hop limit and
// both addresses; the UDP checksum (mandatory in IPv6) over the 40-byte
// pseudo-header's addresses, summed here or by the port.
TEST_F(ChecksumOffload, FastPathUdp6FramesVerifyWithAndWithoutOffload)
{
    const Bytes src = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    const Bytes dst = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 0x22, 0x33, 0xff, 0xfe, 0x44, 0x55, 0x66};
    for (bool offload : {false, true}) {
        for (std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{333}, std::size_t{1452}}) {
            Bytes payload(total);
            for (std::size_t i = 0; i < total; ++i)
                payload[i] = static_cast<uint8_t>(i * 7 + 3);
            const std::size_t cut = total / 2;
            const ringsock::stack::ConstSegment pieces[2] = {{payload.data(), cut},
                                                             {payload.data() + cut, total - cut}};
            ringsock::stack::Udp6Frame f;
            f.src_mac = {0x02, 0, 0, 0, 0, 0x02};
            f.dst_mac = {0x02, 0, 0, 0, 0, 0x01};
            std::copy(src.begin(), src.end(), f.src.begin());
            std::copy(dst.begin(), dst.end(), f.dst.begin());
            f.src_port = 7000;
            f.dst_port = 40000;
            f.offload_udp_checksum = offload;
            rte_mbuf* m = ringsock::stack::build_udp6_frame(environment->pool().get(), f, pieces, 2, total);
            ASSERT_NE(m, nullptr);
            held_.push_back(m);
            ASSERT_EQ(rte_pktmbuf_pkt_len(m), 62 + total);
            const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
            EXPECT_EQ(Bytes(p, p + 12), (Bytes{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02}));
            EXPECT_EQ(get16(p + 12), 0x86dd);
            const uint8_t* ip = p + 14;
            EXPECT_EQ(Bytes(ip, ip + 4), (Bytes{0x60, 0, 0, 0})) << "version 6, class and flow label 0";
            EXPECT_EQ(get16(ip + 4), 8 + total);
            EXPECT_EQ(ip[6], kUdp);
            EXPECT_EQ(ip[7], 64);
            EXPECT_EQ(Bytes(ip + 8, ip + 24), src);
            EXPECT_EQ(Bytes(ip + 24, ip + 40), dst);
            const uint8_t* udp = ip + 40;
            EXPECT_EQ(get16(udp), 7000);
            EXPECT_EQ(get16(udp + 2), 40000);
            EXPECT_EQ(get16(udp + 4), 8 + total);
            EXPECT_EQ(Bytes(udp + 8, udp + 8 + total), payload);
            EXPECT_EQ(m->l2_len, 14u);
            EXPECT_EQ(m->l3_len, 40u);
            if (offload) {
                EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_IPV6);
                EXPECT_FALSE(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) << "IPv6 has no header checksum";
                EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_UDP_CKSUM);
                uint8_t* w = rte_pktmbuf_mtod(m, uint8_t*);
                put16(w + 54 + 6, static_cast<uint16_t>(~fold(add_words(w + 54, 8 + total))));
            } else {
                EXPECT_EQ(m->ol_flags & (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_L4_MASK), 0u);
            }
            uint32_t sum = add_words(ip + 8, 32) + kUdp + static_cast<uint32_t>(8 + total);
            EXPECT_EQ(fold(add_words(udp, 8 + total, sum)), 0xffff)
                << "UDP, " << total << " bytes, offload " << offload;
            EXPECT_NE(get16(udp + 6), 0) << "IPv6 forbids a zero UDP checksum";
        }
    }
}

TEST_F(ChecksumOffload, AFastPathFrameLargerThanAnMbufIsRefused)
{
    Bytes big(4000, 1);
    const ringsock::stack::ConstSegment piece{big.data(), big.size()};
    ringsock::stack::Udp4Frame f;
    EXPECT_EQ(ringsock::stack::build_udp4_frame(environment->pool().get(), f, &piece, 1, big.size()), nullptr);
    ringsock::stack::Udp6Frame f6;
    EXPECT_EQ(ringsock::stack::build_udp6_frame(environment->pool().get(), f6, &piece, 1, big.size()), nullptr);
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    environment = new EalEnvironment(kProfile, "test_cksum"); // gtest owns and deletes it
    ::testing::AddGlobalTestEnvironment(environment);
    return RUN_ALL_TESTS();
}
