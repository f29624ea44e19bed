// EAL start-up and cleanup as one RAII object.
//
// The EAL can be initialised once per process and must be cleaned up from
// the main thread, after every port and mempool is gone: construct Eal first
// and destroy it last. Arguments come from the profile (lcores, memory, the
// port's device, extra arguments) plus what the run needs: `--no-huge` when
// no hugepages are mounted, and a `--file-prefix` of its own so that tests
// and parallel runs never share runtime files.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/profile.hh"

namespace ringsock::dataplane {

class EalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What the host offers, separated out so argument building is testable.
struct HostMemory {
    bool hugepages = false; // hugetlbfs mounted with pages free
};

// True when a hugetlbfs is mounted and at least one huge page is free.
HostMemory probe_host_memory();

// The argv EAL gets (without argv[0]) for `profile` on a host like `host`.
std::vector<std::string> eal_arguments(const Profile& profile, const HostMemory& host, const std::string& file_prefix);

class Eal {
public:
    // Initialises EAL. Throws EalError with what happened and what to do.
    explicit Eal(const Profile& profile, std::string program_name = "ringsock");
    ~Eal();
    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;

    const std::string& file_prefix() const noexcept { return file_prefix_; }
    bool hugepages() const noexcept { return host_.hugepages; }
    const std::vector<std::string>& arguments() const noexcept { return arguments_; }

private:
    HostMemory host_;
    std::string file_prefix_;
    std::vector<std::string> arguments_;
};

} // namespace ringsock::dataplane
