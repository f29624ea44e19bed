// ringsock-tcp-api-sink: a TCP discard server on the Winsock API, the
// receive end of scripts/bench/tcp-stream --api and scripts/bench/tcp-connect.
// AcceptEx (fetched through WSAIoctl as on Windows) keeps one accept
// posted; each accepted connection keeps --depth overlapped WSARecv of
// --buffer bytes outstanding and is closed when the peer's FIN reads as
// zero bytes. One completion port. Public header only.
#include "tool_start.hh"

#include <ringsock/mswsock.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

constexpr ULONG_PTR kListenerKey = 0;

struct Receive {
    WSAOVERLAPPED ov; // first: a completion's OVERLAPPED is the Receive
    std::vector<char> storage;
};

struct Connection {
    SOCKET socket = INVALID_SOCKET;
    std::vector<Receive> receives;
    unsigned outstanding = 0;
    bool closing = false;
};

struct Counts {
    uint64_t bytes = 0;
    uint64_t accepted = 0;
    uint64_t closed = 0;
    uint64_t errors = 0;
};

std::atomic<bool> g_stop{false};

void on_signal(int)
{
    g_stop.store(true);
}

bool post_receive(Connection& c, Receive& r)
{
    r.ov = WSAOVERLAPPED{};
    WSABUF b{static_cast<ULONG>(r.storage.size()), r.storage.data()};
    DWORD flags = 0;
    if (WSARecv(c.socket, &b, 1, nullptr, &flags, &r.ov, nullptr) != 0 && WSAGetLastError() != WSA_IO_PENDING)
        return false;
    ++c.outstanding;
    return true;
}

void print_counts(const char* head, const Counts& c, double seconds)
{
    std::printf("{%s\"t\":%.3f,\"bytes\":%llu,\"accepted\":%llu,\"closed\":%llu,\"errors\":%llu}\n", head, seconds,
                static_cast<unsigned long long>(c.bytes), static_cast<unsigned long long>(c.accepted),
                static_cast<unsigned long long>(c.closed), static_cast<unsigned long long>(c.errors));
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ringsock-tcp-api-sink: a TCP discard server on ringsock's Winsock API"};
    std::string profile;
    std::vector<std::string> overrides;
    int port_number = 5001;
    unsigned depth = 4;
    unsigned buffer = 256 * 1024;
    double duration = 10;
    unsigned interval_ms = 1000;
    app.add_option("--profile", profile, "profile (drivers_config/*.toml)")->required();
    app.add_option("--set", overrides, "section.key=value override (repeatable)");
    app.add_option("--port", port_number, "TCP port to listen on")->check(CLI::Range(1, 65535));
    app.add_option("--depth", depth, "receives outstanding per connection")->check(CLI::Range(1, 256));
    app.add_option("--buffer", buffer, "bytes per receive")->check(CLI::Range(1, 16 << 20));
    app.add_option("--duration", duration, "seconds to run (0: until SIGINT/SIGTERM)");
    app.add_option("--interval-ms", interval_ms, "report interval")->check(CLI::Range(10, 60000));
    CLI11_PARSE(app, argc, argv);

    if (int rc = ringsock::tools::start_winsock("ringsock-tcp-api-sink", profile, overrides); rc != 0) return rc;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    SOCKET listener = ringsock::tools::listen_tcp("ringsock-tcp-api-sink", port_number, SOMAXCONN);
    if (listener == INVALID_SOCKET) return 1;
    HANDLE port = CreateIoCompletionPort(reinterpret_cast<HANDLE>(listener), nullptr, kListenerKey, 1);
    GUID accept_ex_id = WSAID_ACCEPTEX;
    LPFN_ACCEPTEX accept_ex = nullptr;
    DWORD returned = 0;
    WSAIoctl(listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &accept_ex_id, sizeof(accept_ex_id), &accept_ex,
             sizeof(accept_ex), &returned, nullptr, nullptr);

    // The accept in flight: its socket, buffer and OVERLAPPED.
    SOCKET next = INVALID_SOCKET;
    char addresses[2 * (sizeof(sockaddr_in) + 16)];
    WSAOVERLAPPED accept_ov{};
    const auto post_accept = [&] {
        next = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        accept_ov = WSAOVERLAPPED{};
        return accept_ex(listener, next, addresses, 0, sizeof(sockaddr_in) + 16, sizeof(sockaddr_in) + 16, nullptr,
                         &accept_ov) ||
               WSAGetLastError() == WSA_IO_PENDING;
    };
    if (accept_ex == nullptr || !post_accept()) {
        std::fprintf(stderr, "ringsock-tcp-api-sink: AcceptEx failed: error %d\n", WSAGetLastError());
        return 1;
    }

    Counts counts;
    std::vector<std::unique_ptr<Connection>> connections; // by key - 1; null once closed
    const auto close_connection = [&](std::size_t index) {
        Connection& c = *connections[index];
        if (!c.closing) {
            c.closing = true;
            closesocket(c.socket); // what is still posted completes, aborted
        }
        if (c.outstanding == 0) {
            connections[index].reset();
            ++counts.closed;
        }
    };

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto next_report = start + std::chrono::milliseconds(interval_ms);
    std::vector<OVERLAPPED_ENTRY> entries(256);
    print_counts("", counts, 0);
    while (!g_stop.load()) {
        ULONG n = 0;
        if (GetQueuedCompletionStatusEx(port, entries.data(), static_cast<ULONG>(entries.size()), &n, 100, FALSE)) {
            for (ULONG i = 0; i < n; ++i) {
                const auto status = static_cast<DWORD>(entries[i].Internal);
                const DWORD bytes = entries[i].dwNumberOfBytesTransferred;
                if (entries[i].lpCompletionKey == kListenerKey) {
                    if (status != 0) {
                        ++counts.errors;
                        closesocket(next);
                    } else {
                        ++counts.accepted;
                        auto c = std::make_unique<Connection>();
                        c->socket = next;
                        c->receives.resize(depth);
                        connections.push_back(std::move(c));
                        Connection& added = *connections.back();
                        CreateIoCompletionPort(reinterpret_cast<HANDLE>(added.socket), port, connections.size(), 0);
                        for (auto& r : added.receives) {
                            r.storage.resize(buffer);
                            if (!post_receive(added, r)) ++counts.errors;
                        }
                    }
                    if (!post_accept()) ++counts.errors;
                    continue;
                }
                const std::size_t index = entries[i].lpCompletionKey - 1;
                Connection& c = *connections[index];
                --c.outstanding;
                auto& r = *reinterpret_cast<Receive*>(entries[i].lpOverlapped);
                if (status == 0 && bytes != 0 && !c.closing) {
                    counts.bytes += bytes;
                    if (post_receive(c, r)) continue;
                    ++counts.errors;
                } else if (status != 0 && status != WSA_OPERATION_ABORTED) {
                    ++counts.errors;
                }
                close_connection(index); // the peer's FIN (zero bytes), an error, or closing already
            }
        }
        const auto now = Clock::now();
        const double seconds = std::chrono::duration<double>(now - start).count();
        if (now >= next_report) {
            print_counts("", counts, seconds);
            next_report = now + std::chrono::milliseconds(interval_ms);
        }
        if (duration > 0 && seconds >= duration) break;
    }
    for (std::size_t i = 0; i < connections.size(); ++i)
        if (connections[i]) closesocket(connections[i]->socket);
    closesocket(listener);
    closesocket(next);
    CloseHandle(port);
    print_counts("\"done\":true,", counts, std::chrono::duration<double>(Clock::now() - start).count());
    WSACleanup();
    return 0;
}
