#include "stack/port_affinity.hh"

#include <algorithm>
#include <stdexcept>

namespace ringsock::stack {

PortAffinity::PortAffinity(std::span<const uint8_t> key, std::vector<uint16_t> reta,
                           std::span<const uint16_t> home_queues)
    : hash_(key), reta_(std::move(reta))
{
    if (reta_.empty() || (reta_.size() & (reta_.size() - 1)) != 0)
        throw std::invalid_argument("a redirection table needs a power-of-two number of entries; got " +
                                    std::to_string(reta_.size()));
    const uint16_t highest = *std::max_element(reta_.begin(), reta_.end());
    home_.assign(highest + 1u, false);
    for (uint16_t q : home_queues)
        if (q < home_.size()) home_[q] = true;
}

bool PortAffinity::lands_home(uint8_t family, const std::array<uint8_t, 16>& local, uint16_t local_port,
                              const std::array<uint8_t, 16>& remote, uint16_t remote_port) const noexcept
{
    // The reply's tuple: it comes from the remote end to us.
    const uint32_t h = hash_.hash(family, remote, local, remote_port, local_port);
    return home_[reta_[h & (reta_.size() - 1)]];
}

} // namespace ringsock::stack
