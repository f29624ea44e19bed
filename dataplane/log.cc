// DPDK writes its log to a FILE*; fopencookie gives it one whose writes land
// in spdlog, split at newlines, at the level DPDK says the message has.
#include "dataplane/log.hh"

#include <array>
#include <stdexcept>
#include <string>

#include <rte_log.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {
namespace {

struct LevelName {
    std::string_view name;
    spdlog::level::level_enum spdlog_level;
    uint32_t dpdk_level;
};

constexpr std::array<LevelName, 7> kLevels{{
    {"trace", spdlog::level::trace, RTE_LOG_DEBUG},
    {"debug", spdlog::level::debug, RTE_LOG_DEBUG},
    {"info", spdlog::level::info, RTE_LOG_INFO},
    {"warn", spdlog::level::warn, RTE_LOG_WARNING},
    {"error", spdlog::level::err, RTE_LOG_ERR},
    {"critical", spdlog::level::critical, RTE_LOG_CRIT},
    {"off", spdlog::level::off, RTE_LOG_EMERG},
}};

spdlog::level::level_enum spdlog_level_of_dpdk(int dpdk_level)
{
    if (dpdk_level <= static_cast<int>(RTE_LOG_CRIT)) return spdlog::level::critical;
    if (dpdk_level == static_cast<int>(RTE_LOG_ERR)) return spdlog::level::err;
    if (dpdk_level == static_cast<int>(RTE_LOG_WARNING)) return spdlog::level::warn;
    if (dpdk_level <= static_cast<int>(RTE_LOG_INFO)) return spdlog::level::info;
    return spdlog::level::debug;
}

// DPDK may emit one line in several writes, and from several threads, so
// each thread assembles its own line.
ssize_t write_to_spdlog(void*, const char* data, size_t size)
{
    thread_local std::string pending;
    pending.append(data, size);
    size_t start = 0;
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
        if (nl > start)
            spdlog::log(spdlog_level_of_dpdk(rte_log_cur_msg_loglevel()), "dpdk: {}",
                        std::string_view(pending).substr(start, nl - start));
        start = nl + 1;
    }
    pending.erase(0, start);
    return static_cast<ssize_t>(size);
}

} // namespace

void set_log_level(std::string_view level)
{
    for (const auto& known : kLevels) {
        if (known.name == level) {
            spdlog::set_level(known.spdlog_level);
            rte_log_set_global_level(known.dpdk_level);
            return;
        }
    }
    throw std::invalid_argument("log level '" + std::string(level) +
                                "': expected one of trace, debug, info, warn, error, critical, off");
}

DpdkLogBridge::DpdkLogBridge()
{
    cookie_io_functions_t io{};
    io.write = write_to_spdlog;
    stream_ = fopencookie(nullptr, "w", io);
    if (stream_ == nullptr) throw std::runtime_error("cannot open the DPDK log bridge stream");
    setvbuf(stream_, nullptr, _IONBF, 0);
    rte_openlog_stream(stream_);
}

DpdkLogBridge::~DpdkLogBridge()
{
    rte_openlog_stream(nullptr);
    std::fclose(stream_);
}

} // namespace ringsock::dataplane
