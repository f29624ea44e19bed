// A TCP discard server on lwIP's raw API (RFC 863 style): accepts on a
// port, counts and drops every byte, opening the window at once, and
// closes when the peer does. The receive end of scripts/bench/tcp-stream.
// An interface free of lwIP types, so the program's main file may include
// DPDK's ethdev headers. lwIP-engine thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace ringsock::stack {

class TcpDiscardServer {
public:
    // Throws std::runtime_error when lwIP refuses the listener.
    explicit TcpDiscardServer(uint16_t port);
    ~TcpDiscardServer(); // aborts open connections, closes the listener
    TcpDiscardServer(const TcpDiscardServer&) = delete;
    TcpDiscardServer& operator=(const TcpDiscardServer&) = delete;

    // Readable from any thread.
    uint64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
    uint64_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }
    uint64_t closed() const noexcept { return closed_.load(std::memory_order_relaxed); }

    struct State;

private:
    friend struct State;
    std::atomic<uint64_t> bytes_{0};
    std::atomic<uint64_t> connections_{0};
    std::atomic<uint64_t> closed_{0};
    std::unique_ptr<State> state_;
};

} // namespace ringsock::stack
