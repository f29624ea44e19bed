// The addresses the stack gives a port, parsed from the profile's
// [interface] strings into the binary forms the classifier and lwIP take.
// Start-up only. Kept apart from lwIP's headers, which redefine the byte
// order functions glibc's address parsers declare.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stack/checksum_offload.hh"
#include "stack/classifier.hh"

namespace ringsock::stack {

struct LwipInterfaceConfig {
    uint16_t port = 0;               // the ethdev port frames leave through
    MacAddress mac{};                // the port's MAC (or the profile's)
    Ipv4Interface ipv4{};            // our IPv4 address and prefix
    Ipv4Address ipv4_gateway{};      // 0.0.0.0: none
    std::optional<Ipv6Address> ipv6; // a static address besides the link-local one
    uint8_t ipv6_prefix_len = 64;
    uint16_t mtu = 1500;
    TxChecksums tx_checksums{}; // what the port sums for lwIP: see checksum_offload.hh
};

// Parses the profile's [interface] strings into a config. Throws
// std::invalid_argument naming the field.
LwipInterfaceConfig lwip_interface_config(uint16_t port, const MacAddress& mac, const std::string& ipv4,
                                          const std::string& ipv4_gateway, const std::string& ipv6, uint16_t mtu);

// The IPv6 link-local address lwIP derives from `mac` (EUI-64), so the
// classifier can be told it before the netif exists.
Ipv6Address ipv6_link_local(const MacAddress& mac);

// What the classifier must accept for this interface: our MAC, our IPv4
// address and prefix, the link-local and static IPv6 addresses.
ClassifierConfig classifier_config(const LwipInterfaceConfig& config);

} // namespace ringsock::stack
