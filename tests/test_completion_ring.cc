// CompletionRing on one thread: order, wrap-around, refusal when full,
// construction limits, admission control and the multi-consumer dequeue's
// results. The threaded properties are in test_completion_ring_stress.cc.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "api/completion_ring.hh"

namespace {

using ringsock::api::CompletionRing;

// 32 bytes, the shape of a completion: stored as 64-bit words.
struct Entry {
    uint64_t seq;
    uint64_t key;
    uint32_t bytes;
    uint32_t status;
    uint32_t flags;
    uint32_t reserved;
};

Entry entry(uint64_t seq)
{
    return Entry{seq,
                 ~seq,
                 static_cast<uint32_t>(seq * 3),
                 static_cast<uint32_t>(seq >> 7),
                 0x5a5a5a5au,
                 static_cast<uint32_t>(seq)};
}

bool intact(const Entry& e, uint64_t seq)
{
    const Entry want = entry(seq);
    return e.seq == want.seq && e.key == want.key && e.bytes == want.bytes && e.status == want.status &&
           e.flags == want.flags && e.reserved == want.reserved;
}

// 3 bytes: stored byte by byte.
struct Odd {
    uint8_t b[3];
};

// 12 bytes, stored as 32-bit words; member initializers make it
// trivially copyable but not trivial (as some of the socket layer's are).
struct Twelve {
    uint32_t a = 0;
    uint32_t b = 0;
    uint32_t c = 0;
};

TEST(CompletionRing, EntriesComeOutInFifoOrder)
{
    CompletionRing<Entry> ring(16);
    std::vector<Entry> in;
    for (uint64_t i = 0; i < 10; ++i)
        in.push_back(entry(i));
    ASSERT_EQ(ring.enqueue_burst(in.data(), 10), 10u);
    EXPECT_EQ(ring.size(), 10u);

    Entry out[16];
    ASSERT_EQ(ring.dequeue_burst(out, 4), 4u);
    ASSERT_EQ(ring.dequeue_burst(out + 4, 16), 6u);
    for (uint64_t i = 0; i < 10; ++i)
        EXPECT_TRUE(intact(out[i], i)) << "entry " << i;
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.dequeue_burst(out, 16), 0u);
}

TEST(CompletionRing, BatchesThatWrapAroundTheEndManyTimesKeepOrderAndContent)
{
    CompletionRing<Entry> ring(16);
    uint64_t next_in = 0;
    uint64_t next_out = 0;
    Entry batch[16];
    Entry out[16];
    // Burst sizes that do not divide 16, so every slot boundary is crossed.
    const uint32_t in_sizes[] = {5, 7, 3, 11, 1, 13, 16, 2};
    const uint32_t out_sizes[] = {4, 9, 1, 16, 6, 3, 12, 7};
    for (unsigned round = 0; round < 2000; ++round) {
        const uint32_t want = in_sizes[round % 8];
        for (uint32_t i = 0; i < want; ++i)
            batch[i] = entry(next_in + i);
        const uint32_t queued = ring.enqueue_burst(batch, want);
        EXPECT_EQ(queued, std::min<uint32_t>(want, 16 - static_cast<uint32_t>(next_in - next_out)));
        next_in += queued;

        const uint32_t got = ring.dequeue_burst(out, out_sizes[round % 8]);
        for (uint32_t i = 0; i < got; ++i)
            ASSERT_TRUE(intact(out[i], next_out + i)) << "round " << round << " entry " << next_out + i;
        next_out += got;
        ASSERT_EQ(ring.size(), next_in - next_out);
    }
    EXPECT_GT(next_out, 16u * 100); // wrapped around many times
}

TEST(CompletionRing, FullRingRefusesAndAPartialBurstTakesWhatFits)
{
    CompletionRing<Entry> ring(8);
    Entry batch[8];
    for (uint64_t i = 0; i < 8; ++i)
        batch[i] = entry(i);
    ASSERT_EQ(ring.enqueue_burst(batch, 5), 5u);
    EXPECT_EQ(ring.enqueue_burst(batch + 3, 5), 3u); // only 3 of 5 fit
    EXPECT_EQ(ring.size(), 8u);
    EXPECT_EQ(ring.enqueue_burst(batch, 1), 0u);
    EXPECT_EQ(ring.enqueue_burst(batch, 8), 0u);

    Entry out[8];
    ASSERT_EQ(ring.dequeue_burst(out, 2), 2u);
    EXPECT_EQ(ring.enqueue_burst(batch, 8), 2u); // two slots came free
    EXPECT_EQ(ring.size(), 8u);
}

TEST(CompletionRing, EmptyBurstsChangeNothing)
{
    CompletionRing<Entry> ring(4);
    Entry e = entry(1);
    EXPECT_EQ(ring.enqueue_burst(&e, 0), 0u);
    ASSERT_EQ(ring.enqueue_burst(&e, 1), 1u);
    Entry out;
    EXPECT_EQ(ring.dequeue_burst(&out, 0), 0u);
    EXPECT_EQ(ring.dequeue_burst_mc(&out, 0), 0u);
    EXPECT_EQ(ring.size(), 1u);
}

TEST(CompletionRing, CapacityThatIsNotAPowerOfTwoThrows)
{
    EXPECT_THROW(CompletionRing<Entry>(0), std::invalid_argument);
    EXPECT_THROW(CompletionRing<Entry>(3), std::invalid_argument);
    EXPECT_THROW(CompletionRing<Entry>(100), std::invalid_argument);
    EXPECT_THROW(CompletionRing<Entry>(0xffffffffu), std::invalid_argument);
    EXPECT_NO_THROW(CompletionRing<Entry>(1));
    EXPECT_NO_THROW(CompletionRing<Entry>(1024));
    EXPECT_EQ(CompletionRing<Entry>(64).capacity(), 64u);
}

TEST(CompletionRing, CapacityOneHoldsOneEntry)
{
    CompletionRing<Entry> ring(1);
    for (uint64_t i = 0; i < 5; ++i) {
        Entry e = entry(i);
        ASSERT_EQ(ring.enqueue_burst(&e, 1), 1u);
        EXPECT_EQ(ring.enqueue_burst(&e, 1), 0u);
        Entry out;
        ASSERT_EQ(ring.dequeue_burst(&out, 4), 1u);
        EXPECT_TRUE(intact(out, i));
    }
}

TEST(CompletionRing, ReservationsUpToCapacityThenRefusalWithoutSideEffect)
{
    CompletionRing<Entry> ring(8);
    EXPECT_EQ(ring.reserved(), 0u);
    for (int i = 0; i < 8; ++i)
        ASSERT_TRUE(ring.try_reserve());
    EXPECT_EQ(ring.reserved(), 8u);
    EXPECT_FALSE(ring.try_reserve());
    EXPECT_FALSE(ring.try_reserve(3));
    EXPECT_EQ(ring.reserved(), 8u);

    ring.unreserve(3);
    EXPECT_EQ(ring.reserved(), 5u);
    EXPECT_FALSE(ring.try_reserve(4)); // 5 + 4 > 8: nothing taken
    EXPECT_EQ(ring.reserved(), 5u);
    EXPECT_TRUE(ring.try_reserve(3));
    EXPECT_EQ(ring.reserved(), 8u);
    ring.unreserve(8);
    EXPECT_EQ(ring.reserved(), 0u);
    EXPECT_FALSE(ring.try_reserve(9));
    EXPECT_FALSE(ring.try_reserve(0xffffffffu)); // no overflow into success
    EXPECT_EQ(ring.reserved(), 0u);
    EXPECT_TRUE(ring.try_reserve(8));
}

TEST(CompletionRing, ReservedEntriesAlwaysFitAndDequeuesGiveReservationsBack)
{
    CompletionRing<Entry> ring(8);
    ASSERT_TRUE(ring.try_reserve(8));
    Entry batch[8];
    for (uint64_t i = 0; i < 8; ++i)
        batch[i] = entry(i);
    // Entries in ring + reservations never exceed the capacity, so every
    // reserved entry fits.
    ASSERT_EQ(ring.enqueue_burst(batch, 8), 8u);
    EXPECT_EQ(ring.reserved(), 8u);
    EXPECT_FALSE(ring.try_reserve());

    Entry out[8];
    ASSERT_EQ(ring.dequeue_burst(out, 3), 3u);
    EXPECT_EQ(ring.reserved(), 5u);
    ASSERT_EQ(ring.dequeue_burst_mc(out, 2), 2u);
    EXPECT_EQ(ring.reserved(), 3u);
    EXPECT_TRUE(ring.try_reserve(5));
    EXPECT_FALSE(ring.try_reserve());
    EXPECT_EQ(ring.enqueue_burst(batch, 5), 5u);
    ASSERT_EQ(ring.dequeue_burst(out, 8), 8u);
    EXPECT_EQ(ring.reserved(), 0u);
}

TEST(CompletionRing, UnsolicitedEntriesOnARingWithoutReservationsLeaveTheCountAtZero)
{
    CompletionRing<Entry> ring(4);
    Entry batch[4] = {entry(0), entry(1), entry(2), entry(3)};
    ASSERT_EQ(ring.enqueue_burst(batch, 4), 4u);
    Entry out[4];
    ASSERT_EQ(ring.dequeue_burst(out, 2), 2u);
    ASSERT_EQ(ring.dequeue_burst_mc(out, 2), 2u);
    EXPECT_EQ(ring.reserved(), 0u);
    EXPECT_TRUE(ring.try_reserve(4));
}

TEST(CompletionRing, MultiConsumerDequeueOnOneThreadKeepsOrderAcrossWraps)
{
    CompletionRing<Entry> ring(32);
    uint64_t next_in = 0;
    uint64_t next_out = 0;
    Entry batch[32];
    Entry out[32];
    for (unsigned round = 0; round < 1000; ++round) {
        const uint32_t want = 1 + round % 29;
        for (uint32_t i = 0; i < want; ++i)
            batch[i] = entry(next_in + i);
        next_in += ring.enqueue_burst(batch, want);
        const uint32_t got = ring.dequeue_burst_mc(out, 1 + (round * 7) % 32);
        for (uint32_t i = 0; i < got; ++i)
            ASSERT_TRUE(intact(out[i], next_out + i)) << "round " << round;
        next_out += got;
    }
    for (uint32_t got; (got = ring.dequeue_burst_mc(out, 32)) != 0; next_out += got)
        for (uint32_t i = 0; i < got; ++i)
            ASSERT_TRUE(intact(out[i], next_out + i));
    EXPECT_EQ(next_out, next_in);
    EXPECT_TRUE(ring.empty());
}

TEST(CompletionRing, SingleConsumerDequeueAfterOthersTookEntriesPastItsCopyOfTheTail)
{
    // dequeue_burst()'s own copy of the tail falls behind the head when
    // dequeue_burst_mc() takes entries in between (the socket engine mixes
    // the two under its handshake).
    CompletionRing<Entry> ring(8);
    Entry batch[8];
    for (uint64_t i = 0; i < 8; ++i)
        batch[i] = entry(i);
    Entry out[8];
    ASSERT_EQ(ring.enqueue_burst(batch, 4), 4u);  // 0..3
    ASSERT_EQ(ring.dequeue_burst(out, 1), 1u);    // copy of tail: 4
    ASSERT_EQ(ring.dequeue_burst_mc(out, 3), 3u); // head: 4
    ASSERT_EQ(ring.enqueue_burst(batch + 4, 2), 2u);
    ASSERT_EQ(ring.dequeue_burst_mc(out, 1), 1u); // head 5, past the copy
    ASSERT_EQ(ring.dequeue_burst(out, 8), 1u);
    EXPECT_TRUE(intact(out[0], 5));
    EXPECT_EQ(ring.dequeue_burst(out, 8), 0u);
    EXPECT_TRUE(ring.empty());
}

TEST(CompletionRing, PeekLeavesTheOldestEntryInPlace)
{
    CompletionRing<Entry> ring(4);
    Entry out = entry(99);
    EXPECT_FALSE(ring.peek(out));
    EXPECT_TRUE(intact(out, 99));
    Entry batch[2] = {entry(7), entry(8)};
    ASSERT_EQ(ring.enqueue_burst(batch, 2), 2u);
    ASSERT_TRUE(ring.peek(out));
    EXPECT_TRUE(intact(out, 7));
    EXPECT_EQ(ring.size(), 2u);
    ASSERT_EQ(ring.dequeue_burst(&out, 1), 1u);
    EXPECT_TRUE(intact(out, 7));
    ASSERT_TRUE(ring.peek(out));
    EXPECT_TRUE(intact(out, 8));
}

// The look ahead for prefetching: entries past the head as they are, across
// the wrap, claiming nothing and giving back no reservation.
TEST(CompletionRing, RacyPeekShowsEntriesAheadAndClaimsNothing)
{
    CompletionRing<Entry> ring(4);
    ASSERT_TRUE(ring.try_reserve(3));
    Entry batch[3] = {entry(1), entry(2), entry(3)};
    ASSERT_EQ(ring.enqueue_burst(batch, 3), 3u);
    Entry out;
    ASSERT_EQ(ring.dequeue_burst_mc(&out, 1), 1u); // head at 1: the next ones sit in slots 1 and 2
    ASSERT_TRUE(ring.try_reserve(2));
    Entry wrap[2] = {entry(4), entry(5)}; // slots 3 and 0
    ASSERT_EQ(ring.enqueue_burst(wrap, 2), 2u);
    for (uint32_t ahead = 0; ahead < 4; ++ahead) {
        ring.peek_racy(out, ahead);
        EXPECT_TRUE(intact(out, 2 + ahead)) << "ahead " << ahead;
    }
    EXPECT_EQ(ring.size(), 4u);
    EXPECT_FALSE(ring.try_reserve(1)) << "the peeks gave back no reservation";
    for (uint64_t seq = 2; seq <= 5; ++seq) {
        ASSERT_EQ(ring.dequeue_burst_mc(&out, 1), 1u);
        EXPECT_TRUE(intact(out, seq));
    }
}

TEST(CompletionRing, EntriesOfOddSizesSurviveTheWordWiseCopy)
{
    CompletionRing<Odd> odd(4);
    CompletionRing<Twelve> twelve(4);
    for (uint8_t i = 0; i < 20; ++i) {
        const Odd o{{i, static_cast<uint8_t>(i + 1), static_cast<uint8_t>(i + 2)}};
        const Twelve t{i, i * 2u, i * 3u};
        ASSERT_EQ(odd.enqueue_burst(&o, 1), 1u);
        ASSERT_EQ(twelve.enqueue_burst(&t, 1), 1u);
        Odd o_out{};
        Twelve t_out{};
        ASSERT_EQ((i % 2 ? odd.dequeue_burst_mc(&o_out, 1) : odd.dequeue_burst(&o_out, 1)), 1u);
        ASSERT_EQ((i % 2 ? twelve.dequeue_burst_mc(&t_out, 1) : twelve.dequeue_burst(&t_out, 1)), 1u);
        EXPECT_EQ(o_out.b[0], i);
        EXPECT_EQ(o_out.b[2], i + 2);
        EXPECT_EQ(t_out.a, i);
        EXPECT_EQ(t_out.c, i * 3u);
    }
}

} // namespace
