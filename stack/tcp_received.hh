// What lwIP delivered on one TCP connection and the application has not
// read yet: pbuf chains in arrival order, behind no lwIP type. lwIP's
// window is counted in bytes, so the queue must take a window's worth of
// segments of any size: it grows (a refused segment makes lwIP drop the
// data segments after it until the refusal clears, and the sender has to
// time out and resend them), and while the reader lags it copies small
// segments into compact buffers, so that a window of 100-byte segments
// does not pin 13,000 mbufs of the port's pool. While the pool runs short
// (a quarter left) a lagging connection copies every segment, and refuses
// what it has no heap for: a dozen readers that stopped must not take the
// mbufs the port refills with. Compact buffers use at most half of lwIP's
// heap. Engine lcore only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct pbuf;

namespace ringsock::stack {

struct MutableSegment {
    void* data;
    std::size_t length;
};

class TcpReceived {
public:
    TcpReceived();
    ~TcpReceived();
    TcpReceived(const TcpReceived&) = delete;
    TcpReceived& operator=(const TcpReceived&) = delete;

    // Takes `p`, one delivery's chain. False when there is no memory for
    // it: `p` is then still the caller's.
    bool push(pbuf* p) noexcept;
    uint64_t readable() const noexcept { return readable_; }
    // Chains held now (compacted ones count once).
    std::size_t chains() const noexcept { return held_; }
    // Copies up to `max` readable bytes, oldest first, into `dest`
    // starting `dest_offset` bytes into it; consumes nothing.
    uint64_t copy_to(const MutableSegment* dest, std::size_t count, uint64_t dest_offset, uint64_t max) const noexcept;
    // Drops the oldest `n` bytes (at most readable()); returns how many.
    uint64_t consume(uint64_t n) noexcept;
    void clear() noexcept;

    // Segments at most this long are copied into a compact buffer while
    // at least kCompactBehind chains wait: a reader that keeps up pays no
    // copy, one that lags keeps bytes rather than mbufs.
    static constexpr uint32_t kCompactUpTo = 1024;
    static constexpr std::size_t kCompactBehind = 8;
    static constexpr uint32_t kCompactBuffer = 4096;
    // Enough for lwIP's window in 20-byte segments; smaller ones fill
    // compact buffers, so the window closes before the queue is full.
    static constexpr std::size_t kMaxChains = std::size_t{1} << 16;

private:
    bool copy_into_compact(const pbuf* p) noexcept;
    bool append_to_tail(const pbuf* p) noexcept;
    bool push_chain(pbuf* p) noexcept;
    bool grow() noexcept;
    std::size_t slot(std::size_t k) const noexcept { return (head_ + k) & (ring_.size() - 1); }

    std::vector<pbuf*> ring_; // a power of two in size
    std::size_t head_ = 0;
    std::size_t held_ = 0;
    uint32_t head_offset_ = 0; // consumed bytes of the oldest chain
    uint32_t tail_room_ = 0;   // free bytes of the newest chain when it is a compact buffer of ours
    uint64_t readable_ = 0;
};

} // namespace ringsock::stack
