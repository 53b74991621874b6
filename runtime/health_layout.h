/* The health region of a flow's arena (region 5; internal: tests and tools
 * may include it, users read it through sluice_flow_snapshot_take).
 *
 *	struct sluice__health_hdr               geometry, written once by create
 *	struct sluice__health_worker[nworkers]  one per worker slot
 *	struct sluice__health_client[nclients]  one per client slot
 *
 * Offsets are from the region's base, each record 64-byte aligned. What
 * the arena's other regions already hold for observers is not repeated:
 * slot state and position (region 1, struct sluice__worker_slot), the
 * supervisor's per-step counters and failed flag (struct sluice__step_rec),
 * the flow state (struct sluice__flow_hdr), queue depths (the step rings'
 * counters, region 4).
 *
 * One writer per part, readable without locks. Each part of a record has
 * one writer at a time and its own sequence counter (a seqlock):
 *
 *	part                          writer
 *	worker: lines 0-11            the slot's worker process (one at a time);
 *	                              between two processes the supervisor
 *	                              (after it reaped one, before it forks the
 *	                              next: it closes a section the dead one
 *	                              left open and clears the call in hand)
 *	worker: line 12 (sup)         the supervisor
 *	client                        the client slot's thread of the moment
 *
 * Writer (sluice__seq_begin/end): the counter goes odd, the fields are
 * stored (relaxed atomics, load + store: a single writer needs no RMW),
 * the counter goes even. Reader (sluice__seq_read_begin/retry): reads the
 * counter (even, or retry), copies the fields (relaxed atomic loads), reads
 * the counter again: equal means the copy is one writer's state between
 * two sections. Every field is an _Atomic of at most 64 bits, so a copy is
 * never a data race and needs no write access: a read-only mapping of the
 * arena reads it as well (no 128-bit CAS, no locks).
 *
 * Counters of a slot add up over its processes (a restart goes on counting
 * where the dead process stopped). Histograms are log2 buckets:
 *	batch sizes  bucket i counts handle() calls of 2^i .. 2^(i+1) - 1 tasks
 *	latencies    bucket i counts tasks of 2^i .. 2^(i+1) - 1 ns (bucket 0
 *	             also 0 ns), from the task's queueing at this step (its
 *	             entry's queued_ns) to the return of its handle() call
 * Invariants of a consistent worker copy: the batch buckets add up to
 * batches, the latency buckets to tasks, max_batch <= batch_size.
 */
#ifndef SLUICE_RUNTIME_HEALTH_LAYOUT_H
#define SLUICE_RUNTIME_HEALTH_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/flow.h>
#include "base/atomic.h"

#define SLUICE_HEALTH_MAGIC UINT64_C(0x3148544c48554c53) /* "SLUHLTH1" little-endian */

struct sluice__health_hdr {
	uint64_t magic;
	uint32_t layout_version;  /* SLUICE_FLOW_LAYOUT_VERSION */
	uint32_t header_size;     /* sizeof(struct sluice__health_hdr) */
	uint32_t nworkers;
	uint32_t nclients;
	uint32_t worker_size;     /* sizeof(struct sluice__health_worker) */
	uint32_t client_size;     /* sizeof(struct sluice__health_client) */
	uint64_t workers_off;     /* from the region's base */
	uint64_t clients_off;
	uint64_t _pad[2];
};

struct sluice__health_worker {
	/* Line 0: the worker's part, sections of wseq. */
	_Atomic uint64_t wseq;
	_Atomic uint64_t heartbeat_ns;  /* CLOCK_MONOTONIC: each handle() call's start and end */
	_Atomic uint64_t busy_since_ns; /* the handle() call in hand began; 0: none */
	_Atomic uint64_t ready_ns;      /* the slot's latest process reported READY; 0: not yet */
	_Atomic uint64_t tasks;         /* tasks of handle() calls that returned */
	_Atomic uint64_t batches;       /* handle() calls that returned */
	_Atomic uint64_t latency_sum_ns;
	_Atomic uint32_t in_hand;       /* tasks of the call in hand */
	_Atomic uint32_t max_batch;
	/* Line 1. */
	_Atomic uint64_t handler_errors; /* tasks failed by the handler */
	_Atomic uint64_t timeouts;       /* tasks it ended with SLUICE_TASK_TIMEOUT */
	_Atomic uint64_t bad_descriptors; /* descriptors it refused */
	uint64_t _pad1[5];
	/* Lines 2-11. */
	_Atomic uint64_t batch_hist[SLUICE_HEALTH_BATCH_BUCKETS];
	_Atomic uint64_t latency_hist[SLUICE_HEALTH_LATENCY_BUCKETS];
	/* Line 12: the supervisor's part, sections of sseq. */
	_Atomic uint64_t sseq;
	_Atomic uint32_t pid;           /* the slot's latest process; 0 before the first fork */
	_Atomic uint32_t restarts;      /* processes forked to replace a dead one */
	_Atomic uint32_t deaths;        /* processes that did not exit cleanly */
	_Atomic uint32_t last_pid;      /* the last process reaped */
	_Atomic int32_t last_exit_code; /* its exit code; -1 when a signal ended it */
	_Atomic int32_t last_signal;    /* the signal that ended it; 0 when it exited */
	_Atomic uint32_t last_kill;     /* enum sluice_kill_reason: why we killed it */
	uint32_t _pad12;
	_Atomic uint64_t forked_ns;     /* when the latest process was forked */
	_Atomic uint64_t death_ns;      /* when the supervisor noticed the last end (reap) */
	uint64_t _pad13;
};

struct sluice__health_client {
	_Atomic uint64_t cseq;
	_Atomic uint64_t submitted;     /* tasks submitted (queued, or done at once) */
	/* Tasks handed back by wait/reap (or done at once), by status as the
	 * client saw it, a local timeout included; [SLUICE_HEALTH_NSTATUS - 1]:
	 * a status outside the enum. */
	_Atomic uint64_t completed[SLUICE_HEALTH_NSTATUS];
	uint64_t _pad[16 - 2 - SLUICE_HEALTH_NSTATUS];
};

_Static_assert(sizeof(struct sluice__health_hdr) == 64, "health header layout");
_Static_assert(offsetof(struct sluice__health_worker, handler_errors) == 64, "health worker layout");
_Static_assert(offsetof(struct sluice__health_worker, batch_hist) == 128, "health worker layout");
_Static_assert(offsetof(struct sluice__health_worker, latency_hist) == 256, "health worker layout");
_Static_assert(offsetof(struct sluice__health_worker, sseq) == 768, "health worker layout");
_Static_assert(offsetof(struct sluice__health_worker, forked_ns) == 808, "health worker layout");
_Static_assert(sizeof(struct sluice__health_worker) == 832, "health worker layout");
_Static_assert(offsetof(struct sluice__health_client, completed) == 16, "health client layout");
_Static_assert(sizeof(struct sluice__health_client) == 128, "health client layout");

/* ---- the seqlock ------------------------------------------------------------- */

/* Opens a write section: the counter goes to its next odd value (from an
 * odd value a dead writer left, to the one after: still odd). Its writer
 * only. */
static inline void sluice__seq_begin(_Atomic uint64_t *seq)
{
	/* Relaxed: we are its only writer. */
	sl_store_relaxed(seq, (sl_load_relaxed(seq) + 1) | 1);
	/* Release fence: the odd value before the field stores that follow;
	 * pairs with the reader's acquire fence in sluice__seq_read_retry (a
	 * reader that saw one of our stores sees the odd value, or later). */
	sl_fence_release();
}

/* Closes it: the counter goes even. */
static inline void sluice__seq_end(_Atomic uint64_t *seq)
{
	/* Release: the section's stores before the even value; pairs with the
	 * reader's acquire load in sluice__seq_read_begin. */
	sl_store_release(seq, sl_load_relaxed(seq) + 1);
}

/* A single writer's increment of a field (inside a section). */
static inline void sluice__seq_add(_Atomic uint64_t *field, uint64_t n)
{
	/* Relaxed: one writer; the section's fences order it. */
	sl_store_relaxed(field, sl_load_relaxed(field) + n);
}

static inline uint64_t sluice__seq_read_begin(const _Atomic uint64_t *seq)
{
	/* Acquire: pairs with the writer's release store in sluice__seq_end:
	 * with an even value, that section's stores are visible. */
	return sl_load_acquire(seq);
}

/* True when the copy made since sluice__seq_read_begin returned s0 may be
 * torn: try again. */
static inline bool sluice__seq_read_retry(const _Atomic uint64_t *seq, uint64_t s0)
{
	/* Acquire fence: the copy's loads before the second read of the
	 * counter; pairs with the writer's release fence in sluice__seq_begin. */
	sl_fence_acquire();
	return (s0 & 1) != 0 || sl_load_relaxed(seq) != s0;
}

/* Bucket of a batch of n >= 1 tasks, and of a latency of ns. */
static inline unsigned sluice__batch_bucket(uint32_t n)
{
	unsigned b = n ? 31u - (unsigned)__builtin_clz(n) : 0;
	return b < SLUICE_HEALTH_BATCH_BUCKETS ? b : SLUICE_HEALTH_BATCH_BUCKETS - 1;
}

static inline unsigned sluice__latency_bucket(uint64_t ns)
{
	return ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
}

#endif
