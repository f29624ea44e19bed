// `meson install` into a scratch root, then a consumer program compiled and
// linked with nothing but `pkg-config ringsock`, and run.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/subprocess.hh"

namespace {

using ringsock::testing::run_shell;

TEST(Install, AConsumerBuildsAndRunsAgainstRingsockPc)
{
    const std::string root = "/tmp/ringsock-install-" + std::to_string(getpid());
    const auto installed =
        run_shell("meson install -C " + ringsock::testing::build_root() + " --no-rebuild --destdir " + root + " 2>&1",
                  std::chrono::seconds(120));
    ASSERT_EQ(installed.exit_code, 0) << installed.output;
    // Point the installed ringsock.pc at the scratch root, as if installed
    // there (pkg-config's --define-prefix misreads multiarch libdirs and
    // would move libdpdk's paths too).
    const auto moved = run_shell("sed -i \"s|^prefix=|prefix=" + root + "|\" $(find " + root + " -name ringsock.pc)");
    ASSERT_EQ(moved.exit_code, 0) << moved.output;
    const std::string pkgconfig =
        "PKG_CONFIG_PATH=$(dirname $(find " + root + " -name ringsock.pc)) pkg-config ringsock";
    const char* sanitize = std::getenv("RINGSOCK_SANITIZE");
    const std::string sanitizer_flags =
        sanitize != nullptr && std::string(sanitize) != "none" ? std::string(" -fsanitize=") + sanitize : "";
    const auto built =
        run_shell("c++ -std=c++20" + sanitizer_flags + " " + ringsock::testing::source_root() +
                      "/tests/data/consumer/main.cc -o " + root + "/consumer $(" + pkgconfig + " --cflags --libs) 2>&1",
                  std::chrono::seconds(120));
    ASSERT_EQ(built.exit_code, 0) << built.output;
    const auto ran =
        run_shell("LD_LIBRARY_PATH=$(dirname $(find " + root + " -name libringsock.so)) " + root + "/consumer 2>&1");
    EXPECT_EQ(ran.exit_code, 0) << ran.output;
    EXPECT_NE(ran.output.find("net_null0"), std::string::npos) << ran.output;

    // The public Winsock header alone, from C.
    const auto built_c = run_shell("cc -std=c11" + sanitizer_flags + " " + ringsock::testing::source_root() +
                                       "/tests/data/consumer/winsock.c -o " + root + "/winsock $(" + pkgconfig +
                                       " --cflags --libs) 2>&1",
                                   std::chrono::seconds(120));
    ASSERT_EQ(built_c.exit_code, 0) << built_c.output;
    const auto ran_c = run_shell("env -u RINGSOCK_PROFILE LD_LIBRARY_PATH=$(dirname $(find " + root +
                                 " -name libringsock.so)) " + root + "/winsock 2>&1");
    EXPECT_EQ(ran_c.exit_code, 0) << ran_c.output;
    EXPECT_NE(ran_c.output.find("RINGSOCK_PROFILE"), std::string::npos) << ran_c.output;
    run_shell("rm -rf " + root);
}

} // namespace
