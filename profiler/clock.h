/*
 * clock.h: the one clock of jplprof: CLOCK_MONOTONIC in nanoseconds.  Layer
 * timers, power samples and window markers all read it, so they line up.
 */
#ifndef JP_CLOCK_H
#define JP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t jp_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* JP_CLOCK_H */
