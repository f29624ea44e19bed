// Publishes dataplane counters through DPDK telemetry under /ringsock/, so
// `dpdk-telemetry.py -f <file-prefix>` reads them from a running process:
//
//   /ringsock/summary        totals, drops by cause, mempool occupancy
//   /ringsock/engines        the lcores that run engines
//   /ringsock/engine,<lcore> one engine's counters
//   /ringsock/queues         the RX queues, as "port:queue"
//   /ringsock/queue,<p>:<q>  one RX queue's counters
//   /ringsock/port           device counters (imissed, rx_nombuf, ...)
//
// Telemetry callbacks run on DPDK's telemetry thread and carry no context
// pointer, and commands cannot be unregistered; so the commands are
// registered once per process and read whichever publication is live. One
// publication at a time; it is created and destroyed on the main thread.
#pragma once

#include <functional>

#include "dataplane/snapshot.hh"

namespace ringsock::dataplane {

class TelemetryPublication {
public:
    explicit TelemetryPublication(std::function<DataplaneSnapshot()> snapshot);
    ~TelemetryPublication();
    TelemetryPublication(const TelemetryPublication&) = delete;
    TelemetryPublication& operator=(const TelemetryPublication&) = delete;
};

} // namespace ringsock::dataplane
