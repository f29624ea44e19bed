// UDP datagrams lwIP reassembled, handed back to the socket layer. The
// classifier sends fragments to lwIP (it owns reassembly: bounded memory,
// timeouts, counted drops), and lwIP would answer a whole datagram for a
// port only the socket layer serves with "port unreachable". Raw pcbs
// see every datagram after reassembly and before UDP: for a port the sink
// wants, they copy the datagram into an mbuf chain as one unfragmented
// Ethernet frame (IPv4 header checksum recomputed, the UDP checksum left
// for the classifier to verify) and give it to the sink. IPv4 and IPv6.
// lwIP 2.1 shows raw pcbs an IPv6 datagram's first next header, so pcbs
// for hop-by-hop and destination options and for routing headers catch
// IPv6 datagrams whose UDP comes after such headers (fragmented ones,
// those whose options are more than padding, and those with a routing
// header, all of which the classifier leaves to lwIP); a routing header
// must have no segments left (this node is the destination; with segments
// left the datagram stays lwIP's). Their frame is rebuilt without them,
// the IPv6 header followed by UDP, which the classifier then takes.
//
// On the lwIP engine's lcore only, like lwIP.
#pragma once

#include <cstdint>

#include "dataplane/counters.hh"
#include "stack/classifier.hh"

struct rte_mbuf;
struct rte_mempool;
struct raw_pcb;
struct pbuf;

namespace ringsock::stack {

class ReassembledUdpSink {
public:
    virtual ~ReassembledUdpSink() = default;
    // Whether datagrams for this UDP port are the sink's (not lwIP's).
    virtual bool wants_udp_port(uint16_t port) const noexcept = 0;
    // Takes the frame. Called from inside lwIP's input: queue, do not
    // re-enter lwIP.
    virtual void on_reassembled(rte_mbuf* frame) noexcept = 0;
};

struct alignas(dataplane::kCacheLine) ReassemblyCounters {
    dataplane::RelaxedCounter handed;  // datagrams given to the sink
    dataplane::RelaxedCounter no_mbuf; // dropped: no mbufs for the copy
};

class LwipUdpReassembly {
public:
    // `pool` supplies the frames' mbufs; `mac` is written as the frames'
    // destination (the classifier checks it). Throws std::runtime_error
    // when lwIP has no raw pcb left.
    LwipUdpReassembly(ReassembledUdpSink& sink, rte_mempool* pool, const MacAddress& mac);
    ~LwipUdpReassembly();
    LwipUdpReassembly(const LwipUdpReassembly&) = delete;
    LwipUdpReassembly& operator=(const LwipUdpReassembly&) = delete;

    const ReassemblyCounters& counters() const noexcept { return counters_; }

private:
    static uint8_t on_datagram(void* self, raw_pcb* pcb, pbuf* p, const void* from);

    ReassemblyCounters counters_;
    ReassembledUdpSink& sink_;
    rte_mempool* pool_;
    MacAddress mac_;
    raw_pcb* pcbs_[4] = {}; // UDP (both families); IPv6 hop-by-hop, destination options, routing
};

} // namespace ringsock::stack
