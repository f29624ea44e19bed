// The UDP send fast path's frames: Ethernet, IPv4 or IPv6 and UDP headers
// and the payload gathered into one mbuf, checksums left to the port where
// it sums them (an unfragmented datagram: the port sees all of it) and
// computed here otherwise. The caller resolved the next hop's MAC
// (neighbour_cache.hh) and checked that the datagram fits the MTU and one
// mbuf.
//
// Any core; no state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/classifier.hh"
#include "stack/lwip_udp.hh"

struct rte_mbuf;
struct rte_mempool;

namespace ringsock::stack {

struct Udp4Frame {
    MacAddress src_mac{};
    MacAddress dst_mac{};
    Ipv4Address src{};
    Ipv4Address dst{};
    uint16_t src_port = 0; // host order
    uint16_t dst_port = 0;
    uint16_t ip_id = 0;
    uint8_t ttl = 64;
    uint8_t type_of_service = 0;        // DSCP << 2 | ECN
    bool offload_ipv4_checksum = false; // the port sums IPv4 headers
    bool offload_udp_checksum = false;  // the port sums UDP
};

// Bytes of headers in front of the payload.
inline constexpr std::size_t kUdp4FrameHeaders = 14 + 20 + 8;

struct Udp6Frame {
    MacAddress src_mac{};
    MacAddress dst_mac{};
    Ipv6Address src{};
    Ipv6Address dst{};
    uint16_t src_port = 0; // host order
    uint16_t dst_port = 0;
    uint8_t hop_limit = 64;
    uint8_t traffic_class = 0;         // DSCP << 2 | ECN
    bool offload_udp_checksum = false; // the port sums UDP (IPv6 has no header checksum)
};

inline constexpr std::size_t kUdp6FrameHeaders = 14 + 40 + 8;

// The frame in one mbuf from `pool`, or null when the pool is empty or
// `total` does not fit one mbuf's tailroom.
rte_mbuf* build_udp4_frame(rte_mempool* pool, const Udp4Frame& frame, const ConstSegment* segments, std::size_t count,
                           std::size_t total) noexcept;
rte_mbuf* build_udp6_frame(rte_mempool* pool, const Udp6Frame& frame, const ConstSegment* segments, std::size_t count,
                           std::size_t total) noexcept;

} // namespace ringsock::stack
