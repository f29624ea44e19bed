#include "api/process_state.hh"

namespace ringsock::api {

std::atomic<int>& startup_count() noexcept
{
    static std::atomic<int> count{0};
    return count;
}

namespace {
thread_local int t_last_error = 0;
}

void set_last_error(int error) noexcept
{
    t_last_error = error;
}

int last_error() noexcept
{
    return t_last_error;
}

} // namespace ringsock::api
