#include "dataplane/mempool.hh"

#include <algorithm>

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

namespace ringsock::dataplane {

Mempool::Mempool(const std::string& name, const MempoolProfile& profile, int socket) : socket_(socket)
{
    pool_ = rte_pktmbuf_pool_create_by_ops(name.c_str(), profile.mbufs, profile.cache,
                                           static_cast<uint16_t>(profile.priv_size),
                                           static_cast<uint16_t>(profile.data_room), socket, profile.ops.c_str());
    if (pool_ == nullptr)
        throw MempoolError("cannot create mempool " + name + " of " + std::to_string(profile.mbufs) + " mbufs x " +
                           std::to_string(profile.data_room) + " bytes on socket " + std::to_string(socket) +
                           " (mempool.ops " + profile.ops + "): " + rte_strerror(rte_errno) +
                           " (lower mempool.mbufs, or raise eal.memory_mb when running with --no-huge)");
}

Mempool::~Mempool()
{
    rte_mempool_free(pool_);
}

Mempool::Mempool(Mempool&& other) noexcept : pool_(other.pool_), socket_(other.socket_)
{
    other.pool_ = nullptr;
}

unsigned Mempool::capacity() const noexcept
{
    return pool_->size;
}

unsigned Mempool::available() const noexcept
{
    return rte_mempool_avail_count(pool_);
}

MempoolSet::MempoolSet(const std::string& prefix, const MempoolProfile& profile, const std::vector<int>& sockets)
{
    std::vector<int> unique = sockets;
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    if (unique.empty()) unique.push_back(0);
    pools_.reserve(unique.size());
    for (int socket : unique)
        pools_.emplace_back(prefix + "_s" + std::to_string(socket), profile, socket);
}

const Mempool& MempoolSet::for_socket(int socket) const noexcept
{
    for (const auto& pool : pools_)
        if (pool.socket() == socket) return pool;
    return pools_.front();
}

unsigned MempoolSet::in_use() const noexcept
{
    unsigned total = 0;
    for (const auto& pool : pools_)
        total += pool.in_use();
    return total;
}

unsigned free_in_ring(const rte_mempool& pool) noexcept
{
    // DPDK keeps rte_mempool_ops_get_count internal; the ops table is public.
    auto& mutable_pool = const_cast<rte_mempool&>(pool);
    return rte_mempool_get_ops(pool.ops_index)->get_count(&mutable_pool);
}

} // namespace ringsock::dataplane
