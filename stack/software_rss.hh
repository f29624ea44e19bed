// Receive-side scaling in software, for ports with fewer RX queues than
// engines (memif, one-queue virtio, net_pcap, many VMs): the Toeplitz hash
// a NIC computes, with the same key, over the same UDP 4-tuple (source
// address, destination address, source port, destination port), so a
// flow lands on the engine a NIC with one queue per engine would have
// chosen, whatever NIC is underneath.
//
// Immutable after construction: any engine may use one concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "stack/classifier.hh"

namespace ringsock::stack {

class SoftwareRss {
public:
    // Bytes of key the longest input (IPv6 4-tuple: 36 bytes) needs.
    static constexpr std::size_t kKeyLen = 40;
    // Entries of the redirection table a NIC spreads hashes over (the low
    // bits of the hash index it); engines take entries round-robin.
    static constexpr uint32_t kRetaSize = 512;
    // The key of Microsoft's RSS specification, which many NICs use by
    // default and DPDK's tests verify against.
    static constexpr std::array<uint8_t, kKeyLen> kDefaultKey = {
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
        0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
        0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

    // The port's key; only its first kKeyLen bytes take part. Throws
    // std::invalid_argument when it is shorter.
    explicit SoftwareRss(std::span<const uint8_t> key);

    // The Toeplitz hash of the datagram's 4-tuple (IPv4 or IPv6).
    uint32_t hash(const UdpDatagram& d) const noexcept { return hash(d.family, d.src, d.dst, d.src_port, d.dst_port); }
    // The same over any 4-tuple (UDP or TCP): addresses in network order,
    // IPv4 in the first 4 bytes; ports in host order.
    uint32_t hash(uint8_t family, const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst,
                  uint16_t src_port, uint16_t dst_port) const noexcept;

    // Which of `count` (> 0) targets a NIC's default redirection table
    // would give this hash.
    static unsigned pick(uint32_t hash, unsigned count) noexcept { return (hash & (kRetaSize - 1)) % count; }

private:
    // The hash a 4-bit piece of the input adds, by its position (the
    // input's 36 bytes at most) and value: the XOR of the key's 32-bit
    // windows at its set bits. Four and a half kilobytes, so a hash is a
    // lookup per nibble (24 for IPv4) rather than a loop over the input's
    // bits, whose branch on each bit mispredicts half the time (DPDK's
    // rte_softrss_be: 7.4 % of a two-engine receive in perf, 3.3 % now).
    static constexpr std::size_t kMaxInputNibbles = 2 * 36;
    std::array<std::array<uint32_t, 16>, kMaxInputNibbles> by_nibble_{};
};

} // namespace ringsock::stack
