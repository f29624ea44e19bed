#define RINGSOCK_NO_BSD_NAMES
#include "api/stream_engine.hh"

#include <algorithm>
#include <deque>
#include <vector>

#include "api/request_segments.hh"
#include "api/socket_engine.hh"
#include "stack/lwip_tcp.hh"

namespace ringsock::api {

namespace {

stack::TcpEndpoint to_tcp(const Endpoint& e)
{
    stack::TcpEndpoint t;
    t.family = e.family;
    t.addr = e.addr;
    t.port = e.port;
    return t;
}

// Where the socket's pcb binds: its local address, or both families' any
// for a dual-stack socket on ::.
stack::TcpEndpoint pcb_local(const Socket& s)
{
    stack::TcpEndpoint t = to_tcp(s.local);
    if (s.carries(4) && s.carries(6)) t.family = stack::TcpEndpoint::kEitherFamily;
    return t;
}

Endpoint from_tcp(const stack::TcpEndpoint& t)
{
    Endpoint e;
    e.family = t.family;
    e.addr = t.addr;
    e.port = t.port;
    return e;
}

// A FIFO of requests linked through Request::next.
struct RequestQueue {
    Request* head = nullptr;
    Request* tail = nullptr;

    bool empty() const noexcept { return head == nullptr; }
    void push(Request& r) noexcept
    {
        r.next = nullptr;
        if (tail != nullptr)
            tail->next = &r;
        else
            head = &r;
        tail = &r;
    }
    Request* pop() noexcept
    {
        Request* r = head;
        if (r != nullptr) {
            head = r->next;
            if (head == nullptr) tail = nullptr;
        }
        return r;
    }
    Request* remove(LPWSAOVERLAPPED target) noexcept
    {
        Request* prev = nullptr;
        for (Request* r = head; r != nullptr; prev = r, r = r->next) {
            if (r->overlapped != target) continue;
            (prev != nullptr ? prev->next : head) = r->next;
            if (tail == r) tail = prev;
            return r;
        }
        return nullptr;
    }
};

} // namespace

// One stream socket's state on the lwIP engine; also a connection accepted
// by lwIP that waits in its listener's backlog (no socket yet).
struct StreamState final : stack::TcpConnectionEvents, stack::TcpListener::Events {
    StreamEngine& engine;
    Socket* socket = nullptr;      // null while in a listener's backlog
    StreamState* parent = nullptr; // the listener whose backlog holds it
    std::unique_ptr<stack::TcpConnection> connection;
    std::unique_ptr<stack::TcpListener> listener;
    std::deque<std::unique_ptr<StreamState>> backlog; // listener: accepted by lwIP, not yet by the application
    RequestQueue receives;
    RequestQueue sends;
    RequestQueue accepts; // listener: AcceptEx and accept calls
    Request* connect = nullptr;
    Request* first_data = nullptr; // an AcceptEx that waits for the connection's first bytes
    DWORD failure = 0;             // the connection's end by reset or time-out, for every later call
    bool fin_wanted = false;
    bool fin_sent = false;

    explicit StreamState(StreamEngine& e) : engine(e) { engine.counters().stream_states_made.add(1); }
    ~StreamState() { engine.counters().stream_states_freed.add(1); }

    void on_connected(stack::TcpConnection&) noexcept override { engine.connected(*this); }
    void on_readable(stack::TcpConnection&) noexcept override { engine.readable(*this); }
    void on_writable(stack::TcpConnection&) noexcept override { engine.writable(*this); }
    void on_refused(stack::TcpConnection&) noexcept override { engine.counters().tcp_refused.add(1); }
    void on_failed(stack::TcpConnection&, stack::TcpFailure why) noexcept override
    {
        if (why == stack::TcpFailure::closed)
            engine.finished(*this);
        else
            engine.failed(*this, why);
    }
    bool on_incoming(stack::TcpListener&, std::unique_ptr<stack::TcpConnection> c) noexcept override
    {
        try {
            auto child = std::make_unique<StreamState>(engine);
            child->connection = std::move(c);
            child->connection->set_events(child.get());
            engine.incoming(*this, std::move(child));
            return true;
        } catch (const std::bad_alloc&) {
            return false; // the connection went with `c` or `child`: reset
        }
    }
};

namespace {

StreamState* state_of(Socket& s)
{
    return static_cast<StreamState*>(s.stream);
}

bool request_is_current(const Request& r)
{
    const Socket& s = *r.socket;
    return s.open.load(std::memory_order_acquire) &&
           s.generation.load(std::memory_order_acquire) == r.socket_generation;
}

} // namespace

StreamEngine::~StreamEngine() = default;

SocketEngineCounters& StreamEngine::counters() noexcept
{
    return engine_.counters();
}

void StreamEngine::finish(Request& r, DWORD error, DWORD bytes) noexcept
{
    engine_.finish(r, error, bytes, 0);
}

int StreamEngine::bind(Socket& s) noexcept
{
    if (s.stream != nullptr) return 0;
    auto st = std::make_unique<StreamState>(*this);
    st->socket = &s;
    st->connection = stack::TcpConnection::create(pcb_local(s).family);
    if (!st->connection) return WSAENOBUFS;
    if (!st->connection->bind(pcb_local(s))) return WSAEADDRINUSE;
    st->connection->set_events(st.get());
    s.stream = st.release();
    return 0;
}

int StreamEngine::listen(Socket& s, int backlog) noexcept
{
    StreamState* st = state_of(s);
    if (st == nullptr) return WSAEINVAL;
    if (st->listener) return 0; // listening already
    if (!st->connection) return WSAEINVAL;
    st->connection->set_ttl(s.unicast_ttl.load(std::memory_order_relaxed)); // lwIP's listener takes it over
    st->listener = stack::TcpListener::listen(*st->connection, static_cast<uint8_t>(backlog), *st);
    if (!st->listener) return WSAENOBUFS;
    st->connection.reset();
    return 0;
}

void StreamEngine::post_recv(Request& r) noexcept
{
    StreamState* st = request_is_current(r) ? state_of(*r.socket) : nullptr;
    if (st == nullptr) {
        finish(r, WSA_OPERATION_ABORTED, 0);
        return;
    }
    if (r.no_wait && !st->receives.empty()) {
        // Behind a pending receive, which the next bytes belong to: it
        // cannot complete now, and a non-blocking call does not wait.
        finish(r, WSAEWOULDBLOCK, 0);
        return;
    }
    st->receives.push(r);
    serve_receives(*st);
}

void StreamEngine::serve_receives(StreamState& st) noexcept
{
    stack::TcpConnection* c = st.connection.get();
    while (Request* r = st.receives.head) {
        if (st.failure != 0) {
            st.receives.pop();
            finish(*r, st.failure, 0);
            continue;
        }
        if (c != nullptr && c->readable() != 0) {
            // A MSG_WAITALL receive that must not wait (made on lwIP's own
            // lcore) takes all it asked for or nothing.
            if (r->no_wait && r->wait_all && r->done == 0 && c->readable() < r->total_length && !c->peer_closed()) {
                st.receives.pop();
                finish(*r, WSAEWOULDBLOCK, 0);
                continue;
            }
            const SegmentsOf<stack::MutableSegment> dest(*r);
            const uint64_t n = c->copy_to(dest.data(), r->buffer_count, r->done, r->total_length - r->done);
            if (!r->peek) {
                c->consume(n);
                st.socket->queued_bytes.store(static_cast<int64_t>(c->readable()), std::memory_order_relaxed);
            }
            r->done += n;
            const bool waits_for_more = r->wait_all && !r->peek && r->done < r->total_length;
            if (waits_for_more && !c->peer_closed()) return; // the rest when it comes
            st.receives.pop();
            finish(*r, 0, static_cast<DWORD>(r->done));
            continue;
        }
        // Nothing buffered: the peer's FIN reads as zero bytes (or as what
        // a MSG_WAITALL receive holds), every time from now on.
        if (c == nullptr || c->peer_closed()) {
            st.receives.pop();
            finish(*r, 0, static_cast<DWORD>(r->done));
            continue;
        }
        if (r->no_wait && r->done == 0) {
            st.receives.pop();
            finish(*r, WSAEWOULDBLOCK, 0);
            continue;
        }
        return;
    }
}

void StreamEngine::post_send(Request& r) noexcept
{
    StreamState* st = request_is_current(r) ? state_of(*r.socket) : nullptr;
    if (st == nullptr) {
        finish(r, WSA_OPERATION_ABORTED, 0);
        return;
    }
    if (st->failure != 0) {
        finish(r, st->failure, 0);
        return;
    }
    if (st->fin_wanted) {
        finish(r, WSAESHUTDOWN, 0);
        return;
    }
    r.done = 0;
    if (r.no_wait && !st->sends.empty()) {
        finish(r, WSAEWOULDBLOCK, 0); // behind sends lwIP has no room for yet
        return;
    }
    st->sends.push(r);
    pump_sends(*st);
}

void StreamEngine::pump_sends(StreamState& st) noexcept
{
    stack::TcpConnection* c = st.connection.get();
    bool wrote = false;
    while (Request* r = st.sends.head) {
        if (st.failure != 0 || c == nullptr || !c->alive()) {
            st.sends.pop();
            finish(*r, st.failure != 0 ? st.failure : WSAENOTCONN, 0);
            continue;
        }
        // Find the buffer holding byte r->done, then hand lwIP what it takes.
        uint32_t index = 0;
        uint64_t offset = r->done;
        while (index < r->buffer_count && offset >= r->buffers[index].len) {
            offset -= r->buffers[index].len;
            ++index;
        }
        bool full = false;
        while (r->done < r->total_length) {
            const uint32_t space = c->send_space();
            const uint64_t in_buffer = r->buffers[index].len - offset;
            const auto chunk = static_cast<uint16_t>(std::min<uint64_t>({space, in_buffer, 0xffff}));
            if (chunk == 0 ||
                !c->write(r->buffers[index].buf + offset, chunk, r->done + chunk < r->total_length || r->next)) {
                full = true;
                break;
            }
            wrote = true;
            r->done += chunk;
            offset += chunk;
            while (index < r->buffer_count && offset == r->buffers[index].len) {
                offset = 0;
                ++index;
            }
        }
        if (full) {
            // A non-blocking send takes what fit, or fails with nothing taken.
            if (r->no_wait) {
                st.sends.pop();
                finish(*r, r->done != 0 ? 0 : WSAEWOULDBLOCK, static_cast<DWORD>(r->done));
                continue;
            }
            break;
        }
        st.sends.pop();
        finish(*r, 0, static_cast<DWORD>(r->total_length));
    }
    if (c != nullptr && st.fin_wanted && !st.fin_sent && st.sends.empty()) st.fin_sent = c->shutdown_send();
    if (wrote && c != nullptr) c->push();
}

void StreamEngine::shutdown_send(Socket& s) noexcept
{
    StreamState* st = state_of(s);
    if (st == nullptr) return;
    st->fin_wanted = true;
    pump_sends(*st);
}

void StreamEngine::apply_options(Socket& s) noexcept
{
    StreamState* st = state_of(s);
    if (st != nullptr && st->listener) st->listener->set_ttl(s.unicast_ttl.load(std::memory_order_relaxed));
    if (st == nullptr || !st->connection) return;
    st->connection->set_nodelay(s.nodelay.load(std::memory_order_relaxed));
    st->connection->set_ttl(s.unicast_ttl.load(std::memory_order_relaxed));
    st->connection->set_keepalive(s.keepalive.load(std::memory_order_relaxed),
                                  s.keepalive_idle_ms.load(std::memory_order_relaxed),
                                  s.keepalive_interval_ms.load(std::memory_order_relaxed), kKeepaliveProbes);
}

bool StreamEngine::drained(Socket& s) noexcept
{
    StreamState* st = state_of(s);
    return st == nullptr || !st->connection || (st->sends.empty() && !st->connection->send_pending());
}

void StreamEngine::post_connect(Request& r) noexcept
{
    Socket& s = *r.socket;
    StreamState* st = request_is_current(r) ? state_of(s) : nullptr;
    if (st == nullptr) {
        finish(r, WSA_OPERATION_ABORTED, 0);
        return;
    }
    if (!st->connection || !st->connection->alive() || st->connection->local().port != s.local.port) {
        // An earlier attempt failed, or the provider moved the socket to a
        // core-affine port: a fresh pcb on the socket's local address.
        st->connection = stack::TcpConnection::create(pcb_local(s).family);
        if (!st->connection || !st->connection->bind(pcb_local(s))) {
            s.connecting.store(false, std::memory_order_release);
            finish(r, st->connection ? WSAEADDRINUSE : WSAENOBUFS, 0);
            return;
        }
        st->connection->set_events(st);
        st->failure = 0;
    }
    apply_options(s);
    if (!st->connection->connect(to_tcp(r.to))) {
        s.connecting.store(false, std::memory_order_release);
        finish(r, WSAENETUNREACH, 0);
        return;
    }
    st->connect = &r;
}

void StreamEngine::connected(StreamState& st) noexcept
{
    Socket* s = st.socket;
    Request* r = st.connect;
    st.connect = nullptr;
    if (s == nullptr) return;
    s->local = from_tcp(st.connection->local()); // the address the route chose, for getsockname
    s->connected.store(true, std::memory_order_release);
    s->connecting.store(false, std::memory_order_release);
    counters().tcp_connected.add(1);
    if (r == nullptr) return;
    if (r->total_length == 0) {
        finish(*r, 0, 0);
        return;
    }
    // ConnectEx's send buffer: sent like a WSASend, completing with its count.
    r->kind = RequestKind::send;
    r->done = 0;
    st.sends.push(*r);
    pump_sends(st);
}

void StreamEngine::readable(StreamState& st) noexcept
{
    if (st.socket == nullptr) return; // in the backlog: kept for its socket
    st.socket->queued_bytes.store(static_cast<int64_t>(st.connection->readable()), std::memory_order_relaxed);
    if (st.first_data != nullptr) serve_first_data(st);
    serve_receives(st);
}

void StreamEngine::writable(StreamState& st) noexcept
{
    if (st.socket != nullptr) pump_sends(st);
}

void StreamEngine::failed(StreamState& st, stack::TcpFailure why) noexcept
{
    const bool reset = why == stack::TcpFailure::reset;
    if (st.socket == nullptr) {
        // Reset before anyone accepted it: it leaves the backlog.
        if (StreamState* parent = st.parent) {
            auto& queue = parent->backlog;
            const auto it =
                std::find_if(queue.begin(), queue.end(), [&](const auto& child) { return child.get() == &st; });
            if (it != queue.end()) queue.erase(it); // destroys st: nothing below may touch it
        }
        return;
    }
    Socket& s = *st.socket;
    counters().tcp_failed.add(1);
    if (st.connect != nullptr) {
        Request* r = st.connect;
        st.connect = nullptr;
        s.connecting.store(false, std::memory_order_release);
        const DWORD error = reset ? WSAECONNREFUSED : WSAETIMEDOUT;
        s.stream_error.store(static_cast<int32_t>(error), std::memory_order_relaxed);
        finish(*r, error, 0);
        return;
    }
    // Reset: what was buffered is gone with the connection, as on Windows.
    // Keep-alive: WSAENETRESET, "broken due to keep-alive activity" (WSARecv).
    st.failure = reset ? WSAECONNRESET : why == stack::TcpFailure::keepalive_lost ? WSAENETRESET : WSAECONNABORTED;
    s.stream_error.store(static_cast<int32_t>(st.failure), std::memory_order_relaxed);
    s.stream_failure.store(static_cast<int32_t>(st.failure), std::memory_order_release);
    st.connection->consume(st.connection->readable());
    s.queued_bytes.store(0, std::memory_order_relaxed);
    if (st.first_data != nullptr) {
        Request* r = st.first_data;
        st.first_data = nullptr;
        finish(*r, st.failure, 0);
    }
    serve_receives(st);
    pump_sends(st);
}

void StreamEngine::finished(StreamState& st) noexcept
{
    // The peer's FIN came before (receives read zero after the bytes held);
    // ours went after every posted send, so nothing waits to be sent.
    if (st.socket == nullptr) return;
    serve_receives(st);
    pump_sends(st);
}

void StreamEngine::post_accept(Request& r) noexcept
{
    StreamState* st = request_is_current(r) ? state_of(*r.socket) : nullptr;
    if (st == nullptr || !st->listener) {
        finish(r, st == nullptr ? WSA_OPERATION_ABORTED : WSAEINVAL, 0);
        return;
    }
    if (r.no_wait && !st->accepts.empty()) {
        // Behind a pending AcceptEx (or a blocking accept), which the next
        // connection belongs to; a non-blocking accept does not wait.
        finish(r, WSAEWOULDBLOCK, 0);
        return;
    }
    st->accepts.push(r);
    match_accepts(*st);
}

void StreamEngine::incoming(StreamState& listener, std::unique_ptr<StreamState> child)
{
    child->parent = &listener;
    listener.backlog.push_back(std::move(child));
    match_accepts(listener);
}

void StreamEngine::match_accepts(StreamState& st) noexcept
{
    while (Request* r = st.accepts.head) {
        if (st.backlog.empty()) {
            if (!r->no_wait) return;
            st.accepts.pop();
            finish(*r, WSAEWOULDBLOCK, 0);
            continue;
        }
        st.accepts.pop();
        Socket& target = *r->accept_socket;
        if (!target.open.load(std::memory_order_acquire) ||
            target.generation.load(std::memory_order_acquire) != r->accept_generation || target.stream != nullptr) {
            finish(*r, WSA_OPERATION_ABORTED, 0); // the accept socket was closed meanwhile
            continue;
        }
        std::unique_ptr<StreamState> child = std::move(st.backlog.front());
        st.backlog.pop_front();
        stack::TcpListener::accepted(*child->connection);
        child->parent = nullptr;
        child->socket = &target;
        target.home_engine = st.socket->home_engine;
        target.local = from_tcp(child->connection->local());
        target.peer = from_tcp(child->connection->remote());
        target.queued_bytes.store(static_cast<int64_t>(child->connection->readable()), std::memory_order_relaxed);
        target.bound.store(true, std::memory_order_release);
        target.connected.store(true, std::memory_order_release);
        StreamState* accepted = child.release();
        target.stream = accepted;
        engine_.adopt(target);
        counters().tcp_accepted.add(1);
        apply_options(target);
        // AcceptEx's address blocks: a sockaddr at the start of each.
        if (r->accept_local != 0) {
            char* out = r->buffers[0].buf + r->accept_data;
            int room = static_cast<int>(r->accept_local);
            endpoint_to_sockaddr(target.family, target.local, reinterpret_cast<sockaddr*>(out), &room);
            room = static_cast<int>(r->accept_remote);
            endpoint_to_sockaddr(target.family, target.peer, reinterpret_cast<sockaddr*>(out + r->accept_local), &room);
        }
        if (r->from != nullptr && r->fromlen != nullptr)
            endpoint_to_sockaddr(target.family, target.peer, r->from, r->fromlen);
        if (r->accept_data != 0) {
            accepted->first_data = r; // completes with the connection's first bytes
            serve_first_data(*accepted);
            continue;
        }
        finish(*r, 0, 0);
    }
}

void StreamEngine::serve_first_data(StreamState& st) noexcept
{
    Request* r = st.first_data;
    stack::TcpConnection& c = *st.connection;
    if (c.readable() == 0 && !c.peer_closed()) return;
    st.first_data = nullptr;
    const stack::MutableSegment dest{r->buffers[0].buf, r->accept_data};
    const uint64_t n = c.copy_to(&dest, 1, 0, r->accept_data);
    c.consume(n);
    st.socket->queued_bytes.store(static_cast<int64_t>(c.readable()), std::memory_order_relaxed);
    finish(*r, 0, static_cast<DWORD>(n));
}

bool StreamEngine::cancel(Socket& s, LPWSAOVERLAPPED target, DWORD error) noexcept
{
    StreamState* st = state_of(s);
    if (st == nullptr) return false;
    for (RequestQueue* q : {&st->receives, &st->accepts, &st->sends}) {
        if (Request* r = q->remove(target)) {
            finish(*r, error, static_cast<DWORD>(r->done));
            return true;
        }
    }
    return false;
}

void StreamEngine::abort_all(StreamState& st, DWORD error) noexcept
{
    for (RequestQueue* q : {&st.receives, &st.sends, &st.accepts})
        while (Request* r = q->pop())
            finish(*r, error, 0);
    for (Request** r : {&st.connect, &st.first_data}) {
        if (*r != nullptr) {
            Request* pending = *r;
            *r = nullptr;
            finish(*pending, error, 0);
        }
    }
}

void StreamEngine::close(Socket& s) noexcept
{
    std::unique_ptr<StreamState> st(state_of(s));
    if (!st) return;
    s.stream = nullptr;
    abort_all(*st, WSA_OPERATION_ABORTED);
    st->backlog.clear(); // unaccepted connections: reset
    st->listener.reset();
    if (st->connection) {
        if (s.linger_seconds.load(std::memory_order_relaxed) == 0)
            st->connection->abort();
        else
            st->connection->close();
    }
}

} // namespace ringsock::api
