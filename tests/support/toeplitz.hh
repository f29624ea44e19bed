// The Toeplitz hash as Microsoft's RSS specification writes it (ComputeHash:
// for each input bit from the left that is 1, XOR in the key's leftmost 32
// bits; shift the key left one bit), bit by bit and slow: the reference the
// tests hold ringsock's software RSS to. Header-only and free of DPDK, so
// tests built on the public Winsock header can use it too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringsock::testing {

// The specification's example key (also most NICs' default).
inline constexpr std::array<uint8_t, 40> kToeplitzSpecKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

inline uint32_t reference_toeplitz(const std::vector<uint8_t>& input, const std::array<uint8_t, 40>& key)
{
    uint32_t result = 0;
    for (std::size_t bit = 0; bit < input.size() * 8; ++bit) {
        if (!((input[bit / 8] >> (7 - bit % 8)) & 1)) continue;
        uint32_t window = 0;
        for (std::size_t k = 0; k < 32; ++k) {
            const std::size_t kb = bit + k;
            window = (window << 1) | ((key[kb / 8] >> (7 - kb % 8)) & 1u);
        }
        result ^= window;
    }
    return result;
}

// The input for a UDP or TCP 4-tuple over IPv4: source address, destination
// address, source port, destination port, as they sit in the packet.
inline std::vector<uint8_t> ipv4_tuple(const std::array<uint8_t, 4>& src, const std::array<uint8_t, 4>& dst,
                                       uint16_t src_port, uint16_t dst_port)
{
    std::vector<uint8_t> in(src.begin(), src.end());
    in.insert(in.end(), dst.begin(), dst.end());
    for (uint16_t port : {src_port, dst_port}) {
        in.push_back(static_cast<uint8_t>(port >> 8));
        in.push_back(static_cast<uint8_t>(port));
    }
    return in;
}

} // namespace ringsock::testing
