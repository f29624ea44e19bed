// The process's wait objects: the wake hub every waiter sleeps on, and the
// handle tables of events, completion ports and threads' APC queues. Winsock
// handles are process-wide by definition (any thread may wait on, set or
// close any of them), so there is exactly one WaitObjects, made on first
// use and never destroyed: engines and detached threads may still touch it
// while the process exits.
//
// Any thread may call any member; lookups are lock-free (handle_table.hh).
#pragma once

#include <cstdint>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/event.hh"
#include "api/handle_table.hh"
#include "api/wake_hub.hh"
#include "ringsock/ws2spi.h"

namespace ringsock::api {

class WaitObjects {
public:
    // Open events at once; WSACreateEvent fails beyond (WSA_NOT_ENOUGH_MEMORY).
    static constexpr uint32_t kMaxEvents = 65536;
    // Open completion ports; CreateIoCompletionPort fails beyond.
    static constexpr uint32_t kMaxPorts = 4096;
    // Threads that have an APC queue at once (alive, or exited with
    // completions still in flight); a thread beyond gets a queue that
    // refuses routines and APCs.
    static constexpr uint32_t kMaxThreads = 16384;

    // Type tags in the top byte of each table's handles.
    static constexpr uint8_t kEventTag = 0x45;  // 'E'
    static constexpr uint8_t kPortTag = 0x50;   // 'P'
    static constexpr uint8_t kThreadTag = 0x54; // 'T'

    WaitObjects() = default;
    WaitObjects(const WaitObjects&) = delete;
    WaitObjects& operator=(const WaitObjects&) = delete;

    WakeHub& hub() noexcept { return hub_; }
    HandleTable<Event>& events() noexcept { return events_; }
    HandleTable<CompletionPort>& ports() noexcept { return ports_; }
    HandleTable<ApcQueue>& threads() noexcept { return threads_; }

    // The open object a HANDLE names, or null (not one of its kind, closed,
    // stale). No reference is taken: the pointer stays valid memory, and
    // names another object only once the handle was closed.
    Event* event(HANDLE h) noexcept { return events_.get(to_bits(h)); }
    CompletionPort* port(HANDLE h) noexcept { return ports_.get(to_bits(h)); }
    ApcQueue* thread(HANDLE h) noexcept { return threads_.get(to_bits(h)); }

    static uint64_t to_bits(HANDLE h) noexcept { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(h)); }
    static HANDLE to_handle(uint64_t bits) noexcept { return reinterpret_cast<HANDLE>(static_cast<uintptr_t>(bits)); }

private:
    WakeHub hub_;
    HandleTable<Event> events_{kMaxEvents, kEventTag};
    HandleTable<CompletionPort> ports_{kMaxPorts, kPortTag};
    HandleTable<ApcQueue> threads_{kMaxThreads, kThreadTag};
};

// The process's wait objects.
WaitObjects& wait_objects() noexcept;

// The APC queue a WSATHREADID (from WPUOpenCurrentThread) names while its
// thread lives; null otherwise.
inline ApcQueue* apc_queue_of(const WSATHREADID& id) noexcept
{
    return wait_objects().thread(id.ThreadHandle);
}

} // namespace ringsock::api
