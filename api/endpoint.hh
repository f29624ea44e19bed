// A socket address in the form the engines compare: family, port and the
// address bytes in network order, whatever sockaddr the caller used.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

struct sockaddr;

namespace ringsock::api {

// Non-zero when two 16-byte addresses differ, from two 8-byte compares: the
// engine compares a socket's address with every datagram's, where a byte
// loop or std::equal (a call to memcmp) cost 3 % of a receive.
inline uint64_t address_halves_differ(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b) noexcept
{
    uint64_t a_low = 0;
    uint64_t a_high = 0;
    uint64_t b_low = 0;
    uint64_t b_high = 0;
    std::memcpy(&a_low, a.data(), 8);
    std::memcpy(&a_high, a.data() + 8, 8);
    std::memcpy(&b_low, b.data(), 8);
    std::memcpy(&b_high, b.data() + 8, 8);
    return (a_low ^ b_low) | (a_high ^ b_high);
}

struct Endpoint {
    uint8_t family = 0;             // 4 or 6; 0: none
    uint16_t port = 0;              // host order
    std::array<uint8_t, 16> addr{}; // network order; IPv4 in the first 4 bytes

    // An IPv4 address reads as its own four bytes: a send checks the
    // endpoint it just built from the caller's sockaddr, and two 8-byte
    // loads across those narrower stores stall store forwarding (half of
    // WSASendTo's own samples in perf).
    bool is_any() const noexcept
    {
        if (family == 4) {
            uint32_t v4 = 0;
            std::memcpy(&v4, addr.data(), sizeof(v4));
            return v4 == 0;
        }
        return address_halves_differ(addr, {}) == 0;
    }
    bool is_ipv4_multicast() const noexcept { return family == 4 && (addr[0] & 0xf0) == 0xe0; }
    bool is_ipv6_multicast() const noexcept { return family == 6 && addr[0] == 0xff; }
    bool is_ipv6_link_local() const noexcept { return family == 6 && addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80; }
    // fe80::/10 or a group of interface- or link-local scope (ff01::/16,
    // ff02::/16): the addresses a sin6_scope_id names the link of.
    bool is_ipv6_link_scoped() const noexcept
    {
        return is_ipv6_link_local() || (is_ipv6_multicast() && (addr[1] & 0x0f) <= 2);
    }
    // 127.0.0.0/8 or ::1.
    bool is_loopback() const noexcept
    {
        if (family == 4) return addr[0] == 127;
        static constexpr std::array<uint8_t, 16> ipv6_loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return family == 6 && addr == ipv6_loopback;
    }
    bool same_address(const Endpoint& o) const noexcept { return family == o.family && addr == o.addr; }
    // ::ffff:a.b.c.d (RFC 4291 2.5.5.2): how a dual-stack socket names an
    // IPv4 peer.
    bool is_ipv4_mapped() const noexcept
    {
        static constexpr std::array<uint8_t, 12> prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return family == 6 && std::memcmp(addr.data(), prefix.data(), prefix.size()) == 0;
    }
    bool operator==(const Endpoint&) const = default;
};

// The IPv4 endpoint a mapped address stands for; `e` itself otherwise.
Endpoint unmapped(const Endpoint& e) noexcept;

// How an endpoint reads to a socket of `socket_family`: an IPv4 one, on an
// IPv6 (dual-stack) socket, as ::ffff:a.b.c.d.
Endpoint as_seen_by(uint8_t socket_family, const Endpoint& e) noexcept;

// The one interface's index: in IN_PKTINFO/IN6_PKTINFO and as the scope of
// the link-local addresses we name.
inline constexpr uint32_t kInterfaceIndex = 1;

// Whether an interface index a caller gave names the one interface: its
// index, or 0, which leaves the choice to us.
inline constexpr bool names_our_interface(uint32_t index) noexcept
{
    return index == 0 || index == kInterfaceIndex;
}

// The size of the sockaddr for a family (sockaddr_in or sockaddr_in6).
int sockaddr_size(uint8_t family) noexcept;

// Reads `name` for a socket of `family`. Returns 0, WSAEFAULT when the
// pointer is null or `namelen` too small, WSAEAFNOSUPPORT when the family
// differs from the socket's, WSAEADDRNOTAVAIL when a link-scoped IPv6
// address's sin6_scope_id names an interface we do not have (an address
// on another link is not one we can reach or be).
int endpoint_from_sockaddr(const sockaddr* name, int namelen, uint8_t family, Endpoint& out) noexcept;

// Writes `e`, as a socket of `socket_family` names it (as_seen_by), into
// `name` (room `*namelen`) and sets *namelen to the size written; a
// link-local IPv6 address (fe80::/10, ff01::/16, ff02::/16) gets the
// interface's index as its scope id, as Windows names them. Returns 0 or
// WSAEFAULT when the room is short (nothing written).
int endpoint_to_sockaddr(uint8_t socket_family, const Endpoint& e, sockaddr* name, int* namelen) noexcept;

} // namespace ringsock::api
