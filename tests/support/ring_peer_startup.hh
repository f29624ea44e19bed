// The one way a program puts the stack on the ring peer's port: the peer's
// overrides (ring_peer.hh), the program's own settings after them,
// ringsock_configure, and for a program that starts at once, WSAStartup and
// the peer's pool. Apart from ring_peer.cc because it speaks the public API,
// whose socket header cannot share a translation unit with DPDK's.
#pragma once

#include <string>
#include <vector>

namespace ringsock::testing {

enum class PeerConfigured {
    yes,
    no_rings,        // the peer's rings could not be made
    profile_refused, // ringsock_configure refused the profile or a setting
};

// Before WSAStartup: configures the stack from `profile` with the peer's
// overrides for `queue_pairs`, then `settings` ("section.key=value", applied
// last, so that they win). On anything but `yes`, `error` says what failed.
PeerConfigured configure_on_ring_peer(const std::string& profile, unsigned queue_pairs,
                                      const std::vector<std::string>& settings, std::string& error);

// configure_on_ring_peer, WSAStartup and start_peer, for a program's main:
// 0 once all three are done; otherwise the message, prefixed with
// `program`, is on stderr and the exit code is returned: 2 for a profile or
// setting refused, 1 for anything else that would not start.
int start_on_ring_peer(const char* program, const std::string& profile, unsigned queue_pairs,
                       const std::vector<std::string>& settings);

} // namespace ringsock::testing
