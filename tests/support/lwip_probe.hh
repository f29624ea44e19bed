// Test probes on lwIP's raw API, behind an interface free of lwIP types so
// tests that also include DPDK's ethdev headers can use them (the two
// define clashing IPv6 header structs). lwIP-engine thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringsock::testing {

// A raw-API UDP receiver bound to a port on every address: keeps each
// datagram it receives (after lwIP's reassembly).
class LwipUdpReceiver {
public:
    explicit LwipUdpReceiver(uint16_t port);
    ~LwipUdpReceiver();
    LwipUdpReceiver(const LwipUdpReceiver&) = delete;
    LwipUdpReceiver& operator=(const LwipUdpReceiver&) = delete;

    // Sends `payload` to an IPv4 address and port; false if lwIP refused.
    bool send_to(const std::array<uint8_t, 4>& address, uint16_t port, const std::vector<uint8_t>& payload);

    std::vector<std::vector<uint8_t>> datagrams;

private:
    struct Pcb;
    std::unique_ptr<Pcb> pcb_;
};

// Whether lwIP's ARP table holds a resolved entry for `address`, and its MAC.
bool lwip_arp_entry(const std::array<uint8_t, 4>& address, std::array<uint8_t, 6>& mac);

// lwIP's pbuf pool and heap in use (MEMP_STATS / MEM_STATS).
unsigned lwip_pbufs_in_use();

// lwIP's IP, fragment and UDP counters as text, for failure messages.
std::string lwip_ip_counters();

} // namespace ringsock::testing
