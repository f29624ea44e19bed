// One finished request on its way from the engine that finished it to the
// thread that reaps it: the record a completion ring carries.
#pragma once

#include <cstdint>

#include "ringsock/winsock2.h"

namespace ringsock::api {

// 32 bytes: two per cache line. `overlapped` has already been written
// (Internal = error, InternalHigh = bytes, Offset = flags) by the time the
// record is visible, so a reaper may hand it to the application at once.
struct Completion {
    LPWSAOVERLAPPED overlapped;
    ULONG_PTR key; // completion key of the socket's port association
    DWORD bytes;
    DWORD error; // 0 or a WSA error code
    DWORD flags; // MSG_* output flags
    DWORD reserved;
};
static_assert(sizeof(Completion) == 32);

// A completion routine to run in its initiating thread, or a plain user APC
// (WPUQueueApc). 40 bytes.
struct ApcEntry {
    LPWSAOVERLAPPED_COMPLETION_ROUTINE routine; // null for a user APC
    LPWSAOVERLAPPED overlapped;                 // routine's; for a user APC: the LPWSAUSERAPC, cast
    DWORD error;
    DWORD bytes;
    DWORD flags;
    DWORD reserved;
    DWORD_PTR context; // user APC's dwContext
};

} // namespace ringsock::api
