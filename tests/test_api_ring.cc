// The Winsock API's receive semantics through the public header, with an
// in-process net_ring peer (tests/support/ring_peer.hh): WSAStartup makes the
// port from drivers_config/ring.toml with the peer's rings as its queues, the
// test puts hand-built UDP frames on the receive ring. Nothing is lost between
// the peer and the stack, so counts here are exact. The same behaviours
// against the kernel: test_api_udp.cc.
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "api/bench/pin_thread.hh"
#include "tests/support/ring_peer.hh"
#include "tests/support/ring_peer_startup.hh"
#include "tests/support/subprocess.hh"
#include "tests/support/winsock_helpers.hh"
#include "tests/support/winsock_receive_cases.hh"

namespace {

using namespace std::chrono_literals;
namespace peer = ringsock::testing;
using ringsock::testing::signalled;
using ringsock::testing::wait_queued;

SOCKET bound_socket(uint16_t port)
{
    return ringsock::testing::bound_udp_socket(port);
}

// An IPv6-only datagram socket bound to [::]:port; INVALID_SOCKET (with a
// failure recorded) if it cannot be made or bound.
SOCKET bound_ipv6_socket(uint16_t port)
{
    SOCKET s = WSASocket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET) return s;
    sockaddr_in6 local{};
    local.sin6_family = AF_INET6;
    local.sin6_port = htons(port);
    if (bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
        ADD_FAILURE() << "bind [::]:" << port << ": " << WSAGetLastError();
        closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

// FIONREAD reads 0 on each socket: nothing more reached it.
void expect_nothing_queued(std::initializer_list<SOCKET> sockets)
{
    for (SOCKET s : sockets) {
        u_long queued = 1;
        ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
        EXPECT_EQ(queued, 0u);
    }
}

constexpr DWORD kWaitMs = 5000;

// Byte i of datagram k.
uint8_t pattern(unsigned k, unsigned i)
{
    return static_cast<uint8_t>((k * 7 + i) % 256);
}

std::vector<uint8_t> datagram(unsigned k, std::size_t size)
{
    std::vector<uint8_t> out(size);
    for (std::size_t i = 0; i < size; ++i)
        out[i] = pattern(k, static_cast<unsigned>(i));
    return out;
}

// Datagram k of `size` bytes from the peer's `src_port` to our `port`.
void peer_sends(uint16_t port, unsigned k, std::size_t size, uint16_t src_port = 40000, bool bad_checksum = false)
{
    ASSERT_TRUE(peer::send_udp(src_port, port, datagram(k, size), bad_checksum)) << "the peer could not send";
}

// The in-process peer as the shared receive cases see it.
ringsock::testing::DatagramPeer ring_peer()
{
    return {[](uint16_t port, const std::vector<std::size_t>& sizes) {
                for (unsigned k = 0; k < sizes.size(); ++k)
                    peer_sends(port, k, sizes[k]);
            },
            pattern};
}

class ApiRing : public ::testing::Test {
protected:
    void SetUp() override
    {
        WSADATA data;
        ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0) << ringsock_startup_error();
        started_ = true;
        ASSERT_TRUE(peer::start_peer()) << peer::ring_peer_error();
        peer::drain_sent();
    }
    void TearDown() override
    {
        if (started_) {
            EXPECT_EQ(WSACleanup(), 0);
        }
        peer::drain_sent();
    }

private:
    bool started_ = false;
};

TEST_F(ApiRing, PendingReceiveFromGetsTheDatagramAndItsSourceAtCompletion)
{
    SOCKET s = bound_socket(7301);
    WSAEVENT ev = WSACreateEvent();
    char b[64];
    std::memset(b, 0, sizeof(b));
    WSABUF buf{sizeof(b), b};
    // MSG_PARTIAL is a valid input flag; a delayed completion must leave
    // *lpFlags as it was, so the sentinel shows any write.
    DWORD got = 0xdeadbeef, flags = MSG_PARTIAL;
    // A sockaddr_storage: *lpFromlen must shrink to the address's size.
    sockaddr_storage from_storage{};
    auto& from = reinterpret_cast<sockaddr_in&>(from_storage);
    from.sin_port = 0x5a5a;
    int fromlen = sizeof(from_storage);
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecvFrom(s, &buf, 1, &got, &flags, reinterpret_cast<sockaddr*>(&from_storage), &fromlen, &ov, nullptr),
              SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    EXPECT_EQ(from.sin_port, 0x5a5a) << "lpFrom is written only at completion";
    EXPECT_EQ(fromlen, static_cast<int>(sizeof(from_storage))) << "lpFromlen is written only at completion";
    DWORD bytes = 0, out_flags = 0;
    EXPECT_FALSE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &out_flags));
    EXPECT_EQ(WSAGetLastError(), WSA_IO_INCOMPLETE);

    peer_sends(7301, 3, 20, 40002);
    ASSERT_TRUE(signalled(ev, kWaitMs)) << "no completion";
    ASSERT_TRUE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &out_flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 20u);
    EXPECT_EQ(out_flags & MSG_PARTIAL, 0u);
    EXPECT_EQ(got, 0xdeadbeefu) << "lpNumberOfBytesRecvd is not updated for a delayed completion";
    EXPECT_EQ(flags, static_cast<DWORD>(MSG_PARTIAL)) << "lpFlags is not updated for a delayed completion";
    EXPECT_EQ(ntohs(from.sin_port), 40002);
    EXPECT_EQ(from.sin_family, AF_INET);
    EXPECT_EQ(fromlen, static_cast<int>(sizeof(sockaddr_in)));
    char text[INET_ADDRSTRLEN];
    EXPECT_STREQ(inet_ntop(AF_INET, &from.sin_addr, text, sizeof(text)), peer::kRingPeerIpv4);
    for (unsigned i = 0; i < 20; ++i)
        ASSERT_EQ(static_cast<uint8_t>(b[i]), pattern(3, i)) << i;
    EXPECT_EQ(b[20], 0) << "nothing past the datagram";
    WSACloseEvent(ev);
    closesocket(s);
}

TEST_F(ApiRing, BuffersFillInArrayOrderWithoutHoles)
{
    ringsock::testing::buffers_fill_in_array_order_without_holes(7302, ring_peer());
}

TEST_F(ApiRing, OversizeDatagramFillsTheBuffersFailsWithEmsgsizeAndLosesTheRest)
{
    ringsock::testing::oversize_datagram_fills_the_buffers_and_fails_with_emsgsize(7303, ring_peer());
}

TEST_F(ApiRing, ReceivesPostedOnACompletionPortCompleteInPostingOrder)
{
    ringsock::testing::receives_complete_in_posting_order(7304, 32, ring_peer());
}

// A completion port hands out one socket's completions in the order their
// datagrams arrived, whether the engine completed the receive (posted
// before the datagram) or the caller's thread did (posted after it, when
// the datagram was already queued): each round posts half the receives,
// sends twice as many datagrams, waits until the engine has written the
// first half's results, posts the other half, and reaps one at a time.
// `settle`: pause before the second half, so that every one of them
// completes at once (checked); without it they are posted the moment the
// engine's results are visible, racing the engine's queueing of the
// first half's completions (which must still come first).
void completions_keep_arrival_order(uint16_t port, unsigned rounds, bool settle)
{
    constexpr unsigned kHalf = 4;
    SOCKET s = bound_socket(port);
    HANDLE iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(iocp, nullptr);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), iocp, 5, 0), iocp);
    std::vector<std::vector<char>> b(2 * kHalf, std::vector<char>(16, 0));
    std::vector<WSAOVERLAPPED> ov(2 * kHalf);
    unsigned next_datagram = 0;
    unsigned at_once = 0;
    for (unsigned round = 0; round < rounds; ++round) {
        for (unsigned i = 0; i < kHalf; ++i) {
            ov[i] = WSAOVERLAPPED{};
            WSABUF buf{16, b[i].data()};
            DWORD got = 0, flags = 0;
            ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov[i], nullptr), SOCKET_ERROR);
            ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
        }
        for (unsigned k = 0; k < 2 * kHalf; ++k)
            peer_sends(port, (next_datagram + k) % 256, 8);
        for (unsigned i = 0; i < kHalf; ++i) {
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            while (std::atomic_ref<ULONG_PTR>(ov[i].Internal).load() == STATUS_PENDING)
                ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "round " << round << " receive " << i;
        }
        if (settle) std::this_thread::sleep_for(2ms); // the engine's last completion queued
        for (unsigned i = kHalf; i < 2 * kHalf; ++i) {
            ov[i] = WSAOVERLAPPED{};
            WSABUF buf{16, b[i].data()};
            DWORD got = 0, flags = 0;
            const int rc = WSARecv(s, &buf, 1, &got, &flags, &ov[i], nullptr);
            if (rc == 0) {
                ++at_once;
                EXPECT_EQ(got, 8u);
            } else {
                ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING) << "round " << round << " receive " << i;
            }
            if (settle) {
                ASSERT_EQ(rc, 0) << "round " << round << " receive " << i << " did not complete at once";
            }
        }
        for (unsigned k = 0; k < 2 * kHalf; ++k) {
            DWORD bytes = 0;
            ULONG_PTR key = 0;
            LPOVERLAPPED done = nullptr;
            ASSERT_TRUE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, kWaitMs)) << "round " << round;
            EXPECT_EQ(key, 5u);
            EXPECT_EQ(bytes, 8u);
            const auto i = static_cast<unsigned>(done - ov.data());
            ASSERT_LT(i, 2 * kHalf);
            ASSERT_EQ(i, k) << "round " << round << ": completion " << k << " is receive " << i;
            ASSERT_EQ(static_cast<uint8_t>(b[i][0]), pattern((next_datagram + k) % 256, 0))
                << "round " << round << ": completion " << k << " holds another datagram";
        }
        next_datagram += 2 * kHalf;
    }
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 100)) << "a completion too many";
    std::printf("%u of %u second-half receives completed at once\n", at_once, rounds * kHalf);
    closesocket(s);
    CloseHandle(iocp);
}

TEST_F(ApiRing, CompletionsFromTheEngineAndAtOnceKeepArrivalOrderOnAPort)
{
    completions_keep_arrival_order(7320, 20, true);
}

TEST_F(ApiRing, CompletionsAtOnceRacingTheEnginesQueueingKeepArrivalOrder)
{
    completions_keep_arrival_order(7321, 400, false);
}

// A receive on a completion port that fails at once (a queued datagram
// larger than its buffers: WSAEMSGSIZE) queues no packet: "any other error
// code indicates that the overlapped operation was not successfully
// initiated and no completion indication will occur" (WSARecv). The next
// receive, which fits, completes at once and does queue its packet.
TEST_F(ApiRing, ReceiveFailingAtOnceWithEmsgsizeQueuesNoPortPacket)
{
    SOCKET s = bound_socket(7325);
    HANDLE iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(iocp, nullptr);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), iocp, 6, 0), iocp);
    peer_sends(7325, 0, 100);
    peer_sends(7325, 1, 8);
    ASSERT_TRUE(wait_queued(s, 108));
    char b[20];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED failed{};
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &failed, nullptr), SOCKET_ERROR);
    EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
    WSAOVERLAPPED fits{};
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &fits, nullptr), 0) << WSAGetLastError();
    EXPECT_EQ(got, 8u);
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    ASSERT_TRUE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, kWaitMs));
    EXPECT_EQ(done, &fits) << "the failed receive queued a packet";
    EXPECT_EQ(bytes, 8u);
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 100)) << "a packet too many";
    closesocket(s);
    CloseHandle(iocp);
}

// A UDP socket bound to `port` and associated with a completion port of
// its own under `key`, and an event: what the tests of notifications
// watch. All three are closed with the test.
struct PortAndEvent {
    PortAndEvent(uint16_t port_number, ULONG_PTR key)
        : socket(bound_socket(port_number)), port(CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1)),
          event(WSACreateEvent())
    {
        EXPECT_NE(port, nullptr);
        EXPECT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(socket), port, key, 0), port);
        EXPECT_NE(event, WSA_INVALID_EVENT);
    }
    ~PortAndEvent()
    {
        closesocket(socket); // refused harmlessly when the test closed it
        WSACloseEvent(event);
        CloseHandle(port);
    }
    PortAndEvent(const PortAndEvent&) = delete;
    PortAndEvent& operator=(const PortAndEvent&) = delete;

    // The OVERLAPPED of the port's next packet within `ms`, null if none;
    // its byte count and key in `bytes` and `key`, its failure (if it
    // reports one) in GetLastError().
    LPOVERLAPPED next_packet(DWORD ms)
    {
        LPOVERLAPPED done = nullptr;
        bytes = 0;
        key = 0;
        GetQueuedCompletionStatus(port, &bytes, &key, &done, ms);
        return done;
    }

    // An overlapped WSARecv of up to 64 bytes notifying `notify` (the
    // event, or a handle made from it); the call's result.
    int receive(WSAOVERLAPPED& ov, HANDLE notify, DWORD& got)
    {
        ov = WSAOVERLAPPED{};
        ov.hEvent = notify;
        DWORD flags = 0;
        return WSARecv(socket, &buffer, 1, &got, &flags, &ov, nullptr);
    }

    SOCKET socket;
    HANDLE port;
    WSAEVENT event;
    char data[64] = {};
    WSABUF buffer{sizeof(data), data};
    DWORD bytes = 0;
    ULONG_PTR key = 0;
};

// The page: "If the lpCompletionRoutine parameter is NULL, the hEvent
// parameter of lpOverlapped is signaled when the overlapped operation
// completes if it contains a valid event object handle". A socket's port
// association adds the port's packet; the event is signalled all the same:
// for a receive the engine completes, one that completes at once (with the
// port's packet, and with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS without it),
// a send, and a receive closesocket aborts.
TEST_F(ApiRing, TheOverlappedsEventIsSignalledBesideItsSocketsPort)
{
    constexpr uint16_t kPort = 7336;
    PortAndEvent t(kPort, 8);
    DWORD got = 0;

    // Completed by the engine.
    WSAOVERLAPPED pending;
    ASSERT_EQ(t.receive(pending, t.event, got), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    EXPECT_FALSE(signalled(t.event, 50)) << "signalled before anything arrived";
    peer_sends(kPort, 0, 10);
    EXPECT_TRUE(signalled(t.event, kWaitMs)) << "the engine's completion left the event unsignalled";
    EXPECT_EQ(t.next_packet(kWaitMs), &pending);
    EXPECT_EQ(t.bytes, 10u);
    EXPECT_EQ(t.key, 8u);

    // Completed at once, from the socket's queue.
    peer_sends(kPort, 1, 11);
    ASSERT_TRUE(wait_queued(t.socket, 11));
    ASSERT_TRUE(WSAResetEvent(t.event));
    WSAOVERLAPPED at_once;
    ASSERT_EQ(t.receive(at_once, t.event, got), 0) << WSAGetLastError();
    EXPECT_EQ(got, 11u);
    EXPECT_TRUE(signalled(t.event, 0)) << "a completion at once left the event unsignalled";
    EXPECT_EQ(t.next_packet(kWaitMs), &at_once);

    // At once and skipping the port: the event still.
    ASSERT_TRUE(
        SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(t.socket), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    peer_sends(kPort, 2, 12);
    ASSERT_TRUE(wait_queued(t.socket, 12));
    ASSERT_TRUE(WSAResetEvent(t.event));
    WSAOVERLAPPED skipping;
    ASSERT_EQ(t.receive(skipping, t.event, got), 0) << WSAGetLastError();
    EXPECT_EQ(got, 12u);
    EXPECT_TRUE(signalled(t.event, 0)) << "skipping the port skipped the event too";
    EXPECT_EQ(t.next_packet(100), nullptr) << "a packet although skipped";

    // A send to the peer.
    ASSERT_TRUE(WSAResetEvent(t.event));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(40000);
    ASSERT_EQ(inet_pton(AF_INET, peer::kRingPeerIpv4, &to.sin_addr), 1);
    WSAOVERLAPPED sent{};
    sent.hEvent = t.event;
    const int rc =
        WSASendTo(t.socket, &t.buffer, 1, &got, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to), &sent, nullptr);
    ASSERT_TRUE(rc == 0 || WSAGetLastError() == WSA_IO_PENDING) << WSAGetLastError();
    EXPECT_TRUE(signalled(t.event, kWaitMs)) << "the send's completion left the event unsignalled";
    if (rc != 0) {
        EXPECT_EQ(t.next_packet(kWaitMs), &sent);
    }

    // Aborted by closesocket.
    ASSERT_TRUE(WSAResetEvent(t.event));
    WSAOVERLAPPED aborted;
    ASSERT_EQ(t.receive(aborted, t.event, got), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    ASSERT_EQ(closesocket(t.socket), 0);
    EXPECT_TRUE(signalled(t.event, kWaitMs)) << "the aborted receive left the event unsignalled";
    EXPECT_EQ(t.next_packet(kWaitMs), &aborted);
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(WSA_OPERATION_ABORTED));
}

// Windows' GetQueuedCompletionStatus page: "A valid event handle whose
// low-order bit is set keeps I/O completion from being queued to the
// completion port" (libuv's try-writes use it on sockets it has associated
// with its port). The event, without that bit, is signalled instead: for a
// receive the engine completes and for one that completes at once. Event
// and port handles are multiples of four, as Windows' are, so the bit is
// free for this.
TEST_F(ApiRing, AnEventHandleWithItsLowBitSetKeepsTheCompletionOffThePort)
{
    constexpr uint16_t kPort = 7338;
    PortAndEvent t(kPort, 9);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.port) & 3, 0u);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(t.event) & 3, 0u) << "an event handle with a low bit of its own";
    const auto marked = reinterpret_cast<HANDLE>(reinterpret_cast<uintptr_t>(t.event) | 1);
    DWORD got = 0, flags = 0, bytes = 0;

    WSAOVERLAPPED pending;
    ASSERT_EQ(t.receive(pending, marked, got), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer_sends(kPort, 0, 13);
    EXPECT_TRUE(signalled(t.event, kWaitMs)) << "the event without its low bit was not signalled";
    ASSERT_TRUE(WSAGetOverlappedResult(t.socket, &pending, &bytes, FALSE, &flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 13u);
    EXPECT_EQ(t.next_packet(100), nullptr) << "the port got the packet";

    peer_sends(kPort, 1, 14);
    ASSERT_TRUE(wait_queued(t.socket, 14));
    ASSERT_TRUE(WSAResetEvent(t.event));
    WSAOVERLAPPED at_once;
    ASSERT_EQ(t.receive(at_once, marked, got), 0) << WSAGetLastError();
    EXPECT_EQ(got, 14u);
    EXPECT_TRUE(signalled(t.event, 0));
    EXPECT_EQ(t.next_packet(100), nullptr) << "the port got the packet";

    // Without the bit, the port has it again (and the event too).
    WSAOVERLAPPED plain;
    ASSERT_EQ(t.receive(plain, t.event, got), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer_sends(kPort, 2, 15);
    EXPECT_EQ(t.next_packet(kWaitMs), &plain);
    EXPECT_EQ(t.key, 9u);
}

// A non-blocking socket's synchronous receive never waits, not even
// behind an overlapped receive still pending on the socket (the next
// datagram is that one's): WSAEWOULDBLOCK at once, with and without
// MSG_PEEK, and the datagrams that come later go to the pending receive
// first and then to the next call, in order.
TEST_F(ApiRing, ANonBlockingReceiveBehindAPendingOneFailsAtOnce)
{
    constexpr uint16_t kPort = 7337;
    SOCKET s = bound_socket(kPort);
    u_long on = 1;
    ASSERT_EQ(ioctlsocket(s, FIONBIO, &on), 0);
    char b[64];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED pending{};
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &pending, nullptr), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);

    char c[64];
    int plain = 0, plain_error = 0, peeked = 0, peek_error = 0;
    const auto took = ringsock::testing::time_without_waiting(
        [&] {
            plain = recv(s, c, sizeof(c), 0);
            plain_error = WSAGetLastError();
            peeked = recv(s, c, sizeof(c), MSG_PEEK);
            peek_error = WSAGetLastError();
        },
        [&] {
            for (unsigned k = 100; k < 104; ++k)
                peer_sends(kPort, k, 5);
        });
    EXPECT_EQ(plain, SOCKET_ERROR);
    EXPECT_EQ(plain_error, WSAEWOULDBLOCK);
    EXPECT_EQ(peeked, SOCKET_ERROR);
    EXPECT_EQ(peek_error, WSAEWOULDBLOCK);
    EXPECT_LT(took, 2s) << "the non-blocking receives waited";

    peer_sends(kPort, 1, 21);
    peer_sends(kPort, 2, 22);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::atomic_ref<ULONG_PTR>(pending.Internal).load() == STATUS_PENDING)
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the pending receive never completed";
    DWORD bytes = 0;
    ASSERT_TRUE(WSAGetOverlappedResult(s, &pending, &bytes, FALSE, &flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 21u) << "the first datagram is the pending receive's";
    ASSERT_TRUE(wait_queued(s, 22));
    EXPECT_EQ(recv(s, c, sizeof(c), 0), 22) << WSAGetLastError();
    EXPECT_EQ(static_cast<uint8_t>(c[0]), pattern(2, 0));
    EXPECT_EQ(recv(s, c, sizeof(c), 0), SOCKET_ERROR);
    EXPECT_EQ(WSAGetLastError(), WSAEWOULDBLOCK);
    closesocket(s);
}

TEST_F(ApiRing, QueuedDatagramCompletesImmediatelyAndStillNotifies)
{
    ringsock::testing::queued_datagram_completes_at_once_and_still_notifies(7305, ring_peer());
}

TEST_F(ApiRing, ReceiveQueueIsBoundedByRcvbufAndCountsEveryDrop)
{
    SOCKET s = bound_socket(7306);
    const int rcvbuf = 1000;
    ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&rcvbuf), sizeof(int)), 0);
    for (unsigned k = 0; k < 20; ++k)
        peer_sends(7306, k, 100);
    ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frames";
    int drops = 0, len = sizeof(int);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_RINGSOCK_RCV_DROPS, reinterpret_cast<char*>(&drops), &len), 0);
        if (drops >= 10) break;
        std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(100ms);
    u_long queued = 0;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 1000u);
    len = sizeof(int);
    ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_RINGSOCK_RCV_DROPS, reinterpret_cast<char*>(&drops), &len), 0);
    EXPECT_EQ(len, static_cast<int>(sizeof(int)));
    // Ten fit; the other ten were dropped, each counted once.
    EXPECT_EQ(drops, 10);
    // The first ten are the ones kept, in order.
    char b[128];
    WSABUF buf{sizeof(b), b};
    for (unsigned k = 0; k < 10; ++k) {
        DWORD got = 0, flags = 0;
        WSAOVERLAPPED ov{};
        ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov, nullptr), 0) << k << ": " << WSAGetLastError();
        EXPECT_EQ(got, 100u);
        EXPECT_EQ(static_cast<uint8_t>(b[0]), pattern(k, 0)) << k;
        EXPECT_EQ(static_cast<uint8_t>(b[99]), pattern(k, 99)) << k;
    }
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 0u);
    closesocket(s);
}

// Sends `count` datagrams of `size` bytes, numbered from 0 (mod 256), in
// steps the peer's ring holds, each taken by the engine before the next.
void peer_sends_paced(uint16_t port, unsigned count, std::size_t size)
{
    for (unsigned k = 0; k < count; ++k) {
        peer_sends(port, k % 256, size);
        if (k % 256 == 255) {
            ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frames";
        }
    }
    ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frames";
}

// An overlapped UDP socket with SO_RCVBUF `rcvbuf` set before it is bound
// to `port`; INVALID_SOCKET (after a failed expectation) otherwise.
SOCKET socket_with_rcvbuf_bound(uint16_t port, int rcvbuf)
{
    SOCKET s = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    sockaddr_in local = ringsock::testing::ipv4_address("0.0.0.0", port);
    const bool ready = s != INVALID_SOCKET &&
                       setsockopt(s, SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&rcvbuf), sizeof(int)) == 0 &&
                       bind(s, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0;
    EXPECT_TRUE(ready) << "socket, SO_RCVBUF or bind failed: " << WSAGetLastError();
    if (ready) return s;
    if (s != INVALID_SOCKET) closesocket(s);
    return INVALID_SOCKET;
}

int rcv_drops(SOCKET s)
{
    int drops = -1, len = sizeof(int);
    EXPECT_EQ(getsockopt(s, SOL_SOCKET, SO_RINGSOCK_RCV_DROPS, reinterpret_cast<char*>(&drops), &len), 0);
    return drops;
}

// The queue holds SO_RCVBUF's worth of small datagrams, not a fixed count:
// the default (64 KiB) queues 1024 ten-byte datagrams and drops the rest,
// 1 MiB set before bind queues all 5000, each received whole and in order.
TEST_F(ApiRing, SoRcvbufSetBeforeBindSizesTheQueueForSmallDatagrams)
{
    constexpr unsigned kSent = 5000;
    SOCKET small = bound_socket(7322);
    peer_sends_paced(7322, 2000, 10);
    ASSERT_TRUE(wait_queued(small, 10240));
    std::this_thread::sleep_for(50ms);
    u_long queued = 0;
    ASSERT_EQ(ioctlsocket(small, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 10240u) << "the default queue holds 1024 datagrams";
    EXPECT_EQ(rcv_drops(small), 2000 - 1024);
    closesocket(small);

    SOCKET large = socket_with_rcvbuf_bound(7323, 1 << 20);
    ASSERT_NE(large, INVALID_SOCKET);
    peer_sends_paced(7323, kSent, 10);
    ASSERT_TRUE(wait_queued(large, kSent * 10));
    ASSERT_EQ(ioctlsocket(large, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, kSent * 10);
    EXPECT_EQ(rcv_drops(large), 0);
    char b[32];
    for (unsigned k = 0; k < kSent; ++k) {
        const int got = recv(large, b, sizeof(b), 0);
        ASSERT_EQ(got, 10) << k << ": " << WSAGetLastError();
        ASSERT_EQ(static_cast<uint8_t>(b[0]), pattern(k % 256, 0)) << k;
    }
    ASSERT_EQ(ioctlsocket(large, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 0u);
    closesocket(large);
}

// A socket whose completion port was closed keeps receiving: each receive
// that finds its datagram queued completes at once, its port packet lost
// with the port (as Windows discards the queue of a port nobody can read),
// for more receives than the port's ring holds. The next port made, which
// may reuse the closed one's slot, hands out none of them.
TEST_F(ApiRing, ReceivesAtOnceOutliveTheirClosedPortAndLeaveNothingInIt)
{
    constexpr unsigned kSent = 5000; // more than a port ring's 4096 entries
    SOCKET s = socket_with_rcvbuf_bound(7324, 1 << 20);
    ASSERT_NE(s, INVALID_SOCKET);
    HANDLE iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(iocp, nullptr);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), iocp, 8, 0), iocp);
    ASSERT_TRUE(CloseHandle(iocp));
    peer_sends_paced(7324, kSent, 10);
    ASSERT_TRUE(wait_queued(s, kSent * 10));
    char b[32];
    WSABUF buf{sizeof(b), b};
    for (unsigned k = 0; k < kSent; ++k) {
        WSAOVERLAPPED ov{};
        DWORD got = 0, flags = 0;
        ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov, nullptr), 0) << k << ": " << WSAGetLastError();
        ASSERT_EQ(got, 10u) << k;
        ASSERT_EQ(static_cast<uint8_t>(b[0]), pattern(k % 256, 0)) << k;
    }
    HANDLE next = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(next, nullptr);
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(next, &bytes, &key, &done, 50)) << "a stale completion, key " << key;
    closesocket(s);
    CloseHandle(next);
}

// Mbufs in `lcore`'s cache, over every mempool.
unsigned cached_by(unsigned lcore)
{
    struct Count {
        unsigned lcore;
        unsigned mbufs;
    } count{lcore, 0};
    rte_mempool_walk(
        [](rte_mempool* mp, void* arg) {
            auto* c = static_cast<Count*>(arg);
            if (const rte_mempool_cache* cache = rte_mempool_default_cache(mp, c->lcore)) c->mbufs += cache->len;
        },
        &count);
    return count.mbufs;
}

// A thread the application made frees what it receives through an mbuf
// cache of its own, as an engine does, and empties it before it sleeps.
TEST_F(ApiRing, AnApplicationThreadReceivesThroughItsOwnMbufCacheAndEmptiesItToSleep)
{
    constexpr unsigned kSent = 64;
    SOCKET s = bound_socket(7326);
    ASSERT_NE(s, INVALID_SOCKET);
    for (unsigned k = 0; k < kSent; ++k)
        peer_sends(7326, k, 10);
    ASSERT_TRUE(wait_queued(s, kSent * 10));
    HANDLE idle = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(idle, nullptr);
    unsigned lcore = LCORE_ID_ANY, cached_awake = 0, cached_after_sleep = ~0u;
    std::thread([&] {
        ASSERT_EQ(rte_lcore_id(), LCORE_ID_ANY);
        char b[32];
        for (unsigned k = 0; k < kSent; ++k)
            ASSERT_EQ(recv(s, b, sizeof(b), 0), 10) << WSAGetLastError();
        lcore = rte_lcore_id();
        if (lcore == LCORE_ID_ANY) return;
        cached_awake = cached_by(lcore);
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        LPOVERLAPPED done = nullptr;
        EXPECT_FALSE(GetQueuedCompletionStatus(idle, &bytes, &key, &done, 50)); // sleeps after its spin
        cached_after_sleep = cached_by(lcore);
    }).join();
#ifdef RINGSOCK_API_RING_UNREGISTERED
    // eal.register_application_threads = false: the thread received every
    // datagram without an lcore id (EAL keeps taking secondary processes).
    EXPECT_EQ(lcore, LCORE_ID_ANY) << "registered although the profile says not to";
    CloseHandle(idle);
    closesocket(s);
    return;
#endif
    ASSERT_NE(lcore, LCORE_ID_ANY) << "the receiving thread was not registered with EAL";
    EXPECT_GE(cached_awake, kSent) << "the received datagrams' mbufs went to the thread's cache";
    EXPECT_EQ(cached_after_sleep, 0u) << "a sleeping thread holds no mbufs";
    EXPECT_EQ(rte_lcore_has_role(lcore, ROLE_NON_EAL), 0) << "the ended thread's lcore id went back to EAL";
    CloseHandle(idle);
    closesocket(s);
}

// Several application threads on one socket and one completion port, as an
// application with more threads than engines runs: each posts receives,
// reaps whatever completion the port hands it (its own or another's) and
// posts that receive again, while the engine and the threads complete
// receives at once and through the engine. Every datagram comes out once,
// within `deadline`. With `crowd_cpu`, the reapers and a thread that only
// spins share that CPU with the sender, so the scheduler preempts them in
// the middle of whatever they do.
void reapers_get_every_datagram_exactly_once(uint16_t port, unsigned threads, unsigned kSent,
                                             std::optional<unsigned> crowd_cpu, std::chrono::seconds deadline)
{
    constexpr unsigned kPostedPerThread = 32;
    SOCKET s = socket_with_rcvbuf_bound(port, 1 << 20);
    ASSERT_NE(s, INVALID_SOCKET);
    HANDLE iocp = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), nullptr, 5, 0);
    ASSERT_NE(iocp, nullptr);
    struct Receive {
        WSAOVERLAPPED ov{};
        char buffer[32];
    };
    std::vector<Receive> receives(threads * kPostedPerThread);
    const auto post = [&](Receive& r) {
        r.ov = {};
        WSABUF b{sizeof(r.buffer), r.buffer};
        DWORD flags = 0;
        const int rc = WSARecv(s, &b, 1, nullptr, &flags, &r.ov, nullptr);
        return rc == 0 || WSAGetLastError() == WSA_IO_PENDING;
    };
    std::vector<std::atomic<uint8_t>> seen(kSent);
    std::atomic<unsigned> received{0}, failures{0};
    const auto until = std::chrono::steady_clock::now() + deadline;
    const auto reaper = [&](unsigned first) {
        if (crowd_cpu && !ringsock::bench::pin_thread(*crowd_cpu)) ++failures;
        for (unsigned i = first; i < first + kPostedPerThread; ++i)
            if (!post(receives[i])) ++failures;
        while (received.load() < kSent && std::chrono::steady_clock::now() < until) {
            OVERLAPPED_ENTRY entries[16];
            ULONG n = 0;
            if (!GetQueuedCompletionStatusEx(iocp, entries, 16, &n, 20, FALSE)) continue;
            for (ULONG e = 0; e < n; ++e) {
                auto* r = reinterpret_cast<Receive*>(entries[e].lpOverlapped);
                uint32_t k = 0;
                if (entries[e].dwNumberOfBytesTransferred != 16) {
                    ++failures;
                    continue;
                }
                std::memcpy(&k, r->buffer, sizeof(k));
                if (k >= kSent || seen[k].fetch_add(1) != 0) ++failures;
                received.fetch_add(1);
                if (!post(*r)) ++failures;
            }
        }
    };
    std::vector<std::thread> reapers;
    for (unsigned t = 0; t < threads; ++t)
        reapers.emplace_back(reaper, t * kPostedPerThread);
    std::atomic<bool> spin{true};
    std::thread neighbour; // a busy thread on the crowded CPU, as a generator or another poller is
    if (crowd_cpu) {
        neighbour = std::thread([&] {
            ringsock::bench::pin_thread(*crowd_cpu);
            while (spin.load(std::memory_order_relaxed)) {}
        });
    }
    bool sent = true; // no ASSERT before the joins
    for (uint32_t k = 0; k < kSent && sent; ++k) {
        std::vector<uint8_t> payload(16, 0);
        std::memcpy(payload.data(), &k, sizeof(k));
        sent = peer::send_udp(40000, port, payload) && (k % 256 != 255 || peer::wait_polled());
    }
    EXPECT_TRUE(sent) << "the peer could not send, or the engine did not take the frames";
    for (std::thread& t : reapers)
        t.join();
    spin.store(false);
    if (neighbour.joinable()) neighbour.join();
    EXPECT_EQ(received.load(), kSent) << "not every datagram was reaped within " << deadline.count() << " s";
    EXPECT_EQ(failures.load(), 0u) << "a short, doubled or unknown datagram, a post that failed, or a pin refused";
    EXPECT_EQ(rcv_drops(s), 0);
    for (unsigned k = 0; k < kSent; ++k)
        ASSERT_EQ(seen[k].load(), 1) << "datagram " << k;
    closesocket(s); // aborts the receives still posted
    OVERLAPPED_ENTRY entries[64];
    ULONG n = 0;
    unsigned aborted = 0;
    while (GetQueuedCompletionStatusEx(iocp, entries, 64, &n, 200, FALSE))
        aborted += n;
    EXPECT_EQ(aborted, threads * kPostedPerThread);
    CloseHandle(iocp);
}

// On two CPUs (one the engine's) the threads mostly take turns, so this
// checks the bookkeeping across threads; the queue's multi-consumer dequeue
// itself is raced by completion_ring_stress and its ThreadSanitizer build.
TEST_F(ApiRing, TwoThreadsReapingOnePortGetEveryDatagramExactlyOnce)
{
    reapers_get_every_datagram_exactly_once(7327, 2, 20000, std::nullopt, 60s);
}

// Four reapers, a spinning neighbour and the sender on CPU 0 (the main
// lcore's; the engine polls on CPU 1). A thread preempted inside a
// multi-producer ring operation (the engine's submission ring, the mbuf
// pool's ring) must not stall the others: in DPDK's default ring mode each
// of them then spins until it runs again, and ringsock-udp-sink with three
// such threads fell to ~30,000 datagrams/s. 20000 datagrams here take well
// under a second when nothing stalls.
TEST_F(ApiRing, ReapersSharingOneCpuWithABusyThreadAllKeepReceiving)
{
    reapers_get_every_datagram_exactly_once(7328, 4, 100000, 0u, 20s);
}

// What the case above cannot force on every run (a producer preempted
// between claiming a submission slot and publishing it holds up no other
// producer) is checked directly in test_submission_ring.cc.

TEST_F(ApiRing, ClosesocketAbortsEachPendingReceiveExactlyOnce)
{
    ringsock::testing::closesocket_aborts_each_pending_receive_exactly_once(7307, ring_peer());
}

// What a function run on the engine saw (ringsock_run_on_engine).
struct OnEngine {
    SOCKET socket = INVALID_SOCKET;
    std::thread::id thread;
    int overlapped_result = -2;
    DWORD overlapped_bytes = 0;
    int blocking_result = -2;
    int blocking_error = 0;
    int close_result = -2;
    int close_error = 0;
    int cleanup_result = -2;
    int cleanup_error = 0;
};

void run_receives(void* context)
{
    auto& seen = *static_cast<OnEngine*>(context);
    seen.thread = std::this_thread::get_id();
    // A datagram is queued: the overlapped receive completes in place.
    static char b[64];
    WSABUF buf{sizeof(b), b};
    DWORD flags = 0;
    static WSAOVERLAPPED ov{};
    seen.overlapped_result = WSARecv(seen.socket, &buf, 1, &seen.overlapped_bytes, &flags, &ov, nullptr);
    // Nothing queued now: a blocking receive would wait for this very
    // engine, so it fails at once instead.
    char c[8];
    seen.blocking_result = recv(seen.socket, c, sizeof(c), 0);
    seen.blocking_error = WSAGetLastError();
    // Control calls wait on a lock whose holder may wait for this engine:
    // refused here rather than risk that.
    seen.close_result = closesocket(seen.socket);
    seen.close_error = WSAGetLastError();
    // So is the cleanup that would close every socket.
    seen.cleanup_result = WSACleanup();
    seen.cleanup_error = WSAGetLastError();
}

TEST_F(ApiRing, RunToCompletionOnTheEngineCompletesInPlaceAndNeverBlocks)
{
    SOCKET s = bound_socket(7309);
    peer_sends(7309, 0, 19);
    ASSERT_TRUE(wait_queued(s, 19));
    OnEngine seen;
    seen.socket = s;
    ASSERT_EQ(ringsock_run_on_engine(0, run_receives, &seen), 0);
    EXPECT_NE(seen.thread, std::this_thread::get_id()) << "ran on the engine's lcore, not the caller's thread";
    EXPECT_EQ(seen.overlapped_result, 0) << "completed before the call returned";
    EXPECT_EQ(seen.overlapped_bytes, 19u);
    EXPECT_EQ(seen.blocking_result, SOCKET_ERROR);
    EXPECT_EQ(seen.blocking_error, WSAEWOULDBLOCK);
    EXPECT_EQ(seen.close_result, SOCKET_ERROR);
    EXPECT_EQ(seen.close_error, WSAEWOULDBLOCK);
    EXPECT_EQ(seen.cleanup_result, SOCKET_ERROR);
    EXPECT_EQ(seen.cleanup_error, WSAEWOULDBLOCK);
    EXPECT_EQ(ringsock_run_on_engine(ringsock_engine_count(), run_receives, &seen), WSAEINVAL);
    closesocket(s);
}

// What receives on the engine returned behind requests the engine has not
// read yet (they wait in its submission ring until the call returns).
struct BehindInFlight {
    SOCKET socket = INVALID_SOCKET;
    WSAOVERLAPPED send_ov{};
    WSAOVERLAPPED receive_ov{};
    WSAOVERLAPPED pending_ov{};
    char send_buffer[16] = "in flight";
    char receive_buffer[64];
    char pending_buffer[64];
    int send_result = -2, send_error = 0;
    int receive_result = -2, receive_error = 0;
    DWORD received = 0;
    int empty_result = -2, empty_error = 0;
    int pending_result = -2, pending_error = 0;
    int behind_result = -2, behind_error = 0;
    std::chrono::steady_clock::duration took{};
};

void receive_behind_in_flight(void* context)
{
    auto& b = *static_cast<BehindInFlight*>(context);
    const auto start = std::chrono::steady_clock::now();
    const sockaddr_in to = ringsock::testing::ipv4_address(peer::kRingPeerIpv4, 9);
    WSABUF out{sizeof(b.send_buffer), b.send_buffer};
    DWORD sent = 0;
    b.send_result =
        WSASendTo(b.socket, &out, 1, &sent, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to), &b.send_ov, nullptr);
    b.send_error = WSAGetLastError();
    // A send in flight takes nothing from the receive queue: the queued
    // datagram is this receive's at once.
    WSABUF in{sizeof(b.receive_buffer), b.receive_buffer};
    DWORD flags = 0;
    b.receive_result = WSARecv(b.socket, &in, 1, &b.received, &flags, &b.receive_ov, nullptr);
    b.receive_error = WSAGetLastError();
    // Nothing queued, the send still in flight: no receive to wait behind.
    char c[8];
    b.empty_result = recv(b.socket, c, sizeof(c), 0);
    b.empty_error = WSAGetLastError();
    // A receive pending: a receive behind it would wait for this very
    // engine to serve the first, so it fails at once.
    WSABUF pending{sizeof(b.pending_buffer), b.pending_buffer};
    flags = 0;
    b.pending_result = WSARecv(b.socket, &pending, 1, nullptr, &flags, &b.pending_ov, nullptr);
    b.pending_error = WSAGetLastError();
    b.behind_result = recv(b.socket, c, sizeof(c), 0);
    b.behind_error = WSAGetLastError();
    b.took = std::chrono::steady_clock::now() - start;
}

// On a port, the engine stages a completion and counts its request done
// only once it has pushed it, after the call: the send stays in flight
// while the receives are made.
void receives_on_the_engine_behind_a_send_in_flight(uint16_t port_number, bool skip_on_success)
{
    SOCKET s = bound_socket(port_number);
    HANDLE port = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), nullptr, 5, 0);
    ASSERT_NE(port, nullptr);
    if (skip_on_success) {
        ASSERT_TRUE(
            SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    }
    peer_sends(port_number, 0, 19);
    ASSERT_TRUE(wait_queued(s, 19));
    BehindInFlight b;
    b.socket = s;
    ASSERT_EQ(ringsock_run_on_engine(0, receive_behind_in_flight, &b), 0);
    EXPECT_EQ(b.send_result, SOCKET_ERROR);
    EXPECT_EQ(b.send_error, WSA_IO_PENDING);
    EXPECT_EQ(b.receive_result, 0) << b.receive_error << ": the queued datagram waited behind a send";
    EXPECT_EQ(b.received, 19u);
    EXPECT_EQ(std::memcmp(b.receive_buffer, datagram(0, 19).data(), 19), 0);
    EXPECT_EQ(b.empty_result, SOCKET_ERROR);
    EXPECT_EQ(b.empty_error, WSAEWOULDBLOCK);
    EXPECT_EQ(b.pending_result, SOCKET_ERROR);
    EXPECT_EQ(b.pending_error, WSA_IO_PENDING);
    EXPECT_EQ(b.behind_result, SOCKET_ERROR);
    EXPECT_EQ(b.behind_error, WSAEWOULDBLOCK);
    EXPECT_LT(b.took, 1s) << "a receive waited on the engine";
    // The port gets the send's completion, the pending receive's once the
    // next datagram comes, and the at-once receive's unless skipped on
    // success (which would make the application see it twice).
    peer_sends(port_number, 1, 23);
    std::map<LPOVERLAPPED, DWORD> completed;
    const int expected = skip_on_success ? 2 : 3;
    for (int i = 0; i < expected; ++i) {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        LPOVERLAPPED ov = nullptr;
        ASSERT_TRUE(GetQueuedCompletionStatus(port, &bytes, &key, &ov, kWaitMs)) << "completion " << i;
        EXPECT_EQ(key, 5u);
        completed[ov] = bytes;
    }
    EXPECT_EQ(completed[&b.send_ov], sizeof(b.send_buffer));
    EXPECT_EQ(completed[&b.pending_ov], 23u);
    EXPECT_EQ(std::memcmp(b.pending_buffer, datagram(1, 23).data(), 23), 0);
    if (!skip_on_success) {
        EXPECT_EQ(completed[&b.receive_ov], 19u);
    }
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED extra = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(port, &bytes, &key, &extra, 200))
        << "a completion beyond the requests': " << (extra == &b.receive_ov ? "the at-once receive's" : "another");
    closesocket(s);
    CloseHandle(port);
}

TEST_F(ApiRing, OnTheEngineASendInFlightNeverHoldsUpAReceive)
{
    receives_on_the_engine_behind_a_send_in_flight(7338, false);
}

TEST_F(ApiRing, OnTheEngineASendInFlightNeverHoldsUpAReceiveSkippingThePortOnSuccess)
{
    receives_on_the_engine_behind_a_send_in_flight(7339, true);
}

// A receive loop run to completion on the engine (ringsock_poll_on_engine):
// the poller posts on a socket whose successes skip the port, receives
// while datagrams are queued, and reaps the port for those that completed
// later, as ringsock-udp-sink --mode engine does.
struct EnginePoller {
    SOCKET socket = INVALID_SOCKET;
    HANDLE port = nullptr;
    unsigned expected = 0;
    std::size_t size = 0;
    std::chrono::steady_clock::time_point deadline;
    // What the poller saw (only it writes these until the call returns).
    std::thread::id thread;
    std::atomic<bool> running{false}; // the poller has run once
    unsigned polls = 0;
    unsigned received = 0;
    unsigned at_once = 0;
    unsigned out_of_order = 0;
    unsigned damaged = 0;
    unsigned errors = 0;
    bool pending = false;
    BOOL infinite_wait_result = TRUE;
    DWORD infinite_wait_error = 0;
    std::chrono::steady_clock::duration infinite_wait_took{};
    int nested_result = 0;
    WSAOVERLAPPED ov{};
    char buffer[2048];
    WSABUF buf{sizeof(buffer), buffer};
    DWORD flags = 0;

    void check(DWORD bytes)
    {
        const unsigned k = received % 256;
        if (bytes != size) ++damaged;
        for (DWORD i = 0; i < bytes && i < size; ++i)
            if (static_cast<uint8_t>(buffer[i]) != pattern(k, i)) {
                ++out_of_order; // the payload of another datagram than the next one
                break;
            }
        ++received;
    }
};

int poll_receives(void* context)
{
    auto& p = *static_cast<EnginePoller*>(context);
    if (p.polls++ == 0) {
        p.thread = std::this_thread::get_id();
        // Only this engine could complete what a wait here waits for:
        // even INFINITE returns at once.
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        LPOVERLAPPED got = nullptr;
        const auto start = std::chrono::steady_clock::now();
        p.infinite_wait_result = GetQueuedCompletionStatus(p.port, &bytes, &key, &got, INFINITE);
        p.infinite_wait_error = GetLastError();
        p.infinite_wait_took = std::chrono::steady_clock::now() - start;
        p.nested_result = ringsock_poll_on_engine(0, poll_receives, context);
        p.running.store(true);
    }
    OVERLAPPED_ENTRY entries[8];
    ULONG n = 0;
    if (p.pending && GetQueuedCompletionStatusEx(p.port, entries, 8, &n, 0, FALSE)) {
        for (ULONG i = 0; i < n; ++i) {
            if (entries[i].lpOverlapped != &p.ov || entries[i].Internal != 0) ++p.errors;
            p.check(entries[i].dwNumberOfBytesTransferred);
        }
        p.pending = false;
    }
    while (!p.pending && p.received < p.expected) {
        DWORD got = 0;
        p.flags = 0;
        if (WSARecv(p.socket, &p.buf, 1, &got, &p.flags, &p.ov, nullptr) == 0) {
            ++p.at_once;
            p.check(got);
        } else if (WSAGetLastError() == WSA_IO_PENDING) {
            p.pending = true;
        } else {
            ++p.errors;
            return 1;
        }
    }
    return p.received >= p.expected || std::chrono::steady_clock::now() > p.deadline ? 1 : 0;
}

TEST_F(ApiRing, PollerOnTheEngineReceivesEveryDatagramInOrderWithoutLeavingItsCore)
{
    SOCKET s = bound_socket(7330);
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port, 7, 0), port);
    ASSERT_TRUE(SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    EnginePoller p;
    p.socket = s;
    p.port = port;
    p.expected = 3000;
    p.size = 100;
    p.deadline = std::chrono::steady_clock::now() + 20s;
    int result = -1;
    std::thread caller([&] { result = ringsock_poll_on_engine(0, poll_receives, &p); });
    // Sent once the poller runs: before, the socket's queue (SO_RCVBUF)
    // would have to hold them all.
    const auto started = std::chrono::steady_clock::now() + 5s;
    while (!p.running.load() && std::chrono::steady_clock::now() < started)
        std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(p.running.load()) << "the poller never ran"; // sent anyway, so the caller returns
    peer_sends_paced(7330, p.expected, p.size);
    caller.join();
    EXPECT_EQ(result, 0);
    EXPECT_NE(p.thread, std::thread::id{});
    EXPECT_NE(p.thread, std::this_thread::get_id());
    EXPECT_EQ(p.received, p.expected);
    EXPECT_EQ(p.out_of_order, 0u);
    EXPECT_EQ(p.damaged, 0u);
    EXPECT_EQ(p.errors, 0u);
    EXPECT_EQ(rcv_drops(s), 0);
    // Paced in bursts of 256: most wait queued and are taken at once, the
    // first of each burst completes the pending receive through the port.
    EXPECT_GT(p.at_once, 0u);
    EXPECT_LT(p.at_once, p.expected);
    EXPECT_EQ(p.infinite_wait_result, FALSE);
    EXPECT_EQ(p.infinite_wait_error, static_cast<DWORD>(WAIT_TIMEOUT));
    EXPECT_LT(p.infinite_wait_took, 1s);
    EXPECT_EQ(p.nested_result, WSAEWOULDBLOCK);
    closesocket(s);
    CloseHandle(port);
}

// Datagram `seq` of 100 bytes, its number in the first four.
void peer_sends_numbered(uint16_t port, uint32_t seq)
{
    std::vector<uint8_t> bytes = datagram(seq % 256, 100);
    std::memcpy(bytes.data(), &seq, sizeof(seq));
    ASSERT_TRUE(peer::send_udp(40000, port, bytes)) << "the peer could not send";
}

void peer_sends_numbered(uint16_t port, uint32_t first, uint32_t count)
{
    for (uint32_t seq = first; seq < first + count; ++seq) {
        peer_sends_numbered(port, seq);
        if (seq % 200 == 199) {
            ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frames";
        }
    }
    ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frames";
}

// One side's receives on a shared socket, one overlapped receive at a time
// with an event, until it has `quota` datagrams; the numbers it got, in
// the order it got them.
struct NumberedReceiver {
    SOCKET socket = INVALID_SOCKET;
    unsigned quota = 0;
    std::chrono::steady_clock::time_point deadline;
    std::vector<uint32_t> got;
    unsigned errors = 0;
    bool pending = false;
    WSAOVERLAPPED ov{};
    char buffer[256];
    WSABUF buf{sizeof(buffer), buffer};
    DWORD flags = 0;

    void record(DWORD bytes)
    {
        uint32_t seq = 0;
        if (bytes != 100) ++errors;
        std::memcpy(&seq, buffer, sizeof(seq));
        got.push_back(seq);
    }
    // Returns true when done (quota reached, an error, or past the deadline).
    bool step()
    {
        if (pending) {
            DWORD bytes = 0;
            DWORD out_flags = 0;
            if (!WSAGetOverlappedResult(socket, &ov, &bytes, FALSE, &out_flags)) {
                if (WSAGetLastError() != WSA_IO_INCOMPLETE) ++errors;
                return errors != 0 || std::chrono::steady_clock::now() > deadline;
            }
            pending = false;
            record(bytes);
        }
        while (!pending && got.size() < quota) {
            DWORD bytes = 0;
            flags = 0;
            if (WSARecv(socket, &buf, 1, &bytes, &flags, &ov, nullptr) == 0)
                record(bytes);
            else if (WSAGetLastError() == WSA_IO_PENDING)
                pending = true;
            else
                ++errors;
            if (errors != 0) return true;
        }
        return got.size() >= quota || std::chrono::steady_clock::now() > deadline;
    }
};

int poll_numbered(void* context)
{
    return static_cast<NumberedReceiver*>(context)->step() ? 1 : 0;
}

// The numbers in `got` are increasing (one receiver's share of one queue).
bool increasing(const std::vector<uint32_t>& got)
{
    for (std::size_t i = 1; i < got.size(); ++i)
        if (got[i] <= got[i - 1]) return false;
    return true;
}

TEST_F(ApiRing, AfterAPollerClaimsTheQueueApplicationThreadsStillGetEachDatagramOnce)
{
    // The first receive on the socket's own engine leaves the queue to it
    // (single-consumer, unlocked): an application thread's receive then
    // goes to the engine instead of taking from the queue itself. Nothing
    // may be lost, duplicated or reordered across that change, and the
    // bytes counted as waiting must stay exact.
    SOCKET s = bound_socket(7334);
    WSAEVENT app_event = WSACreateEvent();
    WSAEVENT poller_event = WSACreateEvent();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    // Before the claim: the application takes queued datagrams at once.
    peer_sends_numbered(7334, 0, 50);
    ASSERT_TRUE(wait_queued(s, 50 * 100));
    NumberedReceiver app;
    app.socket = s;
    app.ov.hEvent = app_event;
    app.deadline = deadline;
    app.quota = 30;
    while (!app.step())
        ASSERT_EQ(WSAWaitForMultipleEvents(1, &app_event, FALSE, kWaitMs, FALSE), WSA_WAIT_EVENT_0);
    EXPECT_EQ(app.errors, 0u);
    // The poller takes the next 20 and with them the queue.
    NumberedReceiver poller;
    poller.socket = s;
    poller.ov.hEvent = poller_event;
    poller.deadline = deadline;
    poller.quota = 20;
    EXPECT_EQ(ringsock_poll_on_engine(0, poll_numbered, &poller), 0);
    EXPECT_EQ(poller.errors, 0u);
    u_long waiting = 1;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &waiting), 0);
    EXPECT_EQ(waiting, 0u) << "every byte taken is counted once, by either consumer";
    // 600 more, queued, then both sides take them at the same time.
    peer_sends_numbered(7334, 50, 600);
    ASSERT_TRUE(wait_queued(s, 600 * 100));
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &waiting), 0);
    EXPECT_EQ(waiting, 600u * 100);
    app.quota += 300;
    poller.quota += 300;
    std::thread application([&] {
        while (!app.step())
            if (WSAWaitForMultipleEvents(1, &app_event, FALSE, kWaitMs, FALSE) != WSA_WAIT_EVENT_0) return;
    });
    EXPECT_EQ(ringsock_poll_on_engine(0, poll_numbered, &poller), 0);
    application.join();
    EXPECT_EQ(app.errors, 0u);
    EXPECT_EQ(poller.errors, 0u);
    ASSERT_EQ(app.got.size(), 330u);
    ASSERT_EQ(poller.got.size(), 320u);
    EXPECT_TRUE(increasing(app.got));
    EXPECT_TRUE(increasing(poller.got));
    std::vector<unsigned> times(650, 0);
    for (const auto* side : {&app.got, &poller.got})
        for (uint32_t seq : *side)
            if (seq < times.size()) ++times[seq];
    for (uint32_t seq = 0; seq < times.size(); ++seq)
        EXPECT_EQ(times[seq], 1u) << "datagram " << seq;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &waiting), 0);
    EXPECT_EQ(waiting, 0u);
    EXPECT_EQ(rcv_drops(s), 0);
    closesocket(s);
    WSACloseEvent(app_event);
    WSACloseEvent(poller_event);
}

// What each wait returned when called on the engine, and how long it took.
struct WaitsOnTheEngine {
    SOCKET socket = INVALID_SOCKET;
    WSAEVENT event = nullptr;
    WSAOVERLAPPED ov{};
    char buffer[64];
    int posted = 0;
    int posted_error = 0;
    BOOL result_with_wait = TRUE;
    int result_error = 0;
    DWORD events_wait = 0;
    DWORD alertable_events_wait = 0;
    DWORD alertable_sleep = WAIT_IO_COMPLETION;
    std::chrono::steady_clock::duration took{};
};

int wait_on_the_engine(void* context)
{
    auto& w = *static_cast<WaitsOnTheEngine*>(context);
    const auto start = std::chrono::steady_clock::now();
    WSABUF buf{sizeof(w.buffer), w.buffer};
    DWORD flags = 0;
    w.ov.hEvent = w.event;
    w.posted = WSARecv(w.socket, &buf, 1, nullptr, &flags, &w.ov, nullptr);
    w.posted_error = WSAGetLastError();
    // Each would wait for this engine, the caller: none may block it.
    w.events_wait = WSAWaitForMultipleEvents(1, &w.event, FALSE, 3000, FALSE);
    w.alertable_events_wait = WSAWaitForMultipleEvents(1, &w.event, FALSE, 3000, TRUE);
    w.alertable_sleep = SleepEx(3000, TRUE);
    DWORD bytes = 0;
    DWORD out_flags = 0;
    w.result_with_wait = WSAGetOverlappedResult(w.socket, &w.ov, &bytes, TRUE, &out_flags);
    w.result_error = WSAGetLastError();
    w.took = std::chrono::steady_clock::now() - start;
    return 1;
}

TEST_F(ApiRing, EveryWaitOnTheEngineReturnsAtOnce)
{
    SOCKET s = bound_socket(7335);
    WaitsOnTheEngine w;
    w.socket = s;
    w.event = WSACreateEvent();
    ASSERT_EQ(ringsock_poll_on_engine(0, wait_on_the_engine, &w), 0);
    EXPECT_EQ(w.posted, SOCKET_ERROR);
    EXPECT_EQ(w.posted_error, WSA_IO_PENDING);
    EXPECT_EQ(w.events_wait, static_cast<DWORD>(WSA_WAIT_TIMEOUT));
    EXPECT_EQ(w.alertable_events_wait, static_cast<DWORD>(WSA_WAIT_TIMEOUT));
    EXPECT_EQ(w.alertable_sleep, 0u);
    EXPECT_EQ(w.result_with_wait, FALSE);
    EXPECT_EQ(w.result_error, WSA_IO_INCOMPLETE);
    EXPECT_LT(w.took, 1s) << "a wait blocked the engine";
    // The receive is still pending, and the engine still serves it.
    peer_sends(7335, 3, 40);
    ASSERT_EQ(WSAWaitForMultipleEvents(1, &w.event, FALSE, kWaitMs, FALSE), WSA_WAIT_EVENT_0);
    DWORD bytes = 0;
    DWORD flags = 0;
    ASSERT_TRUE(WSAGetOverlappedResult(s, &w.ov, &bytes, TRUE, &flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 40u);
    EXPECT_EQ(std::memcmp(w.buffer, datagram(3, 40).data(), 40), 0);
    closesocket(s);
    WSACloseEvent(w.event);
}

// A poller that counts itself in on its first call and leaves once released.
struct HeldPoller {
    std::atomic<int>* running;
    std::atomic<int>* released;
    bool counted = false;
};

int poll_until_released(void* context)
{
    auto& p = *static_cast<HeldPoller*>(context);
    if (!p.counted) {
        p.counted = true;
        p.running->fetch_add(1);
    }
    return p.released->load() != 0 ? 1 : 0;
}

int poll_never_done(void*)
{
    return 0;
}

TEST_F(ApiRing, PollOnEngineRefusesBadArgumentsANinthPollerAndEndsAtTheLastCleanup)
{
    EXPECT_EQ(ringsock_poll_on_engine(ringsock_engine_count(), poll_never_done, nullptr), WSAEINVAL);
    EXPECT_EQ(ringsock_poll_on_engine(-1, poll_never_done, nullptr), WSAEINVAL);
    EXPECT_EQ(ringsock_poll_on_engine(0, nullptr, nullptr), WSAEINVAL);
    // Eight pollers at once; a ninth is refused while they run.
    std::atomic<int> running{0};
    std::atomic<int> released{0};
    std::vector<HeldPoller> held(8, HeldPoller{&running, &released});
    std::vector<std::thread> callers;
    std::vector<int> results(8, -1);
    for (unsigned i = 0; i < 8; ++i)
        callers.emplace_back([&, i] { results[i] = ringsock_poll_on_engine(0, poll_until_released, &held[i]); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (running.load() < 8 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(running.load(), 8) << "the eight pollers did not all run";
    HeldPoller ninth{&running, &released};
    EXPECT_EQ(ringsock_poll_on_engine(0, poll_until_released, &ninth), WSAENOBUFS);
    EXPECT_FALSE(ninth.counted);
    released.store(1);
    for (std::thread& t : callers)
        t.join();
    for (int r : results)
        EXPECT_EQ(r, 0);
    // A poller that never finishes ends at the last WSACleanup, before the
    // sockets close (the engines go on).
    int forever = -1;
    std::thread caller([&] { forever = ringsock_poll_on_engine(0, poll_never_done, nullptr); });
    std::this_thread::sleep_for(50ms);
    ASSERT_EQ(WSACleanup(), 0);
    caller.join();
    EXPECT_EQ(forever, WSAEINTR);
    EXPECT_EQ(ringsock_poll_on_engine(0, poll_never_done, nullptr), WSANOTINITIALISED);
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0); // for TearDown's WSACleanup
}

TEST_F(ApiRing, TheWsabufArrayIsCapturedAtThePost)
{
    // "The array of WSABUF structures ... is transient": the caller may
    // reuse it as soon as the call returns.
    SOCKET s = bound_socket(7310);
    WSAEVENT ev = WSACreateEvent();
    char target[32];
    char decoy[32];
    std::memset(target, 0, sizeof(target));
    std::memset(decoy, 0, sizeof(decoy));
    WSABUF bufs[1] = {{sizeof(target), target}};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecv(s, bufs, 1, &got, &flags, &ov, nullptr), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    bufs[0] = {sizeof(decoy), decoy}; // the array changes after the call
    peer_sends(7310, 6, 12);
    ASSERT_TRUE(signalled(ev, kWaitMs)) << "no completion";
    EXPECT_EQ(static_cast<uint8_t>(target[0]), pattern(6, 0)) << "filled the buffer named at the post";
    EXPECT_EQ(decoy[0], 0) << "not the one the array names now";
    WSACloseEvent(ev);
    closesocket(s);
}

struct RoutineLog {
    SOCKET socket = INVALID_SOCKET;
    int calls = 0;
    DWORD bytes[2] = {0, 0};
    int repost_result = 0;
    int repost_error = 0;
    char second[32];
    WSAOVERLAPPED second_ov{};
};
RoutineLog g_log;

void CALLBACK log_second(DWORD, DWORD bytes, LPWSAOVERLAPPED, DWORD)
{
    g_log.bytes[g_log.calls++ % 2] = bytes;
}

// Posts the next receive from inside the routine, as the pages allow.
void CALLBACK log_and_repost(DWORD, DWORD bytes, LPWSAOVERLAPPED, DWORD)
{
    g_log.bytes[g_log.calls++ % 2] = bytes;
    WSABUF buf{sizeof(g_log.second), g_log.second};
    DWORD got = 0, flags = 0;
    g_log.repost_result = WSARecv(g_log.socket, &buf, 1, &got, &flags, &g_log.second_ov, log_second);
    g_log.repost_error = WSAGetLastError();
}

TEST_F(ApiRing, CompletionRoutineIgnoresHEventAndMayPostTheNextReceive)
{
    SOCKET s = bound_socket(7311);
    g_log = RoutineLog{};
    g_log.socket = s;
    // "If lpCompletionRoutine is not NULL, the hEvent parameter is ignored
    // and can be used ... to pass context information".
    WSAEVENT unrelated = WSACreateEvent();
    char b[32];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    ov.hEvent = unrelated;
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov, log_and_repost), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer_sends(7311, 0, 9);
    EXPECT_EQ(SleepEx(kWaitMs, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(g_log.calls, 1);
    EXPECT_EQ(g_log.bytes[0], 9u);
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &unrelated, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT)
        << "hEvent was signalled although a routine was given";
    // The receive posted from inside the routine is live.
    EXPECT_EQ(g_log.repost_result, SOCKET_ERROR);
    EXPECT_EQ(g_log.repost_error, WSA_IO_PENDING);
    peer_sends(7311, 1, 11);
    EXPECT_EQ(SleepEx(kWaitMs, TRUE), WAIT_IO_COMPLETION);
    EXPECT_EQ(g_log.calls, 2);
    EXPECT_EQ(g_log.bytes[1], 11u);
    EXPECT_EQ(static_cast<uint8_t>(g_log.second[0]), pattern(1, 0));
    WSACloseEvent(unrelated);
    closesocket(s);
}

// The peer's datagrams beyond IPv4 unicast, as fuzz_api sends them
// (peer::send_udp_between): IPv6 to our address, IPv4 to the subnet's
// broadcast, IPv6 to a group a socket joined.
TEST_F(ApiRing, ThePeerSendsIpv6UnicastIpv4BroadcastAndIpv6GroupDatagrams)
{
    constexpr uint16_t kPort = 7347;
    SOCKET v4 = bound_socket(kPort);
    SOCKET v6 = bound_ipv6_socket(kPort);
    ASSERT_NE(v6, INVALID_SOCKET);
    ipv6_mreq group{};
    inet_pton(AF_INET6, "ff0e::1:2:3", &group.ipv6mr_multiaddr);
    ASSERT_EQ(setsockopt(v6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, reinterpret_cast<const char*>(&group), sizeof(group)),
              0)
        << WSAGetLastError();

    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, peer::kRingOurIpv6, 40001, kPort, datagram(1, 33)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, "198.18.0.255", 40002, kPort, datagram(2, 44)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, "ff0e::1:2:3", 40003, kPort, datagram(3, 55)));
    ASSERT_TRUE(wait_queued(v6, 33 + 55));
    ASSERT_TRUE(wait_queued(v4, 44));

    char b[64];
    sockaddr_in6 from{};
    int from_length = sizeof(from);
    ASSERT_EQ(recvfrom(v6, b, sizeof(b), 0, reinterpret_cast<sockaddr*>(&from), &from_length), 33) << WSAGetLastError();
    EXPECT_EQ(std::vector<uint8_t>(b, b + 33), datagram(1, 33));
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &from.sin6_addr, text, sizeof(text));
    EXPECT_STREQ(text, peer::kRingPeerIpv6);
    EXPECT_EQ(ntohs(from.sin6_port), 40001);
    ASSERT_EQ(recv(v6, b, sizeof(b), 0), 55) << WSAGetLastError();
    EXPECT_EQ(std::vector<uint8_t>(b, b + 55), datagram(3, 55));
    ASSERT_EQ(recv(v4, b, sizeof(b), 0), 44) << WSAGetLastError();
    EXPECT_EQ(std::vector<uint8_t>(b, b + 44), datagram(2, 44));
    closesocket(v4);
    closesocket(v6);
}

// A datagram "from" our own address and port came from a host posing as
// us; an echo answering it would send to itself, and lwIP's loopback
// would hand the answer back to it for ever. It never reaches a socket.
TEST_F(ApiRing, ADatagramFromOurOwnAddressNeverReachesASocket)
{
    constexpr uint16_t kPort = 7349;
    SOCKET v4 = bound_socket(kPort);
    SOCKET v6 = bound_ipv6_socket(kPort);
    ASSERT_NE(v6, INVALID_SOCKET);

    ASSERT_TRUE(peer::send_udp_between(peer::kRingOurIpv4, peer::kRingOurIpv4, kPort, kPort, datagram(1, 11)));
    ASSERT_TRUE(peer::send_udp_between("198.18.0.255", peer::kRingOurIpv4, kPort, kPort, datagram(2, 12)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingOurIpv6, peer::kRingOurIpv6, kPort, kPort, datagram(3, 13)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, peer::kRingOurIpv4, kPort, kPort, datagram(4, 14)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, peer::kRingOurIpv6, kPort, kPort, datagram(5, 15)));
    ASSERT_TRUE(wait_queued(v4, 14));
    ASSERT_TRUE(wait_queued(v6, 15));

    char b[64];
    char text[INET6_ADDRSTRLEN] = {};
    sockaddr_in from4{};
    int from_length = sizeof(from4);
    ASSERT_EQ(recvfrom(v4, b, sizeof(b), 0, reinterpret_cast<sockaddr*>(&from4), &from_length), 14)
        << WSAGetLastError();
    inet_ntop(AF_INET, &from4.sin_addr, text, sizeof(text));
    EXPECT_STREQ(text, peer::kRingPeerIpv4);
    sockaddr_in6 from6{};
    from_length = sizeof(from6);
    ASSERT_EQ(recvfrom(v6, b, sizeof(b), 0, reinterpret_cast<sockaddr*>(&from6), &from_length), 15)
        << WSAGetLastError();
    inet_ntop(AF_INET6, &from6.sin6_addr, text, sizeof(text));
    EXPECT_STREQ(text, peer::kRingPeerIpv6);
    expect_nothing_queued({v4, v6});
    closesocket(v4);
    closesocket(v6);
}

sockaddr_in6 ipv6_address(const char* text, uint16_t port, ULONG scope)
{
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_scope_id = scope;
    EXPECT_EQ(inet_pton(AF_INET6, text, &a.sin6_addr), 1) << text;
    return a;
}

int sockopt_error(SOCKET s, int level, int name, const void* value, int length)
{
    return setsockopt(s, level, name, static_cast<const char*>(value), length) == 0 ? 0 : WSAGetLastError();
}

// WSASendMsg of "x" to `to` with one IN_PKTINFO or IN6_PKTINFO record
// naming no source and interface `index`: 0 or the call's error.
int send_with_interface(SOCKET s, const sockaddr* to, int to_length, ULONG index)
{
    alignas(WSACMSGHDR) char control[WSA_CMSG_SPACE(sizeof(IN6_PKTINFO))] = {};
    auto* header = reinterpret_cast<WSACMSGHDR*>(control);
    static_assert(IP_PKTINFO == IPV6_PKTINFO);
    const auto record = [header](int level, const auto& info) {
        header->cmsg_level = level;
        header->cmsg_type = IP_PKTINFO;
        header->cmsg_len = WSA_CMSG_LEN(sizeof(info));
        std::memcpy(WSA_CMSG_DATA(header), &info, sizeof(info));
    };
    IN_PKTINFO info4{};
    info4.ipi_ifindex = index;
    IN6_PKTINFO info6{};
    info6.ipi6_ifindex = index;
    if (to->sa_family == AF_INET)
        record(IPPROTO_IP, info4);
    else
        record(IPPROTO_IPV6, info6);
    char x[] = "x";
    WSABUF buffer{1, x};
    WSAMSG message{};
    message.name = const_cast<sockaddr*>(to);
    message.namelen = to_length;
    message.lpBuffers = &buffer;
    message.dwBufferCount = 1;
    message.Control = {static_cast<ULONG>(header->cmsg_len), control};
    DWORD sent = 0;
    return WSASendMsg(s, &message, 0, &sent, nullptr, nullptr) == 0 ? 0 : WSAGetLastError();
}

// The process has one interface, index 1 (how received link-local
// sources and IN_PKTINFO name it). Wherever a caller names an interface
// (a link-scoped IPv6 address's sin6_scope_id, IP_MULTICAST_IF and
// IPV6_MULTICAST_IF, a membership request's interface, a send's
// IN_PKTINFO/IN6_PKTINFO index), 0 or that one is accepted and any other
// refused with WSAEADDRNOTAVAIL ("not valid in its context"), instead of
// being read as ours: a join refused joins nothing. A global address's
// scope id says nothing of a link and stays unread.
TEST_F(ApiRing, AnInterfaceOtherThanTheOneIsRefusedWhereverACallerNamesOne)
{
    constexpr uint16_t kPort = 7351;
    SOCKET v6 = WSASocket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    ASSERT_NE(v6, INVALID_SOCKET);
    const auto bind_error = [](SOCKET s, const sockaddr_in6& a) {
        return bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0 ? 0 : WSAGetLastError();
    };
    EXPECT_EQ(bind_error(v6, ipv6_address("fe80::1", kPort, 5)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(bind_error(v6, ipv6_address("::", kPort, 0)), 0);
    SOCKET linked = WSASocket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, 0);
    EXPECT_EQ(bind_error(linked, ipv6_address("fe80::1", kPort + 1, 1)), 0);

    const auto send_error = [](SOCKET s, const sockaddr_in6& to) {
        return sendto(s, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 1 ? 0 : WSAGetLastError();
    };
    EXPECT_EQ(send_error(v6, ipv6_address("fe80::2", 9, 2)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v6, ipv6_address("ff02::1", 9, 7)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v6, ipv6_address("ff01::1", 9, 7)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v6, ipv6_address("ff02::1", 9, 1)), 0);
    EXPECT_EQ(send_error(v6, ipv6_address("ff0e::1", 9, 7)), 0) << "a global group's scope id is not read";
    EXPECT_EQ(send_error(v6, ipv6_address(peer::kRingPeerIpv6, 9, 7)), 0) << "nor a global address's";
    const sockaddr_in6 elsewhere = ipv6_address("fe80::2", 9, 3);
    EXPECT_EQ(connect(linked, reinterpret_cast<const sockaddr*>(&elsewhere), sizeof(elsewhere)), SOCKET_ERROR);
    EXPECT_EQ(WSAGetLastError(), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_with_interface(v6, reinterpret_cast<const sockaddr*>(&elsewhere), sizeof(elsewhere), 1),
              WSAEADDRNOTAVAIL);
    const sockaddr_in6 peer6 = ipv6_address(peer::kRingPeerIpv6, 9, 0);
    EXPECT_EQ(send_with_interface(v6, reinterpret_cast<const sockaddr*>(&peer6), sizeof(peer6), 2), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_with_interface(v6, reinterpret_cast<const sockaddr*>(&peer6), sizeof(peer6), 1), 0);

    ULONG index = 1;
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)), 0);
    index = 2;
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)), WSAEADDRNOTAVAIL);
    ipv6_mreq join6{};
    inet_pton(AF_INET6, "ff0e::77", &join6.ipv6mr_multiaddr);
    join6.ipv6mr_interface = 2;
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &join6, sizeof(join6)), WSAEADDRNOTAVAIL);
    inet_pton(AF_INET6, "ff0e::78", &join6.ipv6mr_multiaddr);
    join6.ipv6mr_interface = 1;
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &join6, sizeof(join6)), 0);
    GROUP_REQ by_group{};
    by_group.gr_interface = 4;
    const sockaddr_in6 group = ipv6_address("ff0e::79", 0, 0);
    std::memcpy(&by_group.gr_group, &group, sizeof(group));
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, MCAST_JOIN_GROUP, &by_group, sizeof(by_group)), WSAEADDRNOTAVAIL);
    by_group.gr_interface = 0;
    const sockaddr_in6 link_group = ipv6_address("ff02::1:79", 0, 3);
    std::memcpy(&by_group.gr_group, &link_group, sizeof(link_group));
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, MCAST_JOIN_GROUP, &by_group, sizeof(by_group)), WSAEADDRNOTAVAIL);
    reinterpret_cast<sockaddr_in6&>(by_group.gr_group).sin6_scope_id = 1;
    EXPECT_EQ(sockopt_error(v6, IPPROTO_IPV6, MCAST_JOIN_GROUP, &by_group, sizeof(by_group)), 0);

    SOCKET v4 = bound_socket(kPort);
    in_addr ours{}, other{}, index_one{}, index_two{};
    inet_pton(AF_INET, peer::kRingOurIpv4, &ours);
    inet_pton(AF_INET, "198.18.0.9", &other);
    inet_pton(AF_INET, "0.0.0.1", &index_one);
    inet_pton(AF_INET, "0.0.0.2", &index_two);
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_MULTICAST_IF, &index_one, sizeof(index_one)), 0);
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_MULTICAST_IF, &index_two, sizeof(index_two)), WSAEADDRNOTAVAIL);
    ip_mreq join4{};
    inet_pton(AF_INET, "239.1.2.77", &join4.imr_multiaddr);
    join4.imr_interface = other;
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join4, sizeof(join4)), WSAEADDRNOTAVAIL);
    join4.imr_interface = index_two;
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join4, sizeof(join4)), WSAEADDRNOTAVAIL);
    inet_pton(AF_INET, "239.1.2.78", &join4.imr_multiaddr);
    join4.imr_interface = index_one;
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join4, sizeof(join4)), 0);
    inet_pton(AF_INET, "239.1.2.79", &join4.imr_multiaddr);
    join4.imr_interface = ours;
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join4, sizeof(join4)), 0);
    ip_mreq_source by_source{};
    inet_pton(AF_INET, "239.1.2.80", &by_source.imr_multiaddr);
    inet_pton(AF_INET, peer::kRingPeerIpv4, &by_source.imr_sourceaddr);
    by_source.imr_interface = other;
    EXPECT_EQ(sockopt_error(v4, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &by_source, sizeof(by_source)), WSAEADDRNOTAVAIL);
    const sockaddr_in peer4 = ringsock::testing::ipv4_address(peer::kRingPeerIpv4, 9);
    EXPECT_EQ(send_with_interface(v4, reinterpret_cast<const sockaddr*>(&peer4), sizeof(peer4), 3), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_with_interface(v4, reinterpret_cast<const sockaddr*>(&peer4), sizeof(peer4), 0), 0);

    // A join refused joined nothing: the refused groups' datagrams, sent
    // first, reach no socket; the joined ones' do.
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, "ff0e::77", 40001, kPort, datagram(1, 21)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, "ff0e::79", 40001, kPort, datagram(2, 22)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, "239.1.2.77", 40001, kPort, datagram(3, 23)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, "239.1.2.80", 40001, kPort, datagram(4, 24)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, "ff0e::78", 40001, kPort, datagram(5, 25)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv6, "ff02::1:79", 40001, kPort, datagram(6, 26)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, "239.1.2.78", 40001, kPort, datagram(7, 27)));
    ASSERT_TRUE(peer::send_udp_between(peer::kRingPeerIpv4, "239.1.2.79", 40001, kPort, datagram(8, 28)));
    ASSERT_TRUE(wait_queued(v6, 25 + 26));
    ASSERT_TRUE(wait_queued(v4, 27 + 28));
    char b[64];
    for (const auto& [s, size] : {std::pair{v6, 25}, std::pair{v6, 26}, std::pair{v4, 27}, std::pair{v4, 28}})
        EXPECT_EQ(recv(s, b, sizeof(b), 0), size) << WSAGetLastError();
    expect_nothing_queued({v4, v6});
    closesocket(v4);
    closesocket(v6);
    closesocket(linked);
}

// A datagram's destination must name a host and a port: the wildcard
// address (ADDR_ANY) or port 0 is refused with WSAEADDRNOTAVAIL, as
// Windows' sendto page gives it, overlapped or not, in either family,
// while the peer's address and port are sent.
TEST_F(ApiRing, ASendToTheWildcardAddressOrPortZeroIsRefused)
{
    SOCKET v4 = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    SOCKET v6 = WSASocket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    ASSERT_NE(v4, INVALID_SOCKET);
    ASSERT_NE(v6, INVALID_SOCKET);
    const auto send_error = [](SOCKET s, const auto& to) {
        return sendto(s, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 1 ? 0 : WSAGetLastError();
    };
    const auto overlapped_send_error = [](SOCKET s, const auto& to) {
        char byte = 'x';
        WSABUF buffer{1, &byte};
        DWORD sent = 0;
        WSAOVERLAPPED ov{};
        ov.hEvent = WSACreateEvent();
        const int result =
            WSASendTo(s, &buffer, 1, &sent, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to), &ov, nullptr);
        int error = result == 0 ? 0 : WSAGetLastError();
        if (error == WSA_IO_PENDING) {
            // The send's own result; waiting for it to finish, as the
            // OVERLAPPED lives on this frame.
            DWORD flags = 0;
            error = WSAGetOverlappedResult(s, &ov, &sent, TRUE, &flags) ? 0 : WSAGetLastError();
        }
        WSACloseEvent(ov.hEvent);
        return error;
    };
    using ringsock::testing::ipv4_address;
    EXPECT_EQ(send_error(v4, ipv4_address("0.0.0.0", 9)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(overlapped_send_error(v4, ipv4_address("0.0.0.0", 9)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v4, ipv4_address(peer::kRingPeerIpv4, 0)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v6, ipv6_address("::", 9, 0)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(overlapped_send_error(v6, ipv6_address("::", 9, 0)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v6, ipv6_address(peer::kRingPeerIpv6, 0, 0)), WSAEADDRNOTAVAIL);
    EXPECT_EQ(send_error(v4, ipv4_address(peer::kRingPeerIpv4, 9)), 0);
    EXPECT_EQ(overlapped_send_error(v4, ipv4_address(peer::kRingPeerIpv4, 9)), 0);
    EXPECT_EQ(send_error(v6, ipv6_address(peer::kRingPeerIpv6, 9, 0)), 0);
    closesocket(v4);
    closesocket(v6);
}

// The two ends of one TCP connection over lwIP's loopback (a listener on
// an ephemeral port of ours), both non-blocking; INVALID_SOCKETs if no
// connection came within 5 s.
std::pair<SOCKET, SOCKET> loopback_connection()
{
    SOCKET listener = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    sockaddr_in name = ringsock::testing::ipv4_address(peer::kRingOurIpv4, 0);
    int length = sizeof(name);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&name), length), 0) << WSAGetLastError();
    EXPECT_EQ(listen(listener, 1), 0) << WSAGetLastError();
    EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&name), &length), 0) << WSAGetLastError();
    SOCKET client = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    u_long on = 1;
    EXPECT_EQ(ioctlsocket(client, FIONBIO, &on), 0);
    EXPECT_EQ(ioctlsocket(listener, FIONBIO, &on), 0);
    connect(client, reinterpret_cast<sockaddr*>(&name), sizeof(name));
    SOCKET server = INVALID_SOCKET;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((server = accept(listener, nullptr, nullptr)) == INVALID_SOCKET &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    closesocket(listener);
    if (server == INVALID_SOCKET) {
        closesocket(client);
        return {INVALID_SOCKET, INVALID_SOCKET};
    }
    EXPECT_EQ(ioctlsocket(server, FIONBIO, &on), 0);
    return {client, server};
}

struct WaitAllOnTheEngine {
    SOCKET s;
    int asked;
    int result = 0;
    int error = 0;
    char bytes[100] = {};
};

// Microsoft's recv and WSARecv pages: MSG_WAITALL on a socket in
// non-blocking mode, or beside MSG_PEEK or MSG_PARTIAL, fails with
// WSAEOPNOTSUPP. Such a receive used to take the bytes there were and
// then wait for the rest, so a non-blocking recv blocked (found by
// fuzz_api's stream step). On the engine's own lcore, where no call may
// wait, it takes all it asked for or fails with WSAEWOULDBLOCK.
TEST_F(ApiRing, AStreamReceiveWithMsgWaitallNeverBlocksACallThatMustNotWait)
{
    const auto [client, server] = loopback_connection();
    ASSERT_NE(server, INVALID_SOCKET) << "no connection over lwIP's loopback";
    const std::vector<uint8_t> sent = datagram(4, 10);
    ASSERT_EQ(send(client, reinterpret_cast<const char*>(sent.data()), 10, 0), 10) << WSAGetLastError();
    ASSERT_TRUE(wait_queued(server, 10));

    char b[100];
    EXPECT_EQ(recv(server, b, sizeof(b), MSG_WAITALL), SOCKET_ERROR);
    EXPECT_EQ(WSAGetLastError(), WSAEOPNOTSUPP);
    u_long off = 0;
    ASSERT_EQ(ioctlsocket(server, FIONBIO, &off), 0);
    for (const int also : {MSG_PEEK, MSG_PARTIAL}) {
        EXPECT_EQ(recv(server, b, sizeof(b), MSG_WAITALL | also), SOCKET_ERROR) << also;
        EXPECT_EQ(WSAGetLastError(), WSAEOPNOTSUPP) << also;
    }

    for (const int asked : {100, 10}) {
        WaitAllOnTheEngine call{server, asked};
        ASSERT_EQ(ringsock_run_on_engine(
                      0,
                      [](void* context) {
                          auto& c = *static_cast<WaitAllOnTheEngine*>(context);
                          c.result = recv(c.s, c.bytes, c.asked, MSG_WAITALL);
                          c.error = WSAGetLastError();
                      },
                      &call),
                  0);
        if (asked == 100) {
            EXPECT_EQ(call.result, SOCKET_ERROR);
            EXPECT_EQ(call.error, WSAEWOULDBLOCK) << "the engine's own lcore cannot wait for the rest";
        } else {
            ASSERT_EQ(call.result, 10) << call.error;
            EXPECT_EQ(std::vector<uint8_t>(call.bytes, call.bytes + 10), sent) << "nothing was taken before";
        }
    }
    closesocket(client);
    closesocket(server);
}

// What an overlapped stream receive and send made on lwIP's engine returned.
struct StreamCallsOnTheEngine {
    SOCKET receiver = INVALID_SOCKET;
    SOCKET sender = INVALID_SOCKET;
    WSAOVERLAPPED receive_ov{};
    WSAOVERLAPPED send_ov{};
    char in[64];
    char out[12] = "in place";
    int receive_result = -2, receive_error = 0;
    int send_result = -2, send_error = 0;
    DWORD received = 0, sent = 0;
};

void stream_calls_on_the_engine(void* context)
{
    auto& c = *static_cast<StreamCallsOnTheEngine*>(context);
    WSABUF in{sizeof(c.in), c.in};
    DWORD flags = 0;
    c.receive_result = WSARecv(c.receiver, &in, 1, &c.received, &flags, &c.receive_ov, nullptr);
    c.receive_error = WSAGetLastError();
    WSABUF out{sizeof(c.out), c.out};
    c.send_result = WSASend(c.sender, &out, 1, &c.sent, 0, &c.send_ov, nullptr);
    c.send_error = WSAGetLastError();
}

// Skipping the port on success, a call either succeeds and leaves the port
// alone or is pending and completes there: never both, which would have the
// application finish one request twice.
TEST_F(ApiRing, OnTheEngineAStreamCallCompletedInPlaceIsNotifiedOnce)
{
    const auto [client, server] = loopback_connection();
    ASSERT_NE(server, INVALID_SOCKET) << "no connection over lwIP's loopback";
    HANDLE port = CreateIoCompletionPort(reinterpret_cast<HANDLE>(server), nullptr, 1, 0);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(client), port, 2, 0), port);
    for (SOCKET s : {client, server}) {
        ASSERT_TRUE(
            SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    }
    const std::vector<uint8_t> sent = datagram(5, 10);
    ASSERT_EQ(send(client, reinterpret_cast<const char*>(sent.data()), 10, 0), 10) << WSAGetLastError();
    ASSERT_TRUE(wait_queued(server, 10));

    StreamCallsOnTheEngine c;
    c.receiver = server;
    c.sender = client;
    ASSERT_EQ(ringsock_run_on_engine(0, stream_calls_on_the_engine, &c), 0);
    std::map<LPOVERLAPPED, int> on_port;
    for (;;) {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        LPOVERLAPPED ov = nullptr;
        if (!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 500)) break;
        ++on_port[ov];
    }
    ASSERT_TRUE(c.receive_result == 0 || c.receive_error == WSA_IO_PENDING) << c.receive_error;
    EXPECT_EQ(on_port[&c.receive_ov], c.receive_result == 0 ? 0 : 1)
        << "the receive " << (c.receive_result == 0 ? "succeeded at once" : "was pending");
    EXPECT_EQ(c.receive_ov.InternalHigh, 10u);
    EXPECT_EQ(std::memcmp(c.in, sent.data(), 10), 0);
    ASSERT_TRUE(c.send_result == 0 || c.send_error == WSA_IO_PENDING) << c.send_error;
    EXPECT_EQ(on_port[&c.send_ov], c.send_result == 0 ? 0 : 1)
        << "the send " << (c.send_result == 0 ? "succeeded at once" : "was pending");
    char back[sizeof(c.out)];
    ASSERT_TRUE(wait_queued(server, sizeof(back)));
    EXPECT_EQ(recv(server, back, sizeof(back), 0), static_cast<int>(sizeof(back))) << WSAGetLastError();
    EXPECT_STREQ(back, c.out);
    closesocket(client);
    closesocket(server);
    CloseHandle(port);
}

TEST_F(ApiRing, DatagramWithABadUdpChecksumIsNeverDelivered)
{
    SOCKET s = bound_socket(7308);
    WSAEVENT ev = WSACreateEvent();
    char b[64];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov, nullptr), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer_sends(7308, 2, 13, 40000, /*bad_checksum=*/true);
    ASSERT_TRUE(peer::wait_polled()) << "the engine did not take the frame";
    EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 300, FALSE), WSA_WAIT_TIMEOUT)
        << "the bad datagram reached the receive";
    u_long queued = 1;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 0u);
    // The same receive then gets the next good one.
    peer_sends(7308, 6, 9);
    ASSERT_TRUE(signalled(ev, kWaitMs)) << "no completion for the good datagram";
    DWORD bytes = 0;
    ASSERT_TRUE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 9u);
    EXPECT_EQ(static_cast<uint8_t>(b[0]), pattern(6, 0));
    WSACloseEvent(ev);
    closesocket(s);
}

// Mbufs out of every pool (per-lcore caches count as free).
unsigned mbufs_in_use()
{
    unsigned in_use = 0;
    rte_mempool_walk([](rte_mempool* mp, void* sum) { *static_cast<unsigned*>(sum) += rte_mempool_in_use_count(mp); },
                     &in_use);
    return in_use;
}

void refresh_ipv4_checksum(std::vector<uint8_t>& f)
{
    f[24] = f[25] = 0;
    uint32_t sum = 0;
    for (std::size_t i = 14; i < 34; i += 2)
        sum += static_cast<uint32_t>(f[i] << 8 | f[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    f[24] = static_cast<uint8_t>(~sum >> 8);
    f[25] = static_cast<uint8_t>(~sum);
}

// Datagram k's frame, damaged in one of eleven ways that each must keep it
// from any socket: cut inside the headers or the payload, IP total length
// beyond the frame, IHL below 5, version 6 under IPv4's ethertype, a wrong
// IP checksum, a UDP length beyond the IP payload or below 8, a payload
// byte changed under the UDP checksum, an unknown ethertype, another MAC.
std::vector<uint8_t> damaged(std::vector<uint8_t> f, unsigned k)
{
    const auto put16 = [&f](std::size_t at, unsigned v) {
        f[at] = static_cast<uint8_t>(v >> 8);
        f[at + 1] = static_cast<uint8_t>(v);
    };
    const unsigned ip_length = static_cast<unsigned>(f.size() - 14);
    switch (k % 11) {
    case 0:
        f.resize(k % 42);
        break;
    case 1:
        f.resize(42 + (f.size() - 42) / 2);
        break;
    case 2:
        put16(16, ip_length + 40), refresh_ipv4_checksum(f);
        break;
    case 3:
        f[14] = 0x44, refresh_ipv4_checksum(f);
        break;
    case 4:
        f[14] = 0x65, refresh_ipv4_checksum(f);
        break;
    case 5:
        f[24] ^= 0x55;
        break;
    case 6:
        put16(38, ip_length - 20 + 8);
        break;
    case 7:
        put16(38, 7);
        break;
    case 8:
        f[42] ^= 0x01;
        break;
    case 9:
        put16(12, 0x1234);
        break;
    default:
        f[5] = 0x99;
        break;
    }
    return f;
}

// "Bad input never crashes it or loses data": a damaged frame after every
// good datagram costs no good datagram, reaches no socket, and leaves no
// mbuf behind.
TEST_F(ApiRing, DamagedFramesAmongGoodDatagramsCostNoDatagramAndNoMbuf)
{
    constexpr unsigned kGood = 550; // five times through the damage kinds
    constexpr uint16_t kPort = 7309;
    SOCKET s = ringsock::testing::bound_udp_socket(kPort, 0);
    const DWORD timeout_ms = kWaitMs;
    ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&timeout_ms), sizeof(timeout_ms)),
              0);
    const unsigned in_use_before = mbufs_in_use();
    for (unsigned k = 0; k < kGood; ++k) {
        const std::vector<uint8_t> good = peer::udp_frame(40000, kPort, datagram(k, 20 + k % 50));
        ASSERT_TRUE(peer::send_frame(good)) << k;
        ASSERT_TRUE(peer::send_frame(damaged(good, k))) << k;
        if (k % 100 == 99) {
            ASSERT_TRUE(peer::wait_polled());
        }
    }
    ASSERT_TRUE(peer::wait_polled());
    char b[128];
    for (unsigned k = 0; k < kGood; ++k) {
        const int got = recvfrom(s, b, sizeof(b), 0, nullptr, nullptr);
        ASSERT_EQ(got, static_cast<int>(20 + k % 50)) << "datagram " << k << ": error " << WSAGetLastError();
        for (int i = 0; i < got; ++i)
            ASSERT_EQ(static_cast<uint8_t>(b[i]), pattern(k, static_cast<unsigned>(i))) << "datagram " << k;
    }
    u_long queued = 1;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 0u) << "something beyond the good datagrams reached the socket";
    closesocket(s);
    peer::drain_sent();
    EXPECT_EQ(mbufs_in_use(), in_use_before) << "mbufs held after every frame was taken";
}

} // namespace

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    std::vector<std::string> settings{"eal.lcores=0-1", "eal.memory_mb=256"};
#ifdef RINGSOCK_API_RING_UNREGISTERED
    // The same receive paths on threads that stay unregistered.
    settings.emplace_back("eal.register_application_threads=false");
    if (::testing::GTEST_FLAG(filter) == "*") ::testing::GTEST_FLAG(filter) = "*ApplicationThread*:*TwoThreads*";
#endif
    const std::string profile = ringsock::testing::source_root() + "/drivers_config/ring.toml";
    std::string error;
    if (peer::configure_on_ring_peer(profile, 1, settings, error) != peer::PeerConfigured::yes) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    return RUN_ALL_TESTS();
}
