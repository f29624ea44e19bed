// The control loop of a ringsock program: on a thread of its own, call a
// reporting function every interval until the run's duration is over or
// SIGINT/SIGTERM arrives (SignalWatcher), then ask the dataplane to stop.
// The main thread meanwhile runs the engines (Dataplane::run).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "dataplane/dataplane.hh"
#include "dataplane/signals.hh"

namespace ringsock::dataplane {

class ControlLoop {
public:
    // Starts the thread. `duration_s` 0 runs until a signal. `tick` gets
    // the seconds since start; it runs on the control thread.
    ControlLoop(Dataplane& dataplane, const SignalWatcher& signals, double duration_s,
                std::chrono::milliseconds interval, std::function<void(double elapsed_s)> tick);
    ~ControlLoop(); // joins

    ControlLoop(const ControlLoop&) = delete;
    ControlLoop& operator=(const ControlLoop&) = delete;

    // After join(): "duration", "SIGINT" or "SIGTERM".
    void join();
    const std::string& stopped_by() const noexcept { return stopped_by_; }
    std::chrono::steady_clock::time_point start() const noexcept { return start_; }

private:
    std::string stopped_by_ = "duration";
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::thread thread_;
};

} // namespace ringsock::dataplane
