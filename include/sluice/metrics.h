/* Metrics: a flow's health snapshot (sluice_flow_snapshot_take) rendered
 * as JSON (the schema in docs/INSPECT.md, "schema_version": 1) or as the
 * Prometheus text exposition format (version 0.0.4), and the verdict
 * behind /healthz. This is what `sluice-inspect --json / --prometheus`
 * prints and what the supervisor serves on its metrics port; a service
 * with its own HTTP server can serve the same from its own snapshots.
 *
 * All four calls are pure functions of what they are given: they read only
 * the memory `src` names, write only `buf` (or `reason`), allocate
 * nothing, take no lock and make no system call. Any process, any thread,
 * concurrently with anything except a sluice_flow_snapshot_take into the
 * same snapshots. They treat every field as untrusted: a snapshot is a copy
 * of shared memory that any process of the flow could have scribbled on,
 * so names need not be terminated or valid UTF-8 (invalid bytes come out
 * as U+FFFD), counts and indices need not agree (a worker slot outside
 * the worker array is left out), counters may be anything (sums
 * saturate). The output is always valid UTF-8, JSON that parses and
 * exposition lines that promtool accepts.
 *
 * Units: durations are integer nanoseconds in JSON (fields ending in _ns)
 * and seconds in Prometheus (names ending in _seconds); JSON rates are
 * per second (_per_s). Numbers are formatted without the C locale's help
 * (no printf of a double), so a program that set LC_NUMERIC gets the same
 * output.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sluice/blocks.h>
#include <sluice/export.h>
#include <sluice/flow.h>

/* The JSON schema's version ("schema_version"); it changes only when a
 * field is removed or changes meaning: fields may be added within one. */
#define SLUICE_METRICS_SCHEMA_VERSION 1

/* What the renderers render. Only size_of and now are required. */
typedef struct sluice_metrics_src {
	size_t size_of;                     /* sizeof(sluice_metrics_src_t) */
	const char *flow;                   /* the flow's name (NUL-terminated); NULL: "" */
	const sluice_flow_snapshot_t *now;  /* the snapshot to render */
	/* An earlier snapshot of the same flow, for the JSON's per-second
	 * rates (tasks_per_s, completed_per_s); NULL: the rates are null. It
	 * is ignored unless it has now's numbers of steps and workers and was
	 * taken before it. Prometheus output never has rates: a scraper
	 * computes them from the counters. */
	const sluice_flow_snapshot_t *prev;
	/* Per step (now->nsteps entries) its ring capacity, slots per
	 * producer lane (sluice_step_t.capacity); NULL: unknown (null in JSON,
	 * no sample in Prometheus). */
	const uint32_t *capacity;
	/* The arena's block classes (sluice_blocks_stats), nclasses entries;
	 * NULL or 0: none shown. */
	const sluice_blocks_stats_t *classes;
	uint32_t nclasses;
	uint32_t _reserved;
	/* How long the flow's supervisor has run; 0: unknown (null, no sample). */
	uint64_t uptime_ns;
} sluice_metrics_src_t;

/* Renders src as one JSON object (one line, then '\n') into buf (len
 * bytes; it is always NUL-terminated when len > 0, truncated if need be).
 * Returns the length of the whole text, without the NUL, as snprintf does:
 * a return >= len means it was truncated (call again with return + 1
 * bytes); SLUICE_EINVAL when src or src->now is NULL or src->size_of is
 * too small. */
SLUICE_EXTERN int64_t sluice_metrics_json(const sluice_metrics_src_t *src, char *buf, size_t len);

/* Renders src in the Prometheus text exposition format (metric names and
 * labels in docs/INSPECT.md: sluice_flow_*, sluice_step_*,
 * sluice_worker_*, sluice_arena_*; labels flow, step, worker, class,
 * status, le). Buffer and return as sluice_metrics_json. */
SLUICE_EXTERN int64_t sluice_metrics_prometheus(const sluice_metrics_src_t *src, char *buf,
						size_t len);

/* Is the flow serving? True when its state is RUNNING and every step has
 * not failed and has at least one worker READY (or RETIRING, which still
 * serves). Otherwise false, and `reason` (len bytes, may be NULL/0) gets
 * every reason, "; "-separated ("flow is draining", "step 'parse'
 * failed", "step 'score' has no worker ready"), NUL-terminated and
 * truncated to fit. This is /healthz's verdict (200 or 503). */
SLUICE_EXTERN bool sluice_metrics_serving(const sluice_metrics_src_t *src, char *reason,
					  size_t len);

/* The q-quantile (0 <= q <= 1) of a log2 histogram of n buckets, where
 * bucket i counts values of 2^i .. 2^(i+1) - 1 (bucket 0: 0 and 1), as the
 * health snapshot's latency and batch-size histograms do. The rank q *
 * total falls in some bucket; the value is interpolated linearly between
 * that bucket's bounds (2^i and 2^(i+1), 0 and 2 for bucket 0) by the
 * rank's place among the bucket's counts, as Prometheus's
 * histogram_quantile does: within a factor 2 of the truth, exact at bucket
 * edges for uniform data. Returns false (and *out = 0) when the histogram
 * is empty or q is out of range. */
SLUICE_EXTERN bool sluice_metrics_quantile(const uint64_t *hist, unsigned n, double q,
					   double *out);

#endif
