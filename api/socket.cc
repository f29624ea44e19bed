#include <bit>
#include <new>

#include "api/socket.hh"

namespace ringsock::api {

bool Socket::size_queue_for(int32_t rcvbuf) noexcept
{
    const uint64_t wanted = rcvbuf > 0 ? static_cast<uint64_t>(rcvbuf) / kRcvbufBytesPerSlot : 0;
    uint64_t slots = std::bit_ceil(wanted < kQueueSlots ? uint64_t{kQueueSlots} : wanted);
    if (slots > kMaxQueueSlots) slots = kMaxQueueSlots;
    if (queue_->capacity() == slots) return true;
    try {
        // Empty: a socket is bound once, and a recycled one was drained when it closed.
        queue_ = std::make_unique<CompletionRing<QueuedDatagram>>(static_cast<uint32_t>(slots));
    } catch (const std::bad_alloc&) {
        return false;
    }
    return true;
}

} // namespace ringsock::api
