// ringsock-iperf3 against the real iperf3 client: the program runs on
// net_pcap on a veth, `iperf3 -c` in the namespace runs a 2-second test
// with one stream and then with three, and each must finish (exit 0, no
// error) with the rate iperf3 reports for the receiver being the bytes the
// server counted. Needs root and iperf3; skipped otherwise.
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;

// The number after `"key": ` in text that starts at `from`.
unsigned long long number_after(const std::string& text, const std::string& key, std::size_t from = 0)
{
    const auto at = text.find("\"" + key + "\":", from);
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(text.find_first_of("0123456789", at + key.size() + 3)));
}

TEST(Iperf3, TheIperf3ClientCompletesAgainstTheApiServer)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (namespace, EAL)";
    if (ringsock::testing::run_shell("command -v iperf3").exit_code != 0) GTEST_SKIP() << "iperf3 is not installed";
    ringsock::testing::Namespace netns("rsiperf");
    ASSERT_TRUE(netns.ok()) << netns.why();
    const std::string src = ringsock::testing::source_root();
    Child server({ringsock::testing::build_root() + "/api/tools/ringsock-iperf3", "--profile",
                  src + "/drivers_config/pcap.toml", "--set", "port.device=net_pcap0,iface=" + netns.host_interface(),
                  "--set", "eal.lcores=0-1", "--set", "eal.memory_mb=256", "--set", "mempool.mbufs=8191", "--set",
                  "port.link_timeout_ms=2000", "--tests", "2"});
    const auto ready = std::chrono::steady_clock::now() + 30s;
    while (server.poll_output().find("\"listening\"") == std::string::npos && std::chrono::steady_clock::now() < ready)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(server.poll_output().find("\"listening\""), std::string::npos) << server.poll_output();

    for (int streams : {1, 3}) {
        const Finished client = ringsock::testing::run_shell(
            netns.exec("iperf3 -c 198.18.0.2 -t 2 -J -P " + std::to_string(streams) + " 2>&1"), 60s);
        ASSERT_EQ(client.exit_code, 0) << client.output.substr(0, 3000);
        EXPECT_EQ(client.output.find("\"error\""), std::string::npos) << client.output.substr(0, 3000);
        const auto received = client.output.find("\"sum_received\"");
        ASSERT_NE(received, std::string::npos) << client.output.substr(0, 3000);
        const unsigned long long bytes = number_after(client.output, "bytes", received);
        EXPECT_GT(bytes, 1000000u) << "iperf3's receiver bytes";
        // The server's own count is the one iperf3 reports for the receiver.
        const std::string line = "{\"streams\":" + std::to_string(streams) + ",\"bytes\":" + std::to_string(bytes);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (server.poll_output().find(line) == std::string::npos && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
        EXPECT_NE(server.poll_output().find(line), std::string::npos) << server.poll_output();
    }
    const Finished done = server.wait(20s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_EQ(done.output.find("a test failed"), std::string::npos) << done.output;
}

} // namespace
