#include "api/request_pool.hh"

namespace ringsock::api {

bool Request::capture(const WSABUF* bufs, uint32_t count) noexcept
{
    buffer_count = count;
    total_length = 0;
    if (count <= kInlineBuffers) {
        buffers = inline_buffers;
    } else {
        try {
            spill.resize(count);
        } catch (...) {
            return false;
        }
        buffers = spill.data();
    }
    // Field by field, not as whole WSABUFs: callers build the array right
    // before the call (a 4-byte store of len, an 8-byte one of buf), and a
    // 16-byte load of the pair cannot be forwarded from those stores, so
    // it waits for them to reach the cache (most of this function in perf).
    for (uint32_t i = 0; i < count; ++i) {
        const ULONG len = bufs[i].len;
        CHAR* const buf = bufs[i].buf;
        buffers[i].len = len;
        buffers[i].buf = buf;
        total_length += len;
    }
    return true;
}

RequestPool::RequestPool(uint32_t size)
    : size_(size), requests_(new Request[size]), next_(new std::atomic<uint32_t>[size])
{
    for (uint32_t i = 0; i < size; ++i) {
        requests_[i].pool_index = i;
        next_[i].store(i + 1 < size ? i + 1 : kNone, std::memory_order_relaxed);
    }
    head_.store(size > 0 ? 0 : kNone, std::memory_order_release);
}

Request* RequestPool::take() noexcept
{
    uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
        const auto index = static_cast<uint32_t>(head);
        if (index == kNone) return nullptr;
        const uint64_t tag = (head >> 32) + 1;
        const uint64_t next = (tag << 32) | next_[index].load(std::memory_order_relaxed);
        if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
            taken_.fetch_add(1, std::memory_order_relaxed);
            return &requests_[index];
        }
    }
}

void RequestPool::give_back(Request* r) noexcept
{
    r->next = nullptr;
    push_chain(&r->pool_index, 1);
}

void RequestPool::give_back(ReturnBatch& batch, Request* r) noexcept
{
    r->next = nullptr;
    batch.indices_[batch.count_++] = r->pool_index;
    if (batch.count_ == ReturnBatch::kSize) flush(batch);
}

void RequestPool::flush(ReturnBatch& batch) noexcept
{
    if (batch.count_ == 0) return;
    push_chain(batch.indices_.data(), batch.count_);
    batch.count_ = 0;
}

void RequestPool::push_chain(const uint32_t* indices, uint32_t n) noexcept
{
    // Link the chain once; only its last link depends on the head.
    for (uint32_t i = 0; i + 1 < n; ++i)
        next_[indices[i]].store(indices[i + 1], std::memory_order_relaxed);
    const uint32_t first = indices[0];
    const uint32_t last = indices[n - 1];
    uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
        next_[last].store(static_cast<uint32_t>(head), std::memory_order_relaxed);
        const uint64_t tag = (head >> 32) + 1;
        if (head_.compare_exchange_weak(head, (tag << 32) | first, std::memory_order_release,
                                        std::memory_order_relaxed)) {
            returned_.fetch_add(n, std::memory_order_relaxed);
            return;
        }
    }
}

} // namespace ringsock::api
