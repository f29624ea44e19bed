#include "tests/support/lwip_tcp_client.hh"

#include <algorithm>
#include <stdexcept>
#include <vector>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

namespace ringsock::testing {

struct LwipTcpClient::State {
    tcp_pcb* pcb = nullptr;
    size_t total = 0;
    size_t sent = 0; // handed to tcp_write
    bool connected = false;
    bool peer_closed = false;
    bool failed = false;
    uint16_t local_port = 0;
    std::string received;

    // Writes as much of the pattern as the send buffer takes.
    void pump()
    {
        if (pcb == nullptr || !connected) return;
        uint8_t chunk[1460];
        while (sent < total) {
            const size_t room = std::min<size_t>(tcp_sndbuf(pcb), sizeof(chunk));
            if (room == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 1) break;
            const size_t n = std::min(room, total - sent);
            for (size_t i = 0; i < n; ++i)
                chunk[i] = static_cast<uint8_t>(((sent + i) * 7 + 3) % 256);
            if (tcp_write(pcb, chunk, static_cast<u16_t>(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
            sent += n;
        }
        tcp_output(pcb);
    }
};

LwipTcpClient::LwipTcpClient(const std::array<uint8_t, 4>& address, uint16_t port, size_t bytes)
    : state_(std::make_unique<State>())
{
    State* s = state_.get();
    s->total = bytes;
    s->pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (s->pcb == nullptr) throw std::runtime_error("tcp_new failed");
    tcp_arg(s->pcb, s);
    tcp_nagle_disable(s->pcb);
    tcp_err(s->pcb, [](void* arg, err_t) {
        if (arg == nullptr) return;
        auto* st = static_cast<State*>(arg);
        st->pcb = nullptr; // lwIP has freed it
        st->failed = true;
    });
    tcp_recv(s->pcb, [](void* arg, tcp_pcb* pcb, pbuf* p, err_t) -> err_t {
        auto* st = static_cast<State*>(arg);
        if (p == nullptr) {
            st->peer_closed = true;
            tcp_arg(pcb, nullptr);
            tcp_recv(pcb, nullptr);
            tcp_sent(pcb, nullptr);
            tcp_err(pcb, nullptr);
            if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
            st->pcb = nullptr;
            return ERR_OK;
        }
        std::vector<char> bytes(p->tot_len);
        pbuf_copy_partial(p, bytes.data(), p->tot_len, 0);
        st->received.append(bytes.begin(), bytes.end());
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    });
    tcp_sent(s->pcb, [](void* arg, tcp_pcb*, u16_t) -> err_t {
        static_cast<State*>(arg)->pump();
        return ERR_OK;
    });
    ip_addr_t to;
    IP_ADDR4(&to, address[0], address[1], address[2], address[3]);
    const err_t rc = tcp_connect(s->pcb, &to, port, [](void* arg, tcp_pcb* pcb, err_t) -> err_t {
        auto* st = static_cast<State*>(arg);
        st->connected = true;
        st->local_port = pcb->local_port;
        st->pump();
        return ERR_OK;
    });
    if (rc != ERR_OK) {
        tcp_abort(s->pcb);
        throw std::runtime_error("tcp_connect refused: " + std::to_string(rc));
    }
}

LwipTcpClient::~LwipTcpClient()
{
    if (state_->pcb != nullptr) {
        tcp_arg(state_->pcb, nullptr);
        tcp_abort(state_->pcb);
    }
}

bool LwipTcpClient::connected() const noexcept
{
    return state_->connected;
}
bool LwipTcpClient::peer_closed() const noexcept
{
    return state_->peer_closed;
}
bool LwipTcpClient::failed() const noexcept
{
    return state_->failed;
}
size_t LwipTcpClient::bytes_sent() const noexcept
{
    return state_->sent;
}
const std::string& LwipTcpClient::received() const noexcept
{
    return state_->received;
}
uint16_t LwipTcpClient::local_port() const noexcept
{
    return state_->local_port;
}

} // namespace ringsock::testing
