// TCP through lwIP's raw API against the Linux kernel in a namespace: an
// echo server on our stack (tests/support/lwip_tcp_echo.hh) and a Python
// client in the namespace. Bulk data must come back byte for byte (SHA-256
// of what was sent and what came back), also through a lossy, reordering
// link; a peer's reset must be seen as a reset and its close as a close;
// and every mbuf lwIP held must be back in the pool afterwards.
//
// Needs root (namespaces, tc); skipped with the reason otherwise.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/lwip_tcp_client.hh"
#include "tests/support/lwip_tcp_echo.hh"
#include "tests/support/stack_host.hh"
#include "tests/support/subprocess.hh"

namespace {

using namespace std::chrono_literals;
using ringsock::testing::Child;
using ringsock::testing::Finished;
using ringsock::testing::LwipTcpEchoServer;

constexpr const char* kNamespace = "rstcp";

ringsock::testing::StackHost* host = nullptr;

// The client, run as `python3 FILE HOST PORT BYTES MODE`. In "echo" mode a
// thread sends BYTES of seeded random data (randbytes is far faster than
// os.urandom, and the data need not be secret) and then shuts its write
// side down, while the main thread reads the echo until EOF; both sides
// are hashed as they go, so nothing is held in memory. Both directions run
// at once: the server opens its window only as the echo is read, so a
// client that sent everything before reading would deadlock. It prints the
// kernel's retransmission count for the transfer (this namespace's
// /proc/net/snmp) for the report.
constexpr const char* kClient = R"PY(
import hashlib, random, socket, struct, sys, threading, time

host, port, total, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def kernel_retrans():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])

def connect():
    for attempt in range(50):
        try:
            return socket.create_connection((host, port), timeout=60)
        except (ConnectionRefusedError, socket.timeout):
            time.sleep(0.1)
    raise SystemExit("could not connect")

retrans_before = kernel_retrans()
s = connect()
if mode == "reset":
    s.sendall(b"x" * 1000)
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("reset sent", flush=True)
    sys.exit(0)

sent, got = hashlib.sha256(), hashlib.sha256()
failure = []

def send():
    try:
        rng = random.Random(20240611)
        left = total
        while left:
            chunk = rng.randbytes(min(left, 1 << 20))
            sent.update(chunk)
            s.sendall(chunk)
            left -= len(chunk)
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        failure.append(repr(e))

start = time.monotonic()
sender = threading.Thread(target=send)
sender.start()
received = 0
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got.update(b)
        received += len(b)
except Exception as e:
    failure.append(repr(e))
sender.join()
seconds = time.monotonic() - start
s.close()
print(f"sent {total} sha256 {sent.hexdigest()}")
print(f"received {received} sha256 {got.hexdigest()}")
print(f"seconds {seconds:.3f} MB/s {total / seconds / 1e6:.1f} kernel-retrans {kernel_retrans() - retrans_before}")
if failure:
    print("failure", failure)
sys.exit(0 if not failure and received == total and sent.digest() == got.digest() else 1)
)PY";

// The client script in a temporary file (namespaces share the filesystem).
class ClientScript {
public:
    ClientScript()
    {
        char name[] = "/tmp/rstcp-client-XXXXXX";
        const int fd = mkstemp(name);
        if (fd >= 0) close(fd);
        path_ = name;
        std::ofstream(path_) << kClient;
    }
    ~ClientScript() { std::remove(path_.c_str()); }
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

// Loss and reordering for the life of the guard, removed on every exit
// path, failed assertions included. netem on the namespace's eth0 where the
// kernel has sch_netem (the kernel's data and ACKs are lost, reordered,
// delayed); where it has not (these build VMs' kernels ship without it),
// the same rates applied in-process at lwIP's netif, both directions, so
// lwIP's own retransmissions are exercised as well as the kernel's.
class Impairment {
public:
    Impairment(unsigned loss_per_mille, unsigned reorder_per_mille)
    {
        const Finished done = ringsock::testing::run_shell(
            host->in_namespace("tc qdisc add dev eth0 root netem loss " + percent(loss_per_mille) + " reorder " +
                               percent(reorder_per_mille) + " delay 1ms"));
        netem_ = done.exit_code == 0;
        if (!netem_) in_process_.emplace(host->lwip().raw(), loss_per_mille, reorder_per_mille, 20240611);
        why_ = netem_ ? "netem on the namespace's eth0" : "in-process at lwIP's netif (" + done.output + ")";
    }
    ~Impairment()
    {
        if (netem_) ringsock::testing::run_shell(host->in_namespace("tc qdisc del dev eth0 root"));
    }
    // How, and what it dropped and reordered, for the report.
    std::string report() const
    {
        if (netem_)
            return why_ + ": " + ringsock::testing::run_shell(host->in_namespace("tc -s qdisc show dev eth0")).output;
        const auto& c = in_process_->counters();
        return why_ + ": into lwIP dropped " + std::to_string(c.rx_dropped) + " reordered " +
               std::to_string(c.rx_reordered) + ", out of lwIP dropped " + std::to_string(c.tx_dropped) +
               " reordered " + std::to_string(c.tx_reordered);
    }

private:
    static std::string percent(unsigned per_mille)
    {
        return std::to_string(per_mille / 10) + "." + std::to_string(per_mille % 10) + "%";
    }
    bool netem_ = false;
    std::optional<ringsock::testing::LwipImpairment> in_process_;
    std::string why_;
};

class StackTcp : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!host->ready()) GTEST_SKIP() << host->why();
        host->poll_for(100ms); // flush what the last test left in the TX buffer
        mbufs_before_ = host->mbufs_in_use();
        pcbs_before_ = ringsock::testing::lwip_tcp_pcbs_in_use();
    }
    // Every RX mbuf lwIP took (zero-copy pbufs in receive and out-of-order
    // queues, the echo server's queue) is back once the connections are
    // gone; TCP pcbs too (the kernel side closes first, so TIME_WAIT is
    // the kernel's, not lwIP's).
    void TearDown() override
    {
        if (!host->ready()) return;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline &&
               (host->mbufs_in_use() != mbufs_before_ || ringsock::testing::lwip_tcp_pcbs_in_use() != pcbs_before_))
            host->poll_for(50ms);
        EXPECT_EQ(host->mbufs_in_use(), mbufs_before_) << "mbufs still held after the test";
        EXPECT_EQ(ringsock::testing::lwip_tcp_pcbs_in_use(), pcbs_before_)
            << "TCP pcbs still held; " << ringsock::testing::lwip_tcp_counters();
    }

    // Runs the client against a fresh echo server on `port`; returns what
    // it printed. The server is gone (and any connection left aborted)
    // before this returns.
    Finished run_client(uint16_t port, size_t bytes, const std::string& mode, std::chrono::seconds limit,
                        LwipTcpEchoServer::Counters& counters)
    {
        LwipTcpEchoServer server(port);
        Child client({"/bin/sh", "-c",
                      host->in_namespace("python3 " + script_.path() + " 198.18.0.2 " + std::to_string(port) + " " +
                                         std::to_string(bytes) + " " + mode)});
        const auto start = std::chrono::steady_clock::now();
        Finished done = host->run_until_exit(client, limit);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // The last ACKs and the close (or the reset) reach lwIP after the
        // client has exited.
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (server.open_connections() != 0 && std::chrono::steady_clock::now() < deadline)
            host->poll_for(20ms);
        counters = server.counters();
        std::printf("[ client   ] %s %zu bytes: %.2f s, mbufs in use at the end %u, server queued %zu\n%s",
                    mode.c_str(), bytes, seconds, host->mbufs_in_use(), server.bytes_queued(), done.output.c_str());
        std::printf(
            "[ lwip     ] accepted %llu echoed %llu resets %llu closes %llu other %llu stalls %llu; %s\n",
            static_cast<unsigned long long>(counters.accepted), static_cast<unsigned long long>(counters.bytes_echoed),
            static_cast<unsigned long long>(counters.resets), static_cast<unsigned long long>(counters.closes),
            static_cast<unsigned long long>(counters.other_errors),
            static_cast<unsigned long long>(counters.write_stalls), ringsock::testing::lwip_tcp_counters().c_str());
        return done;
    }

    // The "<label> <bytes> sha256 <hex>" line the client prints, as
    // {bytes, hash}; empty strings when absent. (No std::regex: GCC 12
    // warns inside it under -fsanitize with -Werror.)
    static std::pair<std::string, std::string> client_line(const std::string& output, const std::string& label)
    {
        const auto at = output.find(label + " ");
        if (at == std::string::npos) return {};
        std::istringstream line(output.substr(at + label.size() + 1));
        std::string bytes, word, hash;
        line >> bytes >> word >> hash;
        if (word != "sha256" || hash.size() != 64) return {};
        return {bytes, hash};
    }

    // Asserts the client's two hashes are present and equal.
    static void expect_identical(const Finished& done, size_t bytes)
    {
        const auto sent = client_line(done.output, "sent");
        const auto received = client_line(done.output, "received");
        ASSERT_FALSE(sent.second.empty()) << done.output;
        ASSERT_FALSE(received.second.empty()) << done.output;
        EXPECT_EQ(sent.first, std::to_string(bytes));
        EXPECT_EQ(received.first, std::to_string(bytes));
        EXPECT_EQ(sent.second, received.second);
    }

    ClientScript script_;
    unsigned mbufs_before_ = 0;
    unsigned pcbs_before_ = 0;
};

TEST_F(StackTcp, KernelClientGetsBack64MiBIdentical)
{
    constexpr size_t kBytes = 64u << 20;
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7001, kBytes, "echo", 120s, counters);
    ASSERT_TRUE(done.finished) << "client still running after 120 s: " << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.bytes_echoed, kBytes);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
}

TEST_F(StackTcp, EchoIsIdenticalThroughLossAndReordering)
{
    // 1% loss and 1% reordering each way. 8 MiB, not 64: with loss on its
    // own sends lwIP recovers mostly by RTO (500 ms ticks, Reno, no SACK
    // processing), and 16 MiB took 85 s here (0.2 MB/s, 163 of lwIP's
    // segments and 161 of the kernel's dropped); 64 MiB would take minutes.
    constexpr size_t kBytes = 8u << 20;
    Impairment impairment(10, 10);
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7002, kBytes, "echo", 150s, counters);
    std::printf("[ impaired ] %s\n", impairment.report().c_str());
    ASSERT_TRUE(done.finished) << "client still running after 150 s: " << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.bytes_echoed, kBytes);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
}

TEST_F(StackTcp, APeerResetIsSeenAsAReset)
{
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7003, 0, "reset", 30s, counters);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.resets, 1u);
    EXPECT_EQ(counters.closes, 0u);
}

TEST_F(StackTcp, PeerCloseIsSeenAsAClose)
{
    constexpr size_t kBytes = 100000;
    LwipTcpEchoServer::Counters counters;
    const Finished done = run_client(7004, kBytes, "echo", 30s, counters);
    EXPECT_EQ(done.exit_code, 0) << done.output;
    expect_identical(done, kBytes);
    EXPECT_EQ(counters.accepted, 1u);
    EXPECT_EQ(counters.closes, 1u);
    EXPECT_EQ(counters.resets, 0u);
    EXPECT_EQ(counters.other_errors, 0u);
}

TEST_F(StackTcp, WeConnectToAKernelServerAndItGetsEveryByte)
{
    // The kernel reads exactly the bytes it expects, checks them against
    // the same pattern, answers "ok N" or "mismatch", and closes first.
    constexpr size_t kBytes = 8u << 20;
    Child server({"/bin/sh", "-c",
                  host->in_namespace("timeout 60 python3 -c '\n"
                                     "import socket, sys\n"
                                     "n = int(sys.argv[1])\n"
                                     "block = bytes((i * 7 + 3) % 256 for i in range(256))\n"
                                     "expected = (block * (n // 256 + 1))[:n]\n"
                                     "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                     "s.bind((\"198.18.0.1\", 7200)); s.listen(1)\n"
                                     "print(\"listening\", flush=True)\n"
                                     "c, peer = s.accept()\n"
                                     "got = bytearray()\n"
                                     "while len(got) < n:\n"
                                     "    chunk = c.recv(1 << 20)\n"
                                     "    if not chunk: break\n"
                                     "    got += chunk\n"
                                     "answer = (\"ok %d\" % len(got)) if bytes(got) == expected else \"mismatch\"\n"
                                     "c.sendall(answer.encode()); c.close()\n"
                                     "print(answer, peer, flush=True)\n"
                                     "' " +
                                     std::to_string(kBytes))});
    const auto ready = std::chrono::steady_clock::now() + 20s;
    while (server.poll_output().find("listening") == std::string::npos && std::chrono::steady_clock::now() < ready)
        host->poll_for(50ms);
    ASSERT_NE(server.poll_output().find("listening"), std::string::npos) << server.poll_output();

    ringsock::testing::LwipTcpClient client({198, 18, 0, 1}, 7200, kBytes);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!client.peer_closed() && !client.failed() && std::chrono::steady_clock::now() < deadline)
        host->poll_for(20ms);
    const Finished done = host->run_until_exit(server, 10s);
    EXPECT_TRUE(client.connected());
    EXPECT_FALSE(client.failed());
    EXPECT_EQ(client.bytes_sent(), kBytes);
    EXPECT_EQ(client.received(), "ok " + std::to_string(kBytes)) << done.output;
    EXPECT_EQ(done.exit_code, 0) << done.output;
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    int rc = 0;
    {
        ringsock::testing::StackHost bed(kNamespace, "test_stack_tcp");
        host = &bed;
        rc = RUN_ALL_TESTS();
        host = nullptr;
    }
    return rc;
}
