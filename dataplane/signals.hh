// SIGINT and SIGTERM as events a control loop waits for, not handlers.
//
// Construct a SignalWatcher on the main thread before Eal: it blocks the
// signals in that thread, and every thread started afterwards (EAL's lcore
// and service threads included) inherits the mask, so the signals stay
// pending until wait() takes them. No handler runs, no global flag exists.
#pragma once

#include <chrono>
#include <optional>

#include <signal.h>

namespace ringsock::dataplane {

class SignalWatcher {
public:
    SignalWatcher();
    ~SignalWatcher(); // restores the previous mask of the constructing thread
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

    // Waits up to `timeout` for SIGINT or SIGTERM; returns the signal
    // number, or nothing when the time ran out.
    std::optional<int> wait(std::chrono::milliseconds timeout) const;

private:
    sigset_t watched_{};
    sigset_t previous_{};
};

} // namespace ringsock::dataplane
