#include "stack/checksum_offload.hh"

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>
#include <rte_tcp.h>

#include "stack/headers.hh"

namespace ringsock::stack {

using namespace wire;

TxChecksums tx_checksums_from_offloads(uint64_t tx_offloads) noexcept
{
    TxChecksums c;
    c.ipv4 = (tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
    c.tcp = (tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0;
    return c;
}

TxChecksumMarks mark_tx_checksums(rte_mbuf* m, TxChecksums offload) noexcept
{
    TxChecksumMarks marks;
    if (!offload.ipv4 && !offload.tcp) return marks;
    uint8_t* const p = rte_pktmbuf_mtod(m, uint8_t*);
    const uint32_t seg = rte_pktmbuf_data_len(m);
    if (seg < kEthHeaderLen) return marks;
    uint32_t off = kEthHeaderLen;
    uint16_t type = load_be16(p + kEthTypeOffset);
    // lwIP tags nothing today; a tag added later must not hide the IP header.
    for (int tags = 0; (type == kEtherTypeVlan || type == kEtherTypeQinq) && tags < 2; ++tags) {
        if (off + kVlanTagLen > seg) return marks;
        type = load_be16(p + off + 2);
        off += kVlanTagLen;
    }

    uint64_t flags = 0;
    uint32_t l3_len;
    uint8_t proto;
    bool fragment = false;
    if (type == kEtherTypeIpv4) {
        if (off + kIpv4MinHeaderLen > seg) return marks;
        l3_len = uint32_t{p[off] & 0x0fu} * 4;
        if (l3_len < kIpv4MinHeaderLen || off + l3_len > seg) return marks;
        proto = p[off + kIpv4ProtocolOffset];
        fragment = (load_be16(p + off + kIpv4FragOffset) & (kIpv4MfFlag | kIpv4FragOffsetMask)) != 0;
        flags |= RTE_MBUF_F_TX_IPV4;
        if (offload.ipv4) {
            flags |= RTE_MBUF_F_TX_IP_CKSUM;
            marks.ipv4 = true;
        }
    } else if (type == kEtherTypeIpv6) {
        if (off + kIpv6HeaderLen > seg) return marks;
        l3_len = kIpv6HeaderLen; // lwIP's TCP segments carry no extension headers
        proto = p[off + kIpv6NextHeaderOffset];
        flags |= RTE_MBUF_F_TX_IPV6;
    } else {
        return marks; // ARP
    }

    const uint32_t l4_off = off + l3_len;
    if (offload.tcp && proto == kProtoTcp && !fragment && l4_off + kTcpMinHeaderLen <= seg) {
        flags |= RTE_MBUF_F_TX_TCP_CKSUM;
        marks.tcp = true;
    }
    if (!marks.any()) return marks;

    m->l2_len = off;
    m->l3_len = l3_len;
    m->ol_flags |= flags;
    if (marks.tcp) {
        // The pseudo-header sum, not complemented, where the port adds the
        // segment's own sum; rte_*_phdr_cksum read the IP header's lengths.
        auto* tcp = reinterpret_cast<rte_tcp_hdr*>(p + l4_off);
        tcp->cksum = type == kEtherTypeIpv4
                         ? rte_ipv4_phdr_cksum(reinterpret_cast<const rte_ipv4_hdr*>(p + off), flags)
                         : rte_ipv6_phdr_cksum(reinterpret_cast<const rte_ipv6_hdr*>(p + off), flags);
    }
    if (marks.ipv4) reinterpret_cast<rte_ipv4_hdr*>(p + off)->hdr_checksum = 0;
    return marks;
}

RxChecksumVerdict rx_checksum_verdict(const rte_mbuf* m) noexcept
{
    const uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    const uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    RxChecksumVerdict v;
    v.ip_verified = ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD || ip == RTE_MBUF_F_RX_IP_CKSUM_NONE;
    // A fragment's L4 verdict (no PMD gives one) must not excuse the sum
    // lwIP checks over the datagram it reassembles from it.
    const bool fragment = (m->packet_type & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_FRAG;
    v.l4_verified = !fragment && (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD || l4 == RTE_MBUF_F_RX_L4_CKSUM_NONE);
    return v;
}

} // namespace ringsock::stack
