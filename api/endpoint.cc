#include "api/endpoint.hh"

#include <cstddef>
#include <cstring>

#include "ringsock/ws2tcpip.h"

namespace ringsock::api {

int sockaddr_size(uint8_t family) noexcept
{
    return family == 6 ? static_cast<int>(sizeof(sockaddr_in6)) : static_cast<int>(sizeof(sockaddr_in));
}

int endpoint_from_sockaddr(const sockaddr* name, int namelen, uint8_t family, Endpoint& out) noexcept
{
    if (name == nullptr || namelen < static_cast<int>(sizeof(sockaddr::sa_family))) return WSAEFAULT;
    const int want_af = family == 6 ? AF_INET6 : AF_INET;
    if (name->sa_family != want_af) return WSAEAFNOSUPPORT;
    if (namelen < sockaddr_size(family)) return WSAEFAULT;
    // Each field read on its own, as wide as it is: callers fill a
    // sockaddr field by field just before the call, and one wider load
    // across those stores would wait for them to reach the cache (a
    // store-forwarding stall, as whole WSABUFs were in Request::capture).
    const auto* bytes = reinterpret_cast<const unsigned char*>(name);
    uint16_t wire_port = 0;
    std::memcpy(&wire_port, bytes + offsetof(sockaddr_in, sin_port), sizeof(wire_port));
    out = Endpoint{};
    out.family = family;
    out.port = static_cast<uint16_t>((wire_port >> 8) | (wire_port << 8));
    if (family == 4) {
        std::memcpy(out.addr.data(), bytes + offsetof(sockaddr_in, sin_addr), 4);
    } else {
        std::memcpy(out.addr.data(), bytes + offsetof(sockaddr_in6, sin6_addr), 16);
        ULONG scope = 0;
        std::memcpy(&scope, bytes + offsetof(sockaddr_in6, sin6_scope_id), sizeof(scope));
        if (out.is_ipv6_link_scoped() && !names_our_interface(scope)) return WSAEADDRNOTAVAIL;
    }
    return 0;
}

Endpoint unmapped(const Endpoint& e) noexcept
{
    if (!e.is_ipv4_mapped()) return e;
    Endpoint v4;
    v4.family = 4;
    v4.port = e.port;
    std::memcpy(v4.addr.data(), e.addr.data() + 12, 4);
    return v4;
}

Endpoint as_seen_by(uint8_t socket_family, const Endpoint& e) noexcept
{
    if (socket_family != 6 || e.family != 4) return e;
    Endpoint mapped;
    mapped.family = 6;
    mapped.port = e.port;
    mapped.addr[10] = 0xff;
    mapped.addr[11] = 0xff;
    std::memcpy(mapped.addr.data() + 12, e.addr.data(), 4);
    return mapped;
}

namespace {

int write_sockaddr(const Endpoint& e, sockaddr* name, int* namelen) noexcept
{
    const int size = sockaddr_size(e.family);
    if (name == nullptr || namelen == nullptr || *namelen < size) return WSAEFAULT;
    const auto port = static_cast<USHORT>((e.port >> 8) | (e.port << 8));
    if (e.family == 6) {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = port;
        std::memcpy(&in6.sin6_addr, e.addr.data(), 16);
        if (e.is_ipv6_link_scoped()) [[unlikely]]
            in6.sin6_scope_id = kInterfaceIndex;
        std::memcpy(name, &in6, sizeof(in6));
    } else {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = port;
        std::memcpy(&in.sin_addr, e.addr.data(), 4);
        std::memcpy(name, &in, sizeof(in));
    }
    *namelen = size;
    return 0;
}

} // namespace

int endpoint_to_sockaddr(uint8_t socket_family, const Endpoint& e, sockaddr* name, int* namelen) noexcept
{
    // Every receive comes here: the mapped copy only where one is needed.
    if (socket_family == 6 && e.family == 4) [[unlikely]]
        return write_sockaddr(as_seen_by(socket_family, e), name, namelen);
    return write_sockaddr(e, name, namelen);
}

} // namespace ringsock::api
