#include "dataplane/control_loop.hh"

#include <algorithm>
#include <csignal>

namespace ringsock::dataplane {

ControlLoop::ControlLoop(Dataplane& dataplane, const SignalWatcher& signals, double duration_s,
                         std::chrono::milliseconds interval, std::function<void(double)> tick)
{
    using Clock = std::chrono::steady_clock;
    thread_ = std::thread([this, &dataplane, &signals, duration_s, interval, tick = std::move(tick)] {
        for (;;) {
            auto wait = interval;
            if (duration_s > 0) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    start_ + std::chrono::duration<double>(duration_s) - Clock::now());
                if (left.count() <= 0) break;
                wait = std::min(wait, left);
            }
            if (auto signal = signals.wait(wait)) {
                stopped_by_ = *signal == SIGINT ? "SIGINT" : "SIGTERM";
                break;
            }
            tick(std::chrono::duration<double>(Clock::now() - start_).count());
        }
        dataplane.request_stop();
    });
}

ControlLoop::~ControlLoop()
{
    join();
}

void ControlLoop::join()
{
    if (thread_.joinable()) thread_.join();
}

} // namespace ringsock::dataplane
