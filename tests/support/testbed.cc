#include "tests/support/testbed.hh"

#include <fstream>
#include <sstream>

#include <sys/mount.h>
#include <unistd.h>

#include "tests/support/subprocess.hh"

namespace ringsock::testing {

Namespace::Namespace(std::string name, const std::string& adopt) : name_(std::move(name))
{
    if (!running_as_root()) {
        why_ = "needs root for network namespaces";
        return;
    }
    const std::string extra = adopt.empty() ? "" : " --adopt " + adopt;
    const Finished up = run_shell(source_root() + "/scripts/netns up " + name_ + extra + " 2>&1");
    if (up.exit_code != 0) {
        why_ = "scripts/netns up failed: " + up.output;
        return;
    }
    ok_ = true;
    if (!adopt.empty()) return;
    std::istringstream lines(up.output);
    std::string line;
    while (std::getline(lines, line))
        if (!line.empty()) host_interface_ = line;
}

Namespace::~Namespace()
{
    run_shell(source_root() + "/scripts/netns down " + name_ + " >/dev/null 2>&1");
}

std::string Namespace::exec(const std::string& command) const
{
    return "ip netns exec " + name_ + " " + command;
}

std::string raw_frame_sender(unsigned count, unsigned frame_size)
{
    std::ostringstream program;
    program << "python3 -c '\n"
               "import socket, struct, time\n"
               "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
               "s.bind((\"eth0\", 0))\n"
               "head = b\"\\xff\" * 6 + b\"\\x02\\x00\\x00\\x00\\x00\\x01\" + b\"\\x88\\xb5\"\n"
               "for i in range("
            << count
            << "):\n"
               "    s.send(head + struct.pack(\"!I\", i) + b\"\\x00\" * ("
            << frame_size
            << " - 18))\n"
               "    if i % 50 == 49: time.sleep(0.002)\n"
               "'";
    return program.str();
}

Hugepages::Hugepages(unsigned pages)
{
    if (!running_as_root()) {
        why_ = "needs root to reserve hugepages";
        return;
    }
    const char* pages_file = "/proc/sys/vm/nr_hugepages";
    std::ifstream(pages_file) >> previous_pages_;
    if (previous_pages_ < static_cast<long>(pages)) {
        std::ofstream(pages_file) << pages;
        long now = 0;
        std::ifstream(pages_file) >> now;
        if (now < static_cast<long>(pages)) {
            why_ = "the kernel gave " + std::to_string(now) + " of " + std::to_string(pages) + " hugepages";
            std::ofstream(pages_file) << previous_pages_;
            previous_pages_ = -1;
            return;
        }
    } else {
        previous_pages_ = -1; // enough already: leave the setting alone
    }
    std::ifstream mounts("/proc/mounts");
    bool mounted = false;
    for (std::string dev, dir, type, rest; mounts >> dev >> dir >> type && std::getline(mounts, rest);)
        mounted = mounted || type == "hugetlbfs";
    if (!mounted) {
        char dir[] = "/tmp/ringsock-huge-XXXXXX";
        if (mkdtemp(dir) == nullptr || mount("nodev", dir, "hugetlbfs", 0, "pagesize=2M") != 0) {
            why_ = "cannot mount hugetlbfs";
            return;
        }
        mount_point_ = dir;
    }
    ok_ = true;
}

Hugepages::~Hugepages()
{
    if (!mount_point_.empty()) {
        // Lazily: a process still mapping the pages keeps them until it exits.
        umount2(mount_point_.c_str(), MNT_DETACH);
        rmdir(mount_point_.c_str());
    }
    if (previous_pages_ >= 0) std::ofstream("/proc/sys/vm/nr_hugepages") << previous_pages_;
}

} // namespace ringsock::testing
