/* Processes of a flow: start (fork the supervisor), the supervisor's epoll
 * loop with its restarts, hung-worker kills and recycling, and stop.
 * What happens to a dead worker's tasks is runtime/recovery.c.
 *
 * The supervisor is single-threaded at every fork (it never makes a
 * thread). It watches, in one epoll set:
 *   - a doorbell eventfd: workers ring it after writing their slot state
 *     (ready, on_start failed, retiring), the client after asking for a
 *     stop;
 *   - the client with a pidfd: when the client dies the flow stops at once;
 *   - every worker with a pidfd: a death is noticed at once, reaped with
 *     waitid(P_PIDFD) and logged with its cause;
 *   - once running, the metrics endpoint when it has one
 *     (runtime/metrics_http.c: its own epoll set, a timeout to fold in).
 * and uses the epoll timeout for its deadlines (start, drain, stop grace,
 * restarts, the next hung check) and ticks (1 ms while draining or while
 * recovered tasks wait for room on their ring, 10 ms while stopping or
 * while a step is failed). An idle running flow has no tick, except one
 * hung check per hung_grace_ns (min over steps) when a step has a task
 * timeout.
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
 * A worker slot is a place for one process at a time (its ring lanes and
 * block owner id are the slot's). Slot states, supervisor-local:
 *   IDLE     no process, nothing planned (a spare; a retired worker's slot)
 *   LIVE     forked, not yet reaped
 *   RESTART  its process died; a new one is forked at restart_at
 *
 * A death while RUNNING or DRAINING: logged with its cause; the tasks are
 * recovered (runtime/recovery.c); the step's death count within
 * fail_window_ns decides: fail_deaths reached -> the step fails (its live
 * workers are killed, nothing of it is restarted, its queued and new tasks
 * complete with STEP_FAILED); else the slot restarts after restart_delay_ns
 * doubled per earlier death in the window, up to restart_max_delay_ns.
 * Restarts of one slot are therefore never closer than restart_delay_ns:
 * no fork storm.
 *
 * Hung workers: a worker still in handle() hung_grace_ns past the earliest
 * deadline of the tasks it holds (its slot's busy_deadline), or, on a step
 * with a heartbeat_timeout_ns, in one handle() call that long without a
 * beat (its health record), is killed and handled as dead.
 *
 * Health (runtime/health.c): the supervisor writes each slot's pid, fork
 * time and restarts when it forks, and its exit cause, death count and the
 * moment it noticed the end when it reaps.
 *
 * Recycling: a worker that has run max_tasks_per_worker tasks says
 * RETIRING and goes on serving; the supervisor forks its replacement into
 * a free slot of the step (the spare), and once that one is READY tells the
 * old one to leave (retire_go); it finishes its batch, runs on_stop and
 * exits cleanly. The step's capacity never drops.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/clients.h"
#include "runtime/flow_internal.h"
#include "runtime/health.h"
#include "runtime/metrics_http.h"

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
/* The client table's events (runtime/clients.h): above every worker tag. */
#define TAG_CLIENTS (UINT64_C(1) << 62)
#define TAG_METRICS UINT64_MAX /* tested before TAG_CLIENTS: it has that bit too */
/* Extra time the client gives the supervisor beyond its own deadlines. */
#define CLIENT_MARGIN_NS UINT64_C(3000000000)
#define MSEC UINT64_C(1000000)
/* A fork that failed (EAGAIN, ENOMEM) is tried again after this long at
 * least. */
#define FORK_RETRY_NS (100 * MSEC)
/* Death timestamps kept per step when its fail_deaths is NEVER: enough to
 * double any delay to its maximum. */
#define DEATH_LOG_NEVER 64u

#define SWEEP_ALL_QUEUED SLUICE__SWEEP_ALL_QUEUED
#define SWEEP_NO_QUEUED SLUICE__SWEEP_NO_QUEUED

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

enum slot_state { SLOT_IDLE = 0, SLOT_LIVE, SLOT_RESTART };
enum phase { PH_STARTING = 0, PH_RUNNING, PH_DRAINING, PH_STOPPING };

/* The last deaths of a step's workers: a ring of timestamps. */
struct death_log {
	uint64_t *at;
	uint32_t cap, n, next;
};

/* A recovered entry waiting for room on its step's ring (the supervisor's
 * lane there). */
struct pending {
	uint32_t slot, gen, step;
};

struct sup {
	sluice_flow_t *f;
	pid_t self;
	pid_t client_pid;
	int epfd;
	int client_pidfd;
	enum phase phase;
	int *pidfd;                 /* per slot; -1 when no process */
	uint8_t *sstate;            /* per slot: enum slot_state */
	bool *dead;                 /* reaped, and did not exit cleanly */
	bool *hung;                 /* killed by the hung check; cleared at its death */
	uint8_t *kill_why;          /* enum sluice_kill_reason of our kill; cleared at fork */
	bool *retire_seen;          /* its RETIRING was answered with a replacement */
	int32_t *replaces;          /* the slot this one is the replacement of, or -1 */
	uint64_t *restart_at;       /* SLOT_RESTART: when */
	uint32_t nlive;
	bool step_failed[SLUICE_FLOW_MAX_STEPS];
	bool any_failed;
	bool timed_out;
	struct death_log deaths[SLUICE_FLOW_MAX_STEPS];
	bool any_timeout;           /* some step has a task timeout: hung checks */
	uint64_t min_grace;
	uint64_t next_hung_check;
	struct pending *pend;       /* max_tasks entries */
	uint32_t npend;
	sluice_ring_t rings[SLUICE_FLOW_MAX_STEPS];          /* consumer handles */
	/* Our lanes, normal and high: pills, re-queues. */
	sluice_ring_producer_t pill[SLUICE_FLOW_MAX_STEPS][SLUICE__LEVELS];
	sluice_ring_producer_t comp[SLUICE__MAX_CLIENTS];
	struct sluice__clients clients; /* attached clients, the control socket */
	struct sluice__metrics_http *metrics; /* NULL: no metrics endpoint */
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

/* "step 'parse' worker 1 (pid 123)": the position a slot serves, as the
 * user counts workers. */
static void describe_worker(const struct sup *S, uint32_t w, char *buf, size_t len)
{
	sluice_flow_t *f = S->f;
	const struct sluice__step *st = &f->steps[worker_step(f, w)];
	/* Relaxed: we wrote these. */
	uint32_t pos = sl_load_relaxed(&f->wslots[w].position);
	uint32_t pid = sl_load_relaxed(&f->wslots[w].pid);
	if (pos < st->nprocs)
		snprintf(buf, len, "step '%s' worker %u (pid %u)", st->name, pos, pid);
	else
		snprintf(buf, len, "step '%s' spare worker (pid %u)", st->name, pid);
}

/* Has worker w's process exited? (Its pidfd is readable; a zombie not yet
 * reaped.) */
static bool exited(const struct sup *S, uint32_t w)
{
	struct pollfd p = {.fd = S->pidfd[w], .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Reaps worker w, whose process has exited (or was just killed: waitid
 * blocks until it is gone). Returns true when it exited cleanly (EXITED,
 * code 0). */
static bool reap(struct sup *S, uint32_t w, siginfo_t *si)
{
	sluice_flow_t *f = S->f;
	struct sluice__worker_slot *ws = &f->wslots[w];
	uint64_t noticed = sluice__now_ns();
	/* Before the zombie goes: whoever reads a pid here and then opens a
	 * pidfd on it, and reads the pid here again afterwards, has opened
	 * this process (a pid is not reused before we reap it). The fence
	 * orders the store before waitid; pairs with the reader's fence
	 * between its pidfd_open and its second read (tests/runtime). */
	sl_store_release(&ws->live_pid, 0);
	sl_fence_seq_cst();
	memset(si, 0, sizeof(*si));
	while (waitid(P_PIDFD, (id_t)S->pidfd[w], si, WEXITED) != 0 && errno == EINTR)
		;
	/* Out of the epoll set explicitly: close alone would leave it there
	 * while a just-forked worker still holds an inherited copy of the
	 * pidfd, and its (readable) events would then be taken for the next
	 * process of the slot. */
	(void)epoll_ctl(S->epfd, EPOLL_CTL_DEL, S->pidfd[w], NULL);
	close(S->pidfd[w]);
	S->pidfd[w] = -1;
	S->sstate[w] = SLOT_IDLE;
	S->nlive--;
	int status = si->si_code == CLD_EXITED ? (si->si_status & 0xff) << 8 : si->si_status & 0x7f;
	sl_store_relaxed(&ws->exit_status, status);
	sl_store_relaxed(&ws->reaped, 1);
	/* Acquire: pairs with the worker's release store of EXITED or FAILED. */
	uint32_t state = sl_load_acquire(&ws->state);
	bool clean = state == SLUICE__WS_EXITED && si->si_code == CLD_EXITED && si->si_status == 0;
	S->dead[w] = !clean;
	sluice__health_reaped(f, w, si, clean, S->kill_why[w], noticed);
	/* Release: the worker is gone; the slot is ours to write. A FAILED
	 * state stays: it says why on_start failed. */
	if (!clean && state != SLUICE__WS_FAILED)
		sl_store_release(&ws->state, SLUICE__WS_DEAD);
	return clean;
}

static void on_death(struct sup *S, uint32_t w, const siginfo_t *si, bool clean);

static void kill_and_reap_all(struct sup *S, bool recover)
{
	siginfo_t si;
	if (S->sstate == NULL || S->pidfd == NULL || S->kill_why == NULL)
		return;
	for (uint32_t w = 0; w < S->f->nworkers; w++) {
		if (S->sstate[w] != SLOT_LIVE)
			continue;
		if (S->kill_why[w] == SLUICE_KILL_NONE)
			S->kill_why[w] = SLUICE_KILL_STOP;
		(void)pidfd_send_signal(S->pidfd[w], SIGKILL, NULL, 0);
	}
	for (uint32_t w = 0; w < S->f->nworkers; w++) {
		if (S->sstate[w] != SLOT_LIVE)
			continue;
		bool clean = reap(S, w, &si);
		if (recover)
			on_death(S, w, &si, clean);
	}
}

static __attribute__((noreturn, format(printf, 3, 4))) void fail_start(struct sup *S, int rc,
									const char *fmt, ...)
{
	sluice_flow_t *f = S->f;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->hdr->message, sizeof(f->hdr->message), fmt, ap);
	va_end(ap);
	kill_and_reap_all(S, false);
	sluice__clients_fini(&S->clients);
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
	sluice__clients_close_in_child(&S->clients);
	for (uint32_t k = 0; k < S->f->nworkers; k++)
		if (S->pidfd[k] >= 0)
			close(S->pidfd[k]);
	sluice__metrics_http_close(S->metrics);
	if (S->f->steps[worker_step(S->f, w)].exec_path != NULL)
		sluice__worker_exec(S->f, w); /* a clean process: docs/RUNTIME.md */
	sluice__worker_main(S->f, w);
}

/* Forks a process into slot w (IDLE or RESTART, its lanes and blocks
 * already given back). Returns 0 or a negative code. Single-threaded. */
static int fork_slot(struct sup *S, uint32_t w)
{
	sluice_flow_t *f = S->f;
	struct sluice__worker_slot *ws = &f->wslots[w];
	bool restart = S->sstate[w] == SLOT_RESTART;
	/* Relaxed: no process runs in the slot; the fork hands these over. */
	sl_store_relaxed(&ws->state, SLUICE__WS_NONE);
	sl_store_relaxed(&ws->retire_go, 0);
	sl_store_relaxed(&ws->start_rc, 0);
	sl_store_relaxed(&ws->exit_status, 0);
	sl_store_relaxed(&ws->reaped, 0);
	sl_fetch_add_relaxed(&ws->incarnation, 1);
	S->dead[w] = false;
	S->hung[w] = false;
	S->kill_why[w] = SLUICE_KILL_NONE;
	S->retire_seen[w] = false;
	uint64_t forked = sluice__now_ns(); /* before: the child may be ready before fork returns here */
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		worker_child(S, w);
	/* Relaxed: snapshots for observers. */
	sl_store_relaxed(&ws->pid, (uint32_t)pid);
	sluice__health_forked(f, w, (uint32_t)pid, restart, forked);
	int pfd = pidfd_open(pid, 0);
	if (pfd < 0) {
		int err = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return err;
	}
	sl_store_relaxed(&ws->live_pid, (uint32_t)pid);
	S->pidfd[w] = pfd;
	S->sstate[w] = SLOT_LIVE;
	S->nlive++;
	/* The tag names the slot and its incarnation: an event of an earlier
	 * process of the slot is recognised and ignored. */
	uint64_t inc = sl_load_relaxed(&ws->incarnation);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (TAG_WORKER + w) | inc << 32};
	if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, pfd, &ev) != 0) {
		/* Without its pidfd in the set we would not see it die. */
		int err = -errno;
		(void)pidfd_send_signal(pfd, SIGKILL, NULL, 0);
		siginfo_t si;
		(void)reap(S, w, &si);
		return err;
	}
	return 0;
}

static void requeue_later(void *arg, uint32_t step, uint32_t slot, uint32_t gen)
{
	struct sup *S = arg;
	/* Each entry is pending at most once (it has no descriptor anywhere
	 * until we send one), so max_tasks entries always suffice. */
	if (S->npend < S->f->max_tasks)
		S->pend[S->npend++] = (struct pending){.slot = slot, .gen = gen, .step = step};
}

/* Sends the recovered entries their new descriptors, as far as our lanes
 * have room; the rest wait for the next tick. Never blocks. */
static void flush_pending(struct sup *S)
{
	sluice_flow_t *f = S->f;
	uint32_t keep = 0;
	bool full[SLUICE_FLOW_MAX_STEPS][SLUICE__LEVELS] = {{false}};
	for (uint32_t i = 0; i < S->npend; i++) {
		struct pending p = S->pend[i];
		struct sluice__task_entry *e = &f->tasks[p.slot];
		/* Relaxed: only we move an entry out of a QUEUED state that has
		 * no descriptor yet, or a sweep of ours. */
		if (sl_load_relaxed(&e->state) != SLUICE__TW(SLUICE__TS_QUEUED, p.step, p.gen) ||
		    S->step_failed[p.step])
			continue; /* swept meanwhile */
		sluice_desc_t d = e->desc; /* ours: nobody can claim it yet */
		unsigned lv = sluice__level(d.priority);
		if (!full[p.step][lv]) {
			if (sluice_ring_try_enqueue_mpmc(&S->pill[p.step][lv], &d) == 1)
				continue;
			full[p.step][lv] = true;
		}
		S->pend[keep++] = p;
	}
	S->npend = keep;
}

static void sup_setup(struct sup *S)
{
	sluice_flow_t *f = S->f;
	sluice__clients_init(&S->clients, f);
	S->pidfd = malloc(f->nworkers * sizeof(*S->pidfd));
	S->sstate = calloc(f->nworkers, sizeof(*S->sstate));
	S->dead = calloc(f->nworkers, sizeof(*S->dead));
	S->hung = calloc(f->nworkers, sizeof(*S->hung));
	S->kill_why = calloc(f->nworkers, sizeof(*S->kill_why));
	S->retire_seen = calloc(f->nworkers, sizeof(*S->retire_seen));
	S->replaces = malloc(f->nworkers * sizeof(*S->replaces));
	S->restart_at = calloc(f->nworkers, sizeof(*S->restart_at));
	S->pend = malloc(f->max_tasks * sizeof(*S->pend));
	if (!S->pidfd || !S->sstate || !S->dead || !S->hung || !S->kill_why || !S->retire_seen ||
	    !S->replaces || !S->restart_at || !S->pend)
		fail_start(S, SLUICE_ENOMEM, "supervisor: out of memory");
	for (uint32_t w = 0; w < f->nworkers; w++) {
		S->pidfd[w] = -1;
		S->replaces[w] = -1;
	}
	S->min_grace = UINT64_MAX;
	for (uint32_t s = 0; s < f->nsteps; s++) {
		const struct sluice__step *st = &f->steps[s];
		struct death_log *D = &S->deaths[s];
		D->cap = st->fail_deaths == SLUICE_STEP_NEVER_FAIL ? DEATH_LOG_NEVER : st->fail_deaths;
		D->at = calloc(D->cap, sizeof(*D->at));
		if (D->at == NULL)
			fail_start(S, SLUICE_ENOMEM, "supervisor: out of memory");
		if (st->task_timeout_ns != 0) {
			S->any_timeout = true;
			if (st->hung_grace_ns < S->min_grace)
				S->min_grace = st->hung_grace_ns;
		}
		if (st->heartbeat_timeout_ns != 0) {
			S->any_timeout = true;
			if (st->heartbeat_timeout_ns < S->min_grace)
				S->min_grace = st->heartbeat_timeout_ns;
		}
	}
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
			rc = sluice__claim_step_lanes(f, s, SLUICE__OWNER_SUPERVISOR, S->pill[s]);
	}
	for (uint32_t c = 0; rc == 0 && c < f->nclients; c++) {
		sluice_ring_t r;
		rc = sluice_ring_open(&r, f->comp_mem[c], f->comp_size[c]);
		if (rc == 0)
			rc = sluice_ring_producer_claim(&S->comp[c], &r, SLUICE__OWNER_SUPERVISOR);
		if (rc == 0)
			rc = sluice_ring_producer_set_eventfd(&S->comp[c], f->client_efds[c]);
	}
	if (rc != 0)
		fail_start(S, rc, "supervisor: rings: %s", sluice_strerror(rc));
	/* Before any fork: every worker closes the listener (a worker must
	 * not hold the name's lock or the socket). */
	char msg[200];
	if (f->listed && (rc = sluice__clients_listen(&S->clients, S->epfd, TAG_CLIENTS, msg,
						       sizeof(msg))) != 0)
		fail_start(S, rc, "flow '%s': the control socket: %s", f->name, msg);
}

/* Is slot w one of those forked at start (not a spare)? */
static bool initial_slot(const sluice_flow_t *f, uint32_t w)
{
	return f->wslots[w].index < f->steps[worker_step(f, w)].nprocs;
}

static void fork_workers(struct sup *S)
{
	sluice_flow_t *f = S->f;
	for (uint32_t w = 0; w < f->nworkers; w++) {
		if (!initial_slot(f, w))
			continue;
		const struct sluice__step *st = &f->steps[worker_step(f, w)];
		uint32_t idx = w - st->first_worker;
		int rc = fork_slot(S, w);
		if (rc != 0)
			fail_start(S, rc, "step '%s' worker %u: fork: %s", st->name, idx,
				   sluice_strerror(rc));
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
		uint32_t ready = 0, want = 0;
		for (uint32_t w = 0; w < f->nworkers; w++) {
			if (!initial_slot(f, w))
				continue;
			want++;
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
			if (S->sstate[w] != SLOT_LIVE) {
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
		if (ready == want)
			return;
		uint64_t now = sluice__now_ns();
		if (now >= deadline) {
			for (uint32_t w = 0; w < f->nworkers; w++) {
				/* Acquire: as above, the worker's release store. */
				if (!initial_slot(f, w) ||
				    sl_load_acquire(&f->wslots[w].state) == SLUICE__WS_READY)
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
				uint32_t w = (uint32_t)tag - TAG_WORKER;
				if (w < f->nworkers && S->sstate[w] == SLOT_LIVE && exited(S, w))
					(void)reap(S, w, &si);
				/* Looked at on the next pass: FAILED first, else died. */
			}
		}
	}
}

/* ---- deaths, restarts, failed steps ------------------------------------------------------- */

static void note_death(struct death_log *D, uint64_t now)
{
	D->at[D->next] = now;
	D->next = (D->next + 1) % D->cap;
	if (D->n < D->cap)
		D->n++;
}

static uint32_t deaths_within(const struct death_log *D, uint64_t now, uint64_t window)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < D->n; i++)
		if (now - D->at[i] <= window)
			k++;
	return k;
}

/* restart_delay doubled k - 1 times, up to the maximum. */
static uint64_t backoff(const struct sluice__step *st, uint32_t k)
{
	uint64_t d = st->restart_delay_ns;
	for (uint32_t i = 1; i < k && d < st->restart_max_delay_ns; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	return d < st->restart_max_delay_ns ? d : st->restart_max_delay_ns;
}

/* The step's workers die too often: no more restarts, its live workers
 * are killed (their tasks end STEP_FAILED as their deaths come in), and
 * what is queued for it fails (fail_dead_steps, every tick). */
static void fail_step(struct sup *S, uint32_t s, uint32_t deaths)
{
	sluice_flow_t *f = S->f;
	const struct sluice__step *st = &f->steps[s];
	S->step_failed[s] = true;
	S->any_failed = true;
	/* Relaxed: a health counter, one writer. */
	sl_store_relaxed(&f->step_recs[s].failed, 1);
	fprintf(stderr,
		"sluice: flow '%s': step '%s' failed: %u worker deaths within %llu ms; its tasks fail\n",
		f->name, st->name, deaths, (unsigned long long)(st->fail_window_ns / MSEC));
	for (uint32_t k = 0; k < st->nslots; k++) {
		uint32_t w = st->first_worker + k;
		if (S->sstate[w] == SLOT_RESTART)
			S->sstate[w] = SLOT_IDLE;
		else if (S->sstate[w] == SLOT_LIVE) {
			if (S->kill_why[w] == SLUICE_KILL_NONE)
				S->kill_why[w] = SLUICE_KILL_STEP_FAILED;
			(void)pidfd_send_signal(S->pidfd[w], SIGKILL, NULL, 0);
		}
	}
}

/* The slot whose replacement w is, or -1. */
static int32_t replacement_of(const struct sup *S, uint32_t x)
{
	for (uint32_t y = 0; y < S->f->nworkers; y++)
		if (S->replaces[y] == (int32_t)x)
			return (int32_t)y;
	return -1;
}

/* Worker slot w's process is gone (reaped; `clean`: it exited with
 * EXITED and code 0). Recovers its tasks and decides what comes next. */
static void on_death(struct sup *S, uint32_t w, const siginfo_t *si, bool clean)
{
	sluice_flow_t *f = S->f;
	uint32_t s = worker_step(f, w);
	const struct sluice__step *st = &f->steps[s];
	struct sluice__step_rec *rec = &f->step_recs[s];
	char who[96], how[160], why[320];
	describe_worker(S, w, who, sizeof(who));
	describe_exit(si, how, sizeof(how));
	struct sluice__worker_slot *ws = &f->wslots[w];
	/* Acquire: pairs with the worker's release store of FAILED after its
	 * message. */
	if (sl_load_acquire(&ws->state) == SLUICE__WS_FAILED) {
		char msg[sizeof(ws->message)];
		memcpy(msg, ws->message, sizeof(msg));
		msg[sizeof(msg) - 1] = '\0';
		size_t l = strlen(how);
		snprintf(how + l, sizeof(how) - l, " (on_start failed: %.60s)", msg[0] ? msg : "no message");
	}
	if (S->kill_why[w] == SLUICE_KILL_HEARTBEAT)
		snprintf(why, sizeof(why), "%s was killed: no heartbeat for %llu ms in a handle() call",
			 who, (unsigned long long)(st->heartbeat_timeout_ns / MSEC));
	else if (S->hung[w])
		snprintf(why, sizeof(why), "%s was killed: a task in hand %llu ms past its timeout", who,
			 (unsigned long long)(st->hung_grace_ns / MSEC));
	else
		snprintf(why, sizeof(why), "%s %s", who, how);
	struct sluice__recovery R = {
		.f = f,
		.comp = S->comp,
		.run = S->phase == PH_RUNNING || S->phase == PH_DRAINING,
		.step_failed = S->step_failed[s],
		.hung = S->hung[w],
		.scan_held = true,
		.requeue = requeue_later,
		.arg = S,
		.why = why,
	};
	if (!R.run) {
		/* Stopping: what it held ends FLOW_STOPPED; what it took or
		 * moved on is left to the final sweep (its completions sent). */
		sluice__recover_worker(&R, w);
		if (!clean)
			fprintf(stderr, "sluice: flow '%s': %s during the stop\n", f->name, why);
		return;
	}
	uint64_t now = sluice__now_ns();
	/* Relaxed: we wrote it. */
	if (S->retire_seen[w] && sl_load_relaxed(&ws->retire_go) != 0) {
		/* Told to leave, its replacement serving in its place: never
		 * restarted. A clean exit left nothing but its lanes (recovery
		 * frees them); one killed on its way out may have held tasks. */
		R.scan_held = !clean;
		sluice__recover_worker(&R, w);
		S->retire_seen[w] = false;
		if (!clean) {
			/* Relaxed: health counters, one writer. */
			sl_fetch_add_relaxed(&rec->deaths, 1);
			note_death(&S->deaths[s], now);
			sl_fetch_add_relaxed(&rec->requeued, R.requeued + R.republished);
			sl_fetch_add_relaxed(&rec->retried, R.retried);
			sl_fetch_add_relaxed(&rec->worker_died, R.died);
			fprintf(stderr, "sluice: flow '%s': %s while retiring; it had been replaced\n",
				f->name, why);
			flush_pending(S);
		}
		return;
	}
	/* Relaxed: health counters, one writer. */
	sl_fetch_add_relaxed(&rec->deaths, 1);
	note_death(&S->deaths[s], now);
	sluice__recover_worker(&R, w);
	sl_fetch_add_relaxed(&rec->requeued, R.requeued + R.republished);
	sl_fetch_add_relaxed(&rec->retried, R.retried);
	sl_fetch_add_relaxed(&rec->worker_died, R.died);
	S->hung[w] = false;
	S->retire_seen[w] = false;
	char next[96] = "";
	uint32_t k = deaths_within(&S->deaths[s], now, st->fail_window_ns);
	int32_t y = replacement_of(S, w);
	if (S->step_failed[s]) {
		snprintf(next, sizeof(next), "; the step has failed");
	} else if (st->fail_deaths != SLUICE_STEP_NEVER_FAIL && k >= st->fail_deaths) {
		snprintf(next, sizeof(next), "; that is %u deaths within %llu ms", k,
			 (unsigned long long)(st->fail_window_ns / MSEC));
	} else if (y >= 0) {
		/* It was retiring and has a replacement: that one serves. */
		S->replaces[y] = -1;
		/* Relaxed: for observers. */
		sl_store_relaxed(&f->wslots[w].position, SLUICE__NO_POSITION);
		snprintf(next, sizeof(next), "; its replacement takes over");
	} else {
		uint64_t delay = backoff(st, k);
		S->restart_at[w] = sluice__deadline(now, delay);
		S->sstate[w] = SLOT_RESTART;
		snprintf(next, sizeof(next), "; restarting in %llu ms",
			 (unsigned long long)(delay / MSEC));
	}
	fprintf(stderr,
		"sluice: flow '%s': %s; its tasks: %u taken back, %u sent on, %u retried, %u ended%s\n",
		f->name, why, R.requeued, R.republished, R.retried, R.died, next);
	if (!S->step_failed[s] && st->fail_deaths != SLUICE_STEP_NEVER_FAIL && k >= st->fail_deaths)
		fail_step(S, s, k);
	flush_pending(S);
}

/* Forks the slots whose restart is due. Returns when the next one is. */
static uint64_t run_restarts(struct sup *S, uint64_t now)
{
	sluice_flow_t *f = S->f;
	uint64_t next = UINT64_MAX;
	for (uint32_t w = 0; w < f->nworkers; w++) {
		if (S->sstate[w] != SLOT_RESTART)
			continue;
		if (S->restart_at[w] > now) {
			if (S->restart_at[w] < next)
				next = S->restart_at[w];
			continue;
		}
		uint32_t s = worker_step(f, w);
		char who[96];
		int rc = fork_slot(S, w);
		describe_worker(S, w, who, sizeof(who));
		if (rc == 0) {
			/* Relaxed: a health counter, one writer. */
			sl_fetch_add_relaxed(&f->step_recs[s].restarts, 1);
			continue;
		}
		uint64_t delay = f->steps[s].restart_delay_ns;
		if (delay < FORK_RETRY_NS)
			delay = FORK_RETRY_NS;
		S->sstate[w] = SLOT_RESTART;
		S->restart_at[w] = sluice__deadline(now, delay);
		if (S->restart_at[w] < next)
			next = S->restart_at[w];
		fprintf(stderr, "sluice: flow '%s': %s: restart failed: %s; trying again in %llu ms\n",
			f->name, who, sluice_strerror(rc), (unsigned long long)(delay / MSEC));
	}
	return next;
}

/* The heartbeat part of check_hung for live worker w: kills it (and
 * returns true) when its call in hand has gone its step's heartbeat
 * timeout without a beat; else lowers *next to when that would be. */
static bool check_heartbeat(struct sup *S, uint32_t w, uint64_t now, uint64_t *next)
{
	sluice_flow_t *f = S->f;
	uint32_t s = worker_step(f, w);
	const struct sluice__step *st = &f->steps[s];
	uint64_t since, beat;
	if (!sluice__health_busy(&f->hworkers[w], &since, &beat)) {
		if (now + MSEC < *next)
			*next = now + MSEC; /* mid-write: look again soon */
		return false;
	}
	if (since == 0)
		return false; /* idle: not judged */
	uint64_t due = sluice__deadline(beat, st->heartbeat_timeout_ns);
	if (now < due) {
		if (due < *next)
			*next = due;
		return false;
	}
	char who[96];
	describe_worker(S, w, who, sizeof(who));
	fprintf(stderr,
		"sluice: flow '%s': %s hung: no heartbeat for %llu ms in a handle() call; killing it\n",
		f->name, who, (unsigned long long)((now - beat) / MSEC));
	S->hung[w] = true;
	S->kill_why[w] = SLUICE_KILL_HEARTBEAT;
	/* Relaxed: a health counter, one writer. */
	sl_fetch_add_relaxed(&f->step_recs[s].hung_kills, 1);
	(void)pidfd_send_signal(S->pidfd[w], SIGKILL, NULL, 0);
	return true;
}

/* Kills workers whose task is past its deadline plus the step's grace, or
 * whose handle() call has gone heartbeat_timeout_ns without a beat.
 * Returns when to look again: the next such moment, and no later than the
 * smallest grace or heartbeat timeout from now (a task taken or a call
 * begun after this look has a deadline or a beat after now, so it cannot
 * be due before that). */
static uint64_t check_hung(struct sup *S, uint64_t now)
{
	sluice_flow_t *f = S->f;
	uint64_t next = sluice__deadline(now, S->min_grace);
	for (uint32_t w = 0; w < f->nworkers; w++) {
		if (S->sstate[w] != SLOT_LIVE || S->hung[w])
			continue;
		uint32_t s = worker_step(f, w);
		const struct sluice__step *st = &f->steps[s];
		if (st->heartbeat_timeout_ns != 0 && check_heartbeat(S, w, now, &next))
			continue;
		if (st->task_timeout_ns == 0)
			continue;
		/* Relaxed: a snapshot of the worker's own word. */
		uint64_t d = sl_load_relaxed(&f->wslots[w].busy_deadline);
		if (d == 0)
			continue;
		uint64_t due = sluice__deadline(d, st->hung_grace_ns);
		if (now < due) {
			if (due < next)
				next = due;
			continue;
		}
		char who[96];
		describe_worker(S, w, who, sizeof(who));
		fprintf(stderr,
			"sluice: flow '%s': %s hung: a task in hand %llu ms past its deadline; killing it\n",
			f->name, who, (unsigned long long)((now - d) / MSEC));
		S->hung[w] = true;
		S->kill_why[w] = SLUICE_KILL_HUNG;
		/* Relaxed: a health counter, one writer. */
		sl_fetch_add_relaxed(&f->step_recs[s].hung_kills, 1);
		(void)pidfd_send_signal(S->pidfd[w], SIGKILL, NULL, 0);
	}
	return next;
}

/* Answers workers that ran max_tasks_per_worker tasks with a replacement
 * in a free slot of their step, and tells them to leave once the
 * replacement is ready. */
static void handle_retirements(struct sup *S)
{
	sluice_flow_t *f = S->f;
	for (uint32_t x = 0; x < f->nworkers; x++) {
		if (S->sstate[x] != SLOT_LIVE || S->retire_seen[x] || S->step_failed[worker_step(f, x)])
			continue;
		/* Acquire: pairs with the worker's release store of RETIRING. */
		if (sl_load_acquire(&f->wslots[x].state) != SLUICE__WS_RETIRING)
			continue;
		const struct sluice__step *st = &f->steps[worker_step(f, x)];
		int32_t y = -1;
		for (uint32_t k = 0; k < st->nslots && y < 0; k++) {
			uint32_t c = st->first_worker + k;
			if (c != x && S->sstate[c] == SLOT_IDLE && S->replaces[c] < 0 &&
			    replacement_of(S, c) < 0)
				y = (int32_t)c;
		}
		if (y < 0)
			continue; /* the spare is busy: it keeps serving, we look again later */
		struct sluice__worker_slot *xs = &f->wslots[x], *ys = &f->wslots[y];
		/* Relaxed: read by the replacement after fork, and by observers. */
		sl_store_relaxed(&ys->position, sl_load_relaxed(&xs->position));
		S->replaces[y] = (int32_t)x;
		S->retire_seen[x] = true;
		char who[96];
		describe_worker(S, x, who, sizeof(who));
		int rc = fork_slot(S, (uint32_t)y);
		if (rc != 0) {
			S->replaces[y] = -1;
			S->retire_seen[x] = false;
			sl_store_relaxed(&ys->position, SLUICE__NO_POSITION);
			fprintf(stderr, "sluice: flow '%s': %s retires: no replacement: %s\n", f->name,
				who, sluice_strerror(rc));
			continue;
		}
		fprintf(stderr, "sluice: flow '%s': %s ran %llu tasks; replacement pid %u starting\n",
			f->name, who, (unsigned long long)st->max_tasks_per_worker,
			sl_load_relaxed(&ys->pid));
	}
	for (uint32_t y = 0; y < f->nworkers; y++) {
		int32_t x = S->replaces[y];
		if (x < 0 || S->sstate[y] != SLOT_LIVE)
			continue;
		/* Acquire: pairs with the replacement's release store of READY. */
		if (sl_load_acquire(&f->wslots[y].state) != SLUICE__WS_READY)
			continue;
		S->replaces[y] = -1;
		/* Relaxed: for observers. */
		sl_store_relaxed(&f->wslots[x].position, SLUICE__NO_POSITION);
		/* Release: pairs with the retiring worker's acquire load of it. */
		sl_store_release(&f->wslots[x].retire_go, 1);
		sl_fetch_add_relaxed(&f->step_recs[worker_step(f, (uint32_t)y)].recycled, 1);
	}
}

/* Completes what is queued for failed steps. */
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
		snprintf(msg, sizeof(msg), "step '%s' failed: its workers kept dying", f->steps[s].name);
		(void)sluice__sweep(f, S->comp, s, false, SLUICE_TASK_STEP_FAILED, msg);
	}
}

/* Wakes the workers of every step that still has live ones and an empty
 * ring: one pill each. Never blocks. */
static void send_pills(struct sup *S)
{
	sluice_flow_t *f = S->f;
	sluice_desc_t pills[SLUICE_STEP_MAX_NPROCS + 1];
	for (uint32_t s = 0; s < f->nsteps; s++) {
		const struct sluice__step *st = &f->steps[s];
		unsigned live = 0;
		for (uint32_t k = 0; k < st->nslots; k++)
			live += S->sstate[st->first_worker + k] == SLOT_LIVE;
		if (live == 0 || sluice_ring_count(&S->rings[s]) != 0)
			continue;
		for (unsigned k = 0; k < live; k++)
			pills[k] = (sluice_desc_t){.slot = SLUICE__PILL_SLOT, .flags = SLUICE__DESC_PILL,
						   .result_block = SLUICE_BLOCK_NONE,
						   .payload_block = SLUICE_BLOCK_NONE};
		(void)sluice_ring_try_enqueue_bulk_mpmc(&S->pill[s][0], pills, live);
	}
}

static void begin_stopping(struct sup *S, bool timed_out, uint64_t *kill_deadline)
{
	sluice_flow_t *f = S->f;
	S->timed_out = timed_out;
	S->phase = PH_STOPPING;
	/* No more restarts or replacements. */
	for (uint32_t w = 0; w < f->nworkers; w++)
		if (S->sstate[w] == SLOT_RESTART)
			S->sstate[w] = SLOT_IDLE;
	/* Release: pairs with the workers' acquire load after each dequeue;
	 * the pills below wake the sleepers to look. */
	sl_store_release(&f->hdr->state, SLUICE__FS_STOPPING);
	sluice__futex_wake(&f->hdr->state);
	*kill_deadline = sluice__deadline(sluice__now_ns(), f->stop_grace_ns);
	send_pills(S);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static __attribute__((noreturn)) void sup_main(sluice_flow_t *f, pid_t client_pid)
{
	static struct sup S;
	S.f = f;
	S.self = getpid();
	S.client_pid = client_pid;
	S.epfd = -1;
	S.phase = PH_STARTING;
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
	/* Listening before RUNNING: once start returns, the port answers. */
	S.metrics = sluice__metrics_http_start(f, S.epfd, TAG_METRICS);

	/* Release: pairs with the client's acquire in start and submit. */
	sl_store_release(&f->hdr->state, SLUICE__FS_RUNNING);
	sluice__futex_wake(&f->hdr->state);
	S.phase = PH_RUNNING;
	S.next_hung_check = sluice__deadline(sluice__now_ns(), S.min_grace);

	uint64_t drain_deadline = 0, kill_deadline = 0;
	struct epoll_event evs[16];
	for (;;) {
		uint64_t now = sluice__now_ns();
		int timeout_ms = -1;
		if (S.phase == PH_RUNNING) {
			/* Acquire: pairs with the client's release CAS to DRAINING
			 * after it wrote the stop deadline. */
			if (sl_load_acquire(&f->hdr->state) == SLUICE__FS_DRAINING) {
				drain_deadline = sl_load_relaxed(&f->hdr->stop_deadline_ns);
				S.phase = PH_DRAINING;
				continue;
			}
		}
		if (S.phase == PH_RUNNING || S.phase == PH_DRAINING) {
			uint64_t next = UINT64_MAX;
			if (S.any_failed) {
				fail_dead_steps(&S);
				next = now + 10 * MSEC;
			}
			handle_retirements(&S);
			next = min_u64(next, run_restarts(&S, now));
			if (S.any_timeout) {
				if (now >= S.next_hung_check)
					S.next_hung_check = check_hung(&S, now);
				next = min_u64(next, S.next_hung_check);
			}
			flush_pending(&S);
			if (S.npend > 0)
				next = min_u64(next, now + MSEC);
			sluice__clients_tick(&S.clients, S.phase == PH_RUNNING);
			next = min_u64(next, sluice__clients_next(&S.clients, now));
			if (S.phase == PH_DRAINING) {
				if (!in_flight(f)) {
					begin_stopping(&S, false, &kill_deadline);
					continue;
				}
				if (now >= drain_deadline) {
					begin_stopping(&S, true, &kill_deadline);
					continue;
				}
				next = min_u64(next, min_u64(drain_deadline, now + MSEC));
			}
			if (next != UINT64_MAX)
				timeout_ms = ms_until(now, next, INT_MAX);
		} else {
			if (S.nlive == 0)
				break;
			if (now >= kill_deadline) {
				kill_and_reap_all(&S, true);
				break;
			}
			send_pills(&S);
			timeout_ms = ms_until(now, kill_deadline, 10);
		}
		timeout_ms = sluice__metrics_http_timeout(S.metrics, timeout_ms);
		int n = epoll_wait(S.epfd, evs, 16, timeout_ms);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_DOORBELL) {
				drain_doorbell(f);
			} else if (tag == TAG_METRICS) {
				sluice__metrics_http_ready(S.metrics);
			} else if (tag == TAG_CLIENT) {
				/* The client is gone: nobody to serve. Stop now. */
				epoll_ctl(S.epfd, EPOLL_CTL_DEL, S.client_pidfd, NULL);
				if (S.phase != PH_STOPPING)
					begin_stopping(&S, true, &kill_deadline);
			} else if (tag & TAG_CLIENTS) {
				sluice__clients_event(&S.clients, tag & ~TAG_CLIENTS,
						      S.phase == PH_RUNNING);
			} else {
				uint32_t w = (uint32_t)tag - TAG_WORKER;
				siginfo_t si;
				/* Relaxed: we write it. */
				if (w >= f->nworkers || S.sstate[w] != SLOT_LIVE ||
				    (tag >> 32) != (uint32_t)sl_load_relaxed(&f->wslots[w].incarnation) ||
				    !exited(&S, w))
					continue; /* an earlier process's, or spurious */
				bool clean = reap(&S, w, &si);
				on_death(&S, w, &si, clean);
			}
		}
	}

	/* Every worker is reaped: nobody else moves entries but the client,
	 * which only touches its CLIENT and DONE ones. What is still queued or
	 * held completes as stopped (a held one settled first); every worker
	 * id's blocks go back. */
	uint32_t swept = sluice__sweep(f, S.comp, SWEEP_ALL_QUEUED, true, SLUICE_TASK_FLOW_STOPPED,
				       "the flow stopped before the task finished");
	for (uint32_t w = 0; w < f->nworkers; w++)
		(void)sluice_blocks_reclaim(&f->blocks, SLUICE__OWNER_WORKER(w));
	sluice__clients_fini(&S.clients);
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
 * still in flight, here: completions the workers recorded but did not
 * send are sent, what is queued or held ends FLOW_STOPPED, the workers'
 * blocks go back. Returns true when every worker was seen gone (the arena
 * is then quiescent but for us). */
static bool clean_up_after_supervisor(sluice_flow_t *f)
{
	bool all_gone = true;
	for (uint32_t w = 0; w < f->nworkers; w++) {
		struct sluice__worker_slot *ws = &f->wslots[w];
		/* Acquire: pairs with the supervisor's release stores of it. */
		uint32_t pid = sl_load_acquire(&ws->live_pid);
		if (pid == 0)
			continue;
		int pfd = pidfd_open((pid_t)pid, 0);
		if (pfd < 0)
			continue; /* gone */
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			all_gone = false;
		close(pfd);
	}
	/* comp_self is client 0's lane on its own completion ring: the only
	 * client of this slice, so the only one completions go to. */
	struct sluice__recovery R = {
		.f = f,
		.comp = &f->comp_self,
		.run = false,
		.scan_held = false, /* the sweep below settles every HELD entry */
		.why = "the flow's supervisor died",
	};
	for (uint32_t w = 0; w < f->nworkers; w++)
		sluice__recover_worker(&R, w);
	(void)sluice__sweep(f, &f->comp_self, SWEEP_ALL_QUEUED, true, SLUICE_TASK_FLOW_STOPPED,
			    "the flow's supervisor died");
	return all_gone;
}

/* Once no other process of the flow runs: gives back blocks a process
 * killed inside the allocator left neither free nor owned (one block or a
 * cache batch per death). The client's thread, which is the only one
 * using the flow now. */
static void audit_blocks(sluice_flow_t *f)
{
	int64_t leaked = sluice_blocks_audit(&f->blocks);
	if (leaked > 0)
		sl_fetch_add_relaxed(&f->hdr->leaked_blocks, (uint64_t)leaked);
}

bool sluice__supervisor_gone(sluice_flow_t *f)
{
	if (f->sup_died)
		return true;
	if (!f->started || f->sup_reaped || f->sup_pidfd < 0)
		return false;
	struct pollfd p = {.fd = f->sup_pidfd, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (!f->attached) /* an attached client's supervisor is not its child */
		reap_supervisor(f, 0);
	/* Acquire: pairs with its release store of STOPPED, its last word
	 * when it stops cleanly. */
	if (sl_load_acquire(&f->hdr->state) != SLUICE__FS_STOPPED)
		f->sup_died = true;
	return f->sup_died;
}

int sluice_flow_start(sluice_flow_t *f, uint64_t timeout_ns)
{
	if (f == NULL)
		return SLUICE_EINVAL;
	if (f->started) {
		sluice__seterr(f, f->attached ? "an attached flow is started by its creator"
					      : "the flow was already started");
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
		(void)clean_up_after_supervisor(f);
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
			(void)clean_up_after_supervisor(f);
			sluice__seterr(f, "the supervisor died during start");
			return SLUICE_ESUPERVISOR;
		}
		now = sluice__now_ns();
		if (now >= client_deadline) {
			reap_supervisor(f, 0); /* kills it */
			(void)clean_up_after_supervisor(f);
			sluice__seterr(f, "the supervisor did not report within the start timeout");
			return SLUICE_ETIMEDOUT;
		}
		uint64_t slice = client_deadline - now;
		if (slice > UINT64_C(50000000))
			slice = UINT64_C(50000000);
		(void)sluice__futex_wait(&f->hdr->state, st, slice);
	}
}

/* The supervisor died: complete what is in flight here, once. */
static int stop_after_supervisor(sluice_flow_t *f)
{
	if (!f->sup_cleaned) {
		f->sup_cleaned = true;
		bool quiet = clean_up_after_supervisor(f);
		sluice__client_drain(f);
		if (quiet)
			audit_blocks(f);
		/* Release: the sweep's writes before the state, for observers;
		 * the flow's other processes are gone. */
		sl_store_release(&f->hdr->state, SLUICE__FS_STOPPED);
	}
	sluice__seterr(f, "the supervisor died before the flow stopped");
	return SLUICE_ESUPERVISOR;
}

int sluice_flow_stop(sluice_flow_t *f, uint64_t timeout_ns)
{
	if (f == NULL)
		return SLUICE_EINVAL;
	if (f->attached) {
		sluice__seterr(f, "only the process that created the flow stops it");
		return SLUICE_EPERM;
	}
	if (!f->started)
		return 0;
	f->err[0] = '\0';
	if (sluice__supervisor_gone(f))
		return stop_after_supervisor(f);
	if (f->sup_reaped)
		return 0;
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
	if (sl_load_acquire(&f->hdr->state) == SLUICE__FS_STOPPED) {
		/* Every completion is on our ring: take them, so that tasks
		 * released while in flight are freed now. Then, the supervisor
		 * having reaped every worker before it said STOPPED, look for
		 * blocks a death left neither free nor owned. */
		sluice__client_drain(f);
		audit_blocks(f);
		return sl_load_relaxed(&f->hdr->result);
	}
	f->sup_died = true;
	return stop_after_supervisor(f);
}
