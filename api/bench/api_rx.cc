// ringsock-bench-api-rx: the Winsock receive path's rate with a core per
// side and nothing else on either. The port is net_ring on two rings made in
// this process (tests/support/ring_peer.hh); the main thread, on lcore 0, is
// both the generator and the application (with --app-thread, a thread the
// application made does both, on the same CPU), the engine runs on lcore 1.
// On a two-CPU machine this is the one layout where neither side waits for
// the scheduler (over memif the generator, testpmd, takes a CPU of its own).
//
// Two phases, the same frames, one run:
//   ceiling  datagrams to a socket that never reads and queues nothing
//            (SO_RCVBUF 0): the engine receives, classifies, checks the
//            checksum, finds the socket and frees each one (counted as
//            rcvbuf_drops). What the engine does without the API.
//   api      the same datagrams to a socket with --depth overlapped
//            WSARecvFrom posted through a completion port, each completion
//            reaped with GetQueuedCompletionStatusEx and its receive posted
//            again (with --skip-on-success, receives that complete at once
//            are handled where they return, as Windows servers do in the
//            FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode).
// With --reapers N, N-1 more threads (on CPUs 2, 3, ... or --reaper-cpus)
// reap the same completion port and repost what they reaped, as an IOCP
// server's thread pool does; the result says when one had to share a CPU.
// The generator keeps at most --window datagrams beyond what the phase has
// consumed (frames the engine took off the ring, or completions reaped), so
// the api phase measures what the whole path sustains, not how fast a queue
// overflows. Prints one JSON line: each phase's rate, the ratio, the share
// of the main thread spent generating, the reaping threads' nanoseconds per
// datagram in the API (reaps that found completions, and the reposts), and
// the datagrams lost (offered, not completed, after a drain; must be 0).
//
// In-process; stops by itself after 2 x (--seconds + warm-up). Exit codes:
// 2 a bad option or profile, 1 the stack or the peer would not start, 3 a
// datagram lost.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <x86intrin.h>

#include <CLI/CLI.hpp>

#include "api/bench/pin_thread.hh"
#include "tests/support/ring_peer.hh"
#include "tests/support/ring_peer_startup.hh"

namespace {

namespace peer = ringsock::testing;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kSourcePort = 40000;
constexpr uint16_t kReadPort = 9;     // the api phase's socket
constexpr uint16_t kIgnoredPort = 10; // the ceiling phase's socket: never read, SO_RCVBUF 0
constexpr unsigned kGenerateBurst = 64;
constexpr unsigned kClockEvery = 64; // loop turns between clock reads (clock_gettime costs ~25 ns here)

double seconds_between(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double>(b - a).count();
}

// A phase's clock: `warm_up` seconds unmeasured, then `seconds` measured.
// Time inside the generator and the API is summed in TSC cycles, converted
// at the end with the rate the phase itself saw.
class PhaseClock {
public:
    PhaseClock(double seconds, double warm_up) : seconds_(seconds), warm_up_(warm_up), start_(Clock::now()) {}

    // Call every loop turn; true once the measured time is over. `on_start`
    // runs once, when measuring begins.
    template <typename OnStart>
    bool over(OnStart&& on_start)
    {
        if (++turns_ % kClockEvery != 0) return false;
        const auto now = Clock::now();
        if (!measuring_ && seconds_between(start_, now) >= warm_up_) {
            measuring_ = true;
            measured_from_ = now;
            tsc_from_ = __rdtsc();
            generate_cycles = 0;
            on_start();
        }
        return measuring_ && seconds_between(measured_from_, now) >= seconds_;
    }
    double measured_seconds() const { return seconds_between(measured_from_, Clock::now()); }
    double cycles_to_seconds(uint64_t cycles) const
    {
        const double hz = static_cast<double>(__rdtsc() - tsc_from_) / measured_seconds();
        return hz > 0 ? static_cast<double>(cycles) / hz : 0;
    }

    uint64_t generate_cycles = 0;

private:
    double seconds_;
    double warm_up_;
    Clock::time_point start_;
    Clock::time_point measured_from_;
    uint64_t tsc_from_ = 0;
    uint64_t turns_ = 0;
    bool measuring_ = false;
};

struct Phase {
    uint64_t offered = 0;  // put on the ring
    uint64_t consumed = 0; // taken off the ring (ceiling) or completed (api)
    double seconds = 0;
    double generate_seconds = 0; // of the main thread's time, spent generating
    double reap_seconds = 0;     // in reaps that found completions, reposting included, all reapers
    double rate() const { return seconds > 0 ? static_cast<double>(consumed) / seconds : 0; }
};

// Offers one burst to `port` if the window allows.
void generate(Phase& phase, PhaseClock& clock, uint64_t consumed_so_far, unsigned window, std::size_t payload,
              uint16_t port)
{
    if (phase.offered - consumed_so_far + kGenerateBurst > window) return;
    const uint64_t t = __rdtsc();
    phase.offered += peer::send_udp_copies(kSourcePort, port, payload, kGenerateBurst);
    clock.generate_cycles += __rdtsc() - t;
}

// Datagrams to a bound socket that never reads and queues nothing
// (SO_RCVBUF 0): the engine takes each off the ring, classifies it, checks
// its checksum, finds the socket and drops it (counted). Consumed when the
// engine took it off the ring.
Phase ceiling_phase(double seconds, double warm_up, unsigned window, std::size_t payload)
{
    Phase phase;
    PhaseClock clock(seconds, warm_up);
    uint64_t consumed_at_start = 0;
    const auto consumed = [&] { return phase.offered - peer::pending_received(); };
    while (!clock.over([&] { consumed_at_start = consumed(); }))
        generate(phase, clock, consumed(), window, payload, kIgnoredPort);
    phase.seconds = clock.measured_seconds();
    phase.consumed = consumed() - consumed_at_start;
    phase.generate_seconds = clock.cycles_to_seconds(clock.generate_cycles);
    return phase;
}

struct Receive {
    WSAOVERLAPPED ov{};
    char buffer[2048];
    sockaddr_in from{};
    int from_len = sizeof(sockaddr_in);
    DWORD flags = 0;
};

// What one reaping thread did, on a line of its own; only that thread
// writes it, the main thread reads it.
struct alignas(64) Tally {
    std::atomic<uint64_t> completed{0};
    std::atomic<uint64_t> reap_cycles{0}; // in reaps that found completions, reposting included
    int64_t posted_minus_reaped = 0;      // read after the thread ended
    std::atomic<int> error{0};            // a WSARecvFrom that failed, with its error

    void add_completed(uint64_t n)
    {
        completed.store(completed.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

// Posts `r`. On a socket that skips the port on success, a receive that
// completes at once is counted in `tally` here and posted again, until one
// is left pending (as a Windows server using that mode does). False (the
// error in `tally`) when WSARecvFrom failed.
bool post(SOCKET s, Receive& r, bool skip_on_success, Tally& tally)
{
    for (;;) {
        r.ov = {};
        r.from_len = sizeof(r.from);
        r.flags = 0;
        WSABUF b{sizeof(r.buffer), r.buffer};
        const int rc =
            WSARecvFrom(s, &b, 1, nullptr, &r.flags, reinterpret_cast<sockaddr*>(&r.from), &r.from_len, &r.ov, nullptr);
        if (rc != 0 && WSAGetLastError() != WSA_IO_PENDING) {
            tally.error.store(WSAGetLastError());
            return false;
        }
        if (rc != 0 || !skip_on_success) break; // pending, or its completion still goes to the port
        tally.add_completed(1);
    }
    ++tally.posted_minus_reaped;
    return true;
}

// One GetQueuedCompletionStatusEx: counts what it reaped and posts each
// receive again.
void reap(HANDLE port, SOCKET s, bool skip_on_success, Tally& tally, DWORD timeout_ms)
{
    OVERLAPPED_ENTRY entries[64];
    const uint64_t t = __rdtsc();
    ULONG removed = 0;
    if (!GetQueuedCompletionStatusEx(port, entries, 64, &removed, timeout_ms, FALSE)) return;
    tally.add_completed(removed);
    tally.posted_minus_reaped -= removed;
    for (ULONG i = 0; i < removed; ++i)
        post(s, *reinterpret_cast<Receive*>(entries[i].lpOverlapped), skip_on_success, tally);
    tally.reap_cycles.store(tally.reap_cycles.load(std::memory_order_relaxed) + __rdtsc() - t,
                            std::memory_order_relaxed);
}

// Receives lent to the stack. However the phase ends, the socket is closed
// and every receive still out is collected before its buffer goes; one that
// never comes back (a lost completion) is reported in `error`, and the
// buffers are then left allocated rather than freed under the stack.
struct LentReceives {
    SOCKET s;
    HANDLE port;
    std::string& error;
    std::vector<Receive> receives;
    int64_t out = 0; // posted, completion not yet reaped (summed over the reapers when they end)

    ~LentReceives()
    {
        closesocket(s);
        OVERLAPPED_ENTRY entries[64];
        while (out > 0) {
            ULONG removed = 0;
            if (!GetQueuedCompletionStatusEx(port, entries, 64, &removed, 2000, FALSE) && removed == 0) break;
            out -= removed;
        }
        if (out == 0) return;
        error = "closesocket left " + std::to_string(out) + " receives uncompleted";
        new std::vector<Receive>(std::move(receives)); // moves the storage, not the elements: still lent
    }
};

// The reapers besides the phase's own thread, each on its CPU, reaping and
// reposting until stopped. Stops and joins them when it goes (before the
// receives they repost are collected), adding what they left out to `lent`.
class ExtraReapers {
public:
    ExtraReapers(LentReceives& lent, std::vector<Tally>& tallies, const std::vector<unsigned>& cpus,
                 bool skip_on_success)
        : lent_(lent), tallies_(tallies)
    {
        for (std::size_t i = 1; i < tallies.size(); ++i) {
            threads_.emplace_back([this, &lent, &tallies, cpu = cpus[i - 1], i, skip_on_success] {
                ringsock::bench::pin_thread(cpu);
                while (!stop_.load(std::memory_order_relaxed))
                    reap(lent.port, lent.s, skip_on_success, tallies[i], 10);
            });
        }
    }
    ~ExtraReapers()
    {
        stop_.store(true);
        for (std::thread& t : threads_)
            t.join();
        for (std::size_t i = 1; i < tallies_.size(); ++i)
            lent_.out += tallies_[i].posted_minus_reaped;
    }

private:
    LentReceives& lent_;
    std::vector<Tally>& tallies_;
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

// The same datagrams to a socket with `depth` receives posted; consumed
// when reaped from the completion port, by this thread and one more per
// entry of `reaper_cpus`. `lost` is what was offered and never completed,
// after a drain. Closes `s`.
Phase api_phase(SOCKET s, HANDLE port, unsigned depth, bool skip_on_success, const std::vector<unsigned>& reaper_cpus,
                double seconds, double warm_up, unsigned window, std::size_t payload, uint64_t& lost,
                std::string& error)
{
    LentReceives lent{s, port, error, std::vector<Receive>(depth)};
    std::vector<Tally> tallies(1 + reaper_cpus.size());
    Tally& own = tallies[0];
    const auto completed = [&] {
        uint64_t sum = 0;
        for (const Tally& t : tallies)
            sum += t.completed.load(std::memory_order_relaxed);
        return sum;
    };
    const auto failed = [&] {
        for (const Tally& t : tallies)
            if (int e = t.error.load(); e != 0) {
                error = "WSARecvFrom failed: " + std::to_string(e);
                return true;
            }
        return false;
    };
    for (Receive& r : lent.receives)
        if (!post(s, r, skip_on_success, own)) {
            lent.out = own.posted_minus_reaped;
            failed();
            return {};
        }
    Phase phase;
    uint64_t completed_at_start = 0;
    uint64_t extra_cycles_at_start = 0;
    const auto extra_cycles = [&] {
        uint64_t sum = 0;
        for (std::size_t i = 1; i < tallies.size(); ++i)
            sum += tallies[i].reap_cycles.load(std::memory_order_relaxed);
        return sum;
    };
    {
        ExtraReapers extra(lent, tallies, reaper_cpus, skip_on_success);
        PhaseClock clock(seconds, warm_up);
        uint64_t own_cycles_at_start = 0;
        while (!clock.over([&] {
            completed_at_start = completed();
            own_cycles_at_start = own.reap_cycles.load(std::memory_order_relaxed);
            extra_cycles_at_start = extra_cycles();
        })) {
            generate(phase, clock, completed(), window, payload, kReadPort);
            reap(port, s, skip_on_success, own, 0);
            if (failed()) break;
        }
        phase.seconds = clock.measured_seconds();
        phase.consumed = completed() - completed_at_start;
        phase.generate_seconds = clock.cycles_to_seconds(clock.generate_cycles);
        phase.reap_seconds = clock.cycles_to_seconds(own.reap_cycles.load() - own_cycles_at_start + extra_cycles() -
                                                     extra_cycles_at_start);
        // Drain: everything offered must complete (the window is far below
        // SO_RCVBUF, so nothing may have been dropped).
        const auto drain_until = Clock::now() + std::chrono::seconds(2);
        while (error.empty() && completed() < phase.offered && Clock::now() < drain_until)
            reap(port, s, skip_on_success, own, 10);
    }
    lent.out += own.posted_minus_reaped;
    if (error.empty()) failed();
    lost = phase.offered - completed();
    return phase;
}

// An overlapped UDP socket on `port` with SO_RCVBUF `rcvbuf`, or
// INVALID_SOCKET after saying why.
SOCKET bound_socket(uint16_t port, int rcvbuf)
{
    SOCKET s = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    if (s == INVALID_SOCKET ||
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&rcvbuf), sizeof(rcvbuf)) != 0 ||
        bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
        std::fprintf(stderr, "ringsock-bench-api-rx: cannot bind UDP %u: %d\n", port, WSAGetLastError());
        return INVALID_SOCKET;
    }
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-bench-api-rx: the Winsock receive path with a core per side (in-process net_ring)"};
    std::string profile = "drivers_config/ring.toml";
    double seconds = 5;
    double warm_up = 1;
    unsigned depth = 256;
    unsigned window = 1024;
    unsigned frame = 64;
    bool skip_on_success = false;
    bool app_thread = false;
    bool unregistered = false;
    unsigned reapers = 1;
    std::vector<unsigned> reaper_cpus;
    app.add_option("--profile", profile, "ring.toml (its port.device is replaced by the in-process rings)");
    app.add_option("--seconds", seconds, "measured seconds per phase")->check(CLI::Range(0.1, 60.0));
    app.add_option("--warm-up", warm_up, "seconds per phase before counting")->check(CLI::Range(0.0, 10.0));
    app.add_option("--depth", depth, "overlapped receives posted")->check(CLI::Range(1u, 4096u));
    // The api phase's socket (SO_RCVBUF 16 MiB) queues far more than the
    // widest window, so the phase measures the path, never a queue's overflow.
    app.add_option("--window", window, "datagrams offered beyond those consumed")->check(CLI::Range(128u, 1024u));
    app.add_option("--frame", frame,
                   "frame bytes on the ring, as testpmd's --txpkts counts them (64: a 22-byte payload)")
        ->check(CLI::Range(42u, 1514u));
    app.add_flag("--skip-on-success", skip_on_success,
                 "FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: receives that complete at once bypass the port");
    app.add_flag("--app-thread", app_thread,
                 "run the api phase on a thread the application made (CPU 0, not an EAL lcore), as an "
                 "application with a thread per engine does, instead of the thread that started the stack");
    app.add_flag("--unregistered", unregistered,
                 "eal.register_application_threads = false: with --app-thread, the application's thread frees "
                 "its mbufs without a cache of its own");
    app.add_option("--reapers", reapers,
                   "threads reaping the completion port in the api phase: the generating thread and N-1 more")
        ->check(CLI::Range(1u, 16u));
    app.add_option("--reaper-cpus", reaper_cpus, "CPUs of the N-1 more reapers (default 2, 3, ...)")->delimiter(',');
    std::vector<std::string> extra_settings;
    app.add_option("--set", extra_settings, "section.key=value profile override (repeatable), applied last");
    CLI11_PARSE(app, argc, argv);
    const std::size_t payload = frame - 42;
    if (reaper_cpus.empty())
        for (unsigned i = 1; i < reapers; ++i)
            reaper_cpus.push_back(1 + i);
    if (reaper_cpus.size() != reapers - 1) {
        std::fprintf(stderr, "ringsock-bench-api-rx: --reaper-cpus must name %u CPU(s), one per extra reaper\n",
                     reapers - 1);
        return 2;
    }
    // A reaper beside the engine (CPU 1) or the generator (CPU 0), or on a
    // CPU this machine lacks (the thread then stays where it was started),
    // makes the api rate a floor: say so in the result.
    bool reapers_share = false;
    for (unsigned cpu : reaper_cpus)
        reapers_share |= cpu < 2 || cpu >= std::thread::hardware_concurrency();

    std::vector<std::string> settings{"eal.lcores=0-1"};
    if (unregistered) settings.emplace_back("eal.register_application_threads=false");
    settings.insert(settings.end(), extra_settings.begin(), extra_settings.end());
    if (const int failed = peer::start_on_ring_peer("ringsock-bench-api-rx", profile, 1, settings)) return failed;
    SOCKET ignored = bound_socket(kIgnoredPort, 0);
    SOCKET s = bound_socket(kReadPort, 16 << 20);
    if (ignored == INVALID_SOCKET || s == INVALID_SOCKET) return 1;
    const Phase ceiling = ceiling_phase(seconds, warm_up, window, payload);
    closesocket(ignored);

    HANDLE port = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), nullptr, 1, 0);
    uint64_t lost = 0;
    std::string error;
    if (skip_on_success &&
        !SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)) {
        std::fprintf(stderr, "ringsock-bench-api-rx: SetFileCompletionNotificationModes failed\n");
        return 1;
    }
    Phase api;
    const auto run_api_phase = [&] {
        api = api_phase(s, port, depth, skip_on_success, reaper_cpus, seconds, warm_up, window, payload, lost, error);
    };
    if (app_thread) {
        std::thread([&] {
            ringsock::bench::pin_thread(0);
            run_api_phase();
        }).join();
    } else {
        run_api_phase();
    }
    if (!error.empty()) {
        std::fprintf(stderr, "ringsock-bench-api-rx: %s\n", error.c_str());
        return 1;
    }
    CloseHandle(port);
    peer::drain_sent();
    WSACleanup();

    const double api_thread_ns = api.consumed > 0 ? api.reap_seconds * 1e9 / static_cast<double>(api.consumed) : 0;
    std::printf("{\"frame\":%u,\"depth\":%u,\"skip_on_success\":%d,\"window\":%u,\"reapers\":%u,"
                "\"reapers_share_cpus\":%d,\"ceiling_pps\":%.0f,"
                "\"api_pps\":%.0f,"
                "\"ratio\":%.4f,\"ceiling_generate_share\":%.3f,\"api_generate_share\":%.3f,"
                "\"api_thread_ns_per_datagram\":%.1f,\"offered\":%llu,\"lost\":%llu}\n",
                frame, depth, skip_on_success ? 1 : 0, window, reapers, reapers_share ? 1 : 0, ceiling.rate(),
                api.rate(), ceiling.rate() > 0 ? api.rate() / ceiling.rate() : 0,
                ceiling.seconds > 0 ? ceiling.generate_seconds / ceiling.seconds : 0,
                api.seconds > 0 ? api.generate_seconds / api.seconds : 0, api_thread_ns,
                static_cast<unsigned long long>(api.offered), static_cast<unsigned long long>(lost));
    return lost == 0 ? 0 : 3;
}
