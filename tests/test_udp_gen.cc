// ringsock-udp-gen, the paced generator behind scripts/bench/udp-echo-latency
// and udp-no-drop, end to end over memif: against ringsock-echo every
// datagram sent after the warm-up comes back and is timed; against
// ringsock-udp-sink in load mode the sink counts exactly what the generator
// put on the wire. Needs root; skipped otherwise.
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;

// The number after "key": in `line`, or -1.
long long field(const std::string& line, const std::string& key)
{
    const auto at = line.find("\"" + key + "\":");
    if (at == std::string::npos) return -1;
    return std::stoll(line.substr(at + key.size() + 3));
}

// The generator (memif server) with `args`, started first; then `receiver`
// (memif client) until the generator is done.
struct PairRun {
    Finished generator;
    Finished receiver;
};

PairRun run_pair(const std::string& tag, const std::vector<std::string>& gen_args, std::vector<std::string> receiver)
{
    const std::string src = ringsock::testing::source_root();
    const std::string build = ringsock::testing::build_root();
    const std::string sock = "/tmp/" + tag + ".sock";
    std::vector<std::string> gen{build + "/dataplane/tools/ringsock-udp-gen",
                                 "--profile",
                                 src + "/drivers_config/memif.toml",
                                 "--set",
                                 "port.device=net_memif0,role=server,socket=" + sock + ",id=0",
                                 "--set",
                                 "eal.lcores=0",
                                 "--set",
                                 "engine.idle_sleep_us=20",
                                 "--set",
                                 "eal.file_prefix=" + tag + "gen",
                                 "--set",
                                 "eal.memory_mb=256",
                                 "--set",
                                 "mempool.mbufs=8191",
                                 "--set",
                                 "port.link_timeout_ms=30000",
                                 "--arp-timeout-ms",
                                 "20000",
                                 "--log-level",
                                 "error"};
    gen.insert(gen.end(), gen_args.begin(), gen_args.end());
    Child generator(gen);
    std::this_thread::sleep_for(1s); // the server's socket first
    receiver.insert(receiver.end(), {"--profile", src + "/drivers_config/memif.toml", "--set",
                                     "port.device=net_memif0,role=client,socket=" + sock + ",id=0", "--set",
                                     "eal.lcores=0-1", "--set", "eal.file_prefix=" + tag + "rx", "--set",
                                     "eal.memory_mb=256", "--set", "mempool.mbufs=8191", "--duration", "0"});
    Child rx(receiver);
    PairRun run;
    run.generator = generator.wait(60s);
    std::this_thread::sleep_for(500ms);
    rx.signal(SIGINT);
    run.receiver = rx.wait(20s);
    return run;
}

TEST(UdpGen, EveryEchoAfterTheWarmUpComesBackAndIsTimed)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (EAL)";
    const std::string tag = "rsgen" + std::to_string(getpid()) + "e";
    const PairRun run = run_pair(tag, {"--rate", "2000", "--seconds", "2", "--size", "128"},
                                 {ringsock::testing::build_root() + "/api/tools/ringsock-echo", "--port", "7"});
    const std::string& out = run.generator.output;
    ASSERT_EQ(run.generator.exit_code, 0) << out << run.receiver.output;
    EXPECT_NE(out.find("\"resolved\":true"), std::string::npos) << out;
    EXPECT_EQ(field(out, "sent"), 4000) << out;
    EXPECT_EQ(field(out, "measured"), 3600) << "200 ms of warm-up at 2000/s; " << out;
    EXPECT_EQ(field(out, "echoed"), field(out, "measured")) << out;
    EXPECT_EQ(field(out, "lost"), 0) << out;
    EXPECT_GT(field(out, "p50_us"), 0) << out;
    EXPECT_EQ(field(out, "mbufs_taken_after_close"), 0) << out;
}

TEST(UdpGen, LoadModeOffersWhatTheSinkCounts)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (EAL)";
    const std::string tag = "rsgen" + std::to_string(getpid()) + "l";
    const PairRun run =
        run_pair(tag, {"--mode", "load", "--dst-port", "9", "--rate", "5000", "--seconds", "2", "--hold-ms", "3000"},
                 {ringsock::testing::build_root() + "/api/tools/ringsock-udp-sink", "--port", "9", "--mode", "port"});
    const std::string& out = run.generator.output;
    ASSERT_EQ(run.generator.exit_code, 0) << out << run.receiver.output;
    EXPECT_EQ(field(out, "sent"), 10000) << out;
    EXPECT_EQ(field(out, "udp_tx_packets"), 10000) << out;
    EXPECT_NE(run.receiver.output.find("{\"done\":true,\"datagrams\":10000,"), std::string::npos)
        << run.receiver.output;
}

} // namespace
