// Datagrams sent through lwIP on behalf of a socket: lwIP picks the route,
// resolves the neighbour (ARP, or ND for IPv6, queueing while it waits) and
// builds the headers. One LwipUdpSender per socket, used only on the lwIP
// engine's lcore. The socket's receive side never involves lwIP: the
// sender's pcb is not in lwIP's table, so lwIP never delivers to it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

struct udp_pcb;

namespace ringsock::stack {

struct ConstSegment {
    const void* data;
    std::size_t length;
};

enum class UdpSendResult : uint8_t { sent, no_memory, no_route, too_big, invalid };

class LwipUdpSender {
public:
    // A dual-stack socket's sender: any address, IPv4 and IPv6 alike.
    static constexpr uint8_t kEitherFamily = 0;

    // family 4, 6 or kEitherFamily; `local` in network order (all zero:
    // lwIP chooses the source address); port in host order.
    LwipUdpSender(uint8_t family, const std::array<uint8_t, 16>& local, uint16_t local_port);
    ~LwipUdpSender();
    LwipUdpSender(const LwipUdpSender&) = delete;
    LwipUdpSender& operator=(const LwipUdpSender&) = delete;

    bool ok() const noexcept { return pcb_ != nullptr; }
    // Gathers `segments` into one datagram for `to`:`port` (of `to_family`,
    // which the sender's family carries), with TTL (hop limit)
    // `unicast_ttl`, or `multicast_ttl` to a group, and TOS (traffic class)
    // byte `traffic_class`.
    UdpSendResult send(uint8_t to_family, const std::array<uint8_t, 16>& to, uint16_t port,
                       const ConstSegment* segments, std::size_t count, std::size_t total, uint8_t unicast_ttl,
                       uint8_t multicast_ttl, uint8_t traffic_class) noexcept;

private:
    udp_pcb* pcb_ = nullptr;
};

} // namespace ringsock::stack
