// ringsock-bench-rings: what one completion costs through a CompletionRing
// (api/completion_ring.hh) between two pinned threads. The producer stands
// for an engine core: per burst it reserves room (as a post would), fills
// 32-byte completions and enqueues them; the consumer stands for a reaper
// and dequeues with dequeue_burst() ("sc") or dequeue_burst_mc() ("mc", one
// thread, so the CAS is uncontended). Prints, per mode and burst size, the
// median over --rounds of completions per second and ns per completion.
//
// Limits: one producer and one consumer; no DPDK; each round stops at
// --count completions or --seconds, whichever comes first. Exit codes: 2 a
// bad option, 1 a thread could not be pinned or the ring lost entries.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sched.h>

#include <CLI/CLI.hpp>

#include "api/completion_ring.hh"

namespace {

using ringsock::api::CompletionRing;
using Clock = std::chrono::steady_clock;

// The shape of a completion as the socket layer carries it.
struct BenchCompletion {
    void* overlapped;
    uint64_t key;
    uint32_t bytes;
    uint32_t status;
    uint32_t flags;
    uint32_t reserved;
};
static_assert(sizeof(BenchCompletion) == 32);

struct Options {
    uint64_t count = 10'000'000;
    double seconds = 2.0;
    uint32_t capacity = 1024;
    std::vector<uint32_t> bursts{1, 8, 32};
    std::string mode = "both";
    unsigned rounds = 3;
    int producer_cpu = 0;
    int consumer_cpu = 1;
    bool json = false;
};

struct Round {
    uint64_t completions = 0;
    double seconds = 0;
    uint64_t reserve_waits = 0; // try_reserve() refusals (ring full of admitted work)
    double rate() const { return seconds > 0 ? static_cast<double>(completions) / seconds : 0; }
};

inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Pins the calling thread; returns an error text, empty on success.
std::string pin_self(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE) return "CPU " + std::to_string(cpu) + " is out of range";
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(cpu), &set);
    const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) return "cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(rc);
    return {};
}

Round run_round(const Options& o, uint32_t burst, bool mc)
{
    CompletionRing<BenchCompletion> ring(o.capacity);
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::atomic<uint64_t> produced_final{UINT64_MAX}; // set when the producer stops
    std::string producer_error;
    std::string consumer_error;
    Round round;
    Clock::time_point end;
    uint64_t enqueue_refusals = 0;
    uint64_t bytes_sum = 0;

    std::thread producer([&] {
        producer_error = pin_self(o.producer_cpu);
        std::vector<BenchCompletion> batch(burst);
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire))
            cpu_relax();
        if (!producer_error.empty()) {
            produced_final.store(0, std::memory_order_release);
            return;
        }
        const auto deadline = Clock::now() + std::chrono::duration<double>(o.seconds);
        uint64_t produced = 0;
        uint64_t waits = 0;
        for (uint64_t bursts = 1; produced < o.count; ++bursts) {
            const auto n = static_cast<uint32_t>(std::min<uint64_t>(burst, o.count - produced));
            bool late = false;
            while (!ring.try_reserve(n)) {
                cpu_relax();
                if ((++waits & 1023) == 0 && Clock::now() > deadline) {
                    late = true;
                    break;
                }
            }
            if (late) break;
            for (uint32_t i = 0; i < n; ++i) {
                const uint64_t seq = produced + i;
                batch[i] = BenchCompletion{
                    reinterpret_cast<void*>(static_cast<uintptr_t>(seq)), seq, static_cast<uint32_t>(seq), 0, 0, 0};
            }
            const uint32_t queued = ring.enqueue_burst(batch.data(), n);
            if (queued != n) [[unlikely]] {
                enqueue_refusals += n - queued; // cannot happen with every entry reserved
                ring.unreserve(n - queued);
            }
            produced += queued;
            if ((bursts & 255) == 0 && Clock::now() > deadline) break;
        }
        round.reserve_waits = waits;
        produced_final.store(produced, std::memory_order_release);
    });

    std::thread consumer([&] {
        consumer_error = pin_self(o.consumer_cpu);
        std::vector<BenchCompletion> out(burst);
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire))
            cpu_relax();
        uint64_t received = 0;
        uint64_t sum = 0;
        for (;;) {
            const uint32_t n = mc ? ring.dequeue_burst_mc(out.data(), burst) : ring.dequeue_burst(out.data(), burst);
            if (n == 0) {
                if (received == produced_final.load(std::memory_order_acquire) || !consumer_error.empty()) break;
                cpu_relax();
                continue;
            }
            for (uint32_t i = 0; i < n; ++i)
                sum += out[i].bytes;
            received += n;
        }
        end = Clock::now();
        round.completions = received;
        bytes_sum = sum;
    });

    while (ready.load() != 2)
        std::this_thread::yield();
    const auto start = Clock::now();
    go.store(true, std::memory_order_release);
    producer.join();
    consumer.join();

    if (!producer_error.empty()) throw std::runtime_error("producer thread: " + producer_error);
    if (!consumer_error.empty()) throw std::runtime_error("consumer thread: " + consumer_error);
    uint64_t want = 0;
    for (uint64_t seq = 0; seq < round.completions; ++seq)
        want += static_cast<uint32_t>(seq);
    if (enqueue_refusals != 0 || bytes_sum != want)
        throw std::runtime_error("the ring lost or damaged completions (" + std::to_string(enqueue_refusals) +
                                 " reserved entries refused)");
    round.seconds = std::chrono::duration<double>(end - start).count();
    return round;
}

int bench(const Options& o)
{
    std::vector<bool> modes;
    if (o.mode != "mc") modes.push_back(false);
    if (o.mode != "sc") modes.push_back(true);
    if (!o.json)
        std::printf("ringsock-bench-rings: %u-entry ring, 32-byte completions, producer on CPU %d, consumer on CPU "
                    "%d, median of %u rounds\n",
                    o.capacity, o.producer_cpu, o.consumer_cpu, o.rounds);
    for (const bool mc : modes) {
        for (const uint32_t burst : o.bursts) {
            std::vector<Round> rounds;
            for (unsigned r = 0; r < o.rounds; ++r)
                rounds.push_back(run_round(o, burst, mc));
            std::sort(rounds.begin(), rounds.end(), [](const Round& a, const Round& b) { return a.rate() < b.rate(); });
            const Round& m = rounds[rounds.size() / 2];
            const double rate = m.rate();
            const double ns = rate > 0 ? 1e9 / rate : 0;
            const char* mode = mc ? "mc" : "sc";
            if (o.json)
                std::printf("{\"mode\":\"%s\",\"burst\":%u,\"capacity\":%u,\"completions\":%llu,\"seconds\":%.6f,"
                            "\"completions_per_s\":%.0f,\"ns_per_completion\":%.2f,\"reserve_waits\":%llu,"
                            "\"rounds\":%u}\n",
                            mode, burst, o.capacity, static_cast<unsigned long long>(m.completions), m.seconds, rate,
                            ns, static_cast<unsigned long long>(m.reserve_waits), o.rounds);
            else
                std::printf("  %s burst %4u: %8.2f M completions/s %8.2f ns/completion  (%llu in %.3f s)\n", mode,
                            burst, rate / 1e6, ns, static_cast<unsigned long long>(m.completions), m.seconds);
            std::fflush(stdout);
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"CompletionRing throughput between two pinned threads, with admission control"};
    Options o;
    app.add_option("--count,-n", o.count, "completions per round")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "at most this long per round")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--capacity,-c", o.capacity, "ring entries (a power of two)")->capture_default_str();
    app.add_option("--burst,-b", o.bursts, "burst sizes, comma-separated or repeated")
        ->delimiter(',')
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("--mode", o.mode, "sc (dequeue_burst), mc (dequeue_burst_mc) or both")
        ->check(CLI::IsMember({"sc", "mc", "both"}))
        ->capture_default_str();
    app.add_option("--rounds,-r", o.rounds, "rounds per line; the median is printed")
        ->check(CLI::Range(1u, 101u))
        ->capture_default_str();
    app.add_option("--producer-cpu", o.producer_cpu, "CPU for the producer thread")->capture_default_str();
    app.add_option("--consumer-cpu", o.consumer_cpu, "CPU for the consumer thread")->capture_default_str();
    app.add_flag("--json", o.json, "one JSON object per line instead of text");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (o.capacity == 0 || (o.capacity & (o.capacity - 1)) != 0) {
        std::fprintf(stderr, "ringsock-bench-rings: --capacity %u is not a power of two\n", o.capacity);
        return 2;
    }
    for (const uint32_t b : o.bursts) {
        if (b > o.capacity) {
            std::fprintf(stderr, "ringsock-bench-rings: --burst %u is larger than --capacity %u\n", b, o.capacity);
            return 2;
        }
    }
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) CPU_ZERO(&allowed);
    for (const auto& [name, cpu] :
         {std::pair{"--producer-cpu", o.producer_cpu}, std::pair{"--consumer-cpu", o.consumer_cpu}}) {
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
            std::fprintf(stderr, "ringsock-bench-rings: %s %d is not a CPU this process may run on\n", name, cpu);
            return 1;
        }
    }
    if (o.producer_cpu == o.consumer_cpu)
        std::fprintf(stderr,
                     "ringsock-bench-rings: producer and consumer share CPU %d: the figures measure the "
                     "scheduler\n",
                     o.producer_cpu);
    try {
        return bench(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringsock-bench-rings: %s\n", e.what());
        return 1;
    }
}
