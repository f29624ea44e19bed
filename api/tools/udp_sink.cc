// ringsock-udp-sink: receives UDP through the Winsock API and counts it.
// Binds one socket per port, keeps --depth overlapped WSARecvFrom posted on
// each, and reaps them with the delivery --mode asks for:
//   port     GetQueuedCompletionStatusEx on one completion port (default)
//   event    one event per request, WSAWaitForMultipleEvents
//   routine  completion routines, run at SleepEx(..., TRUE)
// Written against the public header only, as a ported program would be.
#include "tool_start.hh"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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

void on_signal(int)
{
    g_stop.store(true);
}

int post(Slot& slot, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
    slot.fromlen = sizeof(slot.from);
    slot.flags = 0;
    DWORD got = 0;
    for (;;) {
        const int r = WSARecvFrom(slot.socket, &slot.buf, 1, &got, &slot.flags, reinterpret_cast<sockaddr*>(&slot.from),
                                  &slot.fromlen, &slot.ov, routine);
        if (r == 0 || WSAGetLastError() == WSA_IO_PENDING) return 0;
        if (WSAGetLastError() != WSAEMSGSIZE) return WSAGetLastError();
        ++g_errors; // truncated at once: count it and post again
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
    if (error != WSA_OPERATION_ABORTED && !g_stop.load()) post(*slot, on_routine);
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
    app.add_option("--profile", profile, "profile (drivers_config/*.toml)")->required();
    app.add_option("--set", overrides, "section.key=value override (repeatable)");
    app.add_option("--port", ports, "UDP port to bind (repeatable)");
    app.add_option("--mode", mode, "completion delivery")->check(CLI::IsMember({"port", "event", "routine"}));
    app.add_option("--depth", depth, "overlapped receives kept posted per socket")->check(CLI::Range(1, 1024));
    app.add_option("--duration", duration, "seconds to run (0: until SIGINT/SIGTERM)");
    app.add_option("--interval-ms", interval_ms, "report interval");
    CLI11_PARSE(app, argc, argv);

    if (int rc = ringsock::tools::start_winsock("ringsock-udp-sink", profile, overrides); rc != 0) return rc;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    HANDLE port = nullptr;
    if (mode == "port") port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    std::vector<SOCKET> sockets;
    std::vector<Slot> slots(ports.size() * depth);
    for (std::size_t p = 0; p < ports.size(); ++p) {
        SOCKET s = ringsock::tools::bind_udp("ringsock-udp-sink", ports[p]);
        if (s == INVALID_SOCKET) return 1;
        if (port != nullptr) CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port, p, 0);
        sockets.push_back(s);
        for (unsigned d = 0; d < depth; ++d) {
            Slot& slot = slots[p * depth + d];
            slot.socket = s;
            slot.storage.resize(2048);
            slot.buf = {static_cast<ULONG>(slot.storage.size()), slot.storage.data()};
            if (mode == "event") slot.ov.hEvent = WSACreateEvent();
        }
    }
    for (auto& slot : slots) {
        if (int error = post(slot, mode == "routine" ? on_routine : nullptr); error != 0) {
            std::fprintf(stderr, "ringsock-udp-sink: WSARecvFrom failed: %d\n", error);
            return 1;
        }
    }

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next_report = start + std::chrono::milliseconds(interval_ms);
    uint64_t last = 0;
    std::vector<OVERLAPPED_ENTRY> entries(256);
    std::size_t next_event = 0;
    while (!g_stop.load()) {
        if (mode == "port") {
            ULONG n = 0;
            if (GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &n, 100, FALSE)) {
                for (ULONG i = 0; i < n; ++i) {
                    auto* slot = reinterpret_cast<Slot*>(entries[i].lpOverlapped);
                    if (entries[i].Internal == 0) {
                        ++g_datagrams;
                        g_bytes += entries[i].dwNumberOfBytesTransferred;
                    } else {
                        ++g_errors;
                    }
                    post(*slot, nullptr);
                }
            }
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
                    post(slot, nullptr);
                }
            }
            next_event = base + count >= slots.size() ? 0 : base + count;
        } else {
            SleepEx(100, TRUE);
        }
        const auto now = Clock::now();
        if (now >= next_report) {
            const double seconds = std::chrono::duration<double>(now - start).count();
            std::printf("{\"t\":%.3f,\"datagrams\":%llu,\"bytes\":%llu,\"errors\":%llu,\"pps\":%.0f}\n", seconds,
                        static_cast<unsigned long long>(g_datagrams), static_cast<unsigned long long>(g_bytes),
                        static_cast<unsigned long long>(g_errors),
                        static_cast<double>(g_datagrams - last) * 1000.0 / interval_ms);
            std::fflush(stdout);
            last = g_datagrams;
            next_report = now + std::chrono::milliseconds(interval_ms);
        }
        if (duration > 0 && std::chrono::duration<double>(now - start).count() >= duration) break;
    }
    g_stop.store(true);
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
    if (port != nullptr) CloseHandle(port);
    std::printf("{\"done\":true,\"datagrams\":%llu,\"bytes\":%llu,\"errors\":%llu,\"rcv_drops\":%llu}\n",
                static_cast<unsigned long long>(g_datagrams), static_cast<unsigned long long>(g_bytes),
                static_cast<unsigned long long>(g_errors), rcv_drops);
    WSACleanup();
    return 0;
}
