// libFuzzer target for the Winsock API as a caller reaches it: an input is
// a short program of calls on a few sockets (socket, closesocket, setsockopt
// and getsockopt at every level with any bytes and lengths, bind, connect,
// listen, accept, AcceptEx, ConnectEx, shutdown, sendto, WSASendMsg with
// any control records, overlapped WSARecvFrom and WSARecvMsg with any
// buffers, flags and name lengths, synchronous receives, WSAIoctl with any
// code and buffers, getsockname/getpeername, WSAGetOverlappedResult,
// inet_pton/inet_ntop/inet_addr on any text, WSACleanup and WSAStartup
// again with calls pending, completion ports associated,
// reaped, posted to and closed under their sockets, completion routines
// run by alertable waits, any call made on an engine's own lcore through
// ringsock_run_on_engine or by a poller, ringsock_poll_on_engine, one call
// per poll), between which the in-process ring peer
// (tests/support/ring_peer.hh) sends UDP datagrams of both families to
// the ports the program binds, at our addresses, groups and broadcasts. The runtime is the real one (WSAStartup on
// ring.toml, an engine on lcore 1); the api sources are compiled into this target, instrumented. FUZZ_API_ENGINES=2
// starts two engines on the one-queue port (lcores 1 and 2 on CPU 1), so sockets homed on engine 1 receive what engine
// 0 hands over, and port-shared sockets what its software RSS spreads. FUZZ_API_QUEUES=2 gives the port two queue
// pairs (RSS mode "none", the peer picking each datagram's queue): with two engines each polls a queue of its own,
// hands over what is homed on the other or is lwIP's, and sends through its own transmit queue.
//
// What a caller may not do is not done: no length longer than the buffer
// behind it, no call that would block (every socket is non-blocking and
// stays so), no freeing of memory an overlapped call still owns. Anything
// else the API must refuse with a Winsock error, not a crash.
//
// After each input every socket is closed; then every overlapped call that
// was left pending must complete within 5 s (a call that never completes
// would hang its caller forever), each completion routine must have run
// exactly once in alertable waits meanwhile (and none for a call that
// failed), no port packet may have named a call that failed at once or
// succeeded at once on a socket skipping the port on success, and every
// mbuf the peer sent must be back in its pool within 5 s (a datagram the
// API lost track of). Any of these aborts the run, as does a sanitizer report or a call that blocks
// past libFuzzer's -timeout. FUZZ_API_TRACE=1 prints each call and its error.
#include <ringsock/mstcpip.h>
#include <ringsock/mswsock.h>
#include <ringsock/ringsock.h>
#include <ringsock/ws2tcpip.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/support/ring_peer.hh"
#include "tests/support/ring_peer_startup.hh"

namespace {

namespace peer = ringsock::testing;
using namespace std::chrono_literals;

constexpr unsigned kSlots = 4;
constexpr unsigned kMaxCalls = 48;
constexpr std::size_t kMaxOption = 48;
constexpr std::size_t kMaxControl = 160;
constexpr DWORD kCompletionWaitMs = 5000;

// The ports a program binds and the peer sends to, so the two meet.
constexpr uint16_t kPorts[] = {5000, 5001, 7};

// Every option name the headers define, at any level: a program picks one
// of these most of the time and any integer otherwise.
// clang-format off
constexpr int kOptionNames[] = {
    SO_DEBUG, SO_ACCEPTCONN, SO_REUSEADDR, SO_KEEPALIVE, SO_DONTROUTE, SO_BROADCAST, SO_LINGER, SO_OOBINLINE,
    SO_EXCLUSIVEADDRUSE, SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_SNDTIMEO, SO_RCVTIMEO, SO_ERROR, SO_TYPE,
    SO_DONTLINGER, SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT, SO_RINGSOCK_PORT_SHARE,
    SO_RINGSOCK_HOME_ENGINE, SO_RINGSOCK_RCV_DROPS, TCP_NODELAY, IP_OPTIONS, IP_HDRINCL, IP_TOS, IP_TTL,
    IP_MULTICAST_IF, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP,
    IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE, IP_UNBLOCK_SOURCE, IP_PKTINFO, IP_HOPLIMIT,
    IP_ECN, IPV6_UNICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_ADD_MEMBERSHIP,
    IPV6_DROP_MEMBERSHIP, IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_ECN, IPV6_V6ONLY, MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP,
    MCAST_BLOCK_SOURCE, MCAST_UNBLOCK_SOURCE, MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP
};
// clang-format on
constexpr int kLevels[] = {SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, -1};
constexpr int kFlags[] = {0, MSG_PEEK, MSG_OOB, MSG_PARTIAL, MSG_WAITALL, MSG_DONTROUTE, MSG_PEEK | MSG_PARTIAL, -1};

// IPv4 addresses a program names: ours, the peer's, the wildcard, loopback,
// a group, broadcast; anything else from the input.
constexpr const char* kIpv4[] = {"198.18.0.2", "198.18.0.1", "0.0.0.0", "127.0.0.1", "224.1.2.3", "255.255.255.255"};
constexpr const char* kIpv6[] = {"2001:2::2", "2001:2::1", "::", "::ffff:198.18.0.1", "ff02::1", "fe80::1"};

// memcpy of what the input gave, which may be nothing (a null data()).
template <typename T>
void copy_bytes(void* to, const std::vector<T>& bytes)
{
    if (!bytes.empty()) std::memcpy(to, bytes.data(), bytes.size());
}

// Every byte anyone sends here, the peer or the program, is
// pattern_byte(seed, i) at offset i of its datagram, seed being the first:
// a datagram received whole or cut short has the same pattern, so bytes
// copied from the wrong offset, into the wrong buffer or from another
// buffer altogether show.
uint8_t pattern_byte(uint8_t seed, std::size_t at)
{
    return at == 0 ? seed : static_cast<uint8_t>(seed + 7 * at + (at >> 8));
}

// A stream's byte at offset `at` from its connection's start, the same for
// every connection in either direction: each end counts what it sent and
// what it received, so a byte lost, repeated or taken out of order shifts
// what follows, and no short shift of this sequence matches itself.
uint8_t stream_byte(uint64_t at)
{
    uint64_t x = (at + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return static_cast<uint8_t>(x >> 56);
}

// One side of a stream socket as the program made it: the offset its next
// byte sent will have, and the receives that take bytes from it in the
// order they were posted (the order the bytes go to them, whichever the
// program learns of first). A receive resolves with what it got; resolved
// receives at the head are checked against the stream in turn.
struct StreamSide {
    struct Taker {
        uint64_t serial = 0; // the Pending's, or 0 for a synchronous receive
        bool resolved = false;
        std::vector<char> bytes;
    };
    uint64_t sent = 0;
    uint64_t received = 0;
    // False once the program can no longer tell where a byte belongs (a
    // new connection begun under receives still waiting): not checked on.
    bool checked = true;
    std::deque<Taker> takers;

    // A connection attempt began: its stream starts at offset 0 both ways.
    void new_connection()
    {
        if (!takers.empty()) checked = false;
        sent = 0;
        received = 0;
    }
};

template <typename T, std::size_t N>
T pick(FuzzedDataProvider& in, const T (&table)[N])
{
    return table[in.ConsumeIntegralInRange<std::size_t>(0, N - 1)];
}

// An overlapped call the program left pending: everything it was given
// stays here until it completes.
struct Pending {
    const char* call = "";
    WSAOVERLAPPED overlapped{};
    std::vector<std::vector<char>> data;
    std::vector<WSABUF> buffers;
    bool datagram = false; // a receive on a datagram socket: its bytes are checked
    // A receive on a stream socket that takes bytes (no MSG_PEEK): its
    // bytes are checked where they fall in the stream.
    std::shared_ptr<StreamSide> stream;
    uint64_t serial = 0;
    // With a completion routine: how often it ran (once, eventually).
    bool routine = false;
    int routine_runs = 0;
    HANDLE event = nullptr; // ours to close; hEvent is the caller's with a routine
    SOCKADDR_STORAGE name{};
    INT name_length = 0;
    DWORD flags = 0;
    WSAMSG message{};
    std::vector<char> control;
    DWORD bytes = 0;
    // The socket whose port association and notification modes its
    // completion follows (AcceptEx's: the listener's).
    SOCKET through = INVALID_SOCKET;
    // Settled at the call (not pending) where the pages allow no port
    // packet: it failed at once, or succeeded at once on a socket that
    // skips the port on success.
    bool no_port_packet = false;
    bool succeeded_at_once = false;
};

class Program {
public:
    Program(const uint8_t* data, std::size_t size) : in_(data, size) { slots_.fill(INVALID_SOCKET); }

    // The completion port every program may associate its sockets with,
    // made once (LLVMFuzzerInitialize) and emptied after each program.
    static void start_port()
    {
        port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
        if (port_ == nullptr) {
            std::fprintf(stderr, "fuzz_api: CreateIoCompletionPort failed\n");
            std::abort();
        }
    }

    // How many engines WSAStartup started (1, or 2 with FUZZ_API_ENGINES=2).
    static void set_engines(int count) { engines_ = count; }

    void run()
    {
        running_ = this;
        for (unsigned call = 0; call < kMaxCalls && in_.remaining_bytes() > 0; ++call)
            step();
        finish();
        running_ = nullptr;
    }

private:
    void step()
    {
        const int call = in_.ConsumeIntegralInRange<int>(0, kLastCall);
        // FUZZ_API_TRACE=1: each call's number and what it left in
        // WSAGetLastError, to read a finding's program.
        if (trace_) std::fprintf(stderr, "fuzz_api: call %d\n", call);
        WSASetLastError(0);
        run_call(call);
        if (trace_) std::fprintf(stderr, "fuzz_api:   -> %d\n", WSAGetLastError());
    }

    void run_call(int call)
    {
        switch (call) {
        case 0:
            open();
            break;
        case 1:
            close();
            break;
        case 2:
            set_option();
            break;
        case 3:
            get_option();
            break;
        case 4:
            bind_or_connect(true);
            break;
        case 5:
            bind_or_connect(false);
            break;
        case 6:
            listen_on();
            break;
        case 7:
            accept_now();
            break;
        case 8:
            accept_overlapped();
            break;
        case 9:
            shut_down();
            break;
        case 10:
            send_to();
            break;
        case 11:
            send_message();
            break;
        case 12:
            receive_overlapped();
            break;
        case 13:
            receive_message();
            break;
        case 14:
            receive_now();
            break;
        case 15:
            control_code();
            break;
        case 16:
            names();
            break;
        case 17:
            text();
            break;
        case 18:
            peer_sends();
            break;
        case 19:
            port_association();
            break;
        case 20:
            reap_port();
            break;
        case 21:
            replace_port();
            break;
        case 22:
            overlapped_result();
            break;
        case 23:
            connect_overlapped();
            break;
        case 24:
            alertable_wait();
            break;
        case 25:
            on_engine();
            break;
        case 26:
            restart();
            break;
        case 27:
            connected_pair();
            break;
        case 28:
            poller();
            break;
        default:
            std::this_thread::sleep_for(std::chrono::microseconds(in_.ConsumeIntegralInRange<int>(0, 300)));
        }
    }

    static constexpr int kLastCall = 29; // the last is a pause

    // The calls an engine's own lcore may make (ringsock_run_on_engine):
    // all but the peer's sends (the peer is the application's, and it is
    // not an engine), a new completion port (start_port aborts if it
    // cannot make one) and the pause (the engine would poll nothing).
    static bool engine_may_make(int call) { return call != 18 && call != 21 && call < kLastCall; }

    // Two slots' sockets made the two ends of one TCP connection over lwIP's
    // loopback (a listener on an ephemeral port of ours, a non-blocking
    // connect, accept), so that programs carry stream data far more often
    // than the calls one at a time would connect. Not on an engine (no
    // socket is made there).
    void connected_pair()
    {
        const bool v6 = in_.ConsumeBool();
        SOCKET& client_slot = slot();
        SOCKET& server_slot = slot();
        if (on_engine_ != kNoEngine || &client_slot == &server_slot) return;
        SOCKADDR_STORAGE name{};
        int length = 0;
        if (v6) {
            auto& a = reinterpret_cast<sockaddr_in6&>(name);
            a.sin6_family = AF_INET6;
            inet_pton(AF_INET6, peer::kRingOurIpv6, &a.sin6_addr);
            length = sizeof(a);
        } else {
            auto& a = reinterpret_cast<sockaddr_in&>(name);
            a.sin_family = AF_INET;
            inet_pton(AF_INET, peer::kRingOurIpv4, &a.sin_addr);
            length = sizeof(a);
        }
        const int family = v6 ? AF_INET6 : AF_INET;
        const SOCKET listener = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (listener == INVALID_SOCKET) return;
        int name_length = length;
        SOCKET client = INVALID_SOCKET;
        SOCKET server = INVALID_SOCKET;
        if (bind(listener, reinterpret_cast<sockaddr*>(&name), length) == 0 && listen(listener, 1) == 0 &&
            getsockname(listener, reinterpret_cast<sockaddr*>(&name), &name_length) == 0) {
            client = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
            if (client != INVALID_SOCKET) {
                make_nonblocking(client);
                connect(client, reinterpret_cast<sockaddr*>(&name), length);
                make_nonblocking(listener);
                const auto deadline = std::chrono::steady_clock::now() + 2s;
                while ((server = accept(listener, nullptr, nullptr)) == INVALID_SOCKET &&
                       WSAGetLastError() == WSAEWOULDBLOCK && std::chrono::steady_clock::now() < deadline)
                    std::this_thread::sleep_for(50us);
            }
        }
        closesocket(listener);
        if (server == INVALID_SOCKET) {
            if (client != INVALID_SOCKET) closesocket(client);
            return;
        }
        make_nonblocking(server);
        for (auto [into, s] : {std::pair<SOCKET*, SOCKET>{&client_slot, client}, {&server_slot, server}}) {
            if (*into != INVALID_SOCKET) close_socket(*into, true);
            skips_port_.erase(s);
            *into = s;
            streams_[s] = std::make_shared<StreamSide>();
        }
    }

    // A slot's socket, now and then a handle closed earlier or one never
    // made: the API must tell them apart.
    SOCKET socket_to_use()
    {
        switch (in_.ConsumeIntegralInRange<int>(0, 15)) {
        case 0:
            return closed_;
        case 1:
            return INVALID_SOCKET;
        default:
            return slots_[in_.ConsumeIntegralInRange<unsigned>(0, kSlots - 1)];
        }
    }

    SOCKET& slot() { return slots_[in_.ConsumeIntegralInRange<unsigned>(0, kSlots - 1)]; }

    void open()
    {
        constexpr int families[] = {AF_INET, AF_INET6, AF_UNSPEC, -1};
        constexpr int types[] = {SOCK_DGRAM, SOCK_STREAM, SOCK_RAW, -1};
        constexpr int protocols[] = {0, IPPROTO_UDP, IPPROTO_TCP, IPPROTO_IP, -1};
        int family = pick(in_, families);
        int type = pick(in_, types);
        int protocol = pick(in_, protocols);
        if (family == -1) family = in_.ConsumeIntegral<int>();
        if (type == -1) type = in_.ConsumeIntegral<int>();
        if (protocol == -1) protocol = in_.ConsumeIntegral<int>();
        const SOCKET s = WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (s == INVALID_SOCKET) return;
        skips_port_.erase(s); // a handle closed earlier, made again
        if (on_engine_ != kNoEngine) {
            std::fprintf(stderr, "fuzz_api: socket succeeded on an engine (ringsock.h: WSAEWOULDBLOCK there)\n");
            std::abort();
        }
        make_nonblocking(s);
        // Its engine (one past the last now and then) and port sharing, as a
        // program spreading one port over the engines sets them.
        if (in_.ConsumeBool()) {
            const int engine = in_.ConsumeIntegralInRange<int>(-1, engines_);
            setsockopt(s, SOL_SOCKET, SO_RINGSOCK_HOME_ENGINE, reinterpret_cast<const char*>(&engine), sizeof(engine));
        }
        if (in_.ConsumeBool()) {
            const int share = 1;
            setsockopt(s, SOL_SOCKET, SO_RINGSOCK_PORT_SHARE, reinterpret_cast<const char*>(&share), sizeof(share));
        }
        SOCKET& into = slot();
        if (into != INVALID_SOCKET) close_socket(into, true);
        into = s;
        // A handle may come back for a new socket: the old one's side lives
        // on in the calls that still hold it.
        streams_.erase(s);
        if (socket_type(s) == SOCK_STREAM) streams_[s] = std::make_shared<StreamSide>();
    }

    static void make_nonblocking(SOCKET s)
    {
        u_long on = 1;
        if (ioctlsocket(s, FIONBIO, &on) != 0) {
            std::fprintf(stderr, "fuzz_api: FIONBIO refused on a new socket (%d)\n", WSAGetLastError());
            std::abort();
        }
    }

    void close()
    {
        SOCKET& s = slot();
        if (s != INVALID_SOCKET) close_socket(s);
    }

    // Whether the socket has SO_LINGER on with a time: on a non-blocking
    // stream socket whose sent bytes are not yet acknowledged, its close
    // fails with WSAEWOULDBLOCK (WSPCloseSocket's page) and it stays open.
    static bool lingers(SOCKET s)
    {
        linger l{};
        int length = sizeof(l);
        return getsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<char*>(&l), &length) == 0 && l.l_onoff != 0 &&
               l.l_linger != 0;
    }

    // On an engine closesocket fails (WSAEWOULDBLOCK) and the socket stays,
    // as it does elsewhere when a lingering close would wait; any other
    // failure of a slot's socket, always a live one, aborts. `must_close`
    // (the slot is wanted, or the program ends): a lingering socket has its
    // linger turned off and must then close.
    void close_socket(SOCKET& s, bool must_close = false)
    {
        if (closesocket(s) != 0) {
            const int error = WSAGetLastError();
            if (on_engine_ != kNoEngine && error == WSAEWOULDBLOCK) return;
            const bool would_linger = error == WSAEWOULDBLOCK && lingers(s);
            if (would_linger && !must_close) return;
            const linger off{0, 0};
            if (!would_linger ||
                setsockopt(s, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&off), sizeof(off)) != 0 ||
                closesocket(s) != 0) {
                std::fprintf(stderr, "fuzz_api: closesocket of a live socket failed (%d)\n", WSAGetLastError());
                std::abort();
            }
        }
        closed_ = s;
        s = INVALID_SOCKET;
    }

    int level()
    {
        const int l = pick(in_, kLevels);
        return l == -1 ? in_.ConsumeIntegral<int>() : l;
    }

    int option_name()
    {
        return in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? in_.ConsumeIntegral<int>() : pick(in_, kOptionNames);
    }

    // A length for a buffer of `size` bytes: its size, less, zero or
    // negative, never more.
    int length_within(std::size_t size)
    {
        switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return static_cast<int>(size);
        case 1:
            return in_.ConsumeIntegralInRange<int>(0, static_cast<int>(size));
        case 2:
            return in_.ConsumeIntegralInRange<int>(-1, 0);
        default:
            return in_.ConsumeIntegral<int>() | INT32_MIN;
        }
    }

    void set_option()
    {
        const SOCKET s = socket_to_use();
        const int l = level();
        const int name = option_name();
        std::vector<char> value = in_.ConsumeBytes<char>(in_.ConsumeIntegralInRange<std::size_t>(0, kMaxOption));
        const bool null_value = in_.ConsumeIntegralInRange<int>(0, 15) == 0;
        const int length = length_within(value.size());
        // A zero FIONBIO has its own door (ioctlsocket); options cannot make
        // a socket blocking, so any value goes.
        setsockopt(s, l, name, null_value || value.empty() ? nullptr : value.data(),
                   null_value ? in_.ConsumeIntegral<int>() : length);
    }

    void get_option()
    {
        const SOCKET s = socket_to_use();
        const int l = level();
        const int name = option_name();
        std::vector<char> value(in_.ConsumeIntegralInRange<std::size_t>(0, kMaxOption));
        int length = length_within(value.size());
        switch (in_.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
            getsockopt(s, l, name, nullptr, &length);
            break;
        case 1:
            getsockopt(s, l, name, value.data(), nullptr);
            break;
        default:
            getsockopt(s, l, name, value.empty() ? nullptr : value.data(), &length);
        }
    }

    // A socket address in storage: a well-formed one of either family most
    // of the time, then any of its bytes changed; the length any within it.
    int address(SOCKADDR_STORAGE& storage)
    {
        std::memset(&storage, 0, sizeof(storage));
        switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
        case 0: {
            auto& a = reinterpret_cast<sockaddr_in&>(storage);
            a.sin_family = AF_INET;
            a.sin_port = htons(port());
            inet_pton(AF_INET, pick(in_, kIpv4), &a.sin_addr);
            break;
        }
        case 1: {
            auto& a = reinterpret_cast<sockaddr_in6&>(storage);
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port());
            inet_pton(AF_INET6, pick(in_, kIpv6), &a.sin6_addr);
            a.sin6_scope_id = in_.ConsumeIntegralInRange<ULONG>(0, 2);
            break;
        }
        default: {
            const std::vector<uint8_t> bytes = in_.ConsumeBytes<uint8_t>(sizeof(storage));
            copy_bytes(&storage, bytes);
        }
        }
        for (int change = in_.ConsumeIntegralInRange<int>(0, 2); change > 0; --change)
            reinterpret_cast<uint8_t*>(&storage)[in_.ConsumeIntegralInRange<std::size_t>(0, sizeof(storage) - 1)] =
                in_.ConsumeIntegral<uint8_t>();
        switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return sizeof(sockaddr_in);
        case 1:
            return sizeof(sockaddr_in6);
        default:
            return length_within(sizeof(storage));
        }
    }

    uint16_t port() { return in_.ConsumeBool() ? pick(in_, kPorts) : in_.ConsumeIntegral<uint16_t>(); }

    void bind_or_connect(bool bind_it)
    {
        const SOCKET s = socket_to_use();
        SOCKADDR_STORAGE storage;
        const int length = address(storage);
        const sockaddr* name =
            in_.ConsumeIntegralInRange<int>(0, 15) == 0 ? nullptr : reinterpret_cast<sockaddr*>(&storage);
        if (bind_it) {
            bind(s, name, length);
            return;
        }
        const int r = connect(s, name, length);
        if (const auto side = stream_of(s); side && (r == 0 || WSAGetLastError() == WSAEWOULDBLOCK))
            side->new_connection();
    }

    // (The input is read in a fixed order: arguments are consumed one
    // statement at a time, never inside one call's argument list.)
    void listen_on()
    {
        const SOCKET s = socket_to_use();
        listen(s, in_.ConsumeIntegral<int>());
    }

    void shut_down()
    {
        const SOCKET s = socket_to_use();
        shutdown(s, in_.ConsumeIntegralInRange<int>(-1, 3));
    }

    void accept_now()
    {
        const SOCKET s = socket_to_use();
        SOCKADDR_STORAGE storage{};
        int length = length_within(sizeof(storage));
        const bool with_name = in_.ConsumeBool();
        const SOCKET accepted =
            accept(s, with_name ? reinterpret_cast<sockaddr*>(&storage) : nullptr, with_name ? &length : nullptr);
        if (accepted != INVALID_SOCKET) closesocket(accepted);
    }

    Pending& pending(const char* call, SOCKET through)
    {
        pending_.push_back(std::make_unique<Pending>());
        Pending& p = *pending_.back();
        p.call = call;
        p.through = through;
        p.serial = ++serials_;
        p.event = WSACreateEvent();
        if (p.event == WSA_INVALID_EVENT) {
            std::fprintf(stderr, "fuzz_api: WSACreateEvent failed (%d)\n", WSAGetLastError());
            std::abort();
        }
        p.overlapped.hEvent = p.event;
        return p;
    }

    // The last call made with `p` either left it pending (kept until it
    // completes) or did not: its event goes now, and the rest at the end
    // of the program, so that no later call's OVERLAPPED has its address
    // and a port packet naming it is known for what it is.
    void keep_if_pending(bool started_pending, bool succeeded_at_once = false)
    {
        if (started_pending) return;
        Pending& p = *pending_.back();
        WSACloseEvent(p.event);
        p.event = nullptr;
        p.succeeded_at_once = succeeded_at_once;
        const auto mode = skips_port_.find(p.through);
        p.no_port_packet = !succeeded_at_once || (mode != skips_port_.end() && mode->second);
        settled_.push_back(std::move(pending_.back()));
        pending_.pop_back();
    }

    // A call with a completion routine is kept when it went pending and
    // also when it succeeded at once: the pages say its routine is then
    // "scheduled to be called when the calling thread is in an alertable
    // state". After any other failure the routine must never run.
    void keep_if_routine_or_pending(const Pending& p, int result)
    {
        keep_if_pending(went_pending(result) || (p.routine && result == 0), result == 0);
    }

    // A packet the port handed out: none may name a call that settled where
    // the pages allow no packet (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: "the
    // I/O manager does not queue a completion entry to the port" when the
    // call succeeds at once; and a call that fails at once has no
    // completion indication at all).
    void expect_packet_allowed(const OVERLAPPED_ENTRY& e) const
    {
        if (e.lpOverlapped == nullptr) return;
        for (const auto& p : settled_) {
            if (&p->overlapped != e.lpOverlapped || !p->no_port_packet) continue;
            std::fprintf(stderr, "fuzz_api: a port packet for an overlapped %s that %s\n", p->call,
                         p->succeeded_at_once ? "succeeded at once on a socket skipping the port on success"
                                              : "failed at once (or was made without its OVERLAPPED)");
            std::abort();
        }
    }

    static bool went_pending(int result) { return result == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING; }

    // A completion routine for one call in four (on an engine, it runs in
    // that engine's next alertable wait, which finish() makes). With a
    // routine hEvent is the caller's to use: now and then any value, which
    // the API must leave alone.
    LPWSAOVERLAPPED_COMPLETION_ROUTINE routine_for(Pending& p)
    {
        if (in_.ConsumeIntegralInRange<int>(0, 3) != 0) return nullptr;
        p.routine = true;
        if (in_.ConsumeIntegralInRange<int>(0, 3) == 0)
            p.overlapped.hEvent = reinterpret_cast<HANDLE>(in_.ConsumeIntegral<uintptr_t>());
        return &routine_ran;
    }

    static void CALLBACK routine_ran(DWORD, DWORD bytes, LPWSAOVERLAPPED overlapped, DWORD)
    {
        for (auto& p : running_->pending_)
            if (&p->overlapped == overlapped && p->routine) {
                ++p->routine_runs;
                running_->expect_received(*p, bytes);
                return;
            }
        std::fprintf(stderr, "fuzz_api: a completion routine ran for no call that is waiting for one\n");
        std::abort();
    }

    void accept_overlapped()
    {
        const SOCKET listener = socket_to_use();
        const SOCKET into = socket_to_use();
        Pending& p = pending("AcceptEx", listener);
        const DWORD receive = in_.ConsumeIntegralInRange<DWORD>(0, 64);
        const DWORD local = in_.ConsumeIntegralInRange<DWORD>(0, 64);
        const DWORD remote = in_.ConsumeIntegralInRange<DWORD>(0, 64);
        p.data.emplace_back(receive + local + remote);
        const BOOL done =
            AcceptEx(listener, into, p.data.back().data(), receive, local, remote, &p.bytes, &p.overlapped);
        const bool started = done || WSAGetLastError() == WSA_IO_PENDING;
        // The connection accepted into `into` begins its stream, and the
        // first bytes received arrive in the buffer's first `receive`.
        if (const auto side = stream_of(into); side && started) {
            side->new_connection();
            p.buffers.push_back(WSABUF{receive, p.data.back().data()});
            p.stream = side;
            take(*side, p.serial);
            if (done) expect_received(p, p.bytes);
        }
        keep_if_pending(started && !done, done == TRUE);
    }

    // Zero to three buffers of up to 2 kB, now and then one of 64 kB; to
    // send, the pattern runs on from one buffer into the next.
    void buffers(Pending& p, bool fill)
    {
        const unsigned count = in_.ConsumeIntegralInRange<unsigned>(0, 3);
        const uint8_t seed = fill ? in_.ConsumeIntegral<uint8_t>() : 0;
        std::size_t at = 0;
        for (unsigned i = 0; i < count; ++i) {
            const std::size_t size =
                in_.ConsumeIntegralInRange<int>(0, 31) == 0 ? 65536 : in_.ConsumeIntegralInRange<std::size_t>(0, 2048);
            p.data.emplace_back(size);
            if (fill)
                for (char& c : p.data.back())
                    c = static_cast<char>(pattern_byte(seed, at++));
        }
        for (auto& d : p.data)
            p.buffers.push_back(WSABUF{static_cast<ULONG>(d.size()), d.data()});
    }

    static int socket_type(SOCKET s)
    {
        int type = 0;
        int length = sizeof(type);
        return getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &length) == 0 ? type : 0;
    }

    static bool is_datagram_socket(SOCKET s) { return socket_type(s) == SOCK_DGRAM; }

    // The first `bytes` bytes of `buffers` in order: one datagram, whole or
    // cut short, so patterned from its first byte.
    static void expect_patterned(const WSABUF* buffers, std::size_t count, std::size_t bytes, const char* call)
    {
        std::size_t at = 0;
        uint8_t seed = 0;
        for (std::size_t b = 0; b < count && at < bytes; ++b)
            for (std::size_t i = 0; i < buffers[b].len && at < bytes; ++i, ++at) {
                const auto got = static_cast<uint8_t>(buffers[b].buf[i]);
                if (at == 0) seed = got;
                if (got != pattern_byte(seed, at)) {
                    std::fprintf(stderr, "fuzz_api: %s: byte %zu of %zu received is %u, the datagram's is %u\n", call,
                                 at, bytes, got, pattern_byte(seed, at));
                    std::abort();
                }
            }
        if (at != bytes) {
            std::fprintf(stderr, "fuzz_api: %s: %zu bytes received into buffers of %zu\n", call, bytes, at);
            std::abort();
        }
    }

    // A receive's result, as soon as the program learns it (at once, in its
    // routine, or when finish() waits for it; more than once is harmless).
    static void expect_received(const Pending& p, DWORD bytes)
    {
        if (p.datagram) expect_patterned(p.buffers.data(), p.buffers.size(), bytes, p.call);
        if (p.stream) resolve(*p.stream, p.serial, gathered(p.buffers, bytes));
    }

    // The first `bytes` bytes of `buffers`, in order.
    static std::vector<char> gathered(const std::vector<WSABUF>& buffers, std::size_t bytes)
    {
        std::vector<char> out;
        for (const WSABUF& b : buffers) {
            const std::size_t n = std::min<std::size_t>(b.len, bytes - out.size());
            out.insert(out.end(), b.buf, b.buf + n);
            if (out.size() == bytes) break;
        }
        return out;
    }

    // The stream side of `s`, if it is a stream socket the program opened.
    std::shared_ptr<StreamSide> stream_of(SOCKET s) const
    {
        const auto found = streams_.find(s);
        return found == streams_.end() ? nullptr : found->second;
    }

    // A receive that takes bytes from `side`, posted now; `serial` 0 for
    // one that already has them (resolve at once).
    static void take(StreamSide& side, uint64_t serial) { side.takers.push_back({serial, false, {}}); }

    static void resolve(StreamSide& side, uint64_t serial, std::vector<char> bytes)
    {
        for (auto& t : side.takers)
            if (t.serial == serial && !t.resolved) {
                t.resolved = true;
                t.bytes = std::move(bytes);
                break;
            }
        while (!side.takers.empty() && side.takers.front().resolved) {
            if (side.checked) expect_stream(side.received, side.takers.front().bytes, "a receive");
            side.received += side.takers.front().bytes.size();
            side.takers.pop_front();
        }
    }

    static void expect_stream(uint64_t from, const std::vector<char>& bytes, const char* what)
    {
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if (static_cast<uint8_t>(bytes[i]) != stream_byte(from + i)) {
                std::fprintf(stderr,
                             "fuzz_api: %s on a stream got %u at stream offset %llu (byte %zu of %zu), sent was %u\n",
                             what, static_cast<uint8_t>(bytes[i]), static_cast<unsigned long long>(from + i), i,
                             bytes.size(), stream_byte(from + i));
                std::abort();
            }
    }

    // Fills `p`'s buffers with a stream's bytes from offset `at` on.
    static void fill_stream(Pending& p, uint64_t at)
    {
        for (auto& d : p.data)
            for (char& c : d)
                c = static_cast<char>(stream_byte(at++));
    }

    static uint64_t total_of(const Pending& p)
    {
        uint64_t total = 0;
        for (const WSABUF& b : p.buffers)
            total += b.len;
        return total;
    }

    DWORD flags()
    {
        const int f = pick(in_, kFlags);
        return static_cast<DWORD>(f == -1 ? in_.ConsumeIntegral<int>() : f);
    }

    void send_to()
    {
        const SOCKET s = socket_to_use();
        const std::shared_ptr<StreamSide> side = stream_of(s);
        Pending& p = pending("WSASendTo", s);
        buffers(p, true);
        if (side) fill_stream(p, side->sent);
        const int length = address(p.name);
        const bool with_name = in_.ConsumeBool();
        const DWORD send_flags = flags();
        const LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = routine_for(p);
        if (in_.ConsumeBool()) {
            char scratch[64];
            const uint8_t seed = in_.ConsumeIntegral<uint8_t>();
            for (std::size_t i = 0; i < sizeof(scratch); ++i)
                scratch[i] = static_cast<char>(side ? stream_byte(side->sent + i) : pattern_byte(seed, i));
            const int sent = sendto(s, scratch, in_.ConsumeIntegralInRange<int>(-1, 64), static_cast<int>(send_flags),
                                    with_name ? reinterpret_cast<sockaddr*>(&p.name) : nullptr, length);
            if (side && sent > 0) side->sent += static_cast<uint64_t>(sent); // what it took
            keep_if_pending(false);
            return;
        }
        const int r = WSASendTo(s, p.buffers.empty() ? nullptr : p.buffers.data(), static_cast<DWORD>(p.buffers.size()),
                                &p.bytes, send_flags, with_name ? reinterpret_cast<sockaddr*>(&p.name) : nullptr,
                                length, &p.overlapped, routine);
        // An overlapped send on a stream takes all its bytes or fails, and
        // once one fails every later one does: its bytes are the stream's
        // next whether it completed or waits.
        if (side && (r == 0 || went_pending(r))) side->sent += total_of(p);
        keep_if_routine_or_pending(p, r);
    }

    // Control data of records whose levels, types and lengths are mostly
    // the ones WSASendMsg knows, with any data; a length may overrun.
    void control(Pending& p)
    {
        p.control.assign(in_.ConsumeIntegralInRange<std::size_t>(0, kMaxControl), 0);
        std::size_t at = 0;
        while (at + sizeof(WSACMSGHDR) <= p.control.size() && in_.remaining_bytes() > 0) {
            WSACMSGHDR header{};
            const std::size_t data = in_.ConsumeIntegralInRange<std::size_t>(0, 24);
            header.cmsg_len =
                in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? in_.ConsumeIntegral<SIZE_T>() : WSA_CMSG_LEN(data);
            header.cmsg_level = in_.ConsumeBool() ? IPPROTO_IP : level();
            constexpr int types[] = {IP_PKTINFO, IPV6_PKTINFO, IP_ECN, IPV6_ECN, -1};
            header.cmsg_type = pick(in_, types);
            if (header.cmsg_type == -1) header.cmsg_type = option_name();
            std::memcpy(p.control.data() + at, &header, sizeof(header));
            const std::size_t data_at = at + WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR));
            if (data_at < p.control.size()) {
                const std::vector<char> bytes = in_.ConsumeBytes<char>(std::min(data, p.control.size() - data_at));
                copy_bytes(p.control.data() + data_at, bytes);
            }
            at += WSA_CMSG_SPACE(data);
        }
    }

    void message(Pending& p, bool sending)
    {
        buffers(p, sending);
        p.name_length = address(p.name);
        p.message.name = in_.ConsumeBool() ? reinterpret_cast<sockaddr*>(&p.name) : nullptr;
        p.message.namelen = p.name_length;
        p.message.lpBuffers = p.buffers.empty() ? nullptr : p.buffers.data();
        p.message.dwBufferCount = static_cast<ULONG>(p.buffers.size());
        if (sending) {
            control(p);
        } else {
            p.control.assign(in_.ConsumeIntegralInRange<std::size_t>(0, kMaxControl), 0);
        }
        p.message.Control.buf = p.control.empty() ? nullptr : p.control.data();
        p.message.Control.len = static_cast<ULONG>(in_.ConsumeIntegralInRange<std::size_t>(0, p.control.size()));
        p.message.dwFlags = flags();
    }

    void send_message()
    {
        const SOCKET s = socket_to_use();
        Pending& p = pending("WSASendMsg", s);
        message(p, true);
        const bool overlapped = in_.ConsumeBool();
        const bool null_message = in_.ConsumeIntegralInRange<int>(0, 15) == 0;
        const DWORD send_flags = flags();
        // Without an OVERLAPPED the routine is ignored: if it ran, routine_ran
        // would find no call waiting for it.
        const LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = routine_for(p);
        p.routine = p.routine && overlapped;
        const int r = WSASendMsg(s, null_message ? nullptr : &p.message, send_flags, &p.bytes,
                                 overlapped ? &p.overlapped : nullptr, routine);
        keep_if_pending(overlapped && (went_pending(r) || (p.routine && r == 0)), overlapped && r == 0);
    }

    void receive_overlapped()
    {
        const SOCKET s = socket_to_use();
        Pending& p = pending("WSARecvFrom", s);
        p.datagram = is_datagram_socket(s);
        buffers(p, false);
        p.name_length = length_within(sizeof(p.name));
        p.flags = flags();
        const bool with_name = in_.ConsumeBool();
        const bool with_length = in_.ConsumeIntegralInRange<int>(0, 7) != 0;
        const bool stream_call = in_.ConsumeIntegralInRange<int>(0, 3) == 0;
        const LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = routine_for(p);
        if (stream_call) p.call = "WSARecv";
        const std::shared_ptr<StreamSide> side = stream_of(s);
        const DWORD posted_flags = p.flags;
        const int r =
            stream_call
                ? WSARecv(s, p.buffers.empty() ? nullptr : p.buffers.data(), static_cast<DWORD>(p.buffers.size()),
                          &p.bytes, &p.flags, &p.overlapped, routine)
                : WSARecvFrom(s, p.buffers.empty() ? nullptr : p.buffers.data(), static_cast<DWORD>(p.buffers.size()),
                              &p.bytes, &p.flags, with_name ? reinterpret_cast<sockaddr*>(&p.name) : nullptr,
                              with_length ? &p.name_length : nullptr, &p.overlapped, routine);
        started_taking(p, side, (posted_flags & MSG_PEEK) == 0, r);
        if (r == 0) expect_received(p, p.bytes);
        keep_if_routine_or_pending(p, r);
    }

    // A receive on a stream socket that went pending or succeeded at once
    // (and does not peek) takes the stream's next bytes.
    static void started_taking(Pending& p, const std::shared_ptr<StreamSide>& side, bool takes, int result)
    {
        if (!side || !takes || (result != 0 && !went_pending(result))) return;
        p.stream = side;
        take(*side, p.serial);
    }

    void receive_message()
    {
        const SOCKET s = socket_to_use();
        if (recv_message_ == nullptr) fetch_recv_message(s);
        if (recv_message_ == nullptr) return;
        Pending& p = pending("WSARecvMsg", s);
        p.datagram = is_datagram_socket(s);
        message(p, false);
        const bool null_message = in_.ConsumeIntegralInRange<int>(0, 15) == 0;
        const LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = routine_for(p);
        const DWORD posted_flags = p.message.dwFlags;
        const int r = recv_message_(s, null_message ? nullptr : &p.message, &p.bytes, &p.overlapped, routine);
        started_taking(p, stream_of(s), (posted_flags & MSG_PEEK) == 0, r);
        if (r == 0) expect_received(p, p.bytes);
        keep_if_routine_or_pending(p, r);
    }

    void fetch_recv_message(SOCKET s)
    {
        GUID id = WSAID_WSARECVMSG;
        DWORD bytes = 0;
        LPFN_WSARECVMSG function = nullptr;
        if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof(id), &function, sizeof(function), &bytes,
                     nullptr, nullptr) == 0)
            recv_message_ = function;
    }

    void receive_now()
    {
        const SOCKET s = socket_to_use();
        std::vector<char> buffer(in_.ConsumeIntegralInRange<std::size_t>(0, 2048));
        const int length = length_within(buffer.size());
        const int receive_flags = static_cast<int>(flags());
        int received = 0;
        if (in_.ConsumeBool()) {
            received = recv(s, buffer.empty() ? nullptr : buffer.data(), length, receive_flags);
        } else {
            SOCKADDR_STORAGE from{};
            int from_length = length_within(sizeof(from));
            const bool with_name = in_.ConsumeBool();
            received =
                recvfrom(s, buffer.empty() ? nullptr : buffer.data(), length, receive_flags,
                         with_name ? reinterpret_cast<sockaddr*>(&from) : nullptr, with_name ? &from_length : nullptr);
        }
        if (received > 0 && is_datagram_socket(s)) {
            const WSABUF into{static_cast<ULONG>(std::max(length, 0)), buffer.data()};
            expect_patterned(&into, 1, static_cast<std::size_t>(received), "recv");
        }
        const std::shared_ptr<StreamSide> side = stream_of(s);
        if (received <= 0 || !side) return;
        std::vector<char> got(buffer.begin(), buffer.begin() + received);
        if ((receive_flags & MSG_PEEK) != 0) {
            // What comes next, unless receives still waiting take it first.
            if (side->takers.empty() && side->checked) expect_stream(side->received, got, "a peek");
            return;
        }
        take(*side, 0);
        resolve(*side, 0, std::move(got));
    }

    void control_code()
    {
        const SOCKET s = socket_to_use();
        constexpr DWORD codes[] = {static_cast<DWORD>(FIONREAD), static_cast<DWORD>(FIONBIO), SIO_KEEPALIVE_VALS,
                                   SIO_GET_EXTENSION_FUNCTION_POINTER, 0};
        DWORD code = pick(in_, codes);
        if (code == 0) code = in_.ConsumeIntegral<DWORD>();
        std::vector<char> input = in_.ConsumeBytes<char>(in_.ConsumeIntegralInRange<std::size_t>(0, 32));
        // The one way to make a socket blocking: its value is never zero here.
        if (code == static_cast<DWORD>(FIONBIO)) std::fill(input.begin(), input.end(), 1);
        std::vector<char> output(in_.ConsumeIntegralInRange<std::size_t>(0, 32));
        DWORD returned = 0;
        const bool with_returned = in_.ConsumeIntegralInRange<int>(0, 7) != 0;
        if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
            u_long argument = 1;
            ioctlsocket(s, code == static_cast<DWORD>(FIONBIO) ? FIONBIO : FIONREAD, &argument);
            return;
        }
        const auto input_length = in_.ConsumeIntegralInRange<DWORD>(0, input.size());
        const auto output_length = in_.ConsumeIntegralInRange<DWORD>(0, output.size());
        WSAIoctl(s, code, input.empty() ? nullptr : input.data(), input_length,
                 output.empty() ? nullptr : output.data(), output_length, with_returned ? &returned : nullptr, nullptr,
                 nullptr);
    }

    void names()
    {
        const SOCKET s = socket_to_use();
        SOCKADDR_STORAGE storage{};
        int length = length_within(sizeof(storage));
        sockaddr* name = in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? nullptr : reinterpret_cast<sockaddr*>(&storage);
        int* length_out = in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? nullptr : &length;
        if (in_.ConsumeBool())
            getsockname(s, name, length_out);
        else
            getpeername(s, name, length_out);
    }

    void text()
    {
        constexpr int families[] = {AF_INET, AF_INET6, -1};
        int family = pick(in_, families);
        if (family == -1) family = in_.ConsumeIntegral<int>();
        const std::string text = in_.ConsumeRandomLengthString(64);
        std::array<uint8_t, 16> binary{};
        switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
        case 0:
            inet_pton(family, text.c_str(), binary.data());
            break;
        case 1:
            inet_addr(text.c_str());
            break;
        default: {
            const std::vector<uint8_t> bytes = in_.ConsumeBytes<uint8_t>(binary.size());
            copy_bytes(binary.data(), bytes);
            std::vector<char> out(in_.ConsumeIntegralInRange<std::size_t>(0, 64));
            inet_ntop(family, binary.data(), out.empty() ? nullptr : out.data(), out.size());
        }
        }
    }

    void peer_sends()
    {
        const uint16_t source = in_.ConsumeBool() ? 40000 : in_.ConsumeIntegral<uint16_t>();
        const uint16_t destination = port();
        std::vector<uint8_t> payload(in_.ConsumeIntegralInRange<std::size_t>(0, 1472));
        const uint8_t seed = in_.ConsumeIntegral<uint8_t>();
        for (std::size_t i = 0; i < payload.size(); ++i)
            payload[i] = pattern_byte(seed, i);
        const bool bad_checksum = in_.ConsumeIntegralInRange<int>(0, 7) == 0;
        // From the peer to us most of the time; else between addresses of
        // either family: our own, a group, a broadcast, from a link-local,
        // mapped, loopback, our own or other source.
        // On the queue the pattern's seed names, where the port has more
        // than one (FUZZ_API_QUEUES).
        const unsigned queue = seed;
        if (in_.ConsumeBool()) {
            peer::send_udp(source, destination, payload, bad_checksum, queue);
            return;
        }
        constexpr const char* kFrom4[] = {peer::kRingPeerIpv4, "198.18.0.7",       "127.0.0.1",
                                          "0.0.0.0",           peer::kRingOurIpv4, "198.18.0.255"};
        constexpr const char* kTo4[] = {peer::kRingOurIpv4, "224.1.2.3", "198.18.0.255", "255.255.255.255",
                                        "198.18.0.9"};
        // fe80::ff:fe00:2: ours, from the MAC (RFC 4291's EUI-64).
        constexpr const char* kFrom6[] = {peer::kRingPeerIpv6, "fe80::1",        "::ffff:198.18.0.1", "::1",
                                          peer::kRingOurIpv6,  "fe80::ff:fe00:2"};
        constexpr const char* kTo6[] = {peer::kRingOurIpv6, "ff02::1", "ff0e::1:2:3", "fe80::ff:fe00:2", "2001:2::9"};
        const bool v6 = in_.ConsumeBool();
        const char* from = v6 ? pick(in_, kFrom6) : pick(in_, kFrom4);
        const char* to = v6 ? pick(in_, kTo6) : pick(in_, kTo4);
        peer::send_udp_between(from, to, source, destination, payload, bad_checksum, queue);
    }

    void port_association()
    {
        const SOCKET s = socket_to_use();
        CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port_, in_.ConsumeIntegral<ULONG_PTR>(), 0);
        if (in_.ConsumeBool()) {
            const UCHAR modes = in_.ConsumeIntegralInRange<UCHAR>(0, 3);
            if (SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(s), modes))
                skips_port_[s] = (modes & FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) != 0;
        }
    }

    void reap_port()
    {
        if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
            const auto bytes = in_.ConsumeIntegral<DWORD>();
            PostQueuedCompletionStatus(port_, bytes, in_.ConsumeIntegral<ULONG_PTR>(), nullptr);
        }
        std::array<OVERLAPPED_ENTRY, 8> entries{};
        ULONG removed = 0;
        GetQueuedCompletionStatusEx(port_, entries.data(), in_.ConsumeIntegralInRange<ULONG>(0, entries.size()),
                                    &removed, 0, FALSE);
        for (ULONG i = 0; i < removed; ++i)
            expect_packet_allowed(entries[i]);
    }

    // The port closed under the sockets associated with it and a new one
    // made: their later completions go to a port nobody can reach.
    void replace_port()
    {
        CloseHandle(port_);
        start_port();
    }

    // Any pending call's result asked through any socket, without waiting
    // (a wait could outlast the program).
    void overlapped_result()
    {
        if (pending_.empty()) return;
        Pending& p = *pending_[in_.ConsumeIntegralInRange<std::size_t>(0, pending_.size() - 1)];
        const SOCKET s = socket_to_use();
        DWORD bytes = 0;
        DWORD result_flags = 0;
        const bool with_flags = in_.ConsumeIntegralInRange<int>(0, 7) != 0;
        WSAGetOverlappedResult(s, &p.overlapped, &bytes, FALSE, with_flags ? &result_flags : nullptr);
    }

    // ConnectEx with its first buffer as the data to send: to the peer,
    // which never answers, or to one of our own listeners over lwIP's
    // loopback, a connection made and carried for real.
    void connect_overlapped()
    {
        const SOCKET s = socket_to_use();
        if (connect_ex_ == nullptr) {
            GUID id = WSAID_CONNECTEX;
            DWORD bytes = 0;
            LPFN_CONNECTEX function = nullptr;
            if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof(id), &function, sizeof(function), &bytes,
                         nullptr, nullptr) != 0)
                return;
            connect_ex_ = function;
        }
        Pending& p = pending("ConnectEx", s);
        buffers(p, true);
        const std::shared_ptr<StreamSide> side = stream_of(s);
        if (side) fill_stream(p, 0); // a connection begun carries these bytes first
        const int length = address(p.name);
        const bool with_data = !p.data.empty();
        const BOOL done =
            connect_ex_(s, reinterpret_cast<sockaddr*>(&p.name), length, with_data ? p.data[0].data() : nullptr,
                        with_data ? static_cast<DWORD>(p.data[0].size()) : 0, &p.bytes, &p.overlapped);
        const bool started = done || WSAGetLastError() == WSA_IO_PENDING;
        if (side && started) {
            side->new_connection();
            side->sent = with_data ? p.data[0].size() : 0;
        }
        keep_if_pending(started && !done, done == TRUE);
    }

    // An alertable wait that returns at once: the routines of the calls
    // that completed run in it.
    void alertable_wait()
    {
        if (pending_.empty() || in_.ConsumeBool()) {
            SleepEx(0, TRUE);
            return;
        }
        HANDLE event = pending_[in_.ConsumeIntegralInRange<std::size_t>(0, pending_.size() - 1)]->event;
        WSAWaitForMultipleEvents(1, &event, FALSE, 0, TRUE);
    }

    // A call on an engine's lcore (`how` it got there, for the trace).
    void run_engine_call(int call, const char* how)
    {
        if (trace_) std::fprintf(stderr, "fuzz_api:   %s: call %d\n", how, call);
        run_call(call);
    }

    // The next call made on an engine's own lcore, as a run-to-completion
    // program makes it (ringsock_run_on_engine), now and then on an engine
    // that is not there. Nested, on the same engine it runs in place, and
    // on another it must fail with WSAEWOULDBLOCK (ringsock.h).
    void on_engine()
    {
        const int engine = in_.ConsumeIntegralInRange<int>(0, engines_);
        const int call = in_.ConsumeIntegralInRange<int>(0, kLastCall);
        if (!engine_may_make(call)) return;
        struct Made {
            Program* program;
            int call;
            bool ran;
        } made{this, call, false};
        const int caller = on_engine_;
        on_engine_ = engine;
        const int result = ringsock_run_on_engine(
            engine,
            [](void* context) {
                auto& m = *static_cast<Made*>(context);
                m.ran = true;
                m.program->run_engine_call(m.call, "on the engine");
            },
            &made);
        on_engine_ = caller;
        const int expected = engine >= engines_                        ? WSAEINVAL
                             : caller != kNoEngine && caller != engine ? WSAEWOULDBLOCK
                                                                       : 0;
        if (result != expected || made.ran != (expected == 0)) {
            std::fprintf(stderr, "fuzz_api: ringsock_run_on_engine(%d of %d) on engine %d returned %d, %s\n", engine,
                         engines_, caller, result, made.ran ? "ran" : "did not run");
            std::abort();
        }
    }

    // The next few calls made by a poller on an engine's own lcore
    // (ringsock_poll_on_engine), one per poll, so that the engine receives,
    // delivers and completes between them as a run-to-completion loop
    // sees it; now and then on an engine that is not there. From an engine
    // it must fail with WSAEWOULDBLOCK (ringsock.h), having polled nothing.
    void poller()
    {
        const int engine = in_.ConsumeIntegralInRange<int>(0, engines_);
        struct Polling {
            Program* program;
            int calls_left;
            int polls = 0;
        } polling{this, in_.ConsumeIntegralInRange<int>(1, 8)};
        const int caller = on_engine_;
        on_engine_ = engine;
        const int result = ringsock_poll_on_engine(
            engine,
            [](void* context) {
                auto& p = *static_cast<Polling*>(context);
                ++p.polls;
                Program& program = *p.program;
                const int call = program.in_.ConsumeIntegralInRange<int>(0, kLastCall);
                if (engine_may_make(call)) program.run_engine_call(call, "by the poller");
                return --p.calls_left == 0 ? 1 : 0;
            },
            &polling);
        on_engine_ = caller;
        const int expected = engine >= engines_ ? WSAEINVAL : caller != kNoEngine ? WSAEWOULDBLOCK : 0;
        if (result != expected || (polling.polls > 0) != (expected == 0) ||
            (expected == 0 && polling.calls_left != 0)) {
            std::fprintf(stderr,
                         "fuzz_api: ringsock_poll_on_engine(%d of %d) on engine %d returned %d after %d polls\n",
                         engine, engines_, caller, result, polling.polls);
            std::abort();
        }
    }

    // WSACleanup and WSAStartup in either order: the last cleanup closes
    // every socket under the calls pending on them, which must complete as
    // after closesocket; a startup before it only counts. On an engine the
    // cleanup must fail (WSAEWOULDBLOCK, ringsock.h) and change nothing.
    void restart()
    {
        if (in_.ConsumeBool() && on_engine_ == kNoEngine) {
            WSADATA data;
            if (WSAStartup(MAKEWORD(2, 2), &data) != 0 || WSACleanup() != 0) {
                std::fprintf(stderr, "fuzz_api: a nested WSAStartup/WSACleanup failed (%d)\n", WSAGetLastError());
                std::abort();
            }
            return;
        }
        if (WSACleanup() != 0) {
            if (on_engine_ != kNoEngine && WSAGetLastError() == WSAEWOULDBLOCK) return;
            std::fprintf(stderr, "fuzz_api: WSACleanup failed (%d)\n", WSAGetLastError());
            std::abort();
        }
        if (on_engine_ != kNoEngine) {
            std::fprintf(stderr, "fuzz_api: WSACleanup succeeded on an engine\n");
            std::abort();
        }
        for (SOCKET& s : slots_)
            if (s != INVALID_SOCKET) {
                closed_ = s;
                s = INVALID_SOCKET;
            }
        WSADATA data;
        if (WSAStartup(MAKEWORD(2, 2), &data) != 0) {
            std::fprintf(stderr, "fuzz_api: WSAStartup after WSACleanup failed (%d): %s\n", WSAGetLastError(),
                         ringsock_startup_error());
            std::abort();
        }
    }

    // An alertable wait on this thread and on every engine: the routines
    // of calls made there run in it.
    void run_routines(DWORD milliseconds)
    {
        SleepEx(milliseconds, TRUE);
        for (int engine = 0; engine < engines_; ++engine)
            ringsock_run_on_engine(
                engine, [](void*) { SleepEx(0, TRUE); }, nullptr);
    }

    bool routines_waiting() const
    {
        return std::any_of(pending_.begin(), pending_.end(),
                           [](const auto& p) { return p->routine && p->routine_runs == 0; });
    }

    // Every socket closed, then every pending call must complete (its
    // routine run exactly once) and every datagram the peer sent must be
    // given back.
    void finish()
    {
        for (SOCKET& s : slots_)
            if (s != INVALID_SOCKET) close_socket(s, true);
        for (auto& p : pending_) {
            if (p->routine) continue; // its hEvent is the caller's, not signalled
            const DWORD waited = WSAWaitForMultipleEvents(1, &p->event, TRUE, kCompletionWaitMs, FALSE);
            if (waited != WSA_WAIT_EVENT_0) {
                std::fprintf(stderr, "fuzz_api: an overlapped %s did not complete within %u ms of its socket's close\n",
                             p->call, kCompletionWaitMs);
                std::abort();
            }
            expect_received(*p, static_cast<DWORD>(p->overlapped.InternalHigh));
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCompletionWaitMs);
        while (routines_waiting()) {
            if (std::chrono::steady_clock::now() > deadline) {
                std::fprintf(stderr, "fuzz_api: a completion routine did not run within %u ms of alertable waits\n",
                             kCompletionWaitMs);
                std::abort();
            }
            run_routines(1);
        }
        const bool any_routine =
            std::any_of(pending_.begin(), pending_.end(), [](const auto& p) { return p->routine; });
        if (any_routine) run_routines(0); // none may run twice
        for (auto& p : pending_) {
            if (p->routine_runs > 1) {
                std::fprintf(stderr, "fuzz_api: the completion routine of an overlapped %s ran %d times\n", p->call,
                             p->routine_runs);
                std::abort();
            }
            WSACloseEvent(p->event);
        }
        pending_.clear();
        // An engine pushes the port packets of a poll at its end, after the
        // results the waits above saw: once each engine has run a function
        // in a later poll, every packet of this program is on the port.
        const bool packets_checked =
            std::any_of(settled_.begin(), settled_.end(), [](const auto& p) { return p->no_port_packet; });
        for (int round = 0; packets_checked && round < 2; ++round)
            for (int engine = 0; engine < engines_; ++engine)
                ringsock_run_on_engine(
                    engine, [](void*) {}, nullptr);
        std::array<OVERLAPPED_ENTRY, 64> entries{};
        ULONG removed = 0;
        while (GetQueuedCompletionStatusEx(port_, entries.data(), entries.size(), &removed, 0, FALSE) && removed > 0)
            for (ULONG i = 0; i < removed; ++i)
                expect_packet_allowed(entries[i]);
        settled_.clear();
        peer::drain_sent();
    }

    FuzzedDataProvider in_;
    std::array<SOCKET, kSlots> slots_;
    SOCKET closed_ = INVALID_SOCKET;
    const bool trace_ = std::getenv("FUZZ_API_TRACE") != nullptr;
    std::vector<std::unique_ptr<Pending>> pending_;
    std::vector<std::unique_ptr<Pending>> settled_; // calls that did not go pending, until the program ends
    std::unordered_map<SOCKET, bool> skips_port_;   // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, as last set
    uint64_t serials_ = 0;
    std::unordered_map<SOCKET, std::shared_ptr<StreamSide>> streams_; // the slots' stream sockets
    static constexpr int kNoEngine = -1;
    int on_engine_ = kNoEngine; // the engine whose lcore makes the call
    static inline int engines_ = 1;
    static inline Program* running_ = nullptr; // for routine_ran
    static inline HANDLE port_ = nullptr;
    static inline LPFN_WSARECVMSG recv_message_ = nullptr;
    static inline LPFN_CONNECTEX connect_ex_ = nullptr;
};

// Until the peer's mbufs are all back: the engine has polled every frame
// and the sockets that held datagrams are gone.
void expect_peer_pool_back()
{
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (peer::pending_received() != 0 || peer::peer_mbufs_in_use() != 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            std::fprintf(stderr, "fuzz_api: %u of the peer's mbufs still held 5 s after every socket closed\n",
                         peer::peer_mbufs_in_use());
            std::abort();
        }
        std::this_thread::sleep_for(100us);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    const char* queues = std::getenv("FUZZ_API_QUEUES");
    const unsigned queue_pairs = queues != nullptr && std::strcmp(queues, "2") == 0 ? 2 : 1;
    // Two engines share CPU 1 (EAL's --lcores), as in test_api_engines,
    // sleeping when idle so that each gets its turn: enough to cross the
    // engines' rings, not to measure them.
    const char* engines = std::getenv("FUZZ_API_ENGINES");
    const bool two = engines != nullptr && std::strcmp(engines, "2") == 0;
    std::vector<std::string> settings{"eal.lcores=0-1", "eal.memory_mb=256"};
    if (two)
        settings.insert(settings.end(), {"eal.extra_args=[\"--log-level=error\", \"--lcores=0@0,1@1,2@1\"]",
                                         "engine.idle_sleep_us=50"});
    else
        settings.push_back("eal.extra_args=[\"--log-level=error\"]");
    const std::string profile = std::string(RINGSOCK_SOURCE_DIR) + "/drivers_config/ring.toml";
    if (peer::start_on_ring_peer("fuzz_api", profile, queue_pairs, settings) != 0) std::abort();
    // What the stack sends after a program's last drain (lwIP's reports and
    // solicitations on their timers) waits in the peer's ring, in our mbufs:
    // drained before the runtime's teardown (registered earlier, so run
    // later) counts the pool, so that its "mbufs still taken" means a leak.
    std::atexit([] { peer::drain_sent(); });
    Program::start_port();
    Program::set_engines(ringsock_engine_count());
    if (two && ringsock_engine_count() != 2) {
        std::fprintf(stderr, "fuzz_api: FUZZ_API_ENGINES=2 started %d engines\n", ringsock_engine_count());
        std::abort();
    }
    // Each queue is polled: a datagram (to a port nobody binds) on every
    // queue pair leaves the peer's rings, or the port did not start them all.
    for (unsigned queue = 0; queue < queue_pairs; ++queue)
        if (!peer::send_udp(40000, 9, {1, 2, 3}, false, queue)) {
            std::fprintf(stderr, "fuzz_api: the peer could not send on queue %u\n", queue);
            std::abort();
        }
    if (!peer::wait_polled()) {
        std::fprintf(stderr, "fuzz_api: %u datagram(s) never polled off %u queue pair(s)\n", peer::pending_received(),
                     queue_pairs);
        std::abort();
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    Program(data, size).run();
    expect_peer_pool_back();
    return 0;
}
