/*
 * stack/lwip/arch/cc.h — lwIP's compiler and platform layer for ringsock
 * (x86-64 Linux, GCC or Clang, C and C++).
 *
 * Included by lwip/arch.h before lwIP's own types exist, so it uses
 * <stdint.h> types. Deliberately includes no network header: glibc's
 * <netinet/tcp.h> redefines TCP_MSS (see lwipopts.h). Byte swaps are
 * compiler builtins (one instruction, not a call into def.c); LWIP_RAND is
 * ringsock_lwip_rand() from stack/lwip_sys.cc. Assertions (compiled only
 * without NDEBUG, see lwipopts.h) print and abort: an lwIP invariant broken
 * on the data path is a bug, not a recoverable error.
 */
#ifndef RINGSOCK_STACK_LWIP_ARCH_CC_H
#define RINGSOCK_STACK_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ringsock's lwIP port assumes a little-endian machine"
#endif
/* glibc's <endian.h> (through <stdlib.h>) usually defines it already. */
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN
#endif

#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
        printf x;             \
    } while (0)

#define LWIP_PLATFORM_ASSERT(x)                                             \
    do {                                                                    \
        fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", (x),     \
                __FILE__, __LINE__);                                        \
        fflush(stderr);                                                     \
        abort();                                                            \
    } while (0)

/* lwip/def.h declares out-of-line lwip_htons/lwip_htonl unless these are
 * macros; the ntoh forms follow from them. */
#define lwip_htons(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define lwip_htonl(x) ((uint32_t)__builtin_bswap32((uint32_t)(x)))

#ifdef __cplusplus
extern "C" {
#endif

/* A fast, non-cryptographic 32-bit generator seeded from getrandom() at
 * first use: lwIP's random local ports, IGMP/MLD report delays and ND
 * timers. Not for secrets (the TCP ISN uses its own keyed hash). Called on
 * the lwIP engine only. Defined in stack/lwip_sys.cc. */
uint32_t ringsock_lwip_rand(void);

#ifdef __cplusplus
}
#endif

#define LWIP_RAND() ringsock_lwip_rand()

#endif /* RINGSOCK_STACK_LWIP_ARCH_CC_H */
