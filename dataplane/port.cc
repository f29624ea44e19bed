// Port bring-up in the order ethdev demands: info, configure, adjust
// descriptors, queue set-up, MTU and promiscuous mode, start, link. Every
// check against the PMD's capabilities happens before rte_eth_dev_configure,
// so a profile the hardware cannot honour fails with a reason rather than
// with whatever errno the PMD picks.
#include "dataplane/port.hh"

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstring>
#include <sstream>
#include <thread>
#include <vector>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {
namespace {

using OffloadNameFn = const char* (*)(uint64_t);

std::string offload_names(uint64_t flags, OffloadNameFn name_of)
{
    std::string names;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if ((flags & (1ULL << bit)) == 0) continue;
        if (!names.empty()) names += ", ";
        std::string name = name_of(1ULL << bit);
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        names += name;
    }
    return names.empty() ? "none" : names;
}

std::string hex(uint64_t value)
{
    std::ostringstream out;
    out << "0x" << std::hex << value;
    return out.str();
}

std::optional<uint16_t> lookup_port(const PortProfile& profile)
{
    const std::string name = profile.device_name();
    uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0) return id;
    // A PCI address written without its domain ("3b:00.0") is named in full by EAL.
    if (profile.is_pci && rte_eth_dev_get_port_by_name(("0000:" + name).c_str(), &id) == 0) return id;
    return std::nullopt;
}

// The port of `profile`'s device, probing (hot-plugging) the device when no
// ethdev exists for it: EAL probed it at start-up, but closing a port
// releases its ethdev, so a second Port on the same device probes again.
uint16_t find_or_probe_port(const PortProfile& profile)
{
    if (auto id = lookup_port(profile)) return *id;
    const int rc = rte_dev_probe(profile.device.c_str());
    if (auto id = lookup_port(profile)) return *id;
    throw PortError("port.device " + profile.device + ": no such ethdev (" +
                    (rc != 0 ? std::string("probe failed: ") + rte_strerror(-rc) + "; " : std::string()) +
                    (profile.is_pci ? "is the device bound to vfio-pci, or an mlx5 with its kernel driver?"
                                    : "is the vdev driver name right, and are its arguments valid?") +
                    ")");
}

// The offloads to ask for: every supported request, minus the `preferred`
// ones the PMD lacks (warned), failing on `required` ones it lacks.
uint64_t negotiate_offloads(const std::string& port, const char* direction, const std::vector<OffloadRequest>& requests,
                            uint64_t capability, OffloadNameFn name_of)
{
    uint64_t granted = 0;
    for (const auto& request : requests) {
        if (request.policy == OffloadPolicy::off) continue;
        if (capability & request.flag) {
            granted |= request.flag;
            continue;
        }
        if (request.policy == OffloadPolicy::required)
            throw PortError(
                port + ": port.offloads." + direction + "." + request.name +
                " is required but the PMD does not offer it (it offers: " + offload_names(capability, name_of) + ")");
        spdlog::warn("{}: preferred {} offload {} is not offered by the PMD; going without it", port, direction,
                     request.name);
    }
    return granted;
}

void check_rss(const std::string& port, const PortProfile& profile, const rte_eth_dev_info& info)
{
    const RssProfile& rss = profile.rss;
    if (info.flow_type_rss_offloads == 0)
        throw PortError(port + ": port.rx_queues = " + std::to_string(profile.rx_queues) +
                        " needs RSS but the PMD offers none: use 1 queue (ringsock then spreads "
                        "flows across engines in software), or port.rss.mode = \"none\" when the device "
                        "fills each queue itself");
    if (uint64_t missing = rss.hash_fields & ~info.flow_type_rss_offloads; missing != 0)
        throw PortError(port + ": port.rss.fields asks for hash types " + hex(missing) +
                        " the PMD cannot hash on (it supports " + hex(info.flow_type_rss_offloads) +
                        "); drop those fields");
    if (!rss.key.empty() && rss.key.size() != info.hash_key_size)
        throw PortError(port + ": port.rss.key is " + std::to_string(rss.key.size()) +
                        " bytes but the PMD's RSS key is " + std::to_string(info.hash_key_size) + " bytes");
    if (rss.reta_size && *rss.reta_size != info.reta_size)
        throw PortError(port + ": port.rss.reta_size = " + std::to_string(*rss.reta_size) +
                        " but the PMD reports a redirection table of " + std::to_string(info.reta_size) + " entries");
}

void check_limits(const std::string& port, const PortProfile& profile, const rte_eth_dev_info& info)
{
    if (profile.rx_queues > info.max_rx_queues)
        throw PortError(port + ": port.rx_queues = " + std::to_string(profile.rx_queues) + " but the PMD has at most " +
                        std::to_string(info.max_rx_queues));
    if (profile.tx_queues > info.max_tx_queues)
        throw PortError(port + ": port.tx_queues = " + std::to_string(profile.tx_queues) + " but the PMD has at most " +
                        std::to_string(info.max_tx_queues));
    if (profile.mtu < info.min_mtu || profile.mtu > info.max_mtu)
        throw PortError(port + ": port.mtu = " + std::to_string(profile.mtu) + " is outside the PMD's range " +
                        std::to_string(info.min_mtu) + ".." + std::to_string(info.max_mtu));
}

// NICs start with a redirection table that names every RX queue in turn;
// some PMDs (net_null) leave it all zero, so every flow would go to queue 0
// and the engines on the other queues would starve. When a queue is missing
// from the table, it is rewritten entry i -> queue i mod queues. A table
// that already names every queue is left as the NIC (or its owner) set it.
// The PMD's redirection table, or empty. Some PMDs size it only once
// configured, so the size is read here, not at probe.
std::vector<uint16_t> query_reta(uint16_t id)
{
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(id, &info) != 0 || info.reta_size == 0) return {};
    const uint16_t size = info.reta_size;
    std::vector<rte_eth_rss_reta_entry64> groups((size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
    for (auto& g : groups)
        g.mask = ~uint64_t{0};
    if (rte_eth_dev_rss_reta_query(id, groups.data(), size) != 0) return {};
    std::vector<uint16_t> reta(size);
    for (uint16_t e = 0; e < size; ++e)
        reta[e] = groups[e / RTE_ETH_RETA_GROUP_SIZE].reta[e % RTE_ETH_RETA_GROUP_SIZE];
    return reta;
}

void spread_reta(const std::string& port, uint16_t id, uint16_t queues)
{
    const std::vector<uint16_t> reta = queues < 2 ? std::vector<uint16_t>{} : query_reta(id);
    if (reta.empty()) return; // one queue, or the PMD keeps its table to itself
    std::vector<bool> named(queues, false);
    for (uint16_t q : reta)
        if (q < queues) named[q] = true;
    if (std::find(named.begin(), named.end(), false) == named.end()) return;
    const auto size = static_cast<uint16_t>(reta.size());
    std::vector<rte_eth_rss_reta_entry64> groups((size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
    for (uint16_t e = 0; e < size; ++e) {
        groups[e / RTE_ETH_RETA_GROUP_SIZE].mask |= uint64_t{1} << (e % RTE_ETH_RETA_GROUP_SIZE);
        groups[e / RTE_ETH_RETA_GROUP_SIZE].reta[e % RTE_ETH_RETA_GROUP_SIZE] = static_cast<uint16_t>(e % queues);
    }
    if (int rc = rte_eth_dev_rss_reta_update(id, groups.data(), size); rc != 0)
        spdlog::warn("{}: its RSS redirection table leaves RX queues out and cannot be rewritten ({}): their "
                     "engines get no flows",
                     port, rte_strerror(-rc));
    else
        spdlog::info("{}: RSS redirection table named only some RX queues; spread over all {}", port, queues);
}

} // namespace

int Port::socket_of(const PortProfile& profile)
{
    const int socket = rte_eth_dev_socket_id(find_or_probe_port(profile));
    return socket < 0 ? 0 : socket;
}

Port::Port(const PortProfile& profile, const std::function<const Mempool&(uint16_t)>& pool_for_queue)
    : id_(find_or_probe_port(profile)), name_(profile.device_name()), rx_queues_(profile.rx_queues),
      tx_queues_(profile.tx_queues)
{
    // From here on this object holds the device: release it if anything fails.
    try {
        configure_and_start(profile, pool_for_queue);
    } catch (...) {
        if (started_) rte_eth_dev_stop(id_);
        release();
        throw;
    }
}

void Port::configure_and_start(const PortProfile& profile,
                               const std::function<const Mempool&(uint16_t)>& pool_for_queue)
{
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id_, &info); rc != 0)
        throw PortError(name_ + ": cannot read device info: " + rte_strerror(-rc));
    driver_ = info.driver_name != nullptr ? info.driver_name : "?";
    const std::string port = "port " + name_ + " (" + driver_ + ")";

    check_limits(port, profile, info);
    rx_offloads_ =
        negotiate_offloads(port, "rx", profile.rx_offloads, info.rx_offload_capa, rte_eth_dev_rx_offload_name);
    tx_offloads_ =
        negotiate_offloads(port, "tx", profile.tx_offloads, info.tx_offload_capa, rte_eth_dev_tx_offload_name);

    rte_eth_conf conf{};
    conf.rxmode.mtu = profile.mtu;
    conf.rxmode.offloads = rx_offloads_;
    conf.txmode.offloads = tx_offloads_;
    std::vector<uint8_t> rss_key = profile.rss.key;
    if (profile.rx_queues > 1 && profile.rss.mode == "hash") {
        check_rss(port, profile, info);
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = profile.rss.hash_fields;
        conf.rx_adv_conf.rss_conf.rss_key = rss_key.empty() ? nullptr : rss_key.data();
        conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(rss_key.size());
    }
    if (int rc = rte_eth_dev_configure(id_, rx_queues_, tx_queues_, &conf); rc != 0)
        throw PortError(port + ": rte_eth_dev_configure failed: " + rte_strerror(-rc));

    uint16_t rx_descriptors = profile.rx_descriptors;
    uint16_t tx_descriptors = profile.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rx_descriptors, &tx_descriptors); rc != 0)
        throw PortError(port + ": cannot adjust descriptor counts: " + rte_strerror(-rc));
    if (rx_descriptors != profile.rx_descriptors || tx_descriptors != profile.tx_descriptors)
        spdlog::warn("{}: descriptors adjusted to the PMD's limits: rx {} -> {}, tx {} -> {}", port,
                     profile.rx_descriptors, rx_descriptors, profile.tx_descriptors, tx_descriptors);

    const int socket = rte_eth_dev_socket_id(id_);
    for (uint16_t q = 0; q < rx_queues_; ++q) {
        rte_eth_rxconf rxconf = info.default_rxconf;
        rxconf.offloads = rx_offloads_;
        const Mempool& pool = pool_for_queue(q);
        if (int rc = rte_eth_rx_queue_setup(id_, q, rx_descriptors, static_cast<unsigned>(pool.socket()), &rxconf,
                                            pool.get());
            rc != 0)
            throw PortError(port + ": RX queue " + std::to_string(q) + " set-up failed: " + rte_strerror(-rc) +
                            " (is mempool.mbufs larger than the RX descriptors of all queues?)");
    }
    for (uint16_t q = 0; q < tx_queues_; ++q) {
        rte_eth_txconf txconf = info.default_txconf;
        txconf.offloads = tx_offloads_;
        if (int rc = rte_eth_tx_queue_setup(id_, q, tx_descriptors, socket < 0 ? SOCKET_ID_ANY : socket, &txconf);
            rc != 0)
            throw PortError(port + ": TX queue " + std::to_string(q) + " set-up failed: " + rte_strerror(-rc));
    }

    if (profile.promiscuous) {
        if (int rc = rte_eth_promiscuous_enable(id_); rc != 0 && rc != -ENOTSUP)
            throw PortError(port + ": cannot enable promiscuous mode: " + rte_strerror(-rc));
    }

    if (int rc = rte_eth_dev_start(id_); rc != 0)
        throw PortError(port + ": rte_eth_dev_start failed: " + rte_strerror(-rc));
    started_ = true;
    if (rx_queues_ > 1) spread_reta(port, id_, rx_queues_);
    wait_for_link(profile);
    spdlog::info("{}: started, {} RX / {} TX queues, rx offloads [{}], tx offloads [{}]", port, rx_queues_, tx_queues_,
                 offload_names(rx_offloads_, rte_eth_dev_rx_offload_name),
                 offload_names(tx_offloads_, rte_eth_dev_tx_offload_name));
}

std::vector<uint16_t> Port::redirection_table() const
{
    return query_reta(id_);
}

Port::~Port()
{
    if (started_) {
        if (int rc = rte_eth_dev_stop(id_); rc != 0) spdlog::warn("port {}: stop failed: {}", name_, rte_strerror(-rc));
    }
    release();
}

void Port::release() noexcept
{
    // Closing frees the queues (and their mbufs) and the ethdev; removing
    // detaches the driver from the device, so the next Port probes afresh.
    rte_eth_dev_info info{};
    rte_device* device = rte_eth_dev_info_get(id_, &info) == 0 ? info.device : nullptr;
    if (int rc = rte_eth_dev_close(id_); rc != 0) spdlog::warn("port {}: close failed: {}", name_, rte_strerror(-rc));
    if (device != nullptr && rte_dev_is_probed(device)) {
        if (int rc = rte_dev_remove(device); rc != 0)
            spdlog::warn("port {}: cannot detach the device: {}", name_, rte_strerror(-rc));
    }
}

void Port::wait_for_link(const PortProfile& profile)
{
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + milliseconds(profile.link_timeout_ms);
    while (!link_up()) {
        if (steady_clock::now() >= deadline) {
            if (profile.link_required)
                throw PortError("port " + name_ + " (" + driver_ + "): link still down after " +
                                std::to_string(profile.link_timeout_ms) + " ms (port.link_timeout_ms)");
            spdlog::warn("port {}: link still down after {} ms; receiving anyway", name_, profile.link_timeout_ms);
            return;
        }
        std::this_thread::sleep_for(milliseconds(10));
    }
}

bool Port::link_up() const noexcept
{
    rte_eth_link link{};
    return rte_eth_link_get_nowait(id_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

uint32_t Port::link_speed_mbps() const noexcept
{
    rte_eth_link link{};
    return rte_eth_link_get_nowait(id_, &link) == 0 ? link.link_speed : 0;
}

PortStats Port::stats() const noexcept
{
    rte_eth_stats s{};
    if (rte_eth_stats_get(id_, &s) != 0) return {};
    return {s.ipackets, s.opackets, s.ibytes, s.obytes, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf};
}

} // namespace ringsock::dataplane
