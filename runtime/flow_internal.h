/* The process-local flow handle and what the runtime's files share
 * (internal; tests may include it to reach into a flow).
 *
 * struct sluice_flow is built by sluice_flow_create in the client; the
 * supervisor and the workers are forks and use their copy of it: the
 * validated geometry, the handler pointers and the derived pointers into
 * the arena (mapped at the same address in a fork). None of it lives in
 * shared memory. An exec'd worker builds its own from the arena
 * (sluice__flow_open_arena), with the handler and conditions of its
 * program's registry.
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
#include "runtime/health_layout.h"

/* Added to the sum of the steps' task timeouts to give the client's own
 * whole-flow deadline: room for the hops between steps, so that the
 * workers' per-step verdict normally arrives first. */
#define SLUICE__CLIENT_MARGIN_NS UINT64_C(100000000)

/* Step rings have two lanes per producer: lanes [0, ring_lanes) carry
 * normal tasks, [ring_lanes, 2 * ring_lanes) high-priority ones
 * (sluice_ring_set_priority). Completion rings have one level. */
#define SLUICE__LEVELS 2u

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
	uint32_t nslots;     /* worker slots: nprocs, + 1 spare with max_tasks_per_worker */
	uint32_t batch_size;
	uint32_t capacity;
	uint32_t max_attempts;
	uint32_t first_worker;
	uint32_t fail_deaths;
	uint64_t batch_timeout_ns;
	uint64_t task_timeout_ns;
	uint64_t restart_delay_ns;
	uint64_t restart_max_delay_ns;
	uint64_t fail_window_ns;
	uint64_t hung_grace_ns;
	uint64_t max_tasks_per_worker;
	uint64_t heartbeat_timeout_ns;
	uint32_t wait;       /* the workers' wait on the step ring: SPIN_SLEEP, SLEEP or BUSY_POLL */
	uint64_t spin_ns;    /* SPIN_SLEEP's spin (defaulted); 0 for the other modes */
	void *ring_mem;      /* in the arena */
	uint64_t ring_size;
	char *exec_path;     /* owned copy; NULL: workers are forks (client, supervisor only) */
	char handler_name[SLUICE_HANDLER_NAME_MAX];   /* "" unless exec'd */
	char condition_name[SLUICE_HANDLER_NAME_MAX]; /* "" when none */
	bool has_condition;  /* the step has one (an opened handle has no function for it) */
};

/* The flow handle's pipe for SLUICE_READ_SPLICE (runtime/task_fd.c):
 * made on first use (open false until then: the handle is calloc'd). */
struct sluice__fd_pipe {
	int rd, wr;
	uint32_t cap;      /* the pipe's size: most bytes one splice moves */
	bool open;
	bool refused;      /* the arena's memfd refused splice: read(2) only */
};

struct sluice_flow {
	char name[64];
	uint32_t nsteps;
	uint32_t nworkers;   /* worker slots over all steps (see struct sluice__step) */
	uint32_t nclients;
	uint32_t max_tasks;
	uint32_t tasks_per_client;
	uint32_t ring_lanes;
	uint64_t stop_grace_ns;
	uint64_t client_bound_ns; /* client's whole-flow deadline after submit; 0: none */
	uint32_t client_wait;     /* sluice_task_wait: SPIN_SLEEP, SLEEP or BUSY_POLL */
	uint64_t client_spin_ns;  /* its spin (defaulted); 0 for the other modes */
	struct sluice__step steps[SLUICE_FLOW_MAX_STEPS];

	sluice_arena_t *arena;
	sluice_blocks_t blocks;
	struct sluice__flow_hdr *hdr;
	struct sluice__step_rec *step_recs;
	struct sluice__worker_slot *wslots;
	struct sluice__client_slot *cslots;
	struct sluice__task_entry *tasks;
	struct sluice__health_worker *hworkers; /* region 5: per worker slot */
	struct sluice__health_client *hclients; /* region 5: per client slot */
	void *comp_mem[SLUICE__MAX_CLIENTS];
	uint64_t comp_size[SLUICE__MAX_CLIENTS];

	/* Processes (the client's view). */
	pid_t sup_pid;       /* 0 until started */
	int sup_pidfd;       /* -1 when none */
	int sup_efd;         /* supervisor's doorbell: workers and client write 1 */
	int client_efd;      /* completion eventfd of this handle's client */
	/* Per client slot, its completion eventfd: made by create, inherited
	 * by the supervisor and the workers (who write them), handed to a
	 * client that attaches to the slot; -1 where this process has none. */
	int client_efds[SLUICE__MAX_CLIENTS];
	bool started;        /* start was called (successfully or not); attached: true */
	bool attached;       /* sluice_flow_attach made it: not the creator */
	bool listed;         /* creator: the supervisor listens on the control socket */
	bool read_only;      /* attached as an observer: no client slot */
	int ctl_fd;          /* attached: the control connection (the lease); -1 */
	bool sup_reaped;
	bool sup_died;       /* the supervisor exited before the flow stopped */
	bool sup_cleaned;    /* ... and its workers' tasks were completed here */
	uint64_t sup_check_ns; /* submit looks at the supervisor's pidfd again from then */

	/* Client 0's state. */
	uint32_t client;
	sluice_ring_t comp;                             /* consumer of its completion ring */
	sluice_ring_producer_t prod[SLUICE_FLOW_MAX_STEPS][SLUICE__LEVELS]; /* its lanes on each step ring */
	sluice_ring_producer_t comp_self;               /* its lane on its own completion ring */
	sluice_task_t *lt;                              /* tasks_per_client local tasks */
	uint32_t *free_slots;                           /* stack of free local indices */
	uint32_t nfree;
	sluice_task_t *infl_head, *infl_tail;           /* in flight, in submit order */
	sluice_task_t *ready_head, *ready_tail;         /* completed, not yet returned */
	bool efd_mode;                                  /* sluice_flow_eventfd was called */

	char err[256];

	/* Payload from a descriptor (runtime/task_fd.c). */
	struct sluice__fd_pipe fd_pipe;

	uint16_t metrics_port; /* sluice_flow_opts_t.metrics_port (runtime/metrics_http.c) */
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
/* A worker's checks of a descriptor (runtime/desc_check.c). */
struct sluice__desc_view {
	void *payload;
	uint64_t payload_len;
	void *result;
	uint64_t result_len;
	uint64_t result_cap;
};
/* Off the ring, before the claim: slot in the table, agreeing with task_id. */
bool sluice__desc_ring_ok(const sluice_flow_t *f, const sluice_desc_t *d);
/* The entry's descriptor of `slot`, held by a worker of `step`: slot,
 * client and step agree, both blocks the slot's client's; fills *v, or
 * writes why not into msg. */
bool sluice__desc_entry_ok(const sluice_flow_t *f, uint32_t step, uint32_t slot,
			   const sluice_desc_t *d, struct sluice__desc_view *v, char *msg,
			   size_t msglen);
/* The client's whole-flow deadline (client_bound_ns) from the steps. */
void sluice__set_client_bound(sluice_flow_t *f);
/* Opens step s's ring and claims owner's normal and high lanes on it into
 * prod[0] and prod[1]. */
int sluice__claim_step_lanes(const sluice_flow_t *f, uint32_t s, uint32_t owner,
			     sluice_ring_producer_t prod[SLUICE__LEVELS]);
/* The level (0 normal, 1 high) of a descriptor's priority, any value. */
static inline unsigned sluice__level(uint8_t priority)
{
	return priority != 0;
}
/* The first step >= from whose condition accepts `view`; nsteps if none. */
uint32_t sluice__route(const sluice_flow_t *f, uint32_t from, const sluice_item_t *view);
/* Checks a result (or payload) block named by shared memory: NONE with
 * len 0, or a valid handle owned by `owner` whose capacity holds len.
 * Returns its address (NULL for NONE) in *ptr and its capacity in *cap. */
bool sluice__block_ok(const sluice_flow_t *f, uint32_t blk, uint64_t len, uint32_t owner,
		      void **ptr, uint64_t *cap);
/* The step that worker slot w (< nworkers) belongs to, from the
 * process-local step table. */
static inline uint32_t sluice__worker_step(const sluice_flow_t *f, uint32_t w)
{
	for (uint32_t s = 0; s < f->nsteps; s++)
		if (w < f->steps[s].first_worker + f->steps[s].nslots)
			return s;
	return 0;
}
/* Worker slot w's scratch in the arena: the descriptors it took (in) and
 * the ones it is sending on (out), scratch_n each. The offsets were
 * written by create, before any other process existed. */
static inline sluice_desc_t *sluice__scratch_in(const sluice_flow_t *f, uint32_t w)
{
	return (sluice_desc_t *)((char *)f->hdr + f->wslots[w].scratch_off);
}
static inline sluice_desc_t *sluice__scratch_out(const sluice_flow_t *f, uint32_t w)
{
	return sluice__scratch_in(f, w) + f->wslots[w].scratch_n;
}
/* The client slot owning task-table slot `slot` (< max_tasks). */
static inline uint32_t sluice__slot_client(const sluice_flow_t *f, uint32_t slot)
{
	return slot / f->tasks_per_client;
}

/* ---- client (runtime/client.c) ---- */
/* This handle becomes client `slot`'s: its share of the task table (every
 * entry FREE), its completion ring (client_efd set), its lanes. */
int sluice__client_init(sluice_flow_t *f, uint32_t slot);
/* The eventfd mode's first arming (sluice_flow_eventfd). */
void sluice__client_arm(sluice_flow_t *f);
void sluice__client_fini(sluice_flow_t *f);
/* Takes whatever is on the client's completion ring (into the ready list;
 * released tasks are freed). Never blocks. */
void sluice__client_drain(sluice_flow_t *f);

/* ---- worker (runtime/worker.c) ---- */
__attribute__((noreturn)) void sluice__worker_main(sluice_flow_t *f, uint32_t w);

/* ---- opening a flow from its arena (runtime/flow_open.c) ---- */
/* Builds a process-local handle from the arena `a` alone (an exec'd
 * worker; later, a client attaching by name): reads the flow header, the
 * step table, the names, the worker and client slots, and checks every
 * field as untrusted input (magic, version, sizes, counts, each offset and
 * size against its region, the rings and the block allocator opened and
 * checked against the step table). The handle has no handlers or
 * conditions (NULL), no processes and no descriptors (-1); it is not a
 * client. Returns 0 and the handle, which then owns `a`
 * (sluice_flow_destroy frees both); or SLUICE_EBADMAGIC, SLUICE_EVERSION,
 * SLUICE_ECORRUPT, SLUICE_ENOMEM, a ring's or the allocator's code, with a
 * message naming the field in err (errlen bytes), `a` still the caller's.
 * Any thread; reads the geometry once. */
int sluice__flow_open_arena(sluice_arena_t *a, sluice_flow_t **out, char *err, size_t errlen);

/* ---- exec'd workers (runtime/worker_exec.c) ---- */
/* In the supervisor's child for worker slot w of a step with exec_path:
 * leaves the descriptors the worker needs open across exec and execs the
 * step's program (sluice_worker_exec_main). When the exec fails, reports
 * it in the slot as a failed start and exits. */
__attribute__((noreturn)) void sluice__worker_exec(sluice_flow_t *f, uint32_t w);

/* ---- recovery (runtime/recovery.c) ---- */
/* sluice__sweep's queued_step: every step, or none. */
#define SLUICE__SWEEP_ALL_QUEUED UINT32_C(0xfffffffe)
#define SLUICE__SWEEP_NO_QUEUED UINT32_C(0xffffffff)
/* Completes, with `status` and `message`, every entry QUEUED at
 * queued_step (a step index, or one of the two above), and, with
 * all_held, every HELD entry (only when no worker runs any more: the
 * final sweeps), undoing a dead holder's half-done conclusion first
 * (sluice__settle_held), queuing the completions through comp[client].
 * Races with live workers only by CAS: whoever wins an entry owns it.
 * Returns how many it completed. */
uint32_t sluice__sweep(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t queued_step,
		       bool all_held, unsigned status, const char *message);

/* For the winner of entry `slot`, just moved by CAS out of HELD(holder,
 * held_gen) of a dead worker (or out of HELD(supervisor, held_gen + 1) of
 * a supervisor that died recovering it: holder SLUICE__HELD_SUPERVISOR):
 * undoes what the worker's journal says it began. The desc names the
 * result the task came with again; that block is the client's again; a
 * result block the worker had already handed to the client is the
 * worker's again (its reclaim frees it). A stale or settled journal, or
 * one naming another worker than the holder, is left alone. */
void sluice__settle_held(sluice_flow_t *f, uint32_t slot, uint32_t held_gen, uint32_t holder);

/* Queues the completion of entry `slot` (DONE(client) at generation gen,
 * desc and message written) on the client's completion ring through
 * comp[client]. Never blocks for long: the ring holds every task of its
 * client; a completion that cannot be queued is counted in
 * hdr->lost_completions. */
void sluice__send_completion(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t slot,
			     uint32_t gen);

/* How a recovery of a dead worker ends the tasks it finds. */
struct sluice__recovery {
	sluice_flow_t *f;
	sluice_ring_producer_t *comp;  /* per client: completion lanes */
	/* RUN: the flow goes on; entries taken but not run are queued again
	 * through requeue() (the entry is QUEUED(step) at generation gen, its
	 * desc written), held ones retried or completed.
	 * STOP: the flow is stopping: taken and held entries complete with
	 * FLOW_STOPPED (or are left QUEUED for the final sweep). */
	bool run;
	bool step_failed;  /* the dead worker's step failed: held tasks end STEP_FAILED */
	bool hung;         /* it was killed as hung: its overdue tasks end TIMEOUT */
	bool scan_held;    /* look for its HELD entries (false: a sweep of every
			    * HELD entry follows, which settles them) */
	void (*requeue)(void *arg, uint32_t step, uint32_t slot, uint32_t gen);
	void *arg;
	const char *why;   /* "step 'x' worker 1 was killed by signal 9" */
	/* Out: what it did. */
	uint32_t requeued, retried, died, republished;
};

/* Recovers what dead (reaped) worker slot w had: entries it took off its
 * ring but did not claim (its intent record and in[]), entries it moved on
 * but did not publish (out[]: queued again, or their completions sent
 * again), entries it held (settled, then retried up to max_attempts or
 * completed). Then reclaims its blocks, frees its ring lanes and clears
 * its scratch. Every move is a CAS that bumps the generation, so a copy a
 * live worker may hold fails its claim: never lost, never run twice. The
 * supervisor's thread (or the client's after the supervisor died, with
 * run = false); concurrently with live workers and the client. */
void sluice__recover_worker(struct sluice__recovery *R, uint32_t w);

/* ---- supervisor (runtime/supervisor.c), the client's side ---- */
/* True once the supervisor exited before the flow stopped (it is then
 * reaped here). Looks at its pidfd (one poll(2) with no timeout) unless
 * that is already known. The client's thread. */
bool sluice__supervisor_gone(sluice_flow_t *f);

/* ---- payload from a descriptor (runtime/task_fd.c) ---- */
/* Closes the handle's pipe, if it made one. sluice_flow_destroy. */
void sluice__task_fd_fini(sluice_flow_t *f);

#endif
