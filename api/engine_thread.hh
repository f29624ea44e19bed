// Which engine the calling thread runs: set by the engine's own loop
// (Runtime::lane_main) for its life, -1 on every other thread. Asked on
// every submission and on every receive made on an engine (run to
// completion), so it is initial-exec TLS, one load from the thread pointer;
// rte_lcore_id() asked from this library goes through __tls_get_addr.
// libringsock is linked, never dlopen()ed late, so the static TLS block
// has room for it.
#pragma once

namespace ringsock::api {

inline thread_local int current_engine __attribute__((tls_model("initial-exec"))) = -1;

} // namespace ringsock::api
