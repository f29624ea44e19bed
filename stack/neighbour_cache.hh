// IPv4 neighbours' MACs for the UDP send fast path, copied from lwIP's ARP
// table. lwIP (one engine) stays the authority: it resolves misses, and its
// engine refreshes the entries here. Any thread reads without a lock.
//
// One writer (the lwIP engine) and any number of readers: each entry is a
// seqlock, so a reader retries rather than ever seeing an address with
// another address's MAC. Fixed size, open addressing: when the probe
// window is full the oldest entry in it is replaced; a miss only means the
// datagram takes lwIP's path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "stack/classifier.hh"

namespace ringsock::stack {

class NeighbourCache {
public:
    static constexpr unsigned kEntries = 1024;
    static constexpr unsigned kProbe = 8; // entries tried from an address's home slot

    // Any thread. True (with the MAC) when `ip` is cached and not expired
    // at `now` (any monotonic clock the writer also uses).
    bool lookup(const Ipv4Address& ip, MacAddress& mac, uint64_t now) const noexcept;

    // Writer only. Inserts or refreshes `ip`.
    void store(const Ipv4Address& ip, const MacAddress& mac, uint64_t expires) noexcept;
    // Writer only. Drops `ip` (lwIP lost it and did not get it back).
    void forget(const Ipv4Address& ip) noexcept;
    // Writer only: calls fn(ip, expires) for every entry in use.
    template <typename Fn>
    void for_each(Fn&& fn) const
    {
        for (const Entry& e : entries_) {
            const uint32_t ip = e.ip.load(std::memory_order_relaxed);
            if (ip != 0) fn(unpack_ip(ip), e.expires.load(std::memory_order_relaxed));
        }
    }

private:
    struct alignas(32) Entry {
        std::atomic<uint32_t> seq{0}; // odd while being written
        std::atomic<uint32_t> ip{0};  // network order as stored; 0: free
        std::atomic<uint64_t> mac{0}; // the six bytes in the low 48 bits
        std::atomic<uint64_t> expires{0};
    };
    static uint32_t pack_ip(const Ipv4Address& ip) noexcept;
    static Ipv4Address unpack_ip(uint32_t v) noexcept;
    static unsigned home_of(uint32_t ip) noexcept;
    void write(Entry& e, uint32_t ip, uint64_t mac, uint64_t expires) noexcept;

    std::array<Entry, kEntries> entries_{};
};

} // namespace ringsock::stack
