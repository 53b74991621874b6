/* Processes of a flow: start (fork the supervisor), the supervisor's epoll
 * loop, stop, and the sweeps that complete tasks nobody will finish.
 *
 * The supervisor is single-threaded at every fork (it never makes a
 * thread). It watches, in one epoll set:
 *   - a doorbell eventfd: workers ring it after writing their slot state
 *     (ready, on_start failed), the client after asking for a stop;
 *   - the client with a pidfd: when the client dies the flow stops at once;
 *   - every worker with a pidfd: a death is noticed at once, reaped with
 *     waitid(P_PIDFD) and logged with its cause.
 * and uses the epoll timeout for its deadlines (start, drain, stop grace)
 * and ticks (1 ms while draining, 10 ms while stopping or while a step has
 * no live worker). An idle running flow has no tick.
 *
 * Phases (hdr->state, a futex word the client waits on):
 *   STARTING -> RUNNING       every worker reported READY in time
 *   STARTING -> START_FAILED  an on_start failed, a worker died, a fork
 *                             failed, or the start deadline passed: every
 *                             worker is killed and reaped, then this
 *   RUNNING -> DRAINING       set by the client's stop; workers go on
 *   DRAINING -> STOPPING      nothing QUEUED or HELD any more, or the stop
 *                             deadline passed (or the client died); pills
 *                             wake the workers, which finish their batch,
 *                             run on_stop and exit; after stop_grace_ns the
 *                             rest are killed
 *   STOPPING -> STOPPED       every worker reaped; what is still QUEUED or
 *                             HELD is completed with FLOW_STOPPED
 *
 * A worker that dies while the flow runs is not restarted in this slice
 * (issue 5): its blocks are reclaimed, its ring lanes released, and the
 * tasks it held completed with WORKER_DIED. A step left with no live worker
 * is marked failed: what is queued for it completes with STEP_FAILED.
 * Recovery of a descriptor taken off a ring but not yet claimed (the window
 * the intent record of docs/RUNTIME.md closes) is also issue 5.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG_DOORBELL 0u
#define TAG_CLIENT 1u
#define TAG_WORKER 2u
/* Extra time the client gives the supervisor beyond its own deadlines. */
#define CLIENT_MARGIN_NS UINT64_C(3000000000)
#define COMPLETION_TRY_NS UINT64_C(100000000)

#define SWEEP_ALL_QUEUED SLUICE__SWEEP_ALL_QUEUED
#define SWEEP_NO_QUEUED SLUICE__SWEEP_NO_QUEUED

/* ---- sweeps ------------------------------------------------------------------------- */

uint32_t sluice__sweep(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t queued_step,
		       const bool *dead, unsigned status, const char *message)
{
	uint32_t n = 0;
	for (uint32_t slot = 0; slot < f->max_tasks; slot++) {
		struct sluice__task_entry *e = &f->tasks[slot];
		/* Acquire: pairs with the release CAS that made it QUEUED or
		 * HELD, so its desc is visible if we win it. */
		uint64_t w = sl_load_acquire(&e->state);
		unsigned st = SLUICE__TW_STATE(w);
		uint32_t owner = SLUICE__TW_OWNER(w);
		bool take = false;
		if (st == SLUICE__TS_QUEUED)
			take = queued_step == SWEEP_ALL_QUEUED || owner == queued_step;
		else if (st == SLUICE__TS_HELD)
			take = dead != NULL && owner < f->nworkers && dead[owner];
		if (!take)
			continue;
		uint32_t c = sluice__slot_client(f, slot);
		uint32_t gen = SLUICE__TW_GEN(w) + 1;
		/* acq_rel: we own the entry from here; a worker that still has a
		 * copy of its descriptor fails its CAS (generation moved). */
		if (!sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_DONE, c, gen)))
			continue;
		sluice_desc_t *d = &e->desc;
		void *p;
		uint64_t cap;
		if (!sluice__block_ok(f, d->result_block, d->result_len, SLUICE__OWNER_CLIENT(c), &p,
				      &cap)) {
			d->result_block = SLUICE_BLOCK_NONE;
			d->result_len = 0;
		}
		d->task_id = SLUICE__TASK_ID(gen, slot);
		d->slot = slot;
		d->client = c;
		d->status = (uint16_t)status;
		snprintf(e->message, sizeof(e->message), "%s", message);
		/* The enqueue publishes desc and message (release) to the
		 * client's dequeue. The ring holds every task of its client,
		 * so it has room unless shared memory was scribbled on. */
		int rc = 0;
		for (int tries = 0; rc <= 0 && tries < 10; tries++)
			rc = sluice_ring_enqueue_mpmc(&comp[c], d, COMPLETION_TRY_NS);
		if (rc <= 0)
			sl_fetch_add_relaxed(&f->hdr->lost_completions, 1);
		n++;
	}
	return n;
}

/* Any task QUEUED or HELD? */
static bool in_flight(const sluice_flow_t *f)
{
	for (uint32_t slot = 0; slot < f->max_tasks; slot++) {
		/* Relaxed: a poll; a task seen in flight is looked at again. */
		unsigned st = SLUICE__TW_STATE(sl_load_relaxed(&f->tasks[slot].state));
		if (st == SLUICE__TS_QUEUED || st == SLUICE__TS_HELD)
			return true;
	}
	return false;
}

/* ---- the supervisor ------------------------------------------------------------------ */

struct sup {
	sluice_flow_t *f;
	pid_t self;
	pid_t client_pid;
	int epfd;
	int client_pidfd;
	int *pidfd;                 /* per worker; -1 when not running */
	bool *live;                 /* forked and not yet reaped */
	bool *dead;                 /* reaped, and did not exit cleanly */
	uint32_t nlive;
	bool step_failed[SLUICE_FLOW_MAX_STEPS];
	bool any_failed;
	bool timed_out;
	sluice_ring_t rings[SLUICE_FLOW_MAX_STEPS];          /* consumer handles */
	sluice_ring_producer_t pill[SLUICE_FLOW_MAX_STEPS];
	sluice_ring_producer_t comp[SLUICE__NCLIENTS];
};

#define worker_step sluice__worker_step

static int ms_until(uint64_t now, uint64_t deadline, int cap)
{
	if (deadline <= now)
		return 0;
	uint64_t ms = (deadline - now) / 1000000 + 1; /* rounded up; no overflow */
	return ms > (uint64_t)cap ? cap : (int)ms;
}

static void describe_exit(const siginfo_t *si, char *buf, size_t len)
{
	if (si->si_code == CLD_EXITED)
		snprintf(buf, len, "exited with code %d", si->si_status);
	else
		snprintf(buf, len, "was killed by signal %d (%s)", si->si_status,
			 strsignal(si->si_status));
}

/* Reaps worker w, whose pidfd is readable (or who was just killed). */
static void reap(struct sup *S, uint32_t w, siginfo_t *si)
{
	sluice_flow_t *f = S->f;
	memset(si, 0, sizeof(*si));
	while (waitid(P_PIDFD, (id_t)S->pidfd[w], si, WEXITED) != 0 && errno == EINTR)
		;
	close(S->pidfd[w]); /* also leaves the epoll set */
	S->pidfd[w] = -1;
	S->live[w] = false;
	S->nlive--;
	struct sluice__worker_slot *ws = &f->wslots[w];
	int status = si->si_code == CLD_EXITED ? (si->si_status & 0xff) << 8 : si->si_status & 0x7f;
	sl_store_relaxed(&ws->exit_status, status);
	sl_store_relaxed(&ws->reaped, 1);
	/* Acquire: pairs with the worker's release store of EXITED or FAILED. */
	uint32_t state = sl_load_acquire(&ws->state);
	if (state != SLUICE__WS_EXITED || si->si_code != CLD_EXITED || si->si_status != 0) {
		S->dead[w] = true;
		/* Release: the worker is gone; the slot is ours to write. A
		 * FAILED state stays: it says why start failed. */
		if (state != SLUICE__WS_FAILED)
			sl_store_release(&ws->state, SLUICE__WS_DEAD);
	}
}

static void kill_and_reap_all(struct sup *S)
{
	siginfo_t si;
	if (S->live == NULL || S->pidfd == NULL)
		return;
	for (uint32_t w = 0; w < S->f->nworkers; w++)
		if (S->live[w])
			(void)pidfd_send_signal(S->pidfd[w], SIGKILL, NULL, 0);
	for (uint32_t w = 0; w < S->f->nworkers; w++)
		if (S->live[w])
			reap(S, w, &si);
}

static __attribute__((noreturn, format(printf, 3, 4))) void fail_start(struct sup *S, int rc,
									const char *fmt, ...)
{
	sluice_flow_t *f = S->f;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->hdr->message, sizeof(f->hdr->message), fmt, ap);
	va_end(ap);
	kill_and_reap_all(S);
	sl_store_relaxed(&f->hdr->result, rc);
	/* Release: message and result before the state the client reads
	 * (acquire). */
	sl_store_release(&f->hdr->state, SLUICE__FS_START_FAILED);
	sluice__futex_wake(&f->hdr->state);
	_exit(1);
}

static __attribute__((noreturn)) void worker_child(struct sup *S, uint32_t w)
{
	/* Die with the supervisor; if it is already gone (our parent changed
	 * before prctl took effect), leave at once. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != S->self)
		_exit(0);
	close(S->epfd);
	close(S->client_pidfd);
	for (uint32_t k = 0; k < w; k++)
		if (S->pidfd[k] >= 0)
			close(S->pidfd[k]);
	sluice__worker_main(S->f, w);
}

static void sup_setup(struct sup *S)
{
	sluice_flow_t *f = S->f;
	S->pidfd = malloc(f->nworkers * sizeof(*S->pidfd));
	S->live = calloc(f->nworkers, sizeof(*S->live));
	S->dead = calloc(f->nworkers, sizeof(*S->dead));
	if (!S->pidfd || !S->live || !S->dead)
		fail_start(S, SLUICE_ENOMEM, "supervisor: out of memory");
	for (uint32_t w = 0; w < f->nworkers; w++)
		S->pidfd[w] = -1;
	S->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (S->epfd < 0)
		fail_start(S, -errno, "supervisor: epoll_create1: %s", strerror(errno));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_DOORBELL};
	if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, f->sup_efd, &ev) != 0)
		fail_start(S, -errno, "supervisor: epoll_ctl: %s", strerror(errno));
	ev.data.u64 = TAG_CLIENT;
	if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, S->client_pidfd, &ev) != 0)
		fail_start(S, -errno, "supervisor: epoll_ctl: %s", strerror(errno));
	int rc = 0;
	for (uint32_t s = 0; rc == 0 && s < f->nsteps; s++) {
		rc = sluice_ring_open(&S->rings[s], f->steps[s].ring_mem, f->steps[s].ring_size);
		if (rc == 0)
			rc = sluice_ring_producer_claim(&S->pill[s], &S->rings[s],
							SLUICE__OWNER_SUPERVISOR);
	}
	for (uint32_t c = 0; rc == 0 && c < f->nclients; c++) {
		sluice_ring_t r;
		rc = sluice_ring_open(&r, f->comp_mem[c], f->comp_size[c]);
		if (rc == 0)
			rc = sluice_ring_producer_claim(&S->comp[c], &r, SLUICE__OWNER_SUPERVISOR);
		if (rc == 0 && c == f->client)
			rc = sluice_ring_producer_set_eventfd(&S->comp[c], f->client_efd);
	}
	if (rc != 0)
		fail_start(S, rc, "supervisor: rings: %s", sluice_strerror(rc));
}

static void fork_workers(struct sup *S)
{
	sluice_flow_t *f = S->f;
	for (uint32_t w = 0; w < f->nworkers; w++) {
		const struct sluice__step *st = &f->steps[worker_step(f, w)];
		uint32_t idx = w - st->first_worker;
		pid_t pid = fork();
		if (pid < 0)
			fail_start(S, -errno, "step '%s' worker %u: fork: %s", st->name, idx,
				   strerror(errno));
		if (pid == 0)
			worker_child(S, w);
		/* Relaxed: a snapshot for observers. */
		sl_store_relaxed(&f->wslots[w].pid, (uint32_t)pid);
		int pfd = pidfd_open(pid, 0);
		if (pfd < 0) {
			int err = -errno;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_start(S, err, "step '%s' worker %u: pidfd_open: %s", st->name, idx,
				   strerror(-err));
		}
		S->pidfd[w] = pfd;
		S->live[w] = true;
		S->nlive++;
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WORKER + w};
		if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, pfd, &ev) != 0)
			fail_start(S, -errno, "supervisor: epoll_ctl: %s", strerror(errno));
	}
}

static void drain_doorbell(sluice_flow_t *f)
{
	uint64_t v;
	(void)!read(f->sup_efd, &v, sizeof(v));
}

/* STARTING: waits for every worker's READY, or fails the start. */
static void await_ready(struct sup *S)
{
	sluice_flow_t *f = S->f;
	/* Relaxed: written by the client before it forked us. */
	uint64_t deadline = sl_load_relaxed(&f->hdr->start_deadline_ns);
	struct epoll_event evs[16];
	for (;;) {
		uint32_t ready = 0;
		for (uint32_t w = 0; w < f->nworkers; w++) {
			struct sluice__worker_slot *ws = &f->wslots[w];
			const struct sluice__step *st = &f->steps[worker_step(f, w)];
			/* Acquire: pairs with the worker's release store of its state
			 * after its message and start_rc. */
			uint32_t state = sl_load_acquire(&ws->state);
			if (state == SLUICE__WS_FAILED) {
				char msg[sizeof(ws->message)];
				memcpy(msg, ws->message, sizeof(msg));
				msg[sizeof(msg) - 1] = '\0';
				int rc = sl_load_relaxed(&ws->start_rc);
				fail_start(S, SLUICE_EWORKERSTART,
					   "step '%s' worker %u (pid %u): on_start failed: %s (%s)",
					   st->name, w - st->first_worker, sl_load_relaxed(&ws->pid),
					   msg[0] ? msg : "no message", sluice_err_name(rc));
			}
			if (!S->live[w]) {
				char how[96];
				int es = sl_load_relaxed(&ws->exit_status);
				if (es & 0x7f)
					snprintf(how, sizeof(how), "was killed by signal %d (%s)", es & 0x7f,
						 strsignal(es & 0x7f));
				else
					snprintf(how, sizeof(how), "exited with code %d", (es >> 8) & 0xff);
				fail_start(S, SLUICE_EWORKERSTART,
					   "step '%s' worker %u (pid %u) %s during on_start", st->name,
					   w - st->first_worker, sl_load_relaxed(&ws->pid), how);
			}
			if (state == SLUICE__WS_READY)
				ready++;
		}
		if (ready == f->nworkers)
			return;
		uint64_t now = sluice__now_ns();
		if (now >= deadline) {
			for (uint32_t w = 0; w < f->nworkers; w++) {
				/* Acquire: as above, the worker's release store. */
				if (sl_load_acquire(&f->wslots[w].state) == SLUICE__WS_READY)
					continue;
				const struct sluice__step *st = &f->steps[worker_step(f, w)];
				fail_start(S, SLUICE_ETIMEDOUT,
					   "step '%s' worker %u (pid %u): on_start did not finish in time",
					   st->name, w - st->first_worker, sl_load_relaxed(&f->wslots[w].pid));
			}
		}
		int n = epoll_wait(S->epfd, evs, 16, ms_until(now, deadline, INT_MAX));
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_DOORBELL) {
				drain_doorbell(f);
			} else if (tag == TAG_CLIENT) {
				fail_start(S, SLUICE_ECANCELED, "the client died during start");
			} else {
				siginfo_t si;
				reap(S, (uint32_t)(tag - TAG_WORKER), &si);
				/* Looked at on the next pass: FAILED first, else died. */
			}
		}
	}
}

/* A worker died while the flow ran: log, reclaim, complete what it held. */
static void worker_died(struct sup *S, uint32_t w, const siginfo_t *si)
{
	sluice_flow_t *f = S->f;
	uint32_t s = worker_step(f, w);
	const struct sluice__step *st = &f->steps[s];
	char how[96], msg[SLUICE_TASK_MESSAGE_MAX];
	describe_exit(si, how, sizeof(how));
	fprintf(stderr, "sluice: flow '%s': step '%s' worker %u (pid %u) %s\n", f->name, st->name,
		w - st->first_worker, sl_load_relaxed(&f->wslots[w].pid), how);
	(void)sluice_blocks_reclaim(&f->blocks, SLUICE__OWNER_WORKER(w));
	for (uint32_t t = 0; t < f->nsteps; t++)
		(void)sluice_ring_lane_release(&S->rings[t], SLUICE__OWNER_WORKER(w));
	for (uint32_t c = 0; c < f->nclients; c++) {
		sluice_ring_t r;
		if (sluice_ring_open(&r, f->comp_mem[c], f->comp_size[c]) == 0)
			(void)sluice_ring_lane_release(&r, SLUICE__OWNER_WORKER(w));
	}
	snprintf(msg, sizeof(msg), "step '%s' worker %u %s", st->name, w - st->first_worker, how);
	bool *only = calloc(f->nworkers, sizeof(*only));
	if (only != NULL) {
		only[w] = true;
		(void)sluice__sweep(f, S->comp, SWEEP_NO_QUEUED, only, SLUICE_TASK_WORKER_DIED, msg);
		free(only);
	}
	bool any = false;
	for (uint32_t k = 0; k < st->nprocs; k++)
		any |= S->live[st->first_worker + k];
	if (!any && !S->step_failed[s]) {
		S->step_failed[s] = true;
		S->any_failed = true;
		fprintf(stderr, "sluice: flow '%s': step '%s' has no live worker; its tasks fail\n",
			f->name, st->name);
	}
}

/* Completes what is queued for steps without a live worker. */
static void fail_dead_steps(struct sup *S)
{
	sluice_flow_t *f = S->f;
	sluice_desc_t buf[64];
	char msg[SLUICE_TASK_MESSAGE_MAX];
	for (uint32_t s = 0; s < f->nsteps; s++) {
		if (!S->step_failed[s])
			continue;
		/* Empty the ring so its producers do not block; the entries are
		 * what counts, and the sweep completes them. */
		while (sluice_ring_try_dequeue_bulk_mpmc(&S->rings[s], buf, 64) > 0)
			;
		snprintf(msg, sizeof(msg), "step '%s' has no live worker", f->steps[s].name);
		(void)sluice__sweep(f, S->comp, s, NULL, SLUICE_TASK_STEP_FAILED, msg);
	}
}

/* Wakes the workers of every step that still has live ones and an empty
 * ring: one pill each. Never blocks. */
static void send_pills(struct sup *S)
{
	sluice_flow_t *f = S->f;
	sluice_desc_t pills[SLUICE_STEP_MAX_NPROCS];
	for (uint32_t s = 0; s < f->nsteps; s++) {
		const struct sluice__step *st = &f->steps[s];
		unsigned live = 0;
		for (uint32_t k = 0; k < st->nprocs; k++)
			live += S->live[st->first_worker + k];
		if (live == 0 || sluice_ring_count(&S->rings[s]) != 0)
			continue;
		for (unsigned k = 0; k < live; k++)
			pills[k] = (sluice_desc_t){.slot = SLUICE__PILL_SLOT, .flags = SLUICE__DESC_PILL,
						   .result_block = SLUICE_BLOCK_NONE,
						   .payload_block = SLUICE_BLOCK_NONE};
		(void)sluice_ring_try_enqueue_bulk_mpmc(&S->pill[s], pills, live);
	}
}

static void begin_stopping(struct sup *S, bool timed_out, uint64_t *kill_deadline)
{
	sluice_flow_t *f = S->f;
	S->timed_out = timed_out;
	/* Release: pairs with the workers' acquire load after each dequeue;
	 * the pills below wake the sleepers to look. */
	sl_store_release(&f->hdr->state, SLUICE__FS_STOPPING);
	sluice__futex_wake(&f->hdr->state);
	*kill_deadline = sluice__deadline(sluice__now_ns(), f->stop_grace_ns);
	send_pills(S);
}

static __attribute__((noreturn)) void sup_main(sluice_flow_t *f, pid_t client_pid)
{
	static struct sup S;
	S.f = f;
	S.self = getpid();
	S.client_pid = client_pid;
	S.epfd = -1;
	(void)prctl(PR_SET_NAME, "sl-supervisor");
	/* Children are reaped by us through their pidfds, whatever the client
	 * did with SIGCHLD. */
	signal(SIGCHLD, SIG_DFL);
	S.client_pidfd = pidfd_open(client_pid, 0);
	if (S.client_pidfd < 0 || getppid() != client_pid)
		_exit(0); /* the client is already gone */
	sl_store_relaxed(&f->hdr->sup_pid, (uint32_t)S.self);
	sup_setup(&S);
	fork_workers(&S);
	await_ready(&S);

	/* Release: pairs with the client's acquire in start and submit. */
	sl_store_release(&f->hdr->state, SLUICE__FS_RUNNING);
	sluice__futex_wake(&f->hdr->state);

	enum { RUNNING, DRAINING, STOPPING } phase = RUNNING;
	uint64_t drain_deadline = 0, kill_deadline = 0;
	struct epoll_event evs[16];
	for (;;) {
		uint64_t now = sluice__now_ns();
		int timeout_ms = -1;
		if (phase == RUNNING) {
			/* Acquire: pairs with the client's release CAS to DRAINING
			 * after it wrote the stop deadline. */
			if (sl_load_acquire(&f->hdr->state) == SLUICE__FS_DRAINING) {
				drain_deadline = sl_load_relaxed(&f->hdr->stop_deadline_ns);
				phase = DRAINING;
				continue;
			}
			if (S.any_failed) {
				fail_dead_steps(&S);
				timeout_ms = 10;
			}
		} else if (phase == DRAINING) {
			if (S.any_failed)
				fail_dead_steps(&S);
			if (!in_flight(f)) {
				begin_stopping(&S, false, &kill_deadline);
				phase = STOPPING;
				continue;
			}
			if (now >= drain_deadline) {
				begin_stopping(&S, true, &kill_deadline);
				phase = STOPPING;
				continue;
			}
			timeout_ms = ms_until(now, drain_deadline, 1);
		} else {
			if (S.nlive == 0)
				break;
			if (now >= kill_deadline) {
				kill_and_reap_all(&S);
				break;
			}
			send_pills(&S);
			timeout_ms = ms_until(now, kill_deadline, 10);
		}
		int n = epoll_wait(S.epfd, evs, 16, timeout_ms);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_DOORBELL) {
				drain_doorbell(f);
			} else if (tag == TAG_CLIENT) {
				/* The client is gone: nobody to serve. Stop now. */
				epoll_ctl(S.epfd, EPOLL_CTL_DEL, S.client_pidfd, NULL);
				if (phase != STOPPING) {
					begin_stopping(&S, true, &kill_deadline);
					phase = STOPPING;
				}
			} else {
				uint32_t w = (uint32_t)(tag - TAG_WORKER);
				siginfo_t si;
				if (w >= f->nworkers || !S.live[w])
					continue;
				reap(&S, w, &si);
				if (phase != STOPPING && S.dead[w])
					worker_died(&S, w, &si);
			}
		}
	}

	/* Every worker is reaped: nobody else moves entries but the client,
	 * which only touches its CLIENT and DONE ones. */
	bool *all = malloc(f->nworkers * sizeof(*all));
	uint32_t swept = 0;
	if (all != NULL) {
		for (uint32_t w = 0; w < f->nworkers; w++)
			all[w] = true;
		swept = sluice__sweep(f, S.comp, SWEEP_ALL_QUEUED, all, SLUICE_TASK_FLOW_STOPPED,
				      "the flow stopped before the task finished");
		free(all);
	}
	sl_store_relaxed(&f->hdr->result, (S.timed_out || swept) ? SLUICE_ETIMEDOUT : 0);
	/* Release: result before the state; the client reads both after
	 * reaping us. */
	sl_store_release(&f->hdr->state, SLUICE__FS_STOPPED);
	sluice__futex_wake(&f->hdr->state);
	_exit(0);
}

/* ---- the client's side: start and stop ----------------------------------------------------- */

/* Waits until the supervisor has exited (or `deadline` passes: then kills
 * it) and reaps it. */
static void reap_supervisor(sluice_flow_t *f, uint64_t deadline)
{
	if (f->sup_reaped || f->sup_pid <= 0)
		return;
	for (;;) {
		uint64_t now = sluice__now_ns();
		if (now >= deadline) {
			(void)pidfd_send_signal(f->sup_pidfd, SIGKILL, NULL, 0);
			break;
		}
		struct pollfd pfd = {.fd = f->sup_pidfd, .events = POLLIN};
		int n = poll(&pfd, 1, ms_until(now, deadline, 1000));
		if (n > 0)
			break;
	}
	while (waitpid(f->sup_pid, NULL, 0) < 0 && errno == EINTR)
		;
	f->sup_reaped = true;
}

/* After the supervisor died without finishing: its workers die with it
 * (PR_SET_PDEATHSIG); wait until they are gone, then complete what is
 * still in flight, here. */
static void clean_up_after_supervisor(sluice_flow_t *f)
{
	for (uint32_t w = 0; w < f->nworkers; w++) {
		struct sluice__worker_slot *ws = &f->wslots[w];
		uint32_t pid = sl_load_relaxed(&ws->pid);
		if (pid == 0 || sl_load_relaxed(&ws->reaped))
			continue;
		int pfd = pidfd_open((pid_t)pid, 0);
		if (pfd < 0)
			continue; /* gone */
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		(void)poll(&p, 1, 2000);
		close(pfd);
	}
	bool *all = malloc(f->nworkers * sizeof(*all));
	if (all == NULL)
		return;
	for (uint32_t w = 0; w < f->nworkers; w++)
		all[w] = true;
	/* comp_self is client 0's lane on its own completion ring: the only
	 * client of this slice, so the only one the sweep completes to. */
	(void)sluice__sweep(f, &f->comp_self, SWEEP_ALL_QUEUED, all, SLUICE_TASK_FLOW_STOPPED,
			    "the flow's supervisor died");
	free(all);
}

int sluice_flow_start(sluice_flow_t *f, uint64_t timeout_ns)
{
	if (f == NULL)
		return SLUICE_EINVAL;
	if (f->started) {
		sluice__seterr(f, "the flow was already started");
		return SLUICE_EINVAL;
	}
	f->started = true;
	f->err[0] = '\0';
	f->sup_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->sup_efd < 0) {
		int rc = -errno;
		sluice__seterr(f, "eventfd: %s", strerror(errno));
		f->sup_reaped = true;
		/* Release: no other process exists; for observers only. */
		sl_store_release(&f->hdr->state, SLUICE__FS_START_FAILED);
		return rc;
	}
	uint64_t now = sluice__now_ns();
	uint64_t deadline = sluice__deadline(now, timeout_ns);
	pid_t me = getpid();
	sl_store_relaxed(&f->hdr->start_deadline_ns, deadline);
	sl_store_relaxed(&f->hdr->client_pid, (uint32_t)me);
	/* Release: the deadline and pid before the state; the fork copies
	 * it all anyway. */
	sl_store_release(&f->hdr->state, SLUICE__FS_STARTING);
	fflush(NULL); /* or the children would print our buffered output again */
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		sluice__seterr(f, "fork of the supervisor: %s", strerror(errno));
		f->sup_reaped = true;
		/* Release: no other process exists; for observers only. */
		sl_store_release(&f->hdr->state, SLUICE__FS_START_FAILED);
		return rc;
	}
	if (pid == 0)
		sup_main(f, me);
	f->sup_pid = pid;
	f->sup_pidfd = pidfd_open(pid, 0);
	if (f->sup_pidfd < 0) {
		int rc = -errno;
		sluice__seterr(f, "pidfd_open of the supervisor: %s", strerror(errno));
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		f->sup_reaped = true;
		clean_up_after_supervisor(f);
		return rc;
	}

	uint64_t client_deadline = sluice__deadline(deadline, CLIENT_MARGIN_NS);
	for (;;) {
		/* Acquire: pairs with the supervisor's release store of the
		 * state after the message and result. */
		uint32_t st = sl_load_acquire(&f->hdr->state);
		if (st == SLUICE__FS_RUNNING)
			return 0;
		if (st == SLUICE__FS_START_FAILED) {
			reap_supervisor(f, sluice__deadline(sluice__now_ns(), CLIENT_MARGIN_NS));
			memcpy(f->err, f->hdr->message, sizeof(f->err) - 1);
			f->err[sizeof(f->err) - 1] = '\0';
			return sl_load_relaxed(&f->hdr->result);
		}
		struct pollfd p = {.fd = f->sup_pidfd, .events = POLLIN};
		if (poll(&p, 1, 0) > 0) {
			/* Exited without a word. */
			reap_supervisor(f, 0);
			clean_up_after_supervisor(f);
			sluice__seterr(f, "the supervisor died during start");
			return SLUICE_ESUPERVISOR;
		}
		now = sluice__now_ns();
		if (now >= client_deadline) {
			reap_supervisor(f, 0); /* kills it */
			clean_up_after_supervisor(f);
			sluice__seterr(f, "the supervisor did not report within the start timeout");
			return SLUICE_ETIMEDOUT;
		}
		uint64_t slice = client_deadline - now;
		if (slice > UINT64_C(50000000))
			slice = UINT64_C(50000000);
		(void)sluice__futex_wait(&f->hdr->state, st, slice);
	}
}

int sluice_flow_stop(sluice_flow_t *f, uint64_t timeout_ns)
{
	if (f == NULL)
		return SLUICE_EINVAL;
	if (!f->started || f->sup_reaped)
		return 0;
	f->err[0] = '\0';
	uint64_t now = sluice__now_ns();
	uint32_t st = SLUICE__FS_RUNNING;
	sl_store_relaxed(&f->hdr->stop_deadline_ns, sluice__deadline(now, timeout_ns));
	/* Release: the deadline before the state the supervisor reads
	 * (acquire). Only a running flow drains. */
	(void)sl_cas_acq_rel(&f->hdr->state, &st, SLUICE__FS_DRAINING);
	sluice__notify(f->sup_efd);

	uint64_t limit = sluice__deadline(now, timeout_ns);
	limit = sluice__deadline(limit, f->stop_grace_ns);
	limit = sluice__deadline(limit, CLIENT_MARGIN_NS);
	reap_supervisor(f, limit);
	/* Acquire: pairs with the supervisor's release store of STOPPED. */
	if (sl_load_acquire(&f->hdr->state) == SLUICE__FS_STOPPED)
		return sl_load_relaxed(&f->hdr->result);
	clean_up_after_supervisor(f);
	/* Release: the sweep's writes before the state, for observers; the
	 * flow's other processes are gone. */
	sl_store_release(&f->hdr->state, SLUICE__FS_STOPPED);
	sluice__seterr(f, "the supervisor died before the flow stopped");
	return SLUICE_ESUPERVISOR;
}
