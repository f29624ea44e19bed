#include "dataplane/telemetry.hh"

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <rte_telemetry.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {
namespace {

// The one live publication. A mutex is fine here: telemetry is a control
// path, served on DPDK's telemetry thread, never on an engine.
struct Registry {
    std::mutex lock;
    std::function<DataplaneSnapshot()> snapshot;
    std::map<std::string, CounterGroup> groups;
};

Registry& registry()
{
    // Forced by DPDK: telemetry callbacks have no user-data argument.
    static Registry instance;
    return instance;
}

std::optional<DataplaneSnapshot> current()
{
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    if (!r.snapshot) return std::nullopt;
    return r.snapshot();
}

void add(rte_tel_data* d, const char* name, uint64_t value)
{
    rte_tel_data_add_dict_u64(d, name, value);
}

void add_engine(rte_tel_data* d, const EngineSnapshot& e)
{
    add(d, "lcore", e.lcore);
    add(d, "rx_packets", e.rx_packets);
    add(d, "rx_bytes", e.rx_bytes);
    add(d, "tx_packets", e.tx_packets);
    add(d, "tx_bytes", e.tx_bytes);
    add(d, "tx_drops", e.tx_drops);
    add(d, "unclaimed", e.unclaimed);
    add(d, "handler_drops", e.handler_drops);
    add(d, "polls", e.polls);
    add(d, "busy_polls", e.busy_polls);
}

void add_port(rte_tel_data* d, const PortStats& p)
{
    add(d, "ipackets", p.ipackets);
    add(d, "opackets", p.opackets);
    add(d, "ibytes", p.ibytes);
    add(d, "obytes", p.obytes);
    add(d, "imissed", p.imissed);
    add(d, "ierrors", p.ierrors);
    add(d, "oerrors", p.oerrors);
    add(d, "rx_nombuf", p.rx_nombuf);
}

int summary(const char*, const char*, rte_tel_data* d)
{
    auto s = current();
    if (!s) return -ENODEV;
    rte_tel_data_start_dict(d);
    add(d, "engines", s->engines.size());
    add(d, "rx_packets", s->rx_packets());
    add(d, "rx_bytes", s->rx_bytes());
    add(d, "rx_drops", s->rx_drops());
    add(d, "imissed", s->port.imissed);
    add(d, "rx_nombuf", s->port.rx_nombuf);
    add(d, "ierrors", s->port.ierrors);
    uint64_t unclaimed = 0, handler_drops = 0, tx_packets = 0, tx_drops = 0;
    for (const auto& e : s->engines) {
        unclaimed += e.unclaimed;
        handler_drops += e.handler_drops;
        tx_packets += e.tx_packets;
        tx_drops += e.tx_drops;
    }
    add(d, "unclaimed", unclaimed);
    add(d, "handler_drops", handler_drops);
    add(d, "tx_packets", tx_packets);
    add(d, "tx_drops", tx_drops);
    add(d, "mbufs_capacity", s->mbufs_capacity);
    add(d, "mbufs_in_use", s->mbufs_in_use);
    return 0;
}

int engines(const char*, const char*, rte_tel_data* d)
{
    auto s = current();
    if (!s) return -ENODEV;
    rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
    for (const auto& e : s->engines)
        rte_tel_data_add_array_u64(d, e.lcore);
    return 0;
}

int engine(const char*, const char* params, rte_tel_data* d)
{
    if (params == nullptr || *params == '\0') return -EINVAL;
    char* end = nullptr;
    const unsigned long lcore = std::strtoul(params, &end, 10);
    if (*end != '\0') return -EINVAL;
    auto s = current();
    if (!s) return -ENODEV;
    for (const auto& e : s->engines) {
        if (e.lcore != lcore) continue;
        rte_tel_data_start_dict(d);
        add_engine(d, e);
        return 0;
    }
    return -EINVAL;
}

std::string queue_name(const QueueSnapshot& q)
{
    return std::to_string(q.port) + ":" + std::to_string(q.queue);
}

int queues(const char*, const char*, rte_tel_data* d)
{
    auto s = current();
    if (!s) return -ENODEV;
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    for (const auto& q : s->queues)
        rte_tel_data_add_array_string(d, queue_name(q).c_str());
    return 0;
}

int queue(const char*, const char* params, rte_tel_data* d)
{
    if (params == nullptr) return -EINVAL;
    auto s = current();
    if (!s) return -ENODEV;
    for (const auto& q : s->queues) {
        if (queue_name(q) != params) continue;
        rte_tel_data_start_dict(d);
        add(d, "port", q.port);
        add(d, "queue", q.queue);
        add(d, "lcore", q.lcore);
        add(d, "rx_packets", q.rx_packets);
        add(d, "rx_bytes", q.rx_bytes);
        add(d, "rx_bursts", q.rx_bursts);
        return 0;
    }
    return -EINVAL;
}

int port(const char*, const char*, rte_tel_data* d)
{
    auto s = current();
    if (!s) return -ENODEV;
    rte_tel_data_start_dict(d);
    add_port(d, s->port);
    return 0;
}

int groups(const char*, const char*, rte_tel_data* d)
{
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    for (const auto& [name, group] : r.groups)
        rte_tel_data_add_array_string(d, name.c_str());
    return 0;
}

int group(const char*, const char* params, rte_tel_data* d)
{
    if (params == nullptr) return -EINVAL;
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    const auto found = r.groups.find(params);
    if (found == r.groups.end()) return -EINVAL;
    rte_tel_data_start_dict(d);
    for (const auto& [name, value] : found->second())
        add(d, name.c_str(), value);
    return 0;
}

void register_commands()
{
    static std::once_flag once; // DPDK cannot unregister a command: register for the process
    std::call_once(once, [] {
        struct Command {
            const char* name;
            telemetry_cb callback;
            const char* help;
        };
        const Command commands[] = {
            {"/ringsock/summary", summary, "Totals, drops by cause and mbuf occupancy. No parameters."},
            {"/ringsock/engines", engines, "Lcores running engines. No parameters."},
            {"/ringsock/engine", engine, "One engine's counters. Parameter: lcore id."},
            {"/ringsock/queues", queues, "RX queues as port:queue. No parameters."},
            {"/ringsock/queue", queue, "One RX queue's counters. Parameter: port:queue."},
            {"/ringsock/port", port, "Device counters of the port. No parameters."},
            {"/ringsock/groups", groups, "Counter groups published by other layers. No parameters."},
            {"/ringsock/group", group, "One counter group. Parameter: its name."},
        };
        for (const auto& c : commands)
            if (rte_telemetry_register_cmd(c.name, c.callback, c.help) != 0)
                spdlog::warn("telemetry: cannot register {}", c.name);
    });
}

} // namespace

TelemetryPublication::TelemetryPublication(std::function<DataplaneSnapshot()> snapshot)
{
    register_commands();
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    r.snapshot = std::move(snapshot);
}

TelemetryPublication::~TelemetryPublication()
{
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    r.snapshot = nullptr;
}

TelemetryGroup::TelemetryGroup(std::string name, CounterGroup group) : name_(std::move(name))
{
    register_commands();
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    r.groups[name_] = std::move(group);
}

TelemetryGroup::~TelemetryGroup()
{
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    r.groups.erase(name_);
}

} // namespace ringsock::dataplane
