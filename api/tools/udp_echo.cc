// ringsock-echo: a UDP and TCP echo server (RFC 862) on the Winsock API, so
// a generator on the far side (pktgen, testpmd, a kernel socket) can
// measure rate and latency through the whole stack. Keeps --depth
// overlapped WSARecvFrom posted per UDP port; each datagram received is
// sent back to its sender from the same buffer with an overlapped
// WSASendTo, and the buffer is posted for receiving again once the send
// completes. TCP ports (--tcp-port) echo every connection's bytes in order
// (tcp_echo.hh). One completion port reaped with
// GetQueuedCompletionStatusEx; with --per-engine, the scale-out model: on
// each UDP port a port-shared socket per engine, homed there, with a
// completion port and a thread of its own (TCP stays on the first); with
// --on-engine, the same sockets and ports, each reaped by a poller on its
// engine's own lcore (ringsock_poll_on_engine): receive, echo and receive
// again without leaving the engine's core (TCP then has a port of its own,
// reaped by the main thread). Public header only.
#include "echo_op.hh"
#include "tcp_echo.hh"
#include "tool_start.hh"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

// One buffer going round: posted for a receive, then for the echo's send.
struct Slot {
    ringsock::tools::EchoOp op; // first: the OVERLAPPED a completion names is the slot's
    SOCKET socket;
    bool sending;
    WSABUF buf;
    sockaddr_storage peer;
    int peerlen;
    DWORD flags;
    std::vector<char> storage;
};

// One reaping thread's counts, which only it writes (count()); the main
// thread reads them for its reports. A line of its own per thread.
struct alignas(64) Counts {
    std::atomic<uint64_t> received{0};
    std::atomic<uint64_t> echoed{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> truncated{0};   // larger than --buffer: not echoed
    std::atomic<uint64_t> send_errors{0}; // the stack refused or failed the echo
    std::atomic<uint64_t> recv_errors{0};
};

// A single writer's add: no locked instruction on the echo's path.
void count(std::atomic<uint64_t>& counter, uint64_t n = 1)
{
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct Totals {
    uint64_t received = 0, echoed = 0, bytes = 0, truncated = 0, send_errors = 0, recv_errors = 0;
};

Totals sum(const std::vector<Counts>& lanes)
{
    Totals t;
    for (const Counts& c : lanes) {
        t.received += c.received.load(std::memory_order_relaxed);
        t.echoed += c.echoed.load(std::memory_order_relaxed);
        t.bytes += c.bytes.load(std::memory_order_relaxed);
        t.truncated += c.truncated.load(std::memory_order_relaxed);
        t.send_errors += c.send_errors.load(std::memory_order_relaxed);
        t.recv_errors += c.recv_errors.load(std::memory_order_relaxed);
    }
    return t;
}

std::atomic<bool> g_stop{false};

void on_signal(int)
{
    g_stop.store(true);
}

// Posts the slot's receive; a receive that fails at once with WSAEMSGSIZE
// queues no completion (WSARecvFrom's page), so it is counted and posted
// again here.
int post_receive(Slot& slot, Counts& counts)
{
    for (;;) {
        slot.sending = false;
        slot.buf.len = static_cast<ULONG>(slot.storage.size());
        slot.peerlen = sizeof(slot.peer);
        slot.flags = 0;
        const int r = WSARecvFrom(slot.socket, &slot.buf, 1, nullptr, &slot.flags,
                                  reinterpret_cast<sockaddr*>(&slot.peer), &slot.peerlen, &slot.op.ov, nullptr);
        if (r == 0 || WSAGetLastError() == WSA_IO_PENDING) return 0;
        if (WSAGetLastError() != WSAEMSGSIZE) return WSAGetLastError();
        count(counts.truncated);
    }
}

// The echo of what the slot holds, to whoever sent it. False when the send
// failed at once (no completion will come).
bool post_echo(Slot& slot, DWORD bytes)
{
    slot.sending = true;
    slot.buf.len = bytes;
    const int r = WSASendTo(slot.socket, &slot.buf, 1, nullptr, 0, reinterpret_cast<const sockaddr*>(&slot.peer),
                            slot.peerlen, &slot.op.ov, nullptr);
    return r == 0 || WSAGetLastError() == WSA_IO_PENDING;
}

// A UDP slot's completion: the echo goes out, or the buffer is posted again.
void on_udp_completion(Slot& slot, DWORD status, DWORD bytes, Counts& counts)
{
    if (status == WSA_OPERATION_ABORTED) return; // closing
    if (slot.sending) {
        count(status == 0 ? counts.echoed : counts.send_errors);
    } else if (status == 0) {
        count(counts.received);
        count(counts.bytes, bytes);
        if (post_echo(slot, bytes)) return; // the buffer comes back with the send
        count(counts.send_errors);
    } else if (status == WSAEMSGSIZE) {
        count(counts.truncated);
    } else {
        count(counts.recv_errors);
    }
    if (post_receive(slot, counts) != 0) count(counts.recv_errors);
}

// --on-engine: what one engine's poller reaps.
struct EngineLane {
    HANDLE port = nullptr;
    std::vector<OVERLAPPED_ENTRY> entries = std::vector<OVERLAPPED_ENTRY>(256);
    Counts* counts = nullptr;
};

// One lane's completions: reaped (waiting up to `timeout_ms`; on an engine
// it never waits) and each slot moved on.
void reap_udp(HANDLE port, std::vector<OVERLAPPED_ENTRY>& entries, Counts& counts, DWORD timeout_ms)
{
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &n, timeout_ms, FALSE))
        return;
    for (ULONG i = 0; i < n; ++i)
        on_udp_completion(*reinterpret_cast<Slot*>(ringsock::tools::echo_op_of(entries[i].lpOverlapped)),
                          static_cast<DWORD>(entries[i].Internal), entries[i].dwNumberOfBytesTransferred, counts);
}

// Runs on the engine after each of its polls, until the echo stops.
int poll_lane(void* context)
{
    auto& lane = *static_cast<EngineLane*>(context);
    if (g_stop.load(std::memory_order_relaxed)) return 1;
    reap_udp(lane.port, lane.entries, *lane.counts, 0);
    return 0;
}

void print_counts(const char* head, const Totals& c, const ringsock::tools::TcpEcho::Counts& t, double seconds)
{
    using ull = unsigned long long;
    std::printf("{%s\"t\":%.3f,\"received\":%llu,\"echoed\":%llu,\"bytes\":%llu,\"truncated\":%llu,"
                "\"send_errors\":%llu,\"recv_errors\":%llu,\"tcp_connections\":%llu,\"tcp_closed\":%llu,"
                "\"tcp_bytes\":%llu,\"tcp_errors\":%llu}\n",
                head, seconds, static_cast<ull>(c.received), static_cast<ull>(c.echoed), static_cast<ull>(c.bytes),
                static_cast<ull>(c.truncated), static_cast<ull>(c.send_errors), static_cast<ull>(c.recv_errors),
                static_cast<ull>(t.connections), static_cast<ull>(t.closed), static_cast<ull>(t.bytes),
                static_cast<ull>(t.errors));
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-echo: a UDP and TCP echo server on ringsock's Winsock API"};
    std::string profile;
    std::vector<std::string> overrides;
    std::vector<int> ports{7};
    std::vector<int> tcp_ports;
    unsigned depth = 64;
    unsigned tcp_depth = 4;
    unsigned tcp_buffer = 64 * 1024;
    unsigned buffer = 2048;
    double duration = 10;
    unsigned interval_ms = 1000;
    app.add_option("--profile", profile, "profile (drivers_config/*.toml)")->required();
    app.add_option("--set", overrides, "section.key=value override (repeatable)");
    app.add_option("--port", ports, "UDP port to echo on (repeatable; 0: none)")->check(CLI::Range(0, 65535));
    app.add_option("--tcp-port", tcp_ports, "TCP port to echo on (repeatable)")->check(CLI::Range(1, 65535));
    app.add_option("--tcp-depth", tcp_depth, "buffers going round per TCP connection")->check(CLI::Range(1, 64));
    app.add_option("--tcp-buffer", tcp_buffer, "bytes per TCP buffer")->check(CLI::Range(1, 1 << 24));
    app.add_option("--depth", depth, "buffers going round per port")->check(CLI::Range(1, 1024));
    app.add_option("--buffer", buffer, "bytes per buffer: larger datagrams are counted, not echoed")
        ->check(CLI::Range(1, 65507));
    app.add_option("--duration", duration, "seconds to run (0: until SIGINT/SIGTERM)");
    app.add_option("--interval-ms", interval_ms, "report interval")->check(CLI::Range(10, 60000));
    bool per_engine = false;
    bool on_engine = false;
    app.add_flag("--per-engine", per_engine,
                 "a port-shared socket per engine on each UDP port, each with a completion port and a thread of its "
                 "own");
    app.add_flag("--on-engine", on_engine,
                 "a port-shared socket per engine on each UDP port, reaped by a poller on that engine's own lcore "
                 "(ringsock_poll_on_engine)");
    CLI11_PARSE(app, argc, argv);
    if (per_engine && on_engine) {
        std::fprintf(stderr, "ringsock-echo: --per-engine or --on-engine, not both\n");
        return 2;
    }

    if (int rc = ringsock::tools::start_winsock("ringsock-echo", profile, overrides); rc != 0) return rc;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    // Lanes: a completion port and a thread each, with the UDP sockets
    // homed on that engine; lane 0 is the main thread's and has TCP too.
    // With --on-engine the pollers reap every lane and TCP has a port of
    // its own, reaped by the main thread (accepting makes sockets, which an
    // engine may not).
    const unsigned lanes = per_engine || on_engine ? static_cast<unsigned>(ringsock_engine_count()) : 1;
    std::vector<HANDLE> completion_ports;
    for (unsigned l = 0; l < lanes; ++l)
        completion_ports.push_back(CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1));
    if (on_engine) completion_ports.push_back(CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1));
    HANDLE port = on_engine ? completion_ports.back() : completion_ports[0]; // the main thread's: TCP, and lane 0's UDP
    std::erase(ports, 0);
    ringsock::tools::TcpEcho tcp(port, tcp_depth, tcp_buffer);
    for (int p : tcp_ports)
        if (!tcp.listen(p, 4)) return 1;
    std::vector<SOCKET> sockets;
    std::vector<Slot> slots(ports.size() * lanes * depth);
    std::vector<Counts> lane_counts(lanes);
    for (std::size_t i = 0; i < ports.size() * lanes; ++i) {
        const std::size_t p = i / lanes;
        const unsigned lane = static_cast<unsigned>(i % lanes);
        SOCKET s =
            ringsock::tools::bind_udp("ringsock-echo", ports[p], per_engine || on_engine ? static_cast<int>(lane) : -1);
        if (s == INVALID_SOCKET) return 1;
        CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), completion_ports[lane], p, 0);
        sockets.push_back(s);
        for (unsigned d = 0; d < depth; ++d) {
            Slot& slot = slots[i * depth + d];
            slot.op.kind = ringsock::tools::EchoKind::udp;
            slot.socket = s;
            slot.storage.resize(buffer);
            slot.buf.buf = slot.storage.data();
        }
    }
    for (std::size_t k = 0; k < slots.size(); ++k) {
        if (int error = post_receive(slots[k], lane_counts[(k / depth) % lanes]); error != 0) {
            std::fprintf(stderr, "ringsock-echo: WSARecvFrom failed: %d\n", error);
            return 1;
        }
    }
    std::vector<std::thread> lane_threads;
    std::vector<EngineLane> engine_lanes(on_engine ? lanes : 0);
    std::atomic<bool> poller_failed{false}; // the run then fails
    for (unsigned l = on_engine ? 0 : 1; l < lanes; ++l) {
        if (on_engine) {
            // A thread per engine only to wait for its poller.
            engine_lanes[l].port = completion_ports[l];
            engine_lanes[l].counts = &lane_counts[l];
            lane_threads.emplace_back([&, l] {
                if (int error = ringsock_poll_on_engine(static_cast<int>(l), poll_lane, &engine_lanes[l]); error != 0) {
                    std::fprintf(stderr, "ringsock-echo: engine %u would not poll: %d\n", l, error);
                    poller_failed.store(true);
                    g_stop.store(true);
                }
            });
            continue;
        }
        lane_threads.emplace_back([&, l] {
            std::vector<OVERLAPPED_ENTRY> entries(256);
            while (!g_stop.load(std::memory_order_relaxed))
                reap_udp(completion_ports[l], entries, lane_counts[l], 100);
        });
    }

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next_report = start + std::chrono::milliseconds(interval_ms);
    std::vector<OVERLAPPED_ENTRY> entries(256);
    while (!g_stop.load()) {
        ULONG n = 0;
        if (GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &n, 100, FALSE)) {
            for (ULONG i = 0; i < n; ++i) {
                ringsock::tools::EchoOp* op = ringsock::tools::echo_op_of(entries[i].lpOverlapped);
                const auto status = static_cast<DWORD>(entries[i].Internal);
                const DWORD bytes = entries[i].dwNumberOfBytesTransferred;
                if (op->kind != ringsock::tools::EchoKind::udp) {
                    tcp.on_completion(op, status, bytes);
                    continue;
                }
                on_udp_completion(*reinterpret_cast<Slot*>(op), status, bytes, lane_counts[0]);
            }
        }
        const auto now = Clock::now();
        const double seconds = std::chrono::duration<double>(now - start).count();
        if (now >= next_report) {
            print_counts("", sum(lane_counts), tcp.counts(), seconds);
            next_report = now + std::chrono::milliseconds(interval_ms);
        }
        if (duration > 0 && seconds >= duration) break;
    }
    g_stop.store(true);
    for (std::thread& t : lane_threads)
        t.join(); // each returns within its 100 ms wait (a poller at the engine's next poll), before the sockets and
                  // ports go
    for (SOCKET s : sockets)
        closesocket(s);
    tcp.close_all();
    for (HANDLE p : completion_ports)
        CloseHandle(p);
    if (per_engine || on_engine) {
        std::vector<unsigned long long> received;
        for (const Counts& c : lane_counts)
            received.push_back(c.received.load(std::memory_order_relaxed));
        ringsock::tools::print_per_engine(received);
    }
    print_counts("\"done\":true,", sum(lane_counts), tcp.counts(),
                 std::chrono::duration<double>(Clock::now() - start).count());
    WSACleanup();
    return poller_failed.load() ? 1 : 0;
}
