// The classifier's per-packet parse and its burst loop. Runs on the owning
// engine's lcore only (see classifier.hh). Every read of frame data is
// preceded by a check of that offset against the first segment's data_len;
// length fields are checked against pkt_len. Nothing here allocates.
#include "stack/classifier.hh"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>
#include <rte_prefetch.h>

#include "stack/headers.hh"
#include "stack/ones_complement_sum.hh"

namespace ringsock::stack {

using namespace wire;

namespace {

// At most this many hop-by-hop/destination-options/routing headers are
// walked before the upper-layer header: RFC 8200 allows one of each (two
// destination options with a routing header); more is an attack on parsers.
constexpr unsigned kMaxIpv6OptionHeaders = 4;
// mbuf l3_len is a 9-bit field: an IPv6 header chain longer than this
// cannot be described to the next stage, and no sane sender makes one.
constexpr uint32_t kMaxIpv6ChainLen = 511;
// Dropped frames are freed in batches of this size (one bulk free per batch).
constexpr uint16_t kFreeBatch = 32;

constexpr std::string_view kDropNames[kDropReasonCount] = {
    "truncated",         "bad_length", "bad_checksum",  "bad_version", "bad_header",
    "unknown_ethertype", "not_for_us", "vlan_mismatch", "no_socket",   "martian",
};

// Addresses that never arrive from a wire (RFC 1122 3.2.1.3, RFC 4291
// 2.5.3 and 2.7): loopback belongs to the host, a multicast or broadcast
// address is never a sender. lwIP would take some of them (its IPv6 check
// is compiled out with LWIP_NETIF_LOOPBACK, and it would answer ::1 into
// its own loopback queue) and the fast path would hand them to a socket as
// a peer. IPv4-mapped addresses on the wire (RFC 4942 2.2) would reach a
// dual-stack socket as an IPv4 peer no IPv4 packet came from. Only the
// first byte is read on the common path.
inline bool ipv4_martian(const uint8_t* l3) noexcept
{
    const uint8_t* src = l3 + kIpv4SrcOffset;
    return src[0] == 127 || (src[0] & 0xf0) == 0xe0 || load_raw32(src) == 0xffffffffu || l3[kIpv4DstOffset] == 127;
}

inline bool ipv6_loopback_or_mapped(const uint8_t* a) noexcept
{
    static constexpr uint8_t kLoopback[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (load_raw32(a) != 0) return false; // every global, link-local and multicast address
    return (std::memcmp(a, kLoopback, 12) == 0 && load_raw32(a + 12) == rte_cpu_to_be_32(1)) ||
           std::memcmp(a, kMapped, 12) == 0;
}

inline bool ipv6_martian(const uint8_t* l3) noexcept
{
    const uint8_t* src = l3 + kIpv6SrcOffset;
    return src[0] == 0xff || ipv6_loopback_or_mapped(src) || ipv6_loopback_or_mapped(l3 + kIpv6DstOffset);
}

// PMD verdict on a checksum: the two flag bits of one mask.
enum class Offload : uint8_t { unknown, bad, good };

inline Offload ip_offload(uint64_t ol) noexcept
{
    switch (ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_BAD:
        return Offload::bad;
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
    case RTE_MBUF_F_RX_IP_CKSUM_NONE:
        return Offload::good; // NONE: header integrity verified by the NIC
    default:
        return Offload::unknown;
    }
}

inline Offload l4_offload(uint64_t ol) noexcept
{
    switch (ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_BAD:
        return Offload::bad;
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
    case RTE_MBUF_F_RX_L4_CKSUM_NONE:
        return Offload::good;
    default:
        return Offload::unknown;
    }
}

// Ones'-complement sum of `len` bytes at `off` of a chained mbuf (the caller
// checked off + len <= pkt_len). Not rte_raw_cksum_mbuf: in DPDK 22.11 it
// truncates a segment's unreduced sum before byte-swapping it when the
// segment starts at an odd position, and gets such chains wrong.
uint32_t chained_sum(const rte_mbuf* m, uint32_t off, uint32_t len) noexcept
{
    const rte_mbuf* seg = m;
    while (seg != nullptr && off >= seg->data_len) {
        off -= seg->data_len;
        seg = seg->next;
    }
    uint32_t sum = 0;
    uint32_t done = 0;
    for (; seg != nullptr && done < len; seg = seg->next, off = 0) {
        const uint32_t n = std::min<uint32_t>(seg->data_len - off, len - done);
        uint32_t part =
            ones_complement_fold(ones_complement_add(rte_pktmbuf_mtod_offset(seg, const uint8_t*, off), n, 0));
        // A segment that starts at an odd byte of the datagram sums its
        // bytes in the other halves of each 16-bit word.
        if (done & 1) part = rte_bswap16(static_cast<uint16_t>(part));
        sum += part;
        done += n;
    }
    return sum;
}

// Ones'-complement check of a UDP datagram `ulen` bytes long at offset
// `l4_off`, with its pseudo-header. True when the sum comes to 0xffff.
bool udp_checksum_ok(const rte_mbuf* m, const uint8_t* l3, bool ipv6, uint32_t l4_off, uint16_t ulen,
                     uint32_t seg) noexcept
{
    uint64_t sum = ipv6 ? pseudo_header_sum(l3 + kIpv6SrcOffset, 2 * kIpv6AddrLen, kProtoUdp, ulen)
                        : pseudo_header_sum(l3 + kIpv4SrcOffset, 8, kProtoUdp, ulen);
    if (l4_off + ulen <= seg) {
        sum = ones_complement_add(rte_pktmbuf_mtod_offset(m, const uint8_t*, l4_off), ulen, sum);
    } else [[unlikely]] {
        sum = ones_complement_add64(sum, chained_sum(m, l4_off, ulen));
    }
    return ones_complement_fold(sum) == 0xffff;
}

} // namespace

std::string_view drop_reason_name(DropReason reason) noexcept
{
    const auto i = static_cast<std::size_t>(reason);
    return i < kDropReasonCount ? kDropNames[i] : std::string_view("unknown");
}

struct Classifier::Verdict {
    enum Kind : uint8_t { udp, lwip, drop };
    Kind kind;
    DropReason reason;

    static Verdict to_udp() noexcept { return {udp, DropReason::count_}; }
    static Verdict to_lwip() noexcept { return {lwip, DropReason::count_}; }
    // A frame for lwIP leaves with its header lengths and packet type
    // marked. The fast path's datagrams get the packet type only: the
    // lengths live in the mbuf's second cache line, which the PMD does not
    // write on receive, and writing it for every datagram cost the engine a
    // cache miss each (6-9 % of its 64-byte rate); UdpDatagram carries what
    // the fast path needs.
    static Verdict to_lwip(rte_mbuf* m, uint32_t l2_len, uint32_t l3_len, uint32_t l4_len,
                           uint32_t packet_type) noexcept
    {
        m->l2_len = l2_len;
        m->l3_len = l3_len;
        m->l4_len = l4_len;
        m->packet_type = packet_type;
        return to_lwip();
    }
    static Verdict dropped(DropReason r) noexcept { return {drop, r}; }
};

Classifier::Classifier(const ClassifierConfig& config)
{
    if (config.ipv4.size() > ClassifierConfig::kMaxAddresses)
        throw std::invalid_argument("classifier: more than " + std::to_string(ClassifierConfig::kMaxAddresses) +
                                    " IPv4 addresses in ipv4");
    if (config.ipv6.size() > ClassifierConfig::kMaxAddresses)
        throw std::invalid_argument("classifier: more than " + std::to_string(ClassifierConfig::kMaxAddresses) +
                                    " IPv6 addresses in ipv6");
    for (const Ipv4Interface& i : config.ipv4) {
        if (i.prefix_len > 32)
            throw std::invalid_argument("classifier: ipv4 prefix_len " + std::to_string(i.prefix_len) + " is over 32");
        uint32_t addr;
        std::memcpy(&addr, i.address.data(), sizeof(addr));
        // /31 and /32 have no directed broadcast (RFC 3021): use the limited
        // broadcast, which is accepted anyway.
        uint32_t bcast = 0xffffffffu;
        if (i.prefix_len < 31) {
            const uint32_t host_mask = i.prefix_len == 0 ? 0xffffffffu : (0xffffffffu >> i.prefix_len);
            bcast = addr | rte_cpu_to_be_32(host_mask);
        }
        ipv4_addr_[ipv4_count_] = addr;
        ipv4_bcast_[ipv4_count_] = bcast;
        ++ipv4_count_;
    }
    for (const Ipv6Address& a : config.ipv6)
        ipv6_addr_[ipv6_count_++] = a;
    if (config.vlan && *config.vlan > kVlanIdMask)
        throw std::invalid_argument("classifier: vlan " + std::to_string(*config.vlan) + " is over 4095");
    if (config.outer_vlan && *config.outer_vlan > kVlanIdMask)
        throw std::invalid_argument("classifier: outer_vlan " + std::to_string(*config.outer_vlan) + " is over 4095");
    if (config.mac) {
        mac_ = *config.mac;
        check_mac_ = true;
    }
    software_checksums_ = config.software_checksums;
    unbound_udp_to_lwip_ = config.unbound_udp_to_lwip;
    vlan_ = config.vlan ? int{*config.vlan} : -1;
    outer_vlan_ = config.outer_vlan ? int{*config.outer_vlan} : -1;
}

bool Classifier::vlan_accepted(const uint16_t* vids, unsigned count) const noexcept
{
    // VID 0 is a priority tag (802.1p), not a VLAN: it does not take part.
    uint16_t real[2];
    unsigned k = 0;
    for (unsigned i = 0; i < count; ++i)
        if (vids[i] != 0) real[k++] = vids[i];
    if (k == 0) return true;
    if (k == 1) return vlan_ >= 0 && real[0] == vlan_;
    return outer_vlan_ >= 0 && vlan_ >= 0 && real[0] == outer_vlan_ && real[1] == vlan_;
}

bool Classifier::ipv4_is_ours(const uint8_t* dst_bytes, bool& multicast) const noexcept
{
    const uint32_t dst = load_raw32(dst_bytes);
    multicast = dst == 0xffffffffu || (dst_bytes[0] & 0xf0) == 0xe0; // limited broadcast, 224.0.0.0/4
    if (multicast || ipv4_count_ == 0) return true;
    for (unsigned i = 0; i < ipv4_count_; ++i) {
        if (dst == ipv4_addr_[i]) return true;
        if (dst == ipv4_bcast_[i]) {
            multicast = true;
            return true;
        }
    }
    return false;
}

// A sender posing as us, or as our subnet's broadcast: answering it would
// answer ourselves (an echo to its own address loops through lwIP's
// loopback for ever; a SYN from our own address and port is the LAND
// attack), so Linux calls it a martian unless accept_local is set. And 0/8
// is a source only while a host learns its address (RFC 1122 3.2.1.3:
// DHCP's discover, an IGMP querier with none), so only to a broadcast or
// group. With no address configured nothing is known to be ours.
bool Classifier::ipv4_from_ourselves(const uint8_t* src_bytes, bool to_group) const noexcept
{
    if (src_bytes[0] == 0) return !to_group;
    const uint32_t src = load_raw32(src_bytes);
    for (unsigned i = 0; i < ipv4_count_; ++i)
        if (src == ipv4_addr_[i] || src == ipv4_bcast_[i]) return true;
    return false;
}

bool Classifier::ipv6_is_ours(const uint8_t* dst) const noexcept
{
    return ipv6_count_ == 0 || ipv6_is_one_of_ours(dst);
}

bool Classifier::ipv6_is_one_of_ours(const uint8_t* address) const noexcept
{
    for (unsigned i = 0; i < ipv6_count_; ++i)
        if (std::memcmp(address, ipv6_addr_[i].data(), kIpv6AddrLen) == 0) return true;
    return false;
}

Classifier::Verdict Classifier::classify_one(rte_mbuf* m, UdpDatagram& out, Arrival arrival) noexcept
{
    const uint8_t* const p = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint32_t pkt = rte_pktmbuf_pkt_len(m);
    // Headers are parsed only within the first segment; never trust a
    // data_len larger than the packet.
    const uint32_t seg = std::min<uint32_t>(rte_pktmbuf_data_len(m), pkt);
    const uint64_t ol = m->ol_flags;

    // --- Ethernet and VLAN tags
    if (seg < kEthHeaderLen) [[unlikely]]
        return Verdict::dropped(DropReason::truncated);
    if (check_mac_ && (p[kEthDstOffset] & 1) == 0 && std::memcmp(p + kEthDstOffset, mac_.data(), kMacLen) != 0)
        [[unlikely]]
        return Verdict::dropped(DropReason::not_for_us);

    uint16_t type = load_be16(p + kEthTypeOffset);
    uint32_t off = kEthHeaderLen;
    uint16_t vids[2];
    unsigned nvid = 0;
    if (ol & (RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED)) [[unlikely]] {
        // The NIC took the tags off; they still have to match.
        if (ol & RTE_MBUF_F_RX_QINQ_STRIPPED) vids[nvid++] = m->vlan_tci_outer & kVlanIdMask;
        vids[nvid++] = m->vlan_tci & kVlanIdMask;
    }
    unsigned frame_tags = 0;
    while (type == kEtherTypeVlan || type == kEtherTypeQinq)
        [[unlikely]]
        {
            if (nvid == 2) return Verdict::dropped(DropReason::vlan_mismatch); // a third tag
            if (off + kVlanTagLen > seg) return Verdict::dropped(DropReason::truncated);
            vids[nvid++] = load_be16(p + off) & kVlanIdMask;
            type = load_be16(p + off + 2);
            off += kVlanTagLen;
            ++frame_tags;
        }
    if (nvid != 0 && !vlan_accepted(vids, nvid)) [[unlikely]]
        return Verdict::dropped(DropReason::vlan_mismatch);
    const uint32_t l2_ptype = frame_tags == 0   ? RTE_PTYPE_L2_ETHER
                              : frame_tags == 1 ? RTE_PTYPE_L2_ETHER_VLAN
                                                : RTE_PTYPE_L2_ETHER_QINQ;
    const uint8_t* const l3 = p + off;
    const uint32_t l3_seg = seg - off;   // bytes of L3 and above in the first segment
    const uint32_t l3_frame = pkt - off; // ... in the whole frame

    // Results of the L3 parse, consumed by the shared L4 part below.
    bool ipv6;
    bool multicast;
    uint8_t proto;
    uint32_t l4_off;   // from p
    uint32_t l4_total; // bytes of L4 per the IP length fields
    uint32_t l3_ptype;
    uint32_t l3_len = 0; // IP header and its options or extension headers

    if (type == kEtherTypeIpv4) [[likely]] {
        if (l3_seg < kIpv4MinHeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        if ((l3[0] >> 4) != 4) [[unlikely]]
            return Verdict::dropped(DropReason::bad_version);
        const uint32_t ihl = uint32_t{l3[0] & 0x0fu} * 4;
        if (ihl < kIpv4MinHeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::bad_header);
        if (ihl > l3_frame) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (ihl > l3_seg) [[unlikely]]
            return Verdict::dropped(DropReason::truncated); // options continue in the next segment
        const uint32_t total = load_be16(l3 + kIpv4TotalLenOffset);
        if (total < ihl || total > l3_frame) [[unlikely]] // shorter than the frame is Ethernet padding
            return Verdict::dropped(DropReason::bad_length);
        const Offload ipck = ip_offload(ol);
        if (ipck == Offload::bad) [[unlikely]]
            return Verdict::dropped(DropReason::bad_checksum);
        if (ipck == Offload::unknown && software_checksums_ &&
            ones_complement_fold(ones_complement_add(l3, ihl, 0)) != 0xffff) [[unlikely]]
            return Verdict::dropped(DropReason::bad_checksum);
        if (ipv4_martian(l3)) [[unlikely]]
            return Verdict::dropped(DropReason::martian);
        if (!ipv4_is_ours(l3 + kIpv4DstOffset, multicast)) [[unlikely]]
            return Verdict::dropped(DropReason::not_for_us);
        if (arrival == Arrival::wire && ipv4_from_ourselves(l3 + kIpv4SrcOffset, multicast)) [[unlikely]]
            return Verdict::dropped(DropReason::martian);
        l3_len = ihl;
        l3_ptype = ihl == kIpv4MinHeaderLen ? RTE_PTYPE_L3_IPV4 : RTE_PTYPE_L3_IPV4_EXT;
        if (load_be16(l3 + kIpv4FragOffset) & (kIpv4MfFlag | kIpv4FragOffsetMask)) [[unlikely]] {
            // Reassembly is lwIP's (bounded memory, timeouts, counted drops).
            return Verdict::to_lwip(m, off, l3_len, 0, l2_ptype | l3_ptype | RTE_PTYPE_L4_FRAG);
        }
        ipv6 = false;
        proto = l3[kIpv4ProtocolOffset];
        l4_off = off + ihl;
        l4_total = total - ihl;
    } else if (type == kEtherTypeIpv6) {
        if (l3_seg < kIpv6HeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        if ((l3[0] >> 4) != 6) [[unlikely]]
            return Verdict::dropped(DropReason::bad_version);
        const uint32_t payload = load_be16(l3 + kIpv6PayloadLenOffset);
        if (kIpv6HeaderLen + payload > l3_frame) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (ipv6_martian(l3)) [[unlikely]]
            return Verdict::dropped(DropReason::martian);
        const uint8_t* dst = l3 + kIpv6DstOffset;
        multicast = dst[0] == 0xff; // ff00::/8, which includes solicited-node and all-nodes
        if (!multicast && !ipv6_is_ours(dst)) [[unlikely]]
            return Verdict::dropped(DropReason::not_for_us);

        // Walk hop-by-hop and destination options headers, and routing
        // headers with no segments left, bounded. A routing header with
        // segments left and a fragment header end the walk: lwIP acts on
        // those. With none left this node is the path's last (an SRv6 end
        // node that keeps the segment routing header): RFC 8200 4.4 says to
        // ignore the header, whatever its type, and go on to the next.
        uint8_t next = l3[kIpv6NextHeaderOffset];
        uint32_t h = off + kIpv6HeaderLen; // current header, from p
        uint32_t remaining = payload;      // bytes of the payload after h
        bool unknown_option = false;
        unsigned walked = 0;
        while (next == kProtoHopByHop || next == kProtoDestOptions || next == kProtoRouting)
            [[unlikely]]
            {
                if (++walked > kMaxIpv6OptionHeaders) return Verdict::dropped(DropReason::bad_header);
                if (remaining < kIpv6ExtMinLen) return Verdict::dropped(DropReason::bad_length);
                if (h + kIpv6ExtMinLen > seg) return Verdict::dropped(DropReason::truncated);
                if (next == kProtoRouting && p[h + kIpv6RoutingSegmentsLeftOffset] != 0) break;
                const uint32_t len = (uint32_t{p[h + 1]} + 1) * 8;
                if (len > remaining) return Verdict::dropped(DropReason::bad_length);
                if (h + len > seg) return Verdict::dropped(DropReason::truncated);
                // Options: anything but padding (router alert, jumbo payload,
                // unknown types with their must-discard bits) is lwIP's to judge.
                // A routing header has none: its type-specific data is
                // skipped whole.
                if (next != kProtoRouting) {
                    const uint32_t end = h + len;
                    for (uint32_t o = h + 2; o < end;) {
                        const uint8_t opt = p[o];
                        if (opt == kIpv6OptPad1) {
                            ++o;
                            continue;
                        }
                        if (o + 2 > end || o + 2 + uint32_t{p[o + 1]} > end)
                            return Verdict::dropped(DropReason::bad_header);
                        if (opt != kIpv6OptPadN) unknown_option = true;
                        o += 2 + uint32_t{p[o + 1]};
                    }
                }
                next = p[h];
                h += len;
                remaining -= len;
                if (h - off > kMaxIpv6ChainLen) return Verdict::dropped(DropReason::bad_header);
            }
        // ICMPv6 from our own address stays lwIP's: duplicate address
        // detection hears of a duplicate from just such an advert.
        if (arrival == Arrival::wire && next != kProtoIcmpv6 && ipv6_is_one_of_ours(l3 + kIpv6SrcOffset)) [[unlikely]]
            return Verdict::dropped(DropReason::martian);
        l3_len = h - off;
        l3_ptype = h - off == kIpv6HeaderLen ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV6_EXT;
        if (next == kProtoFragment || next == kProtoRouting || unknown_option) [[unlikely]] {
            return Verdict::to_lwip(m, off, l3_len, 0,
                                    l2_ptype | RTE_PTYPE_L3_IPV6_EXT |
                                        (next == kProtoFragment ? RTE_PTYPE_L4_FRAG : RTE_PTYPE_L4_NONFRAG));
        }
        ipv6 = true;
        proto = next;
        l4_off = h;
        l4_total = remaining;
    } else if (type == kEtherTypeArp) {
        if (l3_seg < kArpFixedLen) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        // lwIP speaks Ethernet/IPv4 ARP only.
        if (l3[kArpHlenOffset] != kMacLen || l3[kArpPlenOffset] != 4) [[unlikely]]
            return Verdict::dropped(DropReason::bad_header);
        if (l3_seg < kArpFixedLen + 2u * (kMacLen + 4)) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        return Verdict::to_lwip(m, off, 0, 0, RTE_PTYPE_L2_ETHER_ARP);
    } else [[unlikely]] {
        return Verdict::dropped(DropReason::unknown_ethertype);
    }

    // --- L4, both families. l4_off + l4_total <= pkt by the checks above.
    const uint8_t* const l4 = p + l4_off;
    const Offload l4ck = l4_offload(ol);
    if (proto == kProtoUdp) [[likely]] {
        if (l4_total < kUdpHeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (l4_off + kUdpHeaderLen > seg) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        const uint16_t ulen = load_be16(l4 + kUdpLenOffset);
        if (ulen < kUdpHeaderLen || ulen > l4_total) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (l4ck == Offload::bad) [[unlikely]]
            return Verdict::dropped(DropReason::bad_checksum);
        const uint16_t stored = load_be16(l4 + kUdpChecksumOffset);
        if (ipv6 && stored == 0) [[unlikely]] // RFC 8200 8.1: mandatory over IPv6
            return Verdict::dropped(DropReason::bad_checksum);
        m->packet_type = l2_ptype | l3_ptype | RTE_PTYPE_L4_UDP;
        const uint16_t dport = load_be16(l4 + 2);
        if (!ports_.test(dport)) {
            if (multicast || !unbound_udp_to_lwip_) return Verdict::dropped(DropReason::no_socket);
            // lwIP checks its checksum and answers port unreachable.
            return Verdict::to_lwip(m, off, l3_len, kUdpHeaderLen, m->packet_type);
        }
        // Checked here only for the fast path: lwIP checks what it gets.
        if (l4ck == Offload::unknown && software_checksums_ && stored != 0 &&
            !udp_checksum_ok(m, l3, ipv6, l4_off, ulen, seg)) [[unlikely]]
            return Verdict::dropped(DropReason::bad_checksum);
        out.payload_offset = static_cast<uint16_t>(l4_off + kUdpHeaderLen);
        out.payload_length = static_cast<uint16_t>(ulen - kUdpHeaderLen);
        out.src_port = load_be16(l4);
        out.dst_port = dport;
        out.dst_multicast = multicast;
        std::memset(out.reserved_, 0, sizeof(out.reserved_));
        if (ipv6) {
            out.family = 6;
            std::memcpy(out.src.data(), l3 + kIpv6SrcOffset, kIpv6AddrLen);
            std::memcpy(out.dst.data(), l3 + kIpv6DstOffset, kIpv6AddrLen);
        } else {
            out.family = 4;
            out.src = {};
            out.dst = {};
            std::memcpy(out.src.data(), l3 + kIpv4SrcOffset, 4);
            std::memcpy(out.dst.data(), l3 + kIpv4DstOffset, 4);
        }
        return Verdict::to_udp();
    }
    if (proto == kProtoTcp) {
        if (l4_total < kTcpMinHeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (l4_off + kTcpMinHeaderLen > seg) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        const uint32_t doff = (uint32_t{l4[kTcpDataOffsetOffset]} >> 4) * 4;
        if (doff < kTcpMinHeaderLen) [[unlikely]]
            return Verdict::dropped(DropReason::bad_header);
        if (doff > l4_total) [[unlikely]]
            return Verdict::dropped(DropReason::bad_length);
        if (l4_off + doff > seg) [[unlikely]]
            return Verdict::dropped(DropReason::truncated);
        if (l4ck == Offload::bad) [[unlikely]]
            return Verdict::dropped(DropReason::bad_checksum);
        return Verdict::to_lwip(m, off, l3_len, doff, l2_ptype | l3_ptype | RTE_PTYPE_L4_TCP);
    }
    // ICMP, ICMPv6, IGMP and any other protocol: lwIP answers or discards
    // (protocol unreachable for what it does not know, as a host must).
    uint32_t l4_ptype = RTE_PTYPE_L4_NONFRAG;
    if (proto == kProtoIcmp || proto == kProtoIcmpv6)
        l4_ptype = RTE_PTYPE_L4_ICMP;
    else if (proto == kProtoIgmp)
        l4_ptype = RTE_PTYPE_L4_IGMP;
    return Verdict::to_lwip(m, off, l3_len, 0, l2_ptype | l3_ptype | l4_ptype);
}

ClassifiedBurst Classifier::classify(rte_mbuf* const* pkts, uint16_t n, UdpDatagram* udp, rte_mbuf** lwip,
                                     Arrival arrival) noexcept
{
    ClassifiedBurst r;
    rte_mbuf* dropped[kFreeBatch];
    uint16_t pending = 0;
    for (uint16_t i = 0; i < std::min<uint16_t>(n, kPrefetchDistance); ++i)
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
    for (uint16_t i = 0; i < n; ++i) {
        if (i + kPrefetchDistance < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchDistance], void*));
        rte_mbuf* m = pkts[i];
        // r.udp <= i < n: the slot exists; it is only kept when the verdict is udp.
        const Verdict v = classify_one(m, udp[r.udp], arrival);
        if (v.kind == Verdict::udp) [[likely]] {
            udp[r.udp++].mbuf = m;
        } else if (v.kind == Verdict::lwip) {
            lwip[r.lwip++] = m;
        } else {
            counters_.drop(v.reason).add(1);
            dropped[pending++] = m;
            ++r.dropped;
            if (pending == kFreeBatch) [[unlikely]] {
                rte_pktmbuf_free_bulk(dropped, pending);
                pending = 0;
            }
        }
    }
    if (pending != 0) rte_pktmbuf_free_bulk(dropped, pending);
    if (r.udp != 0) counters_.udp_fastpath.add(r.udp);
    if (r.lwip != 0) counters_.lwip.add(r.lwip);
    return r;
}

ClassifierSnapshot Classifier::snapshot() const noexcept
{
    ClassifierSnapshot s;
    s.udp_fastpath = counters_.udp_fastpath.get();
    s.lwip = counters_.lwip.get();
    for (std::size_t i = 0; i < kDropReasonCount; ++i)
        s.drops[i] = counters_.drops[i].get();
    return s;
}

uint16_t ClassifierHandler::on_burst(dataplane::Engine& engine, dataplane::RxQueueRef, rte_mbuf** pkts, uint16_t n)
{
    UdpDatagram udp[kChunk]; // written before read: classify fills what it reports
    rte_mbuf* lwip[kChunk];
    uint64_t dropped = 0;
    for (uint16_t done = 0; done < n;) {
        const uint16_t chunk = std::min<uint16_t>(kChunk, n - done);
        const ClassifiedBurst r = classifier_.classify(pkts + done, chunk, udp, lwip);
        if (r.udp != 0) udp_.on_udp(udp, r.udp);
        if (r.lwip != 0) lwip_.on_lwip(lwip, r.lwip);
        dropped += r.dropped;
        done += chunk;
    }
    if (dropped != 0) engine.counters().handler_drops.add(dropped);
    return 0;
}

} // namespace ringsock::stack
