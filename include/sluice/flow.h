/* Flows: pipelines of steps run by worker processes, fed with task
 * descriptors through rings in one shared-memory arena, watched by one
 * supervisor process. See docs/RUNTIME.md.
 *
 * A flow is defined by an ordered list of steps. Each step is a handler run
 * by `nprocs` worker processes; a worker takes up to `batch_size` tasks at a
 * time off its step's ring and hands them to the handler as one batch. A
 * task carries a payload block the client wrote in place; each step may
 * allocate a result block and write into it in place; the last step that
 * applies hands the task back to the client's completion ring. Bytes are
 * never copied by sluice.
 *
 * Processes:
 *   client      the process that calls sluice_flow_create and _start; it
 *               submits tasks and collects results. (Other processes
 *               attaching as clients are a later slice.)
 *   supervisor  forked by sluice_flow_start; single-threaded; forks the
 *               workers, watches them with pidfds in one epoll loop, drives
 *               start and stop; when a worker dies it recovers the worker's
 *               tasks (re-queued, retried up to max_attempts, or completed
 *               with SLUICE_TASK_WORKER_DIED) and restarts it with
 *               exponential back-off; a step whose workers keep dying is
 *               failed (SLUICE_TASK_STEP_FAILED). It also kills a worker
 *               whose task is past its step's timeout plus hung_grace_ns,
 *               and replaces workers after max_tasks_per_worker.
 *   workers     forked by the supervisor; each runs its step's on_start,
 *               then the batch loop, then on_stop. They die with the
 *               supervisor (PR_SET_PDEATHSIG); the client's calls then
 *               return SLUICE_ESUPERVISOR.
 * The supervisor and the workers are forks of the client: the handler and
 * condition function pointers and their `arg` pointers are valid there. They
 * inherit the client's open descriptors and leave with _exit (no atexit
 * handlers run in them). Do not set SIGCHLD to SIG_IGN in the client, and do
 * not reap children you did not fork (waitpid(-1)): the supervisor is the
 * client's child.
 *
 * Threads: a flow handle's client calls (alloc, submit, wait, reap,
 * release, eventfd, start, stop, destroy) are made by one thread at a
 * time; the handle does no locking of its own. The observing calls (stats,
 * pids) may run concurrently with them. A process forked from the client
 * must not use the flow handle (attaching other clients is a later slice).
 *
 * Errors: 0 or a count on success, a negative SLUICE_E* code on failure;
 * errno is never set. How a task ended is its status (sluice_task_status_t,
 * include/sluice/desc.h), not an error code.
 */
#ifndef SLUICE_FLOW_H
#define SLUICE_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sluice/blocks.h>
#include <sluice/desc.h>
#include <sluice/export.h>
#include <sluice/ring.h> /* enum sluice_ring_wait: sluice_step_t.wait, client_wait */

#define SLUICE_FLOW_MAX_STEPS 16
#define SLUICE_FLOW_MAX_WORKERS 1024  /* over all steps */
#define SLUICE_STEP_MAX_NPROCS 256
#define SLUICE_STEP_MAX_BATCH 4096
#define SLUICE_STEP_NAME_MAX 32       /* bytes, with the terminating NUL */
#define SLUICE_STEP_MAX_ATTEMPTS 255
#define SLUICE_FLOW_MAX_TASKS (1u << 20)
#define SLUICE_TASK_MESSAGE_MAX 128   /* bytes, with the terminating NUL */
/* Timeouts: wait without a deadline. */
#define SLUICE_FLOW_FOREVER UINT64_MAX

typedef struct sluice_flow sluice_flow_t;

/* ---- the handler side --------------------------------------------------- */

/* One task as a handler sees it. The array of items handed to handle() is
 * owned by sluice; an item is valid until handle() returns. */
typedef struct sluice_item {
	/* The payload the client wrote, in the arena. The handler may read it
	 * and write it in place (later steps see the change). */
	void *payload;
	uint64_t payload_len;
	/* The result so far: what an earlier step left (NULL, 0 and 0 at the
	 * first step that makes one). The handler may write into it in place
	 * and set result_len (up to result_cap), or replace it with a new block
	 * from sluice_item_result_alloc. A result_len above result_cap fails
	 * the task with SLUICE_TASK_HANDLER_ERROR. */
	void *result;
	uint64_t result_len;
	uint64_t result_cap;
	/* Read-only. */
	uint64_t user;     /* the submitter's value (sluice_task_t.user) */
	uint32_t step;     /* index of the step running it */
	uint32_t attempt;  /* 0 for the first run */
	/* Private to sluice. */
	void *entry_;
	uint64_t deadline_;
	uint64_t old_len_;
	uint32_t status_;
	uint32_t new_result_; /* sluice_block_t this step allocated, or NONE */
	uint32_t old_result_; /* sluice_block_t the task came with, or NONE */
	uint32_t slot_;
	uint32_t gen_;
	uint32_t _pad_;
} sluice_item_t;

/* What a worker is. Passed to on_start and on_stop; valid during the call. */
typedef struct sluice_worker_info {
	const char *flow_name;
	const char *step_name;
	uint32_t step;   /* step index */
	uint32_t index;  /* 0 .. nprocs - 1 within the step */
	uint32_t worker; /* index over all the flow's workers */
	uint32_t _reserved;
} sluice_worker_info_t;

typedef struct sluice_handler {
	/* Runs once in each worker process before it takes any work (load
	 * models here). Returns 0, or a negative code to fail the flow's start;
	 * it may write a NUL-terminated reason into msg (msglen bytes), which
	 * sluice_flow_error() then reports. Optional (NULL: nothing to do). */
	int (*on_start)(void *arg, const sluice_worker_info_t *w, char *msg, size_t msglen);
	/* Handles a batch of 1 .. batch_size tasks. Per item it may fail the
	 * task (sluice_item_fail) and set a result; items it leaves alone
	 * succeed. A negative return fails every item not already failed.
	 * Required. Runs in the worker process; blocks as long as it likes,
	 * but a task that is still in hand when its step's task_timeout_ns has
	 * passed ends with SLUICE_TASK_TIMEOUT. */
	int (*handle)(void *arg, sluice_item_t *items, unsigned n);
	/* Runs once in each worker that stops cleanly (flow stop), after its
	 * last batch. Optional. */
	void (*on_stop)(void *arg, const sluice_worker_info_t *w);
	void *arg;
} sluice_handler_t;

/* Allocates a new result block of at least `size` bytes for `it` and makes
 * it the item's result (it->result, result_cap; result_len is set to 0).
 * The block the task came with is freed once this step is done with the
 * task (so the handler may still read it); a block allocated earlier in the
 * same call is freed at once. Returns the block's address in the arena, or
 * NULL when size exceeds the largest size class, the class is exhausted,
 * or `it` is not an item of the running batch. Call only from handle(), in
 * the worker; no system call, lock-free. */
SLUICE_EXTERN void *sluice_item_result_alloc(sluice_item_t *it, uint64_t size);

/* Fails task `it` with SLUICE_TASK_HANDLER_ERROR and a message (printf
 * format; truncated to SLUICE_TASK_MESSAGE_MAX - 1 bytes) that the client
 * reads with the result. The task skips the remaining steps. Call only from
 * handle(), in the worker. */
SLUICE_EXTERN void sluice_item_fail(sluice_item_t *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- defining a flow ------------------------------------------------------ */

typedef struct sluice_step {
	size_t size_of;       /* sizeof(sluice_step_t) */
	const char *name;     /* 1 .. SLUICE_STEP_NAME_MAX - 1 bytes, unique */
	sluice_handler_t handler;
	/* Optional: a task for which it returns false skips this step. Called
	 * where the task is routed: in the client at submit for the first
	 * steps, in the worker of the step before otherwise, with the task as
	 * it stands (payload, result so far). Must not block. */
	bool (*condition)(void *arg, const sluice_item_t *task);
	void *condition_arg;
	uint32_t nprocs;      /* worker processes, 1 .. SLUICE_STEP_MAX_NPROCS */
	uint32_t batch_size;  /* most tasks per handle() call, 1 .. SLUICE_STEP_MAX_BATCH */
	/* How long a worker waits after the first task of a batch for more,
	 * until batch_size are in hand; 0: take what is queued and go. */
	uint64_t batch_timeout_ns;
	/* Ring slots per producer: how many tasks one client or worker may have
	 * queued at this step before it blocks. A power of two, 2 .. 2^24;
	 * 0: 256. */
	uint32_t capacity;
	/* Runs a task may get at this step: a task whose worker died while it
	 * held the task (or was killed as hung) is run again, with
	 * sluice_item_t.attempt one higher, until it has had max_attempts
	 * runs; then it completes with SLUICE_TASK_WORKER_DIED (or
	 * SLUICE_TASK_TIMEOUT when it was the hung one). A retry sees the
	 * payload and the result as the dead run left them: a handler that
	 * writes in place should be idempotent, or keep max_attempts at 1.
	 * 1 .. SLUICE_STEP_MAX_ATTEMPTS; 0: 1. */
	uint32_t max_attempts;
	/* The longest a task may spend at this step, from being queued there
	 * to its handler returning; 0: no limit. A task found past it before
	 * its batch runs, or still in hand when it passes, ends with
	 * SLUICE_TASK_TIMEOUT. */
	uint64_t task_timeout_ns;
	/* Restarts. A worker that dies while the flow runs is restarted after
	 * restart_delay_ns (0: 100 ms), doubled for every other death of the
	 * step's workers within fail_window_ns, up to restart_max_delay_ns
	 * (0: 5 s; at least restart_delay_ns). */
	uint64_t restart_delay_ns;
	uint64_t restart_max_delay_ns;
	/* The step fails when its workers die fail_deaths times within
	 * fail_window_ns: its live workers are killed, none is restarted, and
	 * its queued and new tasks complete with SLUICE_TASK_STEP_FAILED.
	 * fail_deaths 1 .. SLUICE_STEP_MAX_FAIL_DEATHS, or
	 * SLUICE_STEP_NEVER_FAIL; 0: 5. fail_window_ns 0: 10 s. */
	uint32_t fail_deaths;
	/* How the step's workers wait for tasks while its ring is empty: an
	 * enum sluice_ring_wait (include/sluice/ring.h). 0 or
	 * SLUICE_RING_SPIN_SLEEP: spin spin_ns, giving the CPU up now and then
	 * after the first 5 us, then sleep on the ring's futex (the default);
	 * SLUICE_RING_SLEEP: sleep at once; SLUICE_RING_BUSY_POLL: never
	 * sleep, sched_yield every 64 empty polls (each worker keeps a CPU
	 * busy even while the flow idles: for the lowest latency, with a CPU
	 * to spare per worker). Producers waiting for room on a full ring wait
	 * in the default mode. */
	uint32_t wait;
	uint64_t fail_window_ns;
	/* A worker still in handle() hung_grace_ns after the deadline of a
	 * task it holds (task_timeout_ns) is killed and handled as dead: the
	 * overdue task ends with SLUICE_TASK_TIMEOUT unless it has runs left.
	 * Only for steps with a task_timeout_ns. 0: 2 s. */
	uint64_t hung_grace_ns;
	/* A worker that has run this many tasks asks for a replacement and
	 * exits cleanly (on_stop) once the replacement is ready, so the step
	 * never runs short of workers; it finishes the batches it takes
	 * meanwhile. 0: no limit. */
	uint64_t max_tasks_per_worker;
	/* SLUICE_RING_SPIN_SLEEP's spin, in ns: 0: SLUICE_RING_SPIN_NS_DEFAULT
	 * (50 us); at most SLUICE_FLOW_MAX_SPIN_NS. Must be 0 with the modes
	 * that do not spin (SLEEP, BUSY_POLL). */
	uint64_t spin_ns;
} sluice_step_t;

#define SLUICE_STEP_NEVER_FAIL UINT32_MAX
#define SLUICE_STEP_MAX_FAIL_DEATHS 1024u
/* The longest spin a step or the client may ask for (1 s): a longer one is
 * a unit mistake. */
#define SLUICE_FLOW_MAX_SPIN_NS UINT64_C(1000000000)

enum sluice_flow_flags {
	SLUICE_FLOW_HUGEPAGES = 1u << 0, /* back the arena with huge pages if the kernel has them */
};

typedef struct sluice_flow_opts {
	size_t size_of;              /* sizeof(sluice_flow_opts_t) */
	const char *name;            /* for messages and the memfd; may be NULL */
	uint32_t nsteps;             /* 1 .. SLUICE_FLOW_MAX_STEPS */
	uint32_t flags;              /* enum sluice_flow_flags */
	const sluice_step_t *steps;  /* nsteps entries, in order */
	/* Tasks in the client's hands or in flight at once (the task table);
	 * 1 .. SLUICE_FLOW_MAX_TASKS; 0: 1024. */
	uint32_t max_tasks;
	uint32_t _reserved;
	/* Payload and result blocks: a size-class configuration, or NULL for
	 * sluice_blocks_config_default(block_budget) (0: 64 MiB). */
	const sluice_blocks_config_t *blocks;
	uint64_t block_budget;
	/* After stop's drain, how long workers get to finish their batch and
	 * run on_stop before they are killed. 0: 1 s. */
	uint64_t stop_grace_ns;
	/* How sluice_task_wait waits for a completion, as a step's `wait` and
	 * `spin_ns` (same values, same defaults): spin, then sleep in ppoll(2)
	 * (0 or SLUICE_RING_SPIN_SLEEP); sleep at once (SLUICE_RING_SLEEP);
	 * or poll the completion ring without sleeping, looking at the
	 * supervisor's pidfd every 10 ms (SLUICE_RING_BUSY_POLL). */
	uint32_t client_wait;
	uint32_t _reserved2;
	uint64_t client_spin_ns;
} sluice_flow_opts_t;

/* Validates `opts` and lays out the flow's arena (flow table, task table,
 * blocks, rings) in a new sealed memfd. No process is started. On a bad
 * option returns SLUICE_EINVAL and writes a message naming the field
 * ("steps[1].nprocs: must be 1..256, got 0") into err (errlen bytes, may be
 * NULL/0). Other failures: -ENOMEM, or the arena's and the system's codes,
 * also described in err. Any thread. Returns 0 and a handle the caller owns
 * (sluice_flow_destroy). */
SLUICE_EXTERN int sluice_flow_create(const sluice_flow_opts_t *opts, sluice_flow_t **out,
				     char *err, size_t errlen);

/* Forks the supervisor, which forks every worker and runs each on_start.
 * Returns 0 once every worker is ready. Fails with SLUICE_EWORKERSTART when
 * an on_start failed or a worker died during it, SLUICE_ETIMEDOUT when they
 * were not all ready within timeout_ns, -EAGAIN/-ENOMEM when a fork failed,
 * SLUICE_ESUPERVISOR when the supervisor died; sluice_flow_error() then
 * names the step and worker and gives the handler's message. On failure no
 * process of the flow is left (all are killed and reaped) and the flow
 * cannot be started again: destroy it. SLUICE_EINVAL if it was already
 * started. The client's thread; blocks on fork and a futex in the arena
 * until the workers are ready or the timeout passes. */
SLUICE_EXTERN int sluice_flow_start(sluice_flow_t *f, uint64_t timeout_ns);

/* Stops the flow: submit refuses new tasks (SLUICE_ESTOPPED) at once; what
 * is in flight drains for up to timeout_ns; then each worker finishes its
 * batch and runs on_stop (within the flow's stop_grace_ns, else it is
 * killed); every task that could not finish is completed with
 * SLUICE_TASK_FLOW_STOPPED; the supervisor reaps every worker and exits,
 * and is reaped here. Completions stay readable (wait, reap) afterwards;
 * tasks released while in flight are freed. Blocks that a process killed
 * inside the block allocator left neither free nor owned are found and
 * freed (sluice_blocks_audit, once no other process of the flow runs).
 * Returns 0 when everything in flight finished, SLUICE_ETIMEDOUT when the
 * drain ran out of time (the flow is stopped all the same), 0 for a flow
 * already stopped or never started, SLUICE_ESUPERVISOR when the supervisor
 * had died (its workers are waited for and the tasks completed here with
 * SLUICE_TASK_FLOW_STOPPED; every later stop returns it too).
 * The client's thread; blocks until the supervisor has exited. */
SLUICE_EXTERN int sluice_flow_stop(sluice_flow_t *f, uint64_t timeout_ns);

/* Stops the flow if it runs (sluice_flow_stop with no drain time), waits
 * for the supervisor, unmaps the arena and frees the handle. Every task
 * pointer of the flow becomes invalid. The client's thread, last call on
 * `f`. */
SLUICE_EXTERN void sluice_flow_destroy(sluice_flow_t *f);

/* The message of the last failed create/start/stop on this handle ("" if
 * none). Owned by the handle; valid until its next call. */
SLUICE_EXTERN const char *sluice_flow_error(const sluice_flow_t *f);

/* The flow's completion eventfd (non-blocking, close-on-exec, owned by the
 * handle), and from now on sluice_flow_reap keeps it armed: it is readable
 * whenever reap may return something (now and then spuriously). Watch it
 * with epoll (EPOLLIN); do not read it yourself: reap resets it when it has
 * drained everything. The client's thread. */
SLUICE_EXTERN int sluice_flow_eventfd(sluice_flow_t *f);

/* ---- the client side -------------------------------------------------------- */

/* A task as its client sees it. Owned by the flow handle from
 * sluice_task_alloc until sluice_task_release. */
typedef struct sluice_task {
	/* Set by sluice_task_alloc. Before submit the caller writes the payload
	 * in place and sets payload_len (<= payload_cap) and user. */
	void *payload;         /* in the arena; NULL when allocated with size 0 */
	uint64_t payload_cap;
	uint64_t payload_len;
	uint64_t user;         /* opaque to sluice; handlers see it */
	/* Read-only, valid once wait or reap returned the task. */
	uint32_t status;       /* sluice_task_status_t */
	/* Runs before the last one at the step that ran it last: 0 unless
	 * a worker died holding it there and it was retried. */
	uint32_t attempt;
	const void *result;    /* in the arena; NULL when none */
	uint64_t result_len;
	const char *message;   /* NUL-terminated; "" when none */
	/* Private to sluice. */
	struct sluice_task *prev_, *next_;
	uint64_t bound_ns_;
	uint64_t payload_cap_;
	uint32_t slot_;
	uint32_t lstate_;
	uint32_t payload_block_;
	uint32_t result_block_;
	uint32_t arrived_;
	uint32_t _pad_;
} sluice_task_t;

/* Takes a free task entry and, when payload_size > 0, a payload block of at
 * least that many bytes (owned by this client). Returns 0 and the task in
 * *out; SLUICE_EAGAIN when every task entry is in use (release some);
 * SLUICE_E2BIG / SLUICE_ENOSPC from the block allocator. Client's thread;
 * no system call. */
SLUICE_EXTERN int sluice_task_alloc(sluice_flow_t *f, uint64_t payload_size, sluice_task_t **out);

/* Routes the task to the first step whose condition accepts it and queues
 * its descriptor there, waiting up to timeout_ns while that step's ring is
 * full. A task no step accepts completes at once with SLUICE_TASK_OK and no
 * result. Returns 0; SLUICE_ETIMEDOUT (the task stays allocated, submit it
 * again or release it); SLUICE_ESTOPPED when the flow is not running;
 * SLUICE_ESUPERVISOR once this client knows that the flow's supervisor died
 * (a submit checks at most every 10 ms, and while it waits for room);
 * SLUICE_EINVAL for a task not freshly allocated or payload_len >
 * payload_cap. Client's thread. */
SLUICE_EXTERN int sluice_task_submit(sluice_flow_t *f, sluice_task_t *t, uint64_t timeout_ns);

/* Submits tasks[0..n) in order, with one ring publication per run of tasks
 * bound for the same step. Returns how many were submitted: n, or fewer
 * when the timeout ran out (the rest stay allocated); a negative code when
 * none was (codes as for sluice_task_submit; an invalid task fails the
 * whole call before anything is submitted). One exception: a task bound
 * for a step that has no live worker left may be completed by the
 * supervisor (SLUICE_TASK_STEP_FAILED) while its submit times out; it is
 * then in flight although not counted: wait for it or release it.
 * Client's thread. */
SLUICE_EXTERN int sluice_task_submit_many(sluice_flow_t *f, sluice_task_t **tasks, unsigned n,
					  uint64_t timeout_ns);

/* Waits up to timeout_ns for task `t` to finish, collecting (for reap) the
 * completions of other tasks that arrive meanwhile. Returns 0 when it
 * finished: status, result, result_len and message are set. A task whose
 * whole-flow deadline (the sum of every step's task_timeout_ns, when all
 * have one, plus a margin) has passed finishes here with
 * SLUICE_TASK_TIMEOUT; its late result is dropped and freed when it
 * arrives. Returns SLUICE_ETIMEDOUT when timeout_ns passed first,
 * SLUICE_ESUPERVISOR when the flow's supervisor died before the task
 * finished (the task stays in flight: sluice_flow_stop completes it with
 * SLUICE_TASK_FLOW_STOPPED, or release it), SLUICE_EINVAL for a task not
 * submitted. Client's thread; waits as the flow's client_wait says: by
 * default it spins (client_spin_ns), then sleeps in ppoll(2) on the
 * completion eventfd and the supervisor's pidfd, so that neither a
 * completion nor the supervisor's death can be missed, timeout or not; in
 * SLUICE_RING_BUSY_POLL it never sleeps, and looks at the supervisor's
 * pidfd every 10 ms. */
SLUICE_EXTERN int sluice_task_wait(sluice_flow_t *f, sluice_task_t *t, uint64_t timeout_ns);

/* Returns up to n finished tasks in out (never blocks, but for the case
 * at the end): those collected by earlier waits, then whatever is on the
 * completion ring, then tasks past their whole-flow deadline (status
 * SLUICE_TASK_TIMEOUT). When it returns fewer than n it has drained
 * everything and re-armed the eventfd. Returns the count, or
 * SLUICE_ESUPERVISOR when it has nothing to return, tasks are in flight
 * and the flow's supervisor is dead (an event loop can watch
 * sluice_flow_supervisor_pidfd to learn of that). Client's thread; no
 * system call unless it re-arms. Where this process may not call
 * membarrier(2) (a seccomp filter), a worker may miss the arming
 * (SLUICE_RING_ARMED_POLL, include/sluice/ring.h): a reap that found
 * nothing then waits up to SLUICE_RING_ARMED_POLL_MS (1 ms) on the
 * eventfd, looks again, and leaves the eventfd readable, so that an event
 * loop calls again within a millisecond instead of sleeping through a
 * completion. */
SLUICE_EXTERN int sluice_flow_reap(sluice_flow_t *f, sluice_task_t **out, unsigned n);

/* Gives the task back: frees its entry, payload and result blocks. The
 * task's pointers are invalid afterwards. A task still in flight is
 * released when its completion arrives (its result dropped). Returns 0, or
 * SLUICE_EINVAL for a task already released. Client's thread. */
SLUICE_EXTERN int sluice_task_release(sluice_flow_t *f, sluice_task_t *t);

/* ---- observing ------------------------------------------------------------------ */

typedef struct sluice_step_stats {
	uint32_t workers;          /* nprocs */
	uint32_t workers_live;     /* started and not exited (a retiring one too) */
	uint32_t worker_deaths;    /* died other than by a clean exit, since start */
	uint32_t max_batch;        /* largest batch handed to handle() */
	uint64_t tasks;            /* tasks handed to handle() */
	uint64_t batches;          /* handle() calls */
	uint64_t handler_errors;   /* tasks failed by the handler */
	uint64_t timeouts;         /* tasks ended with SLUICE_TASK_TIMEOUT here */
	uint64_t bad_descriptors;  /* descriptors refused (bad slot, stale, bad fields) */
	/* Supervisor's counters (issue 5). */
	uint32_t restarts;         /* workers forked to replace dead ones */
	uint32_t recycled;         /* workers replaced after max_tasks_per_worker */
	uint32_t hung_kills;       /* workers killed for a task past timeout + grace */
	uint32_t failed;           /* 1 once the step failed */
	uint64_t requeued;         /* tasks a dead worker had taken but not run, queued again */
	uint64_t retried;          /* tasks a dead worker held, run again */
	uint64_t worker_died;      /* tasks completed with SLUICE_TASK_WORKER_DIED */
} sluice_step_stats_t;

/* Sums the counters of step `step`'s workers (each written by its worker
 * alone; a snapshot). Any thread. Returns 0 or SLUICE_EINVAL. */
SLUICE_EXTERN int sluice_flow_step_stats(const sluice_flow_t *f, uint32_t step,
					 sluice_step_stats_t *out);

/* The pid of worker `index` of step `step` (0 before it was forked), or
 * SLUICE_EINVAL. A snapshot from the arena. Any thread. */
SLUICE_EXTERN int64_t sluice_flow_worker_pid(const sluice_flow_t *f, uint32_t step,
					     uint32_t index);

/* The supervisor's pid (0 when not started). Any thread. */
SLUICE_EXTERN int64_t sluice_flow_supervisor_pid(const sluice_flow_t *f);

/* A pidfd of the supervisor (owned by the handle; -1 before start or
 * after destroy): readable once the supervisor has exited. An event loop
 * that waits on sluice_flow_eventfd can watch it too, to learn that the
 * flow is gone (sluice_flow_reap then returns SLUICE_ESUPERVISOR). The
 * client's thread. */
SLUICE_EXTERN int sluice_flow_supervisor_pidfd(const sluice_flow_t *f);

#endif
