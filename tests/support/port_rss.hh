// The RSS key and redirection table the first ethdev port reports, read
// through DPDK in a translation unit of its own: <rte_ethdev.h> pulls in
// glibc's socket headers, which clash with ringsock's <winsock2.h>.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ringsock::testing {

struct PortRss {
    std::array<uint8_t, 40> key{};
    std::vector<uint16_t> reta; // queue per entry
    std::string error;          // empty when both were read
};

PortRss read_first_port_rss();

} // namespace ringsock::testing
