// This translation unit includes lwIP and DPDK's mbuf header only (see
// lwip_netif.cc for why not rte_ip.h).
#include "stack/lwip_udp_reassembly.hh"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <type_traits>

#include <rte_mbuf.h>

extern "C" {
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/raw.h"
}

namespace ringsock::stack {

namespace {

constexpr uint16_t kEthernetHeader = 14;
constexpr uint16_t kIpv4MinHeader = 20;
constexpr uint16_t kIpv6Header = 40;
constexpr uint16_t kUdpHeader = 8;
constexpr uint8_t kNextHeaderUdp = 17;
constexpr uint8_t kNextHeaderHopByHop = 0;
constexpr uint8_t kNextHeaderDestinationOptions = 60;
constexpr uint8_t kNextHeaderRouting = 43;

// `p` (an IPv4 or IPv6 datagram) behind an Ethernet header for `mac`, in a
// chain of mbufs from `pool`; null when the pool runs dry. An IPv6
// datagram's UDP header starts at `udp_offset`: extension headers between
// it and the IPv6 header are left out.
rte_mbuf* frame_of(const pbuf* p, bool ipv6, uint16_t udp_offset, rte_mempool* pool, const MacAddress& mac)
{
    rte_mbuf* head = rte_pktmbuf_alloc(pool);
    if (head == nullptr) return nullptr;
    auto* eth = rte_pktmbuf_mtod(head, uint8_t*);
    std::memcpy(eth, mac.data(), 6);
    std::memset(eth + 6, 0, 6);
    eth[12] = ipv6 ? 0x86 : 0x08;
    eth[13] = ipv6 ? 0xdd : 0x00;
    head->data_len = kEthernetHeader;
    head->pkt_len = kEthernetHeader;
    rte_mbuf* tail = head;
    // The bytes of `p` from `from` up to `until`, appended to the chain.
    const auto append = [&](uint16_t from, uint16_t until) -> bool {
        uint16_t copied = from;
        while (copied < until) {
            uint16_t room = rte_pktmbuf_tailroom(tail);
            if (room == 0) {
                rte_mbuf* next = rte_pktmbuf_alloc(pool);
                if (next == nullptr) return false;
                tail->next = next;
                tail = next;
                head->nb_segs = static_cast<uint16_t>(head->nb_segs + 1);
                room = rte_pktmbuf_tailroom(tail);
            }
            const uint16_t n = static_cast<uint16_t>(std::min<uint32_t>(room, until - copied));
            pbuf_copy_partial(p, rte_pktmbuf_mtod_offset(tail, void*, tail->data_len), n, copied);
            tail->data_len = static_cast<uint16_t>(tail->data_len + n);
            head->pkt_len += n;
            copied = static_cast<uint16_t>(copied + n);
        }
        return true;
    };
    const bool whole = ipv6 ? append(0, kIpv6Header) && append(udp_offset, p->tot_len) : append(0, p->tot_len);
    if (!whole) {
        rte_pktmbuf_free(head);
        return nullptr;
    }
    if (ipv6) {
        // UDP right behind the IPv6 header. And lwIP 2.1.3's reassembly
        // leaves the payload length 8 bytes short (a 4000-byte datagram's
        // header says 4000, its UDP header 4008): the datagram is what the
        // pbufs hold. No header checksum to redo.
        auto* header = rte_pktmbuf_mtod_offset(head, uint8_t*, kEthernetHeader);
        const uint16_t payload = static_cast<uint16_t>(p->tot_len - udp_offset);
        header[4] = static_cast<uint8_t>(payload >> 8);
        header[5] = static_cast<uint8_t>(payload);
        header[6] = kNextHeaderUdp;
        return head;
    }
    // lwIP leaves the reassembled header's checksum at zero where the
    // netif does not generate IPv4 checksums (offload): make it right.
    auto* ip = rte_pktmbuf_mtod_offset(head, ip_hdr*, kEthernetHeader);
    IPH_CHKSUM_SET(ip, 0);
    IPH_CHKSUM_SET(ip, inet_chksum(ip, static_cast<u16_t>(IPH_HL_BYTES(ip))));
    return head;
}

} // namespace

LwipUdpReassembly::LwipUdpReassembly(ReassembledUdpSink& sink, rte_mempool* pool, const MacAddress& mac)
    : sink_(sink), pool_(pool), mac_(mac)
{
    // Both families: after IPv6 reassembly lwIP rewrites the header's next
    // header to the fragment header's, so a datagram with no other
    // extension header shows raw pcbs UDP's number, as an IPv4 one does.
    // One with hop-by-hop or destination options or a routing header
    // first shows theirs.
    const struct {
        u8_t type;
        u8_t protocol;
    } wanted[] = {{IPADDR_TYPE_ANY, IP_PROTO_UDP},
                  {IPADDR_TYPE_V6, kNextHeaderHopByHop},
                  {IPADDR_TYPE_V6, kNextHeaderDestinationOptions},
                  {IPADDR_TYPE_V6, kNextHeaderRouting}};
    static_assert(std::size(wanted) == std::extent_v<decltype(pcbs_)>);
    for (std::size_t i = 0; i < std::size(wanted); ++i) {
        pcbs_[i] = raw_new_ip_type(wanted[i].type, wanted[i].protocol);
        if (pcbs_[i] == nullptr) {
            for (std::size_t k = 0; k < i; ++k)
                raw_remove(pcbs_[k]);
            throw std::runtime_error("lwIP has no raw pcb left for reassembled UDP");
        }
        raw_recv(
            pcbs_[i],
            [](void* self, raw_pcb* pcb, pbuf* p, const ip_addr_t* from) -> u8_t {
                return on_datagram(self, pcb, p, from);
            },
            this);
    }
}

LwipUdpReassembly::~LwipUdpReassembly()
{
    for (raw_pcb* pcb : pcbs_)
        raw_remove(pcb);
}

uint8_t LwipUdpReassembly::on_datagram(void* arg, raw_pcb*, pbuf* p, const void*)
{
    auto* self = static_cast<LwipUdpReassembly*>(arg);
    // The IP header and the UDP ports. Copied out rather than read in
    // place: after IPv6 reassembly the first pbuf may hold the IPv6 header
    // alone. A datagram too short for them stays lwIP's, as does an IPv6
    // one whose headers lead anywhere but UDP (ICMPv6 behind hop-by-hop
    // options, as MLD comes).
    uint8_t ip[60]; // the longest IPv4 header
    const uint16_t seen = pbuf_copy_partial(p, ip, sizeof(ip), 0);
    if (seen < 1) return 0;
    const bool ipv6 = (ip[0] >> 4) == 6;
    uint16_t header = 0;
    if (ipv6) {
        if (seen < kIpv6Header) return 0;
        uint8_t next = ip[6];
        header = kIpv6Header;
        while (next == kNextHeaderHopByHop || next == kNextHeaderDestinationOptions || next == kNextHeaderRouting) {
            // Its next header; its length in 8 bytes, past the first 8; for
            // a routing header, its type and the segments left.
            uint8_t extension[4];
            if (pbuf_copy_partial(p, extension, sizeof(extension), header) != sizeof(extension)) return 0;
            // A routing header with segments left names another node to
            // visit: RFC 8200 leaves it to the routing type, which lwIP
            // judges; only with none left is this node the destination
            // (the last segment of an SRv6 path that kept its header).
            if (next == kNextHeaderRouting && extension[3] != 0) return 0;
            next = extension[0];
            header = static_cast<uint16_t>(header + 8 * (1 + extension[1]));
        }
        if (next != kNextHeaderUdp) return 0;
    } else {
        if (seen < kIpv4MinHeader || (ip[0] >> 4) != 4) return 0;
        header = static_cast<uint16_t>((ip[0] & 0x0f) * 4);
    }
    uint8_t ports[4];
    if (p->tot_len < header + kUdpHeader || pbuf_copy_partial(p, ports, sizeof(ports), header) != sizeof(ports))
        return 0;
    const uint16_t port = static_cast<uint16_t>((ports[2] << 8) | ports[3]);
    if (!self->sink_.wants_udp_port(port)) return 0; // lwIP's: its pcbs, or port unreachable
    rte_mbuf* frame = frame_of(p, ipv6, header, self->pool_, self->mac_);
    pbuf_free(p);
    if (frame == nullptr) {
        self->counters_.no_mbuf.add(1);
        return 1;
    }
    self->counters_.handed.add(1);
    self->sink_.on_reassembled(frame);
    return 1;
}

} // namespace ringsock::stack
