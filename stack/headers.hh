// Wire-format constants and byte loads for the headers the classifier
// parses (Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6 and its extension
// headers, UDP, TCP), as offsets rather than packed structs: every field is
// read with memcpy from a pointer already checked against the segment's end,
// so nothing here depends on the alignment of the frame or on aliasing.
//
// Any core may use it; it holds no state. The loads do no bounds checking of
// their own: the caller proves `p + size <= end` first.
#pragma once

#include <cstdint>
#include <cstring>

namespace ringsock::stack::wire {

// Ethernet II without the FCS (PMDs strip it).
inline constexpr uint16_t kEthHeaderLen = 14;
inline constexpr uint16_t kEthDstOffset = 0;
inline constexpr uint16_t kEthTypeOffset = 12;
inline constexpr uint16_t kMacLen = 6;

// A VLAN tag as it sits after the addresses: TCI, then the next ethertype.
inline constexpr uint16_t kVlanTagLen = 4;
inline constexpr uint16_t kVlanIdMask = 0x0fff;

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100; // 802.1Q C-tag
inline constexpr uint16_t kEtherTypeQinq = 0x88a8; // 802.1ad S-tag
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

// ARP: the fixed part, then sender/target hardware and protocol addresses
// whose sizes the fixed part gives.
inline constexpr uint16_t kArpFixedLen = 8;
inline constexpr uint16_t kArpHlenOffset = 4;
inline constexpr uint16_t kArpPlenOffset = 5;

// IPv4 (RFC 791).
inline constexpr uint16_t kIpv4MinHeaderLen = 20;
inline constexpr uint16_t kIpv4TosOffset = 1; // DSCP (6 bits) + ECN (2)
inline constexpr uint16_t kIpv4TotalLenOffset = 2;
inline constexpr uint16_t kIpv4FragOffset = 6; // flags (3 bits) + fragment offset (13)
inline constexpr uint16_t kIpv4MfFlag = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1fff;
inline constexpr uint16_t kIpv4TtlOffset = 8;
inline constexpr uint16_t kIpv4ProtocolOffset = 9;
inline constexpr uint16_t kIpv4SrcOffset = 12;
inline constexpr uint16_t kIpv4DstOffset = 16;

// IPv6 (RFC 8200).
inline constexpr uint16_t kIpv6HeaderLen = 40;
inline constexpr uint16_t kIpv6PayloadLenOffset = 4;
inline constexpr uint16_t kIpv6NextHeaderOffset = 6;
inline constexpr uint16_t kIpv6HopLimitOffset = 7;
inline constexpr uint16_t kIpv6SrcOffset = 8;
inline constexpr uint16_t kIpv6DstOffset = 24;
inline constexpr uint16_t kIpv6AddrLen = 16;
inline constexpr uint16_t kIpv6ExtMinLen = 8; // next header, length, 6 bytes of options
// A routing header's segments left (RFC 8200 4.4), after its next header,
// length and routing type.
inline constexpr uint16_t kIpv6RoutingSegmentsLeftOffset = 3;

// IP protocol / IPv6 next-header numbers we tell apart.
inline constexpr uint8_t kProtoHopByHop = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIgmp = 2;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoRouting = 43;
inline constexpr uint8_t kProtoFragment = 44;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoDestOptions = 60;

// IPv6 option types inside hop-by-hop / destination options headers.
inline constexpr uint8_t kIpv6OptPad1 = 0;
inline constexpr uint8_t kIpv6OptPadN = 1;

// UDP (RFC 768) and TCP (RFC 9293).
inline constexpr uint16_t kUdpHeaderLen = 8;
inline constexpr uint16_t kUdpLenOffset = 4;
inline constexpr uint16_t kUdpChecksumOffset = 6;
inline constexpr uint16_t kTcpMinHeaderLen = 20;
inline constexpr uint16_t kTcpDataOffsetOffset = 12;

inline uint8_t load8(const uint8_t* p) noexcept
{
    return *p;
}

// Big-endian (network order) 16-bit field, returned in host order.
inline uint16_t load_be16(const uint8_t* p) noexcept
{
    return static_cast<uint16_t>((uint16_t{p[0]} << 8) | p[1]);
}

// A 32-bit field kept in network order (addresses are compared as stored).
inline uint32_t load_raw32(const uint8_t* p) noexcept
{
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

} // namespace ringsock::stack::wire
