// The send fast path's neighbour caches (IPv4 and IPv6 addresses): lookups
// hit only live entries, refreshes replace, expiry and forget end an
// entry, a full probe window replaces the entry expiring first, and
// concurrent readers never see an address paired with another address's
// MAC while the writer churns.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "stack/neighbour_cache.hh"

namespace {

using ringsock::stack::Ipv4Address;
using ringsock::stack::Ipv6Address;
using ringsock::stack::MacAddress;
using ringsock::stack::NeighbourCache;

// Host n: 198.18.x.y, or 2001:2:0:n::x:y (n in two words, so that a key
// read half from another entry would differ).
template <typename Address>
Address host(unsigned n)
{
    Address a{};
    if constexpr (sizeof(Address) == 4) {
        a = {198, 18, 0, 0};
    } else {
        a[0] = 0x20, a[1] = 0x01, a[3] = 0x02;
        a[6] = static_cast<uint8_t>(n >> 8), a[7] = static_cast<uint8_t>(n);
    }
    a[a.size() - 2] = static_cast<uint8_t>(n >> 8);
    a[a.size() - 1] = static_cast<uint8_t>(n);
    return a;
}

// A MAC that names its address's last four bytes, so a torn read shows.
template <typename Address>
MacAddress mac_of(const Address& ip, uint8_t version = 0)
{
    const std::size_t n = ip.size();
    return {0x02, version, ip[n - 4], ip[n - 3], ip[n - 2], ip[n - 1]};
}

template <typename Address>
class Neighbours : public ::testing::Test {
protected:
    using Cache = NeighbourCache<Address>;
    static Address at(unsigned n) { return host<Address>(n); }
};
using Families = ::testing::Types<Ipv4Address, Ipv6Address>;
TYPED_TEST_SUITE(Neighbours, Families);

TYPED_TEST(Neighbours, LooksUpWhatWasStoredUntilItExpires)
{
    auto cache = std::make_unique<typename TestFixture::Cache>();
    const auto one = TestFixture::at(1);
    MacAddress got{};
    EXPECT_FALSE(cache->lookup(one, got, 0));
    cache->store(one, mac_of(one), 100);
    ASSERT_TRUE(cache->lookup(one, got, 99));
    EXPECT_EQ(got, mac_of(one));
    EXPECT_FALSE(cache->lookup(one, got, 100)) << "expired at its time";
    EXPECT_FALSE(cache->lookup(TestFixture::at(2), got, 0));
    cache->store(one, mac_of(one, 7), 200); // refreshed with a new MAC
    ASSERT_TRUE(cache->lookup(one, got, 150));
    EXPECT_EQ(got, mac_of(one, 7));
    cache->forget(one);
    EXPECT_FALSE(cache->lookup(one, got, 0));
    cache->store(TypeParam{}, mac_of(one), 100);
    EXPECT_FALSE(cache->lookup(TypeParam{}, got, 0)) << "the all-zero address is never an entry";
    unsigned entries = 0;
    cache->for_each([&](const TypeParam&, uint64_t) { ++entries; });
    EXPECT_EQ(entries, 0u);
}

TYPED_TEST(Neighbours, AddressesDifferingInAnyWordAreDifferentEntries)
{
    auto cache = std::make_unique<typename TestFixture::Cache>();
    const auto one = TestFixture::at(1);
    cache->store(one, mac_of(one), 100);
    for (std::size_t byte = 0; byte < one.size(); ++byte) {
        auto other = one;
        other[byte] ^= 0x80;
        MacAddress got{};
        EXPECT_FALSE(cache->lookup(other, got, 0)) << "byte " << byte;
    }
}

TYPED_TEST(Neighbours, HoldsManyNeighboursAndEvictsTheOneExpiringFirst)
{
    using Cache = typename TestFixture::Cache;
    auto cache = std::make_unique<Cache>();
    // Half the capacity: every one fits its probe window.
    for (unsigned n = 1; n <= Cache::kEntries / 2; ++n)
        cache->store(TestFixture::at(n), mac_of(TestFixture::at(n)), 1000 + n);
    unsigned found = 0;
    for (unsigned n = 1; n <= Cache::kEntries / 2; ++n) {
        MacAddress got{};
        if (cache->lookup(TestFixture::at(n), got, 0) && got == mac_of(TestFixture::at(n))) ++found;
    }
    EXPECT_GE(found, Cache::kEntries / 2 - 8) << "a few may collide out of a window";
    // Far more than it holds: the latest stored is always there.
    for (unsigned n = 1; n <= 4 * Cache::kEntries; ++n) {
        cache->store(TestFixture::at(n), mac_of(TestFixture::at(n)), 10000 + n);
        MacAddress got{};
        ASSERT_TRUE(cache->lookup(TestFixture::at(n), got, 0)) << n;
        ASSERT_EQ(got, mac_of(TestFixture::at(n)));
    }
    // Every entry left is findable with its own MAC, and eviction took the
    // oldest in a window rather than reusing one slot: the table is full.
    unsigned entries = 0;
    cache->for_each([&](const TypeParam& ip, uint64_t) {
        MacAddress got{};
        EXPECT_TRUE(cache->lookup(ip, got, 0));
        EXPECT_EQ(got, mac_of(ip));
        ++entries;
    });
    EXPECT_GT(entries, Cache::kEntries * 3 / 4);
}

TYPED_TEST(Neighbours, ReadersNeverSeeATornEntry)
{
    auto cache = std::make_unique<typename TestFixture::Cache>();
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> hits{0}, torn{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                for (unsigned n = 1; n <= 64; ++n) {
                    MacAddress got{};
                    const auto ip = TestFixture::at(n);
                    if (!cache->lookup(ip, got, 0)) continue;
                    hits.fetch_add(1, std::memory_order_relaxed);
                    const MacAddress want = mac_of(ip, got[1]); // any version, this address
                    if (got != want) torn.fetch_add(1, std::memory_order_relaxed);
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
        cache->store(TestFixture::at(n), mac_of(TestFixture::at(n), static_cast<uint8_t>(round)), ~uint64_t{0});
        if (round % 7 == 0) cache->forget(TestFixture::at(1 + (round * 13) % 64));
    }
    stop.store(true);
    for (auto& r : readers)
        r.join();
    EXPECT_GT(hits.load(), 0u);
    EXPECT_EQ(torn.load(), 0u);
}

} // namespace
