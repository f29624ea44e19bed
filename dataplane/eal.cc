// EAL's failures arrive as an rte_errno after a log line; this file turns
// each into a sentence that says what to do, since the log line alone
// rarely does.
#include "dataplane/eal.hh"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <spdlog/spdlog.h>

namespace ringsock::dataplane {
namespace {

bool hugetlbfs_mounted()
{
    std::ifstream mounts("/proc/mounts");
    std::string device, mount_point, type;
    std::string rest;
    while (mounts >> device >> mount_point >> type && std::getline(mounts, rest))
        if (type == "hugetlbfs") return true;
    return false;
}

uint64_t free_hugepages()
{
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t value = 0;
    std::string unit;
    while (meminfo >> key >> value) {
        if (key == "HugePages_Free:") return value;
        std::getline(meminfo, unit);
    }
    return 0;
}

std::string advice_for(int error)
{
    switch (error) {
    case EACCES:
        return "permission denied: run as root (or with CAP_SYS_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK)";
    case EAGAIN:
        return "EAL could not reserve memory or lock its runtime files: is another process using "
               "the same --file-prefix? With --no-huge, raise eal.memory_mb";
    case EALREADY:
        return "EAL is already initialised in this process: create one Eal per process";
    case ENODEV:
        return "a device named in the profile could not be probed: check port.device (vdev "
               "driver name, or a PCI address bound to vfio-pci)";
    case ENOMEM:
        return "out of memory: raise eal.memory_mb (with --no-huge) or reserve more hugepages";
    case ENOTSUP:
        return "the EAL was asked for something this build or host does not support";
    case EPROTO:
        return "the lcore list or EAL arguments could not be parsed: check eal.lcores and eal.extra_args";
    case EINVAL:
        return "EAL rejected an argument: check eal.lcores, eal.extra_args and port.device";
    case ENOEXEC:
        return "a DPDK plugin could not be loaded";
    case EFAULT:
        return "the tailq configuration is corrupt";
    default:
        return std::strerror(error);
    }
}

} // namespace

HostMemory probe_host_memory()
{
    return HostMemory{hugetlbfs_mounted() && free_hugepages() > 0};
}

std::vector<std::string> eal_arguments(const Profile& profile, const HostMemory& host, const std::string& file_prefix)
{
    // An lcore-to-CPU map in extra_args (--lcores) replaces eal.lcores:
    // EAL refuses both at once.
    const bool mapped = std::any_of(profile.eal.extra_args.begin(), profile.eal.extra_args.end(),
                                    [](const std::string& a) { return a.rfind("--lcores", 0) == 0; });
    std::vector<std::string> args;
    if (!mapped) args = {"-l", profile.eal.lcores};
    if (profile.eal.main_lcore) args.insert(args.end(), {"--main-lcore", std::to_string(*profile.eal.main_lcore)});
    args.insert(args.end(), {"--file-prefix", file_prefix});
    if (!host.hugepages) args.insert(args.end(), {"--no-huge", "-m", std::to_string(profile.eal.memory_mb)});
    if (profile.port.is_pci) {
        args.insert(args.end(), {"-a", profile.port.device});
    } else {
        // A virtual device needs no PCI scan, and skipping it keeps EAL from
        // touching the host's real NICs.
        args.insert(args.end(), {"--no-pci", "--vdev", profile.port.device});
    }
    args.insert(args.end(), profile.eal.extra_args.begin(), profile.eal.extra_args.end());
    return args;
}

Eal::Eal(const Profile& profile, std::string program_name)
    : host_(probe_host_memory()),
      file_prefix_(profile.eal.file_prefix.empty() ? "ringsock-" + std::to_string(::getpid())
                                                   : profile.eal.file_prefix),
      arguments_(eal_arguments(profile, host_, file_prefix_))
{
    if (!host_.hugepages)
        spdlog::info("no hugepages mounted: EAL runs with --no-huge and {} MB of ordinary memory "
                     "(slower TLB behaviour; DPDK secondary processes such as dpdk-dumpcap cannot attach)",
                     profile.eal.memory_mb);

    std::vector<std::string> argv_storage{std::move(program_name)};
    argv_storage.insert(argv_storage.end(), arguments_.begin(), arguments_.end());
    std::vector<char*> argv;
    for (auto& arg : argv_storage)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    std::ostringstream joined;
    for (const auto& arg : arguments_)
        joined << ' ' << arg;
    spdlog::debug("EAL arguments:{}", joined.str());

    if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0) {
        const int error = rte_errno;
        // A failed start leaves the runtime directory it made; the prefix is ours.
        std::error_code ignored;
        if (const char* dir = rte_eal_get_runtime_dir(); dir != nullptr && *dir != '\0')
            std::filesystem::remove_all(dir, ignored);
        throw EalError("EAL start-up failed (" + std::string(rte_strerror(error)) + "): " + advice_for(error) +
                       ". Arguments:" + joined.str());
    }
}

Eal::~Eal()
{
    // EAL leaves its runtime directory (config, sockets, fbarrays) behind;
    // the prefix is this run's own, so nothing else can be using it.
    const std::filesystem::path runtime_dir = rte_eal_get_runtime_dir();
    if (rte_eal_cleanup() != 0) spdlog::warn("rte_eal_cleanup failed: {}", rte_strerror(rte_errno));
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
}

} // namespace ringsock::dataplane
