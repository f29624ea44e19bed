// The trade eal.register_application_threads makes, watched from outside:
// a thread the application made gets an mbuf cache by registering with
// EAL, and registering shuts DPDK secondary processes (dpdk-dumpcap) out of
// the process for good. With the key false, dumpcap attaches and captures
// while such a thread receives; with dumpcap attached first, registration
// is refused and the thread receives without a cache. Every datagram must
// arrive in each case.
//
// EAL starts once per process, so each case runs in a child process of its
// own (a gtest death test, forked from a parent that has started nothing,
// that must exit 0; its stderr says what failed).
// Secondary processes cannot attach to a --no-huge primary, so the test
// reserves hugepages (and gives them back). Needs root, dpdk-dumpcap and
// tshark; skipped with the reason otherwise.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <unistd.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"
#include "tests/support/winsock_helpers.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;
using ringsock::testing::wait_for_output;

constexpr uint16_t kPort = 7300;
constexpr int kCaptureCount = 10;

ringsock::testing::Namespace* g_netns = nullptr;

// What a case found wrong, for its stderr; the case's exit code is the count.
class Findings {
public:
    void check(bool ok, const std::string& what)
    {
        if (ok) return;
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
        ++failures_;
    }
    [[noreturn]] void finish() const
    {
        std::fflush(stderr);
        std::_Exit(failures_ == 0 ? 0 : 1);
    }

private:
    int failures_ = 0;
};

// `count` datagrams of 64 bytes from the namespace's kernel to our port.
bool kernel_sends(unsigned count)
{
    std::string sizes;
    for (unsigned i = 0; i < count; ++i)
        sizes += (i == 0 ? "64" : ",64");
    const Finished f = ringsock::testing::run_shell(g_netns->exec(
        "python3 " + ringsock::testing::source_root() + "/tests/data/udp_peer.py send --dst 198.18.0.2 --port " +
        std::to_string(kPort) + " --src-port 40000 --sizes " + sizes));
    if (f.exit_code != 0) std::fprintf(stderr, "udp_peer.py: %s\n", f.output.c_str());
    return f.exit_code == 0;
}

// A thread the application made, receiving with blocking recvfrom until
// it has `total` datagrams or a receive times out (5 s). The lcore id it
// ends up with says whether EAL registered it.
class ReceivingThread {
public:
    ReceivingThread(SOCKET s, unsigned total) : thread_([this, s, total] { run(s, total); }) {}
    ~ReceivingThread()
    {
        if (thread_.joinable()) thread_.join();
    }
    ReceivingThread(const ReceivingThread&) = delete;
    ReceivingThread& operator=(const ReceivingThread&) = delete;

    bool wait_received(unsigned n, std::chrono::seconds limit) const
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (received_.load() < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        return received_.load() >= n;
    }
    unsigned join()
    {
        thread_.join();
        return received_.load();
    }
    unsigned lcore() const { return lcore_.load(); }

private:
    void run(SOCKET s, unsigned total)
    {
        char buffer[2048];
        while (received_.load() < total) {
            const int got = recvfrom(s, buffer, sizeof(buffer), 0, nullptr, nullptr);
            lcore_.store(rte_lcore_id()); // registration happens inside the first receive
            if (got != 64) {
                std::fprintf(stderr, "recvfrom returned %d (error %d)\n", got, WSAGetLastError());
                return;
            }
            received_.fetch_add(1);
        }
    }

    std::atomic<unsigned> received_{0};
    std::atomic<unsigned> lcore_{LCORE_ID_ANY};
    std::thread thread_;
};

// The API on the namespace's veth through net_af_packet, with hugepages.
SOCKET start_api(const std::string& prefix, bool register_threads, Findings& findings)
{
    const std::string device = "port.device=net_af_packet0,iface=" + g_netns->host_interface() + ",qpairs=1";
    const std::string file_prefix = "eal.file_prefix=" + prefix;
    const std::string registration =
        std::string("eal.register_application_threads=") + (register_threads ? "true" : "false");
    // As in test_pdump: an explicit base above ASan's shadow, where dumpcap
    // can map the primary's memory at the same addresses.
    const char* overrides[] = {device.c_str(), file_prefix.c_str(), registration.c_str(), "eal.lcores=0-1",
                               "eal.extra_args=[\"--base-virtaddr=0x200000000000\"]"};
    const std::string profile = ringsock::testing::source_root() + "/drivers_config/af_packet.toml";
    if (ringsock_configure(profile.c_str(), 5, overrides) != 0) {
        findings.check(false, std::string("ringsock_configure: ") + ringsock_startup_error());
        findings.finish();
    }
    WSADATA data;
    if (WSAStartup(MAKEWORD(2, 2), &data) != 0) {
        findings.check(false, std::string("WSAStartup: ") + ringsock_startup_error());
        findings.finish();
    }
    const SOCKET s = ringsock::testing::bound_udp_socket(kPort, 0);
    const DWORD timeout_ms = 5000;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&timeout_ms), sizeof(timeout_ms));
    return s;
}

Child start_dumpcap(const std::string& prefix, const std::string& capture)
{
    // The filter keeps the namespace's own chatter (IPv6 neighbour
    // discovery) from filling the count.
    return Child({"dpdk-dumpcap", "--file-prefix=" + prefix, "-i", "net_af_packet0", "-f",
                  "udp dst port " + std::to_string(kPort), "-c", std::to_string(kCaptureCount), "-w", capture});
}

unsigned captured_datagrams(const std::string& capture)
{
    const Finished read = ringsock::testing::run_shell(
        "tshark -r " + capture + " -Y 'udp.dstport == " + std::to_string(kPort) + "' 2>/dev/null | wc -l");
    return static_cast<unsigned>(std::atoi(read.output.c_str()));
}

// dumpcap names its file once it has attached and enabled capture.
void expect_attached(Child& dumpcap, Findings& findings)
{
    findings.check(wait_for_output(dumpcap, "File:", 30s), "dumpcap did not attach:\n" + dumpcap.poll_output());
    std::this_thread::sleep_for(500ms);
}

// dumpcap ends by itself after kCaptureCount of our datagrams.
void expect_captured(Child& dumpcap, const std::string& capture, Findings& findings)
{
    const Finished captured = dumpcap.wait(20s);
    findings.check(captured.finished && captured.exit_code == 0, "dumpcap did not finish:\n" + captured.output);
    findings.check(captured_datagrams(capture) >= kCaptureCount, "the capture holds too few of the datagrams");
    unlink(capture.c_str());
}

[[noreturn]] void stop_api(SOCKET s, Findings& findings)
{
    closesocket(s);
    findings.check(WSACleanup() == 0, "WSACleanup");
    findings.finish();
}

std::string unique_prefix(const char* name)
{
    return std::string(name) + std::to_string(getpid());
}

// Registration first (the default): dumpcap is refused, and the API keeps
// receiving.
void registered_thread_shuts_dumpcap_out()
{
    Findings findings;
    const std::string prefix = unique_prefix("rspdapireg");
    const SOCKET s = start_api(prefix, true, findings);
    ReceivingThread receiver(s, 51);
    findings.check(kernel_sends(1) && receiver.wait_received(1, 10s), "the first datagram did not arrive");
    findings.check(receiver.lcore() != LCORE_ID_ANY, "the receiving thread was not registered with EAL");

    Child dumpcap = start_dumpcap(prefix, "/tmp/" + prefix + ".pcapng");
    const Finished refused = dumpcap.wait(30s);
    findings.check(refused.finished && refused.exit_code != 0,
                   "dumpcap attached to a process with a registered thread:\n" + refused.output);
    findings.check(refused.output.find("refused secondary attachment") != std::string::npos,
                   "dumpcap failed without EAL's refusal:\n" + refused.output);

    findings.check(kernel_sends(50), "sending after the refusal failed");
    findings.check(receiver.join() == 51, "datagrams went missing after dumpcap was refused");
    stop_api(s, findings);
}

// eal.register_application_threads = false: dumpcap attaches and captures
// while the thread receives every datagram, uncached.
void unregistered_thread_lets_dumpcap_in()
{
    Findings findings;
    const std::string prefix = unique_prefix("rspdapiunreg");
    const std::string capture = "/tmp/" + prefix + ".pcapng";
    const SOCKET s = start_api(prefix, false, findings);
    ReceivingThread receiver(s, 101);
    findings.check(kernel_sends(1) && receiver.wait_received(1, 10s), "the first datagram did not arrive");
    findings.check(receiver.lcore() == LCORE_ID_ANY, "registered although the profile says not to");

    Child dumpcap = start_dumpcap(prefix, capture);
    expect_attached(dumpcap, findings);
    findings.check(kernel_sends(100), "sending under capture failed");
    expect_captured(dumpcap, capture, findings);
    findings.check(receiver.join() == 101, "datagrams went missing under capture");
    stop_api(s, findings);
}

// dumpcap first, registration on: EAL refuses the thread, which receives
// every datagram without a cache.
void dumpcap_first_leaves_the_thread_uncached()
{
    Findings findings;
    const std::string prefix = unique_prefix("rspdapifirst");
    const std::string capture = "/tmp/" + prefix + ".pcapng";
    const SOCKET s = start_api(prefix, true, findings);
    Child dumpcap = start_dumpcap(prefix, capture);
    expect_attached(dumpcap, findings);

    ReceivingThread receiver(s, 100);
    findings.check(kernel_sends(100), "sending under capture failed");
    findings.check(receiver.join() == 100, "datagrams went missing with registration refused");
    findings.check(receiver.lcore() == LCORE_ID_ANY, "EAL registered a thread although a secondary was attached");
    expect_captured(dumpcap, capture, findings);
    stop_api(s, findings);
}

class PdumpApi : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (g_netns == nullptr) GTEST_SKIP() << "needs root and a namespace testbed";
        if (ringsock::testing::run_shell("command -v dpdk-dumpcap tshark").exit_code != 0)
            GTEST_SKIP() << "dpdk-dumpcap or tshark not installed";
        hugepages_ = std::make_unique<ringsock::testing::Hugepages>(256);
        if (!hugepages_->ok()) GTEST_SKIP() << hugepages_->why();
    }

private:
    std::unique_ptr<ringsock::testing::Hugepages> hugepages_;
};

TEST_F(PdumpApi, ARegisteredApplicationThreadShutsDumpcapOut)
{
    EXPECT_EXIT(registered_thread_shuts_dumpcap_out(), ::testing::ExitedWithCode(0), "");
}

TEST_F(PdumpApi, WithRegistrationOffDumpcapCapturesWhileAThreadReceives)
{
    EXPECT_EXIT(unregistered_thread_lets_dumpcap_in(), ::testing::ExitedWithCode(0), "");
}

TEST_F(PdumpApi, WithDumpcapAttachedFirstAThreadReceivesUncached)
{
    EXPECT_EXIT(dumpcap_first_leaves_the_thread_uncached(), ::testing::ExitedWithCode(0), "");
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    std::unique_ptr<ringsock::testing::Namespace> netns;
    if (ringsock::testing::running_as_root()) {
        netns = std::make_unique<ringsock::testing::Namespace>("rspdapi");
        if (netns->ok()) g_netns = netns.get();
    }
    const int result = RUN_ALL_TESTS();
    g_netns = nullptr;
    return result;
}
