#include "stack/tcp_received.hh"

#include <algorithm>
#include <cstring>
#include <new>

#include "lwip/opt.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "stack/rx_pbuf.hh"

namespace ringsock::stack {

namespace {
constexpr std::size_t kFirstChains = 64;
} // namespace

TcpReceived::TcpReceived() : ring_(kFirstChains, nullptr) {}

TcpReceived::~TcpReceived()
{
    clear();
}

void TcpReceived::clear() noexcept
{
    while (held_ != 0) {
        pbuf_free(ring_[head_]);
        head_ = slot(1);
        --held_;
    }
    head_offset_ = 0;
    tail_room_ = 0;
    readable_ = 0;
}

bool TcpReceived::push(pbuf* p) noexcept
{
    if (held_ >= kCompactBehind) {
        // The reader lags. Small segments are copied so that they hold
        // bytes, not mbufs; every segment is while the port's pool runs
        // short, and with no heap for it then it is refused: lwIP keeps it
        // and the sender backs off, rather than the port running dry for
        // every other connection and socket.
        const bool short_of_mbufs = rx_pool_short(p);
        if (p->tot_len <= kCompactUpTo || short_of_mbufs) {
            if (copy_into_compact(p)) {
                pbuf_free(p);
                return true;
            }
            if (short_of_mbufs) return false;
        }
    }
    if (!push_chain(p)) return false;
    readable_ += p->tot_len;
    return true;
}

bool TcpReceived::copy_into_compact(const pbuf* p) noexcept
{
    if (append_to_tail(p)) return true;
    // Half of lwIP's heap stays for what sends copy into it (tcp_write).
    if (p->tot_len > kCompactBuffer || lwip_stats.mem.used + kCompactBuffer > MEM_SIZE / 2) return false;
    pbuf* compact = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(kCompactBuffer), PBUF_RAM);
    if (compact == nullptr) return false;
    compact->len = compact->tot_len = 0;
    if (!push_chain(compact)) {
        pbuf_free(compact);
        return false;
    }
    tail_room_ = kCompactBuffer;
    return append_to_tail(p);
}

bool TcpReceived::append_to_tail(const pbuf* p) noexcept
{
    if (p->tot_len > tail_room_) return false;
    pbuf* tail = ring_[slot(held_ - 1)];
    // Ours alone (one pbuf, never handed to lwIP): growing its length
    // inside the allocation breaks no chain's tot_len.
    pbuf_copy_partial(p, static_cast<char*>(tail->payload) + tail->len, p->tot_len, 0);
    tail->len = static_cast<u16_t>(tail->len + p->tot_len);
    tail->tot_len = tail->len;
    tail_room_ -= p->tot_len;
    readable_ += p->tot_len;
    return true;
}

bool TcpReceived::push_chain(pbuf* p) noexcept
{
    if (held_ == ring_.size() && !grow()) return false;
    ring_[slot(held_)] = p;
    ++held_;
    tail_room_ = 0;
    return true;
}

bool TcpReceived::grow() noexcept
{
    if (ring_.size() >= kMaxChains) return false;
    std::vector<pbuf*> bigger;
    try {
        bigger.resize(ring_.size() * 2, nullptr);
    } catch (const std::bad_alloc&) {
        return false;
    }
    for (std::size_t k = 0; k < held_; ++k)
        bigger[k] = ring_[slot(k)];
    ring_.swap(bigger);
    head_ = 0;
    return true;
}

uint64_t TcpReceived::copy_to(const MutableSegment* dest, std::size_t count, uint64_t dest_offset,
                              uint64_t max) const noexcept
{
    // Find where writing starts in `dest`.
    std::size_t d = 0;
    while (d < count && dest_offset >= dest[d].length) {
        dest_offset -= dest[d].length;
        ++d;
    }
    uint64_t copied = 0;
    uint32_t skip = head_offset_;
    for (std::size_t k = 0; k < held_ && copied < max && d < count; ++k) {
        for (const pbuf* q = ring_[slot(k)]; q != nullptr && copied < max && d < count; q = q->next) {
            if (skip >= q->len) {
                skip -= q->len;
                continue;
            }
            uint32_t at = skip;
            skip = 0;
            while (at < q->len && copied < max && d < count) {
                const std::size_t room = dest[d].length - dest_offset;
                const std::size_t n = std::min<uint64_t>({room, static_cast<uint64_t>(q->len - at), max - copied});
                std::memcpy(static_cast<char*>(dest[d].data) + dest_offset, static_cast<const char*>(q->payload) + at,
                            n);
                at += static_cast<uint32_t>(n);
                copied += n;
                dest_offset += n;
                if (dest_offset == dest[d].length) {
                    dest_offset = 0;
                    ++d;
                    while (d < count && dest[d].length == 0)
                        ++d;
                }
            }
        }
    }
    return copied;
}

uint64_t TcpReceived::consume(uint64_t n) noexcept
{
    n = std::min(n, readable_);
    readable_ -= n;
    const uint64_t consumed = n;
    while (n != 0) {
        pbuf* head = ring_[head_];
        const uint32_t left = head->tot_len - head_offset_;
        if (n < left) {
            head_offset_ += static_cast<uint32_t>(n);
            break;
        }
        n -= left;
        pbuf_free(head);
        head_ = slot(1);
        --held_;
        head_offset_ = 0;
    }
    if (held_ == 0) tail_room_ = 0;
    return consumed;
}

} // namespace ringsock::stack
