// ringsock-udp-sink, the API's main job, end to end: testpmd sends exactly
// N UDP datagrams over memif (scripts/memif-gen --count), the sink receives
// them through WSARecvFrom and reaps them in each completion mode (and with
// three threads reaping one completion port, with a port-shared socket,
// completion port and thread per engine, and run to completion by a poller
// on each engine), and must count exactly N. Then the same over two memif
// queue pairs that testpmd fills itself (port.rss.mode "none": ringsock
// knows nothing of which queue a flow takes). Needs
// root and dpdk-testpmd; skipped with the reason otherwise.
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Finished;
using ringsock::testing::run_shell;

struct Reaping {
    const char* name;
    const char* arguments;
    const char* generator = ""; // memif-gen's extra options
    int queues = 1;             // memif queue pairs, each filled by testpmd
};

class UdpSink : public ::testing::TestWithParam<Reaping> {};

TEST_P(UdpSink, CountsEveryDatagramTheGeneratorSent)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (EAL)";
    if (run_shell("command -v dpdk-testpmd").exit_code != 0) GTEST_SKIP() << "dpdk-testpmd not installed";
    const std::string name = GetParam().name;
    const std::string src = ringsock::testing::source_root();
    const std::string tag = "rsudpsink" + std::to_string(getpid()) + name;
    const std::string sock = "/tmp/" + tag + ".sock";
    const std::string pidfile = "/tmp/" + tag + ".pid";
    // At most one memif ring (1024 slots): testpmd sends the bursts back to
    // back, and more would overflow the ring before any client could drain it.
    constexpr int kDatagrams = 960;
    const Finished gen = run_shell(src + "/scripts/memif-gen --background --pidfile " + pidfile + " --socket " + sock +
                                   " --count " + std::to_string(kDatagrams) +
                                   " --duration 40 --main-lcore 1 --lcores 0 --eth-peer 02:00:00:00:00:02 --queues " +
                                   std::to_string(GetParam().queues) + " " + GetParam().generator + " 2>&1");
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    const std::string queues = std::to_string(GetParam().queues);
    const Finished sink = run_shell(
        "timeout 60 " + ringsock::testing::build_root() + "/api/tools/ringsock-udp-sink --profile " + src +
            "/drivers_config/memif.toml --set port.device=net_memif0,role=client,socket=" + sock +
            ",id=0 --set eal.lcores=0-1 --set port.rx_queues=" + queues + " --set port.tx_queues=" + queues +
            " --set eal.file_prefix=" + tag + " " + GetParam().arguments + " --duration 6 --interval-ms 500 2>&1",
        90s);
    // testpmd's per-queue statistics, printed when the sends were done:
    // every queue carried its share, so a count of N means the datagrams
    // that came in on another engine's queue were not lost on the way.
    const Finished generator_log = run_shell("grep -A1 'Forward Stats for RX Port= 0/Queue=' " + pidfile + ".log");
    run_shell(src + "/scripts/memif-gen --stop " + pidfile + " 2>&1");
    if (GetParam().queues > 1) {
        const std::string share = "TX-packets: " + std::to_string(kDatagrams / GetParam().queues) + " ";
        for (int q = 0; q < GetParam().queues; ++q)
            EXPECT_NE(generator_log.output.find("Queue= " + std::to_string(q) + " ->"), std::string::npos)
                << generator_log.output;
        std::size_t shares = 0;
        for (std::size_t at = generator_log.output.find(share); at != std::string::npos;
             at = generator_log.output.find(share, at + 1))
            ++shares;
        EXPECT_EQ(shares, static_cast<std::size_t>(GetParam().queues)) << generator_log.output;
        EXPECT_NE(sink.output.find("started, " + queues + " RX / " + queues + " TX queues"), std::string::npos)
            << sink.output;
    }
    EXPECT_EQ(sink.exit_code, 0) << sink.output;
    EXPECT_NE(sink.output.find("{\"done\":true,\"datagrams\":" + std::to_string(kDatagrams) + ","), std::string::npos)
        << sink.output;
    EXPECT_NE(sink.output.find("\"errors\":0,\"rcv_drops\":0}"), std::string::npos) << sink.output;
    if (name.find("per_engine") != std::string::npos || name.find("engines") != std::string::npos) {
        // Both engines' threads (or pollers) reaped: the one memif queue's
        // flows were spread by the engines' software RSS to each engine's
        // own socket; with a queue per engine, each engine's socket got
        // what came in on its queue.
        const std::size_t at = sink.output.find("{\"per_engine\":[");
        ASSERT_NE(at, std::string::npos) << sink.output;
        unsigned long long first = 0, second = 0;
        ASSERT_EQ(std::sscanf(sink.output.c_str() + at, "{\"per_engine\":[%llu,%llu]}", &first, &second), 2)
            << sink.output;
        EXPECT_GT(first, 0u) << sink.output;
        EXPECT_GT(second, 0u) << sink.output;
        if (GetParam().queues == 2) {
            EXPECT_EQ(first, kDatagrams / 2u) << sink.output;
            EXPECT_EQ(second, kDatagrams / 2u) << sink.output;
        }
    }
}

// Three threads on one port: each reposts what it reaped, so receives move
// between threads and every thread takes datagrams from the socket's queue.
INSTANTIATE_TEST_SUITE_P(Modes, UdpSink,
                         ::testing::Values(Reaping{"port", "--mode port"}, Reaping{"event", "--mode event"},
                                           Reaping{"routine", "--mode routine"},
                                           Reaping{"threads", "--mode port --threads 3 --depth 16"},
                                           // Two engines on CPU 1 (EAL lcores 1 and 2), many flows
                                           // (from a forwarding lcore other than 0: memif-gen
                                           // --multi-flow says why).
                                           Reaping{"per_engine",
                                                   "--mode port --per-engine --depth 16 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "--multi-flow --main-lcore 0 --lcores 1"},
                                           // ringsock_poll_on_engine: one engine, then two on CPU 1.
                                           Reaping{"engine", "--mode engine --depth 4"},
                                           Reaping{"engines",
                                                   "--mode engine --depth 4 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "--multi-flow --main-lcore 0 --lcores 1"},
                                           // Two queue pairs, two engines on CPU 1, one flow on both
                                           // queues: one socket (engine 1 hands its queue's datagrams
                                           // over), a port-shared socket per engine, a poller per engine.
                                           Reaping{"two_queues_one_socket",
                                                   "--mode port --depth 16 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "", 2},
                                           Reaping{"two_queues_per_engine",
                                                   "--mode port --per-engine --depth 16 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "", 2},
                                           Reaping{"two_queues_engines",
                                                   "--mode engine --depth 4 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "", 2}),
                         [](const ::testing::TestParamInfo<Reaping>& info) { return std::string(info.param.name); });

} // namespace
