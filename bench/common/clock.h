/* The bench suite's clock: CLOCK_MONOTONIC in nanoseconds. It is one clock
 * for every process on the machine, so a time taken in one process can be
 * subtracted from a time taken in another. On this machine type it is read
 * through the vDSO from the TSC (about 20 ns), cheap enough to take once per
 * round trip. */
#ifndef SLUICE_BENCH_CLOCK_H
#define SLUICE_BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps `ns` nanoseconds, resuming after signals. */
static inline void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) != 0)
		;
}

#endif
