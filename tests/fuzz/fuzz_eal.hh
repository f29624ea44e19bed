// EAL for a libFuzzer target: started once per process from
// LLVMFuzzerInitialize, without hugepages, PCI, devices or telemetry, under
// a file prefix of its own (name + pid) so parallel fuzzers and tests never
// share runtime files. Aborts when EAL refuses: a fuzzer without it is no test.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <unistd.h>

namespace ringsock::fuzzing {

inline void start_eal(const std::string& name)
{
    const std::string prefix = "--file-prefix=" + name + std::to_string(getpid());
    std::vector<std::string> args = {name, "--no-huge", "-m",  "256", "--no-pci", "--no-telemetry", "--log-level=error",
                                     "-l", "0",         prefix};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "%s: rte_eal_init failed\n", name.c_str());
        std::abort();
    }
}

} // namespace ringsock::fuzzing
