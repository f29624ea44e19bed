// stack/ones_complement_sum.hh against DPDK's rte_raw_cksum (the two-bytes-
// a-step sum it replaces on the receive path) and RFC 1071's example:
// every length around the 8- and 32-byte steps, every alignment, running
// sums split at even offsets, and the carries of all-ones data.
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_ip.h>

#include "stack/ones_complement_sum.hh"

namespace {

using ringsock::stack::ones_complement_add;
using ringsock::stack::ones_complement_fold;

uint16_t sum_of(const uint8_t* p, std::size_t n)
{
    return ones_complement_fold(ones_complement_add(p, n, 0));
}

TEST(OnesComplementSum, MatchesRfc1071sExample)
{
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to dd f2 (network order).
    const uint8_t bytes[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(rte_be_to_cpu_16(sum_of(bytes, sizeof(bytes))), 0xddf2);
}

TEST(OnesComplementSum, EqualsRteRawCksumForEveryLengthAndAlignment)
{
    std::mt19937 rng(20261205);
    std::vector<uint8_t> buffer(1600 + 8);
    for (uint8_t& b : buffer)
        b = static_cast<uint8_t>(rng());
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= 300; ++n)
        lengths.push_back(n);
    for (std::size_t n = 1400; n <= 1600; ++n)
        lengths.push_back(n);
    for (std::size_t align = 0; align < 8; ++align)
        for (std::size_t n : lengths)
            ASSERT_EQ(sum_of(buffer.data() + align, n), rte_raw_cksum(buffer.data() + align, n))
                << n << " bytes at alignment " << align;
}

TEST(OnesComplementSum, CarriesOfAllOnesAndAllZerosFoldLikeDpdks)
{
    const std::vector<uint8_t> ones(65535, 0xff), zeros(100, 0);
    for (std::size_t n : {1u, 2u, 7u, 8u, 9u, 32u, 33u, 1500u, 65535u})
        EXPECT_EQ(sum_of(ones.data(), n), rte_raw_cksum(ones.data(), n)) << n;
    EXPECT_EQ(sum_of(zeros.data(), zeros.size()), 0);
}

TEST(OnesComplementSum, ARunningSumSplitAtEvenOffsetsEqualsTheWhole)
{
    std::mt19937 rng(7);
    std::vector<uint8_t> buffer(1500);
    for (uint8_t& b : buffer)
        b = static_cast<uint8_t>(rng());
    for (std::size_t split : {0u, 2u, 12u, 40u, 64u, 1000u, 1498u}) {
        const uint64_t first = ones_complement_add(buffer.data(), split, 0);
        const uint64_t whole = ones_complement_add(buffer.data() + split, buffer.size() - split, first);
        EXPECT_EQ(ones_complement_fold(whole), rte_raw_cksum(buffer.data(), buffer.size())) << split;
    }
}

} // namespace
