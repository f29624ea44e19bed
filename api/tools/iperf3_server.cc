// ringsock-iperf3: an iperf3-compatible TCP receive server on the Winsock
// API, so `iperf3 -c` on any machine measures ringsock. It speaks iperf3's
// control protocol (cookie, parameter exchange, stream creation, test
// states, result exchange) on one connection and receives the test's
// streams (-P) on others, each with --depth overlapped WSARecv outstanding
// on one completion port. The client sends (iperf3's default direction);
// -R and --bidir are refused. Public header only.
#include "tool_start.hh"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

// iperf3's control states (iperf_api.h).
enum : signed char {
    kTestStart = 1,
    kTestRunning = 2,
    kTestEnd = 4,
    kParamExchange = 9,
    kCreateStreams = 10,
    kExchangeResults = 13,
    kDisplayResults = 14,
    kIperfDone = 16,
    kAccessDenied = -1,
};
constexpr int kCookieSize = 37;

std::atomic<bool> g_stop{false};

void on_signal(int)
{
    g_stop.store(true);
}

// Blocking, whole: every byte or false.
bool read_all(SOCKET s, void* data, int n)
{
    return n == 0 || recv(s, static_cast<char*>(data), n, MSG_WAITALL) == n;
}

bool write_all(SOCKET s, const void* data, int n)
{
    return send(s, static_cast<const char*>(data), n, 0) == n;
}

bool write_state(SOCKET s, signed char state)
{
    return write_all(s, &state, 1);
}

// A JSON message: 4-byte big-endian length, then the text.
bool read_json(SOCKET s, std::string& out)
{
    uint32_t be = 0;
    if (!read_all(s, &be, 4)) return false;
    const uint32_t n = ntohl(be);
    if (n > (1u << 20)) return false;
    out.resize(n);
    return read_all(s, out.data(), static_cast<int>(n));
}

bool write_json(SOCKET s, const std::string& text)
{
    const uint32_t be = htonl(static_cast<uint32_t>(text.size()));
    return write_all(s, &be, 4) && write_all(s, text.data(), static_cast<int>(text.size()));
}

// The value of a top-level JSON number or boolean, as text ("" if absent):
// iperf3's parameters are flat, so a key search is enough.
std::string json_value(const std::string& json, const std::string& key)
{
    const auto at = json.find("\"" + key + "\"");
    if (at == std::string::npos) return "";
    auto v = json.find(':', at);
    if (v == std::string::npos) return "";
    ++v;
    while (v < json.size() && json[v] == ' ')
        ++v;
    const auto end = json.find_first_of(",}", v);
    return json.substr(v, end - v);
}

// The test's streams: each keeps `depth` receives posted; bytes are counted
// until the stream ends or the test does.
class Streams {
public:
    Streams(std::vector<SOCKET> sockets, unsigned depth, unsigned buffer)
        : sockets_(std::move(sockets)), bytes_(sockets_.size())
    {
        port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
        for (std::size_t i = 0; i < sockets_.size(); ++i) {
            CreateIoCompletionPort(reinterpret_cast<HANDLE>(sockets_[i]), port_, i, 0);
            for (unsigned d = 0; d < depth; ++d) {
                receives_.push_back(std::make_unique<Receive>());
                receives_.back()->storage.resize(buffer);
                receives_.back()->stream = i;
                post(*receives_.back());
            }
        }
        worker_ = std::thread([this] { run(); });
    }
    ~Streams()
    {
        stop_.store(true);
        worker_.join();
        for (SOCKET s : sockets_)
            closesocket(s); // what is posted completes aborted
        CloseHandle(port_);
    }
    uint64_t bytes(std::size_t i) const { return bytes_[i].load(std::memory_order_relaxed); }
    std::size_t count() const { return sockets_.size(); }

private:
    struct Receive {
        WSAOVERLAPPED ov; // first: a completion's OVERLAPPED is the Receive
        std::vector<char> storage;
        std::size_t stream;
    };

    void post(Receive& r)
    {
        r.ov = WSAOVERLAPPED{};
        WSABUF b{static_cast<ULONG>(r.storage.size()), r.storage.data()};
        DWORD flags = 0;
        WSARecv(sockets_[r.stream], &b, 1, nullptr, &flags, &r.ov, nullptr);
    }

    void run()
    {
        std::vector<OVERLAPPED_ENTRY> entries(64);
        while (!stop_.load()) {
            ULONG n = 0;
            if (!GetQueuedCompletionStatusEx(port_, entries.data(), static_cast<ULONG>(entries.size()), &n, 50, FALSE))
                continue;
            for (ULONG i = 0; i < n; ++i) {
                auto& r = *reinterpret_cast<Receive*>(entries[i].lpOverlapped);
                const DWORD bytes = entries[i].dwNumberOfBytesTransferred;
                if (entries[i].Internal != 0 || bytes == 0) continue; // the stream ended
                bytes_[r.stream].fetch_add(bytes, std::memory_order_relaxed);
                post(r);
            }
        }
    }

    std::vector<SOCKET> sockets_;
    std::vector<std::atomic<uint64_t>> bytes_;
    std::vector<std::unique_ptr<Receive>> receives_;
    HANDLE port_ = nullptr;
    std::atomic<bool> stop_{false};
    std::thread worker_;
};

SOCKET accept_with_cookie(SOCKET listener, const char* cookie)
{
    SOCKET s = accept(listener, nullptr, nullptr);
    char theirs[kCookieSize];
    if (s != INVALID_SOCKET && read_all(s, theirs, kCookieSize) && std::memcmp(theirs, cookie, kCookieSize) == 0)
        return s;
    if (s != INVALID_SOCKET) closesocket(s);
    return INVALID_SOCKET;
}

// One iperf3 test on the control connection `control`. Prints its result.
bool run_test(SOCKET listener, SOCKET control, unsigned depth, unsigned buffer)
{
    char cookie[kCookieSize];
    std::string params;
    if (!read_all(control, cookie, kCookieSize) || !write_state(control, kParamExchange) || !read_json(control, params))
        return false;
    const bool tcp = json_value(params, "udp") != "true" && json_value(params, "sctp") != "true";
    if (!tcp || json_value(params, "reverse") == "true" || json_value(params, "bidirectional") == "true") {
        std::fprintf(stderr, "ringsock-iperf3: only TCP from the client is served (no -u, -R, --bidir)\n");
        write_state(control, kAccessDenied);
        return false;
    }
    const std::string parallel = json_value(params, "parallel");
    const int streams = parallel.empty() ? 1 : std::max(1, std::atoi(parallel.c_str()));
    if (!write_state(control, kCreateStreams)) return false;
    std::vector<SOCKET> sockets;
    for (int i = 0; i < streams; ++i) {
        SOCKET s = accept_with_cookie(listener, cookie);
        if (s == INVALID_SOCKET) {
            for (SOCKET o : sockets)
                closesocket(o);
            return false;
        }
        sockets.push_back(s);
    }
    auto receivers = std::make_unique<Streams>(std::move(sockets), depth, buffer);
    const auto start = std::chrono::steady_clock::now();
    if (!write_state(control, kTestStart) || !write_state(control, kTestRunning)) return false;
    signed char state = 0;
    if (!read_all(control, &state, 1) || state != kTestEnd) return false;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<uint64_t> bytes(receivers->count());
    uint64_t total = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i)
        total += bytes[i] = receivers->bytes(i);
    std::string client_results;
    if (!write_state(control, kExchangeResults) || !read_json(control, client_results)) return false;
    // Stream ids as iperf3 numbers them: 1, then 3, 4, ...
    std::string results = "{\"cpu_util_total\":0,\"cpu_util_user\":0,\"cpu_util_system\":0,"
                          "\"sender_has_retransmits\":-1,\"streams\":[";
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        char one[256];
        std::snprintf(one, sizeof(one),
                      "%s{\"id\":%zu,\"bytes\":%llu,\"retransmits\":-1,\"jitter\":0,\"errors\":0,\"packets\":0,"
                      "\"start_time\":0,\"end_time\":%.6f}",
                      i == 0 ? "" : ",", i == 0 ? 1 : i + 2, static_cast<unsigned long long>(bytes[i]), seconds);
        results += one;
    }
    results += "]}";
    if (!write_json(control, results) || !write_state(control, kDisplayResults)) return false;
    read_all(control, &state, 1); // IPERF_DONE, or the client just closes
    receivers.reset();
    std::printf("{\"streams\":%d,\"bytes\":%llu,\"seconds\":%.3f,\"mbit_s\":%.1f}\n", streams,
                static_cast<unsigned long long>(total), seconds, total * 8 / seconds / 1e6);
    std::fflush(stdout);
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-iperf3: an iperf3-compatible TCP receive server on ringsock's Winsock API"};
    std::string profile;
    std::vector<std::string> overrides;
    int port_number = 5201;
    unsigned depth = 4;
    unsigned buffer = 256 * 1024;
    unsigned tests = 0;
    app.add_option("--profile", profile, "profile (drivers_config/*.toml)")->required();
    app.add_option("--set", overrides, "section.key=value override (repeatable)");
    app.add_option("--port", port_number, "TCP port (iperf3's -p)")->check(CLI::Range(1, 65535));
    app.add_option("--depth", depth, "receives outstanding per stream")->check(CLI::Range(1, 256));
    app.add_option("--buffer", buffer, "bytes per receive")->check(CLI::Range(1, 16 << 20));
    app.add_option("--tests", tests, "tests to serve, then exit (0: until SIGINT/SIGTERM)");
    CLI11_PARSE(app, argc, argv);

    if (int rc = ringsock::tools::start_winsock("ringsock-iperf3", profile, overrides); rc != 0) return rc;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    SOCKET listener = ringsock::tools::listen_tcp("ringsock-iperf3", port_number, 16);
    if (listener == INVALID_SOCKET) return 1;
    // accept() waits; a non-blocking listener polled lets a signal end it.
    u_long on = 1;
    ioctlsocket(listener, FIONBIO, &on);
    std::printf("{\"listening\":%d}\n", port_number);
    std::fflush(stdout);
    unsigned served = 0;
    while (!g_stop.load() && (tests == 0 || served < tests)) {
        SOCKET control = accept(listener, nullptr, nullptr);
        if (control == INVALID_SOCKET) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
        }
        u_long off = 0;
        ioctlsocket(control, FIONBIO, &off);
        ioctlsocket(listener, FIONBIO, &off); // the streams' accepts wait
        if (!run_test(listener, control, depth, buffer)) std::fprintf(stderr, "ringsock-iperf3: a test failed\n");
        ioctlsocket(listener, FIONBIO, &on);
        closesocket(control);
        ++served;
    }
    closesocket(listener);
    WSACleanup();
    return 0;
}
