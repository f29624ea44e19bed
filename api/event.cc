// Event's cold half: what a recycled slot does on WSACreateEvent.
#include "api/event.hh"

namespace ringsock::api {

void Event::reset(uint64_t handle) noexcept
{
    handle_.store(handle, std::memory_order_relaxed);
    signalled_.store(false, std::memory_order_release);
}

} // namespace ringsock::api
