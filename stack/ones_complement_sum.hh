// The Internet checksum's ones'-complement sum (RFC 1071), eight bytes per
// step. DPDK 22.11's __rte_raw_cksum adds two bytes per step; where a
// port cannot check checksums (net_ring, memif, af_packet) the classifier
// verifies every datagram in software, and at 1472-byte payloads that loop
// was most of the engine's time per datagram.
//
// Sums are kept in host byte order exactly as rte_raw_cksum keeps them, so
// ones_complement_fold(ones_complement_add(p, n, 0)) == rte_raw_cksum(p, n)
// for every buffer (a 64-bit word is congruent to the sum of its four
// 16-bit words modulo 0xffff, and the end-around carry keeps that).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringsock::stack {

// a + b with the carry out of bit 63 added back in (ones' complement).
inline uint64_t ones_complement_add64(uint64_t a, uint64_t b) noexcept
{
    uint64_t r;
    const bool carry = __builtin_add_overflow(a, b, &r);
    return r + carry;
}

// Adds `len` bytes at `data` to the running sum `sum`. `data` must begin
// at an even byte of what is being summed (as a header or payload does).
//
// Each 8-byte word goes in as its two 32-bit halves, added into plain
// 64-bit accumulators: 2^32 is 1 modulo 0xffff, so the halves stand for the
// word, and no carry ever leaves an accumulator for a length below 2^33
// bytes (packets are at most 64 KiB). With no carry to chain through the
// flags, two accumulators add in parallel where one add-with-carry chain
// took two cycles per word (perf's hottest lines in the classifier): the
// 1514-byte replay's run-to-completion receive ran about 1.2x faster.
inline uint64_t ones_complement_add(const void* data, std::size_t len, uint64_t sum) noexcept
{
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t a = 0;
    uint64_t b = 0;
    for (; len >= 16; len -= 16, p += 16) {
        uint64_t w[2];
        std::memcpy(w, p, sizeof(w));
        a += (w[0] & 0xffffffffu) + (w[0] >> 32);
        b += (w[1] & 0xffffffffu) + (w[1] >> 32);
    }
    if (len >= 8) {
        uint64_t w;
        std::memcpy(&w, p, sizeof(w));
        a += (w & 0xffffffffu) + (w >> 32);
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t w;
        std::memcpy(&w, p, sizeof(w));
        b += w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        std::memcpy(&w, p, sizeof(w));
        a += w;
        p += 2;
        len -= 2;
    }
    if (len == 1) {
        // The odd byte is the first of a 16-bit word whose second is zero.
        uint16_t w = 0;
        std::memcpy(&w, p, 1);
        b += w;
    }
    return ones_complement_add64(sum, a + b);
}

// A big-endian 16-bit field as the sum holds it: its two bytes as they
// sit on the wire, read in host order (as rte_raw_cksum keeps sums). Lets a
// sender sum header fields from their values instead of reading back what
// it just wrote (a store-forwarding stall, see stack/udp_frame.cc).
inline uint64_t wire_word(uint16_t field) noexcept
{
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(field);
    return field;
}

// The running sum of a UDP or TCP pseudo-header (RFC 768; RFC 8200 8.1)
// past its addresses: the upper-layer length and protocol, laid out as
// IPv6 lays them out (for IPv4 the extra zero bytes change nothing).
inline uint64_t pseudo_header_tail_sum(uint8_t protocol, uint32_t length) noexcept
{
    return wire_word(static_cast<uint16_t>(length >> 16)) + wire_word(static_cast<uint16_t>(length)) +
           wire_word(protocol);
}

// The whole pseudo-header's running sum: `addresses` are the source and
// destination as they sit in the IP header (8 bytes for IPv4, 32 for
// IPv6); the order of the words does not matter to the sum.
inline uint64_t pseudo_header_sum(const void* addresses, std::size_t address_bytes, uint8_t protocol,
                                  uint32_t length) noexcept
{
    return ones_complement_add(addresses, address_bytes, pseudo_header_tail_sum(protocol, length));
}

// The running sum folded to 16 bits (not complemented), as rte_raw_cksum
// returns it: 0xffff for a correct checksum's total.
inline uint16_t ones_complement_fold(uint64_t sum) noexcept
{
    uint64_t s = (sum & 0xffffffffu) + (sum >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return static_cast<uint16_t>(s);
}

} // namespace ringsock::stack
