#include "tests/support/subprocess.hh"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ringsock::testing {
namespace {

void drain(int fd, std::string& into)
{
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n > 0) {
            into.append(buffer, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return;
    }
}

int exit_code_of(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

Child::Child(const std::vector<std::string>& argv)
{
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        // The test runner may block signals; the child must start clean.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        const std::string why = "exec " + argv[0] + ": " + std::strerror(errno) + "\n";
        (void)!write(STDERR_FILENO, why.data(), why.size());
        _exit(127);
    }
    close(pipe_fds[1]);
    output_fd_ = pipe_fds[0];
    fcntl(output_fd_, F_SETFL, O_NONBLOCK);
}

Child::~Child()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (output_fd_ >= 0) close(output_fd_);
}

void Child::signal(int number) const
{
    if (pid_ > 0) kill(pid_, number);
}

const std::string& Child::poll_output()
{
    if (output_fd_ >= 0) drain(output_fd_, output_);
    return output_;
}

Finished Child::wait(std::chrono::milliseconds limit)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    Finished result;
    while (pid_ > 0) {
        int status = 0;
        const pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_) {
            result.exit_code = exit_code_of(status);
            result.finished = true;
            pid_ = -1;
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) break;
        poll_output();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    poll_output();
    result.output = output_;
    return result;
}

Finished run_shell(const std::string& command, std::chrono::seconds limit)
{
    Child child({"/bin/sh", "-c", command});
    Finished result = child.wait(limit);
    return result;
}

std::string source_root()
{
    const char* root = std::getenv("RINGSOCK_SOURCE_ROOT");
    return root != nullptr ? root : ".";
}

std::string build_root()
{
    const char* root = std::getenv("RINGSOCK_BUILD_ROOT");
    return root != nullptr ? root : ".";
}

bool running_as_root()
{
    return geteuid() == 0;
}

bool wait_for_output(Child& child, const std::string& text, std::chrono::seconds limit)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (child.poll_output().find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

} // namespace ringsock::testing
