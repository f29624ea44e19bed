// ringsock-udp-sink: receives UDP through the Winsock API and counts it.
// Binds one socket per port, keeps --depth overlapped WSARecvFrom posted on
// each, and reaps them with the delivery --mode asks for:
//   port     GetQueuedCompletionStatusEx on one completion port (default);
//            with --threads N, N threads reap the one port and each posts
//            again the receives it reaped, as an IOCP server's thread pool
//            does (--cpus pins them, one CPU each); with --per-engine,
//            the scale-out model: on each port a port-shared socket per
//            engine, homed there, with a completion port and a reaping
//            thread of its own
//   event    one event per request, WSAWaitForMultipleEvents
//   routine  completion routines, run at SleepEx(..., TRUE)
//   engine   run to completion: each engine's port-shared socket and
//            completion port are reaped by a poller on that engine's own
//            lcore (ringsock_poll_on_engine), which posts again in place,
//            so no datagram, buffer or completion leaves the engine's core
// Written against the public header only, as a ported program would be.
#include "tool_start.hh"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>

#include <CLI/CLI.hpp>

namespace {

struct Slot {
    WSAOVERLAPPED ov;
    SOCKET socket;
    WSABUF buf;
    sockaddr_in from;
    int fromlen;
    DWORD flags;
    std::vector<char> storage;
};

std::atomic<bool> g_stop{false};
uint64_t g_datagrams = 0;
uint64_t g_bytes = 0;
uint64_t g_errors = 0;

// One reaping thread's counts, on a line of its own so threads never share
// one; the main thread reads them for its reports.
struct alignas(64) ReaperCounts {
    std::atomic<uint64_t> datagrams{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};

    // Only the owning thread adds: a plain add, published for the reports.
    void add(uint64_t more_datagrams, uint64_t more_bytes, uint64_t more_errors) noexcept
    {
        datagrams.store(datagrams.load(std::memory_order_relaxed) + more_datagrams, std::memory_order_relaxed);
        bytes.store(bytes.load(std::memory_order_relaxed) + more_bytes, std::memory_order_relaxed);
        errors.store(errors.load(std::memory_order_relaxed) + more_errors, std::memory_order_relaxed);
    }
};

void on_signal(int)
{
    g_stop.store(true);
}

// One overlapped WSARecvFrom on `slot`; its result as the call returns it,
// `got` the bytes of a receive that completed at once.
int receive_on(Slot& slot, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, DWORD& got)
{
    slot.fromlen = sizeof(slot.from);
    slot.flags = 0;
    return WSARecvFrom(slot.socket, &slot.buf, 1, &got, &slot.flags, reinterpret_cast<sockaddr*>(&slot.from),
                       &slot.fromlen, &slot.ov, routine);
}

// Posts `slot` again; a receive truncated at once is counted in `truncated`
// and posted once more.
int post(Slot& slot, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, uint64_t& truncated)
{
    DWORD got = 0;
    for (;;) {
        const int r = receive_on(slot, routine, got);
        if (r == 0 || WSAGetLastError() == WSA_IO_PENDING) return 0;
        if (WSAGetLastError() != WSAEMSGSIZE) return WSAGetLastError();
        ++truncated;
    }
}

void CALLBACK on_routine(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD)
{
    auto* slot = reinterpret_cast<Slot*>(ov);
    if (error == 0) {
        ++g_datagrams;
        g_bytes += bytes;
    } else if (error != WSA_OPERATION_ABORTED) {
        ++g_errors;
    }
    if (error != WSA_OPERATION_ABORTED && !g_stop.load()) post(*slot, on_routine, g_errors);
}

// One GetQueuedCompletionStatusEx on `port` (waiting up to `timeout_ms`;
// on an engine it never waits):
// counts what it reaped in `counts` and posts each receive again.
void reap_port(HANDLE port, std::vector<OVERLAPPED_ENTRY>& entries, ReaperCounts& counts, DWORD timeout_ms)
{
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &n, timeout_ms, FALSE))
        return;
    uint64_t datagrams = 0, bytes = 0, errors = 0;
    for (ULONG i = 0; i < n; ++i) {
        auto* slot = reinterpret_cast<Slot*>(entries[i].lpOverlapped);
        if (entries[i].Internal == 0) {
            ++datagrams;
            bytes += entries[i].dwNumberOfBytesTransferred;
        } else {
            ++errors;
        }
        post(*slot, nullptr, errors);
    }
    counts.add(datagrams, bytes, errors);
}

// Engine mode: one engine's poller. Its sockets skip the completion port
// when a receive succeeds at once, so the poller receives on a slot while
// datagrams are queued and leaves it pending when none is; the port brings
// back the slots that completed later.
struct EngineLane {
    HANDLE port = nullptr;
    std::vector<OVERLAPPED_ENTRY> entries = std::vector<OVERLAPPED_ENTRY>(256);
    std::vector<Slot*> ready; // slots with no receive pending
    ReaperCounts* counts = nullptr;
};

// Receives at most this many at once per poll, so the engine gets back to
// its queues while the socket still holds datagrams, and at most
// kAtOncePerSlot on one slot before the next ready slot's turn.
constexpr unsigned kAtOncePerPoll = 256;
constexpr unsigned kAtOncePerSlot = 32;

// Runs on the engine after each of its polls, until the sink stops.
int poll_lane(void* context)
{
    auto& lane = *static_cast<EngineLane*>(context);
    if (g_stop.load(std::memory_order_relaxed)) return 1;
    uint64_t datagrams = 0, bytes = 0, errors = 0;
    ULONG n = 0;
    if (GetQueuedCompletionStatusEx(lane.port, lane.entries.data(), static_cast<ULONG>(lane.entries.size()), &n, 0,
                                    FALSE)) {
        for (ULONG i = 0; i < n; ++i) {
            if (lane.entries[i].Internal == 0) {
                ++datagrams;
                bytes += lane.entries[i].dwNumberOfBytesTransferred;
            } else {
                ++errors;
            }
            lane.ready.push_back(reinterpret_cast<Slot*>(lane.entries[i].lpOverlapped));
        }
    }
    // Each ready slot in turn takes at most kAtOncePerSlot, so one busy
    // socket of the lane cannot keep the others' queues from being read.
    unsigned budget = kAtOncePerPoll;
    for (std::size_t i = 0; i < lane.ready.size() && budget > 0;) {
        Slot& slot = *lane.ready[i];
        bool leaves = false; // pending (back through the port) or failing
        for (unsigned taken = 0; taken < kAtOncePerSlot && budget > 0; ++taken, --budget) {
            DWORD got = 0;
            if (receive_on(slot, nullptr, got) == 0) {
                ++datagrams; // completed at once: no port packet follows
                bytes += got;
                continue;
            }
            const int error = WSAGetLastError();
            if (error == WSAEMSGSIZE) {
                ++errors; // truncated at once: receive again
                continue;
            }
            if (error != WSA_IO_PENDING) ++errors; // the socket is failing: stop using the slot
            leaves = true;
            break;
        }
        if (leaves) {
            lane.ready[i] = lane.ready.back();
            lane.ready.pop_back();
        } else {
            ++i;
        }
    }
    lane.counts->add(datagrams, bytes, errors);
    return 0;
}

bool pin_to(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-udp-sink: counts UDP datagrams received through ringsock's Winsock API"};
    std::string profile;
    std::vector<std::string> overrides;
    std::vector<int> ports{9};
    std::string mode = "port";
    unsigned depth = 64;
    double duration = 10;
    unsigned interval_ms = 1000;
    unsigned threads = 1;
    std::vector<unsigned> cpus;
    bool per_engine = false;
    app.add_option("--profile", profile, "profile (drivers_config/*.toml)")->required();
    app.add_option("--set", overrides, "section.key=value override (repeatable)");
    app.add_option("--port", ports, "UDP port to bind (repeatable)");
    app.add_option("--mode", mode, "completion delivery (engine: reaped on each engine by ringsock_poll_on_engine)")
        ->check(CLI::IsMember({"port", "event", "routine", "engine"}));
    app.add_option("--depth", depth, "overlapped receives kept posted per socket")->check(CLI::Range(1, 1024));
    app.add_option("--duration", duration, "seconds to run (0: until SIGINT/SIGTERM)");
    app.add_option("--interval-ms", interval_ms, "report interval");
    app.add_option("--threads", threads, "threads reaping the completion port (port mode)")->check(CLI::Range(1, 64));
    app.add_option("--cpus", cpus,
                   "CPU for each reaping thread, in turn (port mode; default: the CPUs the "
                   "process had before the stack started)")
        ->delimiter(',');
    app.add_flag("--per-engine", per_engine,
                 "port mode: a port-shared socket per engine on each --port, each with a completion port and a "
                 "reaping thread of its own (--cpus: one per engine, in engine order)");
    CLI11_PARSE(app, argc, argv);
    if (mode != "port" && (threads != 1 || !cpus.empty() || per_engine)) {
        std::fprintf(stderr, "ringsock-udp-sink: --threads, --cpus and --per-engine are for --mode port\n");
        return 2;
    }
    if (per_engine && threads != 1) {
        std::fprintf(stderr,
                     "ringsock-udp-sink: --per-engine reaps each engine's port with one thread; no --threads\n");
        return 2;
    }
    // EAL pins the thread that starts it to its main lcore; reaping threads
    // keep the CPUs the process was given unless --cpus says otherwise.
    cpu_set_t process_cpus;
    sched_getaffinity(0, sizeof(process_cpus), &process_cpus);

    if (int rc = ringsock::tools::start_winsock("ringsock-udp-sink", profile, overrides); rc != 0) return rc;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    // Lanes: a completion port each (one, or one per engine), with the
    // sockets homed on its engine.
    const bool on_engine = mode == "engine";
    const unsigned lanes = per_engine || on_engine ? static_cast<unsigned>(ringsock_engine_count()) : 1;
    if (per_engine || on_engine) threads = lanes;
    std::vector<HANDLE> completion_ports;
    if (mode == "port" || on_engine)
        for (unsigned l = 0; l < lanes; ++l)
            completion_ports.push_back(CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, threads / lanes));
    std::vector<SOCKET> sockets;
    std::vector<Slot> slots(ports.size() * lanes * depth);
    for (std::size_t i = 0; i < ports.size() * lanes; ++i) {
        const std::size_t p = i / lanes;
        const unsigned lane = static_cast<unsigned>(i % lanes);
        SOCKET s = ringsock::tools::bind_udp("ringsock-udp-sink", ports[p],
                                             per_engine || on_engine ? static_cast<int>(lane) : -1);
        if (s == INVALID_SOCKET) return 1;
        if (mode == "port" || on_engine)
            CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), completion_ports[lane], p, 0);
        if (on_engine)
            SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS);
        sockets.push_back(s);
        for (unsigned d = 0; d < depth; ++d) {
            Slot& slot = slots[i * depth + d];
            slot.socket = s;
            slot.storage.resize(2048);
            slot.buf = {static_cast<ULONG>(slot.storage.size()), slot.storage.data()};
            if (mode == "event") slot.ov.hEvent = WSACreateEvent();
        }
    }
    for (auto& slot : slots) {
        if (on_engine) break; // each engine's poller posts its own
        if (int error = post(slot, mode == "routine" ? on_routine : nullptr, g_errors); error != 0) {
            std::fprintf(stderr, "ringsock-udp-sink: WSARecvFrom failed: %d\n", error);
            return 1;
        }
    }

    // Port mode: the main thread reaps when it is the only reaper; with
    // --threads it only reports.
    std::vector<ReaperCounts> reaped(mode == "port" || on_engine ? threads : 0);
    std::vector<std::thread> reapers;
    std::vector<EngineLane> engine_lanes(on_engine ? lanes : 0);
    std::atomic<bool> poller_failed{false}; // the run then fails
    if (on_engine) {
        // A thread per engine only to wait for its poller, which reaps on
        // the engine's lcore until the sink stops.
        for (std::size_t i = 0; i < ports.size() * lanes; ++i)
            for (unsigned d = 0; d < depth; ++d)
                engine_lanes[i % lanes].ready.push_back(&slots[i * depth + d]);
        for (unsigned l = 0; l < lanes; ++l) {
            engine_lanes[l].port = completion_ports[l];
            engine_lanes[l].counts = &reaped[l];
            reapers.emplace_back([&, l] {
                if (int error = ringsock_poll_on_engine(static_cast<int>(l), poll_lane, &engine_lanes[l]); error != 0) {
                    std::fprintf(stderr, "ringsock-udp-sink: engine %u would not poll: %d\n", l, error);
                    poller_failed.store(true);
                    g_stop.store(true);
                }
            });
        }
    } else if (threads > 1) {
        for (unsigned t = 0; t < threads; ++t) {
            reapers.emplace_back([&, t] {
                if (cpus.empty()) {
                    pthread_setaffinity_np(pthread_self(), sizeof(process_cpus), &process_cpus);
                } else if (!pin_to(cpus[t % cpus.size()])) {
                    std::fprintf(stderr, "ringsock-udp-sink: cannot pin a reaping thread to CPU %u\n",
                                 cpus[t % cpus.size()]);
                }
                std::vector<OVERLAPPED_ENTRY> entries(256);
                while (!g_stop.load(std::memory_order_relaxed))
                    reap_port(completion_ports[t % lanes], entries, reaped[t], 100);
            });
        }
    } else if (!cpus.empty() && !pin_to(cpus[0])) {
        std::fprintf(stderr, "ringsock-udp-sink: cannot pin to CPU %u\n", cpus[0]);
    }
    struct Totals {
        uint64_t datagrams, bytes, errors;
    };
    const auto totals = [&] {
        Totals sum{g_datagrams, g_bytes, g_errors};
        for (const ReaperCounts& c : reaped) {
            sum.datagrams += c.datagrams.load(std::memory_order_relaxed);
            sum.bytes += c.bytes.load(std::memory_order_relaxed);
            sum.errors += c.errors.load(std::memory_order_relaxed);
        }
        return sum;
    };

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next_report = start + std::chrono::milliseconds(interval_ms);
    uint64_t last = 0;
    std::vector<OVERLAPPED_ENTRY> entries(256);
    std::size_t next_event = 0;
    while (!g_stop.load()) {
        if (!reapers.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(interval_ms, 10u)));
        } else if (mode == "port") {
            reap_port(completion_ports[0], entries, reaped[0], 100);
        } else if (mode == "event") {
            // Events in windows of 64, the most one wait takes.
            const std::size_t base = next_event;
            const DWORD count = static_cast<DWORD>(std::min<std::size_t>(64, slots.size() - base));
            WSAEVENT events[64];
            for (DWORD i = 0; i < count; ++i)
                events[i] = slots[base + i].ov.hEvent;
            const DWORD w = WSAWaitForMultipleEvents(count, events, FALSE, 10, FALSE);
            if (w < WSA_WAIT_EVENT_0 + count) {
                for (DWORD i = w - WSA_WAIT_EVENT_0; i < count; ++i) {
                    Slot& slot = slots[base + i];
                    DWORD bytes = 0, flags = 0;
                    if (WSAGetOverlappedResult(slot.socket, &slot.ov, &bytes, FALSE, &flags)) {
                        ++g_datagrams;
                        g_bytes += bytes;
                    } else if (WSAGetLastError() == WSA_IO_INCOMPLETE) {
                        continue;
                    } else {
                        ++g_errors;
                    }
                    WSAResetEvent(slot.ov.hEvent);
                    post(slot, nullptr, g_errors);
                }
            }
            next_event = base + count >= slots.size() ? 0 : base + count;
        } else {
            SleepEx(100, TRUE);
        }
        const auto now = Clock::now();
        if (now >= next_report) {
            const double seconds = std::chrono::duration<double>(now - start).count();
            const Totals sum = totals();
            std::printf("{\"t\":%.3f,\"datagrams\":%llu,\"bytes\":%llu,\"errors\":%llu,\"pps\":%.0f}\n", seconds,
                        static_cast<unsigned long long>(sum.datagrams), static_cast<unsigned long long>(sum.bytes),
                        static_cast<unsigned long long>(sum.errors),
                        static_cast<double>(sum.datagrams - last) * 1000.0 / interval_ms);
            std::fflush(stdout);
            last = sum.datagrams;
            // On the start-relative grid, so a --duration that is a whole number
            // of intervals ends with its last sample.
            next_report += std::chrono::milliseconds(interval_ms);
        }
        if (duration > 0 && std::chrono::duration<double>(now - start).count() >= duration) break;
    }
    g_stop.store(true);
    for (std::thread& t : reapers)
        t.join(); // each returns within its 100 ms wait, before the sockets and the port go
    // What each socket's queue turned away (SO_RCVBUF or its slots full):
    // the receive path's own drops, apart from what never reached it.
    unsigned long long rcv_drops = 0;
    for (SOCKET s : sockets) {
        int drops = 0;
        int len = sizeof(drops);
        if (getsockopt(s, SOL_SOCKET, SO_RINGSOCK_RCV_DROPS, reinterpret_cast<char*>(&drops), &len) == 0)
            rcv_drops += static_cast<unsigned>(drops);
    }
    for (SOCKET s : sockets)
        closesocket(s);
    if (mode == "routine") SleepEx(0, TRUE); // the aborted routines
    for (auto& slot : slots)
        if (slot.ov.hEvent != nullptr) WSACloseEvent(slot.ov.hEvent);
    for (HANDLE port : completion_ports)
        CloseHandle(port);
    const Totals sum = totals();
    if (per_engine || on_engine) {
        std::vector<unsigned long long> received;
        for (const ReaperCounts& c : reaped)
            received.push_back(c.datagrams.load(std::memory_order_relaxed));
        ringsock::tools::print_per_engine(received);
    }
    std::printf("{\"done\":true,\"datagrams\":%llu,\"bytes\":%llu,\"errors\":%llu,\"rcv_drops\":%llu}\n",
                static_cast<unsigned long long>(sum.datagrams), static_cast<unsigned long long>(sum.bytes),
                static_cast<unsigned long long>(sum.errors), rcv_drops);
    WSACleanup();
    return poller_failed.load() ? 1 : 0;
}
