// Software RSS: the Toeplitz hash checked against the published example
// of Microsoft's RSS specification and against a bit-by-bit rendering of
// its pseudocode (tests/support/toeplitz.hh), over IPv4 and IPv6 4-tuples;
// and the redirection-table pick spreading hashes evenly and stably.
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "stack/software_rss.hh"
#include "tests/support/toeplitz.hh"

namespace {

using ringsock::stack::SoftwareRss;
using ringsock::stack::UdpDatagram;
using ringsock::testing::reference_toeplitz;

UdpDatagram datagram(uint8_t family, const std::vector<uint8_t>& src, const std::vector<uint8_t>& dst, uint16_t sport,
                     uint16_t dport)
{
    UdpDatagram d{};
    d.family = family;
    std::copy(src.begin(), src.end(), d.src.begin());
    std::copy(dst.begin(), dst.end(), d.dst.begin());
    d.src_port = sport;
    d.dst_port = dport;
    return d;
}

std::vector<uint8_t> tuple_bytes(const UdpDatagram& d)
{
    const std::size_t n = d.family == 6 ? 16 : 4;
    std::vector<uint8_t> in(d.src.begin(), d.src.begin() + static_cast<long>(n));
    in.insert(in.end(), d.dst.begin(), d.dst.begin() + static_cast<long>(n));
    in.push_back(static_cast<uint8_t>(d.src_port >> 8));
    in.push_back(static_cast<uint8_t>(d.src_port));
    in.push_back(static_cast<uint8_t>(d.dst_port >> 8));
    in.push_back(static_cast<uint8_t>(d.dst_port));
    return in;
}

TEST(SoftwareRss, MatchesTheSpecificationsExample)
{
    // "IPv4 with TCP" in Microsoft's verification table: source
    // 66.9.149.187:2794, destination 161.142.100.80:1766, default key.
    const SoftwareRss rss(SoftwareRss::kDefaultKey);
    const UdpDatagram d = datagram(4, {66, 9, 149, 187}, {161, 142, 100, 80}, 2794, 1766);
    EXPECT_EQ(rss.hash(d), 0x51ccc178u);
    EXPECT_EQ(reference_toeplitz(tuple_bytes(d), SoftwareRss::kDefaultKey), 0x51ccc178u);
    EXPECT_EQ(SoftwareRss::kDefaultKey, ringsock::testing::kToeplitzSpecKey);
}

TEST(SoftwareRss, AgreesWithThePseudocodeOverRandomTuplesAndKeys)
{
    std::mt19937 rng(20261123);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int round = 0; round < 200; ++round) {
        std::array<uint8_t, 40> key{};
        for (auto& b : key)
            b = static_cast<uint8_t>(byte(rng));
        const SoftwareRss rss(key);
        for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
            std::vector<uint8_t> src(family == 6 ? 16 : 4), dst(src.size());
            for (auto& b : src)
                b = static_cast<uint8_t>(byte(rng));
            for (auto& b : dst)
                b = static_cast<uint8_t>(byte(rng));
            const UdpDatagram d = datagram(family, src, dst, static_cast<uint16_t>(byte(rng) << 8 | byte(rng)),
                                           static_cast<uint16_t>(byte(rng) << 8 | byte(rng)));
            ASSERT_EQ(rss.hash(d), reference_toeplitz(tuple_bytes(d), key)) << "family " << int{family};
        }
    }
}

TEST(SoftwareRss, AKeyLongerThanFortyBytesUsesItsFirstForty)
{
    std::vector<uint8_t> long_key(SoftwareRss::kDefaultKey.begin(), SoftwareRss::kDefaultKey.end());
    long_key.resize(52, 0xee); // i40e's key length
    const UdpDatagram d = datagram(4, {198, 18, 0, 1}, {198, 18, 0, 2}, 40000, 7000);
    EXPECT_EQ(SoftwareRss(long_key).hash(d), SoftwareRss(SoftwareRss::kDefaultKey).hash(d));
    const std::vector<uint8_t> short_key(39, 1);
    EXPECT_THROW(SoftwareRss{short_key}, std::invalid_argument);
}

TEST(SoftwareRss, PickSpreadsFlowsEvenlyAndAFlowAlwaysToTheSameTarget)
{
    const SoftwareRss rss(SoftwareRss::kDefaultKey);
    for (unsigned targets : {1u, 2u, 3u, 4u, 8u}) {
        std::vector<unsigned> per_target(targets, 0);
        for (uint16_t sport = 10000; sport < 14096; ++sport) {
            const UdpDatagram d = datagram(4, {198, 18, 0, 1}, {198, 18, 0, 2}, sport, 7000);
            const unsigned t = SoftwareRss::pick(rss.hash(d), targets);
            ASSERT_LT(t, targets);
            ASSERT_EQ(SoftwareRss::pick(rss.hash(d), targets), t);
            ++per_target[t];
        }
        for (unsigned t = 0; t < targets; ++t) // 4096 flows: within 25 % of a fair share
            EXPECT_NEAR(per_target[t], 4096.0 / targets, 1024.0 / targets) << targets << " targets, target " << t;
    }
}

} // namespace
