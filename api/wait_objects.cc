// The process's one WaitObjects.
#include "api/wait_objects.hh"

#include <new>

namespace ringsock::api {

WaitObjects& wait_objects() noexcept
{
    // Built in place in static storage on first use and never destroyed:
    // engine lcores and detached threads may still complete requests while
    // exit() runs static destructors. Its memory stays reachable from here,
    // so leak checkers do not count it.
    alignas(WaitObjects) static unsigned char storage[sizeof(WaitObjects)];
    static WaitObjects* const objects = new (storage) WaitObjects();
    return *objects;
}

} // namespace ringsock::api
