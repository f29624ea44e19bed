// A latency histogram with bounded relative error: values below 64 have a
// bucket each, larger ones fall in one of 32 buckets per power of two
// (within 1/32, about 3 %, of the truth). Fixed memory, no allocation per
// sample, so a benchmark can record every round trip at full rate and read
// p50/p99/p99.9 at the end. One writer; header-only and free of DPDK.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ringsock::dataplane {

class LatencyHistogram {
public:
    void record(uint64_t value) noexcept
    {
        ++buckets_[index_of(value)];
        ++count_;
        if (value > max_) max_ = value;
    }

    uint64_t count() const noexcept { return count_; }
    uint64_t max() const noexcept { return max_; }

    // The smallest bucket bound at or below which `fraction` (0..1] of the
    // samples lie: the bucket's upper edge, capped at the largest sample.
    uint64_t percentile(double fraction) const noexcept
    {
        if (count_ == 0) return 0;
        const auto wanted = static_cast<uint64_t>(fraction * static_cast<double>(count_) + 0.5);
        uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= wanted && seen > 0) {
                const uint64_t upper = upper_of(i);
                return upper < max_ ? upper : max_;
            }
        }
        return max_;
    }

    static std::size_t index_of(uint64_t v) noexcept
    {
        if (v < 64) return static_cast<std::size_t>(v);
        const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v)); // >= 6
        const unsigned shift = msb - 5;
        const uint64_t sub = v >> shift; // 32..63
        return 64 + (msb - 6) * 32 + static_cast<std::size_t>(sub - 32);
    }

    // The largest value that falls in bucket `i`.
    static uint64_t upper_of(std::size_t i) noexcept
    {
        if (i < 64) return i;
        const unsigned msb = static_cast<unsigned>((i - 64) / 32) + 6;
        const uint64_t sub = (i - 64) % 32 + 32;
        const unsigned shift = msb - 5;
        return ((sub + 1) << shift) - 1;
    }

private:
    static constexpr std::size_t kBuckets = 64 + 58 * 32;
    std::array<uint64_t, kBuckets> buckets_{};
    uint64_t count_ = 0;
    uint64_t max_ = 0;
};

// The round-trip fields every latency benchmark prints, from nanosecond
// samples: "p50_us":…,"p99_us":…,"p999_us":…,"max_us":… (the scripts
// read these keys from each program alike).
inline std::string round_trip_fields(const LatencyHistogram& h)
{
    char text[160];
    std::snprintf(text, sizeof(text), "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f",
                  static_cast<double>(h.percentile(0.5)) / 1e3, static_cast<double>(h.percentile(0.99)) / 1e3,
                  static_cast<double>(h.percentile(0.999)) / 1e3, static_cast<double>(h.max()) / 1e3);
    return text;
}

} // namespace ringsock::dataplane
