// Neighbours' MACs for the UDP send fast path, copied from lwIP's ARP
// table (IPv4, keyed by the next hop) and its neighbour discovery caches
// (IPv6, keyed by the destination: lwIP chooses the router). lwIP (one
// engine) stays the authority: it resolves misses, and its engine
// refreshes the entries here. Any thread reads without a lock.
//
// One writer (the lwIP engine) and any number of readers: each entry is a
// seqlock, so a reader retries rather than ever seeing an address with
// another address's MAC. Fixed size, open addressing: when the probe
// window is full the entry in it expiring first is replaced; a miss only
// means the datagram takes lwIP's path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "stack/classifier.hh"

namespace ringsock::stack {

template <typename Address>
class NeighbourCache {
public:
    static constexpr unsigned kEntries = 1024;
    static constexpr unsigned kProbe = 8; // entries tried from an address's home slot

    // Any thread. True (with the MAC) when `ip` is cached and not expired
    // at `now` (any monotonic clock the writer also uses).
    bool lookup(const Address& ip, MacAddress& mac, uint64_t now) const noexcept;

    // Writer only. Inserts or refreshes `ip`. The all-zero address is
    // never an entry.
    void store(const Address& ip, const MacAddress& mac, uint64_t expires) noexcept;
    // Writer only. Drops `ip` (lwIP lost it and did not get it back).
    void forget(const Address& ip) noexcept;
    // Writer only: calls fn(ip, expires) for every entry in use.
    template <typename Fn>
    void for_each(Fn&& fn) const
    {
        for (const Entry& e : entries_) {
            const Key key = load_key(e, std::memory_order_relaxed);
            if (key != Key{}) fn(unpack(key), e.expires.load(std::memory_order_relaxed));
        }
    }

private:
    static constexpr unsigned kWords = sizeof(Address) / 4;
    static_assert(sizeof(Address) % 4 == 0, "addresses are whole 32-bit words");
    using Key = std::array<uint32_t, kWords>;

    // IPv4's entry fits half a cache line, IPv6's one line.
    struct alignas(kWords == 1 ? 32 : 64) Entry {
        std::atomic<uint32_t> seq{0};                    // odd while being written
        std::array<std::atomic<uint32_t>, kWords> key{}; // the address as stored; all zero: free
        std::atomic<uint64_t> mac{0};                    // the six bytes in the low 48 bits
        std::atomic<uint64_t> expires{0};
    };
    static Key pack(const Address& ip) noexcept;
    static Address unpack(const Key& key) noexcept;
    static unsigned home_of(const Key& key) noexcept;
    static Key load_key(const Entry& e, std::memory_order order) noexcept;
    static void write_mac(uint64_t packed, MacAddress& mac) noexcept;
    void write(Entry& e, const Key& key, uint64_t mac, uint64_t expires) noexcept;

    std::array<Entry, kEntries> entries_{};
};

using Ipv4NeighbourCache = NeighbourCache<Ipv4Address>; // keyed by the next hop
using Ipv6NeighbourCache = NeighbourCache<Ipv6Address>; // keyed by the destination

extern template class NeighbourCache<Ipv4Address>;
extern template class NeighbourCache<Ipv6Address>;

} // namespace ringsock::stack
