// EAL argument building, without starting EAL.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/eal.hh"
#include "dataplane/profile.hh"

namespace {

using namespace ringsock::dataplane;

bool contains_sequence(const std::vector<std::string>& args, const std::vector<std::string>& seq)
{
    return std::search(args.begin(), args.end(), seq.begin(), seq.end()) != args.end();
}

Profile profile_of(const std::string& body)
{
    return parse_profile(body, "test");
}

TEST(EalArguments, NoHugepagesMeansNoHugeWithTheProfilesMemory)
{
    const auto args =
        eal_arguments(profile_of("[eal]\nmemory_mb = 300\n[port]\ndevice = \"net_null0\"\n"), HostMemory{false}, "p1");
    EXPECT_TRUE(contains_sequence(args, {"--no-huge", "-m", "300"}));
}

TEST(EalArguments, HugepagesMeansNoNoHuge)
{
    const auto args = eal_arguments(profile_of("[port]\ndevice = \"net_null0\"\n"), HostMemory{true}, "p1");
    EXPECT_EQ(std::count(args.begin(), args.end(), "--no-huge"), 0);
}

TEST(EalArguments, EveryRunHasItsFilePrefix)
{
    const auto args = eal_arguments(profile_of("[port]\ndevice = \"net_null0\"\n"), HostMemory{false}, "ringsock-42");
    EXPECT_TRUE(contains_sequence(args, {"--file-prefix", "ringsock-42"}));
}

TEST(EalArguments, VdevSkipsThePciScan)
{
    const auto args =
        eal_arguments(profile_of("[port]\ndevice = \"net_memif0,role=client\"\n"), HostMemory{false}, "p");
    EXPECT_TRUE(contains_sequence(args, {"--no-pci", "--vdev", "net_memif0,role=client"}));
}

TEST(EalArguments, PciDeviceIsAllowListed)
{
    const auto args = eal_arguments(profile_of("[port]\ndevice = \"0000:3b:00.0\"\n"), HostMemory{true}, "p");
    EXPECT_TRUE(contains_sequence(args, {"-a", "0000:3b:00.0"}));
    EXPECT_EQ(std::count(args.begin(), args.end(), "--no-pci"), 0);
}

TEST(EalArguments, LcoresMainLcoreAndExtraArgumentsPassThrough)
{
    const auto args =
        eal_arguments(profile_of("[eal]\nlcores = \"2-3\"\nmain_lcore = 3\nextra_args = [\"--log-level=pmd,8\"]\n"
                                 "[port]\ndevice = \"net_null0\"\n"),
                      HostMemory{false}, "p");
    EXPECT_TRUE(contains_sequence(args, {"-l", "2-3"}));
    EXPECT_TRUE(contains_sequence(args, {"--main-lcore", "3"}));
    EXPECT_EQ(args.back(), "--log-level=pmd,8");
}

} // namespace

namespace {

TEST(EalArguments, LcoreMapInExtraArgsReplacesTheLcoreList)
{
    const auto args = eal_arguments(
        profile_of(
            "[eal]\nlcores = \"0-1\"\nextra_args = [\"--lcores=0@0,1@1,2@1\"]\n[port]\ndevice = \"net_null0\"\n"),
        HostMemory{false}, "p1");
    EXPECT_EQ(std::count(args.begin(), args.end(), "-l"), 0) << "EAL refuses -l beside --lcores";
    EXPECT_EQ(std::count(args.begin(), args.end(), "--lcores=0@0,1@1,2@1"), 1);
    const auto plain =
        eal_arguments(profile_of("[eal]\nlcores = \"0-1\"\n[port]\ndevice = \"net_null0\"\n"), HostMemory{false}, "p1");
    EXPECT_TRUE(contains_sequence(plain, {"-l", "0-1"}));
}

} // namespace
