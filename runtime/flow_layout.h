/* The shared layout of a flow's arena (internal: tests and tools may include
 * it; users go through include/sluice/flow.h).
 *
 *	region 1  flow    struct sluice__flow_hdr, then the step table
 *	                  (struct sluice__step_rec[nsteps]), the worker slots
 *	                  (struct sluice__worker_slot[nworkers]), the client
 *	                  slots (struct sluice__client_slot[nclients]), the
 *	                  steps' names for exec'd workers (struct
 *	                  sluice__step_names[nsteps]), then
 *	                  each worker slot's scratch: the descriptors it took
 *	                  (in[batch_size]) and the ones it is sending on
 *	                  (out[batch_size]), where the supervisor finds them
 *	                  after the worker died
 *	region 2  tasks   struct sluice__task_entry[max_tasks]
 *	region 3  blocks  the block allocator (shm/blocks.h)
 *	region 4  rings   per step an MPMC ring of descriptors, then per client
 *	                  an MPMC completion ring, each 64-byte aligned
 *	region 5  health  per worker slot and per client, counters and
 *	                  histograms with one writer each (runtime/health_layout.h)
 *
 * Everything is an offset, an index or a counter. The geometry (header
 * line 0, step table, slot identities) is written once by the creator
 * before any other process exists; the other processes are its forks and
 * use their own copy of the validated geometry (struct sluice_flow), never
 * the shared one, except exec'd workers, which build theirs from the arena
 * once, validating every field (runtime/flow_open.c). Fields written after
 * that are _Atomic and touched through base/atomic.h.
 */
#ifndef SLUICE_RUNTIME_FLOW_LAYOUT_H
#define SLUICE_RUNTIME_FLOW_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/desc.h>
#include <sluice/flow.h>
#include <sluice/ring.h>
#include "base/atomic.h"

#define SLUICE_FLOW_MAGIC UINT64_C(0x31574f4c46554c53) /* "SLUFLOW1" little-endian */
#define SLUICE_FLOW_LAYOUT_VERSION 3u /* 3: exec'd workers' names, health region, cancel flag, priority lanes */

enum sluice__region {
	SLUICE__REGION_FLOW = 1,
	SLUICE__REGION_TASKS = 2,
	SLUICE__REGION_BLOCKS = 3,
	SLUICE__REGION_RINGS = 4,
	SLUICE__REGION_HEALTH = 5,
};

/* Flow states: hdr->state, a futex word. Moves only forward. */
enum sluice__flow_state {
	SLUICE__FS_CREATED = 0,      /* arena laid out, no process */
	SLUICE__FS_STARTING = 1,     /* supervisor forked, workers in on_start */
	SLUICE__FS_RUNNING = 2,      /* every worker ready; submit allowed */
	SLUICE__FS_START_FAILED = 3, /* hdr->result and message say why; supervisor exits */
	SLUICE__FS_DRAINING = 4,     /* stop asked: no submit; workers finish what is queued */
	SLUICE__FS_STOPPING = 5,     /* workers leave their loop, run on_stop, exit */
	SLUICE__FS_STOPPED = 6,      /* every worker reaped, the supervisor exits */
};

/* Worker slot states. STARTING, READY, RETIRING, FAILED and EXITED are
 * written by the worker; DEAD by the supervisor once it reaped a worker
 * that did not exit cleanly (only after the worker is gone: one writer at a
 * time), NONE by the supervisor before it forks a process into the slot
 * again. A slot is a place for one process at a time; a restart forks a new
 * process into the same slot (same ring lanes, same block owner id). */
enum sluice__worker_state {
	SLUICE__WS_NONE = 0,
	SLUICE__WS_STARTING = 1,
	SLUICE__WS_READY = 2,
	SLUICE__WS_FAILED = 3,       /* on_start failed: start_rc, message */
	SLUICE__WS_EXITED = 4,       /* ran on_stop and exited */
	SLUICE__WS_DEAD = 5,         /* died or was killed; exit_status says how */
	SLUICE__WS_RETIRING = 6,     /* ran max_tasks_per_worker tasks: wants a replacement */
};

/* Ids of the processes of a flow, as ring-lane and block owners (non-zero,
 * below SLUICE_OWNER_MAX, distinct). */
#define SLUICE__OWNER_CLIENT(c) (UINT32_C(1) + (c))
#define SLUICE__OWNER_SUPERVISOR UINT32_C(0x1000)
#define SLUICE__OWNER_WORKER(w) (UINT32_C(0x2000) + (w))
#define SLUICE__OWNER_TOOL UINT32_C(0x3000) /* the spare lane: tests, tools */
#define SLUICE__MAX_CLIENTS SLUICE_FLOW_MAX_CLIENTS

/* ---- task entries and their state word ----------------------------------
 *
 *	bits  0..7   state (enum sluice__task_state)
 *	bits  8..31  owner: client slot (CLIENT, DONE), step index (QUEUED),
 *	             worker index (HELD); 0 when FREE
 *	bits 32..63  generation, +1 on every transition
 *
 *	FREE -> CLIENT(c) -> QUEUED(s) -> HELD(w) -> QUEUED(t) ... -> DONE(c) -> FREE
 *
 * The word changes only by compare-and-swap (acq_rel): whoever wins a
 * transition owns the entry's descriptor and message until its next
 * transition, which publishes them (release). A descriptor on a ring
 * carries the generation of the QUEUED (or DONE) state it was queued under
 * in task_id (generation << 32 | slot): a copy that is stale, duplicated or
 * forged fails its CAS and is dropped, never run twice.
 */
enum sluice__task_state {
	SLUICE__TS_FREE = 0,
	SLUICE__TS_CLIENT = 1,
	SLUICE__TS_QUEUED = 2,
	SLUICE__TS_HELD = 3,
	SLUICE__TS_DONE = 4,
};

#define SLUICE__TW(state, owner, gen)                                          \
	(((uint64_t)(uint32_t)(gen) << 32) | ((uint64_t)((owner) & 0xffffffu) << 8) | \
	 (uint64_t)(uint8_t)(state))
/* HELD by the supervisor: a transient state of its recovery. */
#define SLUICE__HELD_SUPERVISOR UINT32_C(0xffffff)
#define SLUICE__TW_STATE(w) ((unsigned)((w) & 0xffu))
#define SLUICE__TW_OWNER(w) ((uint32_t)(((w) >> 8) & 0xffffffu))
#define SLUICE__TW_GEN(w) ((uint32_t)((w) >> 32))

#define SLUICE__TASK_ID(gen, slot) (((uint64_t)(uint32_t)(gen) << 32) | (uint32_t)(slot))
#define SLUICE__TASK_ID_GEN(id) ((uint32_t)((id) >> 32))
#define SLUICE__TASK_ID_SLOT(id) ((uint32_t)(id))

/* Descriptor flags (sluice_desc_t.flags, runtime's meaning). */
#define SLUICE__DESC_PILL 0x1u /* not a task: wakes a worker to look at the flow state */
#define SLUICE__PILL_SLOT UINT32_MAX

struct sluice__task_entry {
	/* Written by the entry's owner of the moment (see the state word). */
	sluice_desc_t desc;
	/* Line 1: the state word, and the holder's journal. */
	_Atomic uint64_t state;
	/* The journal: written by the worker holding the entry (HELD, at
	 * generation j_gen) when it starts to conclude the task, before it
	 * changes a block's owner or the desc; read only by the supervisor
	 * (or the client after the supervisor died), only after that worker
	 * died and the reader won the entry from HELD(worker, j_gen) by CAS.
	 * It says what to undo: the result the task came to this step with,
	 * which the worker may have taken over to free, and the new result it
	 * may have handed to the client. A journal whose j_gen is not the
	 * generation the entry is held under is stale. */
	uint32_t j_gen;          /* 0: none (a HELD generation is never 0) */
	uint32_t j_worker;       /* the worker holding it */
	uint32_t j_result_block; /* the result the task came with, or NONE */
	uint32_t j_result_len;
	uint32_t j_new_block;    /* the result block this step made, or NONE */
	/* The HELD generation in which the holder handed the task to
	 * handle(): written just before the call. A task held by a dead
	 * worker whose j_ran is not its HELD generation never ran there: it
	 * is queued again without using up a run. */
	uint32_t j_ran;
	/* CLOCK_MONOTONIC when the task was queued at the step it is at
	 * (kept through a retry there): written with desc by whoever queues
	 * it, read by the worker that runs it (the latency histogram). */
	uint64_t queued_ns;
	/* 1 once the client asked to cancel the task (sluice_task_cancel);
	 * 0 again at the next alloc of the entry. Written by the client,
	 * read by whoever holds the entry: advisory (relaxed), ownership is
	 * the state word's. */
	_Atomic uint32_t cancel;
	uint32_t _pad0;
	uint64_t _pad[2];
	/* Lines 2-3: the handler's (or sluice's) message, NUL-terminated;
	 * written by the owner before DONE, read by the client after. */
	char message[SLUICE_TASK_MESSAGE_MAX];
};

/* ---- the flow region ------------------------------------------------------- */

struct sluice__flow_hdr {
	/* Lines 0-2: geometry, written once by create. */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;    /* sizeof(struct sluice__flow_hdr) */
	uint32_t nsteps;
	uint32_t nworkers;
	uint32_t nclients;
	uint32_t max_tasks;
	uint32_t tasks_per_client;
	uint32_t ring_lanes;     /* lanes of every ring: one per possible producer */
	uint64_t steps_off;      /* from the flow region's base */
	uint64_t workers_off;
	uint64_t clients_off;
	uint64_t stop_grace_ns;
	char name[64];
	uint64_t names_off;      /* struct sluice__step_names[nsteps], from the flow region's base */
	/* Line 3: control, written by the client and the supervisor. */
	_Atomic uint32_t state __attribute__((aligned(64))); /* enum sluice__flow_state; futex word */
	_Atomic uint32_t sup_pid;
	_Atomic uint32_t client_pid;
	_Atomic int32_t result;  /* start failure code, then stop's result; before state (release) */
	_Atomic uint64_t start_deadline_ns; /* CLOCK_MONOTONIC; client, before forking */
	_Atomic uint64_t stop_deadline_ns;  /* CLOCK_MONOTONIC; client, before DRAINING */
	_Atomic uint64_t lost_completions;  /* supervisor, workers: completions that could not be
					     * queued (a completion ring scribbled on) */
	_Atomic uint64_t leaked_blocks;     /* client: blocks the audit at stop found leaked */
	uint64_t _pad2[2];
	/* Lines 4-7: why start failed; written by the supervisor before
	 * state = START_FAILED (release), read by the client after (acquire). */
	char message[256];
};

struct sluice__step_rec {
	/* Lines 0-2: the validated definition, written once by create. */
	char name[SLUICE_STEP_NAME_MAX];
	uint32_t nprocs;
	uint32_t batch_size;
	uint32_t capacity;
	uint32_t max_attempts;
	uint64_t batch_timeout_ns;
	uint64_t task_timeout_ns;
	uint32_t first_worker;
	uint32_t has_condition;
	uint64_t ring_off;       /* from the rings region's base */
	uint64_t ring_size;
	uint32_t nslots;         /* worker slots: nprocs, + 1 spare with max_tasks_per_worker */
	uint32_t fail_deaths;
	uint64_t restart_delay_ns;
	uint64_t restart_max_delay_ns;
	uint64_t fail_window_ns;
	uint64_t hung_grace_ns;
	uint64_t max_tasks_per_worker;
	uint64_t heartbeat_timeout_ns;
	/* How the step's workers wait (enum sluice_ring_wait, never 0 here)
	 * and SPIN_SLEEP's spin. */
	uint32_t wait;
	uint32_t _pad0;
	uint64_t spin_ns;
	uint64_t _pad1[4];
	/* Line 3: health, written by the supervisor alone (relaxed). */
	_Atomic uint32_t failed;     /* 1 once the step failed */
	_Atomic uint32_t deaths;     /* workers that died, since start */
	_Atomic uint32_t restarts;   /* processes forked to replace dead ones */
	_Atomic uint32_t recycled;   /* workers replaced after max_tasks_per_worker */
	_Atomic uint32_t hung_kills; /* workers killed for a task past timeout + grace */
	uint32_t _pad2;
	_Atomic uint64_t requeued;   /* taken by a dead worker, never run: queued again */
	_Atomic uint64_t retried;    /* held by a dead worker: run again */
	_Atomic uint64_t worker_died; /* completed with WORKER_DIED (or TIMEOUT, hung) */
	uint64_t _pad3[2];
};

/* A position no worker serves (the spare slot, a retired worker). */
#define SLUICE__NO_POSITION UINT32_MAX

struct sluice__worker_slot {
	/* Line 0: identity (step, index, scratch: written once by create),
	 * life. */
	uint32_t step;
	uint32_t index;              /* the position it serves at start (spare: nprocs) */
	_Atomic uint32_t pid;        /* supervisor, after fork: the slot's latest process */
	_Atomic uint32_t state;      /* enum sluice__worker_state */
	_Atomic int32_t start_rc;    /* worker: on_start's code, before FAILED */
	_Atomic int32_t exit_status; /* supervisor: the wait status, before DEAD/after reap */
	_Atomic uint32_t reaped;     /* supervisor: 1 once reaped */
	/* supervisor: the pid while the process may run; 0 before it is reaped,
	 * so a pidfd opened on a pid read here, with the pid read here again
	 * afterwards, names this slot's process (tests signal workers so). */
	_Atomic uint32_t live_pid;
	_Atomic uint32_t position;   /* supervisor, before fork: index it serves, or NO_POSITION */
	_Atomic uint32_t retire_go;  /* supervisor: 1 = the replacement is ready, leave */
	_Atomic uint32_t incarnation; /* supervisor: processes forked into the slot */
	uint32_t scratch_n;          /* descriptors in each of in[] and out[]: batch_size */
	uint64_t scratch_off;        /* from the flow region's base: in[scratch_n], out[scratch_n] */
	uint64_t _pad0;
	/* Line 1: free (its counters moved to the health region in layout 3). */
	uint64_t _pad1[8];
	/* Line 2: recovery state, written by the worker (relaxed), read by the
	 * supervisor once the worker is dead (busy_*: also while it runs, a
	 * snapshot for the hung check).
	 *   intent  what it took off its step's ring into in[] (ring.h)
	 *   nout    out[0 .. nout) are descriptors of entries it moved on (or
	 *           is about to: each is recorded before its CAS) that it has
	 *           not yet published on their rings */
	sluice_ring_intent_t intent;
	_Atomic uint32_t nout;
	uint32_t _pad2;
	_Atomic uint64_t busy_deadline; /* earliest deadline of the tasks in handle(); 0 outside */
	uint64_t _pad3[4];
	/* Lines 3-4: on_start's message, written by the worker before FAILED. */
	char message[128];
};

/* Per step, the names an exec'd worker looks up in its program's registry;
 * written once by create, NUL-terminated, "" when none. */
struct sluice__step_names {
	char handler[SLUICE_HANDLER_NAME_MAX];   /* set iff the step is started by exec */
	char condition[SLUICE_HANDLER_NAME_MAX]; /* its condition's name, for exec'd workers before it */
};

struct sluice__client_slot {
	uint64_t comp_ring_off;  /* from the rings region's base */
	uint64_t comp_ring_size;
	uint32_t first_task;     /* the client's entries: [first_task, first_task + ntasks) */
	uint32_t ntasks;
	_Atomic uint32_t pid;
	uint32_t _pad0;
	_Atomic uint64_t dropped; /* client: completions it refused (stale or forged) */
	uint8_t _pad[24];
};

_Static_assert(sizeof(struct sluice__task_entry) == 256, "task entry layout");
_Static_assert(offsetof(struct sluice__task_entry, state) == 64, "task entry layout");
_Static_assert(offsetof(struct sluice__task_entry, j_gen) == 72, "task entry layout");
_Static_assert(offsetof(struct sluice__task_entry, queued_ns) == 96, "task entry layout");
_Static_assert(offsetof(struct sluice__task_entry, cancel) == 104, "task entry layout");
_Static_assert(offsetof(struct sluice__task_entry, message) == 128, "task entry layout");
_Static_assert(offsetof(struct sluice__flow_hdr, name) == 72, "flow header layout");
_Static_assert(offsetof(struct sluice__flow_hdr, names_off) == 136, "flow header layout");
_Static_assert(offsetof(struct sluice__flow_hdr, state) == 192, "flow header layout");
_Static_assert(offsetof(struct sluice__flow_hdr, message) == 256, "flow header layout");
_Static_assert(sizeof(struct sluice__flow_hdr) == 512, "flow header layout");
_Static_assert(offsetof(struct sluice__step_rec, heartbeat_timeout_ns) == 136, "step record layout");
_Static_assert(offsetof(struct sluice__step_rec, failed) == 192, "step record layout");
_Static_assert(sizeof(struct sluice__step_rec) == 256, "step record layout");
_Static_assert(offsetof(struct sluice__worker_slot, scratch_off) == 48, "worker slot layout");
_Static_assert(offsetof(struct sluice__worker_slot, _pad1) == 64, "worker slot layout");
_Static_assert(offsetof(struct sluice__worker_slot, intent) == 128, "worker slot layout");
_Static_assert(offsetof(struct sluice__worker_slot, message) == 192, "worker slot layout");
_Static_assert(sizeof(struct sluice__worker_slot) == 320, "worker slot layout");
_Static_assert(sizeof(struct sluice__client_slot) == 64, "client slot layout");
_Static_assert(sizeof(struct sluice__step_names) == 128, "step names layout");

#endif
