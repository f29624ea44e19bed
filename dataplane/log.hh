// Logging set-up: one level for the whole process, taken from the command
// line, and DPDK's own log routed into spdlog so that EAL and PMD messages
// carry the same format and obey the same level as ours.
//
// Start-up and shutdown only, from the main thread. Nothing here is meant
// for the per-packet path: engines count, they do not log.
#pragma once

#include <cstdio>
#include <string_view>

namespace ringsock::dataplane {

// Sets spdlog's level and DPDK's global log level from one name: trace,
// debug, info, warn, error, critical or off. Throws std::invalid_argument
// naming the accepted values for anything else.
void set_log_level(std::string_view level);

// Routes DPDK's log stream into spdlog for as long as it lives. Construct
// it before Eal (so EAL's start-up messages are caught) and let it outlive
// Eal (so cleanup messages are too). One per process.
class DpdkLogBridge {
public:
    DpdkLogBridge();
    ~DpdkLogBridge();
    DpdkLogBridge(const DpdkLogBridge&) = delete;
    DpdkLogBridge& operator=(const DpdkLogBridge&) = delete;

private:
    std::FILE* stream_ = nullptr;
};

} // namespace ringsock::dataplane
