// What Winsock makes process-wide: how many WSAStartup calls are
// outstanding, and each thread's last error. Winsock's API is process-global
// by definition (handles and start-up belong to the process), so this state
// is too; nothing else in api/ is global.
#pragma once

#include <atomic>

namespace ringsock::api {

// WSAStartup's count. While it is 0 every call but WSAStartup fails with
// WSANOTINITIALISED.
std::atomic<int>& startup_count() noexcept;
inline bool started() noexcept
{
    return startup_count().load(std::memory_order_acquire) > 0;
}

// WSAGetLastError/GetLastError share one per thread, as on Windows.
void set_last_error(int error) noexcept;
int last_error() noexcept;

} // namespace ringsock::api
