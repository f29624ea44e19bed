// Copying a datagram's payload out of its mbuf into the application's
// buffers, for the engines and for receivers that take a queued datagram
// in their own thread. Here, apart, so the socket calls need no DPDK
// header beside the public one.
#pragma once

#include <cstdint>

#include "ringsock/winsock2.h"

struct rte_mbuf;

namespace ringsock::api {

// Fills buffers[0 .. count) in array order with no holes from `length`
// payload bytes at `offset` (the payload may span segments). Returns the
// bytes copied: less than `length` when the buffers are smaller.
uint32_t copy_payload(const rte_mbuf* m, uint32_t offset, uint32_t length, const WSABUF* buffers,
                      uint32_t count) noexcept;

void free_mbuf(rte_mbuf* m) noexcept;

} // namespace ringsock::api
