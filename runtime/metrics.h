/* Collecting what the renderers render, for a process that holds a flow
 * handle: the supervisor's metrics endpoint (runtime/metrics_http.c) and
 * sluice-inspect. Internal.
 *
 * A collector owns two snapshots of the flow and swaps them at each take,
 * so that the one taken before serves as `prev` for rates; it also copies
 * each step's capacity from the handle, reads the allocator's per-class
 * statistics and the supervisor's uptime (/proc). It reads only: it works
 * on a flow opened from a read-only mapping.
 */
#ifndef SLUICE_RUNTIME_METRICS_H
#define SLUICE_RUNTIME_METRICS_H

#include <stdint.h>

#include <sluice/blocks.h>
#include <sluice/flow.h>
#include <sluice/metrics.h>

struct sluice__metrics {
	const sluice_flow_t *f;
	sluice_flow_snapshot_t *now, *prev;
	bool have_prev;
	uint32_t capacity[SLUICE_FLOW_MAX_STEPS];
	sluice_blocks_stats_t classes[SLUICE_BLOCKS_MAX_CLASSES];
	sluice_metrics_src_t src; /* valid after a take: points into this struct */
};

enum sluice__metrics_format { SLUICE__METRICS_JSON, SLUICE__METRICS_PROMETHEUS };

/* Allocates the snapshots for f. Returns 0 or SLUICE_ENOMEM. */
int sluice__metrics_init(struct sluice__metrics *m, const sluice_flow_t *f);
void sluice__metrics_fini(struct sluice__metrics *m);
/* Takes a snapshot (the last one becomes m->src.prev), the class
 * statistics and the uptime, and fills m->src. Returns 0 or a code of
 * sluice_flow_snapshot_take. May nap as the snapshot does (a record whose
 * writer died mid-write: up to about 10 ms). */
int sluice__metrics_take(struct sluice__metrics *m);
/* src rendered into a new buffer (malloc, NUL-terminated; the caller
 * frees it), its length in *len. NULL when out of memory. */
char *sluice__metrics_render(const sluice_metrics_src_t *src, enum sluice__metrics_format fmt,
			     size_t *len);
/* How long process pid has run, from /proc (clock-tick resolution, at
 * least 1 ns); 0 when it cannot be told (no such process, /proc
 * unreadable). */
uint64_t sluice__proc_uptime_ns(int64_t pid);

#endif
