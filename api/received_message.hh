// WSARecvMsg's part of a datagram's receive beyond WSARecvFrom's: the
// message's control records (IP_PKTINFO, IP_HOPLIMIT, IP_ECN and IPv6's) and its flags out,
// written by whichever thread completes the receive (the engine for a
// posted one, the caller for one it takes from the queue at once).
#pragma once

#include <cstdint>

#include "api/endpoint.hh"
#include "ringsock/winsock2.h"

struct rte_mbuf;

namespace ringsock::api {

class Runtime;
struct Socket;

// Fills `message`'s control buffer with the records `s` asked for (its
// length set to what was written, MSG_CTRUNC when a record did not fit) and
// its flags (MSG_MCAST, MSG_BCAST, MSG_TRUNC when `truncated`) for the
// datagram in `m` (payload at `payload_offset`, source of `family`).
void write_message_extras(const Runtime& rt, const Socket& s, WSAMSG& message, const rte_mbuf& m,
                          uint16_t payload_offset, uint8_t family, bool truncated) noexcept;

} // namespace ringsock::api
