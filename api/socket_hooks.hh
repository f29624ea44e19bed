// What the wait-object calls (completion ports) need from the socket layer,
// without depending on its classes.
#pragma once

#include "ringsock/winsock2.h"

namespace ringsock::api {

class CompletionPort;

// CreateIoCompletionPort(socket, port, key): routes the socket's future
// completions to `port` under `key`. Returns 0 or a Win32 error
// (ERROR_INVALID_HANDLE for a handle that is not an open socket,
// ERROR_INVALID_PARAMETER when the socket already has a port).
DWORD associate_socket_with_port(SOCKET socket, CompletionPort& port, ULONG_PTR key) noexcept;

// SetFileCompletionNotificationModes on a socket. Returns 0 or a Win32 error.
DWORD set_socket_notification_modes(SOCKET socket, UCHAR flags) noexcept;

// Whether `handle` names an open socket (CreateIoCompletionPort tells a
// socket from a port by this).
bool is_socket_handle(HANDLE handle) noexcept;

// Whether the caller runs on an engine's lcore (ringsock_run_on_engine,
// ringsock_poll_on_engine), where no wait may block.
bool caller_is_an_engine() noexcept;

} // namespace ringsock::api
