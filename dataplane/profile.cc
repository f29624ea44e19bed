// Driver profiles: TOML text in, a validated Profile out, or one ProfileError
// that names the file, the line, the dotted key, the value as written and what
// was expected. This file is the schema: one reader per section and the
// checks that span sections; the document machinery is in profile_reader,
// the value parsers in profile_values. Start-up code, callable from any
// thread before EAL exists; nothing here touches a device, and what only the
// PMD can answer is left to Port. toml++ and std::string throw freely
// inside; only ProfileError leaves.
#include "dataplane/profile.hh"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/profile_reader.hh"
#include "dataplane/profile_values.hh"

namespace ringsock::dataplane {

namespace {

using namespace profile_detail;

// Limits. Each one is DPDK's own constant or a bound past which the value is
// surely a typo; Port still asks the PMD for its real limits.

constexpr int64_t kMaxQueues = 1024;       // RTE_MAX_QUEUES_PER_PORT
constexpr int64_t kMinDescriptors = 32;    // below every PMD's minimum ring
constexpr int64_t kMaxDescriptors = 32768; // mlx5's maximum, the largest
constexpr int64_t kMinMtu = 68;            // RFC 791: every IPv4 link carries 68
constexpr int64_t kMaxMtu = 9600;          // the largest jumbo frame NICs take
constexpr int64_t kMinMbufs = 1024;
constexpr int64_t kMaxMbufs = int64_t{1} << 24;
constexpr int64_t kMinDataRoom = 256;
constexpr int64_t kMaxDataRoom = UINT16_MAX; // rte_pktmbuf_pool_create takes uint16_t
constexpr int64_t kMaxPrivSize = 4096;
constexpr int64_t kMaxRetaSize = UINT16_MAX; // rte_eth_dev_info.reta_size is uint16_t

static_assert(kMinDataRoom > RTE_PKTMBUF_HEADROOM,
              "the smallest data room must leave room for a frame after the headroom");
static_assert(RTE_MEMPOOL_CACHE_MAX_SIZE == 512, "messages below quote 512");

// DPDK refuses a mempool whose cache flush threshold (1.5 x cache) exceeds
// its size; the same threshold bounds what one lcore's cache may hold.
constexpr uint64_t cache_flush_threshold(uint64_t cache)
{
    return cache * 3 / 2;
}

// [eal]

void read_eal(const Section& eal, EalProfile& out)
{
    eal.allow_only({"lcores", "main_lcore", "memory_mb", "file_prefix", "extra_args", "register_application_threads"});

    const std::string lcores_expected = "expected an EAL lcore list such as \"0\", \"0-3\" or \"1,3,5-7\" "
                                        "(lcore ids 0 to " +
                                        std::to_string(kMaxLcore) + ", ranges low-high)";
    eal.string("lcores", out.lcores, lcores_expected);
    std::optional<std::vector<unsigned>> lcores = parse_lcore_list(out.lcores);
    if (!lcores) eal.fail("lcores", lcores_expected, "\"" + out.lcores + "\"");

    eal.integer("main_lcore", out.main_lcore, 0, kMaxLcore);
    if (out.main_lcore && std::find(lcores->begin(), lcores->end(), *out.main_lcore) == lcores->end())
        eal.fail("main_lcore", "expected one of the lcores in eal.lcores (\"" + out.lcores + "\")");

    eal.integer("memory_mb", out.memory_mb, 64, 1 << 20);

    const std::string prefix_expected = "expected a file name without '/' or spaces, or \"\" for ringsock-<pid>";
    eal.string("file_prefix", out.file_prefix, prefix_expected);
    if (out.file_prefix.find_first_of("/ \t\n") != std::string::npos) eal.fail("file_prefix", prefix_expected);

    eal.string_list("extra_args", out.extra_args, "expected an array of strings");
    eal.boolean("register_application_threads", out.register_application_threads);
}

// [port] and its [port.offloads.*], [port.rss]

std::vector<OffloadRequest> read_offloads(const Section& offloads, Direction direction)
{
    const char* what = direction == Direction::rx ? "rx" : "tx";
    const std::vector<OffloadName>& names = offload_names(direction);
    std::vector<OffloadRequest> requests;
    if (offloads.table() == nullptr) return requests;

    for (auto&& [key, node] : *offloads.table()) {
        const std::string name = lower(key.str());
        auto known = std::find_if(names.begin(), names.end(), [&](const OffloadName& n) { return n.name == name; });
        if (known == names.end()) {
            std::vector<std::string> valid;
            for (const OffloadName& n : names)
                valid.push_back(n.name);
            offloads.fail(key.str(),
                          std::string("not a DPDK ") + what + " offload name; expected one of: " + join(valid));
        }
        if (std::any_of(requests.begin(), requests.end(),
                        [&](const OffloadRequest& r) { return r.flag == known->flag; }))
            offloads.fail(key.str(), "expected each offload once; " + name + " is named twice");

        std::string policy_text;
        const char* policy_expected = "expected \"off\", \"preferred\" or \"required\"";
        offloads.string(key.str(), policy_text, policy_expected);
        OffloadPolicy policy;
        if (policy_text == "off")
            policy = OffloadPolicy::off;
        else if (policy_text == "preferred")
            policy = OffloadPolicy::preferred;
        else if (policy_text == "required")
            policy = OffloadPolicy::required;
        else
            offloads.fail(key.str(), policy_expected);
        requests.push_back({known->name, known->flag, policy});
    }
    return requests;
}

void read_rss(const Section& rss, RssProfile& out)
{
    rss.allow_only({"mode", "fields", "key", "reta_size"});
    const char* mode_expected = "expected \"hash\" (the port spreads flows over its queues) or \"none\" "
                                "(the device fills each queue itself)";
    if (rss.string("mode", out.mode, mode_expected) && out.mode != "hash" && out.mode != "none")
        rss.fail("mode", mode_expected);

    std::vector<std::string> valid;
    for (const RssFieldName& field : kRssFields)
        valid.emplace_back(field.name);
    rss.string_list("fields", out.fields, "expected an array of RSS field names");
    out.hash_fields = 0;
    for (size_t i = 0; i < out.fields.size(); ++i) {
        auto field = std::find_if(std::begin(kRssFields), std::end(kRssFields),
                                  [&](const RssFieldName& f) { return f.name == out.fields[i]; });
        if (field == std::end(kRssFields))
            rss.reader().fail(rss.key_path("fields") + "[" + std::to_string(i) + "]",
                              rss.find("fields")->as_array()->get(i), "expected an RSS field, one of: " + join(valid));
        out.hash_fields |= field->hash_fields;
    }

    const char* key_expected = "expected hex bytes (\"6d5a56da...\" or \"6d:5a:56:da:...\", "
                               "an even number of digits), or \"\" for the PMD's default key";
    std::string key_text;
    if (rss.string("key", key_text, key_expected)) {
        std::optional<std::vector<uint8_t>> key = parse_hex_bytes(key_text);
        if (!key) rss.fail("key", key_expected);
        out.key = std::move(*key);
    }

    rss.integer("reta_size", out.reta_size, 1, kMaxRetaSize);
}

void read_port(const Section& port, PortProfile& out)
{
    port.allow_only({"device", "rx_queues", "tx_queues", "rx_descriptors", "tx_descriptors", "mtu", "promiscuous",
                     "link_timeout_ms", "link_required", "offloads", "rss"});

    const char* device_expected =
        "expected a vdev string such as \"net_null0\" or a PCI address such as \"0000:3b:00.0\"";
    if (!port.string("device", out.device, device_expected))
        port.fail("device", std::string("missing; ") + device_expected);
    if (out.device.empty() || out.device.find_first_of(" \t\n") != std::string::npos)
        port.fail("device", device_expected);
    out.is_pci = is_pci_address(out.device_name());

    port.integer("rx_queues", out.rx_queues, 1, kMaxQueues);
    port.integer("tx_queues", out.tx_queues, 1, kMaxQueues);
    port.integer("rx_descriptors", out.rx_descriptors, kMinDescriptors, kMaxDescriptors);
    port.integer("tx_descriptors", out.tx_descriptors, kMinDescriptors, kMaxDescriptors);
    port.integer("mtu", out.mtu, kMinMtu, kMaxMtu);
    port.boolean("promiscuous", out.promiscuous);
    port.integer("link_timeout_ms", out.link_timeout_ms, 0, 600000);
    port.boolean("link_required", out.link_required);

    Section offloads = port.section("offloads");
    offloads.allow_only({"rx", "tx"});
    out.rx_offloads = read_offloads(offloads.section("rx"), Direction::rx);
    out.tx_offloads = read_offloads(offloads.section("tx"), Direction::tx);

    read_rss(port.section("rss"), out.rss);
}

// [mempool], [engine]

void read_mempool(const Section& mempool, MempoolProfile& out)
{
    mempool.allow_only({"mbufs", "cache", "data_room", "priv_size", "ops"});
    mempool.integer("mbufs", out.mbufs, kMinMbufs, kMaxMbufs);
    mempool.integer("cache", out.cache, 0, RTE_MEMPOOL_CACHE_MAX_SIZE);
    mempool.integer("data_room", out.data_room, kMinDataRoom, kMaxDataRoom);
    mempool.integer("priv_size", out.priv_size, 0, kMaxPrivSize);
    if (out.priv_size % RTE_MBUF_PRIV_ALIGN != 0)
        mempool.fail("priv_size",
                     "expected a multiple of " + std::to_string(RTE_MBUF_PRIV_ALIGN) + " (RTE_MBUF_PRIV_ALIGN)");
    const char* ops_expected = "expected \"ring_mt_rts\", \"ring_mt_hts\" or \"ring_mp_mc\"";
    if (mempool.string("ops", out.ops, ops_expected) && out.ops != "ring_mt_rts" && out.ops != "ring_mt_hts" &&
        out.ops != "ring_mp_mc")
        mempool.fail("ops", ops_expected);
}

// The port fills every RX descriptor from the pool when it starts, and each
// lcore's cache may hold up to 1.5 x cache mbufs beyond that (DPDK's flush
// threshold, which it also requires to fit in the pool). A pool smaller than
// both cannot start the port. This counts one pool for the whole port; with
// mempool.mbufs per NUMA socket that is the worst case, all queues on one.
void check_pool_fills_rings(const Section& root, const Profile& profile)
{
    const uint64_t lcores = parse_lcore_list(profile.eal.lcores)->size();
    const uint64_t rings = uint64_t{profile.port.rx_queues} * profile.port.rx_descriptors;
    const uint64_t per_cache = cache_flush_threshold(profile.mempool.cache);
    const uint64_t needed = rings + lcores * per_cache;
    if (profile.mempool.mbufs >= needed) return;
    root.section("mempool").fail(
        "mbufs",
        "expected at least " + std::to_string(needed) + ": the RX rings take port.rx_queues x " +
            "port.rx_descriptors = " + std::to_string(profile.port.rx_queues) + " x " +
            std::to_string(profile.port.rx_descriptors) + " at start, and " + std::to_string(lcores) +
            " lcore cache(s) may hold 1.5 x mempool.cache = " + std::to_string(per_cache) +
            " each; raise mempool.mbufs or lower mempool.cache",
        std::to_string(profile.mempool.mbufs));
}

void read_engine(const Section& engine, EngineProfile& out)
{
    engine.allow_only({"burst", "idle_sleep_us", "idle_polls"});
    engine.integer("burst", out.burst, 1, EngineProfile::kMaxBurst);
    engine.integer("idle_sleep_us", out.idle_sleep_us, 0, 1000000);
    engine.integer("idle_polls", out.idle_polls, 1, 1000000);
}

// [interface]

void read_interface(const Section& interface, InterfaceProfile& out)
{
    interface.allow_only({"mac", "ipv4", "ipv4_gateway", "ipv6"});

    const char* mac_expected = "expected a unicast MAC address xx:xx:xx:xx:xx:xx (not all "
                               "zero, lowest bit of the first byte clear), or \"\" for the "
                               "port's own";
    if (interface.string("mac", out.mac, mac_expected) && !out.mac.empty() && !is_unicast_mac(out.mac))
        interface.fail("mac", mac_expected);

    const char* ipv4_expected =
        "expected an IPv4 address with a prefix length 0 to 32, such as \"198.18.0.2/24\", or \"\"";
    interface.string("ipv4", out.ipv4, ipv4_expected);
    std::optional<Ipv4Prefix> ipv4;
    if (!out.ipv4.empty() && !(ipv4 = parse_ipv4_prefix(out.ipv4))) interface.fail("ipv4", ipv4_expected);

    const char* gateway_expected = "expected an IPv4 address such as \"198.18.0.1\", or \"\"";
    interface.string("ipv4_gateway", out.ipv4_gateway, gateway_expected);
    if (!out.ipv4_gateway.empty()) {
        std::optional<uint32_t> gateway = parse_ipv4(out.ipv4_gateway);
        if (!gateway) interface.fail("ipv4_gateway", gateway_expected);
        if (!ipv4)
            interface.fail("ipv4_gateway", "expected \"\" while interface.ipv4 is empty: "
                                           "a gateway is reached through an address of ours");
        uint32_t mask = ipv4->length == 0 ? 0 : ~uint32_t{0} << (32 - ipv4->length);
        if ((*gateway & mask) != (ipv4->address & mask) || *gateway == ipv4->address)
            interface.fail("ipv4_gateway",
                           "expected an address inside interface.ipv4 (" + out.ipv4 + ") other than our own");
    }

    const char* ipv6_expected =
        "expected an IPv6 address with a prefix length 0 to 128, such as \"2001:2::2/64\", or \"\"";
    if (interface.string("ipv6", out.ipv6, ipv6_expected) && !out.ipv6.empty() && !is_ipv6_prefix(out.ipv6))
        interface.fail("ipv6", ipv6_expected);
}

// Documents

toml::table parse_document(std::string_view text, const std::string& source)
{
    try {
        return toml::parse(text, std::string_view(source));
    } catch (const toml::parse_error& error) {
        const toml::source_position& at = error.source().begin;
        throw ProfileError(source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                           ": TOML syntax: " + std::string(error.description()));
    }
}

std::string read_file(const std::filesystem::path& path)
{
    auto cannot_read = [&path] {
        return ProfileError(path.string() + ": cannot read profile: " + std::strerror(errno));
    };
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw cannot_read();
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0)
        text.append(buffer, n);
    if (std::ferror(file.get())) throw cannot_read();
    return text;
}

Profile read_profile(std::string_view toml_text, std::string_view source_name,
                     const std::vector<std::string>& overrides)
{
    const std::string source(source_name);
    toml::table document = parse_document(toml_text, source);
    std::vector<Override> applied;
    for (const std::string& text : overrides)
        applied.push_back(apply_override(document, text));

    Reader reader(source, std::move(applied));
    Section root(reader, "", &document);
    root.allow_only({"eal", "port", "mempool", "engine", "interface"}, "section");

    Profile profile;
    profile.source = source;
    read_eal(root.section("eal"), profile.eal);
    read_port(root.section("port"), profile.port);
    read_mempool(root.section("mempool"), profile.mempool);
    read_engine(root.section("engine"), profile.engine);
    read_interface(root.section("interface"), profile.interface);
    check_pool_fills_rings(root, profile);
    return profile;
}

} // namespace

std::string PortProfile::device_name() const
{
    return device.substr(0, device.find(','));
}

Profile parse_profile(std::string_view toml_text, std::string_view source_name,
                      const std::vector<std::string>& overrides)
{
    try {
        return read_profile(toml_text, source_name, overrides);
    } catch (const ProfileError&) {
        throw;
    } catch (const std::exception& error) {
        // toml++ or the standard library failing in a way the checks above
        // did not foresee: still a refused profile, never a stray exception.
        throw ProfileError(std::string(source_name) + ": cannot load profile: " + error.what());
    }
}

Profile load_profile(const std::filesystem::path& path, const std::vector<std::string>& overrides)
{
    return parse_profile(read_file(path), path.string(), overrides);
}

} // namespace ringsock::dataplane