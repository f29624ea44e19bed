// RINGSOCK_TSAN: defined when the test is built with ThreadSanitizer (GCC
// says so with __SANITIZE_THREAD__, Clang with __has_feature), so that the
// threaded tests run fewer rounds there and stay within seconds.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define RINGSOCK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGSOCK_TSAN 1
#endif
#endif
