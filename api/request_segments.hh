// A request's WSABUF array as the stack's segment type (ConstSegment for
// sends, MutableSegment for receives), with no allocation for up to
// Request::kInlineBuffers buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "api/socket.hh"

namespace ringsock::api {

template <typename Segment>
class SegmentsOf {
public:
    explicit SegmentsOf(const Request& r)
    {
        if (r.buffer_count > Request::kInlineBuffers) {
            many_.resize(r.buffer_count);
            segments_ = many_.data();
        }
        for (uint32_t i = 0; i < r.buffer_count; ++i)
            segments_[i] = {r.buffers[i].buf, r.buffers[i].len};
    }
    SegmentsOf(const SegmentsOf&) = delete;
    SegmentsOf& operator=(const SegmentsOf&) = delete;
    const Segment* data() const noexcept { return segments_; }

private:
    Segment inline_[Request::kInlineBuffers];
    std::vector<Segment> many_;
    Segment* segments_ = inline_;
};

} // namespace ringsock::api
