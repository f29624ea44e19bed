// ringsock-sink as a user runs it: a real process on net_null, stopped by
// its --duration or by SIGTERM/SIGINT, with its JSON summary checked for a
// clean shutdown (exit 0, no mbuf still taken once the port is closed).
#include <csignal>
#include <string>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;

std::string sink()
{
    return ringsock::testing::build_root() + "/dataplane/tools/ringsock-sink";
}
std::string profile(const std::string& name)
{
    return ringsock::testing::source_root() + "/drivers_config/" + name + ".toml";
}

std::string summary_line(const std::string& output)
{
    const auto at = output.find("{\"summary\":true");
    if (at == std::string::npos) return {};
    return output.substr(at, output.find('\n', at) - at);
}

uint64_t field(const std::string& json, const std::string& name)
{
    const auto at = json.find("\"" + name + "\":");
    if (at == std::string::npos) return UINT64_MAX;
    return std::stoull(json.substr(at + name.size() + 3));
}

void expect_clean_stop(int signal, const char* stopped_by)
{
    Child child({sink(), "--profile", profile("null"), "--json", "--interval-ms", "200", "--log-level", "warn"});
    // Wait until it prints a live line: the engines are running.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (child.poll_output().find("\"t\":") == std::string::npos && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    child.signal(signal);
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    const std::string summary = summary_line(done.output);
    ASSERT_FALSE(summary.empty()) << done.output;
    EXPECT_NE(summary.find(std::string("\"stopped_by\":\"") + stopped_by + "\""), std::string::npos) << summary;
    EXPECT_GT(field(summary, "rx_packets"), 0u) << summary;
    EXPECT_EQ(field(summary, "mbufs_taken_after_close"), 0u) << summary;
    EXPECT_EQ(field(summary, "unclaimed"), 0u) << summary;
}

TEST(Sink, SigtermStopsItCleanlyWithEveryMbufBack)
{
    expect_clean_stop(SIGTERM, "SIGTERM");
}

TEST(Sink, SigintStopsItCleanlyWithEveryMbufBack)
{
    expect_clean_stop(SIGINT, "SIGINT");
}

TEST(Sink, DurationStopsItByItselfAndTheSummaryAddsUp)
{
    Child child({sink(), "--profile", profile("null"), "--duration", "1.5", "--json", "--log-level", "warn"});
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    const std::string summary = summary_line(done.output);
    ASSERT_FALSE(summary.empty()) << done.output;
    EXPECT_NE(summary.find("\"stopped_by\":\"duration\""), std::string::npos) << summary;
    EXPECT_EQ(field(summary, "rx_bytes"), field(summary, "rx_packets") * 64) << summary;
    EXPECT_EQ(field(summary, "mbufs_taken_after_close"), 0u);
}

TEST(Sink, TextModePrintsLiveLinesAndASummary)
{
    Child child({sink(), "--profile", profile("null"), "--duration", "1.2", "--interval-ms", "300"});
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_NE(done.output.find("Mpps"), std::string::npos) << done.output;
    EXPECT_NE(done.output.find("summary:"), std::string::npos) << done.output;
    EXPECT_NE(done.output.find("mbufs still taken after the port closed: 0"), std::string::npos) << done.output;
}

TEST(Sink, DpdkTelemetryPyReadsTheCountersOfARunningSink)
{
    if (ringsock::testing::run_shell("command -v dpdk-telemetry.py").exit_code != 0)
        GTEST_SKIP() << "dpdk-telemetry.py not installed (package dpdk-dev)";
    const std::string prefix = "rstelemetry" + std::to_string(getpid());
    Child child({sink(), "--profile", profile("null"), "--set", "eal.file_prefix=" + prefix, "--json", "--interval-ms",
                 "200", "--duration", "30"});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (child.poll_output().find("\"t\":") == std::string::npos && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    const Finished asked = ringsock::testing::run_shell(
        "printf '/ringsock/summary\\n/ringsock/engine,0\\n' | dpdk-telemetry.py -f " + prefix + " 2>&1");
    child.signal(SIGTERM);
    EXPECT_EQ(child.wait(30s).exit_code, 0);
    EXPECT_NE(asked.output.find("\"/ringsock/summary\": {\"engines\": 1, \"rx_packets\": "), std::string::npos)
        << asked.output;
    EXPECT_NE(asked.output.find("\"/ringsock/engine\": {\"lcore\": 0"), std::string::npos) << asked.output;
}

TEST(Sink, ABadOverrideIsRefusedWithTheKeyAndExitTwo)
{
    Child child({sink(), "--profile", profile("null"), "--set", "port.rx_queues=0"});
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 2) << done.output;
    EXPECT_NE(done.output.find("port.rx_queues"), std::string::npos) << done.output;
}

TEST(Sink, AMissingProfileIsRefusedWithItsPath)
{
    Child child({sink(), "--profile", "/nonexistent/profile.toml"});
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 2) << done.output;
    EXPECT_NE(done.output.find("/nonexistent/profile.toml"), std::string::npos) << done.output;
}

TEST(Sink, AnUnknownDeviceFailsStartUpWithExitOne)
{
    Child child(
        {sink(), "--profile", profile("null"), "--set", "port.device=net_nosuchdriver0", "--log-level", "error"});
    const Finished done = child.wait(30s);
    EXPECT_EQ(done.exit_code, 1) << done.output;
    EXPECT_NE(done.output.find("EAL"), std::string::npos) << done.output;
}

} // namespace
