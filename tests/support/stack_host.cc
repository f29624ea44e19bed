#include "tests/support/stack_host.hh"

#include <algorithm>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "stack/checksum_offload.hh"
#include "stack/counter_groups.hh"
#include "stack/interface_config.hh"

namespace ringsock::testing {

using namespace std::chrono_literals;

// UDP datagrams the fast path would take: no sockets exist in these tests.
class StackHost::NoUdpSockets final : public stack::UdpSink {
public:
    void on_udp(stack::UdpDatagram* d, uint16_t n) override
    {
        for (uint16_t i = 0; i < n; ++i)
            rte_pktmbuf_free(d[i].mbuf);
    }
};

class StackHost::FrameSizes final : public dataplane::BurstHandler {
public:
    uint16_t on_burst(dataplane::Engine&, dataplane::RxQueueRef, rte_mbuf** pkts, uint16_t n) override
    {
        for (uint16_t i = 0; i < n && seen.size() < 4096; ++i) {
            const auto* b = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            if (pkts[i]->data_len >= 34 && b[12] == 0x08 && b[13] == 0x00)
                seen += std::to_string(pkts[i]->pkt_len) + "/" + std::to_string(pkts[i]->data_len) + "/" +
                        std::to_string((b[16] << 8) | b[17]) + "/" + std::to_string((b[20] << 8) | b[21]) + " ";
        }
        return n;
    }
    std::string seen;
};

StackHost::StackHost(const std::string& namespace_name, const std::string& program_name, Link link)
{
    const std::vector<std::string> common = {"eal.lcores=0", "eal.memory_mb=256", "mempool.mbufs=8191",
                                             "port.link_timeout_ms=2000"};
    // The tap's kernel side is named for the namespace and exists only
    // while the port does; it is adopted into the namespace once up.
    const std::string tap = "rst-" + namespace_name;
    if (link == Link::pcap_on_veth) {
        netns_.emplace(namespace_name);
        if (!netns_->ok()) return;
        std::vector<std::string> overrides = common;
        overrides.push_back("port.device=net_pcap0,iface=" + netns_->host_interface());
        profile_ = dataplane::load_profile(source_root() + "/drivers_config/pcap.toml", overrides);
    } else {
        if (!running_as_root()) {
            why_ = "needs root for net_tap and network namespaces";
            return;
        }
        std::vector<std::string> overrides = common;
        overrides.push_back("port.device=net_tap0,iface=" + tap);
        profile_ = dataplane::load_profile(source_root() + "/drivers_config/tap.toml", overrides);
    }
    eal_.emplace(profile_, program_name);
    mempools_.emplace("stack_mbufs", profile_.mempool, std::vector<int>{0});
    const dataplane::Mempool& pool = mempools_->for_socket(0);
    port_ =
        std::make_unique<dataplane::Port>(profile_.port, [&](uint16_t) -> const dataplane::Mempool& { return pool; });
    if (link == Link::tap_in_namespace) {
        netns_.emplace(namespace_name, tap);
        if (!netns_->ok()) return;
    }
    rte_ether_addr mac{};
    rte_eth_macaddr_get(port_->id(), &mac);
    std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), mac_.begin());

    engine_ = std::make_unique<dataplane::Engine>(rte_lcore_id(), profile_.engine);
    engine_->add_rx_queue({port_->id(), 0});
    engine_->add_tx_queue(port_->id(), 0);

    const auto& iface = profile_.interface;
    stack::LwipInterfaceConfig config =
        stack::lwip_interface_config(port_->id(), mac_, iface.ipv4, iface.ipv4_gateway, iface.ipv6, profile_.port.mtu);
    config.tx_checksums = stack::tx_checksums_from_offloads(port_->tx_offloads());
    classifier_ = std::make_unique<stack::Classifier>(stack::classifier_config(config));
    lwip_ = std::make_unique<stack::LwipInterface>(*engine_, pool.get(), config);
    no_udp_ = std::make_unique<NoUdpSockets>();
    sizes_ = std::make_unique<FrameSizes>();
    classify_ = std::make_unique<stack::ClassifierHandler>(*classifier_, *no_udp_, *lwip_);
    poller_ = std::make_unique<stack::LwipPoller>(*lwip_);
    engine_->add_handler(*sizes_);
    engine_->add_handler(*poller_);
    engine_->add_handler(*classify_);
    classifier_group_.emplace("classifier", stack::classifier_counter_group(*classifier_));
    lwip_group_.emplace("lwip", stack::lwip_counter_group(*lwip_));
}

StackHost::~StackHost()
{
    // lwIP first (it may still hold mbufs), then the engine's TX buffers,
    // the port, the pools, EAL and the namespace.
    lwip_group_.reset();
    classifier_group_.reset();
    lwip_.reset();
    engine_.reset();
    port_.reset();
    mempools_.reset();
    eal_.reset();
    netns_.reset();
}

Finished StackHost::run_until_exit(Child& child, std::chrono::seconds limit)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        for (int i = 0; i < 2000; ++i)
            engine_->poll_once();
        Finished done = child.wait(0ms);
        if (done.finished || std::chrono::steady_clock::now() > deadline) return done;
    }
}

void StackHost::poll_for(std::chrono::milliseconds span)
{
    const auto until = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < until)
        engine_->poll_once();
}

const std::string& StackHost::ipv4_frames_seen() const noexcept
{
    return sizes_->seen;
}

} // namespace ringsock::testing
