// SubmissionRing (api/submission_ring.hh): order, wrap-around, refusal
// when full, construction limits, a held claim (a producer preempted
// between claiming and publishing) holding up the consumer but no other
// producer, a push from inside consume(), and producers on real threads
// against the one consumer with exact counts. Built twice: plainly (or
// under ASan when the build is) and with ThreadSanitizer, where the
// threaded test checks the slot sequences' orderings.
//
// The producer threads never call gtest: they count what they could not do
// and the main thread checks after the join (gtest is not TSan-instrumented).
// Every wait is bounded by a deadline, so a lost entry fails the test
// instead of hanging it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/submission_ring.hh"
#include "tests/support/tsan.hh"

namespace {

using ringsock::api::SubmissionRing;
using Clock = std::chrono::steady_clock;

// 24 bytes, the shape of a submission; every field derived from the
// producer and its sequence so that a torn or stale copy shows.
struct Entry {
    uint32_t producer;
    uint32_t check;
    uint64_t seq;
    uint64_t key;
};

Entry entry(uint32_t producer, uint64_t seq) noexcept
{
    return Entry{producer, static_cast<uint32_t>(seq * 7 + producer), seq, ~seq ^ (uint64_t{producer} << 48)};
}

bool intact(const Entry& e) noexcept
{
    const Entry want = entry(e.producer, e.seq);
    return e.check == want.check && e.key == want.key;
}

std::vector<uint64_t> consume_seqs(SubmissionRing<Entry>& ring, uint32_t max)
{
    std::vector<uint64_t> seqs;
    ring.consume(max, [&](const Entry& e) {
        EXPECT_TRUE(intact(e));
        seqs.push_back(e.seq);
    });
    return seqs;
}

TEST(SubmissionRing, CapacityMustBeAPowerOfTwo)
{
    EXPECT_THROW(SubmissionRing<Entry>(0), std::invalid_argument);
    EXPECT_THROW(SubmissionRing<Entry>(3), std::invalid_argument);
    EXPECT_THROW(SubmissionRing<Entry>(48), std::invalid_argument);
    EXPECT_EQ(SubmissionRing<Entry>(1).capacity(), 1u);
    EXPECT_EQ(SubmissionRing<Entry>(64).capacity(), 64u);
}

TEST(SubmissionRing, EntriesComeOutInOrderAcrossManyLaps)
{
    SubmissionRing<Entry> ring(8);
    uint64_t pushed = 0;
    uint64_t taken = 0;
    // Burst sizes that the capacity does not divide, so slots are reused at
    // every offset.
    for (int round = 0; round < 100; ++round) {
        const uint32_t burst = 1 + static_cast<uint32_t>(round % 7);
        for (uint32_t i = 0; i < burst; ++i)
            ASSERT_TRUE(ring.try_push(entry(0, pushed++)));
        const std::vector<uint64_t> seqs = consume_seqs(ring, 5);
        for (uint64_t seq : seqs)
            ASSERT_EQ(seq, taken++);
        while (pushed - taken > 3) {
            for (uint64_t seq : consume_seqs(ring, 8))
                ASSERT_EQ(seq, taken++);
        }
    }
    for (uint64_t seq : consume_seqs(ring, 8))
        EXPECT_EQ(seq, taken++);
    EXPECT_EQ(taken, pushed);
    EXPECT_TRUE(consume_seqs(ring, 8).empty());
}

TEST(SubmissionRing, AFullRingRefusesAndKeepsWhatItHolds)
{
    SubmissionRing<Entry> ring(4);
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_TRUE(ring.try_push(entry(1, i)));
    EXPECT_FALSE(ring.try_push(entry(1, 99)));
    SubmissionRing<Entry>::Claim claim;
    EXPECT_FALSE(ring.try_claim(claim));
    EXPECT_EQ(consume_seqs(ring, 1), std::vector<uint64_t>{0});
    // One slot free again: one more fits, the next does not.
    EXPECT_TRUE(ring.try_push(entry(1, 4)));
    EXPECT_FALSE(ring.try_push(entry(1, 5)));
    EXPECT_EQ(consume_seqs(ring, 10), (std::vector<uint64_t>{1, 2, 3, 4}));
}

// A producer preempted between claiming and publishing: the producers after
// it go on (until the ring has come round to its slot), and the consumer
// stops at its slot, taking the later entries only once it is published.
// With rte_ring's default multi-producer mode the later producers would
// spin instead.
TEST(SubmissionRing, AHeldClaimHoldsUpTheConsumerButNoOtherProducer)
{
    SubmissionRing<Entry> ring(4);
    SubmissionRing<Entry>::Claim held;
    ASSERT_TRUE(ring.try_claim(held));
    EXPECT_TRUE(ring.try_push(entry(2, 1)));
    EXPECT_TRUE(ring.try_push(entry(2, 2)));
    EXPECT_TRUE(ring.try_push(entry(2, 3)));
    EXPECT_FALSE(ring.try_push(entry(2, 4))) << "the held slot still counts as taken";
    EXPECT_TRUE(consume_seqs(ring, 10).empty()) << "the consumer passed an unpublished slot";
    ring.publish(held, entry(2, 0));
    EXPECT_EQ(consume_seqs(ring, 10), (std::vector<uint64_t>{0, 1, 2, 3}));

    // The same from a producer on another thread that holds its claim while
    // this one pushes.
    std::atomic<int> stage{0};
    std::thread slow([&] {
        SubmissionRing<Entry>::Claim claim;
        if (!ring.try_claim(claim)) {
            stage.store(-1);
            return;
        }
        stage.store(1);
        while (stage.load() != 2)
            std::this_thread::yield();
        ring.publish(claim, entry(3, 10));
    });
    while (stage.load() == 0)
        std::this_thread::yield();
    if (stage.load() != 1) {
        slow.join();
        FAIL() << "the other thread found no room";
    }
    EXPECT_TRUE(ring.try_push(entry(3, 11)));
    EXPECT_TRUE(consume_seqs(ring, 10).empty());
    stage.store(2);
    slow.join();
    EXPECT_EQ(consume_seqs(ring, 10), (std::vector<uint64_t>{10, 11}));
}

// The engine's take may submit again (it runs the request): its slot is
// free before take is called, so a full ring of one still has room.
TEST(SubmissionRing, TakeMayPushIntoTheSlotItFreed)
{
    SubmissionRing<Entry> ring(1);
    ASSERT_TRUE(ring.try_push(entry(4, 0)));
    bool pushed_inside = false;
    EXPECT_EQ(ring.consume(1, [&](const Entry&) { pushed_inside = ring.try_push(entry(4, 1)); }), 1u);
    EXPECT_TRUE(pushed_inside);
    EXPECT_EQ(consume_seqs(ring, 1), std::vector<uint64_t>{1});
}

// Producers on real threads, more of them than CPUs, against the one
// consumer on a small ring (so producers meet it full and race for the
// same positions): each producer's entries arrive exactly once, intact and
// in the order it pushed them.
TEST(SubmissionRing, ProducersOnThreadsEachSeeEveryEntryOnceInOrder)
{
#if defined(RINGSOCK_TSAN)
    constexpr uint64_t kPerProducer = 40'000;
#else
    constexpr uint64_t kPerProducer = 400'000;
#endif
    constexpr uint32_t kProducers = 4;
    SubmissionRing<Entry> ring(64);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::atomic<bool> stop{false};
    std::vector<std::thread> producers;
    for (uint32_t p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            unsigned spins = 0;
            for (uint64_t seq = 0; seq < kPerProducer && !stop.load(std::memory_order_relaxed);) {
                if (ring.try_push(entry(p, seq))) {
                    ++seq;
                } else if (++spins % 64 == 0) {
                    std::this_thread::yield();
                }
            }
        });
    }
    std::vector<uint64_t> next(kProducers, 0);
    uint64_t damaged = 0;
    uint64_t out_of_order = 0;
    uint64_t taken = 0;
    unsigned idle = 0;
    while (taken < kPerProducer * kProducers) {
        const uint32_t n = ring.consume(32, [&](const Entry& e) {
            if (!intact(e) || e.producer >= kProducers) {
                ++damaged;
                return;
            }
            if (e.seq != next[e.producer]) ++out_of_order;
            next[e.producer] = e.seq + 1;
        });
        taken += n;
        if (n == 0 && ++idle % 64 == 0) {
            if (Clock::now() > deadline) break;
            std::this_thread::yield();
        }
    }
    stop.store(true);
    for (std::thread& t : producers)
        t.join();
    EXPECT_EQ(taken, kPerProducer * kProducers);
    EXPECT_EQ(damaged, 0u);
    EXPECT_EQ(out_of_order, 0u);
    for (uint32_t p = 0; p < kProducers; ++p)
        EXPECT_EQ(next[p], kPerProducer) << "producer " << p;
    EXPECT_EQ(ring.consume(32, [](const Entry&) {}), 0u) << "more entries than were pushed";
}

} // namespace
