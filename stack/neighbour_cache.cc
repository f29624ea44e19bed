#include "stack/neighbour_cache.hh"

#include <cstring>

namespace ringsock::stack {

uint32_t NeighbourCache::pack_ip(const Ipv4Address& ip) noexcept
{
    uint32_t v;
    std::memcpy(&v, ip.data(), sizeof(v));
    return v;
}

Ipv4Address NeighbourCache::unpack_ip(uint32_t v) noexcept
{
    Ipv4Address ip;
    std::memcpy(ip.data(), &v, sizeof(v));
    return ip;
}

unsigned NeighbourCache::home_of(uint32_t ip) noexcept
{
    // Fibonacci hashing: neighbours differ mostly in their last byte.
    return static_cast<unsigned>((ip * 2654435769u) >> 22) % kEntries;
}

bool NeighbourCache::lookup(const Ipv4Address& ip, MacAddress& mac, uint64_t now) const noexcept
{
    const uint32_t want = pack_ip(ip);
    if (want == 0) return false;
    const unsigned home = home_of(want);
    for (unsigned i = 0; i < kProbe; ++i) {
        const Entry& e = entries_[(home + i) % kEntries];
        for (;;) {
            const uint32_t before = e.seq.load(std::memory_order_acquire);
            if (before & 1) continue; // being written: try again
            // Acquire loads keep the second read of seq after them (no
            // standalone fence: ThreadSanitizer cannot model one).
            const uint32_t got_ip = e.ip.load(std::memory_order_acquire);
            const uint64_t got_mac = e.mac.load(std::memory_order_acquire);
            const uint64_t expires = e.expires.load(std::memory_order_acquire);
            if (e.seq.load(std::memory_order_relaxed) != before) continue;
            if (got_ip != want) break;
            if (expires <= now) return false;
            for (unsigned b = 0; b < 6; ++b)
                mac[b] = static_cast<uint8_t>(got_mac >> (8 * b));
            return true;
        }
    }
    return false;
}

void NeighbourCache::write(Entry& e, uint32_t ip, uint64_t mac, uint64_t expires) noexcept
{
    const uint32_t seq = e.seq.load(std::memory_order_relaxed);
    // Release stores: a reader that sees any new field also sees seq odd.
    e.seq.store(seq + 1, std::memory_order_relaxed);
    e.ip.store(ip, std::memory_order_release);
    e.mac.store(mac, std::memory_order_release);
    e.expires.store(expires, std::memory_order_release);
    e.seq.store(seq + 2, std::memory_order_release);
}

void NeighbourCache::store(const Ipv4Address& ip, const MacAddress& mac, uint64_t expires) noexcept
{
    const uint32_t key = pack_ip(ip);
    if (key == 0) return;
    uint64_t packed = 0;
    for (unsigned b = 0; b < 6; ++b)
        packed |= uint64_t{mac[b]} << (8 * b);
    const unsigned home = home_of(key);
    Entry* target = nullptr;
    for (unsigned i = 0; i < kProbe; ++i) {
        Entry& e = entries_[(home + i) % kEntries];
        const uint32_t held = e.ip.load(std::memory_order_relaxed);
        if (held == key) {
            target = &e;
            break;
        }
        // A free slot, else the one expiring first.
        if (target == nullptr || (target->ip.load(std::memory_order_relaxed) != 0 &&
                                  (held == 0 || e.expires.load(std::memory_order_relaxed) <
                                                    target->expires.load(std::memory_order_relaxed))))
            target = &e;
    }
    write(*target, key, packed, expires);
}

void NeighbourCache::forget(const Ipv4Address& ip) noexcept
{
    const uint32_t key = pack_ip(ip);
    const unsigned home = home_of(key);
    for (unsigned i = 0; i < kProbe; ++i) {
        Entry& e = entries_[(home + i) % kEntries];
        if (e.ip.load(std::memory_order_relaxed) == key) write(e, 0, 0, 0);
    }
}

} // namespace ringsock::stack
