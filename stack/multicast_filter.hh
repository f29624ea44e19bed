// The port's multicast MAC filter, kept equal to the groups lwIP's
// interface belongs to (IGMP groups, MLD groups including the
// solicited-node ones neighbour discovery needs). lwIP reports each first
// join and last leave of a MAC; this holds a count per MAC and hands the
// whole list to the PMD (rte_eth_dev_set_mc_addr_list), so a port that is
// not promiscuous still receives what its sockets joined. A PMD without a
// list filter gets all-multicast instead, once, and that is logged.
// Runs on the lwIP engine's lcore only, as lwIP does.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "stack/classifier.hh"

namespace ringsock::stack {

class MulticastFilter {
public:
    explicit MulticastFilter(uint16_t port) : port_(port) {}

    void add(const MacAddress& mac);
    void remove(const MacAddress& mac);

    std::size_t size() const noexcept { return counts_.size(); }
    // True once the PMD refused a list and all-multicast stands in for it.
    bool all_multicast() const noexcept { return all_multicast_; }

    static MacAddress of_ipv4_group(const uint8_t (&group)[4]) noexcept;
    static MacAddress of_ipv6_group(const uint8_t (&group)[16]) noexcept;

private:
    void push();

    uint16_t port_;
    std::map<MacAddress, unsigned> counts_;
    bool all_multicast_ = false;
};

} // namespace ringsock::stack
