/* The log-linear histogram: see hist.h. */
#include "bench/common/hist.h"

#include <math.h>
#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* The lowest value bucket `i` holds, and how many values it spans. */
static void bucket_range(unsigned i, uint64_t *low, uint64_t *width)
{
	if (i < BENCH_HIST_SUB) {
		*low = i;
		*width = 1;
		return;
	}
	unsigned e = i / BENCH_HIST_SUB + BENCH_HIST_SUB_BITS - 1;
	uint64_t sub = i % BENCH_HIST_SUB;
	*low = (BENCH_HIST_SUB + sub) << (e - BENCH_HIST_SUB_BITS);
	*width = (uint64_t)1 << (e - BENCH_HIST_SUB_BITS);
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t low, width;
			bucket_range(i, &low, &width);
			uint64_t v = low + width / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

void bench_hist_summary(const struct bench_hist *h, struct bench_pct *out)
{
	out->count = h->count;
	out->min = h->count ? h->min : 0;
	out->max = h->max;
	out->p50 = bench_hist_quantile(h, 0.50);
	out->p90 = bench_hist_quantile(h, 0.90);
	out->p99 = bench_hist_quantile(h, 0.99);
	out->p999 = bench_hist_quantile(h, 0.999);
	out->mean = h->count ? (double)h->sum / (double)h->count : 0.0;
}

void bench_hist_write_cdf(const struct bench_hist *h, FILE *f)
{
	if (h->count == 0)
		return;
	fprintf(f, "%llu 0\n", (unsigned long long)h->min);
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS && seen < h->count; i++) {
		if (h->bucket[i] == 0)
			continue;
		seen += h->bucket[i];
		uint64_t low, width;
		bucket_range(i, &low, &width);
		uint64_t top = low + width - 1;
		if (top > h->max)
			top = h->max;
		fprintf(f, "%llu %.6f\n", (unsigned long long)top, (double)seen / (double)h->count);
	}
}
