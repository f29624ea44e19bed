// ringsock-echo end to end: the program runs on net_pcap on a veth, the
// kernel in the namespace sends datagrams of many sizes, and every echo
// must come back byte for byte to the port it came from; datagrams larger
// than the echo's buffer are counted as truncated and not echoed; the
// program's own counts must agree; with --per-engine (and with --on-engine)
// on two engines, the flows of eight source ports are echoed by both
// engines' sockets. Over TCP, three kernel connections at once each get
// their 4 MiB back in order (SHA-256 both ways). Needs root; skipped
// otherwise.
#include <chrono>
#include <memory>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;

// Sends `count` datagrams (sizes cycling 1..999, byte i of datagram k is
// (k * 7 + i) % 256) one at a time, each followed by the wait for its echo,
// then `big` datagrams of 1400 bytes that must not come back. Datagram k
// leaves from source port 40007 + k % `flows`. Prints the tallies; exits 0
// when every small echo matched and no big one returned.
constexpr const char* kClient = R"PY(
import socket, sys
count, big = int(sys.argv[1]), int(sys.argv[2])
flows = int(sys.argv[3]) if len(sys.argv) > 3 else 1
socks = []
for f in range(flows):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("198.18.0.1", 40007 + f))
    sock.settimeout(2.0)
    socks.append(sock)
matched = mismatched = lost = 0
for k in range(count):
    size = 1 + (k * 37) % 999
    data = bytes((k * 7 + i) % 256 for i in range(size))
    s = socks[k % flows]
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
s = socks[0]
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

// ringsock-echo on the namespace's veth with `extra` arguments, once it
// has reported (the stack is up).
std::unique_ptr<Child> start_echo(const ringsock::testing::Namespace& netns, const std::vector<std::string>& extra)
{
    const std::string src = ringsock::testing::source_root();
    std::vector<std::string> args{ringsock::testing::build_root() + "/api/tools/ringsock-echo",
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
                                  "--interval-ms",
                                  "200"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto echo = std::make_unique<Child>(args);
    const auto ready = std::chrono::steady_clock::now() + 30s;
    while (echo->poll_output().find("\"t\":") == std::string::npos && std::chrono::steady_clock::now() < ready)
        std::this_thread::sleep_for(50ms);
    EXPECT_NE(echo->poll_output().find("\"t\":"), std::string::npos) << echo->poll_output();
    return echo;
}

// The program's last report ("done": true).
std::string summary_of(const Finished& done)
{
    const auto last = done.output.find("\"done\":true");
    return last == std::string::npos ? "(no summary) " + done.output : done.output.substr(last);
}

TEST(UdpEcho, EveryDatagramComesBackIdenticalToItsSender)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (namespace, EAL)";
    ringsock::testing::Namespace netns("rsecho");
    ASSERT_TRUE(netns.ok()) << netns.why();
    auto echo_child = start_echo(netns, {"--port", "7", "--depth", "16", "--buffer", "1000", "--duration", "25"});
    Child& echo = *echo_child;

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
    const std::string summary = summary_of(done);
    EXPECT_NE(summary.find(expected), std::string::npos) << summary;
    EXPECT_NE(summary.find("\"truncated\":" + std::to_string(kBig) + ","), std::string::npos) << summary;
    EXPECT_NE(summary.find("\"send_errors\":0,\"recv_errors\":0"), std::string::npos) << summary;
}

// The scale-out model: a port-shared socket per engine (two engines on one
// CPU here), the one pcap queue's flows spread by the engines' software RSS;
// reaped by a thread per engine (--per-engine), or run to completion by a
// poller on each engine (--on-engine), which echoes from the engine's core.
class UdpEchoPerEngine : public ::testing::TestWithParam<const char*> {};

TEST_P(UdpEchoPerEngine, EachEnginesSocketEchoesTheFlowsSpreadToIt)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (namespace, EAL)";
    ringsock::testing::Namespace netns("rsechoe");
    ASSERT_TRUE(netns.ok()) << netns.why();
    auto echo_child = start_echo(netns, {"--port", "7", "--depth", "16", "--buffer", "1000", "--duration", "25",
                                         GetParam(), "--set", "eal.extra_args=[\"--lcores=0@0,1@1,2@1\"]"});
    Child& echo = *echo_child;

    constexpr int kSmall = 200;
    const Finished client = ringsock::testing::run_shell(
        netns.exec("python3 -c '" + std::string(kClient) + "' " + std::to_string(kSmall) + " 0 8 2>&1"), 60s);
    echo.signal(SIGTERM);
    const Finished done = echo.wait(10s);
    EXPECT_EQ(client.exit_code, 0) << client.output;
    EXPECT_NE(client.output.find("matched " + std::to_string(kSmall) + " mismatched 0 lost 0"), std::string::npos)
        << client.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    const std::string summary = summary_of(done);
    EXPECT_NE(summary.find("\"received\":" + std::to_string(kSmall) + ",\"echoed\":" + std::to_string(kSmall)),
              std::string::npos)
        << summary;
    const std::size_t at = done.output.find("{\"per_engine\":[");
    ASSERT_NE(at, std::string::npos) << done.output;
    unsigned long long first = 0, second = 0;
    ASSERT_EQ(std::sscanf(done.output.c_str() + at, "{\"per_engine\":[%llu,%llu]}", &first, &second), 2) << done.output;
    EXPECT_GT(first, 0u) << "engine 0's socket echoed none of the eight flows";
    EXPECT_GT(second, 0u) << "engine 1's socket echoed none of the eight flows";
}

INSTANTIATE_TEST_SUITE_P(Reaping, UdpEchoPerEngine, ::testing::Values("--per-engine", "--on-engine"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             return std::string(info.param) == "--per-engine" ? "threads" : "pollers";
                         });

TEST(TcpEcho, EveryConnectionGetsItsBytesBackInOrder)
{
    if (!ringsock::testing::running_as_root()) GTEST_SKIP() << "needs root (namespace, EAL)";
    ringsock::testing::Namespace netns("rsecho");
    ASSERT_TRUE(netns.ok()) << netns.why();
    auto echo = start_echo(netns, {"--port", "0", "--tcp-port", "7", "--tcp-depth", "4", "--duration", "60"});
    constexpr int kClients = 3;
    constexpr uint64_t kBytes = 4ull << 20;
    std::vector<std::unique_ptr<Child>> clients;
    for (int i = 0; i < kClients; ++i)
        clients.push_back(std::make_unique<Child>(std::vector<std::string>{
            "ip", "netns", "exec", "rsecho", "python3", ringsock::testing::source_root() + "/tests/data/tcp_peer.py",
            "client", "198.18.0.2", "7", "exchange", std::to_string(kBytes)}));
    for (auto& c : clients) {
        const Finished f = c->wait(60s);
        EXPECT_EQ(f.exit_code, 0) << f.output;
        const auto sent = f.output.find("sent ");
        const auto received = f.output.find("received ");
        ASSERT_NE(sent, std::string::npos) << f.output;
        ASSERT_NE(received, std::string::npos) << f.output;
        const std::string sent_line = f.output.substr(sent + 5, f.output.find('\n', sent) - sent - 5);
        const std::string received_line = f.output.substr(received + 9, f.output.find('\n', received) - received - 9);
        EXPECT_EQ(sent_line.substr(0, sent_line.find(' ')), std::to_string(kBytes));
        EXPECT_EQ(received_line, sent_line) << "the echo is the bytes sent, in order";
    }
    // Each connection is retired once its FIN came and its buffers are back.
    const auto settled = std::chrono::steady_clock::now() + 5s;
    while (echo->poll_output().rfind("\"tcp_closed\":" + std::to_string(kClients)) == std::string::npos &&
           std::chrono::steady_clock::now() < settled)
        std::this_thread::sleep_for(50ms);
    echo->signal(SIGTERM);
    const Finished done = echo->wait(10s);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    const std::string summary = summary_of(done);
    EXPECT_NE(summary.find("\"tcp_connections\":" + std::to_string(kClients) +
                           ",\"tcp_closed\":" + std::to_string(kClients) +
                           ",\"tcp_bytes\":" + std::to_string(kClients * kBytes) + ",\"tcp_errors\":0"),
              std::string::npos)
        << summary;
}

} // namespace
