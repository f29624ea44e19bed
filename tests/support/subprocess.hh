// Child processes for integration tests: run a command and capture what it
// prints, or start one, signal it and collect its exit status. Test-only;
// every wait is bounded.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace ringsock::testing {

struct Finished {
    int exit_code = -1; // -1 when killed by a signal or not finished
    std::string output; // stdout and stderr together
    bool finished = false;
};

// Runs `command` under /bin/sh, waiting at most `limit`; kills it past that.
Finished run_shell(const std::string& command, std::chrono::seconds limit = std::chrono::seconds(60));

class Child {
public:
    // Starts argv[0] with stdout and stderr captured.
    explicit Child(const std::vector<std::string>& argv);
    ~Child(); // kills the child if it still runs
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const noexcept { return pid_; }
    void signal(int number) const;
    // Waits for exit, at most `limit`; then reads all remaining output.
    Finished wait(std::chrono::milliseconds limit);
    // Reads what is available now without blocking, appended to output().
    const std::string& poll_output();

private:
    pid_t pid_ = -1;
    int output_fd_ = -1;
    std::string output_;
};

// Polls `child`'s output until it holds `text` (true) or `limit` passes.
bool wait_for_output(Child& child, const std::string& text, std::chrono::seconds limit);

// The repository root and build root, from the environment meson sets.
std::string source_root();
std::string build_root();
bool running_as_root();

} // namespace ringsock::testing
