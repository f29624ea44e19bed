#include "stack/neighbour_cache.hh"

#include <bit>
#include <cstring>

namespace ringsock::stack {

template <typename Address>
auto NeighbourCache<Address>::pack(const Address& ip) noexcept -> Key
{
    Key key;
    std::memcpy(key.data(), ip.data(), sizeof(Address));
    return key;
}

template <typename Address>
Address NeighbourCache<Address>::unpack(const Key& key) noexcept
{
    Address ip;
    std::memcpy(ip.data(), key.data(), sizeof(Address));
    return ip;
}

template <typename Address>
unsigned NeighbourCache<Address>::home_of(const Key& key) noexcept
{
    // Fibonacci hashing, word by word (multiplied after each, so that
    // equal words do not cancel): neighbours differ mostly in their last
    // bytes.
    uint64_t h = 0;
    for (uint32_t word : key)
        h = (h ^ word) * 0x9e3779b97f4a7c15u;
    static_assert(kEntries == 1u << 10, "the hash's top ten bits index the table");
    return static_cast<unsigned>(h >> 54);
}

// The MAC in the low six bytes of `packed`, first byte lowest, stored as
// one 4-byte and one 2-byte move: the sender reads the MAC back as such
// moves at once, and six byte stores would stall that load's store
// forwarding (a tenth of WSASendTo's own samples in perf).
template <typename Address>
void NeighbourCache<Address>::write_mac(uint64_t packed, MacAddress& mac) noexcept
{
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(mac.data(), &packed, mac.size());
    } else {
        for (unsigned b = 0; b < mac.size(); ++b)
            mac[b] = static_cast<uint8_t>(packed >> (8 * b));
    }
}

template <typename Address>
auto NeighbourCache<Address>::load_key(const Entry& e, std::memory_order order) noexcept -> Key
{
    Key key;
    for (unsigned w = 0; w < kWords; ++w)
        key[w] = e.key[w].load(order);
    return key;
}

template <typename Address>
bool NeighbourCache<Address>::lookup(const Address& ip, MacAddress& mac, uint64_t now) const noexcept
{
    const Key want = pack(ip);
    if (want == Key{}) return false;
    const unsigned home = home_of(want);
    for (unsigned i = 0; i < kProbe; ++i) {
        const Entry& e = entries_[(home + i) % kEntries];
        for (;;) {
            const uint32_t before = e.seq.load(std::memory_order_acquire);
            if (before & 1) continue; // being written: try again
            // Acquire loads keep the second read of seq after them (no
            // standalone fence: ThreadSanitizer cannot model one).
            const Key got_key = load_key(e, std::memory_order_acquire);
            const uint64_t got_mac = e.mac.load(std::memory_order_acquire);
            const uint64_t expires = e.expires.load(std::memory_order_acquire);
            if (e.seq.load(std::memory_order_relaxed) != before) continue;
            if (got_key != want) break;
            if (expires <= now) return false;
            write_mac(got_mac, mac);
            return true;
        }
    }
    return false;
}

template <typename Address>
void NeighbourCache<Address>::write(Entry& e, const Key& key, uint64_t mac, uint64_t expires) noexcept
{
    const uint32_t seq = e.seq.load(std::memory_order_relaxed);
    // Release stores: a reader that sees any new field also sees seq odd.
    e.seq.store(seq + 1, std::memory_order_relaxed);
    for (unsigned w = 0; w < kWords; ++w)
        e.key[w].store(key[w], std::memory_order_release);
    e.mac.store(mac, std::memory_order_release);
    e.expires.store(expires, std::memory_order_release);
    e.seq.store(seq + 2, std::memory_order_release);
}

template <typename Address>
void NeighbourCache<Address>::store(const Address& ip, const MacAddress& mac, uint64_t expires) noexcept
{
    const Key key = pack(ip);
    if (key == Key{}) return;
    uint64_t packed = 0;
    for (unsigned b = 0; b < 6; ++b)
        packed |= uint64_t{mac[b]} << (8 * b);
    const unsigned home = home_of(key);
    Entry* target = nullptr;
    bool target_free = false;
    for (unsigned i = 0; i < kProbe; ++i) {
        Entry& e = entries_[(home + i) % kEntries];
        const Key held = load_key(e, std::memory_order_relaxed);
        if (held == key) {
            target = &e;
            break;
        }
        // A free slot, else the one expiring first.
        const bool free = held == Key{};
        if (target == nullptr || (!target_free && (free || e.expires.load(std::memory_order_relaxed) <
                                                               target->expires.load(std::memory_order_relaxed)))) {
            target = &e;
            target_free = free;
        }
    }
    write(*target, key, packed, expires);
}

template <typename Address>
void NeighbourCache<Address>::forget(const Address& ip) noexcept
{
    const Key key = pack(ip);
    if (key == Key{}) return;
    const unsigned home = home_of(key);
    for (unsigned i = 0; i < kProbe; ++i) {
        Entry& e = entries_[(home + i) % kEntries];
        if (load_key(e, std::memory_order_relaxed) == key) write(e, Key{}, 0, 0);
    }
}

template class NeighbourCache<Ipv4Address>;
template class NeighbourCache<Ipv6Address>;

} // namespace ringsock::stack
