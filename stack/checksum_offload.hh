// Checksum offload between lwIP and a port: which checksums the port
// computes on transmit, and the per-frame marks (ol_flags, header lengths,
// pseudo-header sum) that ask it to. Kept out of lwip_netif.cc because
// rte_ip.h, which computes the pseudo-header, cannot share a translation
// unit with lwIP's headers.
//
// What lwIP leaves out must be exactly what the port puts in: the netif's
// checksum flags and mark_tx_checksums() both follow one TxChecksums.
// Any core; no state.
#pragma once

#include <cstdint>

struct rte_mbuf;

namespace ringsock::stack {

// The transmit checksums a port computes for lwIP's frames. UDP is never
// among them: lwIP fragments a datagram larger than the MTU after summing
// it, and no port can sum a datagram spread over fragments, so UDP sums
// stay lwIP's. (A send path that builds whole datagrams itself can offload
// theirs.)
struct TxChecksums {
    bool ipv4 = false; // IPv4 header checksum
    bool tcp = false;  // TCP over IPv4 and IPv6
};

// From the offloads a port granted (rte_eth_conf txmode.offloads).
TxChecksums tx_checksums_from_offloads(uint64_t tx_offloads) noexcept;

// What mark_tx_checksums() asked the port to compute for one frame.
struct TxChecksumMarks {
    bool ipv4 = false;
    bool tcp = false;
    bool any() const noexcept { return ipv4 || tcp; }
};

// Marks a frame lwIP built (headers in the first segment, checksum fields
// lwIP left at zero for what `offload` covers) so the port computes those
// checksums: l2_len, l3_len, RTE_MBUF_F_TX_IPV4/IPV6, _IP_CKSUM, _TCP_CKSUM,
// and the pseudo-header sum in the TCP checksum field, as rte_mbuf_core.h
// asks of an application. Frames it cannot parse, or that carry neither
// IPv4 nor TCP, are left unmarked. An IPv4 fragment's TCP checksum cannot
// be offloaded (the port sees one fragment); lwIP never fragments TCP
// (segments are at most the MSS), so such a frame is only marked for its
// IPv4 header.
TxChecksumMarks mark_tx_checksums(rte_mbuf* m, TxChecksums offload) noexcept;

// The receive side: whether the PMD vouched for a frame's checksums, read
// from its RTE_MBUF_F_RX_*_CKSUM flags (GOOD, or NONE: integrity checked).
// BAD never reaches lwIP: the classifier drops it. Never l4_verified for a
// fragment (packet_type L4_FRAG, as the classifier marks them).
struct RxChecksumVerdict {
    bool ip_verified = false;
    bool l4_verified = false;
};
RxChecksumVerdict rx_checksum_verdict(const rte_mbuf* m) noexcept;

} // namespace ringsock::stack
