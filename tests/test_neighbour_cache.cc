// The send fast path's neighbour cache: lookups hit only live entries,
// refreshes replace, expiry and forget end an entry, a full probe window
// replaces the entry expiring first, and concurrent readers never see an
// address paired with another address's MAC while the writer churns.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "stack/neighbour_cache.hh"

namespace {

using ringsock::stack::Ipv4Address;
using ringsock::stack::MacAddress;
using ringsock::stack::NeighbourCache;

Ipv4Address host(unsigned n)
{
    return {198, 18, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}

// A MAC that names its address, so a torn read shows.
MacAddress mac_of(const Ipv4Address& ip, uint8_t version = 0)
{
    return {0x02, version, ip[0], ip[1], ip[2], ip[3]};
}

TEST(NeighbourCache, LooksUpWhatWasStoredUntilItExpires)
{
    auto cache = std::make_unique<NeighbourCache>();
    MacAddress got{};
    EXPECT_FALSE(cache->lookup(host(1), got, 0));
    cache->store(host(1), mac_of(host(1)), 100);
    ASSERT_TRUE(cache->lookup(host(1), got, 99));
    EXPECT_EQ(got, mac_of(host(1)));
    EXPECT_FALSE(cache->lookup(host(1), got, 100)) << "expired at its time";
    EXPECT_FALSE(cache->lookup(host(2), got, 0));
    cache->store(host(1), mac_of(host(1), 7), 200); // refreshed with a new MAC
    ASSERT_TRUE(cache->lookup(host(1), got, 150));
    EXPECT_EQ(got, mac_of(host(1), 7));
    cache->forget(host(1));
    EXPECT_FALSE(cache->lookup(host(1), got, 0));
    EXPECT_FALSE(cache->lookup({0, 0, 0, 0}, got, 0)) << "0.0.0.0 is never an entry";
}

TEST(NeighbourCache, HoldsManyNeighboursAndEvictsTheOneExpiringFirst)
{
    auto cache = std::make_unique<NeighbourCache>();
    // Half the capacity: every one fits its probe window.
    for (unsigned n = 1; n <= NeighbourCache::kEntries / 2; ++n)
        cache->store(host(n), mac_of(host(n)), 1000 + n);
    unsigned found = 0;
    for (unsigned n = 1; n <= NeighbourCache::kEntries / 2; ++n) {
        MacAddress got{};
        if (cache->lookup(host(n), got, 0) && got == mac_of(host(n))) ++found;
    }
    EXPECT_GE(found, NeighbourCache::kEntries / 2 - 8) << "a few may collide out of a window";
    // Far more than it holds: the latest stored is always there.
    for (unsigned n = 1; n <= 4 * NeighbourCache::kEntries; ++n) {
        cache->store(host(n), mac_of(host(n)), 10000 + n);
        MacAddress got{};
        ASSERT_TRUE(cache->lookup(host(n), got, 0)) << n;
        ASSERT_EQ(got, mac_of(host(n)));
    }
    // Every entry left is findable with its own MAC, and eviction took the
    // oldest in a window rather than reusing one slot: the table is full.
    unsigned entries = 0;
    cache->for_each([&](const Ipv4Address& ip, uint64_t) {
        MacAddress got{};
        EXPECT_TRUE(cache->lookup(ip, got, 0));
        EXPECT_EQ(got, mac_of(ip));
        ++entries;
    });
    EXPECT_GT(entries, NeighbourCache::kEntries * 3 / 4);
}

TEST(NeighbourCache, ReadersNeverSeeATornEntry)
{
    auto cache = std::make_unique<NeighbourCache>();
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> hits{0}, torn{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                for (unsigned n = 1; n <= 64; ++n) {
                    MacAddress got{};
                    if (!cache->lookup(host(n), got, 0)) continue;
                    hits.fetch_add(1, std::memory_order_relaxed);
                    const Ipv4Address ip = host(n);
                    if (got[2] != ip[0] || got[3] != ip[1] || got[4] != ip[2] || got[5] != ip[3])
                        torn.fetch_add(1, std::memory_order_relaxed);
                }
            }
        });
    }
    // The writer stores, refreshes with new versions and forgets, so the
    // same slots are rewritten under the readers all the time.
    // Bounded: until the readers have hit often enough, or two seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (unsigned round = 0;
         hits.load(std::memory_order_relaxed) < 200000 && std::chrono::steady_clock::now() < deadline; ++round) {
        const unsigned n = 1 + round % 64;
        cache->store(host(n), mac_of(host(n), static_cast<uint8_t>(round)), ~uint64_t{0});
        if (round % 7 == 0) cache->forget(host(1 + (round * 13) % 64));
    }
    stop.store(true);
    for (auto& r : readers)
        r.join();
    EXPECT_GT(hits.load(), 0u);
    EXPECT_EQ(torn.load(), 0u);
}

} // namespace
