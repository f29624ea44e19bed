// What every ringsock program shares on its command line and at exit: the
// options that pick and amend the profile, bound the run and shape the
// output, and the mapping of failures to exit codes (2: a bad option or
// profile, 1: start-up failed), with DPDK's log routed through spdlog for
// the whole run. Header-only; for programs, not the library.
#pragma once

#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dataplane/log.hh"
#include "dataplane/profile.hh"
#include "dataplane/signals.hh"

namespace ringsock::dataplane {

struct ToolOptions {
    std::string profile;
    std::vector<std::string> overrides;
    double duration_s = 0;
    unsigned interval_ms = 1000;
    bool json = false;
    std::string log_level = "info";

    // Adds --profile, --set, --duration, --interval-ms, --json, --log-level.
    void add_to(CLI::App& app)
    {
        app.add_option("--profile,-p", profile, "driver profile (TOML) from drivers_config/")->capture_default_str();
        app.add_option("--set,-s", overrides, "override a profile key: section.key=value (repeatable)");
        app.add_option("--duration,-d", duration_s, "stop after this many seconds (0: at SIGINT/SIGTERM)")
            ->check(CLI::NonNegativeNumber);
        app.add_option("--interval-ms", interval_ms, "live line period")->check(CLI::Range(10u, 60000u));
        app.add_flag("--json", json, "one JSON object per line instead of text");
        app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
            ->capture_default_str();
    }
};

// Sets the log level, bridges DPDK's log, runs `body` and turns what it
// throws into a message prefixed with `program` and an exit code.
inline int run_tool(const char* program, const ToolOptions& options, const std::function<int()>& body)
{
    try {
        set_log_level(options.log_level);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "%s: --log-level %s\n", program, e.what());
        return 2;
    }
    DpdkLogBridge dpdk_log;
    try {
        return body();
    } catch (const ProfileError& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
}

} // namespace ringsock::dataplane
