// Value parsers for the profile loader.
#include "dataplane/profile_values.hh"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>

#include "dataplane/profile_reader.hh"

namespace ringsock::dataplane::profile_detail {

// EAL's -l syntax: "0", "0-3", "1,3,5-7". The lcores in the order listed,
// or nothing when the text is not such a list.
std::optional<std::vector<unsigned>> parse_lcore_list(std::string_view text)
{
    std::vector<unsigned> lcores;
    if (text.empty()) return std::nullopt;
    for (std::string_view item : split(text, ',')) {
        std::vector<std::string_view> bounds = split(item, '-');
        if (bounds.size() > 2) return std::nullopt;
        std::optional<unsigned> low = decimal<unsigned>(bounds.front());
        std::optional<unsigned> high = decimal<unsigned>(bounds.back());
        if (!low || !high || *low > *high || *high > kMaxLcore) return std::nullopt;
        for (unsigned lcore = *low; lcore <= *high; ++lcore)
            lcores.push_back(lcore);
    }
    return lcores;
}

// [DDDD:]BB:DD.F, all hex: how EAL's PCI bus names a device.
bool is_pci_address(std::string_view text)
{
    size_t dot = text.rfind('.');
    if (dot == std::string_view::npos || text.size() - dot != 2 || text[dot + 1] < '0' || text[dot + 1] > '7')
        return false;
    std::vector<std::string_view> parts = split(text.substr(0, dot), ':');
    if (parts.size() == 3 && !is_hex_digits(parts[0], 4)) return false;
    if (parts.size() != 2 && parts.size() != 3) return false;
    return is_hex_digits(parts[parts.size() - 2], 2) && is_hex_digits(parts.back(), 2);
}

// DPDK's table of offload names for one direction, read bit by bit. The
// functions answer "UNKNOWN" for a bit with no offload.
const std::vector<OffloadName>& offload_names(Direction direction)
{
    static const auto build = [](const char* (*name_of)(uint64_t)) {
        std::vector<OffloadName> names;
        for (unsigned bit = 0; bit < 64; ++bit) {
            uint64_t flag = uint64_t{1} << bit;
            std::string_view name = name_of(flag);
            if (name != "UNKNOWN") names.push_back({lower(name), flag});
        }
        return names;
    };
    static const std::vector<OffloadName> rx = build(rte_eth_dev_rx_offload_name);
    static const std::vector<OffloadName> tx = build(rte_eth_dev_tx_offload_name);
    return direction == Direction::rx ? rx : tx;
}

// "6d5a56da..." or "6d:5a:56:da:...": bytes, or nothing when malformed.
std::optional<std::vector<uint8_t>> parse_hex_bytes(std::string_view text)
{
    std::vector<std::string_view> pairs;
    if (text.find(':') != std::string_view::npos) {
        pairs = split(text, ':');
    } else {
        if (text.size() % 2 != 0) return std::nullopt;
        for (size_t i = 0; i < text.size(); i += 2)
            pairs.push_back(text.substr(i, 2));
    }
    std::vector<uint8_t> bytes;
    for (std::string_view pair : pairs) {
        uint8_t byte = 0;
        if (!is_hex_digits(pair, 2)) return std::nullopt;
        std::from_chars(pair.data(), pair.data() + 2, byte, 16);
        bytes.push_back(byte);
    }
    return bytes;
}

bool is_unicast_mac(std::string_view text)
{
    std::vector<std::string_view> octets = split(text, ':');
    if (octets.size() != 6 || !std::all_of(octets.begin(), octets.end(), [](auto o) { return is_hex_digits(o, 2); }))
        return false;
    auto octet = [&](size_t i) {
        unsigned value = 0;
        std::from_chars(octets[i].data(), octets[i].data() + 2, value, 16);
        return value;
    };
    bool multicast = (octet(0) & 1) != 0;
    bool zero = true;
    for (size_t i = 0; i < 6; ++i)
        zero = zero && octet(i) == 0;
    return !multicast && !zero;
}

std::optional<uint32_t> parse_ipv4(std::string_view text)
{
    in_addr address{};
    if (inet_pton(AF_INET, std::string(text).c_str(), &address) != 1) return std::nullopt;
    return ntohl(address.s_addr);
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text)
{
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::optional<uint32_t> address = parse_ipv4(text.substr(0, slash));
    std::optional<unsigned> length = decimal<unsigned>(text.substr(slash + 1));
    if (!address || !length || *length > 32) return std::nullopt;
    return Ipv4Prefix{*address, *length};
}

bool is_ipv6_prefix(std::string_view text)
{
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return false;
    in6_addr address{};
    std::optional<unsigned> length = decimal<unsigned>(text.substr(slash + 1));
    return inet_pton(AF_INET6, std::string(text.substr(0, slash)).c_str(), &address) == 1 && length && *length <= 128;
}

} // namespace ringsock::dataplane::profile_detail
