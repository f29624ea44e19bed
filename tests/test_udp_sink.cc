// ringsock-udp-sink, the API's main job, end to end: testpmd sends exactly
// N UDP datagrams over memif (scripts/memif-gen --count), the sink receives
// them through WSARecvFrom and reaps them in each completion mode (and with
// three threads reaping one completion port, with a port-shared socket,
// completion port and thread per engine, and run to completion by a poller
// on each engine), and must count exactly N. Needs
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
                                   " --duration 40 --main-lcore 1 --lcores 0 --eth-peer 02:00:00:00:00:02 " +
                                   GetParam().generator + " 2>&1");
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    const Finished sink =
        run_shell("timeout 60 " + ringsock::testing::build_root() + "/api/tools/ringsock-udp-sink --profile " + src +
                      "/drivers_config/memif.toml --set port.device=net_memif0,role=client,socket=" + sock +
                      ",id=0 --set eal.lcores=0-1 --set eal.file_prefix=" + tag + " " + GetParam().arguments +
                      " --duration 6 --interval-ms 500 2>&1",
                  90s);
    run_shell(src + "/scripts/memif-gen --stop " + pidfile + " 2>&1");
    EXPECT_EQ(sink.exit_code, 0) << sink.output;
    EXPECT_NE(sink.output.find("{\"done\":true,\"datagrams\":" + std::to_string(kDatagrams) + ","), std::string::npos)
        << sink.output;
    EXPECT_NE(sink.output.find("\"errors\":0,\"rcv_drops\":0}"), std::string::npos) << sink.output;
    if (name == "per_engine" || name == "engines") {
        // Both engines' threads (or pollers) reaped: the one memif queue's
        // flows were spread by the engines' software RSS to each engine's
        // own socket.
        const std::size_t at = sink.output.find("{\"per_engine\":[");
        ASSERT_NE(at, std::string::npos) << sink.output;
        unsigned long long first = 0, second = 0;
        ASSERT_EQ(std::sscanf(sink.output.c_str() + at, "{\"per_engine\":[%llu,%llu]}", &first, &second), 2)
            << sink.output;
        EXPECT_GT(first, 0u) << sink.output;
        EXPECT_GT(second, 0u) << sink.output;
    }
}

// Three threads on one port: each reposts what it reaped, so receives move
// between threads and every thread takes datagrams from the socket's queue.
INSTANTIATE_TEST_SUITE_P(Modes, UdpSink,
                         ::testing::Values(Reaping{"port", "--mode port"}, Reaping{"event", "--mode event"},
                                           Reaping{"routine", "--mode routine"},
                                           Reaping{"threads", "--mode port --threads 3 --depth 16"},
                                           // Two engines on CPU 1 (EAL lcores 1 and 2), many flows.
                                           Reaping{"per_engine",
                                                   "--mode port --per-engine --depth 16 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "--multi-flow"},
                                           // ringsock_poll_on_engine: one engine, then two on CPU 1.
                                           Reaping{"engine", "--mode engine --depth 4"},
                                           Reaping{"engines",
                                                   "--mode engine --depth 4 "
                                                   "--set 'eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]'",
                                                   "--multi-flow"}),
                         [](const ::testing::TestParamInfo<Reaping>& info) { return std::string(info.param.name); });

} // namespace
