/* The writers of the health region (runtime/health.c), one call per event,
 * each a write section of its part (runtime/health_layout.h says who
 * writes which part). Internal.
 */
#ifndef SLUICE_RUNTIME_HEALTH_H
#define SLUICE_RUNTIME_HEALTH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/flow_internal.h"

/* ---- create (the client, before any other process exists) ---- */
uint64_t sluice__health_region_size(uint32_t nworkers, uint32_t nclients);
/* Writes the region's header at mem (zero-filled, size bytes from
 * sluice__health_region_size) and sets f->hworkers and f->hclients. */
void sluice__health_format(sluice_flow_t *f, void *mem);
/* For a process that opens an existing arena: checks the health region's
 * header (`size` bytes at mem) against the flow's validated geometry
 * (f->nworkers, f->nclients) and sets f->hworkers and f->hclients.
 * Returns 0, or SLUICE_EBADMAGIC / SLUICE_EVERSION / SLUICE_ECORRUPT /
 * SLUICE_ETRUNCATED. */
int sluice__health_open(sluice_flow_t *f, void *mem, uint64_t size);

/* ---- the worker of a slot (its process's thread) ---- */
/* At its start: closes a section a predecessor left open, no call in hand. */
void sluice__health_worker_start(struct sluice__health_worker *h);
/* Before it reports READY. */
void sluice__health_ready(struct sluice__health_worker *h, uint64_t now);
/* A handle() call of n tasks begins at `now` (a beat). */
void sluice__health_call_begin(struct sluice__health_worker *h, uint32_t n, uint64_t now);
/* It returned at `end` (a beat): tasks, batches, histograms (each task's
 * latency from its entry's queued_ns), max_batch; no call in hand. Before
 * any of the tasks is concluded, so that whoever sees a task done sees it
 * counted. */
void sluice__health_call_end(struct sluice__health_worker *h, const sluice_item_t *items,
			     uint32_t n, uint64_t end);

/* One of the worker's counters (handler_errors, timeouts, bad_descriptors)
 * goes up by n, in a section of its own. */
static inline void sluice__health_count(struct sluice__health_worker *h, _Atomic uint64_t *c,
					uint64_t n)
{
	sluice__seq_begin(&h->wseq);
	sluice__seq_add(c, n);
	sluice__seq_end(&h->wseq);
}

/* ---- the supervisor ---- */
/* It forked `pid` into slot w at `now`; restart: to replace a dead one. */
void sluice__health_forked(sluice_flow_t *f, uint32_t w, uint32_t pid, bool restart, uint64_t now);
/* It reaped slot w's process (si from waitid; clean: it exited after
 * on_stop, code 0), noticed at `noticed`; kill: enum sluice_kill_reason.
 * Also closes the worker part for the next process: a section left open,
 * the call in hand, ready_ns. */
void sluice__health_reaped(sluice_flow_t *f, uint32_t w, const siginfo_t *si, bool clean,
			   unsigned kill, uint64_t noticed);
/* The worker's call in hand: its start and last beat (0, 0: none).
 * Returns false when no consistent copy could be had at once (look again
 * later). Any process; reads only. */
bool sluice__health_busy(const struct sluice__health_worker *h, uint64_t *since, uint64_t *beat);

/* ---- the client (its thread) ---- */
void sluice__health_submitted(sluice_flow_t *f, uint64_t n);
void sluice__health_completed(sluice_flow_t *f, unsigned status);

#endif
