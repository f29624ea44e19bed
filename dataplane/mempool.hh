// Packet mempools: one per NUMA socket that has an engine or a port on it,
// so every mbuf an engine touches is local memory.
//
// Created after Eal and destroyed before it, on the main thread, once every
// port using the pool is closed. Occupancy (in_use) is readable from any
// thread; it counts mbufs held outside the pool (RX descriptors, queues,
// the application) while mbufs resting in per-lcore caches count as free,
// which is how tests prove every mbuf came back.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/profile.hh"

struct rte_mempool;

namespace ringsock::dataplane {

class MempoolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Mempool {
public:
    // Throws MempoolError naming the pool, its size and the socket.
    Mempool(const std::string& name, const MempoolProfile& profile, int socket);
    ~Mempool();
    Mempool(Mempool&& other) noexcept;
    Mempool& operator=(Mempool&&) = delete;
    Mempool(const Mempool&) = delete;
    Mempool& operator=(const Mempool&) = delete;

    rte_mempool* get() const noexcept { return pool_; }
    int socket() const noexcept { return socket_; }
    unsigned capacity() const noexcept;
    unsigned available() const noexcept; // free in the ring and in every lcore cache
    unsigned in_use() const noexcept { return capacity() - available(); }

private:
    rte_mempool* pool_ = nullptr;
    int socket_ = 0;
};

// One pool per socket in `sockets`, named "<prefix>_s<socket>".
class MempoolSet {
public:
    MempoolSet(const std::string& prefix, const MempoolProfile& profile, const std::vector<int>& sockets);

    // The pool of `socket`, or the first pool when that socket has none.
    const Mempool& for_socket(int socket) const noexcept;
    const std::vector<Mempool>& pools() const noexcept { return pools_; }
    unsigned in_use() const noexcept;

private:
    std::vector<Mempool> pools_;
};

// Free mbufs in `pool`'s ring, beneath the lcores' caches: what a port can
// refill its RX descriptors from. Cheap enough per burst (no walk over the
// caches, which rte_mempool_avail_count does for every lcore).
unsigned free_in_ring(const rte_mempool& pool) noexcept;

} // namespace ringsock::dataplane
