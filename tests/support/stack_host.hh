// A whole ringsock host for integration tests: a namespace with the Linux
// kernel as the peer, EAL, a port, one engine on the test's thread, the
// classifier and lwIP. The port is net_pcap on a veth's host end (pcap, not
// af_packet, so fragments arrive as sent; no checksum offloads), or net_tap
// whose kernel side is moved into the namespace (the PMD offers IPv4, TCP
// and UDP checksum offloads both ways, so lwIP's offload path runs against
// the kernel). In both, the namespace's interface is eth0 at 198.18.0.1. Tests drive it by polling the engine
// while a child process in the namespace does its part. One per process
// (EAL and lwIP are process-wide); destroy it before returning from main.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dataplane/eal.hh"
#include "dataplane/engine.hh"
#include "dataplane/mempool.hh"
#include "dataplane/port.hh"
#include "dataplane/profile.hh"
#include "dataplane/telemetry.hh"
#include "stack/classifier.hh"
#include "stack/lwip_netif.hh"
#include "tests/support/subprocess.hh"
#include "tests/support/testbed.hh"

namespace ringsock::testing {

class StackHost {
public:
    // Brings everything up; ready() is false (with why()) when the host
    // cannot make a namespace. Throws if EAL, the port or lwIP fail.
    enum class Link { pcap_on_veth, tap_in_namespace };
    explicit StackHost(const std::string& namespace_name, const std::string& program_name,
                       Link link = Link::pcap_on_veth);
    ~StackHost();

    bool ready() const noexcept { return lwip_ != nullptr; }
    std::string why() const { return netns_ ? netns_->why() : why_; }

    // `command` run inside the namespace.
    std::string in_namespace(const std::string& command) const { return netns_->exec(command); }
    // Polls the engine until `child` exits or `limit` passes.
    Finished run_until_exit(Child& child, std::chrono::seconds limit);
    void poll_for(std::chrono::milliseconds span);

    dataplane::Engine& engine() noexcept { return *engine_; }
    stack::Classifier& classifier() noexcept { return *classifier_; }
    stack::LwipInterface& lwip() noexcept { return *lwip_; }
    const stack::MacAddress& mac() const noexcept { return mac_; }
    unsigned mbufs_in_use() const noexcept { return mempools_->in_use(); }
    const dataplane::Port& port() const noexcept { return *port_; }
    rte_mempool* pool() const noexcept { return mempools_->for_socket(0).get(); }
    // Sizes of the IPv4 frames seen so far ("pkt/data/ip-total/frag"), for
    // failure messages.
    const std::string& ipv4_frames_seen() const noexcept;
    // EAL's file prefix, for dpdk-telemetry.py -f.
    const std::string& file_prefix() const noexcept { return eal_->file_prefix(); }

private:
    class NoUdpSockets;
    class FrameSizes;

    std::optional<Namespace> netns_;
    dataplane::Profile profile_;
    std::optional<dataplane::Eal> eal_;
    std::optional<dataplane::MempoolSet> mempools_;
    std::unique_ptr<dataplane::Port> port_;
    std::unique_ptr<dataplane::Engine> engine_;
    std::unique_ptr<stack::Classifier> classifier_;
    std::unique_ptr<stack::LwipInterface> lwip_;
    std::unique_ptr<NoUdpSockets> no_udp_;
    std::unique_ptr<FrameSizes> sizes_;
    std::unique_ptr<stack::ClassifierHandler> classify_;
    std::unique_ptr<stack::LwipPoller> poller_;
    std::optional<dataplane::TelemetryGroup> classifier_group_;
    std::optional<dataplane::TelemetryGroup> lwip_group_;
    stack::MacAddress mac_{};
    std::string why_ = "no testbed";
};

} // namespace ringsock::testing
