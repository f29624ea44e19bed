// Core-affine active opens (stack/port_affinity.hh): whether a local port
// sends a connection's replies to lwIP's engine's queues, checked against
// the Toeplitz hash as the RSS specification writes it (tests/support/
// toeplitz.hh) over the reply's tuple and the redirection table; and that
// among the ephemeral ports enough land home to pick from.
#include <array>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "stack/port_affinity.hh"
#include "tests/support/toeplitz.hh"

namespace {

using ringsock::stack::PortAffinity;
using ringsock::testing::ipv4_tuple;
using ringsock::testing::kToeplitzSpecKey;
using ringsock::testing::reference_toeplitz;

std::array<uint8_t, 16> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return {a, b, c, d};
}

std::vector<uint16_t> round_robin(std::size_t entries, uint16_t queues)
{
    std::vector<uint16_t> reta(entries);
    for (std::size_t i = 0; i < entries; ++i)
        reta[i] = static_cast<uint16_t>(i % queues);
    return reta;
}

TEST(PortAffinity, AgreesWithTheReferenceHashOfTheReplysTuple)
{
    const std::vector<uint16_t> reta = round_robin(128, 4);
    const std::array<uint16_t, 1> home{0};
    const PortAffinity affinity(kToeplitzSpecKey, reta, home);
    std::mt19937 rng(7);
    const auto local = v4(198, 18, 0, 2);
    unsigned homes = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto remote = v4(198, 18, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()));
        const auto remote_port = static_cast<uint16_t>(rng());
        const auto local_port = static_cast<uint16_t>(49152 + rng() % 16384);
        // The reply comes from the remote end: it is the tuple's source.
        const uint32_t h = reference_toeplitz(
            ipv4_tuple({remote[0], remote[1], remote[2], remote[3]}, {198, 18, 0, 2}, remote_port, local_port),
            kToeplitzSpecKey);
        const bool expected = reta[h & 127] == 0;
        ASSERT_EQ(affinity.lands_home(4, local, local_port, remote, remote_port), expected) << i;
        homes += expected ? 1 : 0;
    }
    // A quarter of the ports land on one queue of four.
    EXPECT_GT(homes, 400u);
    EXPECT_LT(homes, 600u);
}

TEST(PortAffinity, EveryQueueOfTheEngineCountsAsHome)
{
    const std::array<uint16_t, 2> home{1, 3};
    const PortAffinity affinity(kToeplitzSpecKey, round_robin(512, 4), home);
    unsigned homes = 0;
    for (uint16_t port = 49152; port < 49152 + 1000; ++port)
        homes += affinity.lands_home(4, v4(10, 0, 0, 1), port, v4(10, 0, 0, 2), 80) ? 1 : 0;
    EXPECT_GT(homes, 400u); // half the queues
    EXPECT_LT(homes, 600u);
}

TEST(PortAffinity, RefusesATableThatIsNotAPowerOfTwo)
{
    const std::array<uint16_t, 1> home{0};
    EXPECT_THROW(PortAffinity(kToeplitzSpecKey, round_robin(100, 4), home), std::invalid_argument);
    EXPECT_THROW(PortAffinity(kToeplitzSpecKey, {}, home), std::invalid_argument);
}

} // namespace
