// Pins the public header to Windows: sizes and offsets as on 64-bit
// Windows, and the numeric values of the constants a ported program's
// logic compares against. Compiles against the public header alone, in C++
// here and in C (test_api_abi_c.c) so both languages see the same layout.
#include <ringsock/mstcpip.h>
#include <ringsock/mswsock.h>
#include <ringsock/ringsock.h>
#include <ringsock/ws2spi.h>
#include <ringsock/ws2tcpip.h>

#include <cstddef>
#include <type_traits>

#include <gtest/gtest.h>

// Base types: Windows' widths, not Linux's.
static_assert(sizeof(DWORD) == 4 && std::is_unsigned_v<DWORD>);
static_assert(sizeof(ULONG) == 4 && std::is_unsigned_v<ULONG>);
static_assert(sizeof(LONG) == 4 && std::is_signed_v<LONG>);
static_assert(sizeof(WORD) == 2 && sizeof(BYTE) == 1 && sizeof(BOOL) == 4);
static_assert(sizeof(SOCKET) == 8 && std::is_unsigned_v<SOCKET>, "SOCKET is UINT_PTR");
static_assert(sizeof(ULONG_PTR) == 8 && sizeof(HANDLE) == 8);
static_assert(INVALID_SOCKET == ~static_cast<SOCKET>(0));
static_assert(SOCKET_ERROR == -1);

// WSABUF {ULONG len; CHAR *buf;}
// Stream sockets: Windows' layouts and values.
static_assert(sizeof(GUID) == 16 && offsetof(GUID, Data2) == 4 && offsetof(GUID, Data4) == 8);
static_assert(sizeof(linger) == 4 && offsetof(linger, l_linger) == 2);
static_assert(TCP_NODELAY == 1 && SO_KEEPALIVE == 8 && SO_LINGER == 0x80 && SO_ACCEPTCONN == 2);
static_assert(static_cast<DWORD>(SIO_GET_EXTENSION_FUNCTION_POINTER) == 0xC8000006u);
// <mstcpip.h>: Windows' values.
static_assert(static_cast<DWORD>(SIO_KEEPALIVE_VALS) == 0x98000004u);
static_assert(sizeof(tcp_keepalive) == 12 && offsetof(tcp_keepalive, keepaliveinterval) == 8);
static_assert(SO_UPDATE_ACCEPT_CONTEXT == 0x700B && SO_UPDATE_CONNECT_CONTEXT == 0x7010);
static_assert(SOMAXCONN == 0x7fffffff && MSG_WAITALL == 8);

static_assert(sizeof(WSABUF) == 16);
static_assert(offsetof(WSABUF, len) == 0 && offsetof(WSABUF, buf) == 8);

// OVERLAPPED on 64-bit Windows.
static_assert(sizeof(WSAOVERLAPPED) == 32);
static_assert(offsetof(WSAOVERLAPPED, Internal) == 0);
static_assert(offsetof(WSAOVERLAPPED, InternalHigh) == 8);
static_assert(offsetof(WSAOVERLAPPED, Offset) == 16);
static_assert(offsetof(WSAOVERLAPPED, OffsetHigh) == 20);
static_assert(offsetof(WSAOVERLAPPED, Pointer) == 16);
static_assert(offsetof(WSAOVERLAPPED, hEvent) == 24);
static_assert(sizeof(OVERLAPPED_ENTRY) == 32);
static_assert(offsetof(OVERLAPPED_ENTRY, lpCompletionKey) == 0);
static_assert(offsetof(OVERLAPPED_ENTRY, lpOverlapped) == 8);
static_assert(offsetof(OVERLAPPED_ENTRY, Internal) == 16);
static_assert(offsetof(OVERLAPPED_ENTRY, dwNumberOfBytesTransferred) == 24);
static_assert(std::is_same_v<WSAOVERLAPPED, OVERLAPPED>);

// WSADATA, _WIN64 member order.
static_assert(sizeof(WSADATA) == 408);
static_assert(offsetof(WSADATA, iMaxSockets) == 4 && offsetof(WSADATA, lpVendorInfo) == 8);
static_assert(offsetof(WSADATA, szDescription) == 16 && offsetof(WSADATA, szSystemStatus) == 273);

// Addresses.
static_assert(sizeof(sockaddr) == 16 && sizeof(sockaddr_in) == 16 && sizeof(sockaddr_in6) == 28);
static_assert(offsetof(sockaddr_in, sin_port) == 2 && offsetof(sockaddr_in, sin_addr) == 4);
static_assert(offsetof(sockaddr_in6, sin6_flowinfo) == 4 && offsetof(sockaddr_in6, sin6_addr) == 8 &&
              offsetof(sockaddr_in6, sin6_scope_id) == 24);
static_assert(sizeof(sockaddr_storage) == 128 && sizeof(in_addr) == 4 && sizeof(in6_addr) == 16);
static_assert(sizeof(ip_mreq) == 8);
static_assert(sizeof(ip_mreq_source) == 12 && offsetof(ip_mreq_source, imr_sourceaddr) == 4);
static_assert(sizeof(ipv6_mreq) == 20 && offsetof(ipv6_mreq, ipv6mr_interface) == 16);
static_assert(sizeof(group_req) == 136 && offsetof(group_req, gr_group) == 8);
static_assert(sizeof(group_source_req) == 264 && offsetof(group_source_req, gsr_group) == 8 &&
              offsetof(group_source_req, gsr_source) == 136);
static_assert(sizeof(WSATHREADID) == 16);
// WSARecvMsg's message and control data, 64-bit Windows' layouts and values.
static_assert(sizeof(WSAMSG) == 56 && offsetof(WSAMSG, namelen) == 8 && offsetof(WSAMSG, lpBuffers) == 16 &&
              offsetof(WSAMSG, dwBufferCount) == 24 && offsetof(WSAMSG, Control) == 32 &&
              offsetof(WSAMSG, dwFlags) == 48);
static_assert(sizeof(WSACMSGHDR) == 16 && offsetof(WSACMSGHDR, cmsg_level) == 8 &&
              offsetof(WSACMSGHDR, cmsg_type) == 12);
static_assert(WSA_CMSG_LEN(sizeof(IN_PKTINFO)) == 24 && WSA_CMSG_SPACE(sizeof(IN_PKTINFO)) == 24);
static_assert(WSA_CMSG_LEN(sizeof(IN6_PKTINFO)) == 36 && WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) == 40);
static_assert(sizeof(IN_PKTINFO) == 8 && sizeof(IN6_PKTINFO) == 20 && offsetof(IN6_PKTINFO, ipi6_ifindex) == 16);
static_assert(IP_PKTINFO == 19 && IPV6_PKTINFO == 19 && MSG_TRUNC == 0x100 && MSG_CTRUNC == 0x200 &&
              MSG_BCAST == 0x400 && MSG_MCAST == 0x800);
static_assert(IP_HOPLIMIT == 21 && IP_RECVTTL == 21 && IPV6_HOPLIMIT == 21 && IP_ECN == 50 && IP_RECVECN == 50 &&
              IPV6_ECN == 50 && IPV6_RECVECN == 50 && IP_TTL == 4);
static_assert(WSA_CMSG_LEN(sizeof(INT)) == 20 && WSA_CMSG_SPACE(sizeof(INT)) == 24);
static_assert(AF_INET == 2 && AF_INET6 == 23 && SOCK_STREAM == 1 && SOCK_DGRAM == 2 && IPPROTO_UDP == 17);

// The errors of the two reference pages and the overlapped statuses.
static_assert(WSA_IO_PENDING == 997 && WSA_OPERATION_ABORTED == 995 && WSA_IO_INCOMPLETE == 996);
static_assert(WSA_INVALID_HANDLE == 6 && WSA_INVALID_PARAMETER == 87 && WSA_NOT_ENOUGH_MEMORY == 8);
static_assert(WSANOTINITIALISED == 10093 && WSAENETDOWN == 10050 && WSAEFAULT == 10014);
static_assert(WSAENOTCONN == 10057 && WSAEINTR == 10004 && WSAEINPROGRESS == 10036);
static_assert(WSAENETRESET == 10052 && WSAENOTSOCK == 10038 && WSAEOPNOTSUPP == 10045);
static_assert(WSAESHUTDOWN == 10058 && WSAEWOULDBLOCK == 10035 && WSAEMSGSIZE == 10040);
static_assert(WSAEINVAL == 10022 && WSAECONNABORTED == 10053 && WSAETIMEDOUT == 10060);
static_assert(WSAECONNRESET == 10054 && WSAEDISCON == 10101 && WSAEISCONN == 10056);
static_assert(WSAENOBUFS == 10055 && WSAEADDRINUSE == 10048 && WSAEAFNOSUPPORT == 10047);

// Flags, options and waits.
static_assert(MSG_OOB == 1 && MSG_PEEK == 2 && MSG_PARTIAL == 0x8000);
static_assert(SD_RECEIVE == 0 && SD_SEND == 1 && SD_BOTH == 2);
static_assert(SOL_SOCKET == 0xffff && SO_RCVBUF == 0x1002 && SO_SNDBUF == 0x1001 && SO_REUSEADDR == 4);
static_assert(SO_RCVTIMEO == 0x1006 && IP_ADD_MEMBERSHIP == 12 && IP_DROP_MEMBERSHIP == 13);
static_assert(IP_ADD_SOURCE_MEMBERSHIP == 15 && IP_DROP_SOURCE_MEMBERSHIP == 16);
static_assert(IP_BLOCK_SOURCE == 17 && IP_UNBLOCK_SOURCE == 18);
static_assert(MCAST_JOIN_GROUP == 41 && MCAST_LEAVE_GROUP == 42 && MCAST_BLOCK_SOURCE == 43 &&
              MCAST_UNBLOCK_SOURCE == 44 && MCAST_JOIN_SOURCE_GROUP == 45 && MCAST_LEAVE_SOURCE_GROUP == 46);
static_assert(IP_MULTICAST_IF == 9 && IP_MULTICAST_TTL == 10 && IP_MULTICAST_LOOP == 11);
static_assert(IPV6_MULTICAST_IF == 9 && IPV6_MULTICAST_HOPS == 10 && IPV6_MULTICAST_LOOP == 11);
static_assert(IPV6_ADD_MEMBERSHIP == 12 && IPV6_DROP_MEMBERSHIP == 13 && IPV6_JOIN_GROUP == 12 &&
              IPV6_LEAVE_GROUP == 13);
static_assert(static_cast<uint32_t>(FIONBIO) == 0x8004667Eu && static_cast<uint32_t>(FIONREAD) == 0x4004667Fu);
static_assert(static_cast<uint32_t>(FIONBIO) == static_cast<uint32_t>(_IOW('f', 126, ULONG)));
static_assert(WSA_FLAG_OVERLAPPED == 1 && WSA_MAXIMUM_WAIT_EVENTS == 64);
static_assert(WSA_WAIT_EVENT_0 == 0 && WSA_WAIT_IO_COMPLETION == 0xC0 && WSA_WAIT_TIMEOUT == 258);
static_assert(WSA_WAIT_FAILED == 0xFFFFFFFFu && WSA_INFINITE == 0xFFFFFFFFu && STATUS_PENDING == 0x103);
static_assert(FILE_SKIP_COMPLETION_PORT_ON_SUCCESS == 1 && MAKEWORD(2, 2) == 0x0202);

// The completion routine's prototype.
static_assert(std::is_same_v<LPWSAOVERLAPPED_COMPLETION_ROUTINE, void (*)(DWORD, DWORD, LPWSAOVERLAPPED, DWORD)>);

extern "C" int abi_from_c(void);

TEST(ApiAbi, CAndCppAgree)
{
    // test_api_abi_c.c returns its own sizeof/offsetof sums.
    const int cpp = static_cast<int>(sizeof(WSAOVERLAPPED) + offsetof(WSAOVERLAPPED, hEvent) + sizeof(WSABUF) +
                                     sizeof(WSADATA) + sizeof(sockaddr_in6) + sizeof(OVERLAPPED_ENTRY));
    EXPECT_EQ(abi_from_c(), cpp);
}

TEST(ApiAbi, ByteOrderAndAddressText)
{
    EXPECT_EQ(htons(0x1234), 0x3412);
    EXPECT_EQ(ntohl(htonl(0x01020304u)), 0x01020304u);
    in_addr a{};
    ASSERT_EQ(inet_pton(AF_INET, "198.18.0.2", &a), 1);
    EXPECT_EQ(a.S_un.S_un_b.s_b1, 198);
    EXPECT_EQ(a.S_un.S_un_b.s_b4, 2);
    in6_addr b{};
    ASSERT_EQ(inet_pton(AF_INET6, "2001:2::1", &b), 1);
    char text[INET6_ADDRSTRLEN];
    EXPECT_STREQ(inet_ntop(AF_INET6, &b, text, sizeof(text)), "2001:2::1");
    EXPECT_EQ(inet_pton(AF_INET, "not an address", &a), 0);
    EXPECT_EQ(inet_pton(99, "1.2.3.4", &a), -1);
    EXPECT_EQ(WSAGetLastError(), WSAEAFNOSUPPORT);
    EXPECT_EQ(inet_addr("1.2.3.4"), 0x04030201u);
}
