#include "stack/datagram_ip_header.hh"

#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>

#include "stack/headers.hh"

namespace ringsock::stack {

bool read_datagram_ip_header(const rte_mbuf& m, uint16_t payload_offset, uint8_t family, DatagramIpHeader& out) noexcept
{
    using namespace wire;
    // The headers the classifier read lie in the first segment, before the
    // payload; a tag the PMD stripped is not in the frame any more.
    const uint32_t end = std::min<uint32_t>(payload_offset, rte_pktmbuf_data_len(&m));
    const auto* frame = rte_pktmbuf_mtod(&m, const uint8_t*);
    uint32_t at = kEthTypeOffset;
    if (at + 2 > end) return false;
    uint16_t type = load_be16(frame + at);
    while (type == kEtherTypeVlan || type == kEtherTypeQinq) {
        at += kVlanTagLen;
        if (at + 2 > end) return false;
        type = load_be16(frame + at);
    }
    const uint8_t* l3 = frame + at + 2;
    const bool ipv4 = family == 4 && type == kEtherTypeIpv4;
    const bool ipv6 = family == 6 && type == kEtherTypeIpv6;
    if (!ipv4 && !ipv6) return false;
    // The destination ends each family's fixed header's reads.
    const uint32_t destination = ipv4 ? kIpv4DstOffset : kIpv6DstOffset;
    const uint32_t length = ipv4 ? 4 : kIpv6AddrLen;
    if (at + 2 + destination + length > end) return false;
    out.destination = {};
    std::memcpy(out.destination.data(), l3 + destination, length);
    if (ipv4) {
        out.hop_limit = l3[kIpv4TtlOffset];
        out.traffic_class = l3[kIpv4TosOffset];
    } else {
        out.hop_limit = l3[kIpv6HopLimitOffset];
        out.traffic_class = static_cast<uint8_t>((l3[0] & 0x0f) << 4 | l3[1] >> 4);
    }
    return true;
}

} // namespace ringsock::stack
