// The runtime's pool of Request records: taken by the thread that posts,
// given back by the engine that completes. A Treiber stack of indices with
// a tag against ABA: lock-free on both sides, no allocation after start-up.
// Engines give back through a ReturnBatch of their own, one compare-and-swap
// per batch: with one per request the stack's head crossed between the
// application's core and the engine's twice per datagram (14 % of the
// application thread in ringsock-bench-api-rx's profile). The counts of
// takes and returns live on separate cache lines for the same reason.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "api/socket.hh"

namespace ringsock::api {

class RequestPool {
public:
    explicit RequestPool(uint32_t size);

    // Requests one engine has given back and not yet returned to the pool.
    // Touched by that engine's thread only.
    class alignas(64) ReturnBatch {
    public:
        static constexpr uint32_t kSize = 32;

    private:
        friend class RequestPool;
        std::array<uint32_t, kSize> indices_{};
        uint32_t count_ = 0;
    };

    // Null when every request is out (the caller reports WSAEWOULDBLOCK:
    // "too many outstanding overlapped I/O requests").
    Request* take() noexcept;
    void give_back(Request* r) noexcept;
    // An engine's give-back: into its batch, which goes back to the pool
    // when full or at flush(). The engine flushes once per poll, so a
    // request waits there microseconds at most.
    void give_back(ReturnBatch& batch, Request* r) noexcept;
    void flush(ReturnBatch& batch) noexcept;
    uint32_t size() const noexcept { return size_; }
    // Requests out of the pool, those waiting in a batch included.
    uint32_t taken() const noexcept
    {
        const uint64_t returned = returned_.load(std::memory_order_relaxed);
        return static_cast<uint32_t>(taken_.load(std::memory_order_relaxed) - returned);
    }

private:
    static constexpr uint32_t kNone = 0xffffffffu;
    // Pushes the `n` indices as one chain: first the new head.
    void push_chain(const uint32_t* indices, uint32_t n) noexcept;

    uint32_t size_;
    std::unique_ptr<Request[]> requests_;
    std::unique_ptr<std::atomic<uint32_t>[]> next_;
    alignas(64) std::atomic<uint64_t> head_;        // tag << 32 | index (kNone: empty)
    alignas(64) std::atomic<uint64_t> taken_{0};    // by posting threads
    alignas(64) std::atomic<uint64_t> returned_{0}; // by engines, mostly
};

} // namespace ringsock::api
