// Driver profiles: what a run asks of EAL, its port, its mempools and its
// engines, parsed from a TOML file in drivers_config/ plus `--set key=value`
// overrides from the command line.
//
// Loading is start-up work (any thread, before EAL exists): it never touches
// a device. It validates everything that can be checked without one (types,
// ranges, names of offloads and RSS fields, address syntax) and refuses a bad
// profile with ProfileError naming the file, the line, the key, the value and
// what was expected. What only the PMD can answer (is this offload
// supported? how long is its RSS key?) is checked later by Port.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ringsock::dataplane {

// Thrown for a profile that cannot be used. what() is the whole message:
// "drivers_config/x.toml:12: port.rx_queues = 0: expected an integer from 1 to 1024".
class ProfileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// How much a run needs an offload the profile names.
enum class OffloadPolicy {
    off,       // do not ask for it
    preferred, // ask if the PMD has it, otherwise warn once and go without
    required,  // refuse to start without it
};

struct OffloadRequest {
    std::string name;  // DPDK's name, lower case: "ipv4_cksum"
    uint64_t flag = 0; // RTE_ETH_RX_OFFLOAD_* or RTE_ETH_TX_OFFLOAD_*
    OffloadPolicy policy = OffloadPolicy::off;
};

struct EalProfile {
    std::string lcores = "0";            // EAL -l list; engines run on every lcore listed
    std::optional<unsigned> main_lcore;  // default: the first lcore listed
    unsigned memory_mb = 512;            // -m, used when no hugepages are mounted
    std::string file_prefix;             // default: "ringsock-<pid>", unique per run
    std::vector<std::string> extra_args; // passed to EAL verbatim, last
    // Application threads that receive or send get an lcore id and so a
    // mempool cache (dataplane/application_thread.hh). EAL then refuses
    // secondary processes (dpdk-dumpcap, dpdk-pdump, dpdk-proc-info): set
    // false to keep them attachable, at the cost of an uncached mbuf free
    // per datagram on those threads.
    bool register_application_threads = true;
};

struct RssProfile {
    // "hash": the port hashes flows to its RX queues (rx_queues > 1 needs
    // the PMD to offer RSS). "none": the device fills each queue itself (a
    // pcap file, a memif ring, an af_packet fanout member per queue):
    // ringsock configures no RSS and assumes nothing of which queue a flow
    // arrives on (frames for lwIP or a socket homed elsewhere are handed to
    // their engine).
    std::string mode = "hash";
    std::vector<std::string> fields;   // as written: "ipv4", "udp", ...
    uint64_t hash_fields = 0;          // RTE_ETH_RSS_* union of `fields`
    std::vector<uint8_t> key;          // empty: the PMD's default key
    std::optional<unsigned> reta_size; // expected RETA size; checked against the PMD
};

struct PortProfile {
    std::string device;  // vdev string ("net_memif0,role=client,...") or PCI address
    bool is_pci = false; // device parsed as a PCI address (DDDD:BB:DD.F or BB:DD.F)
    uint16_t rx_queues = 1;
    uint16_t tx_queues = 1;
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint16_t mtu = 1500;
    bool promiscuous = true;
    unsigned link_timeout_ms = 3000;
    bool link_required = false; // no link within the timeout: error (true) or warning (false)
    std::vector<OffloadRequest> rx_offloads;
    std::vector<OffloadRequest> tx_offloads;
    RssProfile rss;

    // The device's EAL name: the vdev string up to its first comma, or the
    // PCI address as given.
    std::string device_name() const;
};

struct MempoolProfile {
    unsigned mbufs = 16383;    // per NUMA socket; 2^n - 1 suits the ring underneath
    unsigned cache = 256;      // per-lcore cache, at most RTE_MEMPOOL_CACHE_MAX_SIZE
    unsigned data_room = 2176; // RTE_MBUF_DEFAULT_BUF_SIZE: 2048 + headroom
    unsigned priv_size = 64;   // per-mbuf private area (the stack keeps its pbuf there)
    // The ring beneath the caches (DPDK's mempool ops). Relaxed tail sync by
    // default: application threads free and allocate mbufs there and may be
    // descheduled mid-operation, which in ring_mp_mc makes every other
    // thread of the pool spin until they run again.
    std::string ops = "ring_mt_rts";
};

struct EngineProfile {
    unsigned burst = 32;        // rx_burst size; at most kMaxBurst
    unsigned idle_sleep_us = 0; // 0: poll without pause; else sleep this long when idle
    unsigned idle_polls = 64;   // empty polls in a row before the engine counts as idle

    static constexpr unsigned kMaxBurst = 256;
};

// Addresses the stack gives the port; all optional at this layer.
struct InterfaceProfile {
    std::string mac;          // "" = the port's own MAC
    std::string ipv4;         // "198.18.0.2/24"
    std::string ipv4_gateway; // "198.18.0.1"
    std::string ipv6;         // "2001:2::2/64"
};

struct Profile {
    std::string source; // where it came from, for messages
    EalProfile eal;
    PortProfile port;
    MempoolProfile mempool;
    EngineProfile engine;
    InterfaceProfile interface;
};

// Parses and validates `path`, then applies `overrides` ("port.rx_queues=4";
// the value is TOML: strings quoted or bare, numbers, booleans, [arrays]).
// Throws ProfileError; never returns a half-valid profile.
Profile load_profile(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});

// The same, from TOML text; `source_name` stands for the file in messages.
Profile parse_profile(std::string_view toml_text, std::string_view source_name,
                      const std::vector<std::string>& overrides = {});

} // namespace ringsock::dataplane
