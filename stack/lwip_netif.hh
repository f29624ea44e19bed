// lwIP on a dataplane port: one lwIP netif whose input is the frames the
// classifier hands to lwIP and whose output leaves through an engine's own
// TX queue. lwIP keeps its state in globals and is not re-entrant, so one
// LwipInterface exists per process and every call below is made on the
// lcore of the engine that owns it (the lwIP engine). Other engines hand
// their lwIP-bound frames over an LwipHandoff ring, drained here.
//
// RX takes no copy: the mbuf's private area holds a pbuf_custom over the
// mbuf's data, and lwIP's free of that pbuf frees the mbuf. Frames that do
// not fit that scheme (chained mbufs, a pool without room in its private
// area) are copied into a PBUF_POOL chain. TX copies the pbuf chain into
// one mbuf (zero-copy TX is later work).
//
// Checksums: lwIP leaves out the transmit sums the port computes (the
// config's tx_checksums; see checksum_offload.hh) and skips, frame by
// frame, the receive checks the PMD already made (its RX checksum flags).
// lwIP runs on one lcore and handles each frame to the end inside
// netif->input, so switching the netif's check flags per frame is exact.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/counters.hh"
#include "dataplane/engine.hh"
#include "stack/classifier.hh"
#include "stack/interface_config.hh"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct netif;
struct pbuf;

namespace ringsock::stack {

struct alignas(dataplane::kCacheLine) LwipCounters {
    dataplane::RelaxedCounter rx_zero_copy;            // frames given to lwIP in place
    dataplane::RelaxedCounter rx_copied;               // frames copied (chained, or no room for the pbuf)
    dataplane::RelaxedCounter rx_no_pbuf;              // dropped: lwIP had no pbuf for a copy
    dataplane::RelaxedCounter rx_rejected;             // dropped: lwIP's input refused the frame
    dataplane::RelaxedCounter tx_frames;               // handed to the engine
    dataplane::RelaxedCounter tx_no_mbuf;              // dropped: the TX pool was empty
    dataplane::RelaxedCounter handoff_in;              // frames other engines handed over
    dataplane::RelaxedCounter tx_checksum_offloaded;   // frames whose IPv4/TCP sums the port computes
    dataplane::RelaxedCounter rx_checksum_trusted;     // frames whose sums lwIP did not recompute: the PMD checked
    dataplane::RelaxedCounter tcp_out_of_order_freed;  // pbufs of TCP out-of-order queues freed: the pool ran short
    dataplane::RelaxedCounter tcp_out_of_order_capped; // pbufs lwIP dropped beyond a queue's TCP_OOSEQ_MAX_PBUFS
};

class LwipInterface final : public LwipSink {
public:
    // On the lwIP engine's lcore. `tx_pool` supplies TX mbufs. Initialises
    // lwIP once per process, adds the netif, brings it up (gratuitous ARP)
    // with its IPv6 link-local and static addresses valid at once (no DAD:
    // the addresses are configured, not discovered). Throws
    // std::runtime_error when a second interface is made or lwIP refuses.
    LwipInterface(dataplane::Engine& engine, rte_mempool* tx_pool, const LwipInterfaceConfig& config);
    ~LwipInterface() override; // removes the netif; lwIP's pbufs it still holds are freed
    LwipInterface(const LwipInterface&) = delete;
    LwipInterface& operator=(const LwipInterface&) = delete;

    // LwipSink: takes ownership of every frame.
    void on_lwip(rte_mbuf** pkts, uint16_t n) override;
    // Once per engine iteration: lwIP's timers and the hand-off ring, and
    // (once a millisecond, while the pool is short) TCP's out-of-order
    // queues given back (tcp_out_of_order.hh).
    void poll();
    // Frames other engines enqueue here are fed to lwIP in poll().
    void attach_handoff(rte_ring* ring) noexcept { handoff_ = ring; }

    // IGMP membership of an IPv4 multicast group on this interface: lwIP
    // sends the report (or leave) and answers the router's queries, and
    // the port's multicast filter gains (loses) the group's MAC
    // (multicast_filter.hh). False when lwIP refuses (not multicast, no
    // free group slot, not a member).
    bool join_ipv4_group(const Ipv4Address& group);
    bool leave_ipv4_group(const Ipv4Address& group);
    // The same for an IPv6 group through MLD (lwIP sends MLDv1 reports and
    // done messages, and answers queries); the filter gains 33:33 and the
    // group's last four bytes. Joins count: the last leave sends done.
    bool join_ipv6_group(const Ipv6Address& group);
    bool leave_ipv6_group(const Ipv6Address& group);
    // MACs in the port's multicast filter; whether all-multicast stands in.
    std::size_t multicast_macs() const noexcept;
    bool all_multicast() const noexcept;

    // The MAC lwIP's ARP table holds for `ip` once resolved (false while
    // unknown or pending). arp_query starts (or repeats) resolution: lwIP
    // sends a request unless it holds a fresh answer.
    bool arp_entry(const Ipv4Address& ip, MacAddress& mac);
    void arp_query(const Ipv4Address& ip);

    // What neighbour discovery knows of the next hop lwIP chose for an
    // IPv6 `destination` (its destination cache: the destination itself
    // on the link, else a router), read rather than asked: nothing is
    // sent. `mac` is set unless none. A destination whose path MTU lwIP
    // has lowered below the link's is none: lwIP fragments for it.
    enum class Ipv6Neighbour : uint8_t {
        none,        // no destination entry, no neighbour, or unresolved
        unconfirmed, // stale, or being probed: lwIP confirms on its next send
        reachable,   // confirmed within lwIP's reachable time
    };
    Ipv6Neighbour ipv6_neighbour(const Ipv6Address& destination, MacAddress& mac);

    struct netif* raw() noexcept;
    const LwipCounters& counters() const noexcept { return counters_; }

private:
    struct State;
    static int8_t link_output(struct netif* netif, struct pbuf* p);
    void input_one(rte_mbuf* m);

    LwipCounters counters_;
    dataplane::Engine& engine_;
    rte_mempool* tx_pool_;
    LwipInterfaceConfig config_;
    rte_ring* handoff_ = nullptr;
    uint16_t checksum_flags_ = 0;   // the netif's NETIF_CHECKSUM_* set before per-frame RX changes
    uint64_t next_timer_check_ = 0; // TSC
    std::unique_ptr<State> state_;
};

// A BurstHandler for the lwIP engine's own loop: runs LwipInterface::poll()
// each iteration. Register it beside the ClassifierHandler.
class LwipPoller final : public dataplane::BurstHandler {
public:
    explicit LwipPoller(LwipInterface& lwip) : lwip_(lwip) {}
    uint16_t on_burst(dataplane::Engine&, dataplane::RxQueueRef, rte_mbuf**, uint16_t n) override { return n; }
    void on_poll(dataplane::Engine&) override { lwip_.poll(); }

private:
    LwipInterface& lwip_;
};

} // namespace ringsock::stack
