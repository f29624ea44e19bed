// Driver profiles: TOML text in, a validated Profile out, or one ProfileError
// that names the file, the line, the dotted key, the value as written and what
// was expected. Start-up code, callable from any thread before EAL exists:
// offload names are resolved through DPDK's own name tables
// (rte_eth_dev_{rx,tx}_offload_name), which are plain lookups that need no
// EAL. Nothing here touches a device; what only the PMD can answer is left to
// Port. toml++ and std::string throw freely inside; only ProfileError leaves.
#include "dataplane/profile.hh"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string_view>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <toml++/toml.h>

namespace ringsock::dataplane {

namespace {

// ---------------------------------------------------------------------------
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
constexpr int64_t kMaxLcore = RTE_MAX_LCORE - 1;

static_assert(kMinDataRoom > RTE_PKTMBUF_HEADROOM,
              "the smallest data room must leave room for a frame after the headroom");
static_assert(RTE_MEMPOOL_CACHE_MAX_SIZE == 512, "messages below quote 512");

// DPDK refuses a mempool whose cache flush threshold (1.5 x cache) exceeds
// its size; the same threshold bounds what one lcore's cache may hold.
constexpr uint64_t cache_flush_threshold(uint64_t cache)
{
    return cache * 3 / 2;
}

// ---------------------------------------------------------------------------
// Text helpers.

std::string lower(std::string_view text)
{
    std::string out(text);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string join(const std::vector<std::string>& words, std::string_view separator = ", ")
{
    std::string out;
    for (const std::string& word : words) {
        if (!out.empty()) out += separator;
        out += word;
    }
    return out;
}

// A whole string of decimal digits as a number; nothing else accepted.
template <typename T>
std::optional<T> decimal(std::string_view text)
{
    T value{};
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front()))) return std::nullopt;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

bool is_hex_digits(std::string_view text, size_t count)
{
    return text.size() == count &&
           std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::vector<std::string_view> split(std::string_view text, char separator)
{
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (;;) {
        size_t end = text.find(separator, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string_view::npos) return parts;
        start = end + 1;
    }
}

// Edit distance, to suggest "rx_queues" for "rx_queus".
size_t edit_distance(std::string_view a, std::string_view b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// A value the way a TOML file spells it: strings in double quotes, numbers
// in the base they were written in, arrays and inline tables expanded.
std::string as_written(const toml::node& node)
{
    if (const auto* text = node.as_string()) {
        std::string out = "\"";
        for (char c : text->get()) {
            if (c == '"' || c == '\\') out += '\\';
            if (static_cast<unsigned char>(c) < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                out += escaped;
                continue;
            }
            out += c;
        }
        return out + "\"";
    }
    if (const auto* array = node.as_array()) {
        std::vector<std::string> items;
        for (const toml::node& item : *array)
            items.push_back(as_written(item));
        return "[" + join(items) + "]";
    }
    if (const auto* table = node.as_table()) {
        std::vector<std::string> items;
        for (auto&& [key, value] : *table)
            items.push_back(std::string(key.str()) + " = " + as_written(value));
        return "{ " + join(items) + " }";
    }
    std::ostringstream out; // integers, floats, booleans, dates: toml++ keeps their form
    node.visit([&out](const auto& value) { out << value; });
    return out.str();
}

// ---------------------------------------------------------------------------
// Overrides: "port.rx_queues=4" grafted into the document before validation.

struct Override {
    std::string key;   // "port.rx_queues"
    std::string text;  // "port.rx_queues=4", as given
    std::string value; // "4", trimmed: a string key takes it verbatim
};

std::string_view trim(std::string_view text)
{
    const char* space = " \t";
    size_t first = text.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(space) - first + 1);
}

std::string override_origin(std::string_view text)
{
    return "command line --set " + std::string(text);
}

// The value as TOML ("4", "true", "[1, 2]", "'x'"), or else the text itself as
// a string, so `--set port.device=net_ring0` needs no quotes.
std::unique_ptr<toml::node> parse_override_value(std::string_view value)
{
    try {
        toml::table parsed = toml::parse(std::string("v = ") + std::string(value));
        if (parsed.size() == 1) {
            if (toml::node* node = parsed.get("v")) {
                std::unique_ptr<toml::node> out;
                node->visit([&out](auto& concrete) {
                    out = std::make_unique<std::remove_cvref_t<decltype(concrete)>>(concrete);
                });
                return out;
            }
        }
    } catch (const toml::parse_error&) {
        // not TOML: a bare string
    }
    return std::make_unique<toml::value<std::string>>(std::string(value));
}

bool is_bare_key(std::string_view part)
{
    return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

Override apply_override(toml::table& document, std::string_view text)
{
    const std::string origin = override_origin(text);
    size_t equals = text.find('=');
    std::string_view key = trim(text.substr(0, equals));
    std::vector<std::string_view> parts = split(key, '.');
    if (equals == std::string_view::npos || !std::all_of(parts.begin(), parts.end(), is_bare_key))
        throw ProfileError(origin + ": expected section.key=value, such as port.rx_queues=4");
    std::string_view value = trim(text.substr(equals + 1));

    toml::table* table = &document;
    std::string path;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        path += (path.empty() ? "" : ".") + std::string(parts[i]);
        toml::node* next = table->get(parts[i]);
        if (next == nullptr) next = &table->insert(parts[i], toml::table{}).first->second;
        table = next->as_table();
        if (table == nullptr)
            throw ProfileError(origin + ": " + path + " = " + as_written(*next) + ": expected a table to hold " +
                               std::string(key));
    }
    std::unique_ptr<toml::node> node = parse_override_value(value);
    node->visit([&](auto& concrete) { table->insert_or_assign(parts.back(), std::move(concrete)); });
    return {std::string(key), std::string(text), std::string(value)};
}

// ---------------------------------------------------------------------------
// Reader: knows where each key came from, so every message can say so.

class Reader {
public:
    Reader(std::string source, std::vector<Override> overrides)
        : source_(std::move(source)), overrides_(std::move(overrides))
    {
    }

    // The override that set `key` or a table holding it; the last one wins,
    // as it did when they were applied.
    const Override* override_of(std::string_view key) const
    {
        for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
            const std::string& set = it->key;
            if (key == set || (key.starts_with(set) && key[set.size()] == '.')) return &*it;
        }
        return nullptr;
    }

    // "<source>:<line>" for a key from the file, "command line --set k=v" for
    // one from an override, "<source>" for one not written anywhere.
    std::string origin(std::string_view key, const toml::node* node) const
    {
        if (const Override* set = override_of(key)) return override_origin(set->text);
        if (node != nullptr && node->source().begin.line > 0)
            return source_ + ":" + std::to_string(node->source().begin.line);
        return source_;
    }

    // "<origin>: <key> = <value>: <problem>". `shown` stands in for the value
    // when there is no node (a default that fails a check across keys).
    [[noreturn]] void fail(std::string_view key, const toml::node* node, std::string_view problem,
                           std::string_view shown = {}) const
    {
        std::string message = origin(key, node) + ": " + std::string(key);
        if (node != nullptr && !node->is_table())
            message += " = " + as_written(*node);
        else if (!shown.empty())
            message += " = " + std::string(shown);
        throw ProfileError(message + ": " + std::string(problem));
    }

private:
    std::string source_;
    std::vector<Override> overrides_;
};

// One table of the document ("port", "port.rss"), possibly absent: an absent
// section reads as all defaults.
class Section {
public:
    Section(const Reader& reader, std::string path, const toml::table* table)
        : reader_(reader), path_(std::move(path)), table_(table)
    {
    }

    std::string key_path(std::string_view key) const
    {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    const toml::node* find(std::string_view key) const { return table_ != nullptr ? table_->get(key) : nullptr; }

    const toml::table* table() const { return table_; }
    const Reader& reader() const { return reader_; }

    [[noreturn]] void fail(std::string_view key, std::string_view problem, std::string_view shown = {}) const
    {
        reader_.fail(key_path(key), find(key), problem, shown);
    }

    // Refuses every key not in `known`: a misspelt key must not fall back to
    // its default without a word.
    void allow_only(const std::vector<std::string>& known, std::string_view noun = "key") const
    {
        if (table_ == nullptr) return;
        for (auto&& [key, node] : *table_) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            std::string problem = "unknown " + std::string(noun);
            if (std::string hint = closest(key.str(), known); !hint.empty()) problem += " (did you mean " + hint + "?)";
            problem += "; expected one of: " + join(known);
            reader_.fail(key_path(key.str()), &node, problem);
        }
    }

    Section section(std::string_view key) const
    {
        const toml::node* node = find(key);
        if (node != nullptr && !node->is_table()) fail(key, "expected a table ([" + key_path(key) + "])");
        return Section(reader_, key_path(key), node != nullptr ? node->as_table() : nullptr);
    }

    template <typename T>
    void integer(std::string_view key, T& out, int64_t low, int64_t high) const
    {
        if (std::optional<int64_t> value = integer(key, low, high)) out = static_cast<T>(*value);
    }

    template <typename T>
    void integer(std::string_view key, std::optional<T>& out, int64_t low, int64_t high) const
    {
        if (std::optional<int64_t> value = integer(key, low, high)) out = static_cast<T>(*value);
    }

    void boolean(std::string_view key, bool& out) const
    {
        if (const toml::node* node = find(key)) {
            if (!node->is_boolean()) fail(key, "expected true or false");
            out = node->as_boolean()->get();
        }
    }

    // True when the key is present. An override written bare where a string
    // is expected ("--set eal.lcores=2") is taken as the text it was.
    bool string(std::string_view key, std::string& out, std::string_view expected) const
    {
        const toml::node* node = find(key);
        if (node == nullptr) return false;
        if (const auto* text = node->as_string()) {
            out = text->get();
            return true;
        }
        const Override* set = reader_.override_of(key_path(key));
        if (set != nullptr && set->key == key_path(key) && !node->is_array() && !node->is_table()) {
            out = set->value;
            return true;
        }
        fail(key, expected);
    }

    bool string_list(std::string_view key, std::vector<std::string>& out, std::string_view expected) const
    {
        const toml::node* node = find(key);
        if (node == nullptr) return false;
        const toml::array* array = node->as_array();
        if (array == nullptr) fail(key, expected);
        std::vector<std::string> items;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& item = *array->get(i);
            if (!item.is_string())
                reader_.fail(key_path(key) + "[" + std::to_string(i) + "]", &item, "expected a string");
            items.push_back(item.as_string()->get());
        }
        out = std::move(items);
        return true;
    }

private:
    std::optional<int64_t> integer(std::string_view key, int64_t low, int64_t high) const
    {
        const toml::node* node = find(key);
        if (node == nullptr) return std::nullopt;
        const auto* value = node->as_integer();
        if (value == nullptr || value->get() < low || value->get() > high)
            fail(key, "expected an integer from " + std::to_string(low) + " to " + std::to_string(high));
        return value->get();
    }

    static std::string closest(std::string_view key, const std::vector<std::string>& known)
    {
        std::string best;
        size_t best_distance = 3; // more edits than this is not a typo
        for (const std::string& candidate : known) {
            size_t distance = edit_distance(lower(key), candidate);
            if (distance < best_distance) {
                best = candidate;
                best_distance = distance;
            }
        }
        return best;
    }

    const Reader& reader_;
    std::string path_;
    const toml::table* table_;
};

// ---------------------------------------------------------------------------
// [eal]

// EAL's -l syntax: "0", "0-3", "1,3,5-7". The lcores in the order listed,
// or nothing when the text is not such a list.
std::optional<std::vector<unsigned>> parse_lcore_list(std::string_view text)
{
    std::vector<unsigned> lcores;
    if (text.empty()) return std::nullopt;
    for (std::string_view item : split(text, ',')) {
        std::vector<std::string_view> bounds = split(item, '-');
        if (bounds.size() > 2) return std::nullopt;
        std::optional<unsigned> low = decimal<unsigned>(bounds.front());
        std::optional<unsigned> high = decimal<unsigned>(bounds.back());
        if (!low || !high || *low > *high || *high > kMaxLcore) return std::nullopt;
        for (unsigned lcore = *low; lcore <= *high; ++lcore)
            lcores.push_back(lcore);
    }
    return lcores;
}

void read_eal(const Section& eal, EalProfile& out)
{
    eal.allow_only({"lcores", "main_lcore", "memory_mb", "file_prefix", "extra_args"});

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
}

// ---------------------------------------------------------------------------
// [port] and its [port.offloads.*], [port.rss]

// [DDDD:]BB:DD.F, all hex: how EAL's PCI bus names a device.
bool is_pci_address(std::string_view text)
{
    size_t dot = text.rfind('.');
    if (dot == std::string_view::npos || text.size() - dot != 2 || text[dot + 1] < '0' || text[dot + 1] > '7')
        return false;
    std::vector<std::string_view> parts = split(text.substr(0, dot), ':');
    if (parts.size() == 3 && !is_hex_digits(parts[0], 4)) return false;
    if (parts.size() != 2 && parts.size() != 3) return false;
    return is_hex_digits(parts[parts.size() - 2], 2) && is_hex_digits(parts.back(), 2);
}

struct OffloadName {
    std::string name; // DPDK's, lower case
    uint64_t flag;
};

enum class Direction { rx, tx };

// DPDK's table of offload names for one direction, read bit by bit. The
// functions answer "UNKNOWN" for a bit with no offload.
const std::vector<OffloadName>& offload_names(Direction direction)
{
    static const auto build = [](const char* (*name_of)(uint64_t)) {
        std::vector<OffloadName> names;
        for (unsigned bit = 0; bit < 64; ++bit) {
            uint64_t flag = uint64_t{1} << bit;
            std::string_view name = name_of(flag);
            if (name != "UNKNOWN") names.push_back({lower(name), flag});
        }
        return names;
    };
    static const std::vector<OffloadName> rx = build(rte_eth_dev_rx_offload_name);
    static const std::vector<OffloadName> tx = build(rte_eth_dev_tx_offload_name);
    return direction == Direction::rx ? rx : tx;
}

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

struct RssFieldName {
    std::string_view name;
    uint64_t hash_fields;
};

constexpr RssFieldName kRssFields[] = {
    {"ipv4", RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER},
    {"ipv6", RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER},
    {"ip", RTE_ETH_RSS_IP},
    {"udp", RTE_ETH_RSS_UDP},
    {"tcp", RTE_ETH_RSS_TCP},
    {"sctp", RTE_ETH_RSS_SCTP},
    {"ipv4-udp", RTE_ETH_RSS_NONFRAG_IPV4_UDP},
    {"ipv4-tcp", RTE_ETH_RSS_NONFRAG_IPV4_TCP},
    {"ipv6-udp", RTE_ETH_RSS_NONFRAG_IPV6_UDP},
    {"ipv6-tcp", RTE_ETH_RSS_NONFRAG_IPV6_TCP},
    {"l2-payload", RTE_ETH_RSS_L2_PAYLOAD},
};

// "6d5a56da..." or "6d:5a:56:da:...": bytes, or nothing when malformed.
std::optional<std::vector<uint8_t>> parse_hex_bytes(std::string_view text)
{
    std::vector<std::string_view> pairs;
    if (text.find(':') != std::string_view::npos) {
        pairs = split(text, ':');
    } else {
        if (text.size() % 2 != 0) return std::nullopt;
        for (size_t i = 0; i < text.size(); i += 2)
            pairs.push_back(text.substr(i, 2));
    }
    std::vector<uint8_t> bytes;
    for (std::string_view pair : pairs) {
        uint8_t byte = 0;
        if (!is_hex_digits(pair, 2)) return std::nullopt;
        std::from_chars(pair.data(), pair.data() + 2, byte, 16);
        bytes.push_back(byte);
    }
    return bytes;
}

void read_rss(const Section& rss, RssProfile& out)
{
    rss.allow_only({"fields", "key", "reta_size"});

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

// ---------------------------------------------------------------------------
// [mempool], [engine]

void read_mempool(const Section& mempool, MempoolProfile& out)
{
    mempool.allow_only({"mbufs", "cache", "data_room", "priv_size"});
    mempool.integer("mbufs", out.mbufs, kMinMbufs, kMaxMbufs);
    mempool.integer("cache", out.cache, 0, RTE_MEMPOOL_CACHE_MAX_SIZE);
    mempool.integer("data_room", out.data_room, kMinDataRoom, kMaxDataRoom);
    mempool.integer("priv_size", out.priv_size, 0, kMaxPrivSize);
    if (out.priv_size % RTE_MBUF_PRIV_ALIGN != 0)
        mempool.fail("priv_size",
                     "expected a multiple of " + std::to_string(RTE_MBUF_PRIV_ALIGN) + " (RTE_MBUF_PRIV_ALIGN)");
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

// ---------------------------------------------------------------------------
// [interface]

bool is_unicast_mac(std::string_view text)
{
    std::vector<std::string_view> octets = split(text, ':');
    if (octets.size() != 6 || !std::all_of(octets.begin(), octets.end(), [](auto o) { return is_hex_digits(o, 2); }))
        return false;
    auto octet = [&](size_t i) {
        unsigned value = 0;
        std::from_chars(octets[i].data(), octets[i].data() + 2, value, 16);
        return value;
    };
    bool multicast = (octet(0) & 1) != 0;
    bool zero = true;
    for (size_t i = 0; i < 6; ++i)
        zero = zero && octet(i) == 0;
    return !multicast && !zero;
}

struct Ipv4Prefix {
    uint32_t address; // host order
    unsigned length;
};

std::optional<uint32_t> parse_ipv4(std::string_view text)
{
    in_addr address{};
    if (inet_pton(AF_INET, std::string(text).c_str(), &address) != 1) return std::nullopt;
    return ntohl(address.s_addr);
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text)
{
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::optional<uint32_t> address = parse_ipv4(text.substr(0, slash));
    std::optional<unsigned> length = decimal<unsigned>(text.substr(slash + 1));
    if (!address || !length || *length > 32) return std::nullopt;
    return Ipv4Prefix{*address, *length};
}

bool is_ipv6_prefix(std::string_view text)
{
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return false;
    in6_addr address{};
    std::optional<unsigned> length = decimal<unsigned>(text.substr(slash + 1));
    return inet_pton(AF_INET6, std::string(text.substr(0, slash)).c_str(), &address) == 1 && length && *length <= 128;
}

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

// ---------------------------------------------------------------------------
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
