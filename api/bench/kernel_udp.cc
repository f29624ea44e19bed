// ringsock-bench-kernel-udp: the Linux kernel's UDP receive rate on one
// core, the baseline scripts/bench/udp-rx sets ringsock beside. A sender
// thread pinned to --tx-cpu pushes --payload-byte datagrams to 127.0.0.1
// with sendmmsg in batches of 32; a receiver pinned to --rx-cpu takes them
// with recvmmsg in batches of 32 from a socket with a large receive buffer.
// After a ramp-up second, counts what the receiver got for --seconds and
// prints one JSON line: received per second, sent per second, and the
// kernel's receive-buffer drops (/proc/net/snmp RcvbufErrors) over the run.
// With --send-to, the sender alone, to an address out of a device that
// drops what it is given: scripts/bench/api-tx-ring's baseline.
//
// Loopback only; stops by itself after --seconds + 1. Exit codes: 2 a bad
// option, 1 a socket or pinning failure.
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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "pin_thread.hh"

namespace {

constexpr unsigned kBatch = 32;

// The kernel's count of UDP datagrams dropped for a full receive buffer.
uint64_t rcvbuf_errors()
{
    std::ifstream snmp("/proc/net/snmp");
    std::string header, values, line;
    while (std::getline(snmp, line)) {
        if (line.rfind("Udp:", 0) != 0) continue;
        if (header.empty())
            header = line;
        else
            values = line;
    }
    std::istringstream names(header), numbers(values);
    std::string name, number;
    while (names >> name && numbers >> number)
        if (name == "RcvbufErrors") return std::stoull(number);
    return 0;
}

// kBatch datagrams of `payload` bytes ('x'), for sendmmsg on a connected
// socket.
class SendBatch {
public:
    explicit SendBatch(unsigned payload) : data_(payload, 'x'), iov_{data_.data(), data_.size()}
    {
        for (auto& m : msgs_) {
            m.msg_hdr.msg_iov = &iov_;
            m.msg_hdr.msg_iovlen = 1;
        }
    }
    SendBatch(const SendBatch&) = delete;
    SendBatch& operator=(const SendBatch&) = delete;

    // sendmmsg's result: how many left, or -1.
    int send(int fd) { return sendmmsg(fd, msgs_, kBatch, 0); }

private:
    std::vector<char> data_;
    iovec iov_;
    mmsghdr msgs_[kBatch]{};
};

// --send-to: the sender alone, to an address routed out of a device that
// drops what it is given (the script's dummy interface), so that the rate
// is the kernel's send path with no receiver's work in it (on loopback the
// sender's own softirq delivers each datagram). IPv4 or IPv6. 0, or 1
// after saying why.
int send_only(const std::string& address, uint16_t port, unsigned payload, unsigned seconds, unsigned cpu)
{
    sockaddr_storage to{};
    socklen_t to_length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&to);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&to);
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        to_length = sizeof(*v4);
    } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        to_length = sizeof(*v6);
    } else {
        std::fprintf(stderr, "ringsock-bench-kernel-udp: --send-to %s is not an IPv4 or IPv6 address\n",
                     address.c_str());
        return 1;
    }
    const int tx = socket(to.ss_family, SOCK_DGRAM, 0);
    if (tx < 0 || connect(tx, reinterpret_cast<sockaddr*>(&to), to_length) != 0 || !ringsock::bench::pin_thread(cpu)) {
        std::fprintf(stderr, "ringsock-bench-kernel-udp: cannot send to %s on CPU %u: %s\n", address.c_str(), cpu,
                     std::strerror(errno));
        return 1;
    }
    SendBatch batch(payload);
    using Clock = std::chrono::steady_clock;
    const auto measure_from = Clock::now() + std::chrono::seconds(1);
    const auto end = measure_from + std::chrono::seconds(seconds);
    uint64_t sent = 0, failed = 0;
    bool measuring = false;
    for (auto now = Clock::now(); now < end; now = Clock::now()) {
        if (!measuring && now >= measure_from) {
            measuring = true;
            sent = 0;
            failed = 0;
        }
        const int n = batch.send(tx);
        if (n > 0)
            sent += static_cast<uint64_t>(n);
        else
            ++failed;
    }
    close(tx);
    std::printf("{\"payload\":%u,\"seconds\":%u,\"send_only\":1,\"tx_pps\":%.0f,\"failed_calls\":%llu}\n", payload,
                seconds, static_cast<double>(sent) / seconds, static_cast<unsigned long long>(failed));
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-bench-kernel-udp: the kernel's UDP receive rate with recvmmsg on loopback"};
    unsigned payload = 18; // a 64-byte Ethernet frame's UDP payload
    unsigned seconds = 5;
    unsigned rx_cpu = 1;
    unsigned tx_cpu = 0;
    uint16_t port = 9;
    app.add_option("--payload", payload, "UDP payload bytes")->check(CLI::Range(1, 65507));
    app.add_option("--seconds", seconds, "measured seconds (after one of ramp-up)")->check(CLI::Range(1, 600));
    app.add_option("--rx-cpu", rx_cpu, "CPU of the receiving thread");
    app.add_option("--tx-cpu", tx_cpu, "CPU of the sending thread");
    app.add_option("--port", port, "UDP port on 127.0.0.1");
    std::string send_to;
    app.add_option("--send-to", send_to,
                   "send only, from --tx-cpu, to this IPv4 or IPv6 address (routed out of a device that drops "
                   "what it is sent): the kernel's send path alone");
    CLI11_PARSE(app, argc, argv);
    if (!send_to.empty()) return send_only(send_to, port, payload, seconds, tx_cpu);

    const int rx = socket(AF_INET, SOCK_DGRAM, 0);
    const int tx = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rcvbuf = 32 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)); // root: past rmem_max
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    const timeval tick{0, 100000}; // the receiver looks at the clock at least this often
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
    if (rx < 0 || tx < 0 || bind(rx, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
        connect(tx, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
        std::fprintf(stderr, "ringsock-bench-kernel-udp: cannot set up 127.0.0.1:%u: %s\n", port, std::strerror(errno));
        return 1;
    }

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> pinned{true};
    std::thread sender([&] {
        if (!ringsock::bench::pin_thread(tx_cpu)) pinned = false;
        SendBatch batch(payload);
        while (!stop.load(std::memory_order_relaxed)) {
            const int n = batch.send(tx);
            if (n > 0) sent.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        }
    });
    if (!ringsock::bench::pin_thread(rx_cpu)) pinned = false;

    std::vector<char> buffers(kBatch * 2048);
    iovec iovs[kBatch];
    mmsghdr msgs[kBatch]{};
    for (unsigned i = 0; i < kBatch; ++i) {
        iovs[i] = {buffers.data() + i * 2048, 2048};
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto measure_from = start + std::chrono::seconds(1);
    const auto end = measure_from + std::chrono::seconds(seconds);
    uint64_t received = 0, sent_at_start = 0, drops_at_start = 0;
    bool measuring = false;
    for (auto now = Clock::now(); now < end; now = Clock::now()) {
        if (!measuring && now >= measure_from) {
            measuring = true;
            received = 0;
            sent_at_start = sent.load();
            drops_at_start = rcvbuf_errors();
        }
        const int n = recvmmsg(rx, msgs, kBatch, MSG_WAITFORONE, nullptr);
        if (n > 0) received += static_cast<uint64_t>(n);
    }
    const uint64_t sent_total = sent.load() - sent_at_start;
    const uint64_t drops = rcvbuf_errors() - drops_at_start;
    stop = true;
    sender.join();
    close(rx);
    close(tx);
    if (!pinned) {
        std::fprintf(stderr, "ringsock-bench-kernel-udp: could not pin to CPUs %u and %u\n", rx_cpu, tx_cpu);
        return 1;
    }
    std::printf("{\"payload\":%u,\"seconds\":%u,\"rx_pps\":%.0f,\"tx_pps\":%.0f,\"rcvbuf_drops\":%llu}\n", payload,
                seconds, static_cast<double>(received) / seconds, static_cast<double>(sent_total) / seconds,
                static_cast<unsigned long long>(drops));
    return 0;
}
