// Unit tests for dataplane/profile: every shipped profile in drivers_config/
// loads, omitted keys take the header's defaults, `--set` overrides are read
// as TOML and land where they say, and every broken profile in
// tests/data/bad_profiles/ is refused with the message its first line
// expects ("# expect: <substring>"). No EAL, no device: profile loading runs
// before either exists. Files are found through RINGSOCK_SOURCE_ROOT, which
// meson sets to the repository root.
#include "dataplane/profile.hh"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ethdev.h>

namespace ringsock::dataplane {
namespace {

namespace fs = std::filesystem;

fs::path source_root()
{
    const char* root = std::getenv("RINGSOCK_SOURCE_ROOT");
    return root != nullptr ? fs::path(root) : fs::current_path();
}

// The *.toml files of a folder, sorted so failures read in a stable order.
std::vector<fs::path> toml_files_in(const fs::path& folder)
{
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder))
        if (entry.is_regular_file() && entry.path().extension() == ".toml") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

std::string first_line_of(const fs::path& file)
{
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

// The message load/parse threw, or "" when nothing was thrown.
template <typename Load>
std::string error_of(Load&& load)
{
    try {
        load();
    } catch (const ProfileError& error) {
        return error.what();
    }
    return "";
}

constexpr std::string_view kMinimal = "[port]\ndevice = \"net_null0\"\n";

Profile parse(std::string_view text, const std::vector<std::string>& overrides = {})
{
    return parse_profile(text, "test.toml", overrides);
}

const OffloadRequest* find_offload(const std::vector<OffloadRequest>& list, std::string_view name)
{
    auto it = std::find_if(list.begin(), list.end(), [&](const OffloadRequest& r) { return r.name == name; });
    return it != list.end() ? &*it : nullptr;
}

// --- Shipped profiles -------------------------------------------------------

TEST(Profile, EveryShippedProfileValidates)
{
    std::vector<fs::path> profiles = toml_files_in(source_root() / "drivers_config");
    ASSERT_FALSE(profiles.empty()) << "no profiles under " << source_root() / "drivers_config";
    for (const fs::path& file : profiles) {
        SCOPED_TRACE(file.string());
        EXPECT_NO_THROW({
            Profile profile = load_profile(file);
            EXPECT_EQ(profile.source, file.string());
            EXPECT_FALSE(profile.port.device_name().empty());
        });
    }
}

TEST(Profile, EveryShippedProfileOpensWithAParagraph)
{
    for (const fs::path& file : toml_files_in(source_root() / "drivers_config")) {
        SCOPED_TRACE(file.string());
        EXPECT_TRUE(first_line_of(file).starts_with("# "));
    }
}

TEST(Profile, NullProfileSpellsOutTheHeaderDefaults)
{
    // null.toml is the schema's reference; its values must be the defaults.
    const Profile defaults;
    const Profile null = load_profile(source_root() / "drivers_config/null.toml");
    EXPECT_EQ(null.eal.lcores, defaults.eal.lcores);
    EXPECT_EQ(null.eal.main_lcore, defaults.eal.main_lcore);
    EXPECT_EQ(null.eal.memory_mb, defaults.eal.memory_mb);
    EXPECT_EQ(null.eal.file_prefix, defaults.eal.file_prefix);
    EXPECT_EQ(null.eal.extra_args, defaults.eal.extra_args);
    EXPECT_EQ(null.port.rx_queues, defaults.port.rx_queues);
    EXPECT_EQ(null.port.tx_queues, defaults.port.tx_queues);
    EXPECT_EQ(null.port.rx_descriptors, defaults.port.rx_descriptors);
    EXPECT_EQ(null.port.tx_descriptors, defaults.port.tx_descriptors);
    EXPECT_EQ(null.port.mtu, defaults.port.mtu);
    EXPECT_EQ(null.port.promiscuous, defaults.port.promiscuous);
    EXPECT_EQ(null.port.link_timeout_ms, defaults.port.link_timeout_ms);
    EXPECT_EQ(null.port.link_required, defaults.port.link_required);
    EXPECT_EQ(null.port.rss.key, defaults.port.rss.key);
    EXPECT_EQ(null.port.rss.reta_size, defaults.port.rss.reta_size);
    EXPECT_EQ(null.mempool.mbufs, defaults.mempool.mbufs);
    EXPECT_EQ(null.mempool.cache, defaults.mempool.cache);
    EXPECT_EQ(null.mempool.data_room, defaults.mempool.data_room);
    EXPECT_EQ(null.mempool.priv_size, defaults.mempool.priv_size);
    EXPECT_EQ(null.mempool.ops, defaults.mempool.ops);
    EXPECT_EQ(null.engine.burst, defaults.engine.burst);
    EXPECT_EQ(null.engine.idle_sleep_us, defaults.engine.idle_sleep_us);
    EXPECT_EQ(null.engine.idle_polls, defaults.engine.idle_polls);
}

// --- Defaults and values ----------------------------------------------------

TEST(Profile, OmittedKeysTakeTheHeaderDefaults)
{
    const Profile defaults;
    const Profile profile = parse(kMinimal);
    EXPECT_EQ(profile.port.device, "net_null0");
    EXPECT_FALSE(profile.port.is_pci);
    EXPECT_EQ(profile.eal.lcores, defaults.eal.lcores);
    EXPECT_FALSE(profile.eal.main_lcore.has_value());
    EXPECT_EQ(profile.eal.memory_mb, defaults.eal.memory_mb);
    EXPECT_EQ(profile.port.rx_queues, defaults.port.rx_queues);
    EXPECT_EQ(profile.port.rx_descriptors, defaults.port.rx_descriptors);
    EXPECT_EQ(profile.port.mtu, defaults.port.mtu);
    EXPECT_EQ(profile.port.promiscuous, defaults.port.promiscuous);
    EXPECT_EQ(profile.port.link_timeout_ms, defaults.port.link_timeout_ms);
    EXPECT_TRUE(profile.port.rx_offloads.empty());
    EXPECT_TRUE(profile.port.tx_offloads.empty());
    EXPECT_TRUE(profile.port.rss.fields.empty());
    EXPECT_EQ(profile.port.rss.hash_fields, 0u);
    EXPECT_TRUE(profile.port.rss.key.empty());
    EXPECT_EQ(profile.mempool.mbufs, defaults.mempool.mbufs);
    EXPECT_EQ(profile.mempool.cache, defaults.mempool.cache);
    EXPECT_EQ(profile.engine.burst, defaults.engine.burst);
    EXPECT_EQ(profile.interface.ipv4, "");
}

TEST(Profile, OffloadNamesResolveToDpdkFlagsWhateverTheirCase)
{
    const Profile profile = parse(std::string(kMinimal) + "[port.offloads.rx]\nIPV4_CKSUM = \"required\"\n"
                                                          "udp_cksum = \"preferred\"\n"
                                                          "[port.offloads.tx]\nmbuf_fast_free = \"off\"\n");
    const OffloadRequest* ipv4 = find_offload(profile.port.rx_offloads, "ipv4_cksum");
    ASSERT_NE(ipv4, nullptr);
    EXPECT_EQ(ipv4->flag, RTE_ETH_RX_OFFLOAD_IPV4_CKSUM);
    EXPECT_EQ(ipv4->policy, OffloadPolicy::required);
    const OffloadRequest* udp = find_offload(profile.port.rx_offloads, "udp_cksum");
    ASSERT_NE(udp, nullptr);
    EXPECT_EQ(udp->flag, RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    EXPECT_EQ(udp->policy, OffloadPolicy::preferred);
    const OffloadRequest* fast_free = find_offload(profile.port.tx_offloads, "mbuf_fast_free");
    ASSERT_NE(fast_free, nullptr);
    EXPECT_EQ(fast_free->flag, RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE);
    EXPECT_EQ(fast_free->policy, OffloadPolicy::off);
}

TEST(Profile, RssFieldsAndKeyBecomeHashFlagsAndBytes)
{
    const Profile profile =
        parse(std::string(kMinimal) + "[port.rss]\nfields = [\"ipv4\", \"ipv6-udp\", \"l2-payload\"]\n"
                                      "key = \"6d:5a:56:DA\"\nreta_size = 512\n");
    EXPECT_EQ(profile.port.rss.hash_fields, RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER |
                                                RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_L2_PAYLOAD);
    EXPECT_EQ(profile.port.rss.key, (std::vector<uint8_t>{0x6d, 0x5a, 0x56, 0xda}));
    EXPECT_EQ(profile.port.rss.reta_size, 512u);
    EXPECT_EQ(parse(std::string(kMinimal) + "[port.rss]\nkey = \"6d5a56da\"\n").port.rss.key, profile.port.rss.key);
}

TEST(Profile, RssModeSaysWhoFillsTheQueuesHashUnlessTold)
{
    EXPECT_EQ(parse(kMinimal).port.rss.mode, "hash");
    EXPECT_EQ(parse(std::string(kMinimal) + "[port.rss]\nmode = \"none\"\n").port.rss.mode, "none");
}

TEST(Profile, PciAddressesAreToldApartFromVdevStrings)
{
    auto port_of = [](std::string_view device) {
        return parse("[port]\ndevice = \"" + std::string(device) + "\"\n").port;
    };
    EXPECT_TRUE(port_of("0000:3b:00.0").is_pci);
    EXPECT_TRUE(port_of("3b:00.1").is_pci);
    EXPECT_FALSE(port_of("net_ring0").is_pci);
    EXPECT_FALSE(port_of("net_af_packet0,iface=rs-veth0").is_pci);

    PortProfile mlx5 = port_of("0000:3b:00.0,rxq_cqe_comp_en=0");
    EXPECT_TRUE(mlx5.is_pci);
    EXPECT_EQ(mlx5.device_name(), "0000:3b:00.0");
    EXPECT_EQ(port_of("net_memif0,role=client,id=0").device_name(), "net_memif0");
    EXPECT_EQ(port_of("net_null0").device_name(), "net_null0");
}

TEST(Profile, LcoreListsFollowEalSyntax)
{
    EXPECT_EQ(parse(std::string(kMinimal) + "[eal]\nlcores = \"1,3,5-7\"\nmain_lcore = 6\n").eal.main_lcore, 6u);
    for (const char* bad : {"", "a", "1,", ",1", "3-1", "1-2-3", "0-128", " 1", "1;2"}) {
        SCOPED_TRACE(bad);
        EXPECT_THROW(parse(std::string(kMinimal) + "[eal]\nlcores = \"" + bad + "\"\n"), ProfileError);
    }
}

// --- Overrides --------------------------------------------------------------

TEST(ProfileOverrides, ValuesAreReadAsToml)
{
    const Profile profile =
        parse(kMinimal, {"port.rx_queues=4", "port.promiscuous = false",
                         "eal.extra_args=[\"--log-level=pmd.*:8\", \"--no-pci\"]", "port.device='net_ring0'"});
    EXPECT_EQ(profile.port.rx_queues, 4);
    EXPECT_FALSE(profile.port.promiscuous);
    EXPECT_EQ(profile.eal.extra_args, (std::vector<std::string>{"--log-level=pmd.*:8", "--no-pci"}));
    EXPECT_EQ(profile.port.device, "net_ring0");
}

TEST(ProfileOverrides, TextThatIsNotTomlIsTakenAsAString)
{
    const Profile profile = parse(kMinimal, {"port.device=net_memif0,role=client", "eal.lcores=0-3",
                                             "interface.ipv4=198.18.0.2/24", "eal.file_prefix=run1"});
    EXPECT_EQ(profile.port.device, "net_memif0,role=client");
    EXPECT_EQ(profile.eal.lcores, "0-3");
    EXPECT_EQ(profile.interface.ipv4, "198.18.0.2/24");
    EXPECT_EQ(profile.eal.file_prefix, "run1");
}

TEST(ProfileOverrides, BareNumberIsTakenAsTextWhereAStringIsExpected)
{
    EXPECT_EQ(parse(kMinimal, {"eal.lcores=2"}).eal.lcores, "2");
}

TEST(ProfileOverrides, LaterOverrideAndOverrideOverFileWin)
{
    const Profile profile = parse(std::string(kMinimal) + "rx_queues = 2\n", {"port.rx_queues=3", "port.rx_queues=5"});
    EXPECT_EQ(profile.port.rx_queues, 5);
}

TEST(ProfileOverrides, DottedKeysCreateTheTablesTheyNeed)
{
    const Profile profile =
        parse(kMinimal, {"port.offloads.rx.udp_cksum=required", "port.rss.fields=[\"udp\"]", "engine.burst=64"});
    const OffloadRequest* udp = find_offload(profile.port.rx_offloads, "udp_cksum");
    ASSERT_NE(udp, nullptr);
    EXPECT_EQ(udp->policy, OffloadPolicy::required);
    EXPECT_EQ(profile.port.rss.hash_fields, RTE_ETH_RSS_UDP);
    EXPECT_EQ(profile.engine.burst, 64u);
}

TEST(ProfileOverrides, InlineTableReplacesTheWholeTable)
{
    const Profile profile = parse(std::string(kMinimal) + "[port.offloads.tx]\nipv4_cksum = \"required\"\n",
                                  {"port.offloads.tx={udp_cksum = \"preferred\"}"});
    ASSERT_EQ(profile.port.tx_offloads.size(), 1u);
    EXPECT_EQ(profile.port.tx_offloads[0].name, "udp_cksum");
}

TEST(ProfileOverrides, UnknownKeyIsRefusedNamingTheCommandLine)
{
    const std::string message = error_of([] { parse(kMinimal, {"port.rx_queus=4"}); });
    EXPECT_TRUE(message.starts_with("command line --set port.rx_queus=4: port.rx_queus = 4: "
                                    "unknown key (did you mean rx_queues?)"))
        << message;
}

TEST(ProfileOverrides, BadValueIsRefusedNamingTheCommandLine)
{
    EXPECT_EQ(error_of([] { parse(kMinimal, {"port.rx_queues=0"}); }),
              "command line --set port.rx_queues=0: port.rx_queues = 0: "
              "expected an integer from 1 to 1024");
    EXPECT_EQ(error_of([] { parse(kMinimal, {"port.offloads.rx.udp_cksum=maybe"}); }),
              "command line --set port.offloads.rx.udp_cksum=maybe: "
              "port.offloads.rx.udp_cksum = \"maybe\": "
              "expected \"off\", \"preferred\" or \"required\"");
}

TEST(ProfileOverrides, TextWithoutKeyAndValueIsRefused)
{
    for (const char* bad : {"port.rx_queues", "=4", "port..mtu=1", "port.mtu x=1"}) {
        SCOPED_TRACE(bad);
        const std::string message = error_of([&] { parse(kMinimal, {bad}); });
        EXPECT_EQ(message,
                  "command line --set " + std::string(bad) + ": expected section.key=value, such as port.rx_queues=4");
    }
}

TEST(ProfileOverrides, KeyBelowAValueIsRefused)
{
    const std::string message = error_of([] { parse(kMinimal, {"port.device.name=x"}); });
    EXPECT_EQ(message, "command line --set port.device.name=x: port.device = \"net_null0\": "
                       "expected a table to hold port.device.name");
}

// --- Errors -----------------------------------------------------------------

TEST(ProfileErrors, MessageNamesSourceLineKeyValueAndExpectation)
{
    const std::string text = "# a comment\n[port]\ndevice = \"net_null0\"\nrx_queues = 0\n";
    EXPECT_EQ(error_of([&] { parse_profile(text, "drivers_config/bad.toml"); }),
              "drivers_config/bad.toml:4: port.rx_queues = 0: expected an integer from 1 to 1024");
}

TEST(ProfileErrors, MissingRequiredKeyHasNoLine)
{
    EXPECT_EQ(error_of([] { parse("[eal]\nlcores = \"0\"\n"); }),
              "test.toml: port.device: missing; expected a vdev string such as \"net_null0\" "
              "or a PCI address such as \"0000:3b:00.0\"");
}

TEST(ProfileErrors, SyntaxErrorNamesLineAndColumn)
{
    const std::string message = error_of([] { parse("[port]\ndevice = = 1\n"); });
    EXPECT_TRUE(message.starts_with("test.toml:2:10: TOML syntax: ")) << message;
}

TEST(ProfileErrors, UnreadableFileIsRefusedWithTheReason)
{
    const fs::path missing = source_root() / "tests/data/no-such-profile.toml";
    EXPECT_EQ(error_of([&] { load_profile(missing); }),
              missing.string() + ": cannot read profile: No such file or directory");
    const fs::path folder = source_root() / "tests/data";
    EXPECT_EQ(error_of([&] { load_profile(folder); }), folder.string() + ": cannot read profile: Is a directory");
}

TEST(ProfileErrors, EveryBadProfileIsRefusedWithTheMessageItExpects)
{
    std::vector<fs::path> files = toml_files_in(source_root() / "tests/data/bad_profiles");
    ASSERT_GE(files.size(), 18u);
    for (const fs::path& file : files) {
        SCOPED_TRACE(file.string());
        const std::string header = first_line_of(file);
        const std::string prefix = "# expect: ";
        ASSERT_TRUE(header.starts_with(prefix)) << "first line must be '# expect: <text>'";
        const std::string expected = header.substr(prefix.size());
        ASSERT_FALSE(expected.empty());

        const std::string message = error_of([&] { load_profile(file); });
        ASSERT_FALSE(message.empty()) << "loaded without error";
        EXPECT_TRUE(message.starts_with(file.string())) << message;
        EXPECT_NE(message.find(expected), std::string::npos)
            << "message: " << message << "\nexpected to contain: " << expected;
    }
}

} // namespace
} // namespace ringsock::dataplane
