// The document reader's helpers: text, TOML spelling, and --set overrides.
#include "dataplane/profile_reader.hh"

#include <cstdio>
#include <memory>
#include <sstream>

namespace ringsock::dataplane::profile_detail {

std::string lower(std::string_view text)
{
    std::string out(text);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string join(const std::vector<std::string>& words, std::string_view separator)
{
    std::string out;
    for (const std::string& word : words) {
        if (!out.empty()) out += separator;
        out += word;
    }
    return out;
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

} // namespace ringsock::dataplane::profile_detail
