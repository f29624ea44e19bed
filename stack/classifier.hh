// The packet classifier: splits each received burst into UDP datagrams for
// the per-core fast path, frames lwIP must see (ARP, ICMP/ICMPv6, IGMP, TCP,
// IPv4 fragments, IPv6 with extension headers it must act on, UDP to a port
// nobody bound on one of our addresses) and drops, each counted by reason.
//
// One Classifier per engine, used only on that engine's lcore: classify(),
// bind_udp_port() and unbind_udp_port() are single-threaded by design (the
// socket layer binds on the socket's home core; another core asks over a
// ring). drops()/snapshot() may be read from any thread. Nothing on the
// classify path allocates, locks, throws, logs or makes a virtual call.
//
// Limits: only the first segment of an mbuf is parsed; a frame whose headers
// do not all fit in its first segment is dropped as `truncated` (PMDs put at
// least 2 KB in the first segment, so only a malformed or hostile frame gets
// there). Length fields are checked against the whole packet (pkt_len), so a
// UDP payload may continue into later segments (see UdpDatagram). IPv4 and
// IPv6 multicast destinations are accepted whatever groups are joined: group
// filtering belongs to the multicast layer, later.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "dataplane/counters.hh"
#include "dataplane/engine.hh"

struct rte_mbuf;

namespace ringsock::stack {

using MacAddress = std::array<uint8_t, 6>;
using Ipv4Address = std::array<uint8_t, 4>;  // network order, as on the wire
using Ipv6Address = std::array<uint8_t, 16>; // network order, as on the wire

struct Ipv4Interface {
    Ipv4Address address{};
    uint8_t prefix_len = 32; // 0..32; gives the directed broadcast we accept
};

struct ClassifierConfig {
    // Our MAC. When set, unicast frames for another MAC are dropped as
    // not_for_us (a promiscuous port sees its neighbours' traffic); unset,
    // the destination MAC is not looked at.
    std::optional<MacAddress> mac;
    // Our addresses, at most kMaxAddresses of each family. An empty list
    // means "not told": any destination of that family is taken as ours.
    std::vector<Ipv4Interface> ipv4;
    std::vector<Ipv6Address> ipv6;
    // VLAN filtering. Untagged and priority-tagged (VID 0) frames are always
    // accepted. A single tag must equal `vlan`; a double tag must be
    // `outer_vlan` outside and `vlan` inside. Anything else, and any tag
    // when `vlan` is unset, is dropped as vlan_mismatch. Tags the NIC
    // stripped (RTE_MBUF_F_RX_VLAN_STRIPPED / _QINQ_STRIPPED) count as tags.
    std::optional<uint16_t> vlan;
    std::optional<uint16_t> outer_vlan;
    // Verify IPv4 header and fast-path UDP checksums in software when the
    // PMD gave no verdict. Off only for ports whose traffic is trusted.
    bool software_checksums = true;
    // UDP to a port nobody bound, unicast to one of our addresses: true
    // hands it to lwIP (which answers ICMP port unreachable, as a host
    // must); false drops it as no_socket (a pure receiver that wants no
    // ICMP generated and no load on the lwIP core). Broadcast and multicast
    // UDP to an unbound port is always dropped as no_socket: nothing
    // answers those (RFC 1122 3.2.2) and lwIP would only discard it.
    bool unbound_udp_to_lwip = true;

    static constexpr std::size_t kMaxAddresses = 8; // per family; scanned linearly per packet
};

// Why a frame was dropped. Values index DropCounters::by_reason.
enum class DropReason : uint8_t {
    truncated,    // the first segment ends inside a fixed-size header (Ethernet, tag, ARP, IPv4, IPv6, extension)
    bad_length,   // a length field (IHL, total/payload length, UDP length, TCP offset, extension length) disagrees with
                  // the bytes present
    bad_checksum, // IPv4 header or UDP checksum wrong (software or PMD verdict), or zero UDP checksum over IPv6
    bad_version,  // IPv4 ethertype with version != 4, IPv6 ethertype with version != 6
    bad_header,   // IHL < 5, TCP data offset < 5, malformed ARP or IPv6 option, extension chain past our bound
    unknown_ethertype, // not ARP, IPv4, IPv6 or a VLAN tag
    not_for_us,        // unicast MAC or IP destination that is not ours
    vlan_mismatch,     // tagged with a VLAN id we were not configured for, or more than two tags
    no_socket,         // UDP to an unbound port that lwIP is not to see (see ClassifierConfig::unbound_udp_to_lwip)
    martian,           // an address no wire may carry: from 127/8, a multicast or the limited broadcast, to 127/8;
                       // IPv6 from or to ::1 or an IPv4-mapped address, from a multicast address; from one of our
                       // own addresses or our subnet's broadcast (IPv6: but ICMPv6), from 0/8 to a unicast address
    count_
};
inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::count_);

// Stable name for telemetry and logs ("truncated", "bad_length", ...).
std::string_view drop_reason_name(DropReason reason) noexcept;

// Written only by the classifying engine's core; readable from any thread.
struct alignas(dataplane::kCacheLine) ClassifierCounters {
    dataplane::RelaxedCounter udp_fastpath;
    dataplane::RelaxedCounter lwip;
    std::array<dataplane::RelaxedCounter, kDropReasonCount> drops;

    dataplane::RelaxedCounter& drop(DropReason r) noexcept { return drops[static_cast<std::size_t>(r)]; }
    const dataplane::RelaxedCounter& drop(DropReason r) const noexcept { return drops[static_cast<std::size_t>(r)]; }
};

// A copy of one classifier's counters at one moment, for telemetry.
struct ClassifierSnapshot {
    uint64_t udp_fastpath = 0;
    uint64_t lwip = 0;
    std::array<uint64_t, kDropReasonCount> drops{};

    uint64_t drop(DropReason r) const noexcept { return drops[static_cast<std::size_t>(r)]; }
    uint64_t total_drops() const noexcept
    {
        uint64_t total = 0;
        for (uint64_t d : drops)
            total += d;
        return total;
    }
};

// What the fast path needs about one datagram, so it never parses again.
// One cache line. The mbuf is owned by whoever holds the UdpDatagram.
// Also set on the mbuf: packet_type (RTE_PTYPE_*); frames for lwIP also get
// l2_len, l3_len and l4_len, which the fast path leaves alone.
struct alignas(dataplane::kCacheLine) UdpDatagram {
    rte_mbuf* mbuf;
    // From the start of the packet data (rte_pktmbuf_mtod). The payload is
    // contiguous when mbuf->nb_segs == 1; otherwise it may continue into the
    // following segments (read it with rte_pktmbuf_read). Ethernet padding
    // past the UDP length is not included.
    uint16_t payload_offset;
    uint16_t payload_length;
    uint16_t src_port;     // host order
    uint16_t dst_port;     // host order
    uint8_t family;        // 4 or 6
    uint8_t dst_multicast; // 1: multicast or broadcast destination
    uint8_t reserved_[6];
    std::array<uint8_t, 16> src; // network order; IPv4 in the first 4 bytes, rest zero
    std::array<uint8_t, 16> dst;
};
static_assert(sizeof(UdpDatagram) == dataplane::kCacheLine);

struct ClassifiedBurst {
    uint16_t udp = 0;     // UdpDatagrams written
    uint16_t lwip = 0;    // mbufs written for lwIP
    uint16_t dropped = 0; // mbufs freed and counted
};

// The set of bound UDP ports: 65536 bits (8 KB), one test per datagram.
// A bitmap rather than a callback because it is one load on the hot path
// and the socket layer only needs to flip a bit when it binds.
class UdpPortMap {
public:
    void set(uint16_t port) noexcept { words_[port >> 6] |= bit(port); }
    void clear(uint16_t port) noexcept { words_[port >> 6] &= ~bit(port); }
    bool test(uint16_t port) const noexcept { return (words_[port >> 6] & bit(port)) != 0; }

private:
    static constexpr uint64_t bit(uint16_t port) noexcept { return uint64_t{1} << (port & 63); }
    std::array<uint64_t, 65536 / 64> words_{};
};

class Classifier {
public:
    // Throws std::invalid_argument naming the field when the configuration
    // has more than kMaxAddresses of a family, a prefix over 32, or a VLAN
    // id over 4095 (start-up only).
    explicit Classifier(const ClassifierConfig& config);

    // Port 0 is never bound (it is not a valid destination). Owner core only.
    void bind_udp_port(uint16_t port) noexcept
    {
        if (port != 0) ports_.set(port);
    }
    void unbind_udp_port(uint16_t port) noexcept { ports_.clear(port); }
    bool udp_port_bound(uint16_t port) const noexcept { return ports_.test(port); }

    // Where a burst comes from: the wire, or frames this stack already
    // vetted (lwIP's loopback of our own sends and the datagrams it
    // reassembled from fragments taken from the wire, frames another
    // engine classified and handed over). Only the wire's may pose as us.
    enum class Arrival : uint8_t { wire, vetted };

    // Classifies pkts[0 .. n), which the caller owns.
    //   udp  (out): room for n entries; gets the fast-path datagrams, in
    //               arrival order. Their mbufs stay the caller's.
    //   lwip (out): room for n entries; gets the frames for lwIP, in arrival
    //               order. Still the caller's.
    // Dropped frames are counted by reason and freed here: the caller must
    // not touch them again. `pkts` itself is left as it was (its dropped
    // entries dangle). Returns how many went each way; they sum to n.
    // Never fails. Owner core only.
    ClassifiedBurst classify(rte_mbuf* const* pkts, uint16_t n, UdpDatagram* udp, rte_mbuf** lwip,
                             Arrival arrival = Arrival::wire) noexcept;

    const ClassifierCounters& counters() const noexcept { return counters_; }
    ClassifierSnapshot snapshot() const noexcept;

    // How far ahead the burst loop prefetches packet headers: far enough to
    // hide a miss behind the parse of the packets in between, near enough
    // that the lines are still in L1 (l3fwd's PREFETCH_OFFSET is 3 too).
    static constexpr uint16_t kPrefetchDistance = 3;

private:
    struct Verdict;
    Verdict classify_one(rte_mbuf* m, UdpDatagram& out, Arrival arrival) noexcept;
    bool ipv4_is_ours(const uint8_t* dst, bool& multicast) const noexcept;
    bool ipv4_from_ourselves(const uint8_t* src, bool to_group) const noexcept;
    bool ipv6_is_ours(const uint8_t* dst) const noexcept;
    bool ipv6_is_one_of_ours(const uint8_t* address) const noexcept;
    bool vlan_accepted(const uint16_t* vids, unsigned count) const noexcept;

    ClassifierCounters counters_;
    UdpPortMap ports_;
    // Copied out of the config into fixed arrays: no pointer chasing per packet.
    std::array<uint32_t, ClassifierConfig::kMaxAddresses> ipv4_addr_{};  // network order
    std::array<uint32_t, ClassifierConfig::kMaxAddresses> ipv4_bcast_{}; // directed broadcast, network order
    std::array<Ipv6Address, ClassifierConfig::kMaxAddresses> ipv6_addr_{};
    uint8_t ipv4_count_ = 0;
    uint8_t ipv6_count_ = 0;
    MacAddress mac_{};
    bool check_mac_ = false;
    bool software_checksums_ = true;
    bool unbound_udp_to_lwip_ = true;
    int vlan_ = -1; // -1: none configured
    int outer_vlan_ = -1;
};

// Where ClassifierHandler sends what it accepted: the UDP fast path of this
// core (a later issue) and the lwIP engine's ring. Called on the classifying
// engine's core, one virtual call per burst.
class UdpSink {
public:
    virtual ~UdpSink() = default;
    // Takes ownership of every mbuf in d[0 .. n) (n >= 1), whether or not it
    // can queue them: what it cannot keep it frees and counts itself.
    virtual void on_udp(UdpDatagram* d, uint16_t n) = 0;
};

class LwipSink {
public:
    virtual ~LwipSink() = default;
    // Takes ownership of pkts[0 .. n) (n >= 1) in every case, like UdpSink.
    virtual void on_lwip(rte_mbuf** pkts, uint16_t n) = 0;
};

// Takes a whole burst from the engine: drops are freed and counted (also in
// the engine's handler_drops), fast-path datagrams go to the UdpSink and the
// rest to the LwipSink. Leaves nothing for later handlers, so it is
// registered last. Owner core only.
class ClassifierHandler final : public dataplane::BurstHandler {
public:
    // The classifier and both sinks must outlive the handler.
    ClassifierHandler(Classifier& classifier, UdpSink& udp, LwipSink& lwip) noexcept
        : classifier_(classifier), udp_(udp), lwip_(lwip)
    {
    }

    // Takes all n mbufs; returns 0.
    uint16_t on_burst(dataplane::Engine& engine, dataplane::RxQueueRef from, rte_mbuf** pkts, uint16_t n) override;

    // Bursts longer than this are classified in chunks of this size: the
    // output arrays live on the stack (64 x 64 B datagrams = 4 KB). Engines
    // receive 32 by default.
    static constexpr uint16_t kChunk = 64;

private:
    Classifier& classifier_;
    UdpSink& udp_;
    LwipSink& lwip_;
};

} // namespace ringsock::stack
