// What a classified datagram's IP header said, read again from its frame
// when an application asks for it (WSARecvMsg with IP_PKTINFO, IP_HOPLIMIT
// or IP_ECN and their IPv6 twins): the classifier does not keep it, as the
// socket queue's entry has no room for it and nearly no receive wants it.
#pragma once

#include <array>
#include <cstdint>

struct rte_mbuf;

namespace ringsock::stack {

struct DatagramIpHeader {
    std::array<uint8_t, 16> destination{}; // network order; IPv4 in the first 4 bytes, rest zero
    uint8_t hop_limit = 0;                 // IPv4's TTL or IPv6's hop limit
    uint8_t traffic_class = 0;             // IPv4's TOS byte or IPv6's traffic class: DSCP << 2 | ECN
    uint8_t ecn() const noexcept { return traffic_class & 3; }
};

// The IP header of the datagram in `m`, whose frame starts at
// rte_pktmbuf_mtod and whose payload at `payload_offset`, an IPv4
// (`family` 4) or IPv6 one. False when the frame does not hold that
// family's header before the payload.
bool read_datagram_ip_header(const rte_mbuf& m, uint16_t payload_offset, uint8_t family,
                             DatagramIpHeader& out) noexcept;

} // namespace ringsock::stack
