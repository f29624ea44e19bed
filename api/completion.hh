// One finished request on its way from the engine that finished it to the
// thread that reaps it: the record a completion ring carries.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

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

// A Completion written as the rings copy it, a 64-bit word at a time
// (bytes and error share one, flags and reserved another): built field by
// field, the word holding two DWORDs was read back across two 4-byte
// stores, a store-forwarding stall on every completion pushed.
inline Completion completion_of(LPWSAOVERLAPPED overlapped, ULONG_PTR key, DWORD bytes, DWORD error = 0,
                                DWORD flags = 0) noexcept
{
    static_assert(std::endian::native == std::endian::little);
    static_assert(offsetof(Completion, bytes) == 16 && offsetof(Completion, error) == 20 &&
                  offsetof(Completion, flags) == 24 && offsetof(Completion, reserved) == 28);
    Completion c;
    c.overlapped = overlapped;
    c.key = key;
    const uint64_t bytes_and_error = uint64_t{bytes} | uint64_t{error} << 32;
    const uint64_t flags_and_reserved = flags;
    std::memcpy(&c.bytes, &bytes_and_error, sizeof(bytes_and_error));
    std::memcpy(&c.flags, &flags_and_reserved, sizeof(flags_and_reserved));
    return c;
}

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
