// The address a classified datagram was sent to, read again from its frame
// when an application asks for it (WSARecvMsg with IP_PKTINFO): the
// classifier does not keep it, as the socket queue's entry has no room for
// it and nearly no receive wants it.
#pragma once

#include <array>
#include <cstdint>

struct rte_mbuf;

namespace ringsock::stack {

// The destination address of the datagram in `m`, whose frame starts at
// rte_pktmbuf_mtod and whose payload at `payload_offset`, an IPv4 (`family`
// 4, in the first 4 bytes of `out`) or IPv6 one. False when the frame does
// not hold that family's header before the payload.
bool datagram_destination(const rte_mbuf& m, uint16_t payload_offset, uint8_t family,
                          std::array<uint8_t, 16>& out) noexcept;

} // namespace ringsock::stack
