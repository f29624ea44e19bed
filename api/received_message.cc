#include "api/received_message.hh"

#include <algorithm>
#include <array>
#include <cstring>

#include <rte_byteorder.h>

#include "api/runtime.hh"
#include "api/socket.hh"
#include "ringsock/ws2tcpip.h"
#include "stack/datagram_ip_header.hh"

namespace ringsock::api {

namespace {

// MSG_MCAST for a group's datagram, MSG_BCAST for a broadcast one (the
// limited broadcast or our subnet's), 0 for one to us alone.
ULONG destination_kind(const Runtime& rt, uint8_t family, const std::array<uint8_t, 16>& to) noexcept
{
    if (family == 6) return to[0] == 0xff ? MSG_MCAST : 0;
    if ((to[0] & 0xf0) == 0xe0) return MSG_MCAST;
    uint32_t address = 0;
    uint32_t ours = 0;
    std::memcpy(&address, to.data(), 4);
    std::memcpy(&ours, rt.interface().ipv4.address.data(), 4);
    if (address == 0xffffffffu) return MSG_BCAST;
    const uint8_t prefix = rt.interface().ipv4.prefix_len;
    if (prefix == 0 || prefix >= 31) return 0;
    const uint32_t host_mask = rte_cpu_to_be_32(~uint32_t{0} >> prefix);
    const bool same_subnet = ((address ^ ours) & ~host_mask) == 0;
    return same_subnet && (address & host_mask) == host_mask ? MSG_BCAST : 0;
}

// Appends one control record to `message` at `used`; false (nothing
// written) when it does not fit.
bool append_record(WSAMSG& message, ULONG& used, INT level, INT type, const void* data, std::size_t size) noexcept
{
    const std::size_t length = WSA_CMSG_LEN(size);
    if (message.Control.buf == nullptr || used + length > message.Control.len) return false;
    const WSACMSGHDR header{length, level, type};
    char* at = message.Control.buf + used;
    std::memcpy(at, &header, sizeof(header));
    std::memcpy(at + WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR)), data, size);
    used += static_cast<ULONG>(std::min<std::size_t>(WSA_CMSG_SPACE(size), message.Control.len - used));
    return true;
}

// Which family's record of a kind (`ipv4`, `ipv6`: its MessageRecord bits)
// an `ip_family` datagram gets on `s`: IPv4's when it is IPv4 and asked
// for, else IPv6's when the socket is IPv6 and asked for it, else none (0).
uint8_t record_family(const Socket& s, uint8_t records, uint8_t ip_family, uint8_t ipv4, uint8_t ipv6) noexcept
{
    if (ip_family == 4 && (records & ipv4) != 0) return 4;
    return s.family == 6 && (records & ipv6) != 0 ? 6 : 0;
}

} // namespace

void write_message_extras(const Runtime& rt, const Socket& s, WSAMSG& message, const rte_mbuf& m,
                          uint16_t payload_offset, uint8_t family, bool truncated) noexcept
{
    ULONG flags = truncated ? MSG_TRUNC : 0;
    ULONG used = 0;
    stack::DatagramIpHeader header;
    if (stack::read_datagram_ip_header(m, payload_offset, family, header)) {
        flags |= destination_kind(rt, family, header.destination);
        const uint8_t records = s.message_records.load(std::memory_order_relaxed);
        bool fits = true;
        switch (record_family(s, records, family, kIpv4PacketInfo, kIpv6PacketInfo)) {
        case 4: {
            IN_PKTINFO info{};
            std::memcpy(&info.ipi_addr, header.destination.data(), 4);
            info.ipi_ifindex = kInterfaceIndex;
            fits = append_record(message, used, IPPROTO_IP, IP_PKTINFO, &info, sizeof(info));
            break;
        }
        case 6: {
            // An IPv4 datagram on a dual-stack socket: its address mapped.
            Endpoint destination;
            destination.family = family;
            destination.addr = header.destination;
            destination = as_seen_by(6, destination);
            IN6_PKTINFO info{};
            std::memcpy(&info.ipi6_addr, destination.addr.data(), 16);
            info.ipi6_ifindex = kInterfaceIndex;
            fits = append_record(message, used, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof(info));
            break;
        }
        default:
            break;
        }
        // Windows names an IPv4 datagram's TTL record IP_TTL (msquic reads
        // it so), IPv6's IPV6_HOPLIMIT.
        const INT hop_limit = header.hop_limit;
        if (const uint8_t f = record_family(s, records, family, kIpv4HopLimit, kIpv6HopLimit); f != 0 && fits)
            fits = f == 4 ? append_record(message, used, IPPROTO_IP, IP_TTL, &hop_limit, sizeof(hop_limit))
                          : append_record(message, used, IPPROTO_IPV6, IPV6_HOPLIMIT, &hop_limit, sizeof(hop_limit));
        const INT ecn = header.ecn();
        if (const uint8_t f = record_family(s, records, family, kIpv4Ecn, kIpv6Ecn); f != 0 && fits)
            fits = f == 4 ? append_record(message, used, IPPROTO_IP, IP_ECN, &ecn, sizeof(ecn))
                          : append_record(message, used, IPPROTO_IPV6, IPV6_ECN, &ecn, sizeof(ecn));
        if (!fits) flags |= MSG_CTRUNC;
    }
    message.Control.len = used;
    message.dwFlags = flags;
}

} // namespace ringsock::api
