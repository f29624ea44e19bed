// ringsock-bench-kernel-udp-echo: the Linux kernel's UDP echo round trip
// on loopback, the baseline scripts/bench/udp-echo-latency sets ringsock
// beside. An echo thread pinned to --echo-cpu answers every datagram
// (recvfrom, sendto back); the client on --client-cpu sends --rate
// datagrams a second, each stamped with its send time, and polls for the
// echoes without blocking, timing each one into the same histogram
// ringsock-udp-gen uses. After --warmup-ms (not counted) it measures for
// --seconds, waits --drain-ms for the last echoes and prints one JSON line
// with the keys ringsock-udp-gen prints.
//
// Loopback only; stops by itself. Exit codes: 2 a bad option, 1 a socket
// or pinning failure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "pin_thread.hh"

#include "dataplane/latency_histogram.hh"

namespace {

using Clock = std::chrono::steady_clock;

struct Stamp {
    uint64_t sequence;
    int64_t sent_ns;
};

int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

int bound_socket(uint16_t port)
{
    const int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        close(s);
        return -1;
    }
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    double rate = 10000;
    double seconds = 5;
    unsigned payload = 22;
    unsigned echo_cpu = 1;
    unsigned client_cpu = 0;
    unsigned warmup_ms = 200;
    unsigned drain_ms = 300;
    uint16_t port = 47007;
    CLI::App app{"ringsock-bench-kernel-udp-echo: the kernel's UDP echo round trip on loopback"};
    app.add_option("--rate", rate, "datagrams per second")->check(CLI::Range(1.0, 1e7));
    app.add_option("--seconds", seconds, "measured time")->check(CLI::Range(0.1, 600.0));
    app.add_option("--payload", payload, "UDP payload bytes")->check(CLI::Range(16u, 1472u));
    app.add_option("--echo-cpu", echo_cpu, "CPU of the echo thread");
    app.add_option("--client-cpu", client_cpu, "CPU of the client");
    app.add_option("--warmup-ms", warmup_ms, "sent, not timed")->check(CLI::Range(0u, 60000u));
    app.add_option("--drain-ms", drain_ms, "wait for the last echoes")->check(CLI::Range(0u, 10000u));
    app.add_option("--port", port, "the echo's UDP port on 127.0.0.1");
    CLI11_PARSE(app, argc, argv);

    const int echo_socket = bound_socket(port);
    const int client = bound_socket(0);
    if (echo_socket < 0 || client < 0) {
        std::perror("ringsock-bench-kernel-udp-echo: socket");
        return 1;
    }
    timeval tick{0, 100000}; // the echo thread rechecks `stop` every 100 ms
    setsockopt(echo_socket, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
    std::atomic<bool> stop{false};
    std::atomic<bool> echo_pinned{true};
    std::thread echo([&] {
        echo_pinned = ringsock::bench::pin_thread(echo_cpu);
        char buffer[2048];
        while (!stop.load(std::memory_order_relaxed)) {
            sockaddr_in from{};
            socklen_t len = sizeof(from);
            const ssize_t n =
                recvfrom(echo_socket, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n > 0)
                sendto(echo_socket, buffer, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
    });
    if (!ringsock::bench::pin_thread(client_cpu)) {
        std::fprintf(stderr, "ringsock-bench-kernel-udp-echo: cannot pin to CPU %u\n", client_cpu);
        stop = true;
        echo.join();
        return 1;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    ringsock::dataplane::LatencyHistogram round_trips;
    std::vector<char> out(payload, 0);
    char in[2048];
    const int64_t start = now_ns();
    const int64_t warm_end = start + static_cast<int64_t>(warmup_ms) * 1000000;
    const int64_t send_end = warm_end + static_cast<int64_t>(seconds * 1e9);
    const int64_t drain_end = send_end + static_cast<int64_t>(drain_ms) * 1000000;
    uint64_t sent = 0, measured_from = 0, echoed = 0;
    bool warm = false;
    for (int64_t now = now_ns(); now < drain_end; now = now_ns()) {
        if (!warm && now >= warm_end) {
            warm = true;
            measured_from = sent;
        }
        if (now < send_end) {
            const auto due = static_cast<uint64_t>(static_cast<double>(now - start) * rate / 1e9);
            for (unsigned burst = 0; sent < due && burst < 64; ++burst) {
                const Stamp s{sent, now_ns()};
                std::memcpy(out.data(), &s, sizeof(s));
                sendto(client, out.data(), out.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof(to));
                ++sent;
            }
        }
        for (;;) {
            const ssize_t n = recv(client, in, sizeof(in), MSG_DONTWAIT);
            if (n < static_cast<ssize_t>(sizeof(Stamp))) break;
            Stamp s;
            std::memcpy(&s, in, sizeof(s));
            if (!warm || s.sequence < measured_from) continue;
            ++echoed;
            round_trips.record(static_cast<uint64_t>(now_ns() - s.sent_ns));
        }
    }
    stop = true;
    echo.join();
    close(echo_socket);
    close(client);
    const uint64_t measured = sent - measured_from;
    std::printf("{\"kernel\":true,\"pinned\":%s,\"rate_pps\":%.0f,\"seconds\":%.3f,\"payload\":%u,\"sent\":%llu,"
                "\"measured\":%llu,\"echoed\":%llu,\"lost\":%llu,%s}\n",
                echo_pinned ? "true" : "false", rate, seconds, payload, static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(measured), static_cast<unsigned long long>(echoed),
                static_cast<unsigned long long>(measured - std::min(measured, echoed)),
                ringsock::dataplane::round_trip_fields(round_trips).c_str());
    return 0;
}
