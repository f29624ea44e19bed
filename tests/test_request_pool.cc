// The runtime's request pool (api/request_pool.hh): every request out once
// at most, engines' batched returns invisible until flushed and counted out
// until then, and, under threads, takers against a returning engine with
// exact counts. Also built with ThreadSanitizer (tests/meson.build); the
// worker threads never call gtest, which Debian does not instrument.
#include "api/request_pool.hh"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using ringsock::api::Request;
using ringsock::api::RequestPool;

TEST(RequestPool, LendsEachRequestOnceAndRefusesWhenAllAreOut)
{
    RequestPool pool(8);
    std::vector<Request*> out;
    for (int i = 0; i < 8; ++i) {
        Request* r = pool.take();
        ASSERT_NE(r, nullptr);
        for (Request* other : out)
            EXPECT_NE(r, other);
        out.push_back(r);
    }
    EXPECT_EQ(pool.take(), nullptr) << "every request is out";
    EXPECT_EQ(pool.taken(), 8u);
    pool.give_back(out.back());
    out.pop_back();
    EXPECT_EQ(pool.taken(), 7u);
    EXPECT_NE(pool.take(), nullptr);
}

TEST(RequestPool, BatchedReturnsWaitForTheFlushAndCountAsOutUntilThen)
{
    RequestPool pool(4);
    RequestPool::ReturnBatch batch;
    Request* a = pool.take();
    Request* b = pool.take();
    Request* c = pool.take();
    Request* d = pool.take();
    ASSERT_NE(d, nullptr);
    pool.give_back(batch, a);
    pool.give_back(batch, b);
    EXPECT_EQ(pool.take(), nullptr) << "a batch is not the pool's until flushed";
    EXPECT_EQ(pool.taken(), 4u);
    pool.flush(batch);
    EXPECT_EQ(pool.taken(), 2u);
    Request* again1 = pool.take();
    Request* again2 = pool.take();
    EXPECT_TRUE((again1 == a && again2 == b) || (again1 == b && again2 == a));
    EXPECT_EQ(pool.take(), nullptr);
    pool.flush(batch); // empty: nothing happens
    EXPECT_EQ(pool.taken(), 4u);
    for (Request* r : {again1, again2, c, d})
        pool.give_back(batch, r);
    pool.flush(batch);
    EXPECT_EQ(pool.taken(), 0u);
}

TEST(RequestPool, AFullBatchGoesBackByItself)
{
    constexpr uint32_t kSize = RequestPool::ReturnBatch::kSize;
    RequestPool pool(kSize);
    RequestPool::ReturnBatch batch;
    std::vector<Request*> out;
    for (uint32_t i = 0; i < kSize; ++i)
        out.push_back(pool.take());
    for (uint32_t i = 0; i + 1 < kSize; ++i)
        pool.give_back(batch, out[i]);
    EXPECT_EQ(pool.take(), nullptr);
    pool.give_back(batch, out.back());
    EXPECT_EQ(pool.taken(), 0u) << "the " << kSize << "th return flushed the batch";
    for (uint32_t i = 0; i < kSize; ++i)
        EXPECT_NE(pool.take(), nullptr);
}

// Two posting threads take and hand requests to an "engine" thread over a
// bounded single-slot-per-request handshake; the engine gives them back in
// batches, flushing when it finds nothing to do. A request seen out twice
// at once, or a count off at the end, fails.
TEST(RequestPool, TakersAndABatchingEngineNeverShareARequest)
{
    constexpr uint32_t kRequests = 256;
    constexpr uint64_t kPerTaker = 300000;
    RequestPool pool(kRequests);
    auto in_use = std::make_unique<std::atomic<uint8_t>[]>(kRequests);
    // Per taker, a ring of handed-over requests the engine drains.
    struct Handoff {
        std::atomic<uint64_t> head{0};
        std::atomic<uint64_t> tail{0};
        std::array<Request*, 1024> slots{};
    };
    std::array<Handoff, 2> handoffs;
    std::atomic<int> takers_done{0};
    std::atomic<uint64_t> doubled{0};
    std::atomic<uint64_t> refused{0};

    const auto taker = [&](Handoff& h) {
        for (uint64_t done = 0; done < kPerTaker;) {
            Request* r = pool.take();
            if (r == nullptr) {
                refused.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::yield();
                continue;
            }
            if (in_use[r->pool_index].exchange(1, std::memory_order_relaxed) != 0)
                doubled.fetch_add(1, std::memory_order_relaxed);
            const uint64_t tail = h.tail.load(std::memory_order_relaxed);
            while (tail - h.head.load(std::memory_order_acquire) == h.slots.size())
                std::this_thread::yield();
            h.slots[tail % h.slots.size()] = r;
            h.tail.store(tail + 1, std::memory_order_release);
            ++done;
        }
        takers_done.fetch_add(1, std::memory_order_release);
    };
    std::thread engine([&] {
        RequestPool::ReturnBatch batch;
        for (;;) {
            bool any = false;
            for (Handoff& h : handoffs) {
                const uint64_t head = h.head.load(std::memory_order_relaxed);
                if (head == h.tail.load(std::memory_order_acquire)) continue;
                Request* r = h.slots[head % h.slots.size()];
                h.head.store(head + 1, std::memory_order_release);
                in_use[r->pool_index].store(0, std::memory_order_relaxed);
                pool.give_back(batch, r);
                any = true;
            }
            if (!any) {
                pool.flush(batch); // once per idle "poll", as the engines do
                if (takers_done.load(std::memory_order_acquire) == 2 &&
                    handoffs[0].head.load() == handoffs[0].tail.load() &&
                    handoffs[1].head.load() == handoffs[1].tail.load())
                    break;
            }
        }
        pool.flush(batch);
    });
    std::thread t1(taker, std::ref(handoffs[0]));
    std::thread t2(taker, std::ref(handoffs[1]));
    t1.join();
    t2.join();
    engine.join();
    EXPECT_EQ(doubled.load(), 0u);
    EXPECT_EQ(pool.taken(), 0u);
    // Every request is back: the pool lends all of them again.
    std::vector<Request*> all;
    while (Request* r = pool.take())
        all.push_back(r);
    EXPECT_EQ(all.size(), kRequests);
}

} // namespace
