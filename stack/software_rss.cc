#include "stack/software_rss.hh"

#include <cstring>
#include <stdexcept>
#include <string>

#include <rte_byteorder.h>
#include <rte_thash.h>

namespace ringsock::stack {

namespace {

uint32_t word_at(const uint8_t* p) noexcept
{
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return rte_be_to_cpu_32(v);
}

} // namespace

SoftwareRss::SoftwareRss(std::span<const uint8_t> key)
{
    if (key.size() < kKeyLen)
        throw std::invalid_argument("software RSS needs a key of at least " + std::to_string(kKeyLen) + " bytes; got " +
                                    std::to_string(key.size()));
    for (std::size_t i = 0; i < key_.size(); ++i)
        key_[i] = word_at(key.data() + 4 * i);
}

uint32_t SoftwareRss::hash(uint8_t family, const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst,
                           uint16_t src_port, uint16_t dst_port) const noexcept
{
    // Words in host order, first byte of the wire most significant: the
    // input rte_softrss_be expects with a key converted the same way.
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
    return rte_softrss_be(tuple, words, reinterpret_cast<const uint8_t*>(key_.data()));
}

} // namespace ringsock::stack
