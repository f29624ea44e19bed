// How engines that do not own lwIP give it their frames: a multi-producer,
// single-consumer rte_ring from every other engine to the lwIP engine. A
// LwipHandoff is the LwipSink of a non-lwIP engine's ClassifierHandler; the
// lwIP engine drains the ring in LwipInterface::poll(). No lock: producers
// claim ring slots with a compare-and-swap, the one consumer reads alone.
//
// A full ring drops the frame at once (freed, counted) rather than stall
// the producing engine: lwIP's work is ARP, ICMP, fragments and TCP, whose
// senders retransmit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/counters.hh"
#include "stack/classifier.hh"

struct rte_ring;

namespace ringsock::stack {

// The ring itself, created on the main thread before engines run.
class LwipHandoffRing {
public:
    // `slots`: a power of two; 2 x the lwIP engine's burst x engines is
    // ample, since it drains every iteration. Throws std::runtime_error.
    LwipHandoffRing(const std::string& name, unsigned slots, int socket);
    ~LwipHandoffRing(); // frees any frames still queued, then the ring
    LwipHandoffRing(const LwipHandoffRing&) = delete;
    LwipHandoffRing& operator=(const LwipHandoffRing&) = delete;

    rte_ring* get() const noexcept { return ring_; }

private:
    rte_ring* ring_ = nullptr;
};

struct alignas(dataplane::kCacheLine) HandoffCounters {
    dataplane::RelaxedCounter handed; // enqueued for the lwIP engine
    dataplane::RelaxedCounter full;   // dropped: the ring had no room
};

// One per producing engine (its counters are that engine's alone).
class LwipHandoff final : public LwipSink {
public:
    explicit LwipHandoff(const LwipHandoffRing& ring) noexcept : ring_(ring.get()) {}

    // Takes ownership of every frame: queued for lwIP, or freed and counted.
    void on_lwip(rte_mbuf** pkts, uint16_t n) override;
    const HandoffCounters& counters() const noexcept { return counters_; }

private:
    HandoffCounters counters_;
    rte_ring* ring_;
};

} // namespace ringsock::stack
