// ringsock-sink: receive on one port and count, printing a live line every
// interval and a summary at the end. At this stage it counts frames at L2
// (every frame the engines receive is taken and freed), which makes it the
// ceiling any later layer is measured against.
//
// Stops after --duration seconds, or at SIGINT/SIGTERM; either way it
// drains, closes the port, checks every mbuf came back and exits 0 (3 if
// mbufs leaked, 2 for a bad profile or command line, 1 for start-up errors).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "dataplane/control_loop.hh"
#include "dataplane/dataplane.hh"
#include "dataplane/signals.hh"
#include "dataplane/tool_main.hh"

namespace {

using namespace ringsock::dataplane;
using Clock = std::chrono::steady_clock;

// Takes every frame and frees it: an L2 frame counter. The engine has
// already counted packets and bytes.
class FreeingSink final : public BurstHandler {
public:
    uint16_t on_burst(Engine&, RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
};

struct Rates {
    double seconds;
    double pps;
    double mbps;
    double drops_per_s;
};

Rates rates_between(const DataplaneSnapshot& before, const DataplaneSnapshot& after, double seconds)
{
    if (seconds <= 0) return {0, 0, 0, 0};
    return {seconds, static_cast<double>(after.rx_packets() - before.rx_packets()) / seconds,
            static_cast<double>(after.rx_bytes() - before.rx_bytes()) * 8 / seconds / 1e6,
            static_cast<double>(after.rx_drops() - before.rx_drops()) / seconds};
}

void print_live(const ToolOptions& options, double elapsed, const Rates& r, const DataplaneSnapshot& s)
{
    if (options.json)
        fmt::print("{{\"t\":{:.3f},\"rx_pps\":{:.0f},\"rx_mbps\":{:.1f},\"drops_per_s\":{:.0f},\"rx_packets\":{},"
                   "\"imissed\":{},\"rx_nombuf\":{},\"ierrors\":{},\"mbufs_in_use\":{}}}\n",
                   elapsed, r.pps, r.mbps, r.drops_per_s, s.rx_packets(), s.port.imissed, s.port.rx_nombuf,
                   s.port.ierrors, s.mbufs_in_use);
    else
        fmt::print("[{:7.1f}s] rx {:8.3f} Mpps {:9.1f} Mbit/s  drops {:.0f}/s (imissed {}, nombuf {}, errors {})\n",
                   elapsed, r.pps / 1e6, r.mbps, r.drops_per_s, s.port.imissed, s.port.rx_nombuf, s.port.ierrors);
    std::fflush(stdout);
}

void print_summary(const ToolOptions& options, const Rates& r, const DataplaneSnapshot& s, unsigned mbufs_taken,
                   const char* stopped_by)
{
    uint64_t unclaimed = 0, handler_drops = 0;
    for (const auto& e : s.engines) {
        unclaimed += e.unclaimed;
        handler_drops += e.handler_drops;
    }
    if (options.json) {
        fmt::print("{{\"summary\":true,\"stopped_by\":\"{}\",\"seconds\":{:.3f},\"rx_packets\":{},\"rx_bytes\":{},"
                   "\"rx_pps\":{:.0f},\"rx_mbps\":{:.1f},\"rx_drops\":{},\"imissed\":{},\"rx_nombuf\":{},"
                   "\"ierrors\":{},\"unclaimed\":{},\"handler_drops\":{},\"engines\":{},"
                   "\"mbufs_capacity\":{},\"mbufs_taken_after_close\":{}}}\n",
                   stopped_by, r.seconds, s.rx_packets(), s.rx_bytes(), r.pps, r.mbps, s.rx_drops(), s.port.imissed,
                   s.port.rx_nombuf, s.port.ierrors, unclaimed, handler_drops, s.engines.size(), s.mbufs_capacity,
                   mbufs_taken);
    } else {
        fmt::print("summary: {} frames, {} bytes in {:.2f} s ({}): {:.3f} Mpps, {:.1f} Mbit/s\n", s.rx_packets(),
                   s.rx_bytes(), r.seconds, stopped_by, r.pps / 1e6, r.mbps);
        fmt::print("  drops {}: imissed {}, rx_nombuf {}, ierrors {}, unclaimed {}, handler {}\n", s.rx_drops(),
                   s.port.imissed, s.port.rx_nombuf, s.port.ierrors, unclaimed, handler_drops);
        for (const auto& q : s.queues)
            fmt::print("  queue {}:{} on lcore {}: {} frames, {:.1f} per burst\n", q.port, q.queue, q.lcore,
                       q.rx_packets, q.rx_bursts ? static_cast<double>(q.rx_packets) / q.rx_bursts : 0.0);
        fmt::print("  mbufs still taken after the port closed: {} of {}\n", mbufs_taken, s.mbufs_capacity);
    }
    std::fflush(stdout);
}

int run(const ToolOptions& options, const SignalWatcher& signals)
{
    Profile profile = load_profile(options.profile, options.overrides);
    Dataplane dataplane(profile, "ringsock-sink");
    FreeingSink sink;
    for (std::size_t i = 0; i < dataplane.engine_count(); ++i)
        dataplane.engine(i).add_handler(sink);

    DataplaneSnapshot previous = dataplane.snapshot();
    double previous_time = 0;
    const DataplaneSnapshot at_start = previous;
    ControlLoop control(
        dataplane, signals, options.duration_s, std::chrono::milliseconds(options.interval_ms), [&](double elapsed) {
            DataplaneSnapshot current = dataplane.snapshot();
            print_live(options, elapsed, rates_between(previous, current, elapsed - previous_time), current);
            previous = std::move(current);
            previous_time = elapsed;
        });
    dataplane.run();
    control.join();
    const auto elapsed = std::chrono::duration<double>(Clock::now() - control.start()).count();
    const DataplaneSnapshot final_counts = dataplane.snapshot();
    const unsigned taken = dataplane.close_port();
    print_summary(options, rates_between(at_start, final_counts, elapsed), final_counts, taken,
                  control.stopped_by().c_str());
    return taken == 0 ? 0 : 3;
}

} // namespace

int main(int argc, char** argv)
{
    // Before anything starts a thread, so every thread inherits the mask.
    SignalWatcher signals;

    ToolOptions options;
    options.profile = "drivers_config/null.toml";
    CLI::App app{"ringsock-sink: receive on a DPDK port and count frames at L2"};
    options.add_to(app);
    CLI11_PARSE(app, argc, argv);
    return run_tool("ringsock-sink", options, [&] { return run(options, signals); });
}
