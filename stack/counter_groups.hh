// The stack's counters as telemetry groups: the classifier's verdicts and
// drops by reason, and lwIP's input and output on its interface. Publish
// them with dataplane::TelemetryGroup; the functions read only relaxed
// counters, so the telemetry thread may call them while engines run.
#pragma once

#include "dataplane/telemetry.hh"
#include "stack/classifier.hh"
#include "stack/lwip_netif.hh"

namespace ringsock::stack {

// "udp_fastpath", "lwip", then "drop_<reason>" for every DropReason.
dataplane::CounterGroup classifier_counter_group(const Classifier& classifier);

// LwipCounters by name.
dataplane::CounterGroup lwip_counter_group(const LwipInterface& lwip);

} // namespace ringsock::stack
