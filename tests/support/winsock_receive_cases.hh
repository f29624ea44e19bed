// Receive behaviours of WSARecv's page checked the same way against every
// peer the API tests have (the kernel in a namespace, the in-process
// net_ring peer): each case posts, has the peer send, and checks what the
// page promises. A test calls the case with its own port and peer. Public
// Winsock header only (include it first).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/winsock_helpers.hh"

namespace ringsock::testing {

struct DatagramPeer {
    // Sends datagram k of sizes[k] bytes to our `port`, in order.
    std::function<void(uint16_t port, const std::vector<std::size_t>& sizes)> send;
    // Byte i of the peer's datagram k.
    std::function<uint8_t(unsigned k, unsigned i)> byte;
};

inline constexpr DWORD kCaseWaitMs = 5000;

// "The buffers are filled in the order in which they appear in the array":
// a zero-length buffer takes nothing, no byte lands past the datagram.
inline void buffers_fill_in_array_order_without_holes(uint16_t port, const DatagramPeer& peer)
{
    SOCKET s = bound_udp_socket(port);
    WSAEVENT ev = WSACreateEvent();
    char a[5], b[1], c[3], d[100];
    std::memset(d, 0x77, sizeof(d));
    WSABUF bufs[4] = {{sizeof(a), a}, {0, b}, {sizeof(c), c}, {sizeof(d), d}};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecv(s, bufs, 4, &got, &flags, &ov, nullptr), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer.send(port, {20});
    ASSERT_TRUE(signalled(ev, kCaseWaitMs)) << "no completion";
    DWORD bytes = 0;
    ASSERT_TRUE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &flags)) << WSAGetLastError();
    ASSERT_EQ(bytes, 20u);
    uint8_t joined[20];
    std::memcpy(joined, a, 5);
    std::memcpy(joined + 5, c, 3);
    std::memcpy(joined + 8, d, 12);
    for (unsigned i = 0; i < 20; ++i)
        EXPECT_EQ(joined[i], peer.byte(0, i)) << i;
    EXPECT_EQ(static_cast<uint8_t>(d[12]), 0x77) << "nothing past the datagram";
    WSACloseEvent(ev);
    closesocket(s);
}

// A datagram larger than the buffers fills them, fails with WSAEMSGSIZE
// (no MSG_PARTIAL: UDP is unreliable, the rest is lost), and the next
// receive gets the next datagram, not the lost tail.
inline void oversize_datagram_fills_the_buffers_and_fails_with_emsgsize(uint16_t port, const DatagramPeer& peer)
{
    SOCKET s = bound_udp_socket(port);
    WSAEVENT ev = WSACreateEvent();
    char a[10], b[10];
    WSABUF bufs[2] = {{sizeof(a), a}, {sizeof(b), b}};
    DWORD got = 0, flags = 0;
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecv(s, bufs, 2, &got, &flags, &ov, nullptr), SOCKET_ERROR);
    ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    peer.send(port, {100, 7});
    ASSERT_TRUE(signalled(ev, kCaseWaitMs)) << "no completion";
    DWORD bytes = 0;
    EXPECT_FALSE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &flags));
    EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
    EXPECT_EQ(bytes, 20u);
    EXPECT_EQ(flags & MSG_PARTIAL, 0u) << "UDP is unreliable without MSG_PARTIAL: the rest is lost";
    for (unsigned i = 0; i < 10; ++i) {
        EXPECT_EQ(static_cast<uint8_t>(a[i]), peer.byte(0, i));
        EXPECT_EQ(static_cast<uint8_t>(b[i]), peer.byte(0, 10 + i));
    }
    ASSERT_TRUE(wait_queued(s, 7));
    u_long queued = 0;
    ASSERT_EQ(ioctlsocket(s, FIONREAD, &queued), 0);
    EXPECT_EQ(queued, 7u) << "the 80 bytes that did not fit are gone";
    char next[64];
    WSABUF one{sizeof(next), next};
    flags = 0;
    WSAOVERLAPPED ov2{};
    ASSERT_EQ(WSARecv(s, &one, 1, &got, &flags, &ov2, nullptr), 0) << WSAGetLastError();
    EXPECT_EQ(got, 7u);
    for (unsigned i = 0; i < 7; ++i)
        EXPECT_EQ(static_cast<uint8_t>(next[i]), peer.byte(1, i)) << i;
    WSACloseEvent(ev);
    closesocket(s);
}

// `posts` receives posted on a completion port complete in posting order,
// request k with datagram k, and no completion comes beyond them.
inline void receives_complete_in_posting_order(uint16_t port, unsigned posts, const DatagramPeer& peer)
{
    SOCKET s = bound_udp_socket(port);
    HANDLE iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    ASSERT_NE(iocp, nullptr);
    ASSERT_EQ(CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), iocp, 77, 0), iocp);
    std::vector<std::vector<char>> b(posts, std::vector<char>(64, 0));
    std::vector<WSAOVERLAPPED> ov(posts);
    for (unsigned i = 0; i < posts; ++i) {
        WSABUF buf{64, b[i].data()};
        DWORD got = 0, flags = 0;
        ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov[i], nullptr), SOCKET_ERROR);
        ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    }
    // Datagram k has k + 1 bytes.
    std::vector<std::size_t> sizes;
    for (unsigned k = 0; k < posts; ++k)
        sizes.push_back(k + 1);
    peer.send(port, sizes);
    std::vector<OVERLAPPED_ENTRY> entries(posts);
    ULONG total = 0;
    while (total < posts) {
        ULONG n = 0;
        ASSERT_TRUE(GetQueuedCompletionStatusEx(iocp, entries.data() + total, posts - total, &n, kCaseWaitMs, FALSE))
            << "after " << total << " completions: " << GetLastError();
        total += n;
    }
    for (unsigned i = 0; i < posts; ++i) {
        EXPECT_EQ(entries[i].lpCompletionKey, 77u);
        EXPECT_EQ(entries[i].lpOverlapped, &ov[i]) << "completion " << i << " is not request " << i;
        const auto k = static_cast<unsigned>(entries[i].lpOverlapped - ov.data());
        ASSERT_LT(k, posts);
        EXPECT_EQ(entries[i].dwNumberOfBytesTransferred, static_cast<DWORD>(k + 1));
        for (unsigned j = 0; j <= k; ++j)
            ASSERT_EQ(static_cast<uint8_t>(b[k][j]), peer.byte(k, j)) << "request " << k << " byte " << j;
    }
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 200)) << "a completion too many";
    closesocket(s);
    CloseHandle(iocp);
}

// A receive that finds a datagram queued completes at once (returns 0 with
// the bytes and flags written, MSG_PARTIAL cleared) and still notifies: its
// event is set, its completion port gets a packet, unless the socket skips
// the port on success.
inline void queued_datagram_completes_at_once_and_still_notifies(uint16_t port, const DatagramPeer& peer)
{
    SOCKET s = bound_udp_socket(port);
    peer.send(port, {11, 12, 13});
    ASSERT_TRUE(wait_queued(s, 36));
    char b[64];
    WSABUF buf{sizeof(b), b};
    DWORD got = 0, flags = MSG_PARTIAL;

    WSAEVENT ev = WSACreateEvent();
    ASSERT_FALSE(signalled(ev, 0));
    WSAOVERLAPPED ov{};
    ov.hEvent = ev;
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov, nullptr), 0) << WSAGetLastError();
    EXPECT_EQ(got, 11u);
    EXPECT_EQ(flags, 0u) << "a whole message clears MSG_PARTIAL";
    for (unsigned i = 0; i < 11; ++i)
        EXPECT_EQ(static_cast<uint8_t>(b[i]), peer.byte(0, i)) << i;
    EXPECT_TRUE(signalled(ev, 0)) << "the event of an immediate completion is set";
    DWORD bytes = 0;
    ASSERT_TRUE(WSAGetOverlappedResult(s, &ov, &bytes, FALSE, &flags)) << WSAGetLastError();
    EXPECT_EQ(bytes, 11u);

    HANDLE iocp = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), nullptr, 5, 0);
    ASSERT_NE(iocp, nullptr);
    WSAOVERLAPPED ov2{};
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov2, nullptr), 0) << WSAGetLastError();
    EXPECT_EQ(got, 12u);
    EXPECT_EQ(static_cast<uint8_t>(b[0]), peer.byte(1, 0));
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    ASSERT_TRUE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, kCaseWaitMs));
    EXPECT_EQ(done, &ov2);
    EXPECT_EQ(bytes, 12u);
    EXPECT_EQ(key, 5u);

    ASSERT_TRUE(SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    WSAOVERLAPPED ov3{};
    ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov3, nullptr), 0) << WSAGetLastError();
    EXPECT_EQ(got, 13u);
    done = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 200));
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(WAIT_TIMEOUT));
    EXPECT_EQ(done, nullptr);
    WSACloseEvent(ev);
    closesocket(s);
    CloseHandle(iocp);
}

// closesocket completes every pending receive once, with
// WSA_OPERATION_ABORTED and no bytes; nothing more comes, not even for a
// datagram sent to the port afterwards; the handle is dead.
inline void closesocket_aborts_each_pending_receive_exactly_once(uint16_t port, const DatagramPeer& peer)
{
    constexpr int kPosts = 4;
    SOCKET s = bound_udp_socket(port);
    HANDLE iocp = CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), nullptr, 9, 0);
    ASSERT_NE(iocp, nullptr);
    char b[kPosts][16];
    WSAOVERLAPPED ov[kPosts]{};
    for (int i = 0; i < kPosts; ++i) {
        WSABUF buf{sizeof(b[i]), b[i]};
        DWORD got = 0, flags = 0;
        ASSERT_EQ(WSARecv(s, &buf, 1, &got, &flags, &ov[i], nullptr), SOCKET_ERROR);
        ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
    }
    ASSERT_EQ(closesocket(s), 0);
    int seen[kPosts] = {};
    for (int i = 0; i < kPosts; ++i) {
        DWORD bytes = 1;
        ULONG_PTR key = 0;
        LPOVERLAPPED done = nullptr;
        EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, kCaseWaitMs));
        EXPECT_EQ(GetLastError(), static_cast<DWORD>(WSA_OPERATION_ABORTED));
        ASSERT_NE(done, nullptr) << "completion " << i << " did not come";
        const auto k = done - ov;
        ASSERT_TRUE(k >= 0 && k < kPosts);
        seen[k]++;
        EXPECT_EQ(bytes, 0u);
        EXPECT_EQ(key, 9u);
    }
    for (int i = 0; i < kPosts; ++i)
        EXPECT_EQ(seen[i], 1) << "request " << i;
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED done = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 300)) << "a completion too many";
    EXPECT_EQ(GetLastError(), static_cast<DWORD>(WAIT_TIMEOUT));
    EXPECT_EQ(done, nullptr);
    peer.send(port, {8});
    EXPECT_FALSE(GetQueuedCompletionStatus(iocp, &bytes, &key, &done, 200)) << "a datagram for the closed port";
    EXPECT_EQ(overlapped_recv_error(s), WSAENOTSOCK) << "the handle is dead";
    CloseHandle(iocp);
}

} // namespace ringsock::testing
