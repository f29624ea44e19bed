// ringsock-bench-api-tx: the Winsock send path's rate with a core per side.
// The port is net_ring on rings made in this process (tests/support/
// ring_peer.hh); the main thread, on lcore 0, is the application and the
// wire: it keeps --depth overlapped WSASendTo to the peer outstanding
// through a completion port, posts each again as it is reaped, and takes
// what the engine (lcore 1) put on the transmit ring off it, answering the
// stack's ARP request or neighbour solicitation for the peer as a host on
// the link would, so that the sends resolve and take the fast path.
//
// After --warm-up seconds, counts for --seconds the sends completed and the
// datagrams to the peer that left on the ring; then stops posting, waits for
// every outstanding send and takes what is left on the ring. Every send that
// completed must have left as a datagram (the program fails otherwise: a
// completed send lost). Prints one JSON line: the family, frame size, depth,
// sends completed per second, datagrams on the wire per second, completions
// per reap that found any, the share of the main thread spent taking frames
// off the ring (the wire's cost, which a NIC would not charge the
// application), and the datagrams lost.
//
// In-process; stops by itself after --warm-up + --seconds + a few seconds of
// resolution and drain. Exit codes: 2 a bad option or profile, 1 the stack
// or the peer would not start or a send failed, 3 a completed send that never
// left.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <x86intrin.h>

#include <CLI/CLI.hpp>

#include "tests/support/ring_peer.hh"
#include "tests/support/ring_peer_startup.hh"

namespace {

namespace peer = ringsock::testing;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kSourcePort = 40000;
constexpr uint16_t kPeerPort = 9;
constexpr unsigned kClockEvery = 64; // loop turns between clock reads

double seconds_since(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Send {
    WSAOVERLAPPED ov{};
    std::vector<char> payload;
};

// The socket, its port and its peer; counts what was sent and what left.
class Sender {
public:
    Sender(int family, std::size_t payload, unsigned depth) : family_(family), sends_(depth)
    {
        for (Send& send : sends_)
            send.payload.assign(payload, 'x');
    }
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;
    ~Sender()
    {
        if (s_ != INVALID_SOCKET) closesocket(s_);
        if (port_ != nullptr) CloseHandle(port_);
    }

    // The socket bound and associated, the peer's address read. An empty
    // string, or why not.
    std::string open()
    {
        s_ = WSASocket(family_, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (s_ == INVALID_SOCKET) return "WSASocket failed: " + std::to_string(WSAGetLastError());
        sockaddr_storage local{};
        int length = 0;
        if (family_ == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(&local);
            in->sin_family = AF_INET;
            in->sin_port = htons(kSourcePort);
            auto* to = reinterpret_cast<sockaddr_in*>(&to_);
            to->sin_family = AF_INET;
            to->sin_port = htons(kPeerPort);
            inet_pton(AF_INET, peer::kRingPeerIpv4, &to->sin_addr);
            length = sizeof(sockaddr_in);
        } else {
            auto* in = reinterpret_cast<sockaddr_in6*>(&local);
            in->sin6_family = AF_INET6;
            in->sin6_port = htons(kSourcePort);
            auto* to = reinterpret_cast<sockaddr_in6*>(&to_);
            to->sin6_family = AF_INET6;
            to->sin6_port = htons(kPeerPort);
            inet_pton(AF_INET6, peer::kRingPeerIpv6, &to->sin6_addr);
            length = sizeof(sockaddr_in6);
        }
        to_length_ = length;
        if (bind(s_, reinterpret_cast<sockaddr*>(&local), length) != 0)
            return "bind failed: " + std::to_string(WSAGetLastError());
        port_ = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s_), nullptr, 1, 0);
        if (port_ == nullptr) return "CreateIoCompletionPort failed";
        return {};
    }

    // Posts `send`; false (the error kept) when WSASendTo failed.
    bool post(Send& send)
    {
        send.ov = {};
        WSABUF buffer{static_cast<ULONG>(send.payload.size()), send.payload.data()};
        if (WSASendTo(s_, &buffer, 1, nullptr, 0, reinterpret_cast<const sockaddr*>(&to_), to_length_, &send.ov,
                      nullptr) != 0 &&
            WSAGetLastError() != WSA_IO_PENDING) {
            error_ = "WSASendTo failed: " + std::to_string(WSAGetLastError());
            return false;
        }
        ++outstanding_;
        return true;
    }

    // One GetQueuedCompletionStatusEx: counts the sends it reaped and, if
    // `repost`, posts each again. False on a send that failed.
    bool reap(bool repost, DWORD timeout_ms)
    {
        OVERLAPPED_ENTRY entries[64];
        ULONG removed = 0;
        if (!GetQueuedCompletionStatusEx(port_, entries, 64, &removed, timeout_ms, FALSE)) return true;
        ++reaps;
        for (ULONG i = 0; i < removed; ++i) {
            auto* send = reinterpret_cast<Send*>(entries[i].lpOverlapped);
            --outstanding_;
            if (entries[i].dwNumberOfBytesTransferred != send->payload.size()) {
                DWORD bytes = 0, flags = 0;
                WSAGetOverlappedResult(s_, &send->ov, &bytes, FALSE, &flags);
                error_ = "a send completed with " + std::to_string(entries[i].dwNumberOfBytesTransferred) +
                         " bytes, error " + std::to_string(WSAGetLastError());
                return false;
            }
            ++completed;
            if (repost && !post(*send)) return false;
        }
        return true;
    }

    // Takes what the engine sent off the ring, answering neighbour requests.
    void take_from_wire()
    {
        const uint64_t t = __rdtsc();
        on_wire += peer::drain_answering_neighbours().udp_to_peer;
        wire_cycles += __rdtsc() - t;
    }

    std::vector<Send>& sends() { return sends_; }
    unsigned outstanding() const { return outstanding_; }
    const std::string& error() const { return error_; }

    uint64_t completed = 0;
    uint64_t reaps = 0; // that found completions
    uint64_t on_wire = 0;
    uint64_t wire_cycles = 0;

private:
    int family_;
    SOCKET s_ = INVALID_SOCKET;
    HANDLE port_ = nullptr;
    sockaddr_storage to_{};
    int to_length_ = 0;
    std::vector<Send> sends_;
    unsigned outstanding_ = 0;
    std::string error_;
};

struct Result {
    double seconds = 0;
    uint64_t completed = 0; // in the measured seconds
    uint64_t reaps = 0;     // in the measured seconds, that found completions
    uint64_t on_wire = 0;   // in the measured seconds
    double wire_share = 0;  // of the main thread's measured time
    uint64_t lost = 0;      // completed over the whole run, never on the wire
};

// One send until its datagram is seen on the wire: the stack asks for the
// peer's MAC and this answers. Empty, or why not.
std::string resolve(Sender& sender)
{
    if (!sender.post(sender.sends().front())) return sender.error();
    const auto start = Clock::now();
    while (sender.on_wire == 0 || sender.outstanding() != 0) {
        if (!sender.reap(false, 0)) return sender.error();
        sender.take_from_wire();
        if (seconds_since(start) > 3) return "the first datagram never left: the peer's address did not resolve";
    }
    return {};
}

std::string run(Sender& sender, double seconds, double warm_up, Result& result)
{
    for (Send& send : sender.sends())
        if (!sender.post(send)) return sender.error();
    const auto start = Clock::now();
    Clock::time_point measured_from;
    uint64_t completed_from = 0, reaps_from = 0, wire_from = 0, wire_cycles_from = 0, tsc_from = 0;
    bool measuring = false;
    for (uint64_t turn = 1;; ++turn) {
        if (!sender.reap(true, 0)) return sender.error();
        sender.take_from_wire();
        if (turn % kClockEvery != 0) continue;
        const double elapsed = seconds_since(start);
        if (!measuring && elapsed >= warm_up) {
            measuring = true;
            measured_from = Clock::now();
            completed_from = sender.completed;
            reaps_from = sender.reaps;
            wire_from = sender.on_wire;
            wire_cycles_from = sender.wire_cycles;
            tsc_from = __rdtsc();
        }
        if (measuring && seconds_since(measured_from) >= seconds) break;
    }
    result.seconds = seconds_since(measured_from);
    result.completed = sender.completed - completed_from;
    result.reaps = sender.reaps - reaps_from;
    result.on_wire = sender.on_wire - wire_from;
    const uint64_t cycles = __rdtsc() - tsc_from;
    result.wire_share = cycles > 0 ? static_cast<double>(sender.wire_cycles - wire_cycles_from) / cycles : 0;
    // The rest: every outstanding send back, every datagram off the ring.
    const auto drain_from = Clock::now();
    while (sender.outstanding() != 0 || sender.on_wire < sender.completed) {
        if (!sender.reap(false, 1)) return sender.error();
        sender.take_from_wire();
        if (seconds_since(drain_from) > 3) break;
    }
    if (sender.outstanding() != 0)
        return std::to_string(sender.outstanding()) + " sends still outstanding 3 s after the last was posted";
    result.lost = sender.completed > sender.on_wire ? sender.completed - sender.on_wire : 0;
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-bench-api-tx: the Winsock send path with a core per side (in-process net_ring)"};
    std::string profile = "drivers_config/ring.toml";
    double seconds = 5;
    double warm_up = 1;
    unsigned depth = 256;
    unsigned frame = 64;
    int family = 4;
    app.add_option("--profile", profile, "ring.toml (its port.device is replaced by the in-process rings)");
    app.add_option("--seconds", seconds, "measured seconds")->check(CLI::Range(0.1, 60.0));
    app.add_option("--warm-up", warm_up, "seconds before counting")->check(CLI::Range(0.0, 10.0));
    app.add_option("--depth", depth, "overlapped sends outstanding")->check(CLI::Range(1u, 4096u));
    app.add_option("--frame", frame,
                   "frame bytes on the ring without FCS (64: a 22-byte payload over IPv4, 2 bytes over IPv6)")
        ->check(CLI::Range(64u, 1514u));
    app.add_option("--family", family, "4 (to 198.18.0.1) or 6 (to 2001:2::1)")->check(CLI::IsMember({4, 6}));
    std::vector<std::string> extra_settings;
    app.add_option("--set", extra_settings, "section.key=value profile override (repeatable), applied last");
    CLI11_PARSE(app, argc, argv);
    const std::size_t headers = 14 + (family == 4 ? 20 : 40) + 8;
    const std::size_t payload = frame - headers;

    std::vector<std::string> settings{"eal.lcores=0-1"};
    settings.insert(settings.end(), extra_settings.begin(), extra_settings.end());
    if (const int failed = peer::start_on_ring_peer("ringsock-bench-api-tx", profile, 1, settings)) return failed;
    Result result;
    std::string error;
    {
        Sender sender(family == 4 ? AF_INET : AF_INET6, payload, depth);
        error = sender.open();
        if (error.empty()) error = resolve(sender);
        if (error.empty()) error = run(sender, seconds, warm_up, result);
    }
    peer::drain_sent();
    WSACleanup();
    if (!error.empty()) {
        std::fprintf(stderr, "ringsock-bench-api-tx: %s\n", error.c_str());
        return 1;
    }
    const auto rate = [&](uint64_t n) { return result.seconds > 0 ? static_cast<double>(n) / result.seconds : 0; };
    std::printf("{\"family\":%d,\"frame\":%u,\"payload\":%zu,\"depth\":%u,\"sends_pps\":%.0f,\"wire_pps\":%.0f,"
                "\"per_reap\":%.1f,\"wire_share\":%.3f,\"lost\":%llu}\n",
                family, frame, payload, depth, rate(result.completed), rate(result.on_wire),
                result.reaps > 0 ? static_cast<double>(result.completed) / static_cast<double>(result.reaps) : 0,
                result.wire_share, static_cast<unsigned long long>(result.lost));
    return result.lost == 0 ? 0 : 3;
}
