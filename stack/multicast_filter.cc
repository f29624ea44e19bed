// Includes DPDK's ethdev and no lwIP header (their IPv6 types clash).
#include "stack/multicast_filter.hh"

#include <vector>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

namespace ringsock::stack {

void MulticastFilter::add(const MacAddress& mac)
{
    if (++counts_[mac] == 1) push();
}

void MulticastFilter::remove(const MacAddress& mac)
{
    auto it = counts_.find(mac);
    if (it == counts_.end()) return;
    if (--it->second == 0) {
        counts_.erase(it);
        push();
    }
}

// RFC 1112 6.4: 01:00:5e and the group's low 23 bits.
MacAddress MulticastFilter::of_ipv4_group(const uint8_t (&group)[4]) noexcept
{
    return {0x01, 0x00, 0x5e, static_cast<uint8_t>(group[1] & 0x7f), group[2], group[3]};
}

// RFC 2464 7: 33:33 and the group's last 32 bits.
MacAddress MulticastFilter::of_ipv6_group(const uint8_t (&group)[16]) noexcept
{
    return {0x33, 0x33, group[12], group[13], group[14], group[15]};
}

void MulticastFilter::push()
{
    if (all_multicast_) return;
    std::vector<rte_ether_addr> list;
    list.reserve(counts_.size());
    for (const auto& [mac, count] : counts_) {
        rte_ether_addr a;
        std::copy(mac.begin(), mac.end(), a.addr_bytes);
        list.push_back(a);
    }
    const int rc = rte_eth_dev_set_mc_addr_list(port_, list.data(), static_cast<uint32_t>(list.size()));
    if (rc == 0) return;
    // No list filter (or too many groups for it): take every multicast
    // frame; the classifier still delivers only to members.
    all_multicast_ = true;
    const int all = rte_eth_allmulticast_enable(port_);
    spdlog::info("port {}: no multicast address list ({}); all-multicast {}", port_, rte_strerror(-rc),
                 all == 0 ? "on instead" : "unavailable too: a promiscuous port still receives every group");
}

} // namespace ringsock::stack
