// libFuzzer target for the profile reader: any TOML text, with any
// "section.key=value" overrides after it (each after a NUL byte), is either
// a profile or a ProfileError whose message names where the fault is (the
// file, or the override) — never a crash, undefined behaviour, a hang or
// another exception. Seeded with drivers_config/*.toml. Needs no EAL.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/profile.hh"

namespace {

constexpr std::string_view kSource = "fuzz.toml";

[[noreturn]] void fail(const std::string& what)
{
    std::fprintf(stderr, "fuzz_profile: %s\n", what.c_str());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t end_of_text = input.find('\0');
    const std::string_view text = input.substr(0, end_of_text);
    std::vector<std::string> overrides;
    for (std::size_t at = end_of_text; at != std::string_view::npos && at < input.size();) {
        const std::size_t next = input.find('\0', at + 1);
        overrides.emplace_back(input.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
        at = next;
    }
    try {
        const ringsock::dataplane::Profile profile = ringsock::dataplane::parse_profile(text, kSource, overrides);
        if (profile.source != kSource) fail("the profile does not name its source");
    } catch (const ringsock::dataplane::ProfileError& error) {
        const std::string message = error.what();
        if (message.find(kSource) == std::string::npos && message.find("--set") == std::string::npos)
            fail("a refusal that names neither the file nor the override: " + message);
    } catch (...) {
        fail("an exception other than ProfileError escaped");
    }
    return 0;
}
