// dpdk-dumpcap captures a running ringsock-sink's port through the pdump
// framework: the sink receives on net_af_packet from a namespace, dumpcap
// attaches as a DPDK secondary process, and the capture file must hold the
// frames the namespace sent.
//
// Secondary processes cannot attach to a --no-huge primary, so this test
// reserves hugepages for itself (and gives them back). Needs root; skipped
// with the reason when the host refuses hugepages or namespaces.
#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;
using ringsock::testing::wait_for_output;

TEST(Pdump, DumpcapCapturesARunningSinksTraffic)
{
    if (ringsock::testing::run_shell("command -v dpdk-dumpcap tshark").exit_code != 0)
        GTEST_SKIP() << "dpdk-dumpcap or tshark not installed";
    ringsock::testing::Hugepages hugepages(256);
    if (!hugepages.ok()) GTEST_SKIP() << hugepages.why();
    ringsock::testing::Namespace netns("rspdump");
    if (!netns.ok()) GTEST_SKIP() << netns.why();

    const std::string prefix = "rspdump" + std::to_string(getpid());
    const std::string capture = "/tmp/" + prefix + ".pcapng";
    Child sink({ringsock::testing::build_root() + "/dataplane/tools/ringsock-sink", "--profile",
                ringsock::testing::source_root() + "/drivers_config/af_packet.toml", "--set",
                "port.device=net_af_packet0,iface=" + netns.host_interface() + ",qpairs=1", "--set",
                "eal.file_prefix=" + prefix, "--set", "eal.lcores=0", "--set",
                // dumpcap maps the primary's memory at the primary's
                // addresses. Under ASan DPDK's default base (4 GiB) lies in the
                // shadow gap, so the primary's memory lands wherever mmap put
                // it and may collide with a library in dumpcap; an explicit
                // base above ASan's high shadow is free in both.
                "eal.extra_args=[\"--base-virtaddr=0x200000000000\"]", "--duration", "60", "--json", "--interval-ms",
                "200"});
    ASSERT_TRUE(wait_for_output(sink, "\"t\":", 60s)) << sink.poll_output();
    EXPECT_EQ(sink.poll_output().find("--no-huge"), std::string::npos) << "the sink should use the hugepages";

    constexpr int kCapture = 100;
    Child dumpcap({"dpdk-dumpcap", "--file-prefix=" + prefix, "-i", "net_af_packet0", "-c", std::to_string(kCapture),
                   "-w", capture});
    // dumpcap names its file once it has attached to the primary and
    // enabled capture on the port.
    ASSERT_TRUE(wait_for_output(dumpcap, "File:", 30s)) << dumpcap.poll_output();
    std::this_thread::sleep_for(500ms);

    const Finished sent = ringsock::testing::run_shell(netns.exec(ringsock::testing::raw_frame_sender(400)));
    EXPECT_EQ(sent.exit_code, 0) << sent.output;
    const Finished captured = dumpcap.wait(20s);
    EXPECT_EQ(captured.exit_code, 0) << captured.output;

    sink.signal(SIGTERM);
    const Finished stopped = sink.wait(20s);
    EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
    EXPECT_NE(stopped.output.find("\"mbufs_taken_after_close\":0"), std::string::npos) << stopped.output;

    const Finished read =
        ringsock::testing::run_shell("tshark -r " + capture + " -Y 'eth.type == 0x88b5' 2>&1 | wc -l");
    EXPECT_GE(std::stoi(read.output), kCapture - 10) << "capture held too few of our frames";
    const Finished total = ringsock::testing::run_shell("tshark -r " + capture + " 2>/dev/null | wc -l");
    // dumpcap stops at the burst that reaches the count, so a few more may land.
    EXPECT_GE(std::stoi(total.output), kCapture);
    unlink(capture.c_str());
}

} // namespace
