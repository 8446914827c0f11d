/*
 * jp_test.h: the few macros our C tests use.
 *
 * Each test binary prints one line per case: "PASS <name>",
 * "FAIL <name>: <why>" or "SKIP <name>: <why>", and exits non-zero when any
 * case failed.  tests/run_tests.sh counts these lines across all binaries and
 * scripts and prints the final "N passed, N failed, N skipped".
 */
#ifndef JP_TEST_H
#define JP_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int jp_test_failures;

static inline void jp_test_pass(const char *name) { printf("PASS %s\n", name); fflush(stdout); }

static inline void jp_test_fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    jp_test_failures++;
}

static inline void jp_test_skip(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

/* $JP_TEST_TIME_SCALE (default 1): how much slower than native this run is
 * expected to be; tests/cross/aarch64.sh sets it for qemu.  Bounds on
 * elapsed time are multiplied by it, and tests that rely on a helper
 * thread keeping real time say when it is above 1. */
static inline double jp_test_time_scale(void)
{
    const char *s = getenv("JP_TEST_TIME_SCALE");
    double v = s && *s ? atof(s) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

/* Reports name as passed when cond holds, else failed with the message. */
#define JP_CHECK(name, cond, ...) \
    do { if (cond) jp_test_pass(name); else jp_test_fail(name, __VA_ARGS__); } while (0)

static inline int jp_test_exit_code(void) { return jp_test_failures ? 1 : 0; }

#endif /* JP_TEST_H */
