// What every overlapped request of ringsock-echo starts with: the
// OVERLAPPED a completion names, then which kind of request it is, so one
// completion port serves UDP slots, TCP accepts and TCP buffers alike.
#pragma once

#include <ringsock/winsock2.h>

#include <cstdint>

namespace ringsock::tools {

enum class EchoKind : uint8_t { udp, tcp_accept, tcp_buffer };

struct EchoOp {
    WSAOVERLAPPED ov; // first: a completion's lpOverlapped is the EchoOp
    EchoKind kind;
};

inline EchoOp* echo_op_of(LPOVERLAPPED ov)
{
    return reinterpret_cast<EchoOp*>(ov);
}

} // namespace ringsock::tools
