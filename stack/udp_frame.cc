#include "stack/udp_frame.hh"

#include <cstddef>
#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "stack/ones_complement_sum.hh"

namespace ringsock::stack {

namespace {

// The checksums are summed from the values the builder writes, not read
// back from the frame: the headers were just stored a field at a time
// (bytes, 16-bit words, addresses), and the sum's wider loads across those
// narrower stores stalled store forwarding, most of the engine's time in
// build_udp4_frame in perf on the send path. The payload is summed from
// the caller's segments (payload_sum).

uint64_t ipv4_address_sum(const Ipv4Address& a) noexcept
{
    return wire_word(static_cast<uint16_t>(a[0] << 8 | a[1])) + wire_word(static_cast<uint16_t>(a[2] << 8 | a[3]));
}

// The payload's sum, from the caller's segments rather than from the
// frame: memcpy wrote the frame's copy with overlapping wide stores, which
// the sum's loads straddle (another store-forwarding stall). A segment
// that starts at an odd offset of the payload adds its bytes in the other
// halves of the 16-bit words: its sum, byte-swapped.
uint64_t payload_sum(const ConstSegment* segments, std::size_t count) noexcept
{
    uint64_t sum = 0;
    std::size_t offset = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (segments[i].length == 0) continue;
        const uint64_t own = ones_complement_add(segments[i].data, segments[i].length, 0);
        sum += offset % 2 == 0 ? own : rte_bswap16(ones_complement_fold(own));
        offset += segments[i].length;
    }
    return sum;
}

// The UDP checksum over the pseudo-header, the header write_udp() wrote and
// the payload (its sum). A zero sum goes out as 0xffff: zero means "no
// checksum" (and IPv6 forbids it).
uint16_t udp_checksum(uint64_t pseudo, uint16_t src_port, uint16_t dst_port, uint64_t payload,
                      std::size_t total) noexcept
{
    const auto udp_length = static_cast<uint16_t>(8 + total);
    const uint64_t header = wire_word(src_port) + wire_word(dst_port) + wire_word(udp_length);
    const auto checksum = static_cast<uint16_t>(~ones_complement_fold(ones_complement_add64(pseudo + header, payload)));
    return checksum == 0 ? 0xffff : checksum;
}

// An mbuf from `pool` holding `headers` + `total` bytes with the payload
// gathered behind the headers, which the caller writes; null when the pool
// is empty or it does not fit one mbuf.
uint8_t* frame_with_payload(rte_mempool* pool, std::size_t headers, const ConstSegment* segments, std::size_t count,
                            std::size_t total, rte_mbuf*& m) noexcept
{
    m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return nullptr;
    const std::size_t length = headers + total;
    auto* p = reinterpret_cast<uint8_t*>(length <= rte_pktmbuf_tailroom(m) ? rte_pktmbuf_append(m, length) : nullptr);
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        m = nullptr;
        return nullptr;
    }
    uint8_t* payload = p + headers;
    for (std::size_t i = 0; i < count; ++i) {
        if (segments[i].length == 0) continue;
        std::memcpy(payload, segments[i].data, segments[i].length);
        payload += segments[i].length;
    }
    return p;
}

void write_ethernet(uint8_t* p, const MacAddress& src, const MacAddress& dst, uint16_t type) noexcept
{
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, dst.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, src.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(type);
}

rte_udp_hdr* write_udp(uint8_t* p, uint16_t src_port, uint16_t dst_port, std::size_t total) noexcept
{
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p);
    udp->src_port = rte_cpu_to_be_16(src_port);
    udp->dst_port = rte_cpu_to_be_16(dst_port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + total));
    udp->dgram_cksum = 0;
    return udp;
}

} // namespace

rte_mbuf* build_udp4_frame(rte_mempool* pool, const Udp4Frame& f, const ConstSegment* segments, std::size_t count,
                           std::size_t total) noexcept
{
    rte_mbuf* m = nullptr;
    uint8_t* p = frame_with_payload(pool, kUdp4FrameHeaders, segments, count, total, m);
    if (p == nullptr) return nullptr;
    write_ethernet(p, f.src_mac, f.dst_mac, RTE_ETHER_TYPE_IPV4);

    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = f.type_of_service;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + 8 + total));
    ip->packet_id = rte_cpu_to_be_16(f.ip_id);
    ip->fragment_offset = 0; // DF clear, as Windows sends UDP
    ip->time_to_live = f.ttl;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    // By offset: the address of a packed member is a misaligned uint32_t*.
    std::memcpy(p + 14 + offsetof(rte_ipv4_hdr, src_addr), f.src.data(), 4);
    std::memcpy(p + 14 + offsetof(rte_ipv4_hdr, dst_addr), f.dst.data(), 4);
    rte_udp_hdr* udp = write_udp(p + 14 + 20, f.src_port, f.dst_port, total);

    m->l2_len = 14;
    m->l3_len = 20;
    const uint64_t addresses = ipv4_address_sum(f.src) + ipv4_address_sum(f.dst);
    if (f.offload_ipv4_checksum || f.offload_udp_checksum) m->ol_flags |= RTE_MBUF_F_TX_IPV4;
    if (f.offload_ipv4_checksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    } else {
        const uint64_t header = wire_word(static_cast<uint16_t>(RTE_IPV4_VHL_DEF << 8 | f.type_of_service)) +
                                wire_word(static_cast<uint16_t>(20 + 8 + total)) + wire_word(f.ip_id) +
                                wire_word(static_cast<uint16_t>(f.ttl << 8 | IPPROTO_UDP)) + addresses;
        ip->hdr_checksum = static_cast<uint16_t>(~ones_complement_fold(header)); // as rte_ipv4_cksum
    }
    const uint64_t pseudo = addresses + pseudo_header_tail_sum(IPPROTO_UDP, static_cast<uint32_t>(8 + total));
    if (f.offload_udp_checksum) {
        m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = ones_complement_fold(pseudo); // as rte_ipv4_phdr_cksum: the port adds the rest
    } else {
        udp->dgram_cksum = udp_checksum(pseudo, f.src_port, f.dst_port, payload_sum(segments, count), total);
    }
    return m;
}

rte_mbuf* build_udp6_frame(rte_mempool* pool, const Udp6Frame& f, const ConstSegment* segments, std::size_t count,
                           std::size_t total) noexcept
{
    rte_mbuf* m = nullptr;
    uint8_t* p = frame_with_payload(pool, kUdp6FrameHeaders, segments, count, total, m);
    if (p == nullptr) return nullptr;
    write_ethernet(p, f.src_mac, f.dst_mac, RTE_ETHER_TYPE_IPV6);

    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | uint32_t{f.traffic_class} << 20); // flow label 0, as lwIP sends
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + total));
    ip->proto = IPPROTO_UDP;
    ip->hop_limits = f.hop_limit;
    std::memcpy(ip->src_addr, f.src.data(), 16);
    std::memcpy(ip->dst_addr, f.dst.data(), 16);
    rte_udp_hdr* udp = write_udp(p + 14 + 40, f.src_port, f.dst_port, total);

    m->l2_len = 14;
    m->l3_len = 40;
    // The addresses from the caller's frame description, not from the
    // header's copy of them just written.
    const uint64_t pseudo =
        ones_complement_add(f.dst.data(), f.dst.size(),
                            ones_complement_add(f.src.data(), f.src.size(),
                                                pseudo_header_tail_sum(IPPROTO_UDP, static_cast<uint32_t>(8 + total))));
    if (f.offload_udp_checksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = ones_complement_fold(pseudo); // as rte_ipv6_phdr_cksum: the port adds the rest
    } else {
        udp->dgram_cksum = udp_checksum(pseudo, f.src_port, f.dst_port, payload_sum(segments, count), total);
    }
    return m;
}

} // namespace ringsock::stack
