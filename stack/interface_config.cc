#include "stack/interface_config.hh"

#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>

namespace ringsock::stack {
namespace {

// "a/len" split, the length checked against `max_length`.
std::pair<std::string, uint8_t> split_prefix(const std::string& text, unsigned max_length, const char* field)
{
    const auto slash = text.find('/');
    if (slash == std::string::npos)
        throw std::invalid_argument(std::string(field) + " = \"" + text + "\": expected address/prefix");
    const unsigned long length = std::stoul(text.substr(slash + 1));
    if (length > max_length) throw std::invalid_argument(std::string(field) + " = \"" + text + "\": prefix too long");
    return {text.substr(0, slash), static_cast<uint8_t>(length)};
}

template <typename Address>
Address parse(int family, const std::string& text, const char* field)
{
    Address out{};
    if (inet_pton(family, text.c_str(), out.data()) != 1)
        throw std::invalid_argument(std::string(field) + " = \"" + text + "\": not an address");
    return out;
}

} // namespace

Ipv6Address ipv6_link_local(const MacAddress& mac)
{
    // RFC 4291 appendix A: fe80::/64 + EUI-64 with the universal/local bit flipped.
    Ipv6Address a{};
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = static_cast<uint8_t>(mac[0] ^ 0x02);
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    return a;
}

LwipInterfaceConfig lwip_interface_config(uint16_t port, const MacAddress& mac, const std::string& ipv4,
                                          const std::string& ipv4_gateway, const std::string& ipv6, uint16_t mtu)
{
    LwipInterfaceConfig config;
    config.port = port;
    config.mac = mac;
    config.mtu = mtu;
    if (!ipv4.empty()) {
        const auto [address, length] = split_prefix(ipv4, 32, "interface.ipv4");
        config.ipv4 = {parse<Ipv4Address>(AF_INET, address, "interface.ipv4"), length};
    }
    if (!ipv4_gateway.empty())
        config.ipv4_gateway = parse<Ipv4Address>(AF_INET, ipv4_gateway, "interface.ipv4_gateway");
    if (!ipv6.empty()) {
        const auto [address, length] = split_prefix(ipv6, 128, "interface.ipv6");
        config.ipv6 = parse<Ipv6Address>(AF_INET6, address, "interface.ipv6");
        config.ipv6_prefix_len = length;
    }
    return config;
}

ClassifierConfig classifier_config(const LwipInterfaceConfig& config)
{
    ClassifierConfig out;
    out.mac = config.mac;
    if (config.ipv4.address != Ipv4Address{}) out.ipv4.push_back(config.ipv4);
    out.ipv6.push_back(ipv6_link_local(config.mac));
    if (config.ipv6) out.ipv6.push_back(*config.ipv6);
    return out;
}

} // namespace ringsock::stack
