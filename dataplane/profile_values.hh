// Internal to the profile loader, not for inclusion elsewhere: parsers for
// the kinds of value a profile holds (EAL lcore lists, PCI addresses, DPDK
// offload names, RSS fields and keys, MAC and IP addresses). Each answers
// what the text is, or nothing; the wording of a refusal is left to the
// section that asked. Start-up code; the offload tables are DPDK's own and
// need no EAL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rte_ethdev.h>

namespace ringsock::dataplane::profile_detail {

constexpr int64_t kMaxLcore = RTE_MAX_LCORE - 1;

// EAL's -l syntax: "0", "0-3", "1,3,5-7". The lcores in the order listed,
// or nothing when the text is not such a list.
std::optional<std::vector<unsigned>> parse_lcore_list(std::string_view text);

// [DDDD:]BB:DD.F, all hex: how EAL's PCI bus names a device.
bool is_pci_address(std::string_view text);

struct OffloadName {
    std::string name; // DPDK's, lower case
    uint64_t flag;
};

enum class Direction { rx, tx };

// DPDK's table of offload names for one direction.
const std::vector<OffloadName>& offload_names(Direction direction);

struct RssFieldName {
    std::string_view name;
    uint64_t hash_fields;
};

inline constexpr RssFieldName kRssFields[] = {
    {"ipv4", RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER},
    {"ipv6", RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER},
    {"ip", RTE_ETH_RSS_IP},
    {"udp", RTE_ETH_RSS_UDP},
    {"tcp", RTE_ETH_RSS_TCP},
    {"sctp", RTE_ETH_RSS_SCTP},
    {"ipv4-udp", RTE_ETH_RSS_NONFRAG_IPV4_UDP},
    {"ipv4-tcp", RTE_ETH_RSS_NONFRAG_IPV4_TCP},
    {"ipv6-udp", RTE_ETH_RSS_NONFRAG_IPV6_UDP},
    {"ipv6-tcp", RTE_ETH_RSS_NONFRAG_IPV6_TCP},
    {"l2-payload", RTE_ETH_RSS_L2_PAYLOAD},
};

// "6d5a56da..." or "6d:5a:56:da:...": bytes, or nothing when malformed.
std::optional<std::vector<uint8_t>> parse_hex_bytes(std::string_view text);

bool is_unicast_mac(std::string_view text);

struct Ipv4Prefix {
    uint32_t address; // host order
    unsigned length;
};

std::optional<uint32_t> parse_ipv4(std::string_view text);
std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text);
bool is_ipv6_prefix(std::string_view text);

} // namespace ringsock::dataplane::profile_detail
