// This translation unit includes lwIP and DPDK's mbuf header only (see
// lwip_netif.cc for why not rte_ip.h).
#include "stack/lwip_udp_reassembly.hh"

#include <cstring>
#include <stdexcept>

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

// `p` (an IPv4 or IPv6 datagram) behind an Ethernet header for `mac`, in a
// chain of mbufs from `pool`; null when the pool runs dry.
rte_mbuf* frame_of(const pbuf* p, bool ipv6, rte_mempool* pool, const MacAddress& mac)
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
    uint16_t copied = 0;
    while (copied < p->tot_len) {
        uint16_t room = rte_pktmbuf_tailroom(tail);
        if (room == 0) {
            rte_mbuf* next = rte_pktmbuf_alloc(pool);
            if (next == nullptr) {
                rte_pktmbuf_free(head);
                return nullptr;
            }
            tail->next = next;
            tail = next;
            head->nb_segs = static_cast<uint16_t>(head->nb_segs + 1);
            room = rte_pktmbuf_tailroom(tail);
        }
        const uint16_t n = static_cast<uint16_t>(std::min<uint32_t>(room, p->tot_len - copied));
        pbuf_copy_partial(p, rte_pktmbuf_mtod_offset(tail, void*, tail->data_len), n, copied);
        tail->data_len = static_cast<uint16_t>(tail->data_len + n);
        head->pkt_len += n;
        copied = static_cast<uint16_t>(copied + n);
    }
    if (ipv6) {
        // lwIP 2.1.3's reassembly leaves the payload length 8 bytes short
        // (a 4000-byte datagram's header says 4000, its UDP header 4008):
        // the datagram is what the pbufs hold. No header checksum to redo.
        auto* length = rte_pktmbuf_mtod_offset(head, uint8_t*, kEthernetHeader + 4);
        const uint16_t payload = static_cast<uint16_t>(p->tot_len - kIpv6Header);
        length[0] = static_cast<uint8_t>(payload >> 8);
        length[1] = static_cast<uint8_t>(payload);
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
    pcb_ = raw_new_ip_type(IPADDR_TYPE_ANY, IP_PROTO_UDP);
    if (pcb_ == nullptr) throw std::runtime_error("lwIP has no raw pcb left for reassembled UDP");
    raw_recv(
        pcb_,
        [](void* self, raw_pcb* pcb, pbuf* p, const ip_addr_t* from) -> u8_t {
            return on_datagram(self, pcb, p, from);
        },
        this);
}

LwipUdpReassembly::~LwipUdpReassembly()
{
    raw_remove(pcb_);
}

uint8_t LwipUdpReassembly::on_datagram(void* arg, raw_pcb*, pbuf* p, const void*)
{
    auto* self = static_cast<LwipUdpReassembly*>(arg);
    // The IP header and the UDP ports. Copied out rather than read in
    // place: after IPv6 reassembly the first pbuf may hold the IPv6 header
    // alone. A datagram too short for them stays lwIP's, as does an IPv6
    // one with an extension header left before UDP (raw pcbs never see
    // those).
    uint8_t ip[60 + kUdpHeader]; // the longest IPv4 header and UDP's
    const uint16_t seen = pbuf_copy_partial(p, ip, sizeof(ip), 0);
    if (seen < 1) return 0;
    const bool ipv6 = (ip[0] >> 4) == 6;
    uint16_t header = 0;
    if (ipv6) {
        if (seen < kIpv6Header || ip[6] != kNextHeaderUdp) return 0;
        header = kIpv6Header;
    } else {
        if (seen < kIpv4MinHeader || (ip[0] >> 4) != 4) return 0;
        header = static_cast<uint16_t>((ip[0] & 0x0f) * 4);
    }
    if (seen < header + kUdpHeader) return 0;
    const uint16_t port = static_cast<uint16_t>((ip[header + 2] << 8) | ip[header + 3]);
    if (!self->sink_.wants_udp_port(port)) return 0; // lwIP's: its pcbs, or port unreachable
    rte_mbuf* frame = frame_of(p, ipv6, self->pool_, self->mac_);
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
