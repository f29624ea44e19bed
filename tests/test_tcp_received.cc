// TcpReceived (stack/tcp_received.hh) over lwIP's own pbufs, no network:
// a window's worth of segments of any size is taken, small ones are
// compacted while the reader lags (their originals given back at once),
// and the bytes come out whole and in order however they are read.
#include "stack/tcp_received.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "lwip/init.h"
#include "lwip/opt.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"

namespace {

using ringsock::stack::MutableSegment;
using ringsock::stack::TcpReceived;

// A custom pbuf standing for a segment in a port mbuf: freeing it is seen.
struct Segment {
    pbuf_custom custom{};
    std::vector<uint8_t> bytes;
    bool freed = false;
};

void free_segment(pbuf* p)
{
    reinterpret_cast<Segment*>(p)->freed = true;
}

pbuf* segment(Segment& s, uint64_t& next_byte, std::size_t length)
{
    s.bytes.resize(length);
    for (auto& b : s.bytes)
        b = static_cast<uint8_t>(next_byte++ * 7 + 3);
    s.custom.custom_free_function = free_segment;
    return pbuf_alloced_custom(PBUF_RAW, static_cast<u16_t>(length), PBUF_RAM, &s.custom, s.bytes.data(),
                               static_cast<u16_t>(length));
}

uint8_t expected_byte(uint64_t at)
{
    return static_cast<uint8_t>(at * 7 + 3);
}

class Received : public ::testing::Test {
protected:
    static void SetUpTestSuite() { lwip_init(); }
};

TEST_F(Received, AWindowOfSmallSegmentsIsTakenCompactedAndReadInOrder)
{
    // 1.25 MiB (lwIP's window) in 100-byte segments: 13,108 of them, 13
    // times the 1,024 chains the connection held before it refused.
    constexpr std::size_t kSegment = 100;
    constexpr std::size_t kCount = (1280 * 1024 + kSegment - 1) / kSegment;
    std::vector<Segment> segments(kCount);
    TcpReceived r;
    uint64_t next_byte = 0;
    for (auto& s : segments)
        ASSERT_TRUE(r.push(segment(s, next_byte, kSegment)));
    EXPECT_EQ(r.readable(), kCount * kSegment);
    // The first few are held as they came (the reader may be about to
    // take them); every later one was copied and its original freed.
    std::size_t freed = 0;
    for (const auto& s : segments)
        freed += s.freed ? 1 : 0;
    EXPECT_EQ(freed, kCount - TcpReceived::kCompactBehind);
    constexpr std::size_t kPerBuffer = TcpReceived::kCompactBuffer / kSegment;
    EXPECT_EQ(r.chains(),
              TcpReceived::kCompactBehind + (kCount - TcpReceived::kCompactBehind + kPerBuffer - 1) / kPerBuffer);

    // Read in odd pieces across two buffers, each consumed after copying.
    uint64_t at = 0;
    std::vector<uint8_t> a(777), b(1234);
    while (r.readable() != 0) {
        const MutableSegment dest[] = {{a.data(), a.size()}, {b.data(), b.size()}};
        const uint64_t n = r.copy_to(dest, 2, 0, UINT64_MAX);
        ASSERT_EQ(n, std::min<uint64_t>(r.readable(), a.size() + b.size()));
        for (uint64_t k = 0; k < n; ++k) {
            const uint8_t got = k < a.size() ? a[k] : b[k - a.size()];
            ASSERT_EQ(got, expected_byte(at + k)) << "byte " << at + k;
        }
        EXPECT_EQ(r.consume(n), n);
        at += n;
    }
    EXPECT_EQ(at, kCount * kSegment);
    EXPECT_EQ(r.chains(), 0u);
    for (const auto& s : segments)
        EXPECT_TRUE(s.freed);
}

TEST_F(Received, CompactBuffersTakeAtMostHalfOfLwipsHeap)
{
    // 6 MiB of 100-byte segments: more than half of lwIP's 8 MiB heap.
    constexpr std::size_t kSegment = 100;
    constexpr std::size_t kCount = (6u << 20) / kSegment;
    std::vector<Segment> segments(kCount);
    TcpReceived r;
    uint64_t next_byte = 0;
    const auto heap_before = lwip_stats.mem.used;
    for (auto& s : segments)
        ASSERT_TRUE(r.push(segment(s, next_byte, kSegment)));
    EXPECT_LE(lwip_stats.mem.used, MEM_SIZE / 2);
    EXPECT_GT(lwip_stats.mem.used, MEM_SIZE / 2 - TcpReceived::kCompactBuffer - 64);
    EXPECT_FALSE(segments.back().freed) << "held as it came once the heap's half is used";
    uint64_t at = 0;
    std::vector<uint8_t> buffer(65536);
    while (r.readable() != 0) {
        const MutableSegment dest{buffer.data(), buffer.size()};
        const uint64_t n = r.copy_to(&dest, 1, 0, UINT64_MAX);
        for (uint64_t k = 0; k < n; ++k)
            ASSERT_EQ(buffer[k], expected_byte(at + k)) << "byte " << at + k;
        r.consume(n);
        at += n;
    }
    EXPECT_EQ(at, kCount * kSegment);
    EXPECT_EQ(lwip_stats.mem.used, heap_before);
}

TEST_F(Received, LargeSegmentsAreHeldAsTheyCameAndTheQueueGrowsPastItsFirstSize)
{
    constexpr std::size_t kSegment = 1460;
    constexpr std::size_t kCount = 2000;
    std::vector<Segment> segments(kCount);
    TcpReceived r;
    uint64_t next_byte = 0;
    for (auto& s : segments)
        ASSERT_TRUE(r.push(segment(s, next_byte, kSegment)));
    EXPECT_EQ(r.chains(), kCount);
    for (const auto& s : segments)
        EXPECT_FALSE(s.freed) << "a full segment is not copied";
    // Partly consumed, then appended to: the offset into the oldest holds.
    EXPECT_EQ(r.consume(kSegment + 10), kSegment + 10);
    EXPECT_TRUE(segments[0].freed);
    EXPECT_FALSE(segments[1].freed);
    uint8_t first = 0;
    const MutableSegment one{&first, 1};
    ASSERT_EQ(r.copy_to(&one, 1, 0, 1), 1u);
    EXPECT_EQ(first, expected_byte(kSegment + 10));
    r.clear();
    EXPECT_EQ(r.readable(), 0u);
    for (const auto& s : segments)
        EXPECT_TRUE(s.freed) << "clear gives every segment back";
}

TEST_F(Received, ACompactBufferBeingFilledCanBeReadAndConsumedMeanwhile)
{
    std::vector<Segment> segments(64);
    TcpReceived r;
    uint64_t next_byte = 0;
    std::size_t pushed = 0;
    uint64_t at = 0;
    // Alternate: push three 50-byte segments, read and consume 120 bytes.
    // The backlog grows by 30 bytes a round, so compaction starts on the way.
    bool compacted = false;
    while (pushed + 3 <= segments.size()) {
        for (int k = 0; k < 3; ++k) {
            ASSERT_TRUE(r.push(segment(segments[pushed], next_byte, 50)));
            compacted |= segments[pushed++].freed; // freed at once: copied into a compact buffer
        }
        std::vector<uint8_t> got(120);
        const MutableSegment dest{got.data(), got.size()};
        const uint64_t n = r.copy_to(&dest, 1, 0, got.size());
        ASSERT_EQ(n, 120u);
        for (uint64_t k = 0; k < n; ++k)
            ASSERT_EQ(got[k], expected_byte(at + k)) << "byte " << at + k;
        r.consume(n);
        at += n;
    }
    EXPECT_TRUE(compacted) << "no segment went into a compact buffer";
    EXPECT_EQ(r.readable(), next_byte - at);
    r.clear();
}

} // namespace
