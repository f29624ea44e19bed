#include "dataplane/signals.hh"

#include <cerrno>
#include <pthread.h>

namespace ringsock::dataplane {

SignalWatcher::SignalWatcher()
{
    sigemptyset(&watched_);
    sigaddset(&watched_, SIGINT);
    sigaddset(&watched_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &watched_, &previous_);
}

SignalWatcher::~SignalWatcher()
{
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

std::optional<int> SignalWatcher::wait(std::chrono::milliseconds timeout) const
{
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec span{static_cast<time_t>(seconds.count()),
                        static_cast<long>(std::chrono::nanoseconds(timeout - seconds).count())};
    for (;;) {
        const int signal = sigtimedwait(&watched_, nullptr, &span);
        if (signal > 0) return signal;
        if (errno != EINTR) return std::nullopt;
    }
}

} // namespace ringsock::dataplane
