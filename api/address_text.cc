// inet_pton, inet_ntop and inet_addr for the public header, on the C
// library's parsers. Kept apart because it includes the C library's socket
// headers, which must never meet <ringsock/winsock2.h> in one file; the
// Windows family numbers are translated here (AF_INET6 is 23 there).
#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "api/process_state.hh"

namespace {
constexpr int kWindowsInet = 2;
constexpr int kWindowsInet6 = 23;
constexpr int kWsaEafnosupport = 10047;
constexpr int kWsaEinval = 10022;
constexpr int kWsaEfault = 10014;

int linux_family(int windows_family)
{
    if (windows_family == kWindowsInet) return AF_INET;
    if (windows_family == kWindowsInet6) return AF_INET6;
    return -1;
}
} // namespace

extern "C" {

int32_t ringsock_inet_pton(int32_t family, const char* text, void* out)
{
    const int af = linux_family(family);
    if (af < 0) {
        ringsock::api::set_last_error(kWsaEafnosupport);
        return -1;
    }
    if (text == nullptr || out == nullptr) {
        ringsock::api::set_last_error(kWsaEfault);
        return -1;
    }
    return inet_pton(af, text, out);
}

const char* ringsock_inet_ntop(int32_t family, const void* addr, char* out, size_t size)
{
    const int af = linux_family(family);
    if (af < 0) {
        ringsock::api::set_last_error(kWsaEafnosupport);
        return nullptr;
    }
    if (addr == nullptr || out == nullptr) {
        ringsock::api::set_last_error(kWsaEfault);
        return nullptr;
    }
    const char* r = inet_ntop(af, addr, out, static_cast<socklen_t>(size));
    if (r == nullptr) ringsock::api::set_last_error(kWsaEinval);
    return r;
}

uint32_t ringsock_inet_addr(const char* text)
{
    in_addr a{};
    if (text == nullptr || inet_pton(AF_INET, text, &a) != 1) return 0xffffffffu; // INADDR_NONE
    return a.s_addr;
}

} // extern "C"
