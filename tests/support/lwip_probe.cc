#include "tests/support/lwip_probe.hh"

#include <cstring>

extern "C" {
#include "lwip/etharp.h"
#include "lwip/memp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/udp.h"
}

namespace ringsock::testing {

struct LwipUdpReceiver::Pcb {
    udp_pcb* pcb = nullptr;
};

LwipUdpReceiver::LwipUdpReceiver(uint16_t port) : pcb_(std::make_unique<Pcb>())
{
    pcb_->pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
    udp_bind(pcb_->pcb, IP_ANY_TYPE, port);
    udp_recv(
        pcb_->pcb,
        [](void* arg, udp_pcb*, pbuf* p, const ip_addr_t*, u16_t) {
            auto* self = static_cast<LwipUdpReceiver*>(arg);
            std::vector<uint8_t> bytes(p->tot_len);
            pbuf_copy_partial(p, bytes.data(), p->tot_len, 0);
            self->datagrams.push_back(std::move(bytes));
            pbuf_free(p);
        },
        this);
}

LwipUdpReceiver::~LwipUdpReceiver()
{
    if (pcb_->pcb != nullptr) udp_remove(pcb_->pcb);
}

bool LwipUdpReceiver::send_to(const std::array<uint8_t, 4>& address, uint16_t port, const std::vector<uint8_t>& payload)
{
    pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(payload.size()), PBUF_RAM);
    if (p == nullptr) return false;
    pbuf_take(p, payload.data(), static_cast<u16_t>(payload.size()));
    ip_addr_t to;
    IP_ADDR4(&to, address[0], address[1], address[2], address[3]);
    const err_t rc = udp_sendto(pcb_->pcb, p, &to, port);
    pbuf_free(p);
    return rc == ERR_OK;
}

bool lwip_arp_entry(const std::array<uint8_t, 4>& address, std::array<uint8_t, 6>& mac)
{
    for (size_t i = 0; i < ARP_TABLE_SIZE; ++i) {
        ip4_addr_t* ip = nullptr;
        netif* nif = nullptr;
        eth_addr* eth = nullptr;
        if (etharp_get_entry(i, &ip, &nif, &eth) == 0) continue;
        ip4_addr_t wanted;
        IP4_ADDR(&wanted, address[0], address[1], address[2], address[3]);
        if (!ip4_addr_cmp(ip, &wanted)) continue;
        std::memcpy(mac.data(), eth->addr, 6);
        return true;
    }
    return false;
}

unsigned lwip_pbufs_in_use()
{
    return lwip_stats.memp[MEMP_PBUF_POOL]->used + lwip_stats.memp[MEMP_PBUF]->used;
}

} // namespace ringsock::testing

namespace ringsock::testing {

std::string lwip_ip_counters()
{
    auto line = [](const char* name, const stats_proto& s) {
        return std::string(" ") + name + ": recv " + std::to_string(s.recv) + " drop " + std::to_string(s.drop) +
               " chkerr " + std::to_string(s.chkerr) + " lenerr " + std::to_string(s.lenerr) + " memerr " +
               std::to_string(s.memerr) + " proterr " + std::to_string(s.proterr) + " err " + std::to_string(s.err);
    };
    return line("ip", lwip_stats.ip) + line("ip_frag", lwip_stats.ip_frag) + line("udp", lwip_stats.udp);
}

} // namespace ringsock::testing
