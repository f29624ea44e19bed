// A program outside the tree, built only from the installed headers and
// ringsock.pc: proves the install rules give another project what it needs.
#include <cstdio>

#include "dataplane/dataplane.hh"
#include "dataplane/profile.hh"

int main()
{
    const auto profile = ringsock::dataplane::parse_profile("[port]\ndevice = \"net_null0\"\n", "consumer");
    std::printf("%s\n", profile.port.device_name().c_str());
    return profile.port.device_name() == "net_null0" ? 0 : 1;
}
