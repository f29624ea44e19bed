// PortRing (api/port_ring.hh): single-thread properties, then real threads
// with exact counts: producers that reserve before they push are never
// refused and never overwrite an entry not yet reaped, every entry is reaped
// exactly once between several reapers, and each producer's entries come out
// in the order it pushed them. Built twice: plainly (or under ASan when the
// build is) and with ThreadSanitizer, as test_completion_ring_stress is.
//
// The worker threads never call gtest (it is not TSan-instrumented): they
// record what they saw and the main thread checks it after the join. Every
// wait is bounded by a deadline, so a lost entry fails instead of hanging.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/port_ring.hh"
#include "tests/support/tsan.hh"

namespace {

using ringsock::api::PortRing;
using Clock = std::chrono::steady_clock;

// 32 bytes, as a Completion.
struct Entry {
    uint32_t producer;
    uint32_t sequence;
    uint64_t check; // a function of the two: a torn copy shows
    uint64_t pad[2];
};

Entry make_entry(uint32_t producer, uint32_t sequence)
{
    return Entry{producer, sequence, (uint64_t{producer} << 32 | sequence) * 0x9e3779b97f4a7c15ull, {}};
}

TEST(PortRing, RefusesACapacityThatIsNotAPowerOfTwo)
{
    EXPECT_THROW(PortRing<Entry>(0), std::invalid_argument);
    EXPECT_THROW(PortRing<Entry>(12), std::invalid_argument);
    EXPECT_NO_THROW(PortRing<Entry>(1));
}

TEST(PortRing, PopsInPushOrderAndGivesBackOneReservationPerEntry)
{
    PortRing<Entry> ring(8);
    Entry out[8];
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.pop_burst(out, 8), 0u);
    ASSERT_TRUE(ring.try_reserve(5));
    const Entry in[3] = {make_entry(0, 0), make_entry(0, 1), make_entry(0, 2)};
    ring.push_burst(in, 3);
    ring.push_burst(in, 0);
    EXPECT_FALSE(ring.empty());
    EXPECT_EQ(ring.reserved(), 5u); // the two unpushed and the three unreaped
    ASSERT_EQ(ring.pop_burst(out, 2), 2u);
    EXPECT_EQ(out[0].sequence, 0u);
    EXPECT_EQ(out[1].sequence, 1u);
    EXPECT_EQ(ring.reserved(), 3u);
    ASSERT_EQ(ring.pop_burst(out, 8), 1u);
    EXPECT_EQ(out[0].sequence, 2u);
    EXPECT_EQ(out[0].check, in[2].check);
    EXPECT_TRUE(ring.empty());
    ring.unreserve(2);
    EXPECT_EQ(ring.reserved(), 0u);
}

TEST(PortRing, AdmitsNoMoreThanItsCapacityAndWrapsAround)
{
    PortRing<Entry> ring(4);
    Entry out[4];
    EXPECT_FALSE(ring.try_reserve(5));
    EXPECT_FALSE(ring.try_reserve(0xffffffffu));
    for (uint32_t round = 0; round < 10; ++round) {
        ASSERT_TRUE(ring.try_reserve(4)) << round;
        EXPECT_FALSE(ring.try_reserve()) << round;
        for (uint32_t i = 0; i < 4; ++i) {
            const Entry e = make_entry(1, round * 4 + i);
            ring.push_burst(&e, 1);
        }
        // A reservation comes back only when its entry is reaped.
        EXPECT_FALSE(ring.try_reserve()) << round;
        ASSERT_EQ(ring.pop_burst(out, 4), 4u) << round;
        for (uint32_t i = 0; i < 4; ++i)
            EXPECT_EQ(out[i].sequence, round * 4 + i) << round;
    }
    EXPECT_EQ(ring.reserved(), 0u);
}

#if defined(RINGSOCK_TSAN)
constexpr uint32_t kPerProducer = 20000;
#else
constexpr uint32_t kPerProducer = 400000;
#endif

struct ReaperLog {
    std::vector<Entry> seen;
};

// `producers` threads each reserve and push kPerProducer entries (bursts of
// 1..5), `reapers` threads reap until every entry is accounted for.
void run(unsigned producers, unsigned reapers, uint32_t capacity)
{
    PortRing<Entry> ring(capacity);
    const uint64_t total = uint64_t{producers} * kPerProducer;
    std::atomic<uint64_t> reaped{0};
    std::atomic<bool> timed_out{false};
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::vector<ReaperLog> logs(reapers);
    std::vector<std::thread> threads;
    for (unsigned p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            uint32_t next = 0;
            while (next < kPerProducer) {
                const uint32_t burst = std::min<uint32_t>(1 + next % 5, kPerProducer - next);
                while (!ring.try_reserve(burst)) {
                    if (Clock::now() > deadline) {
                        timed_out = true;
                        return;
                    }
                    std::this_thread::yield();
                }
                Entry batch[5];
                for (uint32_t i = 0; i < burst; ++i)
                    batch[i] = make_entry(p, next + i);
                ring.push_burst(batch, burst);
                next += burst;
            }
        });
    for (unsigned r = 0; r < reapers; ++r)
        threads.emplace_back([&, r] {
            Entry out[7];
            while (reaped.load(std::memory_order_relaxed) < total) {
                const uint32_t n = ring.pop_burst(out, 1 + r % 7);
                if (n == 0) {
                    if (Clock::now() > deadline) {
                        timed_out = true;
                        return;
                    }
                    std::this_thread::yield();
                    continue;
                }
                logs[r].seen.insert(logs[r].seen.end(), out, out + n);
                reaped.fetch_add(n, std::memory_order_relaxed);
            }
        });
    for (auto& t : threads)
        t.join();
    ASSERT_FALSE(timed_out) << "entries went missing: " << reaped.load() << " of " << total << " reaped";
    EXPECT_EQ(reaped.load(), total);
    EXPECT_EQ(ring.reserved(), 0u);
    EXPECT_TRUE(ring.empty());
    // Every entry exactly once, whole; each reaper sees each producer's
    // entries in increasing order (the ring is one FIFO).
    std::vector<std::vector<uint8_t>> seen(producers, std::vector<uint8_t>(kPerProducer, 0));
    for (const ReaperLog& log : logs) {
        std::vector<int64_t> last(producers, -1);
        for (const Entry& e : log.seen) {
            ASSERT_LT(e.producer, producers);
            ASSERT_LT(e.sequence, kPerProducer);
            ASSERT_EQ(e.check, make_entry(e.producer, e.sequence).check) << "a torn entry";
            ASSERT_GT(static_cast<int64_t>(e.sequence), last[e.producer]) << "out of order for one reaper";
            last[e.producer] = e.sequence;
            ASSERT_EQ(seen[e.producer][e.sequence]++, 0) << "reaped twice: " << e.producer << "/" << e.sequence;
        }
    }
}

TEST(PortRingThreads, TwoProducersOneReaperSeeEveryEntryOnceInOrder)
{
    run(2, 1, 64);
}

TEST(PortRingThreads, ThreeProducersThreeReapersOnASmallRing)
{
    run(3, 3, 8);
}

} // namespace
