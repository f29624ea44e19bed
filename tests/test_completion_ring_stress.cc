// CompletionRing under real threads, with exact counts: one producer and one
// consumer see every entry once and in order; one producer and four
// multi-consumer threads see every entry exactly once between them; a
// producer that reserves before it enqueues is never refused. Built twice:
// plainly (or under ASan when the build is) and with ThreadSanitizer.
//
// Under TSan, the first test is the one that checks the ring's orderings:
// dequeue_burst() reads slots with plain loads, which TSan orders against
// the producer's stores; dequeue_burst_mc() reads them atomically (it may
// race with the producer by design), so there only the counts can tell.
//
// The worker threads never call gtest: they record what they saw and the
// main thread checks it after the join (gtest is not TSan-instrumented).
// Every wait is bounded by a deadline, so a lost entry fails the test
// instead of hanging it. Counts are smaller under ThreadSanitizer so that
// each binary stays within a few seconds on a 2-core machine.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/completion_ring.hh"
#include "tests/support/tsan.hh"

namespace {

using ringsock::api::CompletionRing;
using Clock = std::chrono::steady_clock;

// About a second per test here (2 cores), under ASan too; TSan makes every
// access a call, so it runs a fifth of the entries.
#if defined(RINGSOCK_TSAN)
constexpr uint64_t kScaleDown = 5;
#else
constexpr uint64_t kScaleDown = 1;
#endif
constexpr uint64_t kSpscEntries = 20'000'000 / kScaleDown;
constexpr uint64_t kMpmcEntries = 4'000'000 / kScaleDown;
constexpr uint64_t kAdmissionEntries = 4'000'000 / kScaleDown;
// A stuck test fails after this rather than hanging until meson's timeout.
constexpr auto kTimeLimit = std::chrono::seconds(60);
constexpr uint32_t kMaxBurst = 64;

// 32 bytes, the shape of a completion; every field derived from seq so that
// a torn or stale copy shows.
struct Entry {
    uint64_t seq;
    uint64_t key;
    uint32_t bytes;
    uint32_t status;
    uint32_t flags;
    uint32_t check;
};

Entry entry(uint64_t seq) noexcept
{
    return Entry{seq,
                 ~seq,
                 static_cast<uint32_t>(seq * 7),
                 static_cast<uint32_t>(seq >> 32),
                 0xa5a5a5a5u,
                 static_cast<uint32_t>(seq ^ 0x12345678u)};
}

bool intact(const Entry& e) noexcept
{
    const Entry want = entry(e.seq);
    return e.key == want.key && e.bytes == want.bytes && e.status == want.status && e.flags == want.flags &&
           e.check == want.check;
}

// Burst sizes that vary from call to call without a pattern the ring's
// capacity divides.
class Sizes {
public:
    explicit Sizes(uint32_t seed) : state_(seed) {}
    uint32_t next(uint32_t max) noexcept
    {
        state_ = state_ * 1664525u + 1013904223u;
        return 1 + (state_ >> 8) % max;
    }

private:
    uint32_t state_;
};

// What ends a trial early: any thread giving up (the deadline passed, or it
// saw something wrong) stops the others.
class Trial {
public:
    Trial() : deadline_(Clock::now() + kTimeLimit) {}
    bool stopped() const noexcept { return stop_.load(std::memory_order_relaxed); }
    void stop() noexcept { stop_.store(true, std::memory_order_relaxed); }
    bool timed_out() const noexcept { return timed_out_.load(std::memory_order_relaxed); }

    // Called when a thread has nothing to do: spins briefly, then yields
    // (on 2 cores the thread it waits for may need this one's CPU). Returns
    // false when the run is over.
    bool idle(unsigned& spins) noexcept
    {
        if (stopped()) return false;
        if (++spins < 64) return true;
        spins = 0;
        if (Clock::now() > deadline_) {
            timed_out_.store(true, std::memory_order_relaxed);
            stop();
            return false;
        }
        std::this_thread::yield();
        return true;
    }

private:
    const Clock::time_point deadline_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> timed_out_{false};
};

// Enqueues seq first .. first + n, retrying the part that did not fit.
bool enqueue_all(CompletionRing<Entry>& ring, Trial& run, uint64_t first, uint32_t n)
{
    Entry batch[kMaxBurst];
    for (uint32_t i = 0; i < n; ++i)
        batch[i] = entry(first + i);
    unsigned spins = 0;
    for (uint32_t done = 0; done < n;) {
        const uint32_t queued = ring.enqueue_burst(batch + done, n - done);
        done += queued;
        if (queued == 0 && !run.idle(spins)) return false;
    }
    return true;
}

// One consumer thread's record, checked on the main thread.
struct ConsumerLog {
    explicit ConsumerLog(uint64_t total) : total(total), seen((total + 63) / 64, 0) {}

    void record(const Entry& e) noexcept
    {
        if (!intact(e) || e.seq >= total) {
            ++damaged;
            return;
        }
        if (count != 0 && e.seq <= last) ++out_of_order;
        last = e.seq;
        seen[e.seq / 64] |= uint64_t{1} << (e.seq % 64);
        ++count;
        sum += e.seq;
    }

    uint64_t total;
    std::vector<uint64_t> seen; // bit per sequence number
    uint64_t count = 0;
    uint64_t sum = 0;
    uint64_t last = 0;
    uint64_t out_of_order = 0;
    uint64_t damaged = 0;
};

// Every sequence number below total in exactly one log.
void expect_each_seen_exactly_once(const std::vector<ConsumerLog>& logs, uint64_t total)
{
    uint64_t count = 0;
    uint64_t sum = 0;
    uint64_t duplicated_words = 0;
    uint64_t missing_words = 0;
    for (const ConsumerLog& log : logs) {
        EXPECT_EQ(log.damaged, 0u) << "entries with damaged content";
        EXPECT_EQ(log.out_of_order, 0u) << "a consumer's own sequence went backwards";
        count += log.count;
        sum += log.sum;
    }
    for (std::size_t w = 0; w < (total + 63) / 64; ++w) {
        uint64_t all = 0;
        for (const ConsumerLog& log : logs) {
            if ((all & log.seen[w]) != 0) ++duplicated_words;
            all |= log.seen[w];
        }
        const uint64_t bits = std::min<uint64_t>(64, total - w * 64);
        const uint64_t want = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
        if (all != want) ++missing_words;
    }
    EXPECT_EQ(count, total);
    EXPECT_EQ(sum, total * (total - 1) / 2);
    EXPECT_EQ(duplicated_words, 0u) << "64-number groups with a number seen twice";
    EXPECT_EQ(missing_words, 0u) << "64-number groups with a number never seen";
}

TEST(CompletionRingStress, OneProducerOneConsumerSeeEveryEntryOnceInOrder)
{
    CompletionRing<Entry> ring(1024);
    Trial run;
    const uint64_t total = kSpscEntries;

    std::thread producer([&] {
        Sizes sizes(1);
        for (uint64_t next = 0; next < total;) {
            const auto n = static_cast<uint32_t>(std::min<uint64_t>(sizes.next(kMaxBurst), total - next));
            if (!enqueue_all(ring, run, next, n)) return;
            next += n;
        }
    });

    uint64_t received = 0;
    uint64_t first_wrong = UINT64_MAX; // the position of the first unexpected entry
    Entry wrong{};
    std::thread consumer([&] {
        Sizes sizes(2);
        Entry out[kMaxBurst];
        unsigned spins = 0;
        while (received < total) {
            const uint32_t n = ring.dequeue_burst(out, sizes.next(kMaxBurst));
            if (n == 0) {
                if (!run.idle(spins)) return;
                continue;
            }
            for (uint32_t i = 0; i < n; ++i, ++received) {
                if (out[i].seq != received || !intact(out[i])) {
                    first_wrong = received;
                    wrong = out[i];
                    run.stop();
                    return;
                }
            }
        }
    });
    producer.join();
    consumer.join();

    ASSERT_FALSE(run.timed_out()) << "stuck after " << received << " of " << total << " entries";
    ASSERT_EQ(first_wrong, UINT64_MAX) << "at position " << first_wrong << " got seq " << wrong.seq
                                       << (intact(wrong) ? "" : " (damaged)");
    EXPECT_EQ(received, total);
    EXPECT_TRUE(ring.empty());
}

TEST(CompletionRingStress, OneProducerFourMultiConsumersSeeEveryEntryExactlyOnce)
{
    constexpr unsigned kConsumers = 4;
    // Small enough that the producer laps stale consumers: the copy-then-CAS
    // race is exercised, not only the happy path.
    CompletionRing<Entry> ring(64);
    Trial run;
    const uint64_t total = kMpmcEntries;
    std::atomic<uint64_t> consumed{0};

    std::vector<ConsumerLog> logs(kConsumers, ConsumerLog(total));
    std::vector<std::thread> consumers;
    for (unsigned c = 0; c < kConsumers; ++c) {
        consumers.emplace_back([&, c] {
            ConsumerLog& log = logs[c];
            Sizes sizes(10 + c);
            Entry out[kMaxBurst];
            unsigned spins = 0;
            while (consumed.load(std::memory_order_relaxed) < total) {
                const uint32_t n = ring.dequeue_burst_mc(out, sizes.next(kMaxBurst / 2));
                if (n == 0) {
                    if (!run.idle(spins)) return;
                    continue;
                }
                for (uint32_t i = 0; i < n; ++i)
                    log.record(out[i]);
                consumed.fetch_add(n, std::memory_order_relaxed);
            }
        });
    }
    std::thread producer([&] {
        Sizes sizes(3);
        for (uint64_t next = 0; next < total;) {
            const auto n = static_cast<uint32_t>(std::min<uint64_t>(sizes.next(kMaxBurst), total - next));
            if (!enqueue_all(ring, run, next, n)) return;
            next += n;
        }
    });
    producer.join();
    for (std::thread& t : consumers)
        t.join();

    ASSERT_FALSE(run.timed_out()) << "stuck after " << consumed.load() << " of " << total << " entries";
    expect_each_seen_exactly_once(logs, total);
    EXPECT_TRUE(ring.empty());
    for (unsigned c = 0; c < kConsumers; ++c)
        RecordProperty("consumer" + std::to_string(c), static_cast<int>(logs[c].count));
}

TEST(CompletionRingStress, AProducerThatReservesIsNeverRefused)
{
    constexpr unsigned kConsumers = 2;
    constexpr uint32_t kCapacity = 64;
    CompletionRing<Entry> ring(kCapacity);
    Trial run;
    const uint64_t total = kAdmissionEntries;
    std::atomic<uint64_t> consumed{0};
    std::atomic<bool> producer_done{false};

    std::vector<ConsumerLog> logs(kConsumers, ConsumerLog(total));
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < kConsumers; ++c) {
        threads.emplace_back([&, c] {
            ConsumerLog& log = logs[c];
            Sizes sizes(20 + c);
            Entry out[kMaxBurst];
            unsigned spins = 0;
            while (consumed.load(std::memory_order_relaxed) < total) {
                const uint32_t n = ring.dequeue_burst_mc(out, sizes.next(16));
                if (n == 0) {
                    if (!run.idle(spins)) return;
                    continue;
                }
                for (uint32_t i = 0; i < n; ++i)
                    log.record(out[i]);
                consumed.fetch_add(n, std::memory_order_relaxed);
            }
        });
    }
    // Posts that fail after reserving: they take room for a while and give
    // it back without an entry.
    uint64_t churned = 0;
    threads.emplace_back([&] {
        Sizes sizes(4);
        while (!producer_done.load(std::memory_order_relaxed) && !run.stopped()) {
            const uint32_t n = sizes.next(4);
            if (ring.try_reserve(n)) {
                ++churned;
                ring.unreserve(n);
            }
            std::this_thread::yield();
        }
    });

    uint64_t refused = 0;       // reserved entries enqueue_burst() did not take
    uint64_t over_capacity = 0; // reserved() seen above the capacity
    std::thread producer([&] {
        Sizes sizes(5);
        Entry batch[16];
        unsigned spins = 0;
        for (uint64_t next = 0; next < total;) {
            const auto n = static_cast<uint32_t>(std::min<uint64_t>(sizes.next(16), total - next));
            while (!ring.try_reserve(n))
                if (!run.idle(spins)) return;
            if (ring.reserved() > kCapacity) ++over_capacity;
            for (uint32_t i = 0; i < n; ++i)
                batch[i] = entry(next + i);
            const uint32_t queued = ring.enqueue_burst(batch, n);
            if (queued != n) {
                refused += n - queued;
                run.stop();
                return;
            }
            next += n;
        }
    });
    producer.join();
    producer_done.store(true, std::memory_order_relaxed);
    for (std::thread& t : threads)
        t.join();

    EXPECT_EQ(refused, 0u) << "a reserved entry did not fit";
    EXPECT_EQ(over_capacity, 0u);
    ASSERT_FALSE(run.timed_out()) << "stuck after " << consumed.load() << " of " << total << " entries";
    expect_each_seen_exactly_once(logs, total);
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.reserved(), 0u) << "each dequeued entry gives its reservation back";
    RecordProperty("churned_reservations", static_cast<int>(churned));
}

} // namespace
