// A TCP echo server on lwIP's raw API for integration tests, behind an
// interface free of lwIP types (tests that include DPDK's ethdev headers
// cannot also include lwIP's: their IPv6 header structs clash). Every byte a
// peer sends comes back on the same connection; the receive window is opened
// only for bytes already written back, so a peer slow to read the echo
// slows its own sending instead of making the server buffer without bound.
// lwIP-engine thread only: construct, poll and destroy it there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct netif;

namespace ringsock::testing {

class LwipTcpEchoServer {
public:
    struct Counters {
        uint64_t accepted = 0;     // connections taken from the listener
        uint64_t bytes_echoed = 0; // bytes handed back to tcp_write
        uint64_t resets = 0;       // connections lwIP reported reset by the peer (ERR_RST)
        uint64_t other_errors = 0; // connections lwIP reported aborted otherwise (timeouts)
        uint64_t closes = 0;       // graceful closes by the peer (FIN seen)
        uint64_t write_stalls = 0; // times the send buffer or queue was full with bytes waiting
    };

    // Listens on `port` on every address (IPv4 and IPv6). Throws
    // std::runtime_error when lwIP refuses.
    explicit LwipTcpEchoServer(uint16_t port);
    // Aborts the connections still open (RST to their peers, their queued
    // pbufs freed) and closes the listener.
    ~LwipTcpEchoServer();
    LwipTcpEchoServer(const LwipTcpEchoServer&) = delete;
    LwipTcpEchoServer& operator=(const LwipTcpEchoServer&) = delete;

    const Counters& counters() const noexcept;
    // Connections accepted and not yet closed, reset or aborted.
    size_t open_connections() const noexcept;
    // Bytes received and not yet written back, over all connections.
    size_t bytes_queued() const noexcept;

    struct State;

private:
    std::unique_ptr<State> state_;
};

// Loss and reordering at lwIP's netif boundary, for kernels without
// sch_netem: while it lives, IPv4 TCP frames going into lwIP (the peer's
// data and ACKs) and coming out of it (ours) are dropped with probability
// `loss_per_mille`/1000, and with `reorder_per_mille`/1000 held back and
// delivered after the next frame in the same direction. Dropped RX frames
// are freed (their mbufs go back to the pool). One at a time; lwIP-engine
// thread only. `netif` is LwipInterface::raw().
class LwipImpairment {
public:
    struct Counters {
        uint64_t rx_dropped = 0;
        uint64_t rx_reordered = 0;
        uint64_t tx_dropped = 0;
        uint64_t tx_reordered = 0;
    };

    LwipImpairment(struct netif* netif, unsigned loss_per_mille, unsigned reorder_per_mille, uint32_t seed);
    // Delivers what is held and puts lwIP's input and output back.
    ~LwipImpairment();
    LwipImpairment(const LwipImpairment&) = delete;
    LwipImpairment& operator=(const LwipImpairment&) = delete;

    const Counters& counters() const noexcept;

    struct State;

private:
    std::unique_ptr<State> state_;
};

// lwIP's TCP counters (segments out and in, drops, checksum and memory
// errors) and the pcbs in use, as text for reports and failure messages.
std::string lwip_tcp_counters();

// TCP pcbs lwIP still holds (active, TIME_WAIT and listening).
unsigned lwip_tcp_pcbs_in_use();

// Segments lwIP's TCP input dropped for a bad checksum (lwip_stats.tcp.chkerr).
uint64_t lwip_tcp_checksum_errors();

} // namespace ringsock::testing
