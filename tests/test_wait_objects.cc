// Wait objects at the public-call level (events, WSAWaitForMultipleEvents,
// SleepEx, completion ports, WPU* thread calls, last error) and their
// building blocks (HandleTable, MpmcQueue, WakeHub, ApcQueue admission and
// thread exit). No EAL: the fixture sets the start-up count as WSAStartup
// would, and engines are played by test threads calling the engine-side
// push(), one thread per engine index as in the stack. Every wait has a
// deadline; each test checks at teardown that the handle tables hold no
// more than before it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/handle_table.hh"
#include "api/process_state.hh"
#include "api/wait_objects.hh"
#include "api/wake_hub.hh"
#include "ringsock/windows.h"
#include "ringsock/winsock2.h"
#include "ringsock/ws2spi.h"

namespace {

using namespace ringsock::api;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Generous bounds: sanitizers and a loaded 2-core machine.
constexpr auto kSoon = std::chrono::seconds(2);
constexpr DWORD kLongWaitMs = 5000;

long elapsed_ms(Clock::time_point since)
{
    return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

// Polls `done` until it holds or `limit` passes.
template <typename F>
bool eventually(F done, Clock::duration limit = kSoon)
{
    const auto end = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= end) return false;
        std::this_thread::sleep_for(milliseconds(1));
    }
    return true;
}

class WaitObjectsTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        startup_count().store(1); // as after WSAStartup
        ApcQueue::current();      // this thread's queue exists before the baseline
        events_before_ = wait_objects().events().in_use();
        ports_before_ = wait_objects().ports().in_use();
        threads_before_ = wait_objects().threads().in_use();
    }
    void TearDown() override
    {
        // Whatever a test queued to this thread, run it now so it cannot
        // leak into the next test.
        while (ApcQueue::current().run_pending() != 0) {}
        EXPECT_EQ(wait_objects().events().in_use(), events_before_);
        EXPECT_EQ(wait_objects().ports().in_use(), ports_before_);
        // Threads the test started have exited and given their queues back.
        EXPECT_TRUE(eventually([&] { return wait_objects().threads().in_use() == threads_before_; }));
        startup_count().store(0);
    }

    static HANDLE new_port()
    {
        HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
        EXPECT_NE(port, nullptr);
        return port;
    }

    uint32_t events_before_ = 0;
    uint32_t ports_before_ = 0;
    uint32_t threads_before_ = 0;
};

// ---- start-up and last error ---------------------------------------------

TEST(WaitCallsWithoutStartup, winsock_calls_fail_with_wsanotinitialised)
{
    startup_count().store(0);
    WSASetLastError(0);
    EXPECT_EQ(WSACreateEvent(), WSA_INVALID_EVENT);
    EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);

    // A real event, made while "started", is refused all the same.
    startup_count().store(1);
    WSAEVENT e = WSACreateEvent();
    ASSERT_NE(e, WSA_INVALID_EVENT);
    startup_count().store(0);
    WSASetLastError(0);
    EXPECT_EQ(WSASetEvent(e), FALSE);
    EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
    WSASetLastError(0);
    EXPECT_EQ(WSAResetEvent(e), FALSE);
    EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
    WSASetLastError(0);
    EXPECT_EQ(WSACloseEvent(e), FALSE);
    EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);

    startup_count().store(1);
    EXPECT_EQ(WSACloseEvent(e), TRUE);
    startup_count().store(0);
}

TEST(WaitCallsWithoutStartup, kernel32_calls_need_no_startup)
{
    startup_count().store(0);
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
    ASSERT_NE(port, nullptr);
    EXPECT_EQ(PostQueuedCompletionStatus(port, 1, 2, nullptr), TRUE);
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED ov = nullptr;
    EXPECT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0), TRUE);
    EXPECT_EQ(SleepEx(0, TRUE), 0u);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST(LastError, get_last_error_and_wsa_get_last_error_share_one_per_thread)
{
    SetLastError(ERROR_INVALID_HANDLE);
    EXPECT_EQ(WSAGetLastError(), ERROR_INVALID_HANDLE);
    WSASetLastError(WSAECONNRESET);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(WSAECONNRESET));
    int other = -1;
    std::thread([&] { other = WSAGetLastError(); }).join();
    EXPECT_EQ(other, 0);
    EXPECT_EQ(WSAGetLastError(), WSAECONNRESET);
}

// ---- events ----------------------------------------------------------------

TEST_F(WaitObjectsTest, event_starts_unsignalled_and_stays_set_until_reset)
{
    WSAEVENT e = WSACreateEvent();
    ASSERT_NE(e, WSA_INVALID_EVENT);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
    EXPECT_EQ(WSASetEvent(e), TRUE);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, FALSE), WSA_WAIT_EVENT_0);
    // Manual reset: waiting does not reset it.
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, TRUE, 0, FALSE), WSA_WAIT_EVENT_0);
    EXPECT_EQ(WSASetEvent(e), TRUE); // setting a set event is fine
    EXPECT_EQ(WSAResetEvent(e), TRUE);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
    EXPECT_EQ(WSACloseEvent(e), TRUE);
}

TEST_F(WaitObjectsTest, bad_event_handles_fail_with_wsa_invalid_handle)
{
    WSAEVENT closed = WSACreateEvent();
    ASSERT_EQ(WSACloseEvent(closed), TRUE);
    HANDLE port = new_port();
    const WSAEVENT bad[] = {nullptr, INVALID_HANDLE_VALUE, closed, port, reinterpret_cast<HANDLE>(0x1234)};
    for (WSAEVENT h : bad) {
        WSASetLastError(0);
        EXPECT_EQ(WSASetEvent(h), FALSE);
        EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
        WSASetLastError(0);
        EXPECT_EQ(WSAResetEvent(h), FALSE);
        EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
        WSASetLastError(0);
        EXPECT_EQ(WSACloseEvent(h), FALSE);
        EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
    }
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, closed_event_handle_is_stale_even_when_its_slot_is_reused)
{
    WSAEVENT first = WSACreateEvent();
    ASSERT_NE(first, WSA_INVALID_EVENT);
    ASSERT_EQ(WSACloseEvent(first), TRUE);
    WSAEVENT second = WSACreateEvent();
    ASSERT_NE(second, WSA_INVALID_EVENT);
    EXPECT_NE(second, first);
    EXPECT_EQ(WSASetEvent(first), FALSE);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &second, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
    EXPECT_EQ(WSACloseEvent(second), TRUE);
}

TEST_F(WaitObjectsTest, create_event_fails_with_not_enough_memory_when_the_table_is_full)
{
    std::vector<WSAEVENT> made;
    made.reserve(WaitObjects::kMaxEvents);
    WSAEVENT e = WSA_INVALID_EVENT;
    for (uint32_t i = 0; i <= WaitObjects::kMaxEvents; ++i) {
        if ((e = WSACreateEvent()) == WSA_INVALID_EVENT) break;
        made.push_back(e);
    }
    EXPECT_EQ(e, WSA_INVALID_EVENT);
    EXPECT_EQ(WSAGetLastError(), WSA_NOT_ENOUGH_MEMORY);
    EXPECT_EQ(made.size() + events_before_, WaitObjects::kMaxEvents);
    for (WSAEVENT m : made)
        EXPECT_EQ(WSACloseEvent(m), TRUE);
    e = WSACreateEvent(); // room again
    EXPECT_NE(e, WSA_INVALID_EVENT);
    EXPECT_EQ(WSACloseEvent(e), TRUE);
}

TEST_F(WaitObjectsTest, wait_rejects_bad_parameters_and_handles)
{
    WSAEVENT e = WSACreateEvent();
    WSAEVENT many[WSA_MAXIMUM_WAIT_EVENTS + 1];
    for (auto& m : many)
        m = e;
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(0, &e, FALSE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS + 1, many, FALSE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, nullptr, FALSE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
    // One handle twice: fine for wait-any, not for wait-all.
    EXPECT_EQ(WSAWaitForMultipleEvents(2, many, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(2, many, TRUE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
    // 64 is the limit, and allowed.
    EXPECT_EQ(WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, many, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);

    WSAEVENT gone = WSACreateEvent();
    ASSERT_EQ(WSACloseEvent(gone), TRUE);
    const WSAEVENT mixed[] = {e, gone};
    WSASetLastError(0);
    EXPECT_EQ(WSAWaitForMultipleEvents(2, mixed, FALSE, 0, FALSE), WSA_WAIT_FAILED);
    EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
    EXPECT_EQ(WSACloseEvent(e), TRUE);
}

TEST_F(WaitObjectsTest, wait_any_returns_the_lowest_signalled_index)
{
    WSAEVENT ev[4];
    for (auto& e : ev)
        e = WSACreateEvent();
    WSASetEvent(ev[3]);
    EXPECT_EQ(WSAWaitForMultipleEvents(4, ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0 + 3);
    WSASetEvent(ev[1]);
    EXPECT_EQ(WSAWaitForMultipleEvents(4, ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0 + 1);
    WSASetEvent(ev[0]);
    EXPECT_EQ(WSAWaitForMultipleEvents(4, ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0);
    for (auto& e : ev)
        WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, wait_all_returns_only_when_every_event_is_set)
{
    WSAEVENT ev[3];
    for (auto& e : ev)
        e = WSACreateEvent();
    WSASetEvent(ev[0]);
    WSASetEvent(ev[2]);
    EXPECT_EQ(WSAWaitForMultipleEvents(3, ev, TRUE, 0, FALSE), WSA_WAIT_TIMEOUT);
    WSASetEvent(ev[1]);
    EXPECT_EQ(WSAWaitForMultipleEvents(3, ev, TRUE, 0, FALSE), WSA_WAIT_EVENT_0);
    for (auto& e : ev)
        WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, wait_times_out_after_the_timeout)
{
    WSAEVENT e = WSACreateEvent();
    const auto start = Clock::now();
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 50, FALSE), WSA_WAIT_TIMEOUT);
    const long took = elapsed_ms(start);
    EXPECT_GE(took, 50);
    EXPECT_LT(took, 2000);
    WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, wait_any_wakes_when_another_thread_sets_the_event)
{
    WSAEVENT ev[2] = {WSACreateEvent(), WSACreateEvent()};
    std::thread setter([&] {
        std::this_thread::sleep_for(milliseconds(30));
        WSASetEvent(ev[1]);
    });
    const auto start = Clock::now();
    EXPECT_EQ(WSAWaitForMultipleEvents(2, ev, FALSE, kLongWaitMs, FALSE), WSA_WAIT_EVENT_0 + 1);
    EXPECT_LT(elapsed_ms(start), 2000);
    setter.join();
    WSACloseEvent(ev[0]);
    WSACloseEvent(ev[1]);
}

TEST_F(WaitObjectsTest, wait_all_wakes_when_the_last_event_is_set)
{
    WSAEVENT ev[3] = {WSACreateEvent(), WSACreateEvent(), WSACreateEvent()};
    std::thread setter([&] {
        for (WSAEVENT e : ev) {
            std::this_thread::sleep_for(milliseconds(10));
            WSASetEvent(e);
        }
    });
    EXPECT_EQ(WSAWaitForMultipleEvents(3, ev, TRUE, kLongWaitMs, FALSE), WSA_WAIT_EVENT_0);
    setter.join();
    for (WSAEVENT e : ev)
        WSACloseEvent(e);
}

// ---- APCs and alertable waits ----------------------------------------------

struct ApcRecord {
    std::atomic<int> runs{0};
    std::thread::id thread;
    DWORD_PTR context = 0;
};

void CALLBACK record_apc(DWORD_PTR context)
{
    auto* r = reinterpret_cast<ApcRecord*>(context);
    r->thread = std::this_thread::get_id();
    r->context = context;
    r->runs.fetch_add(1);
}

TEST_F(WaitObjectsTest, alertable_wait_runs_an_apc_queued_from_another_thread_in_the_waiting_thread)
{
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    EXPECT_EQ(me.Reserved, 0u);
    WSAEVENT e = WSACreateEvent();
    ApcRecord rec;
    int queue_result = -2;
    std::thread other([&] {
        std::this_thread::sleep_for(milliseconds(30));
        int error = 0;
        queue_result = WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &error);
    });
    const auto start = Clock::now();
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, kLongWaitMs, TRUE), WSA_WAIT_IO_COMPLETION);
    EXPECT_LT(elapsed_ms(start), 2000);
    other.join();
    EXPECT_EQ(queue_result, 0);
    EXPECT_EQ(rec.runs.load(), 1);
    EXPECT_EQ(rec.thread, std::this_thread::get_id());
    EXPECT_EQ(rec.context, reinterpret_cast<DWORD_PTR>(&rec));
    EXPECT_EQ(WPUCloseThread(&me, &err), 0);
    WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, queued_apc_runs_at_once_in_an_alertable_poll_and_never_in_a_plain_wait)
{
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    WSAEVENT e = WSACreateEvent();
    ApcRecord rec;
    ASSERT_EQ(WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &err), 0);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 20, FALSE), WSA_WAIT_TIMEOUT);
    EXPECT_EQ(SleepEx(20, FALSE), 0u);
    EXPECT_EQ(rec.runs.load(), 0);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, TRUE), WSA_WAIT_IO_COMPLETION);
    EXPECT_EQ(rec.runs.load(), 1);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, TRUE), WSA_WAIT_TIMEOUT); // ran once
    WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, signalled_event_is_reported_before_pending_apcs_run)
{
    // Windows' kernel wait tests the objects first; the APC waits for the
    // next alertable wait.
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    WSAEVENT e = WSACreateEvent();
    WSASetEvent(e);
    ApcRecord rec;
    ASSERT_EQ(WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &err), 0);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &e, FALSE, 0, TRUE), WSA_WAIT_EVENT_0);
    EXPECT_EQ(rec.runs.load(), 0);
    EXPECT_EQ(SleepEx(0, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(rec.runs.load(), 1);
    WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, sleep_ex_returns_zero_after_the_time_and_io_completion_when_apcs_ran)
{
    auto start = Clock::now();
    EXPECT_EQ(SleepEx(30, FALSE), 0u);
    EXPECT_GE(elapsed_ms(start), 30);
    start = Clock::now();
    EXPECT_EQ(SleepEx(30, TRUE), 0u);
    EXPECT_GE(elapsed_ms(start), 30);
    EXPECT_EQ(SleepEx(0, TRUE), 0u);
    EXPECT_EQ(SleepEx(0, FALSE), 0u);

    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    ApcRecord rec;
    std::thread other([&] {
        std::this_thread::sleep_for(milliseconds(30));
        int error = 0;
        WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &error);
    });
    start = Clock::now();
    EXPECT_EQ(SleepEx(kLongWaitMs, TRUE), WAIT_IO_COMPLETION);
    EXPECT_LT(elapsed_ms(start), 2000);
    other.join();
    EXPECT_EQ(rec.runs.load(), 1);
    EXPECT_EQ(rec.thread, std::this_thread::get_id());
}

// Two APCs; the first waits alertably inside itself.
struct NestingProbe {
    std::vector<int> order;
    DWORD inner_sleep = 12345;
};
NestingProbe* g_probe = nullptr;

void CALLBACK first_apc(DWORD_PTR)
{
    g_probe->order.push_back(1);
    g_probe->inner_sleep = SleepEx(0, TRUE); // must not run the second one here
    g_probe->order.push_back(11);
}
void CALLBACK second_apc(DWORD_PTR)
{
    g_probe->order.push_back(2);
}

TEST_F(WaitObjectsTest, apcs_do_not_nest_when_a_routine_waits_alertably)
{
    NestingProbe probe;
    g_probe = &probe;
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    ASSERT_EQ(WPUQueueApc(&me, first_apc, 0, &err), 0);
    ASSERT_EQ(WPUQueueApc(&me, second_apc, 0, &err), 0);
    EXPECT_EQ(SleepEx(0, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(probe.inner_sleep, 0u);
    EXPECT_EQ(probe.order, (std::vector<int>{1, 11, 2}));
    g_probe = nullptr;
}

struct RoutineCall {
    int calls = 0;
    DWORD error = 0, bytes = 0, flags = 0;
    LPWSAOVERLAPPED ov = nullptr;
    std::thread::id thread;
};
RoutineCall g_routine;

void CALLBACK completion_routine(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD flags)
{
    ++g_routine.calls;
    g_routine.error = error;
    g_routine.bytes = bytes;
    g_routine.ov = ov;
    g_routine.flags = flags;
    g_routine.thread = std::this_thread::get_id();
}

TEST_F(WaitObjectsTest, completion_routine_pushed_by_an_engine_runs_in_the_initiating_thread)
{
    g_routine = RoutineCall{};
    ApcQueue& q = ApcQueue::current();
    WSAOVERLAPPED ov{};
    ASSERT_TRUE(q.try_reserve(5));
    EXPECT_EQ(q.reserved(5), 1u);
    std::thread engine5([&] { q.push(5, ApcEntry{completion_routine, &ov, WSAECONNRESET, 42, MSG_PARTIAL, 0, 0}); });
    engine5.join();
    EXPECT_EQ(g_routine.calls, 0); // not before an alertable wait
    EXPECT_TRUE(q.has_pending());
    EXPECT_EQ(SleepEx(kLongWaitMs, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(g_routine.calls, 1);
    EXPECT_EQ(g_routine.error, static_cast<DWORD>(WSAECONNRESET));
    EXPECT_EQ(g_routine.bytes, 42u);
    EXPECT_EQ(g_routine.flags, static_cast<DWORD>(MSG_PARTIAL));
    EXPECT_EQ(g_routine.ov, &ov);
    EXPECT_EQ(g_routine.thread, std::this_thread::get_id());
    EXPECT_EQ(q.reserved(5), 0u);
    EXPECT_FALSE(q.has_pending());
}

TEST_F(WaitObjectsTest, apc_queue_admission_refuses_when_the_ring_is_full)
{
    ApcQueue& q = ApcQueue::current();
    uint32_t admitted = 0;
    while (admitted <= ApcQueue::kRingCapacity && q.try_reserve(3))
        ++admitted;
    EXPECT_EQ(admitted, ApcQueue::kRingCapacity);
    EXPECT_FALSE(q.try_reserve(3));
    EXPECT_TRUE(q.try_reserve(4)); // another engine's ring has its own room
    q.unreserve(4);
    EXPECT_FALSE(q.try_reserve(kMaxEngines)); // no such engine
    for (uint32_t i = 0; i < admitted; ++i)
        q.unreserve(3);
    EXPECT_EQ(q.reserved(3), 0u);
    ASSERT_TRUE(q.try_reserve(3));
    q.unreserve(3);
}

TEST_F(WaitObjectsTest, user_apc_queue_refuses_when_full_and_runs_them_all)
{
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    ApcRecord rec;
    uint32_t queued = 0;
    int result = 0;
    while (queued <= ApcQueue::kUserCapacity &&
           (result = WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &err)) == 0)
        ++queued;
    EXPECT_EQ(queued, ApcQueue::kUserCapacity);
    EXPECT_EQ(result, SOCKET_ERROR);
    EXPECT_EQ(err, WSAENOBUFS);
    EXPECT_EQ(SleepEx(0, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(rec.runs.load(), static_cast<int>(ApcQueue::kUserCapacity));
}

TEST_F(WaitObjectsTest, wpu_calls_reject_bad_thread_ids)
{
    int err = 0;
    ApcRecord rec;
    const auto ctx = reinterpret_cast<DWORD_PTR>(&rec);
    EXPECT_EQ(WPUQueueApc(nullptr, record_apc, ctx, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    WSATHREADID garbage{reinterpret_cast<HANDLE>(0x5400000000001234ull), 0};
    err = 0;
    EXPECT_EQ(WPUQueueApc(&garbage, record_apc, ctx, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    HANDLE port = new_port();
    WSATHREADID not_a_thread{port, 0};
    err = 0;
    EXPECT_EQ(WPUQueueApc(&not_a_thread, record_apc, ctx, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    err = 0;
    EXPECT_EQ(WPUCloseThread(&not_a_thread, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    EXPECT_EQ(CloseHandle(port), TRUE);

    WSATHREADID me{};
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    err = 0;
    EXPECT_EQ(WPUQueueApc(&me, nullptr, 0, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    err = 0;
    EXPECT_EQ(WPUOpenCurrentThread(nullptr, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEFAULT);

    // The id of a thread that exited.
    WSATHREADID gone{};
    WSATHREADID again{};
    std::thread([&] {
        int e = 0;
        WPUOpenCurrentThread(&gone, &e);
        WPUOpenCurrentThread(&again, &e);
    }).join();
    EXPECT_EQ(gone.ThreadHandle, again.ThreadHandle); // one id per thread
    EXPECT_NE(gone.ThreadHandle, me.ThreadHandle);
    err = 0;
    EXPECT_EQ(WPUQueueApc(&gone, record_apc, ctx, &err), SOCKET_ERROR);
    EXPECT_EQ(err, WSAEINVAL);
    EXPECT_EQ(rec.runs.load(), 0);
}

TEST_F(WaitObjectsTest, completions_for_an_exited_thread_are_dropped_and_counted)
{
    g_routine = RoutineCall{};
    ApcQueue* q = nullptr;
    std::thread([&] {
        q = &ApcQueue::current();
        ASSERT_TRUE(q->try_reserve(0));
        ASSERT_TRUE(q->try_reserve(0));
    }).join();
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(q->abandoned());
    EXPECT_FALSE(q->try_reserve(0));
    // The two reservations keep the slot from being recycled.
    EXPECT_EQ(wait_objects().threads().in_use(), threads_before_ + 1);
    WSAOVERLAPPED ov{};
    q->push(0, ApcEntry{completion_routine, &ov, 0, 1, 0, 0, 0});
    EXPECT_EQ(q->dropped(), 1u);
    EXPECT_EQ(q->reserved(0), 1u);
    q->unreserve(0);
    EXPECT_EQ(wait_objects().threads().in_use(), threads_before_);
    EXPECT_EQ(g_routine.calls, 0);
}

// ---- completion ports ------------------------------------------------------

TEST_F(WaitObjectsTest, posted_packet_comes_back_from_get_queued_completion_status)
{
    HANDLE port = new_port();
    WSAOVERLAPPED ov{};
    ASSERT_EQ(PostQueuedCompletionStatus(port, 10, 77, &ov), TRUE);
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED got = nullptr;
    ASSERT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &got, 0), TRUE);
    EXPECT_EQ(bytes, 10u);
    EXPECT_EQ(key, 77u);
    EXPECT_EQ(got, &ov);
    // A packet with no OVERLAPPED is a success too.
    ASSERT_EQ(PostQueuedCompletionStatus(port, 0, 5, nullptr), TRUE);
    got = &ov;
    ASSERT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &got, 0), TRUE);
    EXPECT_EQ(got, nullptr);
    EXPECT_EQ(key, 5u);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, get_queued_completion_status_times_out_with_null_overlapped)
{
    HANDLE port = new_port();
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    WSAOVERLAPPED ov{};
    LPOVERLAPPED got = &ov;
    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &got, 0), FALSE);
    EXPECT_EQ(got, nullptr);
    EXPECT_EQ(GetLastError(), WAIT_TIMEOUT);
    got = &ov;
    const auto start = Clock::now();
    EXPECT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &got, 50), FALSE);
    const long took = elapsed_ms(start);
    EXPECT_GE(took, 50);
    EXPECT_LT(took, 2000);
    EXPECT_EQ(got, nullptr);
    EXPECT_EQ(GetLastError(), WAIT_TIMEOUT);

    OVERLAPPED_ENTRY entries[2];
    ULONG removed = 99;
    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatusEx(port, entries, 2, &removed, 20, FALSE), FALSE);
    EXPECT_EQ(removed, 0u);
    EXPECT_EQ(GetLastError(), WAIT_TIMEOUT);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, failed_io_completion_reports_false_with_its_error_and_overlapped)
{
    HANDLE port = new_port();
    CompletionPort* p = wait_objects().port(port);
    ASSERT_NE(p, nullptr);
    WSAOVERLAPPED ov{};
    ASSERT_TRUE(p->try_reserve(2));
    p->push(2, Completion{&ov, 7, 3, WSAECONNRESET, 0, 0});
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED got = nullptr;
    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatus(port, &bytes, &key, &got, 0), FALSE);
    EXPECT_EQ(got, &ov);
    EXPECT_EQ(key, 7u);
    EXPECT_EQ(bytes, 3u);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(WSAECONNRESET));
    EXPECT_EQ(p->reserved(2), 0u);

    // The Ex form returns it as an entry, the status in Internal.
    ASSERT_TRUE(p->try_reserve(2));
    p->push(2, Completion{&ov, 8, 0, WSAECONNABORTED, 0, 0});
    OVERLAPPED_ENTRY entry{};
    ULONG removed = 0;
    ASSERT_EQ(GetQueuedCompletionStatusEx(port, &entry, 1, &removed, 0, FALSE), TRUE);
    EXPECT_EQ(removed, 1u);
    EXPECT_EQ(entry.Internal, static_cast<ULONG_PTR>(WSAECONNABORTED));
    EXPECT_EQ(entry.lpOverlapped, &ov);
    EXPECT_EQ(entry.lpCompletionKey, 8u);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, get_queued_completion_status_ex_takes_a_batch)
{
    HANDLE port = new_port();
    for (ULONG_PTR k = 0; k < 5; ++k)
        ASSERT_EQ(PostQueuedCompletionStatus(port, static_cast<DWORD>(100 + k), k, nullptr), TRUE);
    OVERLAPPED_ENTRY entries[10]{};
    ULONG removed = 0;
    ASSERT_EQ(GetQueuedCompletionStatusEx(port, entries, 3, &removed, 0, FALSE), TRUE);
    ASSERT_EQ(removed, 3u);
    for (ULONG i = 0; i < 3; ++i) { // posted packets keep their order
        EXPECT_EQ(entries[i].lpCompletionKey, i);
        EXPECT_EQ(entries[i].dwNumberOfBytesTransferred, 100 + i);
        EXPECT_EQ(entries[i].Internal, 0u);
    }
    ASSERT_EQ(GetQueuedCompletionStatusEx(port, entries, 10, &removed, kLongWaitMs, FALSE), TRUE);
    ASSERT_EQ(removed, 2u);
    EXPECT_EQ(entries[0].lpCompletionKey, 3u);
    EXPECT_EQ(entries[1].lpCompletionKey, 4u);

    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatusEx(port, entries, 0, &removed, 0, FALSE), FALSE);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_PARAMETER));
    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatusEx(port, nullptr, 1, &removed, 0, FALSE), FALSE);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_PARAMETER));
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, get_queued_completion_status_ex_takes_more_than_one_internal_chunk)
{
    HANDLE port = new_port();
    constexpr ULONG kPosted = 200;
    for (ULONG k = 0; k < kPosted; ++k)
        ASSERT_EQ(PostQueuedCompletionStatus(port, 0, k, nullptr), TRUE);
    std::vector<OVERLAPPED_ENTRY> entries(kPosted + 10);
    ULONG removed = 0;
    ASSERT_EQ(GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &removed, 0, FALSE),
              TRUE);
    ASSERT_EQ(removed, kPosted);
    for (ULONG k = 0; k < kPosted; ++k)
        EXPECT_EQ(entries[k].lpCompletionKey, k);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, alertable_get_queued_completion_status_ex_returns_io_completion_when_apcs_ran)
{
    HANDLE port = new_port();
    WSATHREADID me{};
    int err = 0;
    ASSERT_EQ(WPUOpenCurrentThread(&me, &err), 0);
    ApcRecord rec;
    std::thread other([&] {
        std::this_thread::sleep_for(milliseconds(30));
        int error = 0;
        WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &error);
    });
    OVERLAPPED_ENTRY entry{};
    ULONG removed = 99;
    SetLastError(0);
    const auto start = Clock::now();
    EXPECT_EQ(GetQueuedCompletionStatusEx(port, &entry, 1, &removed, kLongWaitMs, TRUE), FALSE);
    EXPECT_LT(elapsed_ms(start), 2000);
    other.join();
    EXPECT_EQ(GetLastError(), WAIT_IO_COMPLETION);
    EXPECT_EQ(removed, 0u);
    EXPECT_EQ(rec.runs.load(), 1);
    EXPECT_EQ(rec.thread, std::this_thread::get_id());

    // With a completion queued, it is returned and the APC waits.
    ASSERT_EQ(WPUQueueApc(&me, record_apc, reinterpret_cast<DWORD_PTR>(&rec), &err), 0);
    ASSERT_EQ(PostQueuedCompletionStatus(port, 1, 1, nullptr), TRUE);
    EXPECT_EQ(GetQueuedCompletionStatusEx(port, &entry, 1, &removed, 0, TRUE), TRUE);
    EXPECT_EQ(removed, 1u);
    EXPECT_EQ(rec.runs.load(), 1);
    EXPECT_EQ(SleepEx(0, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(rec.runs.load(), 2);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, blocked_reaper_is_woken_by_an_engine_push_promptly)
{
    HANDLE port = new_port();
    CompletionPort* p = wait_objects().port(port);
    WSAOVERLAPPED ov{};
    ASSERT_TRUE(p->try_reserve(1));
    std::atomic<bool> returned{false};
    BOOL result = FALSE;
    LPOVERLAPPED got = nullptr;
    Clock::time_point woke{};
    std::thread reaper([&] {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        result = GetQueuedCompletionStatus(port, &bytes, &key, &got, kLongWaitMs);
        woke = Clock::now();
        returned.store(true);
    });
    // Until it sleeps on the futex (past its spin).
    ASSERT_TRUE(eventually([&] { return wait_objects().hub().sleepers() > 0; }));
    EXPECT_FALSE(returned.load());
    const auto pushed = Clock::now();
    p->push(1, Completion{&ov, 1, 9, 0, 0, 0});
    ASSERT_TRUE(eventually([&] { return returned.load(); }));
    reaper.join();
    EXPECT_EQ(result, TRUE);
    EXPECT_EQ(got, &ov);
    EXPECT_LT(std::chrono::duration_cast<milliseconds>(woke - pushed).count(), 500);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, several_threads_reaping_one_port_get_every_completion_exactly_once)
{
    HANDLE port = new_port();
    CompletionPort* p = wait_objects().port(port);
    constexpr unsigned kEngines = 2;
    constexpr uint32_t kPerEngine = 20000;
    constexpr uint32_t kPosted = 5000;
    constexpr uint32_t kTotal = kEngines * kPerEngine + kPosted;
    // key: source in the high half, sequence in the low.
    const auto index_of = [](ULONG_PTR key) {
        const auto source = static_cast<uint32_t>(key >> 32);
        const auto seq = static_cast<uint32_t>(key);
        return source * kPerEngine + seq;
    };
    std::vector<std::atomic<uint8_t>> seen(kTotal);
    std::atomic<uint32_t> reaped{0};
    std::atomic<bool> stop{false};
    const auto deadline = Clock::now() + std::chrono::seconds(20);

    std::vector<std::thread> threads;
    for (int r = 0; r < 4; ++r) {
        threads.emplace_back([&, r] {
            OVERLAPPED_ENTRY entries[16];
            DWORD bytes = 0;
            ULONG_PTR key = 0;
            LPOVERLAPPED ov = nullptr;
            while (!stop.load() && Clock::now() < deadline) {
                if (r == 0) { // one reaper uses the single-entry call
                    if (GetQueuedCompletionStatus(port, &bytes, &key, &ov, 20) == TRUE) {
                        seen[index_of(key)].fetch_add(1);
                        if (reaped.fetch_add(1) + 1 == kTotal) stop.store(true);
                    }
                    continue;
                }
                ULONG n = 0;
                if (GetQueuedCompletionStatusEx(port, entries, 16, &n, 20, FALSE) != TRUE) continue;
                for (ULONG i = 0; i < n; ++i)
                    seen[index_of(entries[i].lpCompletionKey)].fetch_add(1);
                if (reaped.fetch_add(n) + n == kTotal) stop.store(true);
            }
        });
    }
    for (unsigned e = 0; e < kEngines; ++e) {
        threads.emplace_back([&, e] {
            for (uint32_t i = 0; i < kPerEngine && Clock::now() < deadline;) {
                if (!p->try_reserve(e)) { // ring full: the reapers are behind
                    std::this_thread::yield();
                    continue;
                }
                p->push(e, Completion{nullptr, (static_cast<ULONG_PTR>(e) << 32) | i, 0, 0, 0, 0});
                ++i;
            }
        });
    }
    threads.emplace_back([&] {
        for (uint32_t i = 0; i < kPosted && Clock::now() < deadline;) {
            if (PostQueuedCompletionStatus(port, 0, (static_cast<ULONG_PTR>(kEngines) << 32) | i, nullptr) == TRUE)
                ++i;
            else
                std::this_thread::yield();
        }
    });
    for (auto& t : threads)
        t.join();

    EXPECT_EQ(reaped.load(), kTotal);
    uint32_t once = 0;
    for (auto& s : seen)
        once += s.load() == 1 ? 1 : 0;
    EXPECT_EQ(once, kTotal);
    for (unsigned e = 0; e < kEngines; ++e)
        EXPECT_EQ(p->reserved(e), 0u);
    EXPECT_EQ(CloseHandle(port), TRUE);
}

TEST_F(WaitObjectsTest, close_handle_wakes_a_blocked_reaper_and_drops_later_completions)
{
    HANDLE port = new_port();
    CompletionPort* p = wait_objects().port(port);
    // A socket's association (CreateIoCompletionPort's reference), with an
    // operation of that socket still in flight.
    ASSERT_NE(wait_objects().ports().retain(reinterpret_cast<uint64_t>(port)), nullptr);
    ASSERT_TRUE(p->try_reserve(0));
    std::atomic<bool> returned{false};
    BOOL result = TRUE;
    DWORD error = 0;
    LPOVERLAPPED got = nullptr;
    std::thread reaper([&] {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        result = GetQueuedCompletionStatus(port, &bytes, &key, &got, kLongWaitMs);
        error = GetLastError();
        returned.store(true);
    });
    ASSERT_TRUE(eventually([&] { return wait_objects().hub().sleepers() > 0; }));
    ASSERT_EQ(CloseHandle(port), TRUE);
    ASSERT_TRUE(eventually([&] { return returned.load(); }));
    reaper.join();
    EXPECT_EQ(result, FALSE);
    EXPECT_EQ(error, static_cast<DWORD>(ERROR_ABANDONED_WAIT_0));
    EXPECT_EQ(got, nullptr);

    // The handle is gone; the in-flight operation still completes, into
    // nothing, and the association's release (closesocket's, once the
    // socket's operations completed) lets the slot go.
    EXPECT_EQ(wait_objects().port(port), nullptr);
    EXPECT_EQ(CloseHandle(port), FALSE);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
    EXPECT_EQ(PostQueuedCompletionStatus(port, 0, 0, nullptr), FALSE);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
    EXPECT_EQ(wait_objects().ports().in_use(), ports_before_ + 1);
    p->push(0, Completion{nullptr, 1, 0, 0, 0, 0});
    EXPECT_EQ(p->dropped(), 1u);
    EXPECT_EQ(wait_objects().ports().in_use(), ports_before_ + 1);
    p->release_association();
    EXPECT_EQ(wait_objects().ports().in_use(), ports_before_);
}

TEST_F(WaitObjectsTest, port_calls_reject_bad_handles_and_parameters)
{
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED got = nullptr;
    WSAEVENT e = WSACreateEvent();
    const HANDLE bad[] = {nullptr, INVALID_HANDLE_VALUE, e, reinterpret_cast<HANDLE>(0x5000000001000001ull)};
    for (HANDLE h : bad) {
        SetLastError(0);
        EXPECT_EQ(GetQueuedCompletionStatus(h, &bytes, &key, &got, 0), FALSE);
        EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
        SetLastError(0);
        EXPECT_EQ(PostQueuedCompletionStatus(h, 0, 0, nullptr), FALSE);
        EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
        SetLastError(0);
        EXPECT_EQ(CloseHandle(h), FALSE);
        EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
    }
    HANDLE port = new_port();
    SetLastError(0);
    EXPECT_EQ(CreateIoCompletionPort(INVALID_HANDLE_VALUE, port, 0, 0), nullptr);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_PARAMETER));
    // Not a socket (no stack runs here, so nothing is one).
    SetLastError(0);
    EXPECT_EQ(CreateIoCompletionPort(nullptr, nullptr, 0, 0), nullptr);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
    SetLastError(0);
    EXPECT_EQ(CreateIoCompletionPort(e, port, 0, 0), nullptr);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_HANDLE));
    SetLastError(0);
    EXPECT_EQ(GetQueuedCompletionStatus(port, nullptr, &key, &got, 0), FALSE);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_PARAMETER));
    EXPECT_EQ(CloseHandle(port), TRUE);
    WSACloseEvent(e);
}

TEST_F(WaitObjectsTest, port_rings_are_fair_across_engines)
{
    HANDLE port = new_port();
    CompletionPort* p = wait_objects().port(port);
    // Engine 0 has a backlog; engine 1 one completion. A reaper taking one
    // at a time reaches engine 1 within two calls.
    for (uint32_t i = 0; i < 100; ++i) {
        ASSERT_TRUE(p->try_reserve(0));
        p->push(0, Completion{nullptr, 0, 0, 0, 0, 0});
    }
    ASSERT_TRUE(p->try_reserve(1));
    p->push(1, Completion{nullptr, 1, 0, 0, 0, 0});
    int calls_until_engine1 = 0;
    for (int i = 1; i <= 4; ++i) {
        Completion c{};
        ASSERT_EQ(p->dequeue(&c, 1), 1u);
        if (c.key == 1) {
            calls_until_engine1 = i;
            break;
        }
    }
    EXPECT_GE(calls_until_engine1, 1);
    EXPECT_LE(calls_until_engine1, 4);
    EXPECT_EQ(CloseHandle(port), TRUE); // drops the rest
    EXPECT_GE(p->dropped(), 96u);
}

// ---- building blocks -------------------------------------------------------

struct Probe {
    std::atomic<uint64_t> handle{0};
    std::atomic<int> resets{0};
    void reset(uint64_t h) noexcept
    {
        handle.store(h);
        resets.fetch_add(1);
    }
};

TEST(HandleTable, handles_are_tagged_multiples_of_four_never_zero_or_all_ones_and_stale_after_close)
{
    HandleTable<Probe> table(4, 0x42);
    std::set<uint64_t> handles;
    std::vector<HandleTable<Probe>::Opened> open;
    for (int i = 0; i < 4; ++i) {
        auto o = table.open();
        ASSERT_TRUE(o.has_value());
        EXPECT_NE(o->handle, 0u);
        EXPECT_NE(o->handle, ~uint64_t{0});
        EXPECT_EQ(o->handle >> 56, 0x42u);
        EXPECT_EQ(o->handle & 3, 0u) << "a multiple of four, as Windows' handles";
        EXPECT_EQ(table.get(o->handle | 1), nullptr) << "the low bits are the caller's";
        EXPECT_EQ(table.get(o->handle | 2), nullptr);
        EXPECT_EQ(o->object->handle.load(), o->handle);
        EXPECT_EQ(table.get(o->handle), o->object);
        handles.insert(o->handle);
        open.push_back(*o);
    }
    EXPECT_EQ(handles.size(), 4u);
    EXPECT_FALSE(table.open().has_value()); // full
    EXPECT_EQ(table.in_use(), 4u);

    const uint64_t closed = open[2].handle;
    EXPECT_TRUE(table.close(closed));
    EXPECT_FALSE(table.close(closed));
    EXPECT_EQ(table.get(closed), nullptr);
    auto reused = table.open();
    ASSERT_TRUE(reused.has_value());
    EXPECT_EQ(reused->object, open[2].object); // the freed slot...
    EXPECT_NE(reused->handle, closed);         // ...under a new generation
    EXPECT_EQ(table.get(closed), nullptr);
    EXPECT_EQ(table.get(reused->handle), reused->object);
    EXPECT_EQ(reused->object->resets.load(), 2);

    // Foreign and malformed handles.
    EXPECT_EQ(table.get(0), nullptr);
    EXPECT_EQ(table.get(~uint64_t{0}), nullptr);
    EXPECT_EQ(table.get((open[0].handle & ~(uint64_t{0xff} << 56)) | (uint64_t{0x43} << 56)), nullptr);
    EXPECT_EQ(table.get((uint64_t{0x42} << 56) | (99 << 2)), nullptr); // index beyond capacity

    for (auto& o : open)
        if (o.handle != closed) {
            EXPECT_TRUE(table.close(o.handle));
        }
    EXPECT_TRUE(table.close(reused->handle));
    EXPECT_EQ(table.in_use(), 0u);
}

TEST(HandleTable, a_reference_keeps_a_closed_slot_from_being_recycled)
{
    HandleTable<Probe> table(1, 0x42);
    auto o = table.open();
    ASSERT_TRUE(o.has_value());
    ASSERT_EQ(table.retain(o->handle), o->object);
    ASSERT_TRUE(table.close(o->handle));
    EXPECT_EQ(table.retain(o->handle), nullptr);        // closed: no new holders by handle
    EXPECT_EQ(table.retain_live(o->handle), o->object); // but the referenced object lives
    EXPECT_FALSE(table.open().has_value());             // not recycled
    table.release(o->handle, 2);
    EXPECT_EQ(table.in_use(), 0u);
    auto again = table.open();
    ASSERT_TRUE(again.has_value());
    EXPECT_NE(again->handle, o->handle);
    EXPECT_EQ(table.retain_live(o->handle), nullptr);
    EXPECT_TRUE(table.close(again->handle));
}

TEST(HandleTable, concurrent_open_and_close_never_hand_out_one_slot_twice)
{
    HandleTable<Probe> table(64, 0x42);
    std::vector<std::atomic<int>> owners(64);
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 20000; ++i) {
                auto o = table.open();
                if (!o) continue;
                const auto index = static_cast<size_t>((o->handle & 0xffffff) - 1);
                if (owners[index].fetch_add(1) != 0) errors.fetch_add(1);
                if (table.get(o->handle) != o->object) errors.fetch_add(1);
                owners[index].fetch_sub(1);
                if (!table.close(o->handle)) errors.fetch_add(1);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(table.in_use(), 0u);
}

TEST(MpmcQueue, bounded_fifo_from_many_producers_to_many_consumers)
{
    MpmcQueue<uint32_t> q(8);
    for (uint32_t i = 0; i < 8; ++i)
        ASSERT_TRUE(q.try_push(i));
    EXPECT_FALSE(q.try_push(8));
    uint32_t v = 0;
    for (uint32_t i = 0; i < 8; ++i) {
        ASSERT_TRUE(q.try_pop(v));
        EXPECT_EQ(v, i);
    }
    EXPECT_FALSE(q.try_pop(v));
    EXPECT_TRUE(q.empty());

    MpmcQueue<uint32_t> shared(64);
    constexpr uint32_t kEach = 20000;
    std::vector<std::atomic<uint8_t>> seen(2 * kEach);
    std::atomic<uint32_t> taken{0};
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    std::vector<std::thread> threads;
    for (uint32_t p = 0; p < 2; ++p)
        threads.emplace_back([&, p] {
            for (uint32_t i = 0; i < kEach && Clock::now() < deadline;)
                if (shared.try_push(p * kEach + i)) ++i;
        });
    for (int c = 0; c < 2; ++c)
        threads.emplace_back([&] {
            uint32_t x = 0;
            while (taken.load() < 2 * kEach && Clock::now() < deadline)
                if (shared.try_pop(x)) {
                    seen[x].fetch_add(1);
                    taken.fetch_add(1);
                }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(taken.load(), 2 * kEach);
    uint32_t once = 0;
    for (auto& s : seen)
        once += s.load() == 1 ? 1 : 0;
    EXPECT_EQ(once, 2 * kEach);
}

TEST(WakeHub, wait_returns_at_once_on_a_new_epoch_and_false_at_the_deadline)
{
    WakeHub hub;
    const uint32_t seen = hub.epoch();
    hub.notify();
    EXPECT_TRUE(hub.wait(seen, std::nullopt));
    const auto start = Clock::now();
    EXPECT_FALSE(hub.wait(hub.epoch(), Clock::now() + milliseconds(30)));
    EXPECT_GE(elapsed_ms(start), 30);
    EXPECT_FALSE(hub.wait(hub.epoch(), Clock::now() - milliseconds(1))); // already past
}

TEST(WakeHub, notify_wakes_a_sleeping_waiter)
{
    WakeHub hub;
    std::atomic<bool> woke{false};
    std::thread waiter([&] {
        const uint32_t seen = hub.epoch();
        woke.store(hub.wait(seen, Clock::now() + std::chrono::seconds(5)));
    });
    ASSERT_TRUE(eventually([&] { return hub.sleepers() == 1; }));
    hub.notify();
    waiter.join();
    EXPECT_TRUE(woke.load());
    EXPECT_EQ(hub.sleepers(), 0u);
}

} // namespace
