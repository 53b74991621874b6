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
 *               submits tasks and collects results. Other processes
 *               attach by name as clients or read-only observers
 *               (sluice_flow_attach; docs/ATTACH.md).
 *   supervisor  forked by sluice_flow_start; single-threaded; forks the
 *               workers, watches them with pidfds in one epoll loop, drives
 *               start and stop; when a worker dies it recovers the worker's
 *               tasks (re-queued, retried up to max_attempts, or completed
 *               with SLUICE_TASK_WORKER_DIED) and restarts it with
 *               exponential back-off; a step whose workers keep dying is
 *               failed (SLUICE_TASK_STEP_FAILED). It also kills a worker
 *               whose task is past its step's timeout plus hung_grace_ns,
 *               or whose handle() call goes heartbeat_timeout_ns without a
 *               beat, and replaces workers after max_tasks_per_worker.
 *               Every process writes its health (counters, histograms,
 *               heartbeat, pids, exit causes) into the arena, where
 *               sluice_flow_snapshot_take reads it without locks.
 *   workers     forked by the supervisor; each runs its step's on_start,
 *               then the batch loop, then on_stop. They die with the
 *               supervisor (PR_SET_PDEATHSIG); the client's calls then
 *               return SLUICE_ESUPERVISOR.
 * The supervisor and the workers are forks of the client: the handler and
 * condition function pointers and their `arg` pointers are valid there
 * (except in the workers of a step with exec_path: those exec a worker
 * program and find their handler in its registry by name). They
 * inherit the client's open descriptors and leave with _exit (no atexit
 * handlers run in them). Do not set SIGCHLD to SIG_IGN in the client, and do
 * not reap children you did not fork (waitpid(-1)): the supervisor is the
 * client's child.
 *
 * Threads: a flow handle's client calls (alloc, submit, wait, reap,
 * release, eventfd, start, stop, destroy) are made by one thread at a
 * time; the handle does no locking of its own. The observing calls (stats,
 * pids, snapshots) may run concurrently with them. A process forked from
 * the client must not use the flow handle: it attaches by name
 * (sluice_flow_attach) and gets a handle of its own.
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
#define SLUICE_FLOW_MAX_CLIENTS 64u     /* client slots: the creator and attached processes */
#define SLUICE_TASK_MESSAGE_MAX 128   /* bytes, with the terminating NUL */
/* Task priorities (sluice_task_t.priority). A high task is taken before
 * the normal ones queued at every step; but a worker that took high tasks
 * SLUICE_FLOW_PRIORITY_BURST times in a row while normal ones wait takes
 * the normal ones first once, so normal tasks always get at least one
 * batch in every SLUICE_FLOW_PRIORITY_BURST + 1 of each worker. */
#define SLUICE_PRIORITY_NORMAL 0u
#define SLUICE_PRIORITY_HIGH 1u
#define SLUICE_FLOW_PRIORITY_BURST 8u
#define SLUICE_HANDLER_NAME_MAX 64    /* handler_name, condition_name: bytes, with the NUL */
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
	uint32_t priority; /* the submitter's (sluice_task_t.priority) */
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

/* True when the client has asked to cancel the task of `it`
 * (sluice_task_cancel). A long handler may look now and then and return
 * early; whatever it does, a task whose cancel is seen when the step
 * concludes it ends with SLUICE_TASK_CANCELLED (unless the handler failed
 * it). Call only from handle(), in the worker; one relaxed load. */
SLUICE_EXTERN bool sluice_item_cancelled(const sluice_item_t *it);

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
	/* A worker beats (sluice_worker_health_t.heartbeat_ns) when each
	 * handle() call begins and ends. One whose call has been in hand
	 * heartbeat_timeout_ns without a beat is killed and handled as dead
	 * (its tasks retried while they have runs left), task timeout or
	 * not. Staleness is judged only while a call is in hand: an idle
	 * worker asleep on its ring does not beat and uses no CPU. 0: off. */
	uint64_t heartbeat_timeout_ns;
	/* How the step's workers start (docs/RUNTIME.md, "Exec'd workers").
	 * NULL: each is a fork of the supervisor (the default). Else the path
	 * of a worker program that links sluice and calls
	 * sluice_worker_exec_main (include/sluice/worker.h): each worker is
	 * forked and then execs it, a clean process for handlers that cannot
	 * live in a forked copy (GPU contexts, threads started before fork).
	 * It keeps the client's environment and the descriptors not marked
	 * close-on-exec, and gets the arena; nothing else of the client. Its
	 * handler (on_start, handle, on_stop, arg) is the program's registry
	 * entry named handler_name: this step's `handler` is not used (handle
	 * may be NULL). A relative path is resolved from the client's working
	 * directory. Whether the program exists is found at start: a worker
	 * that cannot exec, or finds no handler of that name, fails the start
	 * (SLUICE_EWORKERSTART) or, later, dies as a restart that failed. */
	const char *exec_path;
	/* With exec_path: the handler's name in the program's registry,
	 * 1 .. SLUICE_HANDLER_NAME_MAX - 1 bytes. Required with exec_path,
	 * refused without. */
	const char *handler_name;
	/* The name of this step's condition in an exec'd worker program's
	 * registry. The worker of a step runs the conditions of the steps
	 * after it when it routes a task onward; an exec'd one has only its
	 * program's functions: a step that has a condition and comes after a
	 * step with exec_path must name it here (the client and forked
	 * workers go on calling `condition`). Only with a condition; 1 ..
	 * SLUICE_HANDLER_NAME_MAX - 1 bytes. */
	const char *condition_name;
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
	/* No control socket: nobody can attach (not even sluice-inspect).
	 * Otherwise a flow with a name listens on
	 * $XDG_RUNTIME_DIR/sluice/NAME.sock (docs/ATTACH.md) from start to
	 * stop, and its name must be unique among the user's running flows. */
	SLUICE_FLOW_UNLISTED = 1u << 1,
};

typedef struct sluice_flow_opts {
	size_t size_of;              /* sizeof(sluice_flow_opts_t) */
	const char *name;            /* for messages and the memfd; may be NULL */
	uint32_t nsteps;             /* 1 .. SLUICE_FLOW_MAX_STEPS */
	uint32_t flags;              /* enum sluice_flow_flags */
	const sluice_step_t *steps;  /* nsteps entries, in order */
	/* Tasks in the clients' hands or in flight at once (the task table),
	 * shared evenly among the client slots; 1 .. SLUICE_FLOW_MAX_TASKS,
	 * at least max_clients; 0: 1024. */
	uint32_t max_tasks;
	/* Client slots: the creator (slot 0) and up to max_clients - 1
	 * processes attached at once (sluice_flow_attach). Each slot has its
	 * own completion ring and eventfd, and max_tasks / max_clients task
	 * entries. 1 .. SLUICE_FLOW_MAX_CLIENTS; 0: 1. */
	uint32_t max_clients;
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
	/* Serve the flow's metrics over HTTP from the supervisor, on
	 * 127.0.0.1 at this port: GET /metrics (Prometheus text) and GET
	 * /healthz (200, or 503 and why), from the moment the flow runs
	 * (docs/INSPECT.md). 0: the port in the environment variable
	 * SLUICE_METRICS_PORT when set, else none. A port that cannot be
	 * bound is said on stderr; the flow runs without it. */
	uint16_t metrics_port;
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
 * handle), armed by this first call, and from then on kept armed by
 * sluice_flow_reap: it is readable whenever reap may return something (now
 * and then spuriously), from the first completion on, reap or no reap.
 * Watch it with epoll (EPOLLIN); do not read it yourself: reap resets it
 * when it has drained everything. SLUICE_EINVAL for an observer. The
 * client's thread. */
SLUICE_EXTERN int sluice_flow_eventfd(sluice_flow_t *f);

/* ---- attaching: other processes -------------------------------------------------- */

enum sluice_attach_flags {
	/* An observer: the arena mapped read-only (a write faults), no client
	 * slot; the observing calls (snapshot, stats, pids) work, the task
	 * calls return SLUICE_EINVAL. */
	SLUICE_ATTACH_READ_ONLY = 1u << 0,
};

/* Attaches this process to the running flow `name` through its
 * supervisor's control socket (docs/ATTACH.md): the supervisor checks our
 * credentials (same uid), hands over the arena and, unless READ_ONLY, a
 * client slot with its completion eventfd. The handle is then used like
 * the creator's for tasks (alloc, submit, wait, reap, eventfd, release,
 * cancel) and observing; start and stop are the creator's (SLUICE_EINVAL,
 * SLUICE_EPERM). sluice_flow_destroy detaches: the supervisor takes the
 * slot back, and with it every task still in flight (cancelled, results
 * dropped) and every block this client held; the same happens when this
 * process dies. Returns 0; SLUICE_ENOENT (no such flow), SLUICE_EACCES
 * (not allowed), SLUICE_EUSERS (every client slot taken), SLUICE_EVERSION
 * (a library of another layout), SLUICE_ESTOPPED (the flow is stopping),
 * SLUICE_ETIMEDOUT, with a message in err. A handle is for the process
 * that attached (a fork must attach again). Any thread; blocks up to
 * timeout_ns on the supervisor's answer. */
SLUICE_EXTERN int sluice_flow_attach(const char *name, uint32_t flags, uint64_t timeout_ns,
				     sluice_flow_t **out, char *err, size_t errlen);

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
	uint32_t priority;     /* SLUICE_PRIORITY_NORMAL (alloc's) or SLUICE_PRIORITY_HIGH */
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

/* Payload from a descriptor: the zero-copy ingest of a request body.
 * See docs/RUNTIME.md, "Payload from a descriptor". */
enum sluice_task_read_flags {
	/* Move the bytes fd -> a pipe -> the arena's memfd with splice(2), so
	 * they never pass through user space. Falls back to read(2) where
	 * splice is refused: a source that cannot be spliced from, an arena
	 * that cannot be spliced into (hugetlbfs), no pipe to be had. */
	SLUICE_READ_SPLICE = 1u << 0,
};

/* Appends up to `max` bytes read from `fd` to t's payload, at payload_len
 * (never past payload_cap), and advances payload_len by what it added.
 * Without flags it makes one read(2) into the payload block in place
 * (the block is mapped: one copy, kernel to arena). With
 * SLUICE_READ_SPLICE it moves one pipe-full at a time (up to 1 MiB, the
 * pipe's size) and, for a non-blocking fd, goes on until the fd would
 * block. Like read(2) it may add fewer than `max` bytes with more to come.
 * Returns the bytes added (> 0); 0 at end of file (or for max 0);
 * SLUICE_EAGAIN when a non-blocking fd has nothing to read (bytes added
 * before it would block are returned as a count, never lost);
 * SLUICE_EMSGSIZE when the payload is full (payload_len == payload_cap;
 * nothing is read from fd); SLUICE_EINVAL for a task not freshly allocated
 * (not between sluice_task_alloc and submit), payload_len > payload_cap or
 * unknown flags; SLUICE_EBADF for a negative fd; SLUICE_EINTR when a
 * signal came before any byte; other failures of read(2) and splice(2) as
 * -errno (SLUICE_ECONNRESET, ...) when nothing was added. The client's
 * thread; blocks as the fd does (a blocking fd until some bytes or end of
 * file). The pipe is the flow handle's, made on first use, closed by
 * sluice_flow_destroy; processes forked after that inherit it, unused. */
SLUICE_EXTERN int64_t sluice_task_read_fd(sluice_flow_t *f, sluice_task_t *t, int fd, uint64_t max,
					  unsigned flags);

/* Appends exactly `n` bytes from `fd` to t's payload (a request body of
 * known Content-Length), calling sluice_task_read_fd until they are all
 * there: meant for a blocking fd. Returns 0 when all n arrived;
 * SLUICE_EMSGSIZE, with nothing read, when n is more than the payload has
 * room for (payload_cap - payload_len); SLUICE_EEOF when the fd reached end
 * of file first; SLUICE_EAGAIN (non-blocking fd run dry), SLUICE_EINTR and
 * the other codes of sluice_task_read_fd. On every failure payload_len
 * tells how many bytes arrived: what came is kept. The client's thread;
 * blocks until the n bytes, end of file, or an error. */
SLUICE_EXTERN int sluice_task_read_fd_exact(sluice_flow_t *f, sluice_task_t *t, int fd, uint64_t n,
					    unsigned flags);

/* Routes the task to the first step whose condition accepts it and queues
 * its descriptor there, waiting up to timeout_ns while that step's ring is
 * full. A task no step accepts completes at once with SLUICE_TASK_OK and no
 * result. Returns 0; SLUICE_ETIMEDOUT (the task stays allocated, submit it
 * again or release it); SLUICE_ESTOPPED when the flow is not running;
 * SLUICE_ESUPERVISOR once this client knows that the flow's supervisor died
 * (a submit checks at most every 10 ms, after publishing: tasks it published
 * then are in flight, and wait returns it for them; and while it waits for room);
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

/* Cancels a submitted task. Returns 0 when the task was still queued: it
 * is taken off its step at once (no worker will run it) and is complete,
 * status SLUICE_TASK_CANCELLED, with whatever result earlier steps left;
 * wait or reap returns it. SLUICE_EINPROGRESS when a worker is running
 * it: the cancel is recorded, the task runs no further step and completes
 * with SLUICE_TASK_CANCELLED when its current step concludes it (a handler
 * may stop early: sluice_item_cancelled), unless that step finishes it
 * first; a worker that dies holding it completes it as cancelled instead
 * of retrying it. SLUICE_EALREADY when it has completed (wait or reap
 * gives its own status). SLUICE_EINVAL for a task not submitted. In every
 * case the task is still the caller's to wait for (or reap) and release.
 * Client's thread; no system call (the eventfd is written once when reap
 * has something new). */
SLUICE_EXTERN int sluice_task_cancel(sluice_flow_t *f, sluice_task_t *t);

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

/* Sums the counters of step `step`'s workers (from their health records,
 * each read consistently; see sluice_flow_snapshot_take). `tasks` counts
 * tasks of handle() calls that returned. Any thread. Returns 0 or
 * SLUICE_EINVAL. */
SLUICE_EXTERN int sluice_flow_step_stats(const sluice_flow_t *f, uint32_t step,
					 sluice_step_stats_t *out);

/* The pid of worker `index` of step `step` (0 before it was forked), or
 * SLUICE_EINVAL. A snapshot from the arena. Any thread. */
SLUICE_EXTERN int64_t sluice_flow_worker_pid(const sluice_flow_t *f, uint32_t step,
					     uint32_t index);

/* The supervisor's pid (0 when not started). Any thread. */
SLUICE_EXTERN int64_t sluice_flow_supervisor_pid(const sluice_flow_t *f);

/* ---- health: a snapshot ------------------------------------------------------------- */

#define SLUICE_HEALTH_BATCH_BUCKETS 16   /* bucket i: handle() calls of 2^i .. 2^(i+1)-1 tasks */
#define SLUICE_HEALTH_LATENCY_BUCKETS 64 /* bucket i: tasks of 2^i .. 2^(i+1)-1 ns (0 ns: bucket 0) */
#define SLUICE_HEALTH_NSTATUS 9          /* SLUICE_TASK_* 0..7, then [8]: any other value */

/* A worker slot's state (the slot's latest process). */
enum sluice_worker_state {
	SLUICE_WORKER_NONE = 0,     /* never forked, or about to be forked again */
	SLUICE_WORKER_STARTING = 1, /* in on_start */
	SLUICE_WORKER_READY = 2,    /* serving */
	SLUICE_WORKER_FAILED = 3,   /* on_start failed */
	SLUICE_WORKER_EXITED = 4,   /* ran on_stop and exited */
	SLUICE_WORKER_DEAD = 5,     /* died or was killed */
	SLUICE_WORKER_RETIRING = 6, /* ran max_tasks_per_worker tasks; serving until replaced */
};

/* Why the supervisor killed a worker (a death by any other hand: NONE). */
enum sluice_kill_reason {
	SLUICE_KILL_NONE = 0,
	SLUICE_KILL_HUNG = 1,        /* a task in hand past task_timeout_ns + hung_grace_ns */
	SLUICE_KILL_HEARTBEAT = 2,   /* a handle() call in hand past heartbeat_timeout_ns */
	SLUICE_KILL_STEP_FAILED = 3, /* its step failed */
	SLUICE_KILL_STOP = 4,        /* the stop's grace ran out, or the start failed */
};

/* Flow states (sluice_flow_snapshot_t.state). */
enum sluice_flow_state {
	SLUICE_FLOW_CREATED = 0,
	SLUICE_FLOW_STARTING = 1,
	SLUICE_FLOW_RUNNING = 2,
	SLUICE_FLOW_START_FAILED = 3,
	SLUICE_FLOW_DRAINING = 4,
	SLUICE_FLOW_STOPPING = 5,
	SLUICE_FLOW_STOPPED = 6,
};

/* One worker slot: a place for one process at a time; a restart forks a
 * new process into the same slot. Counters add up over its processes. */
typedef struct sluice_worker_health {
	uint32_t step;              /* its step's index */
	uint32_t position;          /* the index it serves in its step; UINT32_MAX: none (a spare) */
	uint32_t state;             /* enum sluice_worker_state */
	uint32_t torn;              /* 1: no consistent copy could be had (a writer died
				     * inside a section nobody closed): fields may disagree */
	/* The supervisor's part. */
	int64_t pid;                /* the latest process; 0 before the first fork */
	uint32_t restarts;          /* processes forked to replace a dead one */
	uint32_t deaths;            /* processes that did not exit cleanly */
	uint64_t forked_ns;         /* CLOCK_MONOTONIC, when the latest process was forked */
	int64_t last_pid;           /* the last process that ended; 0: none yet */
	int32_t last_exit_code;     /* its exit code; -1 when a signal ended it */
	int32_t last_signal;        /* the signal that ended it; 0 when it exited */
	uint32_t last_kill;         /* enum sluice_kill_reason */
	uint32_t _reserved;
	uint64_t last_death_ns;     /* CLOCK_MONOTONIC, when the supervisor noticed that end */
	/* The worker's part. */
	uint64_t ready_ns;          /* CLOCK_MONOTONIC, when the latest process reported ready */
	uint64_t heartbeat_ns;      /* its last beat: each handle() call's start and end */
	uint64_t busy_since_ns;     /* the handle() call in hand began; 0: none */
	uint64_t busy_ns;           /* its age when the snapshot was taken; 0: none */
	uint32_t in_hand;           /* tasks of that call */
	uint32_t max_batch;         /* largest handle() call */
	uint64_t tasks;             /* tasks of handle() calls that returned */
	uint64_t batches;           /* handle() calls that returned */
	uint64_t handler_errors;
	uint64_t timeouts;
	uint64_t bad_descriptors;
	uint64_t latency_sum_ns;    /* sum over tasks of queued-at-this-step to handle() returned */
	uint64_t batch_hist[SLUICE_HEALTH_BATCH_BUCKETS];
	uint64_t latency_hist[SLUICE_HEALTH_LATENCY_BUCKETS];
} sluice_worker_health_t;

/* One step: its workers' counters and histograms summed, its queue, the
 * supervisor's counters (as in sluice_step_stats_t). */
typedef struct sluice_step_health {
	char name[SLUICE_STEP_NAME_MAX];
	uint32_t nprocs;
	uint32_t first_worker;      /* its slots: workers[first_worker .. + nslots) */
	uint32_t nslots;
	uint32_t workers_live;
	uint32_t batch_size;
	uint32_t max_batch;
	uint32_t failed;            /* 1 once the step failed */
	uint32_t deaths;
	uint32_t restarts;
	uint32_t recycled;
	uint32_t hung_kills;        /* task timeout + grace, or heartbeat */
	uint32_t _reserved;
	uint64_t queued;            /* descriptors on its ring now */
	uint64_t tasks;
	uint64_t batches;
	uint64_t handler_errors;
	uint64_t timeouts;
	uint64_t bad_descriptors;
	uint64_t requeued;
	uint64_t retried;
	uint64_t worker_died;
	uint64_t latency_sum_ns;
	uint64_t batch_hist[SLUICE_HEALTH_BATCH_BUCKETS];
	uint64_t latency_hist[SLUICE_HEALTH_LATENCY_BUCKETS];
} sluice_step_health_t;

/* A flow's health at one moment (see sluice_flow_snapshot_take for what
 * is consistent with what). Allocated by sluice_flow_snapshot_create, for
 * one flow's geometry; the arrays lie in the same allocation. */
typedef struct sluice_flow_snapshot {
	uint64_t taken_ns;          /* CLOCK_MONOTONIC, when the take began */
	uint32_t state;             /* enum sluice_flow_state */
	uint32_t nsteps;
	uint32_t nworkers;          /* worker slots, over all steps */
	uint32_t nclients;
	int64_t supervisor_pid;     /* 0 before start */
	uint64_t submitted;         /* over all clients */
	uint64_t completed[SLUICE_HEALTH_NSTATUS]; /* handed back, by status */
	uint64_t in_flight;         /* submitted - completed (0 if a torn client copy disagrees) */
	uint64_t lost_completions;  /* completions that could not be queued (a completion ring
				     * scribbled on: docs/SECURITY.md) */
	uint32_t torn;              /* records that were torn (see sluice_worker_health_t) */
	uint32_t _reserved;
	sluice_step_health_t *steps;     /* nsteps */
	sluice_worker_health_t *workers; /* nworkers, slot order (step by step) */
} sluice_flow_snapshot_t;

/* Allocates a snapshot for flow f (nothing is read yet: take fills it).
 * Returns 0 and the snapshot the caller owns (sluice_flow_snapshot_destroy),
 * SLUICE_ENOMEM or SLUICE_EINVAL. Any thread. */
SLUICE_EXTERN int sluice_flow_snapshot_create(const sluice_flow_t *f, sluice_flow_snapshot_t **out);

/* Fills s (made by sluice_flow_snapshot_create for f) from the flow's
 * arena: reads only, never writes, takes no lock and allocates nothing.
 * Consistency: each part of a worker record (the worker's counters,
 * histograms, heartbeat and call in hand; the supervisor's pid, restarts
 * and last death) and each client's totals are a copy of one moment of
 * their single writer (a sequence counter, read until stable); different
 * records are copied one after the other, and a step's sums are sums of
 * consistent worker records, so a step's histogram buckets add up to its
 * tasks and batches. The supervisor's step counters and the slot states
 * are read one by one. A record whose writer died inside a write section
 * that nobody closed (the supervisor closes them when it reaps) is retried
 * for at most about 10 ms, then copied as it is and marked torn. Any
 * thread of the process holding f, concurrently with everything the flow
 * does (not with destroy); it sleeps only while it waits for such a
 * record (20 us naps). Returns 0 or SLUICE_EINVAL (a snapshot of another
 * geometry). */
SLUICE_EXTERN int sluice_flow_snapshot_take(const sluice_flow_t *f, sluice_flow_snapshot_t *s);

/* Frees a snapshot. NULL is ignored. */
SLUICE_EXTERN void sluice_flow_snapshot_destroy(sluice_flow_snapshot_t *s);

/* A pidfd of the supervisor (owned by the handle; -1 before start or
 * after destroy): readable once the supervisor has exited. An event loop
 * that waits on sluice_flow_eventfd can watch it too, to learn that the
 * flow is gone (sluice_flow_reap then returns SLUICE_ESUPERVISOR). The
 * client's thread. */
SLUICE_EXTERN int sluice_flow_supervisor_pidfd(const sluice_flow_t *f);

#endif
