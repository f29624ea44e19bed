#include "stack/software_rss.hh"

#include <cstring>
#include <stdexcept>
#include <string>

#include <rte_byteorder.h>

namespace ringsock::stack {

namespace {

uint32_t word_at(const uint8_t* p) noexcept
{
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return rte_be_to_cpu_32(v);
}

// The 32 bits of the key that start at `bit` (bit 0: the first byte's most
// significant), the part of the key an input bit at that offset adds.
uint32_t key_window(std::span<const uint8_t> key, unsigned bit) noexcept
{
    uint64_t bits = 0;
    for (unsigned b = 0; b < 5; ++b)
        bits = (bits << 8) | key[bit / 8 + b];
    return static_cast<uint32_t>(bits >> (8 - bit % 8));
}

} // namespace

SoftwareRss::SoftwareRss(std::span<const uint8_t> key)
{
    if (key.size() < kKeyLen)
        throw std::invalid_argument("software RSS needs a key of at least " + std::to_string(kKeyLen) + " bytes; got " +
                                    std::to_string(key.size()));
    for (unsigned nibble = 0; nibble < kMaxInputNibbles; ++nibble) {
        for (unsigned value = 0; value < 16; ++value) {
            uint32_t sum = 0;
            for (unsigned b = 0; b < 4; ++b)
                if ((value & (8u >> b)) != 0) sum ^= key_window(key, 4 * nibble + b);
            by_nibble_[nibble][value] = sum;
        }
    }
}

uint32_t SoftwareRss::hash(uint8_t family, const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst,
                           uint16_t src_port, uint16_t dst_port) const noexcept
{
    // Words in host order, first byte of the wire most significant.
    uint32_t tuple[9];
    uint32_t words;
    const uint32_t ports = (uint32_t{src_port} << 16) | dst_port;
    if (family == 6) {
        for (int i = 0; i < 4; ++i) {
            tuple[i] = word_at(src.data() + 4 * i);
            tuple[4 + i] = word_at(dst.data() + 4 * i);
        }
        tuple[8] = ports;
        words = 9;
    } else {
        tuple[0] = word_at(src.data());
        tuple[1] = word_at(dst.data());
        tuple[2] = ports;
        words = 3;
    }
    uint32_t hash = 0;
    for (uint32_t w = 0; w < words; ++w) {
        // Written out: constant shifts and independent lookups.
        const auto* t = &by_nibble_[8 * w];
        const uint32_t v = tuple[w];
        hash ^= (t[0][v >> 28] ^ t[1][(v >> 24) & 0xf]) ^ (t[2][(v >> 20) & 0xf] ^ t[3][(v >> 16) & 0xf]) ^
                (t[4][(v >> 12) & 0xf] ^ t[5][(v >> 8) & 0xf]) ^ (t[6][(v >> 4) & 0xf] ^ t[7][v & 0xf]);
    }
    return hash;
}

} // namespace ringsock::stack
