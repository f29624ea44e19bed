// A GoogleTest environment that starts EAL once for a test binary (EAL can
// start once per process), from a profile written in the test, and makes
// one mempool on socket 0. Register it in main() before RUN_ALL_TESTS; gtest
// owns it and tears EAL down after the last test.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/eal.hh"
#include "dataplane/mempool.hh"
#include "dataplane/profile.hh"

namespace ringsock::testing {

class EalEnvironment : public ::testing::Environment {
public:
    EalEnvironment(std::string profile_text, std::string program_name)
        : profile_text_(std::move(profile_text)), program_name_(std::move(program_name))
    {
    }

    void SetUp() override
    {
        profile = dataplane::parse_profile(profile_text_, program_name_);
        eal.emplace(profile, program_name_);
        mempools.emplace(program_name_ + "_mbufs", profile.mempool, std::vector<int>{0});
    }
    void TearDown() override
    {
        mempools.reset();
        eal.reset();
    }

    const dataplane::Mempool& pool() const { return mempools->for_socket(0); }

    dataplane::Profile profile;
    std::optional<dataplane::Eal> eal;
    std::optional<dataplane::MempoolSet> mempools;

private:
    std::string profile_text_;
    std::string program_name_;
};

} // namespace ringsock::testing
