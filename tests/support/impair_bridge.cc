// impair_bridge IF_A IF_B LOSS REORDER DELAY_US SECONDS: forwards every
// Ethernet frame between two interfaces (AF_PACKET), dropping each with
// probability LOSS, holding each for DELAY_US, and holding a REORDER
// fraction for twice as long so later frames overtake them: netem's
// `loss 1% reorder 1% delay 1ms` for kernels built without netem (this
// one). Stops after SECONDS or at SIGTERM and prints what it did. A test
// helper, not part of ringsock.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int)
{
    g_stop = 1;
}

int open_on(const char* name)
{
    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) return -1;
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ALL);
    at.sll_ifindex = static_cast<int>(if_nametoindex(name));
    const int one = 1;
    // Our own transmissions are not frames to forward back.
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    if (at.sll_ifindex == 0 || bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 7) {
        std::fprintf(stderr, "usage: impair_bridge IF_A IF_B LOSS REORDER DELAY_US SECONDS\n");
        return 2;
    }
    const int fds[2] = {open_on(argv[1]), open_on(argv[2])};
    if (fds[0] < 0 || fds[1] < 0) {
        std::perror("impair_bridge: interface");
        return 1;
    }
    const double loss = std::atof(argv[3]);
    const double reorder = std::atof(argv[4]);
    const auto delay = std::chrono::microseconds(std::atol(argv[5]));
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atol(argv[6]));
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::mt19937_64 rng(20261123);
    std::uniform_real_distribution<double> chance(0, 1);
    using Clock = std::chrono::steady_clock;
    // Frames waiting for their time, per direction (0: A to B).
    std::multimap<Clock::time_point, std::vector<char>> held[2];
    unsigned long long forwarded = 0, dropped = 0, reordered = 0;
    std::vector<char> frame(65536);
    while (g_stop == 0 && Clock::now() < end) {
        auto next = Clock::now() + std::chrono::milliseconds(50);
        for (const auto& h : held)
            if (!h.empty() && h.begin()->first < next) next = h.begin()->first;
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
        pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        poll(p, 2, static_cast<int>(std::max<long long>(0, wait)));
        for (int side = 0; side < 2; ++side) {
            if ((p[side].revents & POLLIN) == 0) continue;
            for (int burst = 0; burst < 64; ++burst) {
                const ssize_t n = recv(fds[side], frame.data(), frame.size(), MSG_DONTWAIT);
                if (n <= 0) break;
                if (chance(rng) < loss) {
                    ++dropped;
                    continue;
                }
                auto due = Clock::now() + delay;
                if (chance(rng) < reorder) {
                    due += delay;
                    ++reordered;
                }
                held[side].emplace(due, std::vector<char>(frame.begin(), frame.begin() + n));
            }
        }
        const auto now = Clock::now();
        for (int side = 0; side < 2; ++side) {
            while (!held[side].empty() && held[side].begin()->first <= now) {
                const auto& f = held[side].begin()->second;
                if (send(fds[1 - side], f.data(), f.size(), 0) > 0) ++forwarded;
                held[side].erase(held[side].begin());
            }
        }
    }
    std::printf("impair_bridge: forwarded %llu dropped %llu reordered %llu\n", forwarded, dropped, reordered);
    return 0;
}
