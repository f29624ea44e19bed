#include "stack/tools/tcp_discard.hh"

#include <map>
#include <stdexcept>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

namespace ringsock::stack {

// Each connection's lwIP callback argument: lwIP names no pcb when it
// reports an error (it has freed it), so the argument must say which.
struct Connection {
    TcpDiscardServer::State* server;
    tcp_pcb* pcb;
};

struct TcpDiscardServer::State {
    TcpDiscardServer* owner = nullptr;
    tcp_pcb* listener = nullptr;
    std::map<Connection*, std::unique_ptr<Connection>> open;

    void forget(Connection* c)
    {
        if (c->pcb != nullptr) {
            tcp_arg(c->pcb, nullptr);
            tcp_recv(c->pcb, nullptr);
            tcp_err(c->pcb, nullptr);
        }
        open.erase(c);
    }

    static err_t on_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t)
    {
        auto* c = static_cast<Connection*>(arg);
        State* st = c->server;
        if (p == nullptr) { // the peer closed: so do we
            st->forget(c);
            st->owner->closed_.fetch_add(1, std::memory_order_relaxed);
            if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
            return ERR_OK;
        }
        st->owner->bytes_.fetch_add(p->tot_len, std::memory_order_relaxed);
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    }

    static void on_error(void* arg, err_t)
    {
        auto* c = static_cast<Connection*>(arg);
        c->pcb = nullptr; // already freed by lwIP
        c->server->forget(c);
    }

    static err_t on_accept(void* arg, tcp_pcb* pcb, err_t err)
    {
        if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
        auto* st = static_cast<State*>(arg);
        auto connection = std::make_unique<Connection>(Connection{st, pcb});
        Connection* c = connection.get();
        st->open.emplace(c, std::move(connection));
        st->owner->connections_.fetch_add(1, std::memory_order_relaxed);
        tcp_arg(pcb, c);
        tcp_recv(pcb, on_recv);
        tcp_err(pcb, on_error);
        tcp_nagle_disable(pcb);
        return ERR_OK;
    }
};

TcpDiscardServer::TcpDiscardServer(uint16_t port) : state_(std::make_unique<State>())
{
    State* s = state_.get();
    s->owner = this;
    tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (pcb == nullptr || tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
        if (pcb != nullptr) tcp_close(pcb);
        throw std::runtime_error("cannot bind the TCP discard server to port " + std::to_string(port));
    }
    s->listener = tcp_listen_with_backlog(pcb, 16);
    if (s->listener == nullptr) throw std::runtime_error("tcp_listen failed on port " + std::to_string(port));
    tcp_arg(s->listener, s);
    tcp_accept(s->listener, State::on_accept);
}

TcpDiscardServer::~TcpDiscardServer()
{
    while (!state_->open.empty()) {
        Connection* c = state_->open.begin()->first;
        tcp_pcb* pcb = c->pcb;
        state_->forget(c);
        if (pcb != nullptr) tcp_abort(pcb);
    }
    if (state_->listener != nullptr) tcp_close(state_->listener);
}

} // namespace ringsock::stack
