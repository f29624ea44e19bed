#include "tests/support/port_rss.hh"

#include <rte_ethdev.h>

namespace ringsock::testing {

PortRss read_first_port_rss()
{
    PortRss out;
    uint16_t id = RTE_MAX_ETHPORTS;
    RTE_ETH_FOREACH_DEV(id) break;
    rte_eth_dev_info info{};
    if (id >= RTE_MAX_ETHPORTS || rte_eth_dev_info_get(id, &info) != 0) {
        out.error = "no ethdev port";
        return out;
    }
    // net_null reports no key size but hashes (and answers) with 40 bytes.
    if (info.hash_key_size != 0 && info.hash_key_size != out.key.size()) {
        out.error = "RSS key of " + std::to_string(info.hash_key_size) + " bytes";
        return out;
    }
    rte_eth_rss_conf conf{};
    conf.rss_key = out.key.data();
    conf.rss_key_len = static_cast<uint8_t>(out.key.size());
    if (rte_eth_dev_rss_hash_conf_get(id, &conf) != 0) {
        out.error = "rte_eth_dev_rss_hash_conf_get failed";
        return out;
    }
    std::vector<rte_eth_rss_reta_entry64> groups((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                                 RTE_ETH_RETA_GROUP_SIZE);
    for (auto& g : groups)
        g.mask = ~uint64_t{0};
    if (info.reta_size == 0 || rte_eth_dev_rss_reta_query(id, groups.data(), info.reta_size) != 0) {
        out.error = "rte_eth_dev_rss_reta_query failed";
        return out;
    }
    for (uint16_t e = 0; e < info.reta_size; ++e)
        out.reta.push_back(groups[e / RTE_ETH_RETA_GROUP_SIZE].reta[e % RTE_ETH_RETA_GROUP_SIZE]);
    return out;
}

} // namespace ringsock::testing
