// ringsock-tcp-sink: a TCP discard server on the stack, for measuring TCP
// receive (scripts/bench/tcp-stream). Brings up the dataplane from a
// profile, runs the classifier on every engine and lwIP on the first
// (other engines hand lwIP's frames over a ring), listens on --port and
// counts what arrives, printing a live line every interval and a summary.
// Stops after --duration or at SIGINT/SIGTERM; exit 0, 2 for a bad profile
// or option, 1 if start-up failed.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/control_loop.hh"
#include "dataplane/dataplane.hh"
#include "dataplane/signals.hh"
#include "dataplane/tool_main.hh"
#include "stack/checksum_offload.hh"
#include "stack/classifier.hh"
#include "stack/interface_config.hh"
#include "stack/lwip_handoff.hh"
#include "stack/lwip_netif.hh"
#include "stack/tools/tcp_discard.hh"

namespace {

using namespace ringsock;
using Clock = std::chrono::steady_clock;

// No UDP sockets exist in this program: fast-path datagrams are dropped.
class NoUdpSockets final : public stack::UdpSink {
public:
    void on_udp(stack::UdpDatagram* d, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i)
            rte_pktmbuf_free(d[i].mbuf);
    }
};

struct Options : dataplane::ToolOptions {
    uint16_t port = 5001;
};

int run(const Options& options, const dataplane::SignalWatcher& signals)
{
    const dataplane::Profile profile = dataplane::load_profile(options.profile, options.overrides);
    dataplane::Dataplane dp(profile, "ringsock-tcp-sink");

    rte_ether_addr ether{};
    rte_eth_macaddr_get(dp.port().id(), &ether);
    stack::MacAddress mac{};
    std::copy(std::begin(ether.addr_bytes), std::end(ether.addr_bytes), mac.begin());
    const auto& iface = profile.interface;
    stack::LwipInterfaceConfig config =
        stack::lwip_interface_config(dp.port().id(), mac, iface.ipv4, iface.ipv4_gateway, iface.ipv6, profile.port.mtu);
    config.tx_checksums = stack::tx_checksums_from_offloads(dp.port().tx_offloads());

    // lwIP lives on engine 0; its objects are made here, before any engine
    // runs, and used afterwards only by engine 0.
    NoUdpSockets no_udp;
    stack::LwipInterface lwip(dp.engine(0), dp.mempools().for_socket(0).get(), config);
    stack::LwipPoller poller(lwip);
    stack::LwipHandoffRing handoff("rs_tcp_sink_handoff", 1024, 0);
    lwip.attach_handoff(handoff.get());
    std::vector<std::unique_ptr<stack::Classifier>> classifiers;
    std::vector<std::unique_ptr<stack::LwipHandoff>> handoffs;
    std::vector<std::unique_ptr<stack::ClassifierHandler>> handlers;
    for (std::size_t i = 0; i < dp.engine_count(); ++i) {
        classifiers.push_back(std::make_unique<stack::Classifier>(stack::classifier_config(config)));
        stack::LwipSink* to_lwip = &lwip;
        if (i != 0) {
            handoffs.push_back(std::make_unique<stack::LwipHandoff>(handoff));
            to_lwip = handoffs.back().get();
        }
        handlers.push_back(std::make_unique<stack::ClassifierHandler>(*classifiers.back(), no_udp, *to_lwip));
        if (i == 0) dp.engine(0).add_handler(poller);
        dp.engine(i).add_handler(*handlers.back());
    }
    stack::TcpDiscardServer discard(options.port);

    uint64_t previous = 0;
    double previous_time = 0;
    dataplane::ControlLoop control(
        dp, signals, options.duration_s, std::chrono::milliseconds(options.interval_ms), [&](double elapsed) {
            const uint64_t bytes = discard.bytes();
            const double mbps = static_cast<double>(bytes - previous) * 8 / 1e6 / (elapsed - previous_time);
            if (options.json)
                fmt::print("{{\"t\":{:.3f},\"mbps\":{:.1f},\"bytes\":{},\"connections\":{}}}\n", elapsed, mbps, bytes,
                           discard.connections());
            else
                fmt::print("[{:7.1f}s] {:9.1f} Mbit/s  {} bytes  {} connections\n", elapsed, mbps, bytes,
                           discard.connections());
            std::fflush(stdout);
            previous = bytes;
            previous_time = elapsed;
        });
    dp.run();
    control.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - control.start()).count();
    const char* stopped_by = control.stopped_by().c_str();
    const uint64_t bytes = discard.bytes();
    const uint64_t connections = discard.connections();
    const uint64_t closed = discard.closed();
    if (options.json)
        fmt::print("{{\"summary\":true,\"stopped_by\":\"{}\",\"seconds\":{:.3f},\"bytes\":{},\"connections\":{},"
                   "\"closed\":{}}}\n",
                   stopped_by, seconds, bytes, connections, closed);
    else
        fmt::print("summary: {} bytes over {} connection(s) ({} closed) in {:.2f} s ({})\n", bytes, connections, closed,
                   seconds, stopped_by);
    std::fflush(stdout);
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    dataplane::SignalWatcher signals; // before any thread starts

    Options options;
    options.profile = "drivers_config/af_packet.toml";
    options.log_level = "warn";
    CLI::App app{"ringsock-tcp-sink: a TCP discard server on ringsock's stack"};
    options.add_to(app);
    app.add_option("--port", options.port, "TCP port to listen on")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    return dataplane::run_tool("ringsock-tcp-sink", options, [&] { return run(options, signals); });
}
