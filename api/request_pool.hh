// The runtime's pool of Request records: taken by the thread that posts,
// given back by the engine that completes. A Treiber stack of indices with
// a tag against ABA: lock-free on both sides, no allocation after start-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "api/socket.hh"

namespace ringsock::api {

class RequestPool {
public:
    explicit RequestPool(uint32_t size);

    // Null when every request is out (the caller reports WSAEWOULDBLOCK:
    // "too many outstanding overlapped I/O requests").
    Request* take() noexcept;
    void give_back(Request* r) noexcept;
    uint32_t size() const noexcept { return size_; }
    uint32_t taken() const noexcept { return taken_.load(std::memory_order_relaxed); }

private:
    static constexpr uint32_t kNone = 0xffffffffu;
    uint32_t size_;
    std::unique_ptr<Request[]> requests_;
    std::unique_ptr<std::atomic<uint32_t>[]> next_;
    std::atomic<uint64_t> head_; // tag << 32 | index (kNone: empty)
    std::atomic<uint32_t> taken_{0};
};

} // namespace ringsock::api
