// An active TCP open from lwIP's raw API for integration tests: connect to
// a peer, send a byte pattern, and keep what the peer sends back until it
// closes; then close ours. The peer closes first (it knows how many bytes
// to expect), so TIME_WAIT is the peer's and no lwIP pcb outlives a test. An interface free of lwIP types (see
// lwip_probe.hh). lwIP-engine thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace ringsock::testing {

class LwipTcpClient {
public:
    // Connects to `address`:`port` and, once connected, sends `bytes` bytes
    // of the pattern (i * 7 + 3) % 256.
    // Throws std::runtime_error if lwIP refuses to start the connection.
    LwipTcpClient(const std::array<uint8_t, 4>& address, uint16_t port, size_t bytes);
    ~LwipTcpClient(); // aborts the connection if still open
    LwipTcpClient(const LwipTcpClient&) = delete;
    LwipTcpClient& operator=(const LwipTcpClient&) = delete;

    bool connected() const noexcept;
    bool peer_closed() const noexcept; // the peer's FIN arrived
    bool failed() const noexcept;      // lwIP reported an error (reset, timeout)
    size_t bytes_sent() const noexcept;
    const std::string& received() const noexcept;
    uint16_t local_port() const noexcept;

    struct State;

private:
    std::unique_ptr<State> state_;
};

} // namespace ringsock::testing
