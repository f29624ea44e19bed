// ringsock-echo's TCP half (RFC 862 over TCP): listeners keep AcceptEx
// posted; each connection keeps --tcp-depth buffers going round: WSARecv,
// then WSASend of exactly the bytes received, then WSARecv again. Receives
// complete in posting order and sends leave in call order, and one thread
// reaps the completion port, so the bytes come back in the order they came.
// The peer's FIN (a receive of zero bytes) closes the connection once every
// buffer is back; an error closes it at once. A connection's memory is
// freed only when its last outstanding request has completed.
#pragma once

#include <ringsock/mswsock.h>
#include <ringsock/ws2tcpip.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "echo_op.hh"
#include "tool_start.hh"

namespace ringsock::tools {

class TcpEcho {
public:
    struct Counts {
        uint64_t connections = 0;
        uint64_t closed = 0;
        uint64_t bytes = 0;  // echoed: sends completed
        uint64_t errors = 0; // resets, failed posts
    };

    TcpEcho(HANDLE port, unsigned depth, unsigned buffer_bytes) : port_(port), depth_(depth), buffer_(buffer_bytes) {}
    TcpEcho(const TcpEcho&) = delete;
    TcpEcho& operator=(const TcpEcho&) = delete;

    // Listens on `tcp_port` with `accepts` AcceptEx posted. False (after
    // saying why) when it cannot.
    bool listen(int tcp_port, unsigned accepts)
    {
        SOCKET s = listen_tcp("ringsock-echo", tcp_port, SOMAXCONN);
        if (s == INVALID_SOCKET) return false;
        listeners_.push_back(s);
        CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port_, 0, 0);
        for (unsigned i = 0; i < accepts; ++i) {
            auto a = std::make_unique<Accept>();
            a->op.kind = EchoKind::tcp_accept;
            a->listener = s;
            if (!post_accept(*a)) {
                std::fprintf(stderr, "ringsock-echo: AcceptEx on TCP port %d failed: error %d\n", tcp_port,
                             WSAGetLastError());
                return false;
            }
            accepts_.push_back(std::move(a));
        }
        return true;
    }

    void on_completion(EchoOp* op, DWORD status, DWORD bytes)
    {
        if (op->kind == EchoKind::tcp_accept)
            accepted(*reinterpret_cast<Accept*>(op), status);
        else
            buffer_done(*reinterpret_cast<Buffer*>(op), status, bytes);
    }

    // Closes every listener and connection; what they had outstanding
    // completes aborted (or is dropped with the port). Memory stays until
    // the destructor, after WSACleanup.
    void close_all()
    {
        for (SOCKET s : listeners_)
            closesocket(s);
        listeners_.clear();
        for (auto& a : accepts_)
            if (a->socket != INVALID_SOCKET) closesocket(a->socket);
        for (auto& c : connections_)
            if (c && !c->closed) closesocket(c->socket);
    }

    const Counts& counts() const noexcept { return counts_; }

private:
    struct Accept {
        EchoOp op{};
        SOCKET listener = INVALID_SOCKET;
        SOCKET socket = INVALID_SOCKET;
        char addresses[2 * (sizeof(sockaddr_in6) + 16)]{};
    };
    struct Connection;
    struct Buffer {
        EchoOp op{};
        Connection* connection = nullptr;
        bool sending = false;
        WSABUF buf{};
        std::vector<char> storage;
    };
    struct Connection {
        SOCKET socket = INVALID_SOCKET;
        std::vector<Buffer> buffers;
        unsigned outstanding = 0;
        bool fin = false;    // the peer's FIN came
        bool closed = false; // closesocket called
        std::size_t index = 0;
    };

    bool post_accept(Accept& a)
    {
        a.socket = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (a.socket == INVALID_SOCKET) return false;
        a.op.ov = {};
        if (AcceptEx(a.listener, a.socket, a.addresses, 0, sizeof(sockaddr_in6) + 16, sizeof(sockaddr_in6) + 16,
                     nullptr, &a.op.ov) ||
            WSAGetLastError() == WSA_IO_PENDING)
            return true;
        closesocket(a.socket);
        a.socket = INVALID_SOCKET;
        return false;
    }

    void accepted(Accept& a, DWORD status)
    {
        SOCKET s = a.socket;
        a.socket = INVALID_SOCKET;
        if (status != 0) {
            if (s != INVALID_SOCKET) closesocket(s);
            if (status != WSA_OPERATION_ABORTED) {
                ++counts_.errors;
                post_accept(a);
            }
            return;
        }
        setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&a.listener),
                   sizeof(a.listener));
        const int on = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&on), sizeof(on));
        CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), port_, 0, 0);
        ++counts_.connections;
        auto c = std::make_unique<Connection>();
        c->socket = s;
        c->buffers.resize(depth_);
        if (free_.empty()) {
            c->index = connections_.size();
            connections_.emplace_back();
        } else {
            c->index = free_.back();
            free_.pop_back();
        }
        for (auto& b : c->buffers) {
            b.op.kind = EchoKind::tcp_buffer;
            b.connection = c.get();
            b.storage.resize(buffer_);
        }
        Connection& conn = *c;
        connections_[conn.index] = std::move(c);
        for (auto& b : conn.buffers) {
            if (!post_receive(b)) {
                fail(conn);
                break;
            }
        }
        if (!post_accept(a)) ++counts_.errors;
        retire_if_done(conn);
    }

    bool post_receive(Buffer& b)
    {
        b.op.ov = {};
        b.sending = false;
        b.buf = {static_cast<ULONG>(b.storage.size()), b.storage.data()};
        DWORD flags = 0;
        if (WSARecv(b.connection->socket, &b.buf, 1, nullptr, &flags, &b.op.ov, nullptr) == 0 ||
            WSAGetLastError() == WSA_IO_PENDING) {
            ++b.connection->outstanding;
            return true;
        }
        return false;
    }

    bool post_send(Buffer& b, DWORD bytes)
    {
        b.op.ov = {};
        b.sending = true;
        b.buf.len = bytes;
        if (WSASend(b.connection->socket, &b.buf, 1, nullptr, 0, &b.op.ov, nullptr) == 0 ||
            WSAGetLastError() == WSA_IO_PENDING) {
            ++b.connection->outstanding;
            return true;
        }
        return false;
    }

    void buffer_done(Buffer& b, DWORD status, DWORD bytes)
    {
        Connection& c = *b.connection;
        --c.outstanding;
        if (status != 0) {
            if (status != WSA_OPERATION_ABORTED) fail(c);
        } else if (b.sending) {
            counts_.bytes += bytes;
            if (!c.fin && !c.closed && !post_receive(b)) fail(c);
        } else if (bytes == 0) {
            c.fin = true; // every later receive completes with zero too
        } else if (!c.closed && !post_send(b, bytes)) {
            fail(c);
        }
        retire_if_done(c);
    }

    void fail(Connection& c)
    {
        ++counts_.errors;
        if (!c.closed) {
            c.closed = true;
            closesocket(c.socket); // what is outstanding completes aborted
        }
    }

    // After the peer's FIN with nothing outstanding: our FIN, then free.
    void retire_if_done(Connection& c)
    {
        if (c.outstanding != 0 || (!c.fin && !c.closed)) return;
        if (!c.closed) {
            c.closed = true;
            shutdown(c.socket, SD_SEND);
            closesocket(c.socket);
        }
        ++counts_.closed;
        free_.push_back(c.index);
        connections_[c.index].reset(); // frees c
    }

    HANDLE port_;
    unsigned depth_;
    unsigned buffer_;
    std::vector<SOCKET> listeners_;
    std::vector<std::unique_ptr<Accept>> accepts_;
    std::vector<std::unique_ptr<Connection>> connections_; // slots; null once retired
    std::vector<std::size_t> free_;                        // retired slots, reused first
    Counts counts_;
};

} // namespace ringsock::tools
