#include "stack/counter_groups.hh"

#include <string>

namespace ringsock::stack {

dataplane::CounterGroup classifier_counter_group(const Classifier& classifier)
{
    return [&classifier] {
        const ClassifierSnapshot s = classifier.snapshot();
        std::vector<std::pair<std::string, uint64_t>> out{{"udp_fastpath", s.udp_fastpath}, {"lwip", s.lwip}};
        for (std::size_t r = 0; r < kDropReasonCount; ++r)
            out.emplace_back("drop_" + std::string(drop_reason_name(static_cast<DropReason>(r))), s.drops[r]);
        return out;
    };
}

dataplane::CounterGroup lwip_counter_group(const LwipInterface& lwip)
{
    return [&lwip] {
        const LwipCounters& c = lwip.counters();
        return std::vector<std::pair<std::string, uint64_t>>{
            {"rx_zero_copy", c.rx_zero_copy.get()},
            {"rx_copied", c.rx_copied.get()},
            {"rx_no_pbuf", c.rx_no_pbuf.get()},
            {"rx_rejected", c.rx_rejected.get()},
            {"tx_frames", c.tx_frames.get()},
            {"tx_no_mbuf", c.tx_no_mbuf.get()},
            {"handoff_in", c.handoff_in.get()},
            {"tx_checksum_offloaded", c.tx_checksum_offloaded.get()},
            {"rx_checksum_trusted", c.rx_checksum_trusted.get()},
            {"tcp_out_of_order_freed", c.tcp_out_of_order_freed.get()},
            {"tcp_out_of_order_capped", c.tcp_out_of_order_capped.get()},
        };
    };
}

} // namespace ringsock::stack
