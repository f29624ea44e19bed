// The /ringsock/ telemetry commands, read the way dpdk-telemetry.py reads
// them: over the process's telemetry socket (SOCK_SEQPACKET, JSON replies).
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/eal.hh"
#include "dataplane/profile.hh"
#include "dataplane/telemetry.hh"

namespace {

using namespace ringsock::dataplane;

std::optional<Eal> eal;

// Sends one command on a fresh connection and returns the JSON reply.
std::string ask(const std::string& command)
{
    const std::string path = std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2";
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    EXPECT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << path;
    char buffer[16384];
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0); // the greeting
    EXPECT_GT(n, 0);
    EXPECT_EQ(send(fd, command.data(), command.size(), 0), static_cast<ssize_t>(command.size()));
    n = recv(fd, buffer, sizeof(buffer), 0);
    close(fd);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

DataplaneSnapshot fake_snapshot()
{
    DataplaneSnapshot s;
    EngineSnapshot e;
    e.lcore = 0;
    e.rx_packets = 1234;
    e.rx_bytes = 1234 * 64;
    e.unclaimed = 3;
    s.engines.push_back(e);
    s.queues.push_back({0, 0, 0, 1234, 1234 * 64, 40});
    s.port.imissed = 7;
    s.port.rx_nombuf = 2;
    s.mbufs_capacity = 8191;
    s.mbufs_in_use = 512;
    return s;
}

TEST(Telemetry, SummaryCarriesTotalsAndDropsByCause)
{
    TelemetryPublication publication(fake_snapshot);
    const std::string reply = ask("/ringsock/summary");
    EXPECT_NE(reply.find("\"/ringsock/summary\""), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"rx_packets\":1234"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"imissed\":7"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"rx_nombuf\":2"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"rx_drops\":12"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\"mbufs_in_use\":512"), std::string::npos) << reply;
}

TEST(Telemetry, EnginesAndQueuesAreListedAndReadable)
{
    TelemetryPublication publication(fake_snapshot);
    EXPECT_NE(ask("/ringsock/engines").find("[0]"), std::string::npos);
    EXPECT_NE(ask("/ringsock/engine,0").find("\"unclaimed\":3"), std::string::npos);
    EXPECT_NE(ask("/ringsock/queues").find("\"0:0\""), std::string::npos);
    EXPECT_NE(ask("/ringsock/queue,0:0").find("\"rx_bursts\":40"), std::string::npos);
    EXPECT_NE(ask("/ringsock/port").find("\"imissed\":7"), std::string::npos);
}

TEST(Telemetry, CounterGroupsArePublishedWhileTheyLive)
{
    {
        TelemetryGroup group("classifier", [] {
            return std::vector<std::pair<std::string, uint64_t>>{{"lwip", 5}, {"drop_truncated", 2}};
        });
        EXPECT_NE(ask("/ringsock/groups").find("\"classifier\""), std::string::npos);
        const std::string reply = ask("/ringsock/group,classifier");
        EXPECT_NE(reply.find("\"lwip\":5"), std::string::npos) << reply;
        EXPECT_NE(reply.find("\"drop_truncated\":2"), std::string::npos) << reply;
        EXPECT_NE(ask("/ringsock/group,nosuch").find("null"), std::string::npos);
    }
    EXPECT_EQ(ask("/ringsock/groups").find("\"classifier\""), std::string::npos);
}

TEST(Telemetry, BadParametersAndNoPublicationAnswerNull)
{
    {
        TelemetryPublication publication(fake_snapshot);
        EXPECT_NE(ask("/ringsock/engine,99").find("null"), std::string::npos);
        EXPECT_NE(ask("/ringsock/engine,x").find("null"), std::string::npos);
    }
    EXPECT_NE(ask("/ringsock/summary").find("null"), std::string::npos);
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    eal.emplace(parse_profile("[eal]\nmemory_mb = 128\n[port]\ndevice = \"net_null0\"\n", "test_telemetry"),
                "test_telemetry");
    const int rc = RUN_ALL_TESTS();
    eal.reset();
    return rc;
}
