#define RINGSOCK_NO_BSD_NAMES
#include "api/runtime.hh"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "api/apc_queue.hh"
#include "api/completion_port.hh"
#include "api/engine_thread.hh"
#include "api/event.hh"
#include "api/process_state.hh"
#include "api/wait_objects.hh"
#include "api/wake_hub.hh"
#include "dataplane/profile.hh"
#include "stack/checksum_offload.hh"
#include "stack/counter_groups.hh"
#include "stack/lwip_netif.hh"
#include "stack/lwip_udp_reassembly.hh"
#include "stack/udp_frame.hh"

namespace ringsock::api {

// One engine's start-up and shutdown on its own lcore: lwIP must be made
// and destroyed on the lcore that runs it.
struct Runtime::Lane {
    Runtime* runtime;
    unsigned index;
    dataplane::Engine* engine;
    std::unique_ptr<stack::LwipInterface> lwip;
    std::unique_ptr<stack::LwipPoller> poller;
    std::unique_ptr<stack::LwipUdpReassembly> reassembly; // lwIP's engine: reassembled datagrams to sockets
    std::unique_ptr<stack::ClassifierHandler> classify;
};

namespace {

std::unique_ptr<Runtime>& runtime_holder()
{
    // Lives until exit: EAL cannot start twice in a process.
    static std::unique_ptr<Runtime> holder;
    return holder;
}

std::vector<std::string> split_overrides(const char* text)
{
    std::vector<std::string> out;
    if (text == nullptr) return out;
    std::string all(text);
    std::size_t start = 0;
    while (start <= all.size()) {
        const std::size_t end = all.find(';', start);
        std::string item = all.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!item.empty()) out.push_back(item);
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

dataplane::CounterGroup socket_counter_group(const SocketEngine& engine)
{
    return [&engine] {
        const SocketEngineCounters& c = engine.counters();
        return std::vector<std::pair<std::string, uint64_t>>{
            {"delivered", c.delivered.get()},
            {"queued", c.queued.get()},
            {"rcvbuf_drops", c.rcvbuf_drops.get()},
            {"pool_short_drops", c.pool_short_drops.get()},
            {"no_socket", c.no_socket.get()},
            {"filtered", c.filtered.get()},
            {"completions", c.completions.get()},
            {"sent", c.sent.get()},
            {"sent_fast", c.sent_fast.get()},
            {"send_failures", c.send_failures.get()},
            {"handed_over", c.handed_over.get()},
            {"handover_full", c.handover_full.get()},
            {"rss_spread", c.rss_spread.get()},
            {"fanned_out", c.fanned_out.get()},
            {"fanout_no_mbuf", c.fanout_no_mbuf.get()},
            {"reassembled", c.reassembled.get()},
            {"reassembled_full", c.reassembled_full.get()},
            {"stream_states", c.stream_states_made.get() - c.stream_states_freed.get()},
            {"tcp_accepted", c.tcp_accepted.get()},
            {"tcp_connected", c.tcp_connected.get()},
            {"tcp_failed", c.tcp_failed.get()},
            {"tcp_refused", c.tcp_refused.get()},
        };
    };
}

// Free mbufs a pool's ring must keep before sockets may queue more than a
// few datagrams each: a refill of every RX descriptor of the port plus a
// burst, so the port, ARP and lwIP go on receiving with a socket nobody
// reads. At most a quarter of the pool, so a small pool still queues.
unsigned socket_queue_floor(const dataplane::Profile& profile, const rte_mempool& pool)
{
    const unsigned refill = profile.port.rx_descriptors * profile.port.rx_queues + dataplane::EngineProfile::kMaxBurst;
    return std::min(refill, pool.size / 4);
}

// The Toeplitz key the port hashes with: the profile's, else the one the
// PMD reports, else the specification's default (what most NICs use).
std::vector<uint8_t> rss_key_of(const dataplane::Port& port, const dataplane::Profile& profile)
{
    if (profile.port.rss.key.size() >= stack::SoftwareRss::kKeyLen) return profile.port.rss.key;
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port.id(), &info) == 0 && info.hash_key_size >= stack::SoftwareRss::kKeyLen) {
        std::vector<uint8_t> key(info.hash_key_size);
        rte_eth_rss_conf conf{};
        conf.rss_key = key.data();
        conf.rss_key_len = info.hash_key_size;
        if (rte_eth_dev_rss_hash_conf_get(port.id(), &conf) == 0) return key;
    }
    return {stack::SoftwareRss::kDefaultKey.begin(), stack::SoftwareRss::kDefaultKey.end()};
}

// The port's redirection table (queue per entry), or a NIC's default
// (entry i to queue i mod queues) when the PMD will not say.
std::vector<uint16_t> reta_of(const dataplane::Port& port)
{
    const std::vector<uint16_t> known = port.redirection_table();
    const std::size_t size = known.empty() ? 128 : known.size();
    std::vector<uint16_t> reta(rte_align32pow2(static_cast<uint32_t>(size)));
    for (std::size_t i = 0; i < reta.size(); ++i) {
        const std::size_t e = i % size;
        reta[i] = known.empty() ? static_cast<uint16_t>(e % port.rx_queues()) : known[e];
    }
    return reta;
}

} // namespace

StartupConfig& startup_config()
{
    static StartupConfig config;
    return config;
}

std::string& startup_error()
{
    static std::string error;
    return error;
}

Runtime* runtime() noexcept
{
    return runtime_holder().get();
}

int start_runtime()
{
    if (runtime_holder()) return 0;
    StartupConfig config = startup_config();
    if (config.profile_path.empty()) {
        const char* path = std::getenv("RINGSOCK_PROFILE");
        if (path == nullptr || *path == '\0') {
            startup_error() = "no profile: call ringsock_configure() or set RINGSOCK_PROFILE before WSAStartup";
            return WSASYSNOTREADY;
        }
        config.profile_path = path;
        config.overrides = split_overrides(std::getenv("RINGSOCK_SET"));
    }
    try {
        runtime_holder() = std::make_unique<Runtime>(config);
        // At exit, before the statics the runtime registered with (the
        // telemetry registry, DPDK's): an atexit handler registered now
        // runs before anything constructed earlier is destroyed.
        std::atexit([] { runtime_holder().reset(); });
    } catch (const std::exception& e) {
        startup_error() = e.what();
        return WSASYSNOTREADY;
    }
    startup_error().clear();
    return 0;
}

void cleanup_runtime()
{
    if (Runtime* rt = runtime()) {
        // Pollers first: they may be using the sockets about to close.
        rt->end_pollers();
        rt->close_all_sockets();
    }
}

Runtime::Runtime(const StartupConfig& config) : sockets_(new std::atomic<Socket*>[kMaxSockets]), bound_(65536)
{
    const dataplane::Profile profile = dataplane::load_profile(config.profile_path, config.overrides);
    dataplane_.emplace(profile, "ringsock", dataplane::EngineLcores::workers);
    for (uint32_t i = 0; i < kMaxSockets; ++i)
        sockets_[i].store(nullptr, std::memory_order_relaxed);

    const dataplane::Port& port = dataplane_->port();
    rte_ether_addr mac{};
    rte_eth_macaddr_get(port.id(), &mac);
    if (!profile.interface.mac.empty()) {
        // The profile's MAC (checked unicast by the loader) is the one peers
        // address: testpmd's --eth-peer, a VM's configured MAC.
        rte_ether_addr wanted{};
        if (rte_ether_unformat_addr(profile.interface.mac.c_str(), &wanted) == 0) {
            if (rte_eth_dev_default_mac_addr_set(port.id(), &wanted) != 0 && !profile.port.promiscuous)
                spdlog::warn("port {} cannot take MAC {} and is not promiscuous: frames for it may not arrive",
                             port.name(), profile.interface.mac);
            mac = wanted;
        }
    }
    stack::MacAddress our_mac{};
    std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), our_mac.begin());
    const auto& iface = profile.interface;
    interface_ =
        stack::lwip_interface_config(port.id(), our_mac, iface.ipv4, iface.ipv4_gateway, iface.ipv6, profile.port.mtu);
    interface_.tx_checksums = stack::tx_checksums_from_offloads(port.tx_offloads());
    ipv6_link_local_ = stack::ipv6_link_local(interface_.mac);
    tx_queues_ = port.tx_queues();
    register_application_threads_ = profile.eal.register_application_threads;
    offload_ipv4_ = (port.tx_offloads() & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
    offload_udp_ = (port.tx_offloads() & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
    {
        rte_mempool* pool = dataplane_->mempools().for_socket(0).get();
        const uint64_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
        const auto fits = [&](uint64_t ip_and_udp, uint64_t frame_headers) {
            const uint64_t by_mtu = interface_.mtu > ip_and_udp ? interface_.mtu - ip_and_udp : 0u;
            return std::min<uint64_t>(by_mtu, room > frame_headers ? room - frame_headers : 0);
        };
        fast_max_payload4_ = fits(20 + 8, stack::kUdp4FrameHeaders);
        fast_max_payload6_ = fits(40 + 8, stack::kUdp6FrameHeaders);
    }
    const stack::ClassifierConfig classifier_config = stack::classifier_config(interface_);

    const unsigned n = static_cast<unsigned>(dataplane_->engine_count());
    if (n > 1) handoff_ring_.emplace("rs_api_lwip", rte_align32pow2(2 * 64 * n), SOCKET_ID_ANY);
    // Fewer queues than engines: the NIC cannot spread flows over every
    // engine, so the engines with a queue do it in software. Spreading
    // covers 64 engines (a bit each in a port's mask).
    if (n > 1 && port.rx_queues() < n) rss_.emplace(rss_key_of(port, profile));
    // Queues enough for the NIC to spread flows: active opens pick ports
    // whose replies it sends to a queue of lwIP's engine.
    if (n > 1 && port.rx_queues() > 1 && profile.port.rss.mode == "hash") {
        std::vector<uint16_t> home;
        for (const auto& q : dataplane_->engine(0).rx_queues())
            home.push_back(q.queue);
        tcp_affinity_.emplace(rss_key_of(port, profile), reta_of(port), home);
    }
    for (unsigned i = 0; i < n; ++i) {
        classifiers_.push_back(std::make_unique<stack::Classifier>(classifier_config));
        if (i > 0) handoffs_.push_back(std::make_unique<stack::LwipHandoff>(*handoff_ring_));
        engines_.push_back(
            std::make_unique<SocketEngine>(*this, i, dataplane_->engine(i), *classifiers_.back(), nullptr));
        if (rss_) engines_.back()->set_software_rss(&*rss_);
        const auto socket = static_cast<int>(rte_lcore_to_socket_id(dataplane_->engine(i).lcore()));
        tx_pools_.push_back(dataplane_->mempools().for_socket(socket).get());
        engines_.back()->set_rx_pool(tx_pools_.back(), socket_queue_floor(profile, *tx_pools_.back()));
        auto lane = std::make_unique<Lane>();
        lane->runtime = this;
        lane->index = i;
        lane->engine = &dataplane_->engine(i);
        lanes_.push_back(std::move(lane));
    }
    for (auto& lane : lanes_) {
        if (int rc = rte_eal_remote_launch(lane_main, lane.get(), lane->engine->lcore()); rc != 0) {
            stop_.store(true);
            rte_eal_mp_wait_lcore();
            throw std::runtime_error("cannot launch the engine on lcore " + std::to_string(lane->engine->lcore()));
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (lanes_ready_.load(std::memory_order_acquire) < n && !lane_failed_.load(std::memory_order_acquire)) {
        if (std::chrono::steady_clock::now() > deadline) lane_failed_.store(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (lane_failed_.load()) {
        stop_.store(true);
        rte_eal_mp_wait_lcore();
        throw std::runtime_error("the engines did not start: " + lane_error_);
    }
    // /ringsock/group,classifier<i> and /ringsock/group,sockets<i>.
    for (unsigned i = 0; i < n; ++i) {
        telemetry_.push_back(std::make_unique<dataplane::TelemetryGroup>(
            "classifier" + std::to_string(i), stack::classifier_counter_group(*classifiers_[i])));
        telemetry_.push_back(std::make_unique<dataplane::TelemetryGroup>("sockets" + std::to_string(i),
                                                                         socket_counter_group(*engines_[i])));
    }
    // /ringsock/group,lwip: what lwIP's interface on engine 0 took in and
    // turned away (no pbuf, rejected by lwIP's input).
    if (lanes_.front()->lwip)
        telemetry_.push_back(
            std::make_unique<dataplane::TelemetryGroup>("lwip", stack::lwip_counter_group(*lanes_.front()->lwip)));
    // /ringsock/group,api: requests posted and not yet completed (one that
    // never comes back is a lost completion) and the active opens' ports.
    telemetry_.push_back(std::make_unique<dataplane::TelemetryGroup>("api", [this] {
        return std::vector<std::pair<std::string, uint64_t>>{
            {"requests_out", requests_.taken()},
            {"requests_capacity", requests_.size()},
            {"affine_ports", affine_ports()},
            {"affinity_fallbacks", affinity_fallbacks()},
        };
    }));
    spdlog::info("ringsock: {} engine(s) on {} ({}), IPv4 {}", n, port.name(), dataplane_->port().name(),
                 profile.interface.ipv4);
}

Runtime::~Runtime()
{
    telemetry_.clear();
    stop_.store(true, std::memory_order_release);
    rte_eal_mp_wait_lcore();
    engines_.clear();
    handoffs_.clear();
    handoff_ring_.reset();
    classifiers_.clear();
    for (uint32_t i = 0; i < next_slot_; ++i)
        delete sockets_[i].load();
    dataplane_.reset();
}

int Runtime::lane_main(void* arg)
{
    auto& lane = *static_cast<Lane*>(arg);
    Runtime& rt = *lane.runtime;
    current_engine = static_cast<int>(lane.index);
    SocketEngine& sockets = *rt.engines_[lane.index];
    stack::Classifier& classifier = *rt.classifiers_[lane.index];
    try {
        lane.engine->add_handler(sockets);
        if (lane.index == 0) {
            const auto socket = static_cast<int>(rte_lcore_to_socket_id(lane.engine->lcore()));
            lane.lwip = std::make_unique<stack::LwipInterface>(
                *lane.engine, rt.dataplane_->mempools().for_socket(socket).get(), rt.interface_);
            if (rt.handoff_ring_) lane.lwip->attach_handoff(rt.handoff_ring_->get());
            sockets.set_lwip(lane.lwip.get());
            lane.reassembly = std::make_unique<stack::LwipUdpReassembly>(
                sockets, rt.dataplane_->mempools().for_socket(socket).get(), rt.interface_.mac);
            lane.poller = std::make_unique<stack::LwipPoller>(*lane.lwip);
            lane.engine->add_handler(*lane.poller);
            lane.classify = std::make_unique<stack::ClassifierHandler>(classifier, sockets, *lane.lwip);
        } else {
            lane.classify =
                std::make_unique<stack::ClassifierHandler>(classifier, sockets, *rt.handoffs_[lane.index - 1]);
        }
        lane.engine->add_handler(*lane.classify);
        lane.engine->add_handler(sockets.staged_pusher());
    } catch (const std::exception& e) {
        rt.lane_error_ = e.what();
        rt.lane_failed_.store(true, std::memory_order_release);
        return -1;
    }
    rt.lanes_ready_.fetch_add(1, std::memory_order_acq_rel);
    lane.engine->run(rt.stop_);
    sockets.abort_everything();
    sockets.set_lwip(nullptr);
    lane.classify.reset();
    lane.poller.reset();
    lane.reassembly.reset();
    lane.lwip.reset();
    current_engine = -1;
    return 0;
}

bool Runtime::on_an_engine() const noexcept
{
    return current_engine >= 0;
}

WakeHub& Runtime::hub() noexcept
{
    return wait_objects().hub();
}

Socket* Runtime::open_socket(uint8_t family, int type, bool overlapped)
{
    std::lock_guard lock(control_);
    uint32_t slot = 0;
    Socket* s = nullptr;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
        s = sockets_[slot].load(std::memory_order_relaxed);
    } else {
        if (next_slot_ == kMaxSockets) return nullptr;
        slot = next_slot_++;
        s = new Socket;
        s->index = slot;
        sockets_[slot].store(s, std::memory_order_release);
    }
    s->family = family;
    s->type = type;
    s->overlapped_capable = overlapped;
    s->nonblocking.store(false);
    s->rcvtimeo_ms.store(0);
    s->multicast_ttl.store(1);
    s->unicast_ttl.store(Socket::kDefaultUnicastTtl);
    s->multicast_loop.store(true);
    s->multicast_interface.store(0);
    s->message_records.store(0);
    s->rcvbuf.store(65536);
    s->sndbuf.store(65536);
    s->reuseaddr = false;
    s->port_share = false;
    s->ephemeral_bind = false;
    s->dual_stack = false;
    s->home_engine = 0;
    s->bound.store(false);
    s->local = Endpoint{};
    s->local.family = family;
    s->connected.store(false);
    s->peer = Endpoint{};
    s->shutdown_how.store(0);
    s->port.store(nullptr);
    s->port_key = 0;
    s->notification_modes.store(0);
    s->queued_bytes.store(0);
    s->enqueued_bytes.store(0);
    s->dequeued_bytes.store(0);
    s->dequeued_seen = 0;
    s->engine_consumes.store(false);
    s->engine_takes_alone = false;
    s->rcv_drops.store(0);
    s->groups.clear();
    s->member_groups.clear(); // no engine reads it: the socket is in no table yet
    s->listening.store(false);
    s->connecting.store(false);
    s->linger_seconds.store(-1);
    s->nodelay.store(false);
    s->keepalive.store(false);
    s->keepalive_idle_ms.store(kDefaultKeepaliveIdleMs);
    s->keepalive_interval_ms.store(kDefaultKeepaliveIntervalMs);
    s->stream_error.store(0);
    s->stream_failure.store(0);
    s->open.store(true, std::memory_order_release);
    return s;
}

Socket* Runtime::find(SOCKET handle) noexcept
{
    const uint64_t index_plus_one = handle & 0xffffff;
    if (index_plus_one == 0 || index_plus_one > kMaxSockets || (handle >> 56) != 0) return nullptr;
    Socket* s = sockets_[index_plus_one - 1].load(std::memory_order_acquire);
    if (s == nullptr || !s->open.load(std::memory_order_acquire)) return nullptr;
    if (s->generation.load(std::memory_order_acquire) != static_cast<uint32_t>(handle >> 24)) return nullptr;
    return s;
}

int Runtime::control(unsigned engine, Op op, Socket* socket, ControlCall& call)
{
    call.done.store(false, std::memory_order_relaxed);
    if (!engines_[engine]->submit(Submission{op, 0, socket, &call})) return WSAENOBUFS;
    WakeHub& h = hub();
    while (!call.done.load(std::memory_order_acquire)) {
        const uint32_t seen = h.epoch();
        if (call.done.load(std::memory_order_acquire)) break;
        h.wait(seen, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
    }
    return call.result;
}

void Runtime::close_socket(Socket& s)
{
    std::lock_guard lock(control_);
    // Sequentially consistent: the Dekker pair with a receive completing in
    // the caller (provider.cc's complete_at_once), waited for below.
    if (!s.open.exchange(false, std::memory_order_seq_cst)) return;
    // New posts now fail (find() refuses the handle); the engine aborts
    // what is pending and drops the socket from its table.
    ControlCall call;
    if (s.is_stream()) {
        // Bound or not: an accept may have given it a connection meanwhile.
        control(0, Op::detach, &s, call);
        auto& list = bound_[s.local.port];
        list.erase(std::remove(list.begin(), list.end(), &s), list.end());
    } else if (s.bound.load()) {
        control(s.home_engine, Op::detach, &s, call);
        auto& list = bound_[s.local.port];
        list.erase(std::remove(list.begin(), list.end(), &s), list.end());
        // The port's datagrams now go to a remaining socket's engine, or
        // nowhere (lwIP answers for an unbound port again).
        update_placement(s.local.port);
    }
    if (s.lwip_pcb != nullptr) {
        ControlCall drop;
        control(0, Op::drop_sender, &s, drop);
    }
    for (const Membership& m : s.groups) {
        ControlCall leave;
        leave.group = m.group;
        control(0, Op::leave, &s, leave);
    }
    // Requests still in a submission ring complete (aborted) when their
    // engine reads them; the slot waits until they have.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (s.requests_outstanding() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    // A receive completing in a caller may still push to the port on the
    // association's reference; any that starts now sees the socket closed.
    while (s.app_consumers.load(std::memory_order_seq_cst) != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    // The association's reference on the port (CreateIoCompletionPort took
    // it), which the socket's requests complete on. Kept, port and all, if
    // some never completed in time: a late push must not find the slot
    // serving another port.
    const bool quiet = !s.requests_outstanding() && s.app_consumers.load() == 0;
    if (CompletionPort* port = s.port.exchange(nullptr); port != nullptr && quiet) port->release_association();
    s.generation.fetch_add(1, std::memory_order_acq_rel);
    if (!s.requests_outstanding()) free_slots_.push_back(s.index);
}

void Runtime::end_pollers()
{
    for (unsigned e = 0; e < engine_count(); ++e) {
        ControlCall call;
        control(e, Op::end_polls, nullptr, call);
    }
}

void Runtime::close_all_sockets()
{
    for (uint32_t i = 0; i < next_slot_; ++i) {
        Socket* s = sockets_[i].load(std::memory_order_acquire);
        if (s != nullptr && s->open.load()) close_socket(*s);
    }
}

bool Runtime::may_bind(const Socket& s, const Endpoint& local) const
{
    // A dual-stack socket bound to :: takes the port in both families
    // (Windows: "if the port is in use on either stack, the bind fails").
    const bool dual_any = s.dual_stack && local.family == 6 && local.is_any();
    for (const Socket* other : bound_[local.port]) {
        if (other == &s || other->type != s.type) continue;
        const bool overlap = (other->carries(local.family) &&
                              (other->local.is_any() || local.is_any() || other->local.same_address(local))) ||
                             (dual_any && other->carries(4));
        if (!overlap) continue;
        const bool shared = (s.reuseaddr && other->reuseaddr) ||
                            (s.port_share && other->port_share && s.home_engine != other->home_engine);
        if (!shared) return false;
    }
    return true;
}

bool Runtime::port_lands_home(const Socket& s, uint16_t port, const Endpoint& peer) const noexcept
{
    if (!tcp_affinity_) return true;
    // The reply's destination is our interface's address when bound to any.
    std::array<uint8_t, 16> local = s.local.addr;
    if (s.local.is_any() && peer.family == 4)
        std::copy(interface_.ipv4.address.begin(), interface_.ipv4.address.end(), local.begin());
    else if (s.local.is_any() && interface_.ipv6)
        local = *interface_.ipv6;
    return tcp_affinity_->lands_home(peer.family, local, port, peer.addr, peer.port);
}

uint16_t Runtime::ephemeral_port(const Socket& s, const Endpoint* peer)
{
    if (peer != nullptr && tcp_affinity_ && s.is_stream()) {
        uint16_t candidate = next_ephemeral_;
        for (unsigned tries = 0; tries < 16384; ++tries) {
            candidate = candidate == 65535 ? 49152 : static_cast<uint16_t>(candidate + 1);
            Endpoint e = s.local;
            e.port = candidate;
            if (!bound_[candidate].empty() || !may_bind(s, e)) continue;
            if (!port_lands_home(s, candidate, *peer)) continue;
            next_ephemeral_ = candidate;
            affine_ports_.fetch_add(1, std::memory_order_relaxed);
            return candidate;
        }
        affinity_fallbacks_.fetch_add(1, std::memory_order_relaxed); // every free port hashes elsewhere
    }
    for (unsigned tries = 0; tries < 16384; ++tries) {
        const uint16_t port = next_ephemeral_;
        next_ephemeral_ = next_ephemeral_ == 65535 ? 49152 : static_cast<uint16_t>(next_ephemeral_ + 1);
        Endpoint e = s.local;
        e.port = port;
        if (bound_[port].empty() && may_bind(s, e)) return port;
    }
    return 0;
}

void Runtime::note_bound(Socket& s)
{
    bound_[s.local.port].push_back(&s);
}

void Runtime::forget_bound(Socket& s)
{
    auto& list = bound_[s.local.port];
    list.erase(std::remove(list.begin(), list.end(), &s), list.end());
}

bool Runtime::next_hop(const Endpoint& dest, stack::Ipv4Address& hop) const noexcept
{
    if (dest.family != 4) return false;
    const stack::Ipv4Address to{dest.addr[0], dest.addr[1], dest.addr[2], dest.addr[3]};
    if (to[0] >= 224 || to[0] == 0 || to[0] == 127) return false; // multicast, broadcast, reserved: lwIP's
    uint32_t ours, theirs;
    std::memcpy(&ours, interface_.ipv4.address.data(), 4);
    std::memcpy(&theirs, to.data(), 4);
    const uint8_t prefix = interface_.ipv4.prefix_len;
    const uint32_t mask = prefix == 0 ? 0 : rte_cpu_to_be_32(~uint32_t{0} << (32 - prefix));
    if (((ours ^ theirs) & mask) == 0) {
        if (prefix < 31 && (theirs & ~mask) == ~mask) return false; // the subnet's broadcast
        hop = to;
        return true;
    }
    if (interface_.ipv4_gateway == stack::Ipv4Address{}) return false;
    hop = interface_.ipv4_gateway;
    return true;
}

bool Runtime::ipv6_fast_destination(const Endpoint& dest) noexcept
{
    return dest.family == 6 && !dest.is_ipv6_multicast() && !dest.is_any() && !dest.is_loopback() &&
           !dest.is_ipv4_mapped();
}

bool Runtime::ipv6_source(const Socket& s, const Endpoint& dest, stack::Ipv6Address& source) const noexcept
{
    if (!s.local.is_any()) {
        source = s.local.addr;
        return true;
    }
    if (dest.is_ipv6_link_local()) {
        source = ipv6_link_local_;
        return true;
    }
    if (!interface_.ipv6) return false;
    source = *interface_.ipv6;
    return true;
}

bool Runtime::is_own_address(uint8_t family, const std::array<uint8_t, 16>& address) const noexcept
{
    if (family == 4) return std::equal(interface_.ipv4.address.begin(), interface_.ipv4.address.end(), address.begin());
    return address == ipv6_link_local_ || (interface_.ipv6 && address == *interface_.ipv6);
}

bool Runtime::fast_send_mac(const Socket& s, const Endpoint& dest, uint64_t total,
                            stack::MacAddress& mac) const noexcept
{
    // The home engine needs a TX queue of its own (engine k owns queue k).
    if (s.home_engine >= tx_queues_) return false;
    if (dest.family == 4) {
        stack::Ipv4Address hop;
        return total <= fast_max_payload4_ && next_hop(dest, hop) &&
               ipv4_neighbours_.lookup(hop, mac, rte_get_tsc_cycles());
    }
    stack::Ipv6Address source;
    return total <= fast_max_payload6_ && ipv6_fast_destination(dest) && ipv6_source(s, dest, source) &&
           ipv6_neighbours_.lookup(dest.addr, mac, rte_get_tsc_cycles());
}

void Runtime::update_placement(uint16_t port)
{
    // Placement routes UDP: a port's stream sockets are not in it.
    if (engine_count() < 2) return; // one engine holds every socket
    const auto& list = bound_[port];
    ControlCall call;
    call.port = port;
    // The socket bound first is the port's home: what lands on an engine
    // without a socket of its own goes there.
    const auto first = std::find_if(list.begin(), list.end(), [](const Socket* s) { return !s->is_stream(); });
    call.home = first == list.end() ? -1 : static_cast<int16_t>((*first)->home_engine);
    for (const Socket* s : list) {
        if (s->is_stream() || s->home_engine >= 64) continue; // beyond the masks: reached through the home only
        call.present |= uint64_t{1} << s->home_engine;
        if (s->port_share) call.engines |= uint64_t{1} << s->home_engine;
    }
    // Spreading needs software RSS and two engines to spread over.
    if (!rss_ || __builtin_popcountll(call.engines) < 2) call.engines = 0;
    for (unsigned e = 0; e < engine_count(); ++e)
        control(e, Op::placement, nullptr, call);
}

void Runtime::complete(Request& r, DWORD error, DWORD bytes, DWORD flags, unsigned engine) noexcept
{
    const LPWSAOVERLAPPED ov = r.overlapped;
    const Notify notify = r.notify;
    Event* event = r.event;
    CompletionPort* port = r.port;
    const ULONG_PTR key = r.key;
    ApcQueue* apc = r.apc;
    const LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = r.routine;
    requests_.give_back(returns_[engine], &r);

    ov->InternalHigh = bytes;
    ov->Offset = flags;
    std::atomic_ref<ULONG_PTR>(ov->Internal).store(error, std::memory_order_release);
    switch (notify) {
    case Notify::event:
        if (event != nullptr) event->set(hub());
        break;
    case Notify::port:
        if (event != nullptr) event->set(hub());
        port->push(engine, completion_of(ov, key, bytes, error, flags));
        break;
    case Notify::apc:
        apc->push(engine, ApcEntry{routine, ov, error, bytes, flags, 0, 0});
        break;
    case Notify::sync:
        break;
    }
    hub().notify();
}

void Runtime::write_result(Request& r, DWORD error, DWORD bytes, DWORD flags, unsigned engine) noexcept
{
    const LPWSAOVERLAPPED ov = r.overlapped;
    requests_.give_back(returns_[engine], &r);
    ov->InternalHigh = bytes;
    ov->Offset = flags;
    std::atomic_ref<ULONG_PTR>(ov->Internal).store(error, std::memory_order_release);
}

void Runtime::notify_only(Request& r, unsigned engine) noexcept
{
    ApcQueue* apc = r.apc;
    const ApcEntry a{r.routine, r.overlapped, r.result_error, r.result_bytes, r.result_flags, 0, 0};
    const bool routine = r.notify == Notify::apc;
    requests_.give_back(returns_[engine], &r);
    if (routine) apc->push(engine, a);
}

bool Runtime::wait_for(LPWSAOVERLAPPED ov, uint32_t timeout_ms) noexcept
{
    std::atomic_ref<ULONG_PTR> status(ov->Internal);
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout_ms != 0) deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    WakeHub& h = hub();
    for (;;) {
        const uint32_t seen = h.epoch();
        if (status.load(std::memory_order_acquire) != STATUS_PENDING) return true;
        if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
        h.wait(seen, deadline);
    }
}

} // namespace ringsock::api
