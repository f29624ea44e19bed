// Testbeds for integration tests, as RAII: a network namespace joined to
// the host by a veth (scripts/netns), and hugepages reserved for a test
// that needs DPDK secondary processes. Each undoes exactly what it did.
#pragma once

#include <string>

namespace ringsock::testing {

class Namespace {
public:
    // Runs `scripts/netns up name`; ok() is false (with why()) if it failed.
    // With `adopt`, no veth: that existing interface (a net_tap port's) is
    // moved in as eth0, and host_interface() is empty.
    explicit Namespace(std::string name, const std::string& adopt = "");
    ~Namespace(); // scripts/netns down name
    Namespace(const Namespace&) = delete;
    Namespace& operator=(const Namespace&) = delete;

    bool ok() const noexcept { return ok_; }
    const std::string& why() const noexcept { return why_; }
    const std::string& name() const noexcept { return name_; }
    // The host end of the veth, for net_af_packet's iface=.
    const std::string& host_interface() const noexcept { return host_interface_; }
    // `command` prefixed to run inside the namespace.
    std::string exec(const std::string& command) const;

private:
    std::string name_;
    std::string host_interface_;
    std::string why_;
    bool ok_ = false;
};

// Python, run inside a namespace, that sends `count` broadcast frames of
// ethertype 0x88B5 on eth0, each carrying its sequence number, paced in
// groups of 50 so no kernel queue between the veth ends overflows.
std::string raw_frame_sender(unsigned count, unsigned frame_size = 60);

class Hugepages {
public:
    // Reserves `pages` 2 MB pages and mounts a hugetlbfs if none is
    // mounted. ok() false (with why()) when the kernel refuses.
    explicit Hugepages(unsigned pages);
    ~Hugepages();
    Hugepages(const Hugepages&) = delete;
    Hugepages& operator=(const Hugepages&) = delete;

    bool ok() const noexcept { return ok_; }
    const std::string& why() const noexcept { return why_; }

private:
    bool ok_ = false;
    std::string why_;
    long previous_pages_ = -1;
    std::string mount_point_;
};

} // namespace ringsock::testing
