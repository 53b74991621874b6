/* A log-linear latency histogram (the HdrHistogram layout): values below
 * 2^BENCH_HIST_SUB_BITS are counted exactly; above, every power of two is
 * split into 2^BENCH_HIST_SUB_BITS equal buckets, so a reported percentile is
 * within 1/32 (about 3%) of the true value, from nanoseconds to hours, in a
 * fixed 15 KiB. Recording is a few instructions and never allocates.
 *
 * Plain memory with a single writer: a histogram may live in a shared
 * mapping, written by one process and read by another once the writer has
 * exited (waitpid orders the two). */
#ifndef SLUICE_BENCH_HIST_H
#define SLUICE_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);

static inline unsigned bench_hist_index(uint64_t v)
{
	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - BENCH_HIST_SUB_BITS)) - BENCH_HIST_SUB;
	return (e - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB + sub;
}

static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	h->bucket[bench_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* Adds every sample of `src` to `dst`. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding the
 * ceil(q * count)-th smallest sample, clamped to [min, max]. 0 when empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* Percentiles everyone reports, in ns (or whatever unit was recorded). */
struct bench_pct {
	uint64_t count, min, p50, p90, p99, p999, max;
	double mean;
};

void bench_hist_summary(const struct bench_hist *h, struct bench_pct *out);

/* Writes the histogram as a CDF to f: for each non-empty bucket, its upper
 * end (clamped to max) and the share of samples at or below it, "%llu %.6f"
 * per line, ascending; one "min 0" line first. Nothing when empty. */
void bench_hist_write_cdf(const struct bench_hist *h, FILE *f);

#endif
