// One ethdev port, configured from a PortProfile and started, as an RAII
// object: the destructor stops and closes it, which hands every mbuf in its
// RX rings back to the pool, and detaches the device. A device EAL did not
// probe (or one a previous Port detached) is hot-plugged from its string.
//
// Construction asks the PMD what it supports before configuring: a
// `required` offload it lacks, an RSS hash field, key length or RETA size it
// cannot honour, more queues than it has, or an MTU outside its range is a
// PortError that names the port, the driver and the mismatch. `preferred`
// offloads it lacks are dropped with one warning each.
//
// Main thread only (start-up, shutdown, statistics). Engines use the port
// id and queue numbers, never this object, on the data path.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/mempool.hh"
#include "dataplane/profile.hh"

namespace ringsock::dataplane {

class PortError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Device-level counters (rte_eth_stats) for one port.
struct PortStats {
    uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
    uint64_t imissed = 0; // dropped by the NIC: RX descriptors were full
    uint64_t ierrors = 0, oerrors = 0;
    uint64_t rx_nombuf = 0; // the PMD could not refill: the mempool was empty
};

class Port {
public:
    // `pool_for_queue(q)` names the mempool RX queue q refills from (the
    // socket of the engine that polls it). Throws PortError.
    Port(const PortProfile& profile, const std::function<const Mempool&(uint16_t)>& pool_for_queue);
    ~Port();
    Port(const Port&) = delete;
    Port& operator=(const Port&) = delete;

    uint16_t id() const noexcept { return id_; }
    const std::string& name() const noexcept { return name_; }
    const std::string& driver() const noexcept { return driver_; }
    uint16_t rx_queues() const noexcept { return rx_queues_; }
    uint16_t tx_queues() const noexcept { return tx_queues_; }
    uint64_t rx_offloads() const noexcept { return rx_offloads_; } // granted, not asked
    uint64_t tx_offloads() const noexcept { return tx_offloads_; }
    bool link_up() const noexcept;
    uint32_t link_speed_mbps() const noexcept;
    PortStats stats() const noexcept;
    // The RSS redirection table as the PMD reports it (RX queue per entry);
    // empty when it keeps the table to itself.
    std::vector<uint16_t> redirection_table() const;

    // The NUMA socket the device sits on (0 when the PMD does not say).
    static int socket_of(const PortProfile& profile);

private:
    void configure_and_start(const PortProfile& profile, const std::function<const Mempool&(uint16_t)>& pool_for_queue);
    void wait_for_link(const PortProfile& profile);
    void release() noexcept;

    uint16_t id_ = 0;
    std::string name_;
    std::string driver_;
    uint16_t rx_queues_ = 0;
    uint16_t tx_queues_ = 0;
    uint64_t rx_offloads_ = 0;
    uint64_t tx_offloads_ = 0;
    bool started_ = false;
};

} // namespace ringsock::dataplane
