/* The flow benchmark: sluice flows of no-op steps, driven through the
 * public flow API (sluice/flow.h) only, beside the same pipelines built
 * over Unix stream sockets between processes, and a bare futex hand-off
 * between two processes, all in the same run.
 *
 * What it measures:
 *   - round trip, steady load: one task in flight, the next submitted as
 *     soon as the last returns; submit -> wait returns, into a histogram
 *     (p50/p90/p99/p99.9/max). sluice 1-step flow in the default wait
 *     mode, and in busy-poll (the step's worker and the client both
 *     SLUICE_RING_BUSY_POLL); the 1-step socket pipeline (client -> step
 *     -> client, 64-byte messages); the bare futex hand-off, spinning
 *     50 us then sleeping (the default mode's floor), and the same
 *     hand-off busy-polling (the busy-poll mode's floor).
 *   - a lone task after idleness: after idle_s of nothing at all, one
 *     round trip; several samples, the median and quartiles, and the
 *     ratio pair by pair. sluice against the bare futex hand-off in the
 *     same state (the server asleep in FUTEX_WAIT, the client spinning
 *     50 us and then sleeping for the reply, as sluice's default wait
 *     does).
 *   - throughput: a 1-step flow with batch_size 1, 8 and 64 (batch_timeout
 *     0), WINDOW tasks in flight, submit_many in chunks of 64, reap; the
 *     socket pipeline's step reads up to 1, 8 or 64 messages per read()
 *     and writes them on in one write(), the client keeps the same
 *     window. Median of rounds.
 *   - payload sweep: 64 B .. 64 MiB through a 3-step no-op flow, one task
 *     at a time, the sizes taking turns task by task; time per task from
 *     alloc to release. The client writes the whole payload once
 *     (untimed; the allocator hands the same block back) and its first 64
 *     bytes per task; steps touch only the descriptor. The 3-step socket pipeline sends a 64-byte header and
 *     the payload through every hop, store and forward (as the Python
 *     ancestors pickle and send), from the first write to the last byte
 *     read.
 *
 * Wait mode: every sluice figure is the default (spin 50 us, giving the
 * CPU up now and then after 5 us, then sleep on a futex), except the
 * busy-poll round trip (sluice_step_t.wait and sluice_flow_opts_t.
 * client_wait = SLUICE_RING_BUSY_POLL). A busy-polling worker holds its
 * CPU even while idle, so that flow lives only for its phase of each
 * round (started and stopped there; the others live for the whole run),
 * and the busy-poll floor polls only during its own phase. Busy-pollers
 * (sluice's and the floor's) sched_yield every 64 empty polls.
 *
 * Placement: the client is pinned to the first allowed CPU; the worker of
 * a 1-step flow, the step process of a 1-step socket pipeline and the
 * futex server to the second. The three steps of the 3-step pipelines
 * (sluice and sockets alike) alternate: steps 0 and 2 on the second CPU,
 * step 1 on the first, beside the client (--pin3 to change). Four
 * processes on two CPUs: left to the scheduler ("free") the 3-step flow's
 * time per task moves with where the scheduler puts them, which can drown
 * any payload effect; pinned, every size sees the same placement. Workers
 * pin themselves in their step's on_start.
 *
 * Rounds are outermost (round 1 of everything, then round 2, ...; odd
 * rounds in reverse order), every flow and socket pipeline lives for the
 * whole run, and idle ones sleep, so a change in the machine's state is
 * shared by the figures a ratio compares. Goals are printed as PASS/MISS,
 * for information: the exit code is 0 unless something failed (a task not
 * OK, a child crashed, a call failed).
 *
 * --tests picks some of the four (rtt, lone, tput, sweep): only the flows,
 * pipelines and processes they use are started. sluice-bench runs them as
 * its suites "latency" (rtt, lone), "throughput" (tput) and "sweep".
 *
 * usage: bench_flow [--quick] [--json FILE] [--markdown] [--rounds N]
 *                   [--idle-samples N] [--pin3 spread|free|second]
 *                   [--tests rtt,lone,tput,sweep] [--metrics FILE]
 *                   [--plot-dir DIR]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#include "base/atomic.h"
#include "bench/common/clock.h"
#include "bench/common/cpu.h"
#include "bench/common/hist.h"
#include "bench/common/json.h"
#include "bench/common/metrics.h"
#include "bench/common/proc.h"
#include "bench/common/table.h"

#define MSG 64u                 /* bytes per message / small payload */
#define WINDOW 1024u            /* tasks in flight in the throughput tests */
#define CHUNK 64u               /* submit_many / write chunk, reap chunk */
#define SPIN_NS 50000u          /* sluice's default spin, used by the futex baseline */
#define BUSY_YIELD_EVERY 64u    /* as SLUICE_RING_BUSY_POLL (queues/ring.c) */
#define SPIN_YIELD_AFTER_NS 5000u /* as SPIN_SLEEP: yield every 32 polls after 5 us */
#define MAX_ROUNDS 64u
#define MAX_IDLE 256u
#define NBATCH 3
#define NSIZES 6
#define MAX_PAYLOAD (64u << 20)
#define SEC UINT64_C(1000000000)

static const unsigned batches[NBATCH] = {1, 8, 64};
static const uint64_t sizes[NSIZES] = {64, 4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20};
static const char *const size_names[NSIZES] = {"64 B", "4 KiB", "64 KiB", "1 MiB", "16 MiB",
					       "64 MiB"};

enum pin3 { PIN3_SPREAD, PIN3_FREE, PIN3_SECOND }; /* the first is the default */

/* The tests (--tests). */
enum { T_RTT = 1u << 0, T_LONE = 1u << 1, T_TPUT = 1u << 2, T_SWEEP = 1u << 3, T_ALL = 0xf };
static const char *const test_names[4] = {"rtt", "lone", "tput", "sweep"}; /* bit order */

struct cfg {
	bool quick, markdown;
	unsigned tests;                /* T_* */
	const char *json, *metrics;
	unsigned rounds;
	unsigned idle_per_round;
	uint64_t idle_ns;
	uint64_t tput_ns, warm_ns;     /* per throughput round */
	unsigned rtt_iters, rtt_sock_iters;
	unsigned sweep_iters;          /* sluice, per size per round */
	unsigned sweep_sock_iters[NSIZES];
	enum pin3 pin3;
	int cpu[2];
	char command[512];
};

static struct cfg C;
static cpu_set_t allowed; /* this process's CPUs at start: "free" placement */

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_flow: %s: %s\n", what, rc < 0 ? sluice_strerror(rc) : "failed");
	return -1;
}

/* ---- placement --------------------------------------------------------------- */

/* Pins the calling process to `cpu`, or lets it run on every CPU allowed
 * at start (cpu < 0). */
static int place(int cpu)
{
	if (cpu >= 0)
		return bench_pin_cpu(cpu);
	return sched_setaffinity(0, sizeof(allowed), &allowed) == 0 ? 0 : -errno;
}

/* A step's on_start: place the worker (arg: the CPU, as an int). */
static int place_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t msglen)
{
	int cpu = *(const int *)arg;
	int rc = place(cpu);
	if (rc != 0)
		snprintf(msg, msglen, "cannot place worker on cpu %d: %s", cpu, strerror(-rc));
	return rc;
}

static int noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

/* CPU of step k of an n-step pipeline (-1: free). */
static int step_cpu(unsigned nsteps, unsigned k)
{
	if (nsteps == 1)
		return C.cpu[1];
	switch (C.pin3) {
	case PIN3_SPREAD: return C.cpu[k % 2 == 0 ? 1 : 0];
	case PIN3_SECOND: return C.cpu[1];
	default: return -1;
	}
}

/* ---- sluice flows -------------------------------------------------------------- */

struct sflow {
	sluice_flow_t *f;
	unsigned nsteps, batch;
	int cpus[3];
};

static int sflow_start(struct sflow *s, unsigned nsteps, unsigned batch, uint64_t budget,
		       uint32_t max_tasks, uint32_t wait)
{
	sluice_step_t steps[3];
	static const char *const names[3] = {"noop0", "noop1", "noop2"};
	s->nsteps = nsteps;
	s->batch = batch;
	for (unsigned k = 0; k < nsteps; k++) {
		s->cpus[k] = step_cpu(nsteps, k);
		steps[k] = (sluice_step_t){
			.size_of = sizeof(sluice_step_t),
			.name = names[k],
			.handler = {.on_start = place_start, .handle = noop, .arg = &s->cpus[k]},
			.nprocs = 1,
			.batch_size = batch,
			.batch_timeout_ns = 0,
			.capacity = 2 * WINDOW, /* the client's whole window fits its lane */
			.wait = wait,
		};
	}
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = "bench-flow", .flags = SLUICE_FLOW_UNLISTED, .nsteps = nsteps,
				.steps = steps, .max_tasks = max_tasks, .block_budget = budget,
				.client_wait = wait};
	char err[256];
	int rc = sluice_flow_create(&o, &s->f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "bench_flow: create: %s: %s\n", sluice_err_name(rc), err);
		return -1;
	}
	rc = sluice_flow_start(s->f, 30 * SEC);
	if (rc != 0) {
		fprintf(stderr, "bench_flow: start: %s: %s\n", sluice_err_name(rc),
			sluice_flow_error(s->f));
		sluice_flow_destroy(s->f);
		s->f = NULL;
		return -1;
	}
	return 0;
}

static void sflow_stop(struct sflow *s)
{
	if (s->f == NULL)
		return;
	int rc = sluice_flow_stop(s->f, 10 * SEC);
	if (rc != 0)
		fail("stop", rc);
	sluice_flow_destroy(s->f);
	s->f = NULL;
}

/* Allocates a task with a payload of `size` bytes whose first 64 bytes the
 * client writes (the rest was written once, earlier, or is not looked at). */
static int stask(struct sflow *s, uint64_t size, uint64_t seq, sluice_task_t **out)
{
	sluice_task_t *t;
	int rc = sluice_task_alloc(s->f, size, &t);
	if (rc != 0)
		return rc;
	uint8_t hdr[MSG] = {0};
	memcpy(hdr, &seq, sizeof(seq));
	memcpy(t->payload, hdr, size < MSG ? size : MSG);
	t->payload_len = size;
	t->user = seq;
	*out = t;
	return 0;
}

static int sdone(struct sflow *s, sluice_task_t *t)
{
	if (t->status != SLUICE_TASK_OK) {
		fprintf(stderr, "bench_flow: task %" PRIu64 ": %s: %s\n", t->user,
			sluice_task_status_name(t->status), t->message);
		return -1;
	}
	int rc = sluice_task_release(s->f, t);
	return rc == 0 ? 0 : fail("release", rc);
}

/* One round trip: submit -> wait. Returns ns, or 0 on failure. */
static uint64_t s_rtt1(struct sflow *s, uint64_t size, uint64_t seq)
{
	sluice_task_t *t;
	int rc = stask(s, size, seq, &t);
	if (rc != 0)
		return fail("alloc", rc), 0;
	uint64_t t0 = bench_now_ns();
	rc = sluice_task_submit(s->f, t, SLUICE_FLOW_FOREVER);
	if (rc == 0)
		rc = sluice_task_wait(s->f, t, 10 * SEC);
	uint64_t t1 = bench_now_ns();
	if (rc != 0)
		return fail("submit/wait", rc), 0;
	if (sdone(s, t) != 0)
		return 0;
	return t1 - t0 ? t1 - t0 : 1;
}

static int s_rtt(struct sflow *s, unsigned iters, struct bench_hist *h)
{
	for (unsigned i = 0; i < iters / 10 + 1; i++) /* warm-up */
		if (s_rtt1(s, MSG, i) == 0)
			return -1;
	for (unsigned i = 0; i < iters; i++) {
		uint64_t ns = s_rtt1(s, MSG, i);
		if (ns == 0)
			return -1;
		bench_hist_record(h, ns);
	}
	return 0;
}

/* Streams tasks through s with WINDOW in flight for warm + run ns; returns
 * tasks/s over the run, or a negative value on failure. */
static double s_tput(struct sflow *s)
{
	sluice_task_t *b[CHUNK];
	uint64_t inflight = 0, done = 0, seq = 0, done0 = 0;
	/* The measured window opens at the first look past the warm-up and
	 * lasts tput_ns from there, however late that look came. */
	uint64_t start = bench_now_ns(), t_meas = start + C.warm_ns, t_end = UINT64_MAX;
	uint64_t now = start, t0 = 0;
	bool measuring = false;
	while (now < t_end) {
		while (inflight < WINDOW) {
			unsigned m = WINDOW - inflight < CHUNK ? (unsigned)(WINDOW - inflight) : CHUNK;
			for (unsigned j = 0; j < m; j++) {
				int rc = stask(s, MSG, seq++, &b[j]);
				if (rc != 0)
					return fail("alloc", rc), -1;
			}
			int k = sluice_task_submit_many(s->f, b, m, SLUICE_FLOW_FOREVER);
			if (k != (int)m)
				return fail("submit_many", k < 0 ? k : SLUICE_ETIMEDOUT), -1;
			inflight += m;
		}
		int k = sluice_flow_reap(s->f, b, CHUNK);
		for (int j = 0; j < k; j++)
			if (sdone(s, b[j]) != 0)
				return -1;
		inflight -= (unsigned)k;
		done += (unsigned)k;
		now = bench_now_ns();
		if (!measuring && now >= t_meas) {
			measuring = true;
			t0 = now;
			t_end = now + C.tput_ns;
			done0 = done;
		}
	}
	double rate = (double)(done - done0) / ((double)(now - t0) / 1e9);
	while (inflight > 0) { /* drain */
		int k = sluice_flow_reap(s->f, b, CHUNK);
		for (int j = 0; j < k; j++)
			if (sdone(s, b[j]) != 0)
				return -1;
		inflight -= (unsigned)k;
		if (k == 0 && bench_now_ns() > t_end + 10 * SEC)
			return fail("drain: tasks lost", 0), -1;
	}
	return rate;
}

static struct bench_hist h_sw_s[NSIZES]; /* the sweep's, per size */

/* One task of `size` bytes through s, alloc to release; the client writes
 * the payload's first 64 bytes. Returns ns, or 0 on failure. */
static uint64_t s_sweep1(struct sflow *s, uint64_t size, uint64_t seq)
{
	uint64_t t0 = bench_now_ns();
	sluice_task_t *t;
	int rc = stask(s, size, seq, &t);
	if (rc != 0)
		return fail("alloc (sweep)", rc), 0;
	rc = sluice_task_submit(s->f, t, SLUICE_FLOW_FOREVER);
	if (rc == 0)
		rc = sluice_task_wait(s->f, t, 10 * SEC);
	if (rc != 0)
		return fail("submit/wait (sweep)", rc), 0;
	if (sdone(s, t) != 0)
		return 0;
	uint64_t t1 = bench_now_ns();
	return t1 - t0 ? t1 - t0 : 1;
}

/* Time per task for every payload size, the sizes taking turns task by
 * task (64 B, 4 KiB, ... 64 MiB, 64 B, ...), so that each size sees the
 * same state of the machine: on 2 CPUs the 3-step flow's time per task
 * moves between runs with where the scheduler puts its four processes,
 * far more than any payload effect. Each size's block is written whole
 * once, by a warm-up task; the allocator hands the same block back (its
 * free lists are stacks), and measured tasks write 64 bytes of it. */
static int s_sweep(struct sflow *s, unsigned iters, unsigned r)
{
	for (unsigned k = 0; k < NSIZES; k++) {
		sluice_task_t *t;
		int rc = sluice_task_alloc(s->f, sizes[k], &t);
		if (rc != 0)
			return fail("alloc (sweep)", rc);
		memset(t->payload, (int)(0x5a + r), sizes[k]);
		t->payload_len = sizes[k];
		rc = sluice_task_submit(s->f, t, SLUICE_FLOW_FOREVER);
		if (rc == 0)
			rc = sluice_task_wait(s->f, t, 10 * SEC);
		if (rc != 0)
			return fail("submit/wait (sweep)", rc);
		if (sdone(s, t) != 0)
			return -1;
	}
	for (unsigned i = 0; i < iters; i++) {
		for (unsigned k = 0; k < NSIZES; k++) {
			unsigned z = (i + k) % NSIZES;
			uint64_t ns = s_sweep1(s, sizes[z], i);
			if (ns == 0)
				return -1;
			bench_hist_record(&h_sw_s[z], ns);
		}
	}
	return 0;
}

/* ---- the bare futex hand-off ---------------------------------------------------- *
 *
 * Two words in a shared mapping, request and reply, each a counter with one
 * waiter. A waiter spins SPIN_NS (as sluice's default wait), then announces
 * itself in `sleeping` and sleeps in FUTEX_WAIT; a publisher wakes only
 * when the flag is set. Only the waiter writes its flag (set before each
 * sleep, cleared once it has seen the word move): a waker that cleared it
 * could do so after the waiter set it again, losing that wake-up. Like
 * sluice's spin (queues/ring.c, runtime/client.c), the spin gives the CPU
 * up every 32 polls once it has lasted 5 us.
 *
 * In busy mode (fx->busy, set by the client for its busy-poll phase) a
 * waiter polls and never sleeps, with sched_yield every BUSY_YIELD_EVERY
 * polls, as sluice's SLUICE_RING_BUSY_POLL does. */

struct fx_word {
	_Atomic uint32_t seq;
	_Atomic uint32_t sleeping;
	char pad[56];
};

struct fx_shm {
	struct fx_word req, rep;
	_Atomic uint32_t busy; /* 1: waiters poll without sleeping */
};

#define FX_STOP UINT32_MAX

static struct fx_shm *fx;

/* Waits until w->seq != old: spins for up to spin_ns, then sleeps; in
 * busy mode polls. */
static void fx_wait(struct fx_word *w, uint32_t old)
{
	/* Relaxed: the mode changes only between round trips; a side that
	 * sees the change one round trip late waits that one the old way. */
	if (sl_load_relaxed(&fx->busy)) {
		for (unsigned i = 1;; i++) {
			/* Acquire: pairs with the release in fx_publish(). */
			if (sl_load_acquire(&w->seq) != old)
				return;
			if (i % BUSY_YIELD_EVERY == 0)
				sched_yield();
			else
				sl_cpu_relax();
		}
	}
	uint64_t start = 0;
	for (unsigned i = 1;; i++) {
		/* Acquire: pairs with the release in fx_publish(). */
		if (sl_load_acquire(&w->seq) != old)
			return;
		sl_cpu_relax();
		if ((i & 31) == 0) {
			uint64_t now = bench_now_ns();
			if (start == 0)
				start = now;
			else if (now - start >= SPIN_NS)
				break;
			else if (now - start >= SPIN_YIELD_AFTER_NS)
				sched_yield(); /* as sluice's spin does */
		}
	}
	sl_store_relaxed(&w->sleeping, 1);
	for (;;) {
		/* Full fence between announcing the sleep and re-reading seq;
		 * pairs with the fence in fx_publish() between its store of seq
		 * and its load of `sleeping` (one of the two sees the other's
		 * store, so no wake-up is lost). */
		sl_fence_seq_cst();
		/* Acquire: pairs with the release in fx_publish(). */
		if (sl_load_acquire(&w->seq) != old)
			break;
		(void)bench_futex_wait(&w->seq, old);
	}
	sl_store_relaxed(&w->sleeping, 0);
}

static void fx_publish(struct fx_word *w, uint32_t v)
{
	/* Release: nothing travels but the counter; pairs with the acquire
	 * loads in fx_wait(). */
	sl_store_release(&w->seq, v);
	/* Pairs with the fence in fx_wait(). */
	sl_fence_seq_cst();
	if (sl_load_relaxed(&w->sleeping))
		(void)bench_futex_wake(&w->seq, 1);
}

static int all_socks[64];
static int nsocks;

/* In a forked child: closes every socket of the run except keep_a/keep_b,
 * so that a closed end reaches its reader as EOF. */
static void close_others(int keep_a, int keep_b)
{
	for (int i = 0; i < nsocks; i++)
		if (all_socks[i] != keep_a && all_socks[i] != keep_b)
			close(all_socks[i]);
}

static int fx_server(void *arg)
{
	close_others(-1, -1);
	uint32_t seen = 0;
	for (;;) {
		fx_wait(&fx->req, seen);
		/* Acquire: pairs with the client's release in fx_publish(). */
		seen = sl_load_acquire(&fx->req.seq);
		if (seen == FX_STOP)
			return 0;
		fx_publish(&fx->rep, seen);
	}
}

static uint32_t fx_seq;

static uint64_t fx_rtt1(void)
{
	uint32_t v = ++fx_seq;
	uint64_t t0 = bench_now_ns();
	fx_publish(&fx->req, v);
	fx_wait(&fx->rep, v - 1);
	uint64_t t1 = bench_now_ns();
	return t1 - t0 ? t1 - t0 : 1;
}

static void fx_rtt(unsigned iters, struct bench_hist *h)
{
	for (unsigned i = 0; i < iters / 10 + 1; i++)
		(void)fx_rtt1();
	for (unsigned i = 0; i < iters; i++)
		bench_hist_record(h, fx_rtt1());
}

/* The same in busy mode; one more round trip at the end takes the server
 * back to sleeping waits. */
static void fx_rtt_busy(unsigned iters, struct bench_hist *h)
{
	sl_store_relaxed(&fx->busy, 1);
	fx_rtt(iters, h);
	sl_store_relaxed(&fx->busy, 0);
	(void)fx_rtt1();
}

/* ---- Unix stream socket pipelines ------------------------------------------------- *
 *
 * n steps: link[0] client -> step 0, link[k] step k-1 -> step k, link[n]
 * step n-1 -> client; each link a socketpair (SOCK_STREAM). A step in
 * message mode (batch 0) reads a 64-byte header naming the payload length,
 * then the payload, then writes both on (writev); in batch mode it reads up
 * to batch * 64 bytes per read() and writes what it got in one write().
 * The client closing link[0] ends every step in turn (EOF). */

struct hdr {
	uint64_t len;
	uint64_t seq;
	uint8_t pad[MSG - 16];
};
_Static_assert(sizeof(struct hdr) == MSG, "a message header is 64 bytes");

struct spipe {
	unsigned nsteps, batch;
	int to, from;   /* the client's ends */
	int link[4][2]; /* [k][0]: writer's end, [k][1]: reader's end */
	pid_t pids[3];
	int cpus[3];
};

struct sstep {
	int in, out;
	unsigned batch;
	size_t bufsize;
};

static struct sstep sstep_args[16];
static unsigned nsstep;

static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, (char *)p + got, n - got);
		if (k == 0)
			return got == 0 ? 0 : -EPIPE;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return 1;
}

static int write_full(int fd, const void *p, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t k = write(fd, (const char *)p + put, n - put);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		put += (size_t)k;
	}
	return 0;
}

static int writev2_full(int fd, const void *a, size_t na, const void *b, size_t nb)
{
	struct iovec iov[2] = {{(void *)a, na}, {(void *)b, nb}};
	int cnt = nb ? 2 : 1;
	struct iovec *v = iov;
	while (cnt > 0) {
		ssize_t k = writev(fd, v, cnt);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)k >= v->iov_len) {
			k -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + k;
			v->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int sstep_main(void *arg)
{
	struct sstep *s = arg;
	close_others(s->in, s->out);
	uint8_t *buf = malloc(s->bufsize);
	if (buf == NULL)
		return 1;
	memset(buf, 0, s->bufsize); /* touch: no page faults in the timed hops */
	int rc = 0;
	if (s->batch == 0) {
		struct hdr h;
		while ((rc = read_full(s->in, &h, sizeof(h))) == 1) {
			if (h.len > s->bufsize) {
				rc = -EMSGSIZE;
				break;
			}
			if ((rc = read_full(s->in, buf, h.len)) != 1 && h.len > 0)
				break;
			if ((rc = writev2_full(s->out, &h, sizeof(h), buf, h.len)) != 0)
				break;
		}
	} else {
		for (;;) {
			ssize_t k = read(s->in, buf, (size_t)s->batch * MSG);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				rc = k < 0 ? -errno : 0;
				break;
			}
			if ((rc = write_full(s->out, buf, (size_t)k)) != 0)
				break;
		}
	}
	close(s->out);
	free(buf);
	if (rc < 0)
		fprintf(stderr, "bench_flow: socket step: %s\n", strerror(-rc));
	return rc < 0 ? 1 : 0;
}

/* Makes the sockets of an n-step pipeline (the processes come later, once
 * every socket of the run exists, so each child can close the others). */
static int spipe_make(struct spipe *p, unsigned nsteps, unsigned batch)
{
	p->nsteps = nsteps;
	p->batch = batch;
	for (unsigned k = 0; k <= nsteps; k++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->link[k]) != 0)
			return fail("socketpair", -errno);
		if (nsocks + 2 > (int)(sizeof(all_socks) / sizeof(all_socks[0])))
			return fail("too many sockets", 0);
		all_socks[nsocks++] = p->link[k][0];
		all_socks[nsocks++] = p->link[k][1];
	}
	p->to = p->link[0][0];
	p->from = p->link[nsteps][1];
	return 0;
}

static int spipe_spawn(struct spipe *p)
{
	for (unsigned k = 0; k < p->nsteps; k++) {
		struct sstep *s = &sstep_args[nsstep++];
		*s = (struct sstep){.in = p->link[k][1], .out = p->link[k + 1][0], .batch = p->batch,
				    .bufsize = p->batch ? (size_t)p->batch * MSG
							: (p->nsteps == 1 ? MSG : MAX_PAYLOAD)};
		p->cpus[k] = step_cpu(p->nsteps, k);
		/* bench_spawn pins to cpu >= 0; a free step widens itself. */
		pid_t pid = bench_spawn(p->cpus[k], sstep_main, s);
		if (pid < 0)
			return fail("fork", pid);
		p->pids[k] = pid;
	}
	return 0;
}

static int spipe_stop(struct spipe *p)
{
	close(p->to);
	char buf[4096];
	ssize_t k;
	while ((k = read(p->from, buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR))
		;
	return bench_wait_children("socket pipeline", p->pids, (int)p->nsteps,
				   bench_now_ns() + 10 * SEC);
}

static uint64_t u_rtt1(struct spipe *p, uint64_t seq)
{
	struct hdr h = {.len = 0, .seq = seq};
	uint64_t t0 = bench_now_ns();
	if (write_full(p->to, &h, sizeof(h)) != 0 || read_full(p->from, &h, sizeof(h)) != 1 ||
	    h.seq != seq)
		return fail("socket round trip", 0), 0;
	uint64_t t1 = bench_now_ns();
	return t1 - t0 ? t1 - t0 : 1;
}

static int u_rtt(struct spipe *p, unsigned iters, struct bench_hist *h)
{
	for (unsigned i = 0; i < iters / 10 + 1; i++)
		if (u_rtt1(p, i) == 0)
			return -1;
	for (unsigned i = 0; i < iters; i++) {
		uint64_t ns = u_rtt1(p, i);
		if (ns == 0)
			return -1;
		bench_hist_record(h, ns);
	}
	return 0;
}

static uint8_t *u_src, *u_dst; /* MAX_PAYLOAD each, written once */

/* One payload through the socket pipeline, header and bytes through every
 * hop; first write to last byte read. */
static int u_sweep(struct spipe *p, uint64_t size, unsigned iters, struct bench_hist *h)
{
	for (unsigned i = 0; i < iters + 1; i++) {
		struct hdr hd = {.len = size, .seq = i};
		uint64_t t0 = bench_now_ns();
		if (writev2_full(p->to, &hd, sizeof(hd), u_src, size) != 0 ||
		    read_full(p->from, &hd, sizeof(hd)) != 1 || hd.len != size || hd.seq != i ||
		    read_full(p->from, u_dst, size) != 1)
			return fail("socket sweep", 0);
		if (i > 0) /* the first is a warm-up */
			bench_hist_record(h, bench_now_ns() - t0);
	}
	return 0;
}

/* The socket pipeline's throughput with WINDOW messages in flight: the
 * client writes chunks of up to CHUNK messages, reads whatever came back,
 * and sleeps in poll only when it can do neither. */
static double u_tput(struct spipe *p)
{
	static uint8_t out[CHUNK * MSG], in[64 << 10];
	uint64_t sent = 0, got = 0, got0 = 0;
	uint64_t start = bench_now_ns(), t_meas = start + C.warm_ns, t_end = UINT64_MAX;
	uint64_t now = start, t0 = 0;
	bool measuring = false;
	int fl_to = fcntl(p->to, F_GETFL), fl_from = fcntl(p->from, F_GETFL);
	fcntl(p->to, F_SETFL, fl_to | O_NONBLOCK);
	fcntl(p->from, F_SETFL, fl_from | O_NONBLOCK);
	double rate = -1;
	for (bool ending = false;;) {
		bool progress = false;
		uint64_t room = (uint64_t)WINDOW * MSG - (sent - got);
		if (!ending && room > 0) {
			size_t n = room < sizeof(out) ? (size_t)room : sizeof(out);
			ssize_t k = write(p->to, out, n);
			if (k > 0) {
				sent += (uint64_t)k;
				progress = true;
			} else if (k < 0 && errno != EAGAIN && errno != EINTR) {
				fail("socket write", -errno);
				break;
			}
		}
		ssize_t k = read(p->from, in, sizeof(in));
		if (k > 0) {
			got += (uint64_t)k;
			progress = true;
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			fail("socket read", k == 0 ? -EPIPE : -errno);
			break;
		}
		now = bench_now_ns();
		if (!measuring && now >= t_meas) { /* as in s_tput */
			measuring = true;
			t0 = now;
			t_end = now + C.tput_ns;
			got0 = got;
		}
		if (!ending && now >= t_end) {
			ending = true;
			rate = (double)((got - got0) / MSG) / ((double)(now - t0) / 1e9);
		}
		if (ending && got == sent) {
			fcntl(p->to, F_SETFL, fl_to);
			fcntl(p->from, F_SETFL, fl_from);
			return rate;
		}
		if (!progress) {
			struct pollfd pf[2] = {{.fd = p->from, .events = POLLIN},
					       {.fd = p->to, .events = POLLOUT}};
			bool want_out = !ending && (uint64_t)WINDOW * MSG > sent - got;
			(void)poll(pf, want_out ? 2 : 1, 1000);
		}
		if (ending && now > t_end + 10 * SEC) {
			fail("socket drain: bytes lost", 0);
			break;
		}
	}
	return -1;
}

/* ---- results ---------------------------------------------------------------------- */

static struct sflow F1, Fb[NBATCH], F3;      /* F1: batch 1, for round trips and idle */
static struct sflow F1busy;                   /* busy-poll, only during its phase */
static struct spipe U1, Ub[NBATCH], U3;

static struct bench_hist h_rtt_s, h_rtt_u, h_rtt_fx, h_rtt_sbusy, h_rtt_fxbusy;
/* Round trips: each round's samples go to h_round first, then to the
 * total; the round's p50 is kept (the machine's state moves between
 * rounds: the spread of per-round ratios says how much that matters). */
enum rtt_id { RT_S, RT_FX, RT_SBUSY, RT_FXBUSY, RT_U, NRTT };
static const char *const rtt_names[NRTT] = {"sluice_1step", "futex_spin", "sluice_1step_busy_poll",
					    "busy_poll_handoff", "unix_1step"};
static struct bench_hist h_round;
static uint64_t rtt_p50[NRTT][MAX_ROUNDS];
static struct bench_hist h_sw_u[NSIZES];
static double tput_s[NBATCH][MAX_ROUNDS], tput_u[NBATCH][MAX_ROUNDS];
static uint64_t lone_s[MAX_IDLE], lone_fx[MAX_IDLE];
static unsigned nlone;
static unsigned rounds_done;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats_d(const double *v, unsigned n, double *med, double *mn, double *mx)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	*mn = n ? s[0] : 0;
	*mx = n ? s[n - 1] : 0;
	*med = n == 0 ? 0 : n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static uint64_t median_u64(const uint64_t *v, unsigned n)
{
	uint64_t s[MAX_IDLE];
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_u64);
	return n == 0 ? 0 : n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The q-quantile of v[0..n) (nearest rank), 0 when n is 0. */
static uint64_t quantile_u64(const uint64_t *v, unsigned n, double q)
{
	uint64_t s[MAX_IDLE];
	if (n == 0)
		return 0;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_u64);
	return s[(unsigned)((double)(n - 1) * q + 0.5)];
}

/* The q-quantile of the lone-task pairs' ratios sluice / futex (each pair
 * taken in one run_lone call, back to back). */
static double lone_ratio_q(double q)
{
	uint64_t r[MAX_IDLE];
	unsigned n = 0;
	for (unsigned i = 0; i < nlone; i++)
		if (lone_fx[i] > 0)
			r[n++] = lone_s[i] * 1000 / lone_fx[i];
	return (double)quantile_u64(r, n, q) / 1000.0;
}

/* ---- the phases --------------------------------------------------------------------- */

enum phase { PH_RTT_S, PH_RTT_FX, PH_RTT_BUSY_S, PH_RTT_BUSY_FX, PH_RTT_U, PH_TPUT_S,
	     PH_TPUT_U, PH_SWEEP_S, PH_SWEEP_U, NPHASES };

/* The busy-poll flow's round trips: started for the phase (its
 * supervisor forked with every allowed CPU, as the others were at start),
 * measured, stopped. */
static int s_rtt_busy(unsigned iters, struct bench_hist *h)
{
	if (place(-1) != 0)
		return fail("widen the client's CPUs", 0);
	int rc = sflow_start(&F1busy, 1, 1, 0, WINDOW, SLUICE_RING_BUSY_POLL);
	if (place(C.cpu[0]) != 0)
		rc = fail("pin the client", 0);
	if (rc == 0)
		rc = s_rtt(&F1busy, iters, h);
	sflow_stop(&F1busy);
	return rc;
}

static struct bench_hist *const rtt_total[NRTT] = {&h_rtt_s, &h_rtt_fx, &h_rtt_sbusy,
						   &h_rtt_fxbusy, &h_rtt_u};

/* Moves round r's samples (h_round) into round trip `id`'s total and keeps
 * their p50. Returns rc. */
static int rtt_round(int rc, enum rtt_id id, unsigned r)
{
	bench_hist_merge(rtt_total[id], &h_round);
	rtt_p50[id][r] = bench_hist_quantile(&h_round, 0.5);
	bench_hist_init(&h_round);
	return rc;
}

/* The per-round ratios rtt_p50[a] / rtt_p50[b]: median, min, max. */
static void rtt_round_ratio(enum rtt_id a, enum rtt_id b, double *med, double *mn, double *mx)
{
	double v[MAX_ROUNDS];
	unsigned n = 0;
	for (unsigned r = 0; r < rounds_done; r++)
		if (rtt_p50[b][r] > 0)
			v[n++] = (double)rtt_p50[a][r] / (double)rtt_p50[b][r];
	stats_d(v, n, med, mn, mx);
}

/* Whether phase ph belongs to a test that was asked for. */
static bool phase_on(enum phase ph)
{
	switch (ph) {
	case PH_RTT_S: case PH_RTT_FX: case PH_RTT_BUSY_S: case PH_RTT_BUSY_FX: case PH_RTT_U:
		return C.tests & T_RTT;
	case PH_TPUT_S: case PH_TPUT_U: return C.tests & T_TPUT;
	case PH_SWEEP_S: case PH_SWEEP_U: return C.tests & T_SWEEP;
	default: return false;
	}
}

static int run_phase(enum phase ph, unsigned r)
{
	if (!phase_on(ph))
		return 0;
	switch (ph) {
	case PH_RTT_S: return rtt_round(s_rtt(&F1, C.rtt_iters, &h_round), RT_S, r);
	case PH_RTT_FX: fx_rtt(C.rtt_iters, &h_round); return rtt_round(0, RT_FX, r);
	case PH_RTT_BUSY_S: return rtt_round(s_rtt_busy(C.rtt_iters, &h_round), RT_SBUSY, r);
	case PH_RTT_BUSY_FX: fx_rtt_busy(C.rtt_iters, &h_round); return rtt_round(0, RT_FXBUSY, r);
	case PH_RTT_U: return rtt_round(u_rtt(&U1, C.rtt_sock_iters, &h_round), RT_U, r);
	case PH_TPUT_S:
	case PH_TPUT_U:
		for (unsigned b = 0; b < NBATCH; b++) {
			double v = ph == PH_TPUT_S ? s_tput(&Fb[b]) : u_tput(&Ub[b]);
			if (v < 0)
				return -1;
			(ph == PH_TPUT_S ? tput_s : tput_u)[b][r] = v;
		}
		return 0;
	case PH_SWEEP_S: return s_sweep(&F3, C.sweep_iters, r);
	case PH_SWEEP_U:
		for (unsigned k = 0; k < NSIZES; k++) {
			unsigned i = r % 2 ? NSIZES - 1 - k : k;
			if (u_sweep(&U3, sizes[i], C.sweep_sock_iters[i], &h_sw_u[i]) != 0)
				return -1;
		}
		return 0;
	default: return -1;
	}
}

/* One lone round trip of sluice and one of the futex hand-off, each after
 * C.idle_ns of idleness; which goes first alternates. */
static int run_lone(void)
{
	if (nlone >= MAX_IDLE)
		return 0;
	uint64_t s = 0, x = 0;
	for (unsigned k = 0; k < 2; k++) {
		bench_sleep_ns(C.idle_ns);
		if ((k + nlone) % 2 == 0)
			s = s_rtt1(&F1, MSG, 1u << 30);
		else
			x = fx_rtt1();
	}
	if (s == 0)
		return -1;
	lone_s[nlone] = s;
	lone_fx[nlone] = x;
	nlone++;
	return 0;
}

/* ---- goals and report -------------------------------------------------------------------- */

struct goal {
	const char *what, *unit;
	double measured, target;
	bool at_most; /* measured <= target, else >= */
	bool has;
};

#define NGOALS 7
static struct goal goals[NGOALS];

static double tput_med(double (*v)[MAX_ROUNDS], unsigned b)
{
	double med, mn, mx;
	stats_d(v[b], rounds_done, &med, &mn, &mx);
	return med;
}

static void compute_goals(void)
{
	struct bench_pct rs, ru;
	bench_hist_summary(&h_rtt_s, &rs);
	bench_hist_summary(&h_rtt_u, &ru);
	double best = 0;
	for (unsigned b = 1; b < NBATCH; b++)
		if (tput_med(tput_s, b) > best)
			best = tput_med(tput_s, b);
	uint64_t ls = median_u64(lone_s, nlone), lf = median_u64(lone_fx, nlone);
	uint64_t sw_small = bench_hist_quantile(&h_sw_s[0], 0.5);
	uint64_t sw_big = bench_hist_quantile(&h_sw_s[NSIZES - 1], 0.5);
	bool tput = rounds_done > 0 && (C.tests & T_TPUT);
	goals[0] = (struct goal){"throughput with batching (best of batch 8, 64)", "tasks/s", best,
				 1e6, false, tput};
	goals[1] = (struct goal){"throughput without batching (batch 1)", "tasks/s",
				 tput_med(tput_s, 0), 3e5, false, tput};
	goals[2] = (struct goal){"steady round trip p50", "ns", (double)rs.p50, 1000, true,
				 rs.count > 0};
	goals[3] = (struct goal){"steady round trip p99", "ns", (double)rs.p99, 5000, true,
				 rs.count > 0};
	goals[4] = (struct goal){"Unix-socket pipeline p50 / sluice p50", "x",
				 rs.p50 ? (double)ru.p50 / (double)rs.p50 : 0, 40, false,
				 rs.count > 0 && ru.count > 0};
	goals[5] = (struct goal){"lone task after idleness / bare futex hand-off (medians)", "x",
				 lf ? (double)ls / (double)lf : 0, 1.2, true, nlone > 0};
	goals[6] = (struct goal){"3-step flow, 64 MiB payload / 64 B payload (p50)", "x",
				 sw_small ? (double)sw_big / (double)sw_small : 0, 1.10, true,
				 sw_small > 0};
}

static bool goal_met(const struct goal *g)
{
	return g->at_most ? g->measured <= g->target : g->measured >= g->target;
}


/* A round-trip row; the last column is its p50 over the p50 of `floor`
 * (the baseline of its wait mode, measured in the same run). */
static void rtt_row(struct bench_table *t, const char *name, const struct bench_hist *h,
		    const struct bench_hist *floor)
{
	struct bench_pct p;
	bench_hist_summary(h, &p);
	uint64_t f50 = bench_hist_quantile(floor, 0.5);
	char v[6][32], cnt[32];
	bench_fmt_ns(v[0], 32, p.p50);
	bench_fmt_ns(v[1], 32, p.p90);
	bench_fmt_ns(v[2], 32, p.p99);
	bench_fmt_ns(v[3], 32, p.p999);
	bench_fmt_ns(v[4], 32, p.max);
	double q = f50 ? (double)p.p50 / (double)f50 : 0;
	snprintf(v[5], 32, q < 10 ? "%.2f" : "%.0f", q);
	snprintf(cnt, sizeof(cnt), "%" PRIu64, p.count);
	bench_table_rowv(t, 8, name, cnt, v[0], v[1], v[2], v[3], v[4], v[5]);
}

static void print_report(void)
{
	void (*print)(const struct bench_table *, FILE *) =
		C.markdown ? bench_table_print_markdown : bench_table_print;

	struct bench_table *t;
	if (!(C.tests & T_RTT))
		goto lone;
	printf("\nRound trip under steady load (one task in flight; 64-byte payload):\n\n");
	static const char *const h1[] = {"pipeline", "samples", "p50", "p90", "p99",
					 "p99.9", "max", "p50 / floor"};
	t = bench_table_new(8, h1);
	rtt_row(t, "sluice 1-step flow, default wait (spin 50 us, then sleep)", &h_rtt_s,
		&h_rtt_fx);
	rtt_row(t, "bare futex hand-off, spin 50 us, then sleep (floor)", &h_rtt_fx, &h_rtt_fx);
	rtt_row(t, "sluice 1-step flow, busy-poll (worker and client)", &h_rtt_sbusy,
		&h_rtt_fxbusy);
	rtt_row(t, "bare hand-off, busy-poll (floor)", &h_rtt_fxbusy, &h_rtt_fxbusy);
	rtt_row(t, "Unix stream sockets, 1 step process", &h_rtt_u, &h_rtt_fx);
	print(t, stdout);
	bench_table_free(t);
	printf("\np50 of each round, in round order (ns):\n\n");
	for (unsigned id = 0; id < NRTT; id++) {
		printf("    %-24s", rtt_names[id]);
		for (unsigned r = 0; r < rounds_done; r++)
			printf(" %" PRIu64, rtt_p50[id][r]);
		printf("\n");
	}
	double med, mn, mx;
	rtt_round_ratio(RT_S, RT_FX, &med, &mn, &mx);
	printf("\nper round, sluice / floor p50: default %.2f (%.2f-%.2f)", med, mn, mx);
	rtt_round_ratio(RT_SBUSY, RT_FXBUSY, &med, &mn, &mx);
	printf(", busy-poll %.2f (%.2f-%.2f)", med, mn, mx);
	rtt_round_ratio(RT_U, RT_S, &med, &mn, &mx);
	printf("; sockets / sluice default %.0f (%.0f-%.0f)\n", med, mn, mx);

lone:
	if (nlone == 0)
		goto tput;
	printf("\nA lone task after %.1f s of idleness (%u samples each):\n\n",
	       (double)C.idle_ns / 1e9, nlone);
	static const char *const h2[] = {"pipeline", "median", "p25", "p75", "min", "max"};
	t = bench_table_new(6, h2);
	for (int which = 0; which < 2; which++) {
		const uint64_t *v = which ? lone_fx : lone_s;
		char a[5][32];
		bench_fmt_ns(a[0], 32, median_u64(v, nlone));
		bench_fmt_ns(a[1], 32, quantile_u64(v, nlone, 0.25));
		bench_fmt_ns(a[2], 32, quantile_u64(v, nlone, 0.75));
		bench_fmt_ns(a[3], 32, quantile_u64(v, nlone, 0));
		bench_fmt_ns(a[4], 32, quantile_u64(v, nlone, 1));
		bench_table_rowv(t, 6, which ? "bare futex hand-off (server asleep)" : "sluice 1-step flow", a[0],
		    a[1], a[2], a[3], a[4]);
	}
	print(t, stdout);
	bench_table_free(t);
	printf("\nsluice / futex, pair by pair: median %.2fx, p25 %.2fx, p75 %.2fx, min %.2fx, "
	       "max %.2fx\n", lone_ratio_q(0.5), lone_ratio_q(0.25), lone_ratio_q(0.75),
	       lone_ratio_q(0), lone_ratio_q(1));

tput:
	if (!(C.tests & T_TPUT))
		goto sweep;
	printf("\nThroughput, 1-step no-op flow, %u tasks in flight (tasks/s, median of %u rounds "
	       "of %.0f ms):\n\n", WINDOW, rounds_done, (double)C.tput_ns / 1e6);
	static const char *const h3[] = {"batch_size", "sluice", "min", "max", "Unix sockets",
					 "min", "max", "sluice / sockets"};
	t = bench_table_new(8, h3);
	for (unsigned b = 0; b < NBATCH; b++) {
		double sm, smn, smx, um, umn, umx;
		stats_d(tput_s[b], rounds_done, &sm, &smn, &smx);
		stats_d(tput_u[b], rounds_done, &um, &umn, &umx);
		char v[8][32];
		snprintf(v[0], 32, "%u", batches[b]);
		snprintf(v[1], 32, "%.0f", sm);
		snprintf(v[2], 32, "%.0f", smn);
		snprintf(v[3], 32, "%.0f", smx);
		snprintf(v[4], 32, "%.0f", um);
		snprintf(v[5], 32, "%.0f", umn);
		snprintf(v[6], 32, "%.0f", umx);
		snprintf(v[7], 32, "%.2f", um > 0 ? sm / um : 0);
		bench_table_rowv(t, 8, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
	}
	print(t, stdout);
	bench_table_free(t);

sweep:
	if (!(C.tests & T_SWEEP))
		goto goals;
	printf("\nPayload sweep, 3-step no-op pipeline, one task at a time (time per task):\n\n");
	static const char *const h4[] = {"payload", "sluice p50", "p99", "vs 64 B", "samples",
					 "Unix sockets p50", "p99", "samples", "sockets / sluice"};
	t = bench_table_new(9, h4);
	uint64_t base = bench_hist_quantile(&h_sw_s[0], 0.5);
	for (unsigned i = 0; i < NSIZES; i++) {
		struct bench_pct s, u;
		bench_hist_summary(&h_sw_s[i], &s);
		bench_hist_summary(&h_sw_u[i], &u);
		char v[9][32];
		snprintf(v[0], 32, "%s", size_names[i]);
		bench_fmt_ns(v[1], 32, s.p50);
		bench_fmt_ns(v[2], 32, s.p99);
		snprintf(v[3], 32, "%.2f", base ? (double)s.p50 / (double)base : 0);
		snprintf(v[4], 32, "%" PRIu64, s.count);
		bench_fmt_ns(v[5], 32, u.p50);
		bench_fmt_ns(v[6], 32, u.p99);
		snprintf(v[7], 32, "%" PRIu64, u.count);
		double q = s.p50 ? (double)u.p50 / (double)s.p50 : 0;
		snprintf(v[8], 32, q < 10 ? "%.2f" : "%.0f", q);
		bench_table_rowv(t, 9, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
	}
	print(t, stdout);
	bench_table_free(t);

goals:
	printf("\nGoals (informational; ratios are of this run's figures):\n\n");
	static const char *const h5[] = {"goal", "measured", "target", "verdict"};
	t = bench_table_new(4, h5);
	for (unsigned i = 0; i < NGOALS; i++) {
		const struct goal *g = &goals[i];
		char m[48], tg[48];
		if (strcmp(g->unit, "x") == 0) {
			snprintf(m, sizeof(m), "%.2fx", g->measured);
			snprintf(tg, sizeof(tg), "%s %.2fx", g->at_most ? "<=" : ">=", g->target);
		} else {
			snprintf(m, sizeof(m), "%.0f %s", g->measured, g->unit);
			snprintf(tg, sizeof(tg), "%s %.0f %s", g->at_most ? "<=" : ">=", g->target,
				 g->unit);
		}
		if (g->has)
			bench_table_rowv(t, 4, g->what, m, tg, goal_met(g) ? "PASS" : "MISS");
	}
	print(t, stdout);
	bench_table_free(t);
}

static void json_pct(struct bench_json *j, const char *key, const struct bench_hist *h)
{
	struct bench_pct p;
	bench_hist_summary(h, &p);
	bench_json_obj_begin(j, key);
	bench_json_u64(j, "count", p.count);
	bench_json_u64(j, "min_ns", p.min);
	bench_json_u64(j, "p50_ns", p.p50);
	bench_json_u64(j, "p90_ns", p.p90);
	bench_json_u64(j, "p99_ns", p.p99);
	bench_json_u64(j, "p999_ns", p.p999);
	bench_json_u64(j, "max_ns", p.max);
	bench_json_num(j, "mean_ns", p.mean);
	bench_json_obj_end(j);
}

static int write_json(const char *model, int ncpus, const char *kernel, double load0,
		      double load1, double steal_pct)
{
	FILE *f = fopen(C.json, "w");
	if (f == NULL)
		return fail("open json", -errno);
	struct bench_json j;
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "bench", "flow");
	bench_json_str(&j, "command", C.command);
	bench_json_obj_begin(&j, "machine");
	bench_json_str(&j, "model", model);
	bench_json_num(&j, "cpus", ncpus);
	bench_json_str(&j, "kernel", kernel);
	bench_json_num(&j, "loadavg_1min_before", load0);
	bench_json_num(&j, "loadavg_1min_after", load1);
	bench_json_num(&j, "steal_pct_of_machine", steal_pct);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "config");
	bench_json_bool(&j, "quick", C.quick);
	bench_json_u64(&j, "rounds", rounds_done);
	bench_json_str(&j, "wait_mode", "default (spin 50 us, then sleep) everywhere but "
		       "round_trip.sluice_1step_busy_poll (SLUICE_RING_BUSY_POLL, worker and client)");
	bench_json_u64(&j, "window", WINDOW);
	bench_json_u64(&j, "throughput_round_ns", C.tput_ns);
	bench_json_num(&j, "idle_s", (double)C.idle_ns / 1e9);
	bench_json_str(&j, "pin3", C.pin3 == PIN3_SPREAD ? "spread" : C.pin3 == PIN3_SECOND ? "second" : "free");
	bench_json_arr_begin(&j, "tests");
	for (unsigned k = 0; k < 4; k++)
		if (C.tests & (1u << k))
			bench_json_str(&j, NULL, test_names[k]);
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);

	if (!(C.tests & T_RTT))
		goto lone;
	bench_json_obj_begin(&j, "round_trip");
	json_pct(&j, "sluice_1step", &h_rtt_s);
	json_pct(&j, "unix_1step", &h_rtt_u);
	json_pct(&j, "futex_spin", &h_rtt_fx);
	json_pct(&j, "sluice_1step_busy_poll", &h_rtt_sbusy);
	json_pct(&j, "busy_poll_handoff", &h_rtt_fxbusy);
	bench_json_obj_begin(&j, "p50_by_round_ns");
	for (unsigned id = 0; id < NRTT; id++) {
		bench_json_arr_begin(&j, rtt_names[id]);
		for (unsigned r = 0; r < rounds_done; r++)
			bench_json_u64(&j, NULL, rtt_p50[id][r]);
		bench_json_arr_end(&j);
	}
	bench_json_obj_end(&j);
	/* Each p50 over the p50 of its wait mode's floor, as in the table. */
	bench_json_obj_begin(&j, "p50_vs_floor");
	uint64_t fx50 = bench_hist_quantile(&h_rtt_fx, 0.5);
	uint64_t fb50 = bench_hist_quantile(&h_rtt_fxbusy, 0.5);
	bench_json_num(&j, "sluice_1step",
		       fx50 ? (double)bench_hist_quantile(&h_rtt_s, 0.5) / (double)fx50 : 0);
	bench_json_num(&j, "sluice_1step_busy_poll",
		       fb50 ? (double)bench_hist_quantile(&h_rtt_sbusy, 0.5) / (double)fb50 : 0);
	bench_json_num(&j, "unix_1step",
		       fx50 ? (double)bench_hist_quantile(&h_rtt_u, 0.5) / (double)fx50 : 0);
	bench_json_obj_end(&j);
	bench_json_obj_end(&j);

lone:
	if (!(C.tests & T_LONE))
		goto tput;
	bench_json_obj_begin(&j, "lone_after_idle");
	for (int which = 0; which < 2; which++) {
		const uint64_t *v = which ? lone_fx : lone_s;
		bench_json_obj_begin(&j, which ? "futex" : "sluice_1step");
		bench_json_u64(&j, "median_ns", median_u64(v, nlone));
		bench_json_u64(&j, "p25_ns", quantile_u64(v, nlone, 0.25));
		bench_json_u64(&j, "p75_ns", quantile_u64(v, nlone, 0.75));
		bench_json_arr_begin(&j, "samples_ns");
		for (unsigned i = 0; i < nlone; i++)
			bench_json_u64(&j, NULL, v[i]);
		bench_json_arr_end(&j);
		bench_json_obj_end(&j);
	}
	bench_json_obj_begin(&j, "pair_ratio");
	bench_json_num(&j, "median", lone_ratio_q(0.5));
	bench_json_num(&j, "p25", lone_ratio_q(0.25));
	bench_json_num(&j, "p75", lone_ratio_q(0.75));
	bench_json_num(&j, "min", lone_ratio_q(0));
	bench_json_num(&j, "max", lone_ratio_q(1));
	bench_json_obj_end(&j);
	bench_json_obj_end(&j);

tput:
	if (!(C.tests & T_TPUT))
		goto sweep;
	bench_json_arr_begin(&j, "throughput");
	for (unsigned b = 0; b < NBATCH; b++) {
		for (int which = 0; which < 2; which++) {
			double med, mn, mx;
			stats_d(which ? tput_u[b] : tput_s[b], rounds_done, &med, &mn, &mx);
			bench_json_obj_begin(&j, NULL);
			bench_json_str(&j, "pipeline", which ? "unix_1step" : "sluice_1step");
			bench_json_u64(&j, "batch", batches[b]);
			bench_json_num(&j, "tasks_per_s_median", med);
			bench_json_num(&j, "min", mn);
			bench_json_num(&j, "max", mx);
			bench_json_obj_end(&j);
		}
	}
	bench_json_arr_end(&j);

sweep:
	if (!(C.tests & T_SWEEP))
		goto goals;
	bench_json_arr_begin(&j, "payload_sweep");
	for (unsigned i = 0; i < NSIZES; i++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_u64(&j, "bytes", sizes[i]);
		json_pct(&j, "sluice_3step", &h_sw_s[i]);
		json_pct(&j, "unix_3step", &h_sw_u[i]);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);

goals:
	bench_json_arr_begin(&j, "goals");
	for (unsigned i = 0; i < NGOALS; i++) {
		if (!goals[i].has)
			continue;
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "goal", goals[i].what);
		if (goals[i].has)
			bench_json_num(&j, "measured", goals[i].measured);
		else
			bench_json_null(&j, "measured");
		bench_json_str(&j, "unit", goals[i].unit);
		bench_json_str(&j, "comparison", goals[i].at_most ? "<=" : ">=");
		bench_json_num(&j, "target", goals[i].target);
		bench_json_bool(&j, "met", goals[i].has && goal_met(&goals[i]));
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	fputc('\n', f);
	return fclose(f) == 0 ? 0 : fail("write json", -errno);
}

/* The figures sluice-bench compares (bench/common/metrics.h) and the plot
 * data: the round trips' CDFs and the payload sweep. */
static void write_metrics(void)
{
	static const struct bench_hist *const rtt_h[NRTT] = {&h_rtt_s, &h_rtt_fx, &h_rtt_sbusy,
							     &h_rtt_fxbusy, &h_rtt_u};
	static const char *const rtt_titles[NRTT] = {
		"sluice 1-step flow", "bare futex hand-off (floor)",
		"sluice 1-step flow, busy-poll", "bare hand-off, busy-poll (floor)",
		"Unix stream sockets, 1 step"};
	for (unsigned id = 0; id < NRTT && (C.tests & T_RTT); id++) {
		struct bench_pct p;
		bench_hist_summary(rtt_h[id], &p);
		const char *n = rtt_names[id];
		bench_metric((double)p.p50, "ns", "flow.rtt.%s.p50", n);
		bench_metric((double)p.p90, "ns", "flow.rtt.%s.p90", n);
		bench_metric((double)p.p99, "ns", "flow.rtt.%s.p99", n);
		bench_metric((double)p.p999, "ns", "flow.rtt.%s.p999", n);
		bench_metric((double)p.max, "ns", "flow.rtt.%s.max", n);
		char name[64];
		snprintf(name, sizeof(name), "flow_rtt_%s", n);
		bench_plot_cdf(name, rtt_titles[id], rtt_h[id]);
	}
	if ((C.tests & T_LONE) && nlone > 0) {
		bench_metric((double)median_u64(lone_s, nlone), "ns", "flow.lone.sluice_1step.median");
		bench_metric((double)median_u64(lone_fx, nlone), "ns", "flow.lone.futex.median");
		bench_metric(lone_ratio_q(0.5), "x", "flow.lone.pair_ratio_median");
	}
	for (unsigned b = 0; b < NBATCH && (C.tests & T_TPUT); b++) {
		for (int which = 0; which < 2; which++) {
			double med, mn, mx;
			stats_d(which ? tput_u[b] : tput_s[b], rounds_done, &med, &mn, &mx);
			const char *n = which ? "unix_1step" : "sluice_1step";
			bench_metric(med, "/s", "flow.tput.%s.b%u.median", n, batches[b]);
			bench_metric(mn, "/s", "flow.tput.%s.b%u.min", n, batches[b]);
			bench_metric(mx, "/s", "flow.tput.%s.b%u.max", n, batches[b]);
		}
	}
	if (!(C.tests & T_SWEEP))
		return;
	FILE *f = bench_plot_open("flow_sweep", "3-step no-op pipeline, one task at a time");
	if (f)
		fprintf(f, "# bytes sluice_p50_ns sluice_p99_ns unix_p50_ns unix_p99_ns\n");
	for (unsigned i = 0; i < NSIZES; i++) {
		struct bench_pct ps, pu;
		bench_hist_summary(&h_sw_s[i], &ps);
		bench_hist_summary(&h_sw_u[i], &pu);
		bench_metric((double)ps.p50, "ns", "flow.sweep.sluice_3step.%" PRIu64 ".p50", sizes[i]);
		bench_metric((double)ps.p99, "ns", "flow.sweep.sluice_3step.%" PRIu64 ".p99", sizes[i]);
		bench_metric((double)pu.p50, "ns", "flow.sweep.unix_3step.%" PRIu64 ".p50", sizes[i]);
		bench_metric((double)pu.p99, "ns", "flow.sweep.unix_3step.%" PRIu64 ".p99", sizes[i]);
		if (f)
			fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
				sizes[i], ps.p50, ps.p99, pu.p50, pu.p99);
	}
	if (f)
		fclose(f);
}

/* ---- main ------------------------------------------------------------------------------ */

static double loadavg(void)
{
	double v = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* "rtt,sweep" -> T_RTT | T_SWEEP. Returns 0, or -1 for an unknown name or
 * an empty list. */
static int parse_tests(const char *s, unsigned *out)
{
	unsigned bits = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		unsigned k;
		for (k = 0; k < 4; k++)
			if (strlen(test_names[k]) == n && strncmp(s, test_names[k], n) == 0)
				break;
		if (k == 4)
			return -1;
		bits |= 1u << k;
		s += n;
		if (*s == ',')
			s++;
	}
	*out = bits;
	return bits ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_flow [options]\n"
		"  --quick              short run (under ~20 s)\n"
		"  --json FILE          write the results as JSON\n"
		"  --markdown           print the tables as Markdown\n"
		"  --rounds N           rounds (default 7, quick 3)\n"
		"  --idle-samples N     lone-task samples per round (default 2, quick 1)\n"
		"  --idle-ms N          idleness before a lone task (default 1000)\n"
		"  --tests LIST         rtt,lone,tput,sweep (default: all)\n"
		"  --metrics FILE       write the figures for sluice-bench (key, value, unit)\n"
		"  --plot-dir DIR       write plot data there (CDFs, payload sweep), for gnuplot\n"
		"  --pin3 MODE          3-step pipelines: spread (default: steps 0 and 2 on\n"
		"                       the second CPU, step 1 on the first), free (any\n"
		"                       CPU), second (all on the second CPU)\n");
}

int main(int argc, char **argv)
{
	enum { O_QUICK = 256, O_JSON, O_MD, O_ROUNDS, O_IDLE_N, O_IDLE_MS, O_PIN3, O_TESTS,
	       O_METRICS, O_PLOT_DIR, O_HELP };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"json", required_argument, NULL, O_JSON},
		{"markdown", no_argument, NULL, O_MD},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"idle-samples", required_argument, NULL, O_IDLE_N},
		{"idle-ms", required_argument, NULL, O_IDLE_MS},
		{"pin3", required_argument, NULL, O_PIN3},
		{"tests", required_argument, NULL, O_TESTS},
		{"metrics", required_argument, NULL, O_METRICS},
		{"plot-dir", required_argument, NULL, O_PLOT_DIR},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	long rounds = 0, idle_n = -1, idle_ms = 1000;
	int o;
	C.tests = T_ALL;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		switch (o) {
		case O_QUICK: C.quick = true; break;
		case O_JSON: C.json = optarg; break;
		case O_MD: C.markdown = true; break;
		case O_ROUNDS:
			rounds = strtol(optarg, &end, 10);
			if (*end || rounds < 1 || rounds > (long)MAX_ROUNDS)
				goto bad;
			break;
		case O_IDLE_N:
			idle_n = strtol(optarg, &end, 10);
			if (*end || idle_n < 0 || idle_n > 16)
				goto bad;
			break;
		case O_IDLE_MS:
			idle_ms = strtol(optarg, &end, 10);
			if (*end || idle_ms < 1 || idle_ms > 60000)
				goto bad;
			break;
		case O_PIN3:
			if (strcmp(optarg, "free") == 0)
				C.pin3 = PIN3_FREE;
			else if (strcmp(optarg, "spread") == 0)
				C.pin3 = PIN3_SPREAD;
			else if (strcmp(optarg, "second") == 0)
				C.pin3 = PIN3_SECOND;
			else
				goto bad;
			break;
		case O_TESTS:
			if (parse_tests(optarg, &C.tests) != 0)
				goto bad;
			break;
		case O_METRICS: C.metrics = optarg; break;
		case O_PLOT_DIR: bench_plot_dir(optarg); break;
		case O_HELP: usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	for (int i = 0, len = 0; i < argc && len < (int)sizeof(C.command); i++)
		len += snprintf(C.command + len, sizeof(C.command) - (size_t)len, "%s%s",
				i ? " " : "", argv[i]);

	C.rounds = rounds ? (unsigned)rounds : (C.quick ? 3 : 7);
	C.idle_per_round = idle_n >= 0 ? (unsigned)idle_n : (C.quick ? 1 : 2);
	C.idle_ns = (uint64_t)idle_ms * 1000000u;
	C.tput_ns = (C.quick ? 150 : 300) * 1000000ull;
	C.warm_ns = (C.quick ? 50 : 100) * 1000000ull;
	C.rtt_iters = C.quick ? 30000 : 100000;
	C.rtt_sock_iters = C.quick ? 1000 : 4000;
	C.sweep_iters = C.quick ? 300 : 1000;
	static const unsigned sock_full[NSIZES] = {1000, 1000, 500, 100, 6, 2};
	static const unsigned sock_quick[NSIZES] = {300, 300, 150, 30, 2, 1};
	memcpy(C.sweep_sock_iters, C.quick ? sock_quick : sock_full, sizeof(sock_full));

	int cpus[BENCH_MAX_CPUS];
	int ncpu = bench_cpus_allowed(cpus, BENCH_MAX_CPUS);
	if (ncpu < 2) {
		fprintf(stderr, "bench_flow needs 2 CPUs, this process may use %d\n", ncpu);
		return 1;
	}
	C.cpu[0] = cpus[0];
	C.cpu[1] = cpus[1];
	sched_getaffinity(0, sizeof(allowed), &allowed);

	char model[256], kernel[128];
	int nproc;
	bench_machine(model, sizeof(model), &nproc, kernel, sizeof(kernel));
	double load0 = loadavg();
	printf("%s\n", C.command);
	printf("bench_flow: %s, %d CPUs (client on %d, 1-step workers on %d), Linux %s, "
	       "load average %.2f\n", model, nproc, C.cpu[0], C.cpu[1], kernel, load0);
	printf("%u rounds; throughput rounds of %.0f ms after %.0f ms warm-up; %u round trips "
	       "per round; lone task after %.1f s idle, %u per round\n",
	       C.rounds, (double)C.tput_ns / 1e6, (double)C.warm_ns / 1e6, C.rtt_iters,
	       (double)C.idle_ns / 1e9, C.idle_per_round);
	printf("sluice wait mode: the default (spin 50 us, then sleep), but for the busy-poll "
	       "round trip (worker and client SLUICE_RING_BUSY_POLL)\n");
	printf("3-step pipelines: %s\n\n",
	       C.pin3 == PIN3_SPREAD ? "steps 0 and 2 on the second CPU, step 1 on the first"
	       : C.pin3 == PIN3_SECOND ? "all steps on the second CPU"
				       : "steps on any CPU (the scheduler's choice)");
	fflush(stdout);

	for (unsigned i = 0; i < NSIZES; i++) {
		bench_hist_init(&h_sw_s[i]);
		bench_hist_init(&h_sw_u[i]);
	}
	bench_hist_init(&h_rtt_s);
	bench_hist_init(&h_rtt_u);
	bench_hist_init(&h_rtt_fx);
	bench_hist_init(&h_rtt_sbusy);
	bench_hist_init(&h_rtt_fxbusy);
	bench_hist_init(&h_round);

	/* Flows first: their supervisors fork before anything else exists,
	 * with this process's whole CPU set. */
	int failed = 0;
	bool rtt = C.tests & T_RTT, lone = C.tests & T_LONE, tput = C.tests & T_TPUT,
	     sweep = C.tests & T_SWEEP;
	if ((rtt || lone) && sflow_start(&F1, 1, 1, 0, WINDOW, 0) != 0)
		return 1;
	for (unsigned b = 0; b < NBATCH && !failed && tput; b++)
		failed = sflow_start(&Fb[b], 1, batches[b], 0, WINDOW, 0) != 0;
	/* 256 MiB of blocks: the default geometry then has a 64 MiB class. */
	if (!failed && sweep)
		failed = sflow_start(&F3, 3, 1, 256ull << 20, 64, 0) != 0;

	/* Then every socket, then the processes that use them. */
	fx = bench_shm_map(sizeof(*fx));
	size_t ubytes = sweep ? MAX_PAYLOAD : MSG;
	u_src = malloc(ubytes);
	u_dst = malloc(ubytes);
	if (!fx || !u_src || !u_dst) {
		fprintf(stderr, "bench_flow: out of memory\n");
		failed = 1;
	} else {
		memset(u_src, 0x5a, ubytes);
		memset(u_dst, 0, ubytes);
	}
	if (!failed && rtt)
		failed = spipe_make(&U1, 1, 0) != 0;
	if (!failed && sweep)
		failed = spipe_make(&U3, 3, 0) != 0;
	for (unsigned b = 0; b < NBATCH && !failed && tput; b++)
		failed = spipe_make(&Ub[b], 1, batches[b]) != 0;
	pid_t fx_pid = -1;
	if (!failed) {
		if (rtt)
			failed = spipe_spawn(&U1) != 0;
		if (!failed && sweep)
			failed = spipe_spawn(&U3) != 0;
		for (unsigned b = 0; b < NBATCH && !failed && tput; b++)
			failed = spipe_spawn(&Ub[b]) != 0;
		if (!failed && (rtt || lone)) {
			fx_pid = bench_spawn(C.cpu[1], fx_server, NULL);
			failed |= fx_pid < 0;
		}
	}
	/* The parent keeps only the client's ends, so that a step's exit
	 * reaches the client as EOF. */
	for (int i = 0; i < nsocks && !failed; i++) {
		bool mine = false;
		struct spipe *ps[2 + NBATCH] = {&U1, &U3, &Ub[0], &Ub[1], &Ub[2]};
		for (unsigned k = 0; k < 2 + NBATCH; k++)
			mine |= all_socks[i] == ps[k]->to || all_socks[i] == ps[k]->from;
		if (!mine)
			close(all_socks[i]);
	}
	if (!failed && place(C.cpu[0]) != 0) {
		fprintf(stderr, "bench_flow: cannot pin the client to cpu %d\n", C.cpu[0]);
		failed = 1;
	}

	uint64_t busy0 = 0, steal0 = 0, wall0 = bench_now_ns();
	bool have_stat = bench_machine_cpu(&busy0, &steal0) == 0;
	for (unsigned r = 0; r < C.rounds && !failed; r++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned k = 0; k < NPHASES && !failed; k++) {
			enum phase ph = r % 2 ? (enum phase)(NPHASES - 1 - k) : (enum phase)k;
			failed = run_phase(ph, r) != 0;
		}
		for (unsigned i = 0; i < C.idle_per_round && !failed && lone; i++)
			failed = run_lone() != 0;
		if (!failed)
			rounds_done++;
		printf("round %u/%u done in %.1f s\n", r + 1, C.rounds,
		       (double)(bench_now_ns() - t0) / 1e9);
		fflush(stdout);
	}
	double steal_pct = 0;
	uint64_t busy1, steal1;
	if (have_stat && bench_machine_cpu(&busy1, &steal1) == 0)
		steal_pct = 100.0 * (double)(steal1 - steal0) /
			    ((double)(bench_now_ns() - wall0) * nproc);
	double load1 = loadavg();

	/* Tear down: flows stop and reap their processes; sockets close, so
	 * every step reads EOF and exits; the futex server gets STOP. */
	sflow_stop(&F1);
	for (unsigned b = 0; b < NBATCH; b++)
		sflow_stop(&Fb[b]);
	sflow_stop(&F3);
	if (U1.pids[0] > 0)
		failed |= spipe_stop(&U1) != 0;
	if (U3.pids[0] > 0)
		failed |= spipe_stop(&U3) != 0;
	for (unsigned b = 0; b < NBATCH; b++)
		if (Ub[b].pids[0] > 0)
			failed |= spipe_stop(&Ub[b]) != 0;
	if (fx_pid > 0) {
		fx_publish(&fx->req, FX_STOP);
		failed |= bench_wait_children("futex server", &fx_pid, 1, bench_now_ns() + 10 * SEC) != 0;
	}
	printf("load average %.2f at the end (%.2f at the start); the hypervisor stole %.1f%% of "
	       "the machine's time\n", load1, load0, steal_pct);

	if (rounds_done > 0) {
		compute_goals();
		print_report();
		if (C.json && write_json(model, nproc, kernel, load0, load1, steal_pct) != 0)
			failed = 1;
		if (bench_metrics_open(C.metrics) != 0) {
			fprintf(stderr, "bench_flow: %s: cannot write\n", C.metrics);
			failed = 1;
		}
		write_metrics();
		if (bench_metrics_close() != 0)
			failed = 1;
	}
	if (failed)
		fprintf(stderr, "bench_flow: FAILED (see above)\n");
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
