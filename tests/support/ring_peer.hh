// An in-process peer for the API tests: two rte_rings that a net_ring port
// made by WSAStartup from the profile uses as its queues. The test enqueues
// hand-built frames on the port's receive ring and takes what the stack sends
// off its transmit ring; no wire, no namespace, nothing lost on the way.
//
// No DPDK or system socket header here: the tests that use it include
// <ringsock/winsock2.h>, which cannot share a translation unit with them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ringsock::testing {

// The peer's addresses, and ours as ring.toml sets them (kept by the test's
// overrides).
inline constexpr const char* kRingPeerIpv4 = "198.18.0.1";
inline constexpr const char* kRingOurIpv4 = "198.18.0.2";
inline constexpr const char* kRingPeerIpv6 = "2001:2::1";
inline constexpr const char* kRingOurIpv6 = "2001:2::2"; // ring.toml's interface.ipv6
inline constexpr const char* kRingOurMac = "02:00:00:00:00:02";

// The most queue pairs the peer makes.
inline constexpr unsigned kMaxRingPeerQueuePairs = 4;

// Before WSAStartup (no EAL needed): makes two rings per queue pair (the
// port's receive and transmit queue) on ordinary memory and returns the
// port.device value that hands them to net_ring: "net_ring0,internal=0x...",
// the PMD's own in-process argument. The rings are made once per process;
// asking again for another number of pairs fails (empty).
std::string ring_device_devarg(unsigned queue_pairs = 1);

// Before WSAStartup: the profile overrides that put ring.toml's port on the
// peer's rings with our addresses (port.device, interface.ipv4,
// interface.mac, and for more than one pair the queue counts with RSS mode
// "none": the peer picks each frame's queue), for ringsock_configure;
// empty (with ring_peer_error()) when the rings cannot be made.
std::vector<std::string> ring_peer_overrides(unsigned queue_pairs = 1);

// After WSAStartup: the mempool the peer builds its frames from. Idempotent;
// false (with ring_peer_error()) if it cannot be made.
bool start_peer();

// One UDP/IPv4 datagram from kRingPeerIpv4:src_port to kRingOurIpv4:dst_port,
// to our MAC, with a correct UDP checksum, or a wrong non-zero one if
// `bad_checksum`, on receive queue `queue` (modulo the pairs made). False
// if no mbuf or the ring is full.
bool send_udp(uint16_t src_port, uint16_t dst_port, const std::vector<uint8_t>& payload, bool bad_checksum = false,
              unsigned queue = 0);

// One UDP datagram between any two addresses of one family, as inet_pton
// reads them (IPv6 if the destination has a ':'): to our MAC, or for a
// group the MAC it maps to, or for 255.255.255.255 or an IPv4 address
// ending in .255 (ring.toml's /24 broadcast) the broadcast MAC. False if
// the addresses do not parse, no mbuf, or the ring is full.
bool send_udp_between(const std::string& source, const std::string& destination, uint16_t src_port, uint16_t dst_port,
                      const std::vector<uint8_t>& payload, bool bad_checksum = false, unsigned queue = 0);
// The bytes of the frame send_udp() would put on the ring (a good one), for
// a test to damage before send_frame().
std::vector<uint8_t> udp_frame(uint16_t src_port, uint16_t dst_port, const std::vector<uint8_t>& payload);

// Any bytes as one frame on receive queue 0, as a PMD would hand them
// over. False if no mbuf, the frame is larger than one, or the ring is full.
bool send_frame(const std::vector<uint8_t>& frame);

// `count` copies of one datagram of `payload_size` bytes (0x5a each), as
// send_udp builds it, put on receive queue 0 in bursts of 64 with one
// checksum computation; returns how many went on (fewer when the ring or
// the pool runs out). For benchmarks: the per-frame cost is an mbuf and a
// copy of the frame.
unsigned send_udp_copies(uint16_t src_port, uint16_t dst_port, std::size_t payload_size, unsigned count);

// Frees whatever the stack has sent so far on every transmit queue (ARP,
// neighbour discovery...); returns how many frames that was.
unsigned drain_sent();

// What drain_answering_neighbours() found on the transmit queues.
struct DrainedFrames {
    unsigned frames = 0;          // every frame freed
    unsigned udp_to_peer = 0;     // UDP datagrams to kRingPeerIpv4 or kRingPeerIpv6
    unsigned neighbour_asked = 0; // ARP requests and solicitations for those, answered
};

// As drain_sent(), and each ARP request and neighbour solicitation for the
// peer's addresses is answered on receive queue 0 with the peer's MAC
// (02:00:00:00:00:01), as a host on the link would: so that the stack's
// sends to the peer resolve and take the fast path. A benchmark of sends
// calls this as its wire.
DrainedFrames drain_answering_neighbours();

// Frames still waiting on the port's receive queues (not yet polled).
unsigned pending_received();

// Until the engines have taken every frame off the peer's receive queues:
// true, or false after 5 s with some still there.
bool wait_polled();

// The peer's mbufs not back in its pool: frames on the receive ring, and
// datagrams the stack still holds (queued on a socket, being copied).
unsigned peer_mbufs_in_use();

const std::string& ring_peer_error();

} // namespace ringsock::testing
