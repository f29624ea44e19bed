// stack/lwip_isn.cc — keyed TCP initial sequence numbers for lwIP
// (LWIP_HOOK_TCP_ISN), replacing lwIP's predictable `6510 + tcp_ticks`.
//
// RFC 6528 section 3: ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey), M a timer ticking every 4 microseconds, F a keyed PRF. F here
// is SipHash-2-4 (Aumasson and Bernstein) under a 128-bit key from
// getrandom(), the construction Linux uses for the same purpose. The clock
// is CLOCK_MONOTONIC rather than lwIP's tcp_ticks: tcp_ticks advances every
// 100 ms, so a reused 4-tuple within that time would get the same ISN,
// which is what M exists to prevent. Called by lwIP on the lwIP engine
// only; ringsock_lwip_isn_set_key must not race with it. Limits: the key
// lives for the process; a process that wants rekeying calls set_key.

#include <sys/random.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "lwip/ip_addr.h"
#include "ringsock_hooks.h"
}

namespace {

using SipKey = std::array<std::uint64_t, 2>;

std::uint64_t load_le64(const std::uint8_t* p)
{
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof v); // x86-64 is little-endian (arch/cc.h checks)
    return v;
}

constexpr std::uint64_t rotl(std::uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

struct SipState {
    std::uint64_t v0, v1, v2, v3;

    void round()
    {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    }
};

// SipHash-2-4 of `len` bytes at `in` under `key`, per the reference
// implementation (github.com/veorq/SipHash).
std::uint64_t siphash24(const std::uint8_t* in, std::size_t len, const SipKey& key)
{
    SipState s{0x736f6d6570736575ULL ^ key[0], 0x646f72616e646f6dULL ^ key[1], 0x6c7967656e657261ULL ^ key[0],
               0x7465646279746573ULL ^ key[1]};
    const std::size_t whole = len - (len % 8);
    for (std::size_t i = 0; i < whole; i += 8) {
        const std::uint64_t m = load_le64(in + i);
        s.v3 ^= m;
        s.round();
        s.round();
        s.v0 ^= m;
    }
    std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
    for (std::size_t i = 0; i < len % 8; ++i) {
        b |= static_cast<std::uint64_t>(in[whole + i]) << (8 * i);
    }
    s.v3 ^= b;
    s.round();
    s.round();
    s.v0 ^= b;
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        s.round();
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

SipKey random_key()
{
    SipKey key{};
    if (getrandom(key.data(), sizeof key, 0) != static_cast<ssize_t>(sizeof key)) {
        // Predictable ISNs are the vulnerability this file exists to close.
        std::fputs("ringsock: getrandom() failed; refusing to use predictable TCP ISNs\n", stderr);
        std::abort();
    }
    return key;
}

SipKey& isn_key()
{
    static SipKey key = random_key();
    return key;
}

// RFC 6528's M: a 32-bit clock that advances every 4 microseconds.
std::uint32_t four_us_clock()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::uint64_t ns =
        static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
    return static_cast<std::uint32_t>(ns / 4000U);
}

// Writes the address family and 16 address bytes (IPv4 zero-padded), so
// that an IPv4 and an IPv6 address never hash alike.
std::uint8_t* put_address(std::uint8_t* out, const ip_addr_t* addr)
{
    if (IP_IS_V6(addr)) {
        *out++ = 6;
        std::memcpy(out, ip_2_ip6(addr)->addr, 16);
    } else {
        *out++ = 4;
        std::memset(out, 0, 16);
        std::memcpy(out, &ip_2_ip4(addr)->addr, 4);
    }
    return out + 16;
}

} // namespace

extern "C" std::uint32_t ringsock_lwip_tcp_isn(const struct ip_addr* local_ip, std::uint16_t local_port,
                                               const struct ip_addr* remote_ip, std::uint16_t remote_port)
{
    // 2 x (1 family byte + 16 address bytes) + 2 x 2 port bytes = 38 bytes.
    std::array<std::uint8_t, 38> tuple{};
    std::uint8_t* p = put_address(tuple.data(), local_ip);
    p = put_address(p, remote_ip);
    std::memcpy(p, &local_port, 2);
    std::memcpy(p + 2, &remote_port, 2);
    const std::uint64_t f = siphash24(tuple.data(), tuple.size(), isn_key());
    return four_us_clock() + static_cast<std::uint32_t>(f);
}

extern "C" void ringsock_lwip_isn_set_key(const std::uint8_t key[16])
{
    SipKey k{};
    std::memcpy(k.data(), key, sizeof k);
    isn_key() = k;
}
