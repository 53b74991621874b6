/* The process-local flow handle and what the runtime's files share
 * (internal; tests may include it to reach into a flow).
 *
 * struct sluice_flow is built by sluice_flow_create in the client; the
 * supervisor and the workers are forks and use their copy of it: the
 * validated geometry, the handler pointers and the derived pointers into
 * the arena (mapped at the same address in a fork). None of it lives in
 * shared memory.
 */
#ifndef SLUICE_RUNTIME_FLOW_INTERNAL_H
#define SLUICE_RUNTIME_FLOW_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include <sluice/flow.h>
#include <sluice/ring.h>
#include "runtime/flow_layout.h"

/* Clients in this slice: the process that created the flow. */
#define SLUICE__NCLIENTS 1u
/* Added to the sum of the steps' task timeouts to give the client's own
 * whole-flow deadline: room for the hops between steps, so that the
 * workers' per-step verdict normally arrives first. */
#define SLUICE__CLIENT_MARGIN_NS UINT64_C(100000000)

/* Local task states (sluice_task_t.lstate_). */
enum sluice__lstate {
	SLUICE__LT_FREE = 0,
	SLUICE__LT_ALLOC,    /* entry CLIENT: the caller fills the payload */
	SLUICE__LT_INFLIGHT, /* submitted; on the in-flight list (submit order) */
	SLUICE__LT_READY,    /* completed; on the ready list until wait/reap returns it */
	SLUICE__LT_RETURNED, /* handed to the caller; arrived_ says if the entry came back */
	SLUICE__LT_ORPHAN,   /* released while in flight: freed when it comes back */
};

struct sluice__step {
	char name[SLUICE_STEP_NAME_MAX];
	sluice_handler_t handler;
	bool (*condition)(void *arg, const sluice_item_t *task);
	void *condition_arg;
	uint32_t nprocs;
	uint32_t batch_size;
	uint32_t capacity;
	uint32_t max_attempts;
	uint32_t first_worker;
	uint64_t batch_timeout_ns;
	uint64_t task_timeout_ns;
	void *ring_mem;      /* in the arena */
	uint64_t ring_size;
};

struct sluice_flow {
	char name[64];
	uint32_t nsteps;
	uint32_t nworkers;
	uint32_t nclients;
	uint32_t max_tasks;
	uint32_t tasks_per_client;
	uint32_t ring_lanes;
	uint64_t stop_grace_ns;
	uint64_t client_bound_ns; /* client's whole-flow deadline after submit; 0: none */
	struct sluice__step steps[SLUICE_FLOW_MAX_STEPS];

	sluice_arena_t *arena;
	sluice_blocks_t blocks;
	struct sluice__flow_hdr *hdr;
	struct sluice__step_rec *step_recs;
	struct sluice__worker_slot *wslots;
	struct sluice__client_slot *cslots;
	struct sluice__task_entry *tasks;
	void *comp_mem[SLUICE__NCLIENTS];
	uint64_t comp_size[SLUICE__NCLIENTS];

	/* Processes (the client's view). */
	pid_t sup_pid;       /* 0 until started */
	int sup_pidfd;       /* -1 when none */
	int sup_efd;         /* supervisor's doorbell: workers and client write 1 */
	int client_efd;      /* completion eventfd of client 0 */
	bool started;        /* start was called (successfully or not) */
	bool sup_reaped;

	/* Client 0's state. */
	uint32_t client;
	sluice_ring_t comp;                             /* consumer of its completion ring */
	sluice_ring_producer_t prod[SLUICE_FLOW_MAX_STEPS]; /* its lane on each step ring */
	sluice_ring_producer_t comp_self;               /* its lane on its own completion ring */
	sluice_task_t *lt;                              /* tasks_per_client local tasks */
	uint32_t *free_slots;                           /* stack of free local indices */
	uint32_t nfree;
	sluice_task_t *infl_head, *infl_tail;           /* in flight, in submit order */
	sluice_task_t *ready_head, *ready_tail;         /* completed, not yet returned */
	bool efd_mode;                                  /* sluice_flow_eventfd was called */

	char err[256];
};

/* ---- helpers (runtime/flow.c) ---- */
uint64_t sluice__now_ns(void);
uint64_t sluice__deadline(uint64_t now, uint64_t timeout_ns);
/* Waits while *word == val, up to timeout_ns (SLUICE_FLOW_FOREVER: no
 * limit). Shared (not process-private) futex. Returns 0 when woken or the
 * word differs, SLUICE_ETIMEDOUT, or SLUICE_EINTR. */
int sluice__futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns);
void sluice__futex_wake(_Atomic uint32_t *word);
void sluice__seterr(sluice_flow_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sluice__notify(int efd);
/* The first step >= from whose condition accepts `view`; nsteps if none. */
uint32_t sluice__route(const sluice_flow_t *f, uint32_t from, const sluice_item_t *view);
/* Checks a result (or payload) block named by shared memory: NONE with
 * len 0, or a valid handle owned by `owner` whose capacity holds len.
 * Returns its address (NULL for NONE) in *ptr and its capacity in *cap. */
bool sluice__block_ok(const sluice_flow_t *f, uint32_t blk, uint64_t len, uint32_t owner,
		      void **ptr, uint64_t *cap);
/* The step that worker w (< nworkers) belongs to, from the process-local
 * step table. */
static inline uint32_t sluice__worker_step(const sluice_flow_t *f, uint32_t w)
{
	for (uint32_t s = 0; s < f->nsteps; s++)
		if (w < f->steps[s].first_worker + f->steps[s].nprocs)
			return s;
	return 0;
}
/* The client slot owning task-table slot `slot` (< max_tasks). */
static inline uint32_t sluice__slot_client(const sluice_flow_t *f, uint32_t slot)
{
	return slot / f->tasks_per_client;
}

/* ---- client (runtime/client.c) ---- */
int sluice__client_init(sluice_flow_t *f);
void sluice__client_fini(sluice_flow_t *f);

/* ---- worker (runtime/worker.c) ---- */
__attribute__((noreturn)) void sluice__worker_main(sluice_flow_t *f, uint32_t w);

/* ---- supervisor (runtime/supervisor.c) ---- */
/* sluice__sweep's queued_step: every step, or none. */
#define SLUICE__SWEEP_ALL_QUEUED UINT32_C(0xfffffffe)
#define SLUICE__SWEEP_NO_QUEUED UINT32_C(0xffffffff)
/* Completes, with `status` and `message`, every entry QUEUED at
 * queued_step (a step index, or one of the two above) or HELD by a worker w
 * with dead[w] set (dead may be NULL), queuing the completions through
 * comp[client]. Races with live workers only by CAS: whoever wins an entry
 * owns it. Returns how many it completed. */
uint32_t sluice__sweep(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t queued_step,
		       const bool *dead, unsigned status, const char *message);

#endif
