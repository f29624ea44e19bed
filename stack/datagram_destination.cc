#include "stack/datagram_destination.hh"

#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>

#include "stack/headers.hh"

namespace ringsock::stack {

bool datagram_destination(const rte_mbuf& m, uint16_t payload_offset, uint8_t family,
                          std::array<uint8_t, 16>& out) noexcept
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
    const uint32_t l3 = at + 2;
    const bool ipv4 = family == 4 && type == kEtherTypeIpv4;
    const bool ipv6 = family == 6 && type == kEtherTypeIpv6;
    if (!ipv4 && !ipv6) return false;
    const uint32_t offset = l3 + (ipv4 ? kIpv4DstOffset : kIpv6DstOffset);
    const uint32_t length = ipv4 ? 4 : kIpv6AddrLen;
    if (offset + length > end) return false;
    out = {};
    std::memcpy(out.data(), frame + offset, length);
    return true;
}

} // namespace ringsock::stack
