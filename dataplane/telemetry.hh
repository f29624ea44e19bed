// Publishes dataplane counters through DPDK telemetry under /ringsock/, so
// `dpdk-telemetry.py -f <file-prefix>` reads them from a running process:
//
//   /ringsock/summary        totals, drops by cause, mempool occupancy
//   /ringsock/engines        the lcores that run engines
//   /ringsock/engine,<lcore> one engine's counters
//   /ringsock/queues         the RX queues, as "port:queue"
//   /ringsock/queue,<p>:<q>  one RX queue's counters
//   /ringsock/port           device counters (imissed, rx_nombuf, ...)
//   /ringsock/groups         counter groups other layers published
//   /ringsock/group,<name>   one group's counters (the stack's classifier
//                            drops by reason, lwIP's input and output, ...)
//
// Telemetry callbacks run on DPDK's telemetry thread and carry no context
// pointer, and commands cannot be unregistered; so the commands are
// registered once per process and read whichever publication is live. One
// publication at a time; it is created and destroyed on the main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/snapshot.hh"

namespace ringsock::dataplane {

class TelemetryPublication {
public:
    explicit TelemetryPublication(std::function<DataplaneSnapshot()> snapshot);
    ~TelemetryPublication();
    TelemetryPublication(const TelemetryPublication&) = delete;
    TelemetryPublication& operator=(const TelemetryPublication&) = delete;
};

// Named counters as (name, value) pairs, read on the telemetry thread: the
// function must only read counters that are safe to read from any thread
// (RelaxedCounter).
using CounterGroup = std::function<std::vector<std::pair<std::string, uint64_t>>()>;

// Publishes `group` under /ringsock/group,<name> for as long as it lives.
// Main thread; names are unique while published.
class TelemetryGroup {
public:
    TelemetryGroup(std::string name, CounterGroup group);
    ~TelemetryGroup();
    TelemetryGroup(const TelemetryGroup&) = delete;
    TelemetryGroup& operator=(const TelemetryGroup&) = delete;

private:
    std::string name_;
};

} // namespace ringsock::dataplane
