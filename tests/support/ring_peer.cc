// See ring_peer.hh. How the rings reach the port that WSAStartup makes:
// net_ring accepts "internal=<address>" naming its own struct
// ring_internal_args (rte_eth_from_rings passes its arguments so); the probe
// takes the rings from it when its `addr` member points at itself. The
// layout below is that struct's in DPDK 22.11 (drivers/net/ring/
// rte_eth_ring.c), checked against the installed PMD: the probe compares
// the value at offset 0x20 with the address it parsed, and refuses text of
// 19 characters or more.
#include "tests/support/ring_peer.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_udp.h>

namespace ringsock::testing {
namespace {

// Mirror of net_ring's struct ring_internal_args (its members are const
// there; the PMD only reads them).
struct RingInternalArgs {
    rte_ring* const* rx_queues;
    unsigned int nb_rx_queues;
    rte_ring* const* tx_queues;
    unsigned int nb_tx_queues;
    unsigned int numa_node;
    void* addr;
};
static_assert(offsetof(RingInternalArgs, rx_queues) == 0);
static_assert(offsetof(RingInternalArgs, nb_rx_queues) == 8);
static_assert(offsetof(RingInternalArgs, tx_queues) == 16);
static_assert(offsetof(RingInternalArgs, nb_tx_queues) == 24);
static_assert(offsetof(RingInternalArgs, numa_node) == 28);
static_assert(offsetof(RingInternalArgs, addr) == 32);

constexpr unsigned kRingSize = 1024;
constexpr unsigned kPoolSize = 8191;
// Per-lcore caches: the benchmark allocates on the main lcore and the engine
// frees on its own at millions per second.
constexpr unsigned kPoolCache = 256;

// Multi-producer, multi-consumer (flags 0): the test thread and the engine
// each use one end of each ring, and neither end is ever raced. Queue pair
// k: g_to_stack[k], the port's receive queue k, and g_from_stack[k], its
// transmit queue k (which engine polls and sends through which is the
// runtime's choice).
rte_ring* g_to_stack[kMaxRingPeerQueuePairs] = {};
rte_ring* g_from_stack[kMaxRingPeerQueuePairs] = {};
unsigned g_queue_pairs = 0;
RingInternalArgs g_args{};
rte_mempool* g_pool = nullptr;
std::string g_error;

rte_ring* make_ring(const char* name)
{
    const ssize_t size = rte_ring_get_memsize(kRingSize);
    if (size < 0) {
        g_error = "rte_ring_get_memsize failed";
        return nullptr;
    }
    const std::size_t rounded =
        (static_cast<std::size_t>(size) + RTE_CACHE_LINE_SIZE - 1) & ~static_cast<std::size_t>(RTE_CACHE_LINE_SIZE - 1);
    // Lives until exit: the port keeps using it.
    void* memory = std::aligned_alloc(RTE_CACHE_LINE_SIZE, rounded);
    if (memory == nullptr) {
        g_error = "no memory for a ring";
        return nullptr;
    }
    auto* ring = static_cast<rte_ring*>(memory);
    if (rte_ring_init(ring, name, kRingSize, 0) != 0) {
        g_error = std::string("rte_ring_init failed for ") + name;
        std::free(memory);
        return nullptr;
    }
    return ring;
}

bool parse_mac(const char* text, rte_ether_addr& out)
{
    unsigned b[6];
    if (std::sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) return false;
    for (int i = 0; i < 6; ++i)
        out.addr_bytes[i] = static_cast<uint8_t>(b[i]);
    return true;
}

} // namespace

std::string ring_device_devarg(unsigned queue_pairs)
{
    if (g_queue_pairs == 0) {
        if (queue_pairs == 0 || queue_pairs > kMaxRingPeerQueuePairs) {
            g_error = "queue pairs must be 1 to " + std::to_string(kMaxRingPeerQueuePairs);
            return {};
        }
        for (unsigned q = 0; q < queue_pairs; ++q) {
            g_to_stack[q] = make_ring(("rs_peer_to_stack" + std::to_string(q)).c_str());
            g_from_stack[q] = make_ring(("rs_peer_from_stack" + std::to_string(q)).c_str());
            if (g_to_stack[q] == nullptr || g_from_stack[q] == nullptr) return {};
        }
        g_queue_pairs = queue_pairs;
        g_args.rx_queues = g_to_stack;
        g_args.nb_rx_queues = queue_pairs;
        g_args.tx_queues = g_from_stack;
        g_args.nb_tx_queues = queue_pairs;
        // As rte_eth_from_ring() passes for a ring not in a memzone.
        g_args.numa_node = static_cast<unsigned int>(SOCKET_ID_ANY);
        g_args.addr = &g_args;
    } else if (queue_pairs != g_queue_pairs) {
        g_error = "the rings were made with " + std::to_string(g_queue_pairs) + " queue pairs";
        return {};
    }
    char text[64];
    std::snprintf(text, sizeof(text), "net_ring0,internal=%p", static_cast<void*>(&g_args));
    return text;
}

std::vector<std::string> ring_peer_overrides(unsigned queue_pairs)
{
    const std::string devarg = ring_device_devarg(queue_pairs);
    if (devarg.empty()) return {};
    std::vector<std::string> overrides{"port.device=" + devarg, std::string("interface.ipv4=") + kRingOurIpv4 + "/24",
                                       std::string("interface.mac=") + kRingOurMac};
    if (queue_pairs > 1) {
        // net_ring hashes nothing: the peer fills each queue itself.
        const std::string queues = std::to_string(queue_pairs);
        overrides.insert(overrides.end(),
                         {"port.rx_queues=" + queues, "port.tx_queues=" + queues, "port.rss.mode=\"none\""});
    }
    return overrides;
}

bool start_peer()
{
    if (g_pool != nullptr) return true;
    g_pool =
        rte_pktmbuf_pool_create("rs_peer_pool", kPoolSize, kPoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (g_pool == nullptr) {
        g_error = std::string("rte_pktmbuf_pool_create: ") + rte_strerror(rte_errno);
        return false;
    }
    return true;
}

namespace {

// Where a datagram goes: two addresses of one family and the MAC the
// destination maps to.
struct FrameAddresses {
    int family = AF_INET;
    std::array<uint8_t, 16> source{};
    std::array<uint8_t, 16> destination{};
    rte_ether_addr destination_mac{};
};

// Ours for a unicast destination; a group's own MAC (RFC 1112, RFC 2464);
// the broadcast MAC for 255.255.255.255 or an address ending in .255 (the
// broadcast of ring.toml's /24).
bool parse_addresses(const char* source, const char* destination, FrameAddresses& out)
{
    out.family = std::strchr(destination, ':') != nullptr ? AF_INET6 : AF_INET;
    if (inet_pton(out.family, source, out.source.data()) != 1 ||
        inet_pton(out.family, destination, out.destination.data()) != 1 || !parse_mac(kRingOurMac, out.destination_mac))
        return false;
    const uint8_t* d = out.destination.data();
    uint8_t* mac = out.destination_mac.addr_bytes;
    if (out.family == AF_INET && d[0] >= 224 && d[0] <= 239) {
        const uint8_t group[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>(d[1] & 0x7f), d[2], d[3]};
        std::memcpy(mac, group, sizeof(group));
    } else if (out.family == AF_INET && d[3] == 255) {
        std::memset(mac, 0xff, 6);
    } else if (out.family == AF_INET6 && d[0] == 0xff) {
        const uint8_t group[6] = {0x33, 0x33, d[12], d[13], d[14], d[15]};
        std::memcpy(mac, group, sizeof(group));
    }
    return true;
}

const FrameAddresses& peer_to_us()
{
    static const FrameAddresses addresses = [] {
        FrameAddresses a;
        parse_addresses(kRingPeerIpv4, kRingOurIpv4, a);
        return a;
    }();
    return addresses;
}

std::size_t udp_frame_length(int family, std::size_t payload_size)
{
    return sizeof(rte_ether_hdr) + (family == AF_INET ? sizeof(rte_ipv4_hdr) : sizeof(rte_ipv6_hdr)) +
           sizeof(rte_udp_hdr) + payload_size;
}

std::size_t udp_frame_length(std::size_t payload_size)
{
    return udp_frame_length(AF_INET, payload_size);
}

// Writes the frame send_udp_between describes at `p` (frame_len bytes).
void write_udp_frame(uint8_t* p, std::size_t frame_len, const FrameAddresses& a, uint16_t src_port, uint16_t dst_port,
                     const uint8_t* payload, std::size_t payload_size, bool bad_checksum)
{
    std::memset(p, 0, frame_len);
    static rte_ether_addr peers{};
    static const bool parsed = parse_mac("02:00:00:00:00:01", peers);
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    if (parsed) eth->src_addr = peers;
    eth->dst_addr = a.destination_mac;
    eth->ether_type = rte_cpu_to_be_16(a.family == AF_INET ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);

    const std::size_t l4_len = sizeof(rte_udp_hdr) + payload_size;
    uint8_t* l3 = p + sizeof(rte_ether_hdr);
    auto* udp =
        reinterpret_cast<rte_udp_hdr*>(l3 + (a.family == AF_INET ? sizeof(rte_ipv4_hdr) : sizeof(rte_ipv6_hdr)));
    udp->src_port = rte_cpu_to_be_16(src_port);
    udp->dst_port = rte_cpu_to_be_16(dst_port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4_len));
    if (payload_size != 0) std::memcpy(udp + 1, payload, payload_size);
    udp->dgram_cksum = 0;
    uint16_t sum = 0; // never 0 from DPDK: 0 means "none"
    // Addresses by offset: the headers are packed.
    if (a.family == AF_INET) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + l4_len));
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        std::memcpy(l3 + offsetof(rte_ipv4_hdr, src_addr), a.source.data(), 4);
        std::memcpy(l3 + offsetof(rte_ipv4_hdr, dst_addr), a.destination.data(), 4);
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        sum = rte_ipv4_udptcp_cksum(ip, udp);
    } else {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(l3);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4_len));
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        std::memcpy(l3 + offsetof(rte_ipv6_hdr, src_addr), a.source.data(), 16);
        std::memcpy(l3 + offsetof(rte_ipv6_hdr, dst_addr), a.destination.data(), 16);
        sum = rte_ipv6_udptcp_cksum(ip, udp);
    }
    if (bad_checksum) {
        sum = static_cast<uint16_t>(sum ^ 0x5a5a);
        if (sum == 0) sum = 0x1234;
    }
    udp->dgram_cksum = sum;
}

// The receive ring of queue `queue`, counted modulo the queue pairs made.
rte_ring* receive_ring(unsigned queue)
{
    return g_queue_pairs == 0 ? nullptr : g_to_stack[queue % g_queue_pairs];
}

bool enqueue_udp(const FrameAddresses& a, uint16_t src_port, uint16_t dst_port, const std::vector<uint8_t>& payload,
                 bool bad_checksum, unsigned queue)
{
    rte_ring* ring = receive_ring(queue);
    if (g_pool == nullptr || ring == nullptr) return false;
    const std::size_t frame_len = udp_frame_length(a.family, payload.size());
    if (frame_len > RTE_MBUF_DEFAULT_DATAROOM) return false;
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    if (m == nullptr) return false;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(frame_len)));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return false;
    }
    write_udp_frame(p, frame_len, a, src_port, dst_port, payload.data(), payload.size(), bad_checksum);
    if (rte_ring_enqueue(ring, m) != 0) {
        rte_pktmbuf_free(m);
        return false;
    }
    return true;
}

} // namespace

bool send_udp(uint16_t src_port, uint16_t dst_port, const std::vector<uint8_t>& payload, bool bad_checksum,
              unsigned queue)
{
    return enqueue_udp(peer_to_us(), src_port, dst_port, payload, bad_checksum, queue);
}

bool send_udp_between(const std::string& source, const std::string& destination, uint16_t src_port, uint16_t dst_port,
                      const std::vector<uint8_t>& payload, bool bad_checksum, unsigned queue)
{
    FrameAddresses a;
    return parse_addresses(source.c_str(), destination.c_str(), a) &&
           enqueue_udp(a, src_port, dst_port, payload, bad_checksum, queue);
}

std::vector<uint8_t> udp_frame(uint16_t src_port, uint16_t dst_port, const std::vector<uint8_t>& payload)
{
    std::vector<uint8_t> frame(udp_frame_length(payload.size()));
    write_udp_frame(frame.data(), frame.size(), peer_to_us(), src_port, dst_port, payload.data(), payload.size(),
                    false);
    return frame;
}

bool send_frame(const std::vector<uint8_t>& frame)
{
    rte_ring* ring = receive_ring(0);
    if (g_pool == nullptr || ring == nullptr || frame.size() > RTE_MBUF_DEFAULT_DATAROOM) return false;
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    if (m == nullptr) return false;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return false;
    }
    if (!frame.empty()) std::memcpy(p, frame.data(), frame.size());
    if (rte_ring_enqueue(ring, m) != 0) {
        rte_pktmbuf_free(m);
        return false;
    }
    return true;
}

unsigned send_udp_copies(uint16_t src_port, uint16_t dst_port, std::size_t payload_size, unsigned count)
{
    constexpr unsigned kBurst = 64;
    rte_ring* ring = receive_ring(0);
    if (g_pool == nullptr || ring == nullptr) return 0;
    const std::size_t frame_len = udp_frame_length(payload_size);
    if (frame_len > RTE_MBUF_DEFAULT_DATAROOM) return 0;
    // One template per call: its checksums are computed once, then copied.
    alignas(64) uint8_t frame[RTE_MBUF_DEFAULT_DATAROOM];
    static const std::array<uint8_t, RTE_MBUF_DEFAULT_DATAROOM> kPayload = [] {
        std::array<uint8_t, RTE_MBUF_DEFAULT_DATAROOM> bytes;
        bytes.fill(0x5a);
        return bytes;
    }();
    write_udp_frame(frame, frame_len, peer_to_us(), src_port, dst_port, kPayload.data(), payload_size, false);
    unsigned sent = 0;
    while (sent < count) {
        rte_mbuf* burst[kBurst];
        const unsigned n = std::min(kBurst, count - sent);
        if (rte_pktmbuf_alloc_bulk(g_pool, burst, n) != 0) return sent;
        for (unsigned i = 0; i < n; ++i) {
            std::memcpy(rte_pktmbuf_mtod(burst[i], uint8_t*), frame, frame_len);
            burst[i]->data_len = static_cast<uint16_t>(frame_len);
            burst[i]->pkt_len = static_cast<uint32_t>(frame_len);
        }
        const unsigned queued = rte_ring_enqueue_burst(ring, reinterpret_cast<void**>(burst), n, nullptr);
        rte_pktmbuf_free_bulk(burst + queued, n - queued);
        sent += queued;
        if (queued < n) return sent;
    }
    return sent;
}

namespace {

// Calls look(mbuf) for each frame the stack has sent, on every transmit
// queue, and frees it.
template <typename Look>
void take_sent(Look&& look)
{
    void* burst[32];
    for (unsigned q = 0; q < g_queue_pairs; ++q) {
        unsigned n = 0;
        do {
            n = rte_ring_dequeue_burst(g_from_stack[q], burst, 32, nullptr);
            for (unsigned i = 0; i < n; ++i) {
                auto* m = static_cast<rte_mbuf*>(burst[i]);
                look(*m);
                rte_pktmbuf_free(m);
            }
        } while (n != 0);
    }
}

} // namespace

unsigned drain_sent()
{
    unsigned total = 0;
    take_sent([&](const rte_mbuf&) { ++total; });
    return total;
}

namespace {

constexpr uint8_t kIcmpv6 = 58;
constexpr uint8_t kNeighbourSolicitation = 135;
constexpr uint8_t kNeighbourAdvertisement = 136;
constexpr std::size_t kIcmpv6NdLength = 24; // type, code, checksum, flags or reserved, target
constexpr std::size_t kLinkLayerOptionLength = 8;

const rte_ether_addr& peer_mac()
{
    static const rte_ether_addr mac = [] {
        rte_ether_addr m{};
        parse_mac("02:00:00:00:00:01", m);
        return m;
    }();
    return mac;
}

const std::array<uint8_t, 16>& peer_ipv6()
{
    static const std::array<uint8_t, 16> address = [] {
        std::array<uint8_t, 16> a{};
        inet_pton(AF_INET6, kRingPeerIpv6, a.data());
        return a;
    }();
    return address;
}

uint32_t peer_ipv4()
{
    static const uint32_t address = [] {
        uint32_t a = 0;
        inet_pton(AF_INET, kRingPeerIpv4, &a);
        return a;
    }();
    return address;
}

// The Ethernet header of the peer's answer to `request`: back to its
// sender, from the peer's MAC.
rte_ether_hdr answer_header(const uint8_t* request, uint16_t ether_type)
{
    rte_ether_hdr asker;
    std::memcpy(&asker, request, sizeof(asker));
    rte_ether_hdr eth{};
    eth.dst_addr = asker.src_addr;
    eth.src_addr = peer_mac();
    eth.ether_type = rte_cpu_to_be_16(ether_type);
    return eth;
}

// The ARP reply to `request` (a whole frame, its length checked) that says
// the peer's address is at the peer's MAC.
std::vector<uint8_t> arp_reply(const uint8_t* request)
{
    std::vector<uint8_t> frame(sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr));
    rte_arp_hdr asked;
    std::memcpy(&asked, request + sizeof(rte_ether_hdr), sizeof(asked));
    const rte_ether_hdr eth = answer_header(request, RTE_ETHER_TYPE_ARP);
    rte_arp_hdr arp = asked;
    arp.arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp.arp_data.arp_sha = peer_mac();
    arp.arp_data.arp_sip = peer_ipv4();
    arp.arp_data.arp_tha = asked.arp_data.arp_sha;
    arp.arp_data.arp_tip = asked.arp_data.arp_sip;
    std::memcpy(frame.data(), &eth, sizeof(eth));
    std::memcpy(frame.data() + sizeof(eth), &arp, sizeof(arp));
    return frame;
}

// The solicited neighbour advertisement (RFC 4861 4.4) answering
// `solicitation`: the peer's address at the peer's MAC, to the asker.
std::vector<uint8_t> neighbour_advertisement(const uint8_t* solicitation)
{
    constexpr std::size_t l4 = kIcmpv6NdLength + kLinkLayerOptionLength;
    std::vector<uint8_t> frame(sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + l4, 0);
    rte_ipv6_hdr asked;
    std::memcpy(&asked, solicitation + sizeof(rte_ether_hdr), sizeof(asked));
    const rte_ether_hdr eth = answer_header(solicitation, RTE_ETHER_TYPE_IPV6);
    std::memcpy(frame.data(), &eth, sizeof(eth));
    uint8_t* l3 = frame.data() + sizeof(rte_ether_hdr);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(l3);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4));
    ip->proto = kIcmpv6;
    ip->hop_limits = 255; // RFC 4861: anything else is not from the link
    std::memcpy(l3 + offsetof(rte_ipv6_hdr, src_addr), peer_ipv6().data(), 16);
    std::memcpy(l3 + offsetof(rte_ipv6_hdr, dst_addr), &asked.src_addr, 16);
    uint8_t* icmp = l3 + sizeof(rte_ipv6_hdr);
    icmp[0] = kNeighbourAdvertisement;
    icmp[4] = 0x60; // solicited, override
    std::memcpy(icmp + 8, peer_ipv6().data(), 16);
    icmp[kIcmpv6NdLength] = 2;     // option: target link-layer address
    icmp[kIcmpv6NdLength + 1] = 1; // its length, in units of 8 bytes
    std::memcpy(icmp + kIcmpv6NdLength + 2, peer_mac().addr_bytes, 6);
    const uint16_t sum = rte_ipv6_udptcp_cksum(ip, icmp);
    std::memcpy(icmp + 2, &sum, sizeof(sum));
    return frame;
}

// Reads one frame the stack sent: counts it, answers it when it asks for
// the peer's MAC.
void look_at_sent(const rte_mbuf& m, DrainedFrames& seen)
{
    ++seen.frames;
    const auto* p = rte_pktmbuf_mtod(&m, const uint8_t*);
    const std::size_t length = m.data_len;
    if (length < sizeof(rte_ether_hdr)) return;
    uint16_t type_be;
    std::memcpy(&type_be, p + offsetof(rte_ether_hdr, ether_type), sizeof(type_be));
    const uint16_t type = rte_be_to_cpu_16(type_be);
    const uint8_t* l3 = p + sizeof(rte_ether_hdr);
    if (type == RTE_ETHER_TYPE_ARP && length >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
        rte_arp_hdr arp;
        std::memcpy(&arp, l3, sizeof(arp));
        if (arp.arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) && arp.arp_data.arp_tip == peer_ipv4()) {
            ++seen.neighbour_asked;
            send_frame(arp_reply(p));
        }
    } else if (type == RTE_ETHER_TYPE_IPV4 && length >= sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) {
        uint32_t destination;
        std::memcpy(&destination, l3 + offsetof(rte_ipv4_hdr, dst_addr), sizeof(destination));
        if (l3[offsetof(rte_ipv4_hdr, next_proto_id)] == IPPROTO_UDP && destination == peer_ipv4()) ++seen.udp_to_peer;
    } else if (type == RTE_ETHER_TYPE_IPV6 && length >= sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr)) {
        const uint8_t next = l3[offsetof(rte_ipv6_hdr, proto)];
        const uint8_t* icmp = l3 + sizeof(rte_ipv6_hdr);
        if (next == IPPROTO_UDP && std::memcmp(l3 + offsetof(rte_ipv6_hdr, dst_addr), peer_ipv6().data(), 16) == 0) {
            ++seen.udp_to_peer;
        } else if (next == kIcmpv6 && length >= sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + kIcmpv6NdLength &&
                   icmp[0] == kNeighbourSolicitation && std::memcmp(icmp + 8, peer_ipv6().data(), 16) == 0) {
            ++seen.neighbour_asked;
            send_frame(neighbour_advertisement(p));
        }
    }
}

} // namespace

DrainedFrames drain_answering_neighbours()
{
    DrainedFrames seen;
    take_sent([&](const rte_mbuf& m) { look_at_sent(m, seen); });
    return seen;
}

unsigned pending_received()
{
    unsigned total = 0;
    for (unsigned q = 0; q < g_queue_pairs; ++q)
        total += rte_ring_count(g_to_stack[q]);
    return total;
}

bool wait_polled()
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (pending_received() != 0) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

unsigned peer_mbufs_in_use()
{
    return g_pool == nullptr ? 0 : rte_mempool_in_use_count(g_pool);
}

const std::string& ring_peer_error()
{
    return g_error;
}

} // namespace ringsock::testing
