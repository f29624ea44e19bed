// lwIP's netif glue. This translation unit includes lwIP and DPDK's mbuf,
// mempool and ring headers only: rte_ethdev.h and rte_ip.h pull glibc's
// <netinet/ip6.h>, whose struct ip6_hdr clashes with lwIP's.
#include "stack/lwip_netif.hh"
#include "stack/multicast_filter.hh"
#include "stack/rx_pbuf.hh"
#include "stack/tcp_out_of_order.hh"

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

extern "C" {
#include "lwip/etharp.h"
#include "lwip/igmp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/mld6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/nd6_priv.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "ringsock_hooks.h"
}

namespace ringsock::stack {
namespace {

// lwIP's state is process-wide globals: one interface per process. Forced
// on us by lwIP, as is lwip_init() being callable only once.
std::atomic<bool> interface_exists{false};

void initialise_lwip_once()
{
    static std::once_flag once;
    std::call_once(once, [] { lwip_init(); });
}

ip4_addr_t ip4_of(const Ipv4Address& a)
{
    ip4_addr_t out;
    IP4_ADDR(&out, a[0], a[1], a[2], a[3]);
    return out;
}

ip6_addr_t ip6_of(const Ipv6Address& a)
{
    ip6_addr_t out{};
    std::memcpy(out.addr, a.data(), sizeof(out.addr));
    ip6_addr_clear_zone(&out);
    return out;
}

} // namespace

struct LwipInterface::State {
    explicit State(uint16_t port) : multicast(port) {}
    struct netif netif {};
    MulticastFilter multicast;
};

LwipInterface::LwipInterface(dataplane::Engine& engine, rte_mempool* tx_pool, const LwipInterfaceConfig& config)
    : engine_(engine), tx_pool_(tx_pool), config_(config), state_(std::make_unique<State>(config.port))
{
    if (interface_exists.exchange(true))
        throw std::runtime_error("lwIP already runs an interface in this process: lwIP's state is global");
    initialise_lwip_once();

    const uint8_t prefix = config_.ipv4.prefix_len;
    const uint32_t mask_host = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    ip4_addr_t address = ip4_of(config_.ipv4.address);
    ip4_addr_t mask;
    ip4_addr_set_u32(&mask, lwip_htonl(mask_host));
    ip4_addr_t gateway = ip4_of(config_.ipv4_gateway);

    netif* added = netif_add(
        &state_->netif, &address, &mask, &gateway, this,
        [](netif* nif) -> err_t {
            auto* self = static_cast<LwipInterface*>(nif->state);
            nif->name[0] = 'r';
            nif->name[1] = 's';
            nif->output = etharp_output;
            nif->output_ip6 = ethip6_output;
            nif->linkoutput = &LwipInterface::link_output;
            nif->mtu = self->config_.mtu;
            netif_set_client_data(nif, RINGSOCK_NETIF_OOSEQ_CAPPED_SLOT, &self->counters_.tcp_out_of_order_capped);
            nif->hwaddr_len = ETH_HWADDR_LEN;
            std::memcpy(nif->hwaddr, self->config_.mac.data(), ETH_HWADDR_LEN);
            nif->flags =
                NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP | NETIF_FLAG_MLD6;
            // lwIP reports each group MAC's first join and last leave,
            // 224.0.0.1 and the solicited-node groups included.
            netif_set_igmp_mac_filter(nif,
                                      [](netif* n, const ip4_addr_t* group, netif_mac_filter_action action) -> err_t {
                                          uint8_t bytes[4];
                                          std::memcpy(bytes, &group->addr, 4);
                                          auto& filter = static_cast<LwipInterface*>(n->state)->state_->multicast;
                                          const MacAddress mac = MulticastFilter::of_ipv4_group(bytes);
                                          action == NETIF_ADD_MAC_FILTER ? filter.add(mac) : filter.remove(mac);
                                          return ERR_OK;
                                      });
            netif_set_mld_mac_filter(nif,
                                     [](netif* n, const ip6_addr_t* group, netif_mac_filter_action action) -> err_t {
                                         uint8_t bytes[16];
                                         std::memcpy(bytes, group->addr, 16);
                                         auto& filter = static_cast<LwipInterface*>(n->state)->state_->multicast;
                                         const MacAddress mac = MulticastFilter::of_ipv6_group(bytes);
                                         action == NETIF_ADD_MAC_FILTER ? filter.add(mac) : filter.remove(mac);
                                         return ERR_OK;
                                     });
            return ERR_OK;
        },
        ethernet_input);
    if (added == nullptr) {
        interface_exists = false;
        throw std::runtime_error("lwIP refused the interface (netif_add)");
    }

    // Configured addresses are valid at once: duplicate detection would
    // delay the first packets by a second and guard against nothing here.
    netif_create_ip6_linklocal_address(added, 1);
    netif_ip6_addr_set_state(added, 0, IP6_ADDR_PREFERRED);
    if (config_.ipv6) {
        ip6_addr_t ipv6 = ip6_of(*config_.ipv6);
        s8_t index = -1;
        if (netif_add_ip6_address(added, &ipv6, &index) == ERR_OK && index >= 0)
            netif_ip6_addr_set_state(added, index, IP6_ADDR_PREFERRED);
    }
    // What the port sums on transmit, lwIP leaves at zero (mark_tx_checksums
    // asks the port for it in link_output). ICMP, ICMPv6 and UDP have no
    // port offload that fits and stay lwIP's.
    checksum_flags_ = NETIF_CHECKSUM_ENABLE_ALL;
    if (config_.tx_checksums.ipv4) checksum_flags_ &= ~NETIF_CHECKSUM_GEN_IP;
    if (config_.tx_checksums.tcp) checksum_flags_ &= ~NETIF_CHECKSUM_GEN_TCP;
    NETIF_SET_CHECKSUM_CTRL(added, checksum_flags_);
    netif_set_default(added);
    netif_set_up(added);
    netif_set_link_up(added); // announces us: gratuitous ARP, MLD reports
}

LwipInterface::~LwipInterface()
{
    netif_set_link_down(&state_->netif);
    netif_set_down(&state_->netif);
    netif_remove(&state_->netif);
    interface_exists = false;
}

std::size_t LwipInterface::multicast_macs() const noexcept
{
    return state_->multicast.size();
}

bool LwipInterface::all_multicast() const noexcept
{
    return state_->multicast.all_multicast();
}

netif* LwipInterface::raw() noexcept
{
    return &state_->netif;
}

bool LwipInterface::join_ipv4_group(const Ipv4Address& group)
{
    const ip4_addr_t address = ip4_of(group);
    return ip4_addr_ismulticast(&address) && igmp_joingroup_netif(&state_->netif, &address) == ERR_OK;
}

bool LwipInterface::leave_ipv4_group(const Ipv4Address& group)
{
    const ip4_addr_t address = ip4_of(group);
    return ip4_addr_ismulticast(&address) && igmp_leavegroup_netif(&state_->netif, &address) == ERR_OK;
}

bool LwipInterface::join_ipv6_group(const Ipv6Address& group)
{
    const ip6_addr_t address = ip6_of(group);
    return ip6_addr_ismulticast(&address) && mld6_joingroup_netif(&state_->netif, &address) == ERR_OK;
}

bool LwipInterface::leave_ipv6_group(const Ipv6Address& group)
{
    const ip6_addr_t address = ip6_of(group);
    return ip6_addr_ismulticast(&address) && mld6_leavegroup_netif(&state_->netif, &address) == ERR_OK;
}

bool LwipInterface::arp_entry(const Ipv4Address& ip, MacAddress& mac)
{
    const ip4_addr_t address = ip4_of(ip);
    eth_addr* eth = nullptr;
    const ip4_addr_t* found = nullptr;
    if (etharp_find_addr(&state_->netif, &address, &eth, &found) < 0 || eth == nullptr) return false;
    std::memcpy(mac.data(), eth->addr, ETH_HWADDR_LEN);
    return true;
}

void LwipInterface::arp_query(const Ipv4Address& ip)
{
    const ip4_addr_t address = ip4_of(ip);
    etharp_query(&state_->netif, &address, nullptr);
}

LwipInterface::Ipv6Neighbour LwipInterface::ipv6_neighbour(const Ipv6Address& destination, MacAddress& mac)
{
    // lwIP exports its neighbour discovery tables (nd6_priv.h) but no
    // lookup that leaves them untouched; these are linear scans of 64.
    const ip6_addr_t address = ip6_of(destination);
    const nd6_destination_cache_entry* route = nullptr;
    for (int i = 0; i < LWIP_ND6_NUM_DESTINATIONS && route == nullptr; ++i) {
        if (ip6_addr_cmp_zoneless(&destination_cache[i].destination_addr, &address)) route = &destination_cache[i];
    }
    if (route == nullptr || (route->pmtu != 0 && route->pmtu < netif_mtu6(&state_->netif))) return Ipv6Neighbour::none;
    for (int i = 0; i < LWIP_ND6_NUM_NEIGHBORS; ++i) {
        const nd6_neighbor_cache_entry& n = neighbor_cache[i];
        if (n.state == ND6_NO_ENTRY || n.state == ND6_INCOMPLETE ||
            !ip6_addr_cmp_zoneless(&n.next_hop_address, &route->next_hop_addr))
            continue;
        std::memcpy(mac.data(), n.lladdr, ETH_HWADDR_LEN);
        return n.state == ND6_REACHABLE ? Ipv6Neighbour::reachable : Ipv6Neighbour::unconfirmed;
    }
    return Ipv6Neighbour::none;
}

err_t LwipInterface::link_output(netif* nif, pbuf* p)
{
    auto* self = static_cast<LwipInterface*>(nif->state);
    rte_mbuf* m = rte_pktmbuf_alloc(self->tx_pool_);
    if (m == nullptr) [[unlikely]] {
        self->counters_.tx_no_mbuf.add(1);
        return ERR_MEM;
    }
    if (p->tot_len > rte_pktmbuf_tailroom(m)) [[unlikely]] {
        rte_pktmbuf_free(m);
        return ERR_BUF;
    }
    auto* out = rte_pktmbuf_append(m, p->tot_len);
    pbuf_copy_partial(p, out, p->tot_len, 0);
    if (mark_tx_checksums(m, self->config_.tx_checksums).any()) self->counters_.tx_checksum_offloaded.add(1);
    self->engine_.send(self->config_.port, m);
    self->counters_.tx_frames.add(1);
    return ERR_OK;
}

void LwipInterface::input_one(rte_mbuf* m)
{
    // Read before lwIP may free the mbuf (a copied frame's is freed below).
    const RxChecksumVerdict verdict = rx_checksum_verdict(m);
    uint16_t flags = checksum_flags_;
    if (verdict.ip_verified) flags &= ~NETIF_CHECKSUM_CHECK_IP;
    if (verdict.l4_verified) flags &= ~(NETIF_CHECKSUM_CHECK_TCP | NETIF_CHECKSUM_CHECK_UDP);
    pbuf* p = wrap_rx_mbuf(m);
    if (p != nullptr) [[likely]] {
        counters_.rx_zero_copy.add(1);
    } else {
        p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(m->pkt_len), PBUF_POOL);
        if (p == nullptr) [[unlikely]] {
            rte_pktmbuf_free(m);
            counters_.rx_no_pbuf.add(1);
            return;
        }
        u16_t offset = 0;
        for (rte_mbuf* segment = m; segment != nullptr; segment = segment->next) {
            pbuf_take_at(p, rte_pktmbuf_mtod(segment, void*), segment->data_len, offset);
            offset = static_cast<u16_t>(offset + segment->data_len);
        }
        rte_pktmbuf_free(m);
        counters_.rx_copied.add(1);
    }
    if (flags != checksum_flags_) counters_.rx_checksum_trusted.add(1);
    NETIF_SET_CHECKSUM_CTRL(&state_->netif, flags);
    const err_t result = state_->netif.input(p, &state_->netif);
    // Back before anything else runs lwIP: timers and frames without the
    // PMD's word must be checked.
    NETIF_SET_CHECKSUM_CTRL(&state_->netif, checksum_flags_);
    if (result != ERR_OK) [[unlikely]] {
        pbuf_free(p);
        counters_.rx_rejected.add(1);
    }
}

void LwipInterface::on_lwip(rte_mbuf** pkts, uint16_t n)
{
    for (uint16_t i = 0; i < n; ++i)
        input_one(pkts[i]);
}

void LwipInterface::poll()
{
    if (handoff_ != nullptr) {
        rte_mbuf* frames[32];
        const unsigned n = rte_ring_dequeue_burst(handoff_, reinterpret_cast<void**>(frames), 32, nullptr);
        counters_.handoff_in.add(n);
        on_lwip(frames, static_cast<uint16_t>(n));
    }
    // What lwIP looped back (multicast sends, sends to our own address):
    // input now, as it arrived. Our own packets carry what the port was
    // to sum (an IPv4 or TCP checksum left to the offload): not checked.
    if (state_->netif.loop_first != nullptr) {
        constexpr uint16_t kChecks = NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_UDP | NETIF_CHECKSUM_CHECK_TCP |
                                     NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_CHECK_ICMP6;
        NETIF_SET_CHECKSUM_CTRL(&state_->netif, checksum_flags_ & ~kChecks);
        netif_poll(&state_->netif);
        NETIF_SET_CHECKSUM_CTRL(&state_->netif, checksum_flags_);
    }
    // lwIP's timers tick at 50 ms and slower; reading the clock for them
    // once a millisecond, not on every iteration, keeps a syscall-priced
    // clock_gettime off the loop.
    const uint64_t now = rte_rdtsc();
    if (now >= next_timer_check_) {
        sys_check_timeouts();
        // The pool this engine receives into; its ring's count is two
        // shared cache lines, read here once a millisecond, not per frame.
        if (rx_pool_short(*tx_pool_)) counters_.tcp_out_of_order_freed.add(free_out_of_order_pinning_short_pools());
        next_timer_check_ = now + rte_get_tsc_hz() / 1000;
    }
}

} // namespace ringsock::stack
