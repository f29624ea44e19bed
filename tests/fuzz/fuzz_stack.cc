// libFuzzer target for everything behind the classifier that the wire
// reaches: lwIP's input as we run it (the netif's pbufs over mbufs, the
// per-frame checksum trust, IPv4/IPv6 fragment reassembly handed back
// through our raw pcb, ARP, ICMP, ND, IGMP, MLD, a TCP listener on each
// family whose connections read everything), with time moving between
// frames. An input is a short sequence of frames, so fragments can meet and
// handshakes can start.
//
// After each input the accepted connections are reset and the clock runs
// ten minutes in lwIP's timer steps; then every mbuf must be back in the
// pool and every lwIP pool and the heap back where they started. A crash,
// a sanitizer report, an lwIP assertion or anything held fails the run.
//
// The clock, LWIP_RAND and the TCP ISN are this file's (lwip_sys.cc and
// lwip_isn.cc are left out), so a run depends only on its input. EAL
// starts once (fuzz_eal.hh). The engine has no TX queue: what lwIP sends
// is counted and freed. Single-threaded.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <unistd.h>

#include "dataplane/engine.hh"
#include "stack/classifier.hh"
#include "stack/interface_config.hh"
#include "stack/lwip_netif.hh"
#include "stack/lwip_tcp.hh"
#include "stack/lwip_udp_reassembly.hh"
#include "tests/fuzz/fuzz_eal.hh"

extern "C" {
#include "lwip/ip_addr.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
}

namespace {

using namespace ringsock::stack;

// lwIP's clock, moved by the inputs and the sweep only.
uint32_t now_ms = 1;
uint64_t rand_state = 1;

constexpr uint16_t kFastPathPort = 5000;
constexpr uint16_t kTcpPort = 80;
constexpr uint32_t kInitialSequence = 0x10000000; // make_stack_corpus.py's ISN
constexpr unsigned kMaxFrames = 16;
constexpr uint16_t kDataRoom = 2048 + RTE_PKTMBUF_HEADROOM;
// Long enough for every lwIP timer that can hold a buffer: reassembly
// (15 s), ARP and ND queues, SYN-ACK retries (about 3 min), TIME_WAIT (2
// MSL, 2 min), FIN_WAIT_2.
constexpr uint32_t kSweepMs = 10 * 60 * 1000;
constexpr uint32_t kTimerStepMs = 250;

// A connection the listener handed over: everything it receives is read
// and dropped, as an application that keeps up would.
class Reader final : public TcpConnectionEvents {
public:
    void on_connected(TcpConnection&) noexcept override {}
    void on_readable(TcpConnection& c) noexcept override
    {
        uint8_t scratch[1024];
        const MutableSegment segment{scratch, sizeof(scratch)};
        while (c.readable() > 0) {
            const uint64_t n = c.copy_to(&segment, 1, 0, sizeof(scratch));
            c.consume(n);
        }
    }
    void on_writable(TcpConnection&) noexcept override {}
    void on_failed(TcpConnection&, TcpFailure) noexcept override {}
};

class Connections final : public TcpListener::Events {
public:
    bool on_incoming(TcpListener&, std::unique_ptr<TcpConnection> c) noexcept override
    {
        c->set_events(&reader_);
        TcpListener::accepted(*c);
        held_.push_back(std::move(c));
        return true;
    }
    // Resets every connection still open (the destructor's abort).
    void reset_all() noexcept { held_.clear(); }

private:
    Reader reader_;
    std::vector<std::unique_ptr<TcpConnection>> held_;
};

// Reassembled datagrams for the fast path's port come back as frames; they
// go through the classifier again after lwIP's input has returned.
class Reassembled final : public ReassembledUdpSink {
public:
    bool wants_udp_port(uint16_t port) const noexcept override { return port == kFastPathPort; }
    void on_reassembled(rte_mbuf* frame) noexcept override { frames.push_back(frame); }
    std::vector<rte_mbuf*> frames;
};

struct Stack {
    rte_mempool* pool = nullptr;
    std::unique_ptr<ringsock::dataplane::Engine> engine;
    std::unique_ptr<Classifier> classifiers[2];
    std::unique_ptr<LwipInterface> lwip;
    Reassembled reassembled;
    std::unique_ptr<LwipUdpReassembly> reassembly;
    Connections connections;
    std::unique_ptr<TcpConnection> bound[2];
    std::unique_ptr<TcpListener> listeners[2];
    // What must hold again after every sweep.
    unsigned mbufs_available = 0;
    std::vector<uint16_t> memp_used;
    mem_size_t heap_used = 0;
};

Stack* stack = nullptr;

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "fuzz_stack: %s\n", what);
    std::abort();
}

// What lwIP looped back (an answer to one of our own addresses, or to a
// source such as ::1 that lwIP routes to its loopback queue), input as
// LwipInterface::poll inputs it on every pass. Left queued, it would count
// as heap held after the sweep.
void drain_loopback()
{
    netif_poll_all();
}

void advance(uint32_t ms)
{
    drain_loopback();
    for (uint32_t done = 0; done < ms; done += kTimerStepMs) {
        now_ms += std::min(kTimerStepMs, ms - done);
        sys_check_timeouts();
        drain_loopback();
    }
}

std::vector<uint16_t> memp_in_use()
{
    std::vector<uint16_t> used;
    for (int i = 0; i < MEMP_MAX; ++i)
        used.push_back(lwip_stats.memp[i]->used);
    return used;
}

void sweep()
{
    stack->connections.reset_all();
    advance(kSweepMs);
}

void deliver(Classifier& classifier, rte_mbuf* m)
{
    UdpDatagram udp[1];
    rte_mbuf* to_lwip[1];
    const ClassifiedBurst r = classifier.classify(&m, 1, udp, to_lwip);
    if (r.udp + r.lwip + r.dropped != 1) fail("the classifier lost a frame");
    if (r.udp == 1) rte_pktmbuf_free(udp[0].mbuf); // the socket layer's; not this target's
    if (r.lwip == 1) stack->lwip->on_lwip(to_lwip, 1);
    // Frames lwIP reassembled for the fast path, as the engine feeds them.
    while (!stack->reassembled.frames.empty()) {
        std::vector<rte_mbuf*> frames;
        frames.swap(stack->reassembled.frames);
        for (rte_mbuf* frame : frames)
            deliver(classifier, frame);
    }
}

// One frame of `size` bytes in one mbuf, or two split at `split`.
rte_mbuf* frame_mbuf(const uint8_t* data, std::size_t size, bool chained, std::size_t split)
{
    rte_mbuf* m = rte_pktmbuf_alloc(stack->pool);
    if (m == nullptr) fail("the pool ran dry: something holds mbufs");
    chained = chained && split < size;
    const std::size_t first = chained ? split : size;
    char* dst = rte_pktmbuf_append(m, static_cast<uint16_t>(first));
    if (first != 0) std::memcpy(dst, data, first);
    if (chained) {
        rte_mbuf* tail = rte_pktmbuf_alloc(stack->pool);
        if (tail == nullptr) fail("the pool ran dry: something holds mbufs");
        std::memcpy(rte_pktmbuf_append(tail, static_cast<uint16_t>(size - first)), data + first, size - first);
        if (rte_pktmbuf_chain(m, tail) != 0) fail("rte_pktmbuf_chain");
    }
    return m;
}

uint64_t offload_flags(uint8_t bits)
{
    uint64_t ol = 0;
    if (bits & 0x01) ol |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
    if (bits & 0x02) ol |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    if (bits & 0x04) ol |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
    if (bits & 0x08) ol |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    return ol;
}

LwipInterfaceConfig interface_config()
{
    return lwip_interface_config(0, MacAddress{0x02, 0, 0, 0, 0, 0x02}, "198.18.0.2/24", "198.18.0.1", "2001:db8::2/64",
                                 1500);
}

std::unique_ptr<TcpListener> listen_on(std::unique_ptr<TcpConnection>& bound, uint8_t family)
{
    bound = TcpConnection::create(family);
    TcpEndpoint local{};
    local.family = family;
    local.port = kTcpPort;
    if (!bound || !bound->bind(local)) fail("cannot bind the TCP listener");
    auto listener = TcpListener::listen(*bound, 8, stack->connections);
    if (!listener) fail("cannot listen");
    return listener;
}

} // namespace

extern "C" u32_t sys_now(void)
{
    return now_ms;
}

extern "C" uint32_t ringsock_lwip_rand(void)
{
    rand_state = rand_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(rand_state >> 33);
}

// A fixed ISN instead of lwip_isn.cc's keyed one, so a seed can finish the
// handshake and the fuzzer can reach established connections.
extern "C" uint32_t ringsock_lwip_tcp_isn(const ip_addr*, uint16_t, const ip_addr*, uint16_t)
{
    return kInitialSequence;
}

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    ringsock::fuzzing::start_eal("fuzz_stack");

    stack = new Stack; // lives for the process: libFuzzer never returns
    // A private area as the profiles give one, so lwIP takes frames in place.
    stack->pool = rte_pktmbuf_pool_create("fuzz_stack", 4095, 0, 64, kDataRoom, SOCKET_ID_ANY);
    if (stack->pool == nullptr) fail("cannot create the mbuf pool");
    stack->engine = std::make_unique<ringsock::dataplane::Engine>(0, ringsock::dataplane::EngineProfile{});
    const LwipInterfaceConfig config = interface_config();
    for (int unbound_to_lwip = 0; unbound_to_lwip < 2; ++unbound_to_lwip) {
        ClassifierConfig c = classifier_config(config);
        c.unbound_udp_to_lwip = unbound_to_lwip != 0;
        stack->classifiers[unbound_to_lwip] = std::make_unique<Classifier>(c);
        stack->classifiers[unbound_to_lwip]->bind_udp_port(kFastPathPort);
    }
    stack->lwip = std::make_unique<LwipInterface>(*stack->engine, stack->pool, config);
    stack->reassembly = std::make_unique<LwipUdpReassembly>(stack->reassembled, stack->pool, config.mac);
    stack->listeners[0] = listen_on(stack->bound[0], 4);
    stack->listeners[1] = listen_on(stack->bound[1], 6);

    // The bring-up's own reports and timers settle before the baseline.
    sweep();
    stack->mbufs_available = rte_mempool_avail_count(stack->pool);
    stack->memp_used = memp_in_use();
    stack->heap_used = lwip_stats.mem.used;
    return 0;
}

// Input: one byte of choices, then frames, each as
// [advance, 20 ms units][length, 2 bytes little-endian][offload bits][bytes].
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    if (size < 1) return 0;
    const uint8_t choices = *data++;
    --size;
    Classifier& classifier = *stack->classifiers[choices & 1];
    const bool chained = (choices & 2) != 0;

    for (unsigned frames = 0; frames < kMaxFrames && size >= 4; ++frames) {
        const uint32_t advance_ms = data[0] * 20u;
        const std::size_t length =
            std::min<std::size_t>({static_cast<std::size_t>(data[1] | data[2] << 8), size - 4, 2048});
        const uint8_t bits = data[3];
        data += 4;
        size -= 4;
        rte_mbuf* m = frame_mbuf(data, length, chained, bits >> 4 << 3);
        m->ol_flags = offload_flags(bits);
        data += length;
        size -= length;
        deliver(classifier, m);
        advance(advance_ms);
    }

    sweep();
    if (rte_mempool_avail_count(stack->pool) != stack->mbufs_available) fail("mbufs held after the sweep");
    if (memp_in_use() != stack->memp_used) {
        for (int i = 0; i < MEMP_MAX; ++i)
            if (lwip_stats.memp[i]->used != stack->memp_used[i])
                std::fprintf(stderr, "fuzz_stack: lwIP pool %d (memp_t): %u in use, %u at start\n", i,
                             unsigned{lwip_stats.memp[i]->used}, unsigned{stack->memp_used[i]});
        fail("lwIP pools held after the sweep");
    }
    if (lwip_stats.mem.used != stack->heap_used) fail("lwIP's heap held after the sweep");
    return 0;
}
