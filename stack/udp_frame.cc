#include "stack/udp_frame.hh"

#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "stack/ones_complement_sum.hh"

namespace ringsock::stack {

namespace {

// The UDP checksum in software (RFC 768), pseudo-header included, eight
// bytes per addition rather than rte_ipv4_udptcp_cksum's two. A zero sum
// goes out as 0xffff: zero means "no checksum".
uint16_t udp4_checksum(const rte_ipv4_hdr* ip, const rte_udp_hdr* udp, std::size_t udp_length) noexcept
{
    // The source and destination addresses, as they sit at offset 12.
    const uint64_t pseudo =
        pseudo_header_sum(reinterpret_cast<const uint8_t*>(ip) + 12, 8, IPPROTO_UDP, static_cast<uint32_t>(udp_length));
    const uint64_t sum = ones_complement_add(udp, udp_length, pseudo);
    const auto checksum = static_cast<uint16_t>(~ones_complement_fold(sum));
    return checksum == 0 ? 0xffff : checksum;
}

} // namespace

rte_mbuf* build_udp4_frame(rte_mempool* pool, const Udp4Frame& f, const ConstSegment* segments, std::size_t count,
                           std::size_t total) noexcept
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return nullptr;
    const std::size_t length = kUdp4FrameHeaders + total;
    auto* p = reinterpret_cast<uint8_t*>(length <= rte_pktmbuf_tailroom(m) ? rte_pktmbuf_append(m, length) : nullptr);
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, f.dst_mac.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, f.src_mac.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + 8 + total));
    ip->packet_id = rte_cpu_to_be_16(f.ip_id);
    ip->fragment_offset = 0; // DF clear, as Windows sends UDP
    ip->time_to_live = f.ttl;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    std::memcpy(&ip->src_addr, f.src.data(), 4);
    std::memcpy(&ip->dst_addr, f.dst.data(), 4);

    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 14 + 20);
    udp->src_port = rte_cpu_to_be_16(f.src_port);
    udp->dst_port = rte_cpu_to_be_16(f.dst_port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + total));
    udp->dgram_cksum = 0;

    uint8_t* payload = p + kUdp4FrameHeaders;
    for (std::size_t i = 0; i < count; ++i) {
        if (segments[i].length == 0) continue;
        std::memcpy(payload, segments[i].data, segments[i].length);
        payload += segments[i].length;
    }

    m->l2_len = 14;
    m->l3_len = 20;
    if (f.offload_ipv4_checksum || f.offload_udp_checksum) m->ol_flags |= RTE_MBUF_F_TX_IPV4;
    if (f.offload_ipv4_checksum)
        m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    else
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    if (f.offload_udp_checksum) {
        m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    } else {
        udp->dgram_cksum = udp4_checksum(ip, udp, 8 + total);
    }
    return m;
}

} // namespace ringsock::stack
