// ringsock-udp-gen: a paced UDP generator on a DPDK port, for what testpmd
// cannot do on memif: offer a fixed rate. It resolves the peer's MAC by
// ARP (and answers ARP for its own address), then sends --rate datagrams a
// second for --seconds, each carrying a sequence number and the TSC at
// which it left. In echo mode it times every reply that comes back (a
// ringsock-echo, or any UDP echo) into a histogram and prints the round
// trip's p50/p99/p99.9; in load mode nothing comes back and the receiver's
// own counts are compared with what was sent (scripts/bench/udp-no-drop).
//
// One engine. Frames are copies of one template (IPv4 header checksum
// computed once, UDP checksum 0: none, which IPv4 allows), so the per-frame
// cost is an mbuf and a copy. Stops by itself: after the ARP wait, the
// sending time and a drain of --drain-ms; or at SIGINT/SIGTERM. Prints one
// JSON line. Exit codes: 0, 1 start-up failed or the peer never answered
// ARP, 2 a bad option or profile.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fmt/core.h>
#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/dataplane.hh"
#include "dataplane/latency_histogram.hh"
#include "dataplane/signals.hh"
#include "dataplane/tool_main.hh"

namespace {

using namespace ringsock::dataplane;

constexpr uint32_t kMagic = 0x52534731; // "RSG1"
constexpr std::size_t kHeaders = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);

struct Stamp {
    uint32_t magic;
    uint64_t sequence;
    uint64_t tsc;
} __attribute__((packed));

struct GenOptions {
    double rate = 10000;
    double seconds = 5;
    unsigned size = 64;
    std::string local = "198.18.0.1";
    std::string peer = "198.18.0.2";
    uint16_t dst_port = 7;
    uint16_t src_port = 40000;
    unsigned flows = 1;
    bool echo = true;
    unsigned drain_ms = 300;
    unsigned warmup_ms = 200;
    unsigned hold_ms = 0;
    unsigned arp_timeout_ms = 5000;
};

uint32_t ipv4_of(const std::string& text)
{
    in_addr a{};
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) throw std::invalid_argument("not an IPv4 address: " + text);
    return a.s_addr; // network order
}

class Generator final : public BurstHandler {
public:
    Generator(Dataplane& dataplane, const GenOptions& o)
        : dataplane_(dataplane), o_(o), local_(ipv4_of(o.local)), peer_(ipv4_of(o.peer)), port_(dataplane.port().id()),
          hz_(rte_get_tsc_hz()), warm_sequence_(static_cast<uint64_t>(o.warmup_ms * o.rate / 1000 + 0.5))
    {
        rte_eth_macaddr_get(port_, &mac_);
        pool_ = dataplane.mempools().for_socket(rte_eth_dev_socket_id(port_)).get();
    }

    uint16_t on_burst(Engine& engine, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        const uint64_t now = rte_rdtsc();
        for (uint16_t i = 0; i < n; ++i) {
            rte_mbuf* m = pkts[i];
            const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
            if (m->data_len >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr) &&
                eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
                on_arp(engine, m);
            else if (m->data_len >= kHeaders + sizeof(Stamp) &&
                     eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
                on_ipv4(m, now);
            rte_pktmbuf_free(m);
        }
        return 0;
    }

    void on_poll(Engine& engine) override
    {
        const uint64_t now = rte_rdtsc();
        if (phase_ == Phase::resolving) {
            if (now >= next_arp_) {
                send_arp(engine, RTE_ARP_OP_REQUEST, {}, peer_);
                next_arp_ = now + hz_ / 10;
            }
            if (now - started_ > hz_ * o_.arp_timeout_ms / 1000) finish(false);
            return;
        }
        if (phase_ == Phase::sending) {
            if (now < send_start_) return; // --hold-ms: the receiver binds its sockets
            const double elapsed = static_cast<double>(now - send_start_) / static_cast<double>(hz_);
            if (elapsed >= o_.seconds) {
                // The schedule's last datagrams, so exactly rate x seconds leave.
                const auto total = static_cast<uint64_t>(o_.seconds * o_.rate + 0.5);
                while (sent_ < total)
                    send_burst(engine, now, total - sent_);
                phase_ = Phase::draining;
                drain_until_ = now + hz_ * o_.drain_ms / 1000;
                tx_dropped_ = engine.counters().tx_drops.get() - tx_drops_at_start_;
                return;
            }
            const auto due = static_cast<uint64_t>(elapsed * o_.rate);
            if (sent_ < due) send_burst(engine, now, due - sent_);
            return;
        }
        if (phase_ == Phase::draining && now >= drain_until_) finish(true);
    }

    bool resolved() const noexcept { return resolved_ok_; }
    uint64_t sent() const noexcept { return sent_; }
    // Sent after the warm-up: what echoes and losses are counted against.
    uint64_t measured() const noexcept { return sent_ > warm_sequence_ ? sent_ - warm_sequence_ : 0; }
    uint64_t no_mbuf() const noexcept { return no_mbuf_; }
    uint64_t echoed() const noexcept { return echoed_; }
    uint64_t strays() const noexcept { return strays_; }
    // Datagrams the TX queue had no room for (sent() counts them).
    uint64_t tx_dropped() const noexcept { return tx_dropped_; }
    double sending_seconds() const noexcept { return sending_seconds_; }
    const LatencyHistogram& round_trips() const noexcept { return round_trips_; }
    uint64_t hz() const noexcept { return hz_; }

private:
    enum class Phase { resolving, sending, draining, done };

    void on_arp(Engine& engine, rte_mbuf* m)
    {
        const auto* arp = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*, sizeof(rte_ether_hdr));
        const rte_arp_ipv4& d = arp->arp_data;
        if (d.arp_sip == peer_ && phase_ == Phase::resolving) {
            peer_mac_ = d.arp_sha;
            build_template();
            phase_ = Phase::sending;
            send_start_ = rte_rdtsc() + hz_ * o_.hold_ms / 1000;
            tx_drops_at_start_ = engine.counters().tx_drops.get();
        }
        if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) && d.arp_tip == local_)
            send_arp(engine, RTE_ARP_OP_REPLY, d.arp_sha, d.arp_sip);
    }

    void on_ipv4(rte_mbuf* m, uint64_t now)
    {
        const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
        if (ip->next_proto_id != IPPROTO_UDP || ip->src_addr != peer_ || (ip->version_ihl & 0xf) != 5) {
            ++strays_;
            return;
        }
        Stamp s;
        std::memcpy(&s, rte_pktmbuf_mtod_offset(m, const char*, kHeaders), sizeof(s));
        if (s.magic != kMagic || s.sequence >= sent_) {
            ++strays_;
            return;
        }
        if (s.sequence < warm_sequence_) return; // the warm-up's: ARP and caches settling
        ++echoed_;
        round_trips_.record((now - s.tsc) * 1000000000ull / hz_);
    }

    void send_arp(Engine& engine, uint16_t op, const rte_ether_addr& target_mac, uint32_t target_ip)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (m == nullptr) return;
        auto* eth =
            reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
        auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
        eth->src_addr = mac_;
        if (op == RTE_ARP_OP_REQUEST)
            std::memset(eth->dst_addr.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
        else
            eth->dst_addr = target_mac;
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
        arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
        arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        arp->arp_hlen = RTE_ETHER_ADDR_LEN;
        arp->arp_plen = 4;
        arp->arp_opcode = rte_cpu_to_be_16(op);
        arp->arp_data.arp_sha = mac_;
        arp->arp_data.arp_sip = local_;
        arp->arp_data.arp_tha = target_mac;
        arp->arp_data.arp_tip = target_ip;
        engine.send(port_, m);
    }

    void build_template()
    {
        template_.assign(o_.size, 0);
        auto* eth = reinterpret_cast<rte_ether_hdr*>(template_.data());
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        eth->src_addr = mac_;
        eth->dst_addr = peer_mac_;
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        const auto l4 = static_cast<uint16_t>(o_.size - sizeof(rte_ether_hdr) - sizeof(rte_ipv4_hdr));
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(l4 + sizeof(rte_ipv4_hdr)));
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = local_;
        ip->dst_addr = peer_;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        udp->src_port = rte_cpu_to_be_16(o_.src_port);
        udp->dst_port = rte_cpu_to_be_16(o_.dst_port);
        udp->dgram_len = rte_cpu_to_be_16(l4);
        udp->dgram_cksum = 0; // none (RFC 768)
    }

    // Up to kBurst datagrams of the schedule, their mbufs taken at once.
    static constexpr unsigned kBurst = 64;
    void send_burst(Engine& engine, uint64_t now, uint64_t count)
    {
        const auto n = static_cast<unsigned>(std::min<uint64_t>(count, kBurst));
        rte_mbuf* burst[kBurst];
        if (rte_pktmbuf_alloc_bulk(pool_, burst, n) != 0) {
            no_mbuf_ += n;
            sent_ += n; // offered, not sent: counted apart so the schedule holds
            return;
        }
        for (unsigned i = 0; i < n; ++i)
            send_one(engine, burst[i], now);
    }

    void send_one(Engine& engine, rte_mbuf* m, uint64_t now)
    {
        char* data = rte_pktmbuf_append(m, static_cast<uint16_t>(template_.size()));
        std::memcpy(data, template_.data(), template_.size());
        if (o_.flows > 1) {
            auto* udp = reinterpret_cast<rte_udp_hdr*>(data + sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr));
            udp->src_port = rte_cpu_to_be_16(static_cast<uint16_t>(o_.src_port + sent_ % o_.flows));
        }
        const Stamp s{kMagic, sent_, now};
        std::memcpy(data + kHeaders, &s, sizeof(s));
        engine.send(port_, m);
        ++sent_;
    }

    void finish(bool ok)
    {
        if (phase_ == Phase::done) return;
        resolved_ok_ = ok;
        if (ok) sending_seconds_ = o_.seconds;
        phase_ = Phase::done;
        dataplane_.request_stop();
    }

    Dataplane& dataplane_;
    GenOptions o_;
    uint32_t local_;
    uint32_t peer_;
    uint16_t port_;
    uint64_t hz_;
    rte_mempool* pool_ = nullptr;
    rte_ether_addr mac_{};
    rte_ether_addr peer_mac_{};
    std::vector<char> template_;
    Phase phase_ = Phase::resolving;
    uint64_t started_ = rte_rdtsc();
    uint64_t next_arp_ = 0;
    uint64_t send_start_ = 0;
    uint64_t warm_sequence_; // the first sequence number measured: --warmup-ms sends those before
    uint64_t drain_until_ = 0;
    uint64_t sent_ = 0;
    uint64_t no_mbuf_ = 0;
    uint64_t echoed_ = 0;
    uint64_t strays_ = 0;
    uint64_t tx_drops_at_start_ = 0;
    uint64_t tx_dropped_ = 0;
    double sending_seconds_ = 0;
    bool resolved_ok_ = false;
    LatencyHistogram round_trips_;
};

int run(const ToolOptions& options, const GenOptions& gen, const SignalWatcher& signals)
{
    Profile profile = load_profile(options.profile, options.overrides);
    Dataplane dataplane(profile, "ringsock-udp-gen");
    if (dataplane.engine_count() != 1)
        throw ProfileError("ringsock-udp-gen runs one engine: eal.lcores takes one lcore");
    Generator generator(dataplane, gen);
    dataplane.engine(0).add_handler(generator);
    std::atomic<bool> over{false};
    std::string stopped_by = "done";
    std::thread watchdog([&] {
        while (!over.load()) {
            if (auto sig = signals.wait(std::chrono::milliseconds(50))) {
                stopped_by = *sig == SIGINT ? "SIGINT" : "SIGTERM";
                dataplane.request_stop();
                return;
            }
        }
    });
    dataplane.run();
    over.store(true);
    watchdog.join();
    const DataplaneSnapshot counts = dataplane.snapshot();
    const unsigned taken = dataplane.close_port();
    const uint64_t offered = generator.sent() - generator.no_mbuf();
    const uint64_t measured = generator.measured();
    fmt::print(
        "{{\"stopped_by\":\"{}\",\"resolved\":{},\"mode\":\"{}\",\"rate_pps\":{:.0f},\"seconds\":{:.3f},"
        "\"size\":{},\"sent\":{},\"measured\":{},\"no_mbuf\":{},\"tx_packets\":{},\"udp_tx_packets\":{},\"echoed\":{},"
        "\"lost\":{},\"strays\":{},{},\"mbufs_taken_after_close\":{}}}\n",
        stopped_by, generator.resolved() ? "true" : "false", gen.echo ? "echo" : "load", gen.rate,
        generator.sending_seconds(), gen.size, offered, measured, generator.no_mbuf(), counts.port.opackets,
        offered - std::min(offered, generator.tx_dropped()), generator.echoed(),
        gen.echo ? measured - std::min(measured, generator.echoed()) : 0, generator.strays(),
        round_trip_fields(generator.round_trips()), taken);
    std::fflush(stdout);
    if (!generator.resolved() && stopped_by == "done") {
        std::fprintf(stderr, "ringsock-udp-gen: %s never answered ARP\n", gen.peer.c_str());
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    SignalWatcher signals;
    ToolOptions options;
    options.profile = "drivers_config/memif.toml";
    GenOptions gen;
    std::string mode = "echo";
    CLI::App app{"ringsock-udp-gen: UDP at a fixed rate on a DPDK port; round trips of the echoes"};
    app.add_option("--profile,-p", options.profile, "driver profile (TOML) from drivers_config/")
        ->capture_default_str();
    app.add_option("--set,-s", options.overrides, "override a profile key: section.key=value (repeatable)");
    app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error, critical, off");
    app.add_option("--rate", gen.rate, "datagrams per second")->check(CLI::Range(1.0, 1e9));
    app.add_option("--seconds", gen.seconds, "how long to send once the peer is resolved")
        ->check(CLI::Range(0.01, 3600.0));
    app.add_option("--size", gen.size, "Ethernet frame size without FCS")->check(CLI::Range(64u, 1514u));
    app.add_option("--mode", mode, "echo: time the replies; load: send only")->check(CLI::IsMember({"echo", "load"}));
    app.add_option("--local", gen.local, "our IPv4 address (answered in ARP)");
    app.add_option("--peer", gen.peer, "the receiver's IPv4 address");
    app.add_option("--dst-port", gen.dst_port, "UDP destination port");
    app.add_option("--src-port", gen.src_port, "UDP source port (the first of --flows)");
    app.add_option("--flows", gen.flows, "source ports to cycle through")->check(CLI::Range(1u, 4096u));
    app.add_option("--drain-ms", gen.drain_ms, "wait for the last replies")->check(CLI::Range(0u, 10000u));
    app.add_option("--hold-ms", gen.hold_ms, "wait this long after ARP before sending (the receiver's set-up)")
        ->check(CLI::Range(0u, 60000u));
    app.add_option("--warmup-ms", gen.warmup_ms, "send but neither time nor count replies this long")
        ->check(CLI::Range(0u, 60000u));
    app.add_option("--arp-timeout-ms", gen.arp_timeout_ms, "give up when the peer does not answer ARP")
        ->check(CLI::Range(100u, 60000u));
    CLI11_PARSE(app, argc, argv);
    gen.echo = mode == "echo";
    try {
        ipv4_of(gen.local);
        ipv4_of(gen.peer);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "ringsock-udp-gen: %s\n", e.what());
        return 2;
    }
    return run_tool("ringsock-udp-gen", options, [&] { return run(options, gen, signals); });
}
