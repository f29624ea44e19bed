// The public calls on wait objects: events (WSA*Event,
// WSAWaitForMultipleEvents), completion ports (CreateIoCompletionPort,
// GetQueuedCompletionStatus[Ex], PostQueuedCompletionStatus, CloseHandle),
// alertable sleep (SleepEx), the SPI's thread calls (WPU*) and the thread's
// last error. Any application thread may call them; blocking calls sleep in
// the WakeHub loop (wake_hub.hh) and never hold a lock.
//
// As on Windows, the WSA* calls fail with WSANOTINITIALISED before
// WSAStartup, while the kernel32 calls (SleepEx, the port calls,
// CloseHandle, Get/SetLastError) and the WPU* upcalls work without it.
//
// Where ringsock departs from Windows, for a reason:
// - A failed I/O completion reports its WSA error code (Completion::error)
//   through GetLastError and OVERLAPPED_ENTRY::Internal, not the NTSTATUS
//   or its Win32 translation: there is no NT status underneath, and
//   WSAGetOverlappedResult gives the same code.
// - PostQueuedCompletionStatus fails with ERROR_NOT_ENOUGH_MEMORY when the
//   port's posted-packet queue (CompletionPort::kPostedCapacity) is full;
//   Windows' queue is bounded only by memory, and this is the code it
//   reports when that runs out.
// - NumberOfConcurrentThreads is ignored: any number of threads may take
//   completions from one port at once.
// - Completion routines and user APCs run only in alertable waits made
//   through these calls, and never nested within one thread (Windows
//   promises it per socket).
#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/event.hh"
#include "api/process_state.hh"
#include "api/socket_hooks.hh"
#include "api/wait_objects.hh"
#include "api/wake_hub.hh"
#include "ringsock/windows.h"
#include "ringsock/winsock2.h"
#include "ringsock/ws2spi.h"

namespace ringsock::api {
namespace {

using Clock = WakeHub::Clock;

// INFINITE: none; 0: a poll, which never consults its deadline (and so
// reads no clock: pollers call this millions of times a second).
std::optional<Clock::time_point> deadline_after(DWORD ms) noexcept
{
    if (ms == INFINITE) return std::nullopt;
    if (ms == 0) return Clock::time_point{};
    return Clock::now() + std::chrono::milliseconds(ms);
}

bool expired(const std::optional<Clock::time_point>& deadline) noexcept
{
    return deadline && Clock::now() >= *deadline;
}

void set_error(DWORD error) noexcept
{
    set_last_error(static_cast<int>(error));
}

void set_errno(LPINT errno_out, int error) noexcept
{
    if (errno_out != nullptr) *errno_out = error;
}

bool require_startup() noexcept
{
    if (started()) [[likely]]
        return true;
    set_error(WSANOTINITIALISED);
    return false;
}

enum class Reaped { some, timeout, io_completion, abandoned };

// The waiting half of GetQueuedCompletionStatus[Ex]: takes up to `max`
// completions from `port` (which `bits` names), waiting up to `ms`.
// Blocked, it holds a reference so that the slot is not recycled under it,
// and it notices CloseHandle (abandoned). Alertable: the thread's
// completion routines run when nothing was dequeued.
Reaped reap(CompletionPort& port, uint64_t bits, Completion* out, unsigned max, DWORD ms, bool alertable,
            unsigned& taken) noexcept
{
    WaitObjects& w = wait_objects();
    WakeHub& hub = w.hub();
    const auto deadline = deadline_after(ms);
    ApcQueue* apc = alertable ? &ApcQueue::current() : nullptr;
    bool retained = false;
    Reaped result = Reaped::timeout;
    taken = 0;
    for (;;) {
        const uint32_t seen = hub.epoch();
        if ((taken = port.dequeue(out, max)) != 0) {
            result = Reaped::some;
            break;
        }
        if (apc != nullptr && apc->run_pending() != 0) {
            result = Reaped::io_completion;
            break;
        }
        if (port.abandoned()) {
            result = Reaped::abandoned;
            break;
        }
        if (ms == 0 || expired(deadline)) {
            result = Reaped::timeout;
            break;
        }
        if (!retained) {
            // On an engine (ringsock_poll_on_engine) only that engine could
            // complete what the wait is for: return as a zero time-out would.
            if (caller_is_an_engine()) {
                result = Reaped::timeout;
                break;
            }
            // About to block: keep the port ours, then test again.
            if (w.ports().retain(bits) == nullptr) {
                result = Reaped::abandoned; // closed since the lookup
                break;
            }
            retained = true;
            continue;
        }
        hub.wait(seen, deadline);
    }
    if (retained) w.ports().release(bits);
    return result;
}

// The port behind a handle, or null with ERROR_INVALID_HANDLE set.
CompletionPort* port_of(HANDLE handle, uint64_t& bits) noexcept
{
    bits = WaitObjects::to_bits(handle);
    CompletionPort* port = wait_objects().ports().get(bits);
    if (port == nullptr) set_error(ERROR_INVALID_HANDLE);
    return port;
}

// True when reap() took packets; otherwise sets the error the GQCS calls
// report for why it did not (timeout, port closed, APCs ran).
bool got_some(Reaped r) noexcept
{
    switch (r) {
    case Reaped::some:
        return true;
    case Reaped::timeout:
        set_error(WAIT_TIMEOUT);
        return false;
    case Reaped::abandoned:
        set_error(ERROR_ABANDONED_WAIT_0);
        return false;
    case Reaped::io_completion:
        set_error(WAIT_IO_COMPLETION);
        return false;
    }
    return false;
}

} // namespace
} // namespace ringsock::api

using namespace ringsock::api;

extern "C" {

// ---- last error --------------------------------------------------------

DWORD WINAPI GetLastError(void)
{
    return static_cast<DWORD>(last_error());
}

void WINAPI SetLastError(DWORD dwErrCode)
{
    set_error(dwErrCode);
}

int WINAPI WSAGetLastError(void)
{
    return last_error();
}

void WINAPI WSASetLastError(int iError)
{
    set_last_error(iError);
}

// ---- events -------------------------------------------------------------

WSAEVENT WINAPI WSACreateEvent(void)
{
    if (!require_startup()) return WSA_INVALID_EVENT;
    const auto opened = wait_objects().events().open();
    if (!opened) {
        set_error(WSA_NOT_ENOUGH_MEMORY);
        return WSA_INVALID_EVENT;
    }
    return WaitObjects::to_handle(opened->handle);
}

BOOL WINAPI WSASetEvent(WSAEVENT hEvent)
{
    if (!require_startup()) return FALSE;
    WaitObjects& w = wait_objects();
    Event* e = w.event(hEvent);
    if (e == nullptr) {
        set_error(WSA_INVALID_HANDLE);
        return FALSE;
    }
    e->set(w.hub());
    return TRUE;
}

BOOL WINAPI WSAResetEvent(WSAEVENT hEvent)
{
    if (!require_startup()) return FALSE;
    Event* e = wait_objects().event(hEvent);
    if (e == nullptr) {
        set_error(WSA_INVALID_HANDLE);
        return FALSE;
    }
    e->reset();
    return TRUE;
}

BOOL WINAPI WSACloseEvent(WSAEVENT hEvent)
{
    if (!require_startup()) return FALSE;
    if (!wait_objects().events().close(WaitObjects::to_bits(hEvent))) {
        set_error(WSA_INVALID_HANDLE);
        return FALSE;
    }
    return TRUE;
}

DWORD WINAPI WSAWaitForMultipleEvents(DWORD cEvents, const WSAEVENT* lphEvents, BOOL fWaitAll, DWORD dwTimeout,
                                      BOOL fAlertable)
{
    if (!require_startup()) return WSA_WAIT_FAILED;
    if (cEvents == 0 || cEvents > WSA_MAXIMUM_WAIT_EVENTS || lphEvents == nullptr) {
        set_error(WSA_INVALID_PARAMETER);
        return WSA_WAIT_FAILED;
    }
    WaitObjects& w = wait_objects();
    Event* events[WSA_MAXIMUM_WAIT_EVENTS];
    for (DWORD i = 0; i < cEvents; ++i) {
        if ((events[i] = w.event(lphEvents[i])) == nullptr) {
            set_error(WSA_INVALID_HANDLE);
            return WSA_WAIT_FAILED;
        }
    }
    // As WaitForMultipleObjects: one handle twice cannot be waited for
    // all at once.
    if (fWaitAll) {
        for (DWORD i = 0; i < cEvents; ++i)
            for (DWORD j = i + 1; j < cEvents; ++j)
                if (events[i] == events[j]) {
                    set_error(WSA_INVALID_PARAMETER);
                    return WSA_WAIT_FAILED;
                }
    }

    WakeHub& hub = w.hub();
    const auto deadline = deadline_after(dwTimeout);
    ApcQueue* apc = fAlertable ? &ApcQueue::current() : nullptr;
    for (;;) {
        const uint32_t seen = hub.epoch();
        // Signalled objects first, then APCs, as Windows' kernel wait does.
        if (fWaitAll) {
            DWORD set = 0;
            while (set < cEvents && events[set]->is_set())
                ++set;
            if (set == cEvents) return WSA_WAIT_EVENT_0;
        } else {
            for (DWORD i = 0; i < cEvents; ++i)
                if (events[i]->is_set()) return WSA_WAIT_EVENT_0 + i;
        }
        if (apc != nullptr && apc->run_pending() != 0) return WSA_WAIT_IO_COMPLETION;
        // On an engine, as in reap(): the engine that would set the events
        // of its sockets' requests is the caller.
        if (dwTimeout == 0 || expired(deadline) || caller_is_an_engine()) return WSA_WAIT_TIMEOUT;
        hub.wait(seen, deadline);
    }
}

// ---- alertable sleep ----------------------------------------------------

DWORD WINAPI SleepEx(DWORD dwMilliseconds, BOOL bAlertable)
{
    if (!bAlertable) {
        if (dwMilliseconds == 0) {
            std::this_thread::yield();
        } else if (dwMilliseconds == INFINITE) {
            for (;;)
                std::this_thread::sleep_for(std::chrono::hours(24));
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(dwMilliseconds));
        }
        return 0;
    }
    WakeHub& hub = wait_objects().hub();
    ApcQueue& apc = ApcQueue::current();
    const auto deadline = deadline_after(dwMilliseconds);
    for (;;) {
        const uint32_t seen = hub.epoch();
        if (apc.run_pending() != 0) return WAIT_IO_COMPLETION;
        // An engine's completion routines are queued by that engine.
        if (dwMilliseconds == 0 || expired(deadline) || caller_is_an_engine()) return 0;
        hub.wait(seen, deadline);
    }
}

// ---- completion ports ---------------------------------------------------

HANDLE WINAPI CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort, ULONG_PTR CompletionKey,
                                     DWORD NumberOfConcurrentThreads)
{
    (void)NumberOfConcurrentThreads; // no concurrency limit (see above)
    auto& ports = wait_objects().ports();
    if (FileHandle == INVALID_HANDLE_VALUE) {
        // A new port; the key means nothing without a file.
        if (ExistingCompletionPort != nullptr) {
            set_error(ERROR_INVALID_PARAMETER);
            return nullptr;
        }
        const auto opened = ports.open();
        if (!opened) {
            set_error(ERROR_NOT_ENOUGH_MEMORY);
            return nullptr;
        }
        return WaitObjects::to_handle(opened->handle);
    }
    if (FileHandle == nullptr || !is_socket_handle(FileHandle)) {
        set_error(ERROR_INVALID_HANDLE);
        return nullptr;
    }

    // Associate the socket, with a port made for it when none was named.
    // The association holds a reference of its own, as on Windows (a port
    // lives while sockets are associated with it); the socket layer drops
    // it with CompletionPort::release_association().
    uint64_t bits = 0;
    CompletionPort* port = nullptr;
    const bool created = ExistingCompletionPort == nullptr;
    if (created) {
        const auto opened = ports.open();
        if (!opened) {
            set_error(ERROR_NOT_ENOUGH_MEMORY);
            return nullptr;
        }
        bits = opened->handle;
        port = ports.retain(bits);
    } else {
        bits = WaitObjects::to_bits(ExistingCompletionPort);
        port = ports.retain(bits);
    }
    if (port == nullptr) {
        set_error(ERROR_INVALID_HANDLE);
        return nullptr;
    }
    const auto socket = static_cast<SOCKET>(reinterpret_cast<uintptr_t>(FileHandle));
    const DWORD error = associate_socket_with_port(socket, *port, CompletionKey);
    if (error != 0) {
        ports.release(bits);
        if (created) ports.close(bits);
        set_error(error);
        return nullptr;
    }
    return WaitObjects::to_handle(bits);
}

BOOL WINAPI GetQueuedCompletionStatus(HANDLE CompletionPort, LPDWORD lpNumberOfBytesTransferred,
                                      PULONG_PTR lpCompletionKey, LPOVERLAPPED* lpOverlapped, DWORD dwMilliseconds)
{
    if (lpNumberOfBytesTransferred == nullptr || lpCompletionKey == nullptr || lpOverlapped == nullptr) {
        set_error(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    *lpOverlapped = nullptr;
    uint64_t bits = 0;
    ringsock::api::CompletionPort* port = port_of(CompletionPort, bits);
    if (port == nullptr) return FALSE;
    Completion c{};
    unsigned taken = 0;
    if (!got_some(reap(*port, bits, &c, 1, dwMilliseconds, false, taken))) return FALSE;
    *lpNumberOfBytesTransferred = c.bytes;
    *lpCompletionKey = c.key;
    *lpOverlapped = c.overlapped;
    if (c.error != 0) {
        // A failed I/O: FALSE with the packet filled in.
        set_error(c.error);
        return FALSE;
    }
    return TRUE;
}

BOOL WINAPI GetQueuedCompletionStatusEx(HANDLE CompletionPort, LPOVERLAPPED_ENTRY lpCompletionPortEntries,
                                        ULONG ulCount, PULONG ulNumEntriesRemoved, DWORD dwMilliseconds,
                                        BOOL fAlertable)
{
    if (lpCompletionPortEntries == nullptr || ulCount == 0 || ulNumEntriesRemoved == nullptr) {
        set_error(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    *ulNumEntriesRemoved = 0;
    uint64_t bits = 0;
    ringsock::api::CompletionPort* port = port_of(CompletionPort, bits);
    if (port == nullptr) return FALSE;
    // Wait for the first batch, then take more without waiting while the
    // caller has room.
    constexpr unsigned kChunk = 64;
    Completion batch[kChunk];
    const auto want = [&](ULONG done) { return static_cast<unsigned>(std::min<ULONG>(ulCount - done, kChunk)); };
    unsigned taken = 0;
    if (!got_some(reap(*port, bits, batch, want(0), dwMilliseconds, fAlertable != FALSE, taken))) return FALSE;
    ULONG done = 0;
    while (taken != 0) {
        for (unsigned i = 0; i < taken; ++i) {
            OVERLAPPED_ENTRY& e = lpCompletionPortEntries[done + i];
            e.lpCompletionKey = batch[i].key;
            e.lpOverlapped = batch[i].overlapped;
            e.Internal = batch[i].error;
            e.dwNumberOfBytesTransferred = batch[i].bytes;
        }
        done += taken;
        if (done == ulCount) break;
        taken = port->dequeue(batch, want(done));
    }
    *ulNumEntriesRemoved = done;
    return TRUE;
}

BOOL WINAPI PostQueuedCompletionStatus(HANDLE CompletionPort, DWORD dwNumberOfBytesTransferred,
                                       ULONG_PTR dwCompletionKey, LPOVERLAPPED lpOverlapped)
{
    auto& ports = wait_objects().ports();
    const uint64_t bits = WaitObjects::to_bits(CompletionPort);
    ringsock::api::CompletionPort* port = ports.retain(bits);
    if (port == nullptr) {
        set_error(ERROR_INVALID_HANDLE);
        return FALSE;
    }
    const bool queued = port->post(completion_of(lpOverlapped, dwCompletionKey, dwNumberOfBytesTransferred));
    ports.release(bits);
    if (!queued) {
        set_error(ERROR_NOT_ENOUGH_MEMORY);
        return FALSE;
    }
    return TRUE;
}

BOOL WINAPI CloseHandle(HANDLE hObject)
{
    // Completion ports only: sockets close with closesocket, events with
    // WSACloseEvent, and WSATHREADIDs with WPUCloseThread.
    auto& ports = wait_objects().ports();
    const uint64_t bits = WaitObjects::to_bits(hObject);
    // Hold a reference so that the slot outlives the abandonment.
    ringsock::api::CompletionPort* port = ports.retain(bits);
    if (port == nullptr) {
        set_error(ERROR_INVALID_HANDLE);
        return FALSE;
    }
    if (!ports.close(bits)) { // another thread closed it first
        ports.release(bits);
        set_error(ERROR_INVALID_HANDLE);
        return FALSE;
    }
    port->abandon();
    ports.release(bits);
    return TRUE;
}

// ---- the SPI's thread calls ----------------------------------------------

int WINAPI WPUOpenCurrentThread(LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    if (lpThreadId == nullptr) {
        set_errno(lpErrno, WSAEFAULT);
        return SOCKET_ERROR;
    }
    const uint64_t handle = ApcQueue::current().handle();
    if (handle == 0) { // the thread table is full
        set_errno(lpErrno, WSAENOBUFS);
        return SOCKET_ERROR;
    }
    lpThreadId->ThreadHandle = WaitObjects::to_handle(handle);
    lpThreadId->Reserved = 0;
    return 0;
}

int WINAPI WPUCloseThread(LPWSATHREADID lpThreadId, LPINT lpErrno)
{
    // WPUOpenCurrentThread takes no reference (the thread's exit closes
    // its queue), so there is nothing to give back; only the id is checked.
    if (lpThreadId == nullptr) {
        set_errno(lpErrno, WSAEFAULT);
        return SOCKET_ERROR;
    }
    if (!wait_objects().threads().owns(WaitObjects::to_bits(lpThreadId->ThreadHandle))) {
        set_errno(lpErrno, WSAEINVAL);
        return SOCKET_ERROR;
    }
    return 0;
}

int WINAPI WPUQueueApc(LPWSATHREADID lpThreadId, LPWSAUSERAPC lpfnUserApc, DWORD_PTR dwContext, LPINT lpErrno)
{
    if (lpThreadId == nullptr || lpfnUserApc == nullptr) {
        set_errno(lpErrno, WSAEINVAL);
        return SOCKET_ERROR;
    }
    auto& threads = wait_objects().threads();
    const uint64_t bits = WaitObjects::to_bits(lpThreadId->ThreadHandle);
    ApcQueue* q = threads.retain(bits); // the thread may exit meanwhile
    if (q == nullptr) {
        set_errno(lpErrno, WSAEINVAL); // not a live thread's id
        return SOCKET_ERROR;
    }
    const bool queued = q->post_user_apc(lpfnUserApc, dwContext);
    const bool exited = q->abandoned();
    threads.release(bits);
    if (!queued) {
        set_errno(lpErrno, exited ? WSAEINVAL : WSAENOBUFS);
        return SOCKET_ERROR;
    }
    return 0;
}

} // extern "C"
