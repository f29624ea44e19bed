// See ring_peer_startup.hh.
#include "tests/support/ring_peer_startup.hh"

#include <ringsock/ringsock.h>

#include <cstdio>

#include "tests/support/ring_peer.hh"

namespace ringsock::testing {

PeerConfigured configure_on_ring_peer(const std::string& profile, unsigned queue_pairs,
                                      const std::vector<std::string>& settings, std::string& error)
{
    std::vector<std::string> all = ring_peer_overrides(queue_pairs);
    if (all.empty()) {
        error = ring_peer_error();
        return PeerConfigured::no_rings;
    }
    all.insert(all.end(), settings.begin(), settings.end());
    std::vector<const char*> overrides;
    overrides.reserve(all.size());
    for (const std::string& s : all)
        overrides.push_back(s.c_str());
    if (ringsock_configure(profile.c_str(), static_cast<int>(overrides.size()), overrides.data()) != 0) {
        error = ringsock_startup_error();
        return PeerConfigured::profile_refused;
    }
    return PeerConfigured::yes;
}

int start_on_ring_peer(const char* program, const std::string& profile, unsigned queue_pairs,
                       const std::vector<std::string>& settings)
{
    std::string error;
    const PeerConfigured configured = configure_on_ring_peer(profile, queue_pairs, settings, error);
    if (configured != PeerConfigured::yes) {
        std::fprintf(stderr, "%s: %s\n", program, error.c_str());
        return configured == PeerConfigured::profile_refused ? 2 : 1;
    }
    WSADATA data;
    if (WSAStartup(MAKEWORD(2, 2), &data) != 0) {
        std::fprintf(stderr, "%s: cannot start: %s\n", program, ringsock_startup_error());
        return 1;
    }
    if (!start_peer()) {
        std::fprintf(stderr, "%s: ring peer: %s\n", program, ring_peer_error().c_str());
        WSACleanup();
        return 1;
    }
    return 0;
}

} // namespace ringsock::testing
