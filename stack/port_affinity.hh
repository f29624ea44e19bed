// Core-affine active opens: which local ports make a TCP connection's
// replies land, by the NIC's RSS (Toeplitz over the reply's 4-tuple with
// the port's key, then the redirection table), on an RX queue that lwIP's
// engine polls, so its segments need no hand-off from another engine.
//
// Immutable after construction: any thread may ask.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/software_rss.hh"

namespace ringsock::stack {

class PortAffinity {
public:
    // `key`: the port's RSS key (at least SoftwareRss::kKeyLen bytes);
    // `reta`: the queue of each redirection table entry (a power of two
    // entries); `home_queues`: the queues lwIP's engine polls. Throws
    // std::invalid_argument for a short key or an empty or uneven table.
    PortAffinity(std::span<const uint8_t> key, std::vector<uint16_t> reta, std::span<const uint16_t> home_queues);

    // Whether a reply from `remote`:`remote_port` to `local`:`local_port`
    // (addresses in network order, IPv4 in the first 4 bytes) lands home.
    bool lands_home(uint8_t family, const std::array<uint8_t, 16>& local, uint16_t local_port,
                    const std::array<uint8_t, 16>& remote, uint16_t remote_port) const noexcept;

private:
    SoftwareRss hash_;
    std::vector<uint16_t> reta_;
    std::vector<bool> home_; // by queue
};

} // namespace ringsock::stack
