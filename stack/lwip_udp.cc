#include "stack/lwip_udp.hh"

#include <cstring>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"

namespace ringsock::stack {

namespace {

ip_addr_t to_lwip(uint8_t family, const std::array<uint8_t, 16>& bytes)
{
    ip_addr_t a{};
    if (family == 6) {
        IP_SET_TYPE_VAL(a, IPADDR_TYPE_V6);
        std::memcpy(ip_2_ip6(&a)->addr, bytes.data(), 16);
        ip6_addr_clear_zone(ip_2_ip6(&a));
    } else {
        IP_SET_TYPE_VAL(a, IPADDR_TYPE_V4);
        std::memcpy(&ip_2_ip4(&a)->addr, bytes.data(), 4);
    }
    return a;
}

} // namespace

LwipUdpSender::LwipUdpSender(uint8_t family, const std::array<uint8_t, 16>& local, uint16_t local_port)
{
    pcb_ = udp_new_ip_type(family == kEitherFamily ? IPADDR_TYPE_ANY : family == 6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
    if (pcb_ == nullptr) return;
    // Set, not udp_bind(): a bound pcb would enter lwIP's table and lwIP
    // would answer for the port; this one only sends.
    // (An IPADDR_TYPE_ANY pcb's address is already IP_ANY_TYPE: lwIP picks
    // each datagram's source in its destination's family.)
    if (family != kEitherFamily) pcb_->local_ip = to_lwip(family, local);
    pcb_->local_port = local_port;
    // Multicast sends loop back to the process's own members; each
    // receiving socket decides whether it takes them (Winsock's
    // IP_MULTICAST_LOOP).
    udp_setflags(pcb_, udp_flags(pcb_) | UDP_FLAGS_MULTICAST_LOOP);
}

LwipUdpSender::~LwipUdpSender()
{
    if (pcb_ != nullptr) udp_remove(pcb_);
}

UdpSendResult LwipUdpSender::send(uint8_t to_family, const std::array<uint8_t, 16>& to, uint16_t port,
                                  const ConstSegment* segments, std::size_t count, std::size_t total,
                                  uint8_t unicast_ttl, uint8_t multicast_ttl, uint8_t traffic_class) noexcept
{
    if (pcb_ == nullptr) return UdpSendResult::no_memory;
    if (total > 0xffff - 8 - (to_family == 6 ? 40 : 20)) return UdpSendResult::too_big;
    pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(total), PBUF_RAM);
    if (p == nullptr) return UdpSendResult::no_memory;
    std::size_t offset = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (segments[i].length == 0) continue;
        pbuf_take_at(p, segments[i].data, static_cast<u16_t>(segments[i].length), static_cast<u16_t>(offset));
        offset += segments[i].length;
    }
    const ip_addr_t dst = to_lwip(to_family, to);
    pcb_->ttl = unicast_ttl;
    pcb_->tos = traffic_class; // IPv6's traffic class too
    udp_set_multicast_ttl(pcb_, multicast_ttl);
    const err_t err = udp_sendto(pcb_, p, &dst, port);
    pbuf_free(p);
    switch (err) {
    case ERR_OK:
        return UdpSendResult::sent;
    case ERR_MEM:
    case ERR_BUF:
        return UdpSendResult::no_memory;
    case ERR_RTE:
        return UdpSendResult::no_route;
    default:
        return UdpSendResult::invalid;
    }
}

} // namespace ringsock::stack
