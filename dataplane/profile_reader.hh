// Internal to the profile loader, not for inclusion elsewhere: a TOML
// document read key by key with the provenance of every value (file and
// line, or the --set that put it there), so that each refusal can name the
// file, the line, the key, the value as written and what was expected.
// Start-up code only.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "dataplane/profile.hh"

namespace ringsock::dataplane::profile_detail {

std::string lower(std::string_view text);
std::string join(const std::vector<std::string>& words, std::string_view separator = ", ");
bool is_hex_digits(std::string_view text, size_t count);
std::vector<std::string_view> split(std::string_view text, char separator);
// Edit distance, to suggest "rx_queues" for "rx_queus".
size_t edit_distance(std::string_view a, std::string_view b);
// A value the way a TOML file spells it: strings in double quotes, numbers
// in the base they were written in, arrays and inline tables expanded.
std::string as_written(const toml::node& node);

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

// Overrides: "port.rx_queues=4" grafted into the document before validation.
struct Override {
    std::string key;   // "port.rx_queues"
    std::string text;  // "port.rx_queues=4", as given
    std::string value; // "4", trimmed: a string key takes it verbatim
};

std::string override_origin(std::string_view text);
// Applies one --set to `document`; throws ProfileError if it is malformed.
Override apply_override(toml::table& document, std::string_view text);
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

} // namespace ringsock::dataplane::profile_detail
