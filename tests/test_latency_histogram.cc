// The benchmarks' latency histogram: every value lands in a bucket whose
// bounds hold it, within 1/32 above 64, and percentiles over known samples
// come out within that error.
#include "dataplane/latency_histogram.hh"

#include <cstdint>
#include <random>

#include <gtest/gtest.h>

namespace {

using ringsock::dataplane::LatencyHistogram;

TEST(LatencyHistogram, EveryValueFallsInABucketThatHoldsIt)
{
    std::mt19937_64 rng(20261204);
    for (int i = 0; i < 200000; ++i) {
        const uint64_t v = rng() >> (rng() % 64);
        const std::size_t b = LatencyHistogram::index_of(v);
        ASSERT_GE(LatencyHistogram::upper_of(b), v) << v;
        if (b > 0) {
            ASSERT_LT(LatencyHistogram::upper_of(b - 1), v) << v;
        }
        if (v >= 64) {
            ASSERT_LE(LatencyHistogram::upper_of(b) - v, v / 32) << v;
        }
    }
    EXPECT_EQ(LatencyHistogram::index_of(63), 63u);
    EXPECT_EQ(LatencyHistogram::upper_of(LatencyHistogram::index_of(~uint64_t{0})), ~uint64_t{0});
}

TEST(LatencyHistogram, PercentilesOfKnownSamples)
{
    LatencyHistogram h;
    EXPECT_EQ(h.percentile(0.5), 0u);
    for (uint64_t v = 1; v <= 100000; ++v)
        h.record(v);
    EXPECT_EQ(h.count(), 100000u);
    EXPECT_EQ(h.max(), 100000u);
    const auto near = [](uint64_t got, uint64_t want) { return got >= want && got - want <= want / 32; };
    EXPECT_TRUE(near(h.percentile(0.5), 50000)) << h.percentile(0.5);
    EXPECT_TRUE(near(h.percentile(0.99), 99000)) << h.percentile(0.99);
    EXPECT_TRUE(near(h.percentile(0.999), 99900)) << h.percentile(0.999);
    EXPECT_EQ(h.percentile(1.0), 100000u) << "capped at the largest sample";
}

} // namespace
