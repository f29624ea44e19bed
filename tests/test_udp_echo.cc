// ringsock-echo end to end: the program runs on net_pcap on a veth, the
// kernel in the namespace sends datagrams of many sizes, and every echo
// must come back byte for byte to the port it came from; datagrams larger
// than the echo's buffer are counted as truncated and not echoed; the
// program's own counts must agree. Needs root; skipped otherwise.
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

// Sends `count` datagrams (sizes cycling 1..999, byte i of datagram k is
// (k * 7 + i) % 256) one at a time, each followed by the wait for its echo,
// then `big` datagrams of 1400 bytes that must not come back. Prints the
// tallies; exits 0 when every small echo matched and no big one returned.
constexpr const char* kClient = R"PY(
import socket, sys
count, big = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.1", 40007))
s.settimeout(2.0)
matched = mismatched = lost = 0
for k in range(count):
    size = 1 + (k * 37) % 999
    data = bytes((k * 7 + i) % 256 for i in range(size))
    s.sendto(data, ("198.18.0.2", 7))
    try:
        echo, peer = s.recvfrom(65536)
    except socket.timeout:
        lost += 1
        continue
    if echo == data and peer == ("198.18.0.2", 7):
        matched += 1
    else:
        mismatched += 1
s.settimeout(0.5)
returned = 0
for k in range(big):
    s.sendto(b"\xab" * 1400, ("198.18.0.2", 7))
    try:
        s.recvfrom(65536)
        returned += 1
    except socket.timeout:
        pass
print(f"matched {matched} mismatched {mismatched} lost {lost} big-returned {returned}", flush=True)
sys.exit(0 if matched == count and returned == 0 else 1)
)PY";

TEST(UdpEcho, EveryDatagramComesBackIdenticalToItsSender)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (namespace, EAL)";
    ringsock::testing::Namespace netns("rsecho");
    ASSERT_TRUE(netns.ok()) << netns.why();
    const std::string src = ringsock::testing::source_root();
    Child echo({ringsock::testing::build_root() + "/api/tools/ringsock-echo",
                "--profile",
                src + "/drivers_config/pcap.toml",
                "--set",
                "port.device=net_pcap0,iface=" + netns.host_interface(),
                "--set",
                "eal.lcores=0-1",
                "--set",
                "eal.memory_mb=256",
                "--set",
                "mempool.mbufs=8191",
                "--set",
                "port.link_timeout_ms=2000",
                "--port",
                "7",
                "--depth",
                "16",
                "--buffer",
                "1000",
                "--duration",
                "25",
                "--interval-ms",
                "200"});
    const auto ready = std::chrono::steady_clock::now() + 30s;
    while (echo.poll_output().find("\"t\":") == std::string::npos && std::chrono::steady_clock::now() < ready)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(echo.poll_output().find("\"t\":"), std::string::npos) << echo.poll_output();

    constexpr int kSmall = 300;
    constexpr int kBig = 3;
    const Finished client =
        ringsock::testing::run_shell(netns.exec("python3 -c '" + std::string(kClient) + "' " + std::to_string(kSmall) +
                                                " " + std::to_string(kBig) + " 2>&1"),
                                     60s);
    echo.signal(SIGTERM);
    const Finished done = echo.wait(10s);
    EXPECT_EQ(client.exit_code, 0) << client.output;
    EXPECT_NE(client.output.find("matched " + std::to_string(kSmall) + " mismatched 0 lost 0 big-returned 0"),
              std::string::npos)
        << client.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    const std::string expected = "\"received\":" + std::to_string(kSmall) + ",\"echoed\":" + std::to_string(kSmall);
    const auto last = done.output.find("\"done\":true");
    ASSERT_NE(last, std::string::npos) << done.output;
    const std::string summary = done.output.substr(last);
    EXPECT_NE(summary.find(expected), std::string::npos) << summary;
    EXPECT_NE(summary.find("\"truncated\":" + std::to_string(kBig) + ","), std::string::npos) << summary;
    EXPECT_NE(summary.find("\"send_errors\":0,\"recv_errors\":0"), std::string::npos) << summary;
}

} // namespace
