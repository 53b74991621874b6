/* The restart benchmark: how fast the supervisor notices a dead worker and
 * has a replacement serving, and what a steady rain of kills costs a busy
 * flow. Driven through the public API (sluice/flow.h): the times come from
 * the flow's health records (sluice_flow_snapshot_take).
 *
 * Restart latency: a running, idle flow of one step, two workers, on_start
 * doing nothing, restart_delay_ns = restart_max_delay_ns = 1 ns (the least
 * the API takes: 0 means the default 100 ms) and fail_deaths NEVER, so the
 * figures are the machinery's and not the back-off's. Per kill, of the two
 * workers in turn: the worker's pid from a snapshot, a pidfd on it, the
 * kill time (CLOCK_MONOTONIC) just before pidfd_send_signal(SIGKILL); then
 * snapshots every 200 us until the slot shows its restart and the new
 * process ready. From its record, all CLOCK_MONOTONIC, one clock for every
 * process:
 *   noticed   last_death_ns - kill: the supervisor woke on the pidfd and
 *             began to reap (death_ns is taken before waitid)
 *   forked    forked_ns - kill: after recovery (nothing to recover: idle),
 *             the log line and the restart decision, just before fork()
 *   ready     ready_ns - kill: the new process set up its ring handles and
 *             reported ready
 * into histograms: p50, p99, max.
 *
 * Chaos throughput: two flows alike, of two steps, two workers each, batch
 * 8, each task 20 us of CPU per step, max_attempts 3, restart delay 2 ms
 * doubling to 20 ms, fail_deaths NEVER (test_flow_chaos's settings); the
 * client keeps 256 tasks in flight. One flow is left alone, the other has
 * a random live worker SIGKILLed every 50 ms of its running time. In each
 * round each flow runs for the round's time in slices of 250 ms, the two
 * taking turns (which goes first alternates), so that both see the same
 * machine: on this shared 2-CPU machine its speed moves by 2x within
 * seconds. Tasks finished OK per second of a flow's slices (a slice stops
 * submitting at its end and drains uncounted), per round, the median over
 * rounds, and the kill/quiet ratio.
 *
 * The supervisor's log (a line per death) goes to /dev/null (--log FILE to
 * keep it). No pinning: the two CPUs are shared by everything. Goals are
 * printed as PASS/MISS, for information; the exit code is 0 unless
 * something failed.
 *
 * usage: bench_restart [--quick] [--json FILE] [--markdown] [--kills N]
 *                      [--rounds N (0: latency only)] [--round-ms N] [--log FILE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#include "bench/common/clock.h"
#include "bench/common/cpu.h"
#include "bench/common/hist.h"
#include "bench/common/json.h"
#include "bench/common/metrics.h"
#include "bench/common/table.h"

#define MSEC UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define MAX_ROUNDS 32u
#define WINDOW 256u
#define CHUNK 32u
#define WORK_NS 20000u
#define KILL_EVERY_NS (50 * MSEC)
#define SLICE_NS (250 * MSEC)
#define POLL_US 200

struct cfg {
	bool quick, markdown;
	const char *json, *log, *metrics;
	unsigned kills, rounds;
	uint64_t round_ns;
	char command[512];
};
static struct cfg C;

static struct bench_hist h_noticed, h_forked, h_ready;
struct round {
	double quiet_tps, kill_tps;
	unsigned kills;
	uint64_t ok, died;
};
static struct round R[MAX_ROUNDS];
static unsigned restarts_seen;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_restart: %s: %s\n", what, rc < 0 ? sluice_strerror(rc) : "failed");
	return -1;
}

/* ---- flows ------------------------------------------------------------------------- */

static int noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

static int work(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t until = bench_now_ns() + WORK_NS;
		while (bench_now_ns() < until)
			;
	}
	return 0;
}

static sluice_flow_t *make_flow(const char *name, const sluice_step_t *steps, uint32_t nsteps)
{
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = name, .flags = SLUICE_FLOW_UNLISTED, .nsteps = nsteps, .steps = steps,
				.max_tasks = 2 * WINDOW};
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "bench_restart: create %s: %s: %s\n", name, sluice_err_name(rc), err);
		return NULL;
	}
	/* The supervisor inherits our stderr at start: give it the log. */
	int saved = dup(2);
	int logfd = open(C.log ? C.log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (saved < 0 || logfd < 0) {
		fprintf(stderr, "bench_restart: log: %s\n", strerror(errno));
		sluice_flow_destroy(f);
		return NULL;
	}
	dup2(logfd, 2);
	rc = sluice_flow_start(f, 10 * SEC);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	if (rc != 0) {
		fprintf(stderr, "bench_restart: start %s: %s: %s\n", name, sluice_err_name(rc),
			sluice_flow_error(f));
		sluice_flow_destroy(f);
		return NULL;
	}
	return f;
}

/* SIGKILLs the process of worker slot w if one is live there. A pidfd is
 * opened on the pid a snapshot names, and a second snapshot must still
 * name it, live: a pid is not reused before the supervisor reaps it, and
 * the slot's state says DEAD once it has. Returns its pid (0: none) and
 * the kill time in *at. */
static pid_t kill_slot(sluice_flow_t *f, sluice_flow_snapshot_t *s, uint32_t w, uint64_t *at)
{
	if (sluice_flow_snapshot_take(f, s) != 0 || s->workers[w].state != SLUICE_WORKER_READY)
		return 0;
	pid_t pid = (pid_t)s->workers[w].pid;
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return 0;
	pid_t got = 0;
	if (sluice_flow_snapshot_take(f, s) == 0 && s->workers[w].pid == pid &&
	    s->workers[w].state == SLUICE_WORKER_READY) {
		*at = bench_now_ns();
		if (pidfd_send_signal(fd, SIGKILL, NULL, 0) == 0)
			got = pid;
	}
	close(fd);
	return got;
}

/* ---- restart latency ------------------------------------------------------------------- */

static int run_latency(void)
{
	sluice_step_t st = {
		.size_of = sizeof(st), .name = "idle", .handler = {.handle = noop},
		.nprocs = 2, .batch_size = 1,
		.restart_delay_ns = 1, .restart_max_delay_ns = 1,
		.fail_deaths = SLUICE_STEP_NEVER_FAIL,
	};
	sluice_flow_t *f = make_flow("bench-restart", &st, 1);
	if (f == NULL)
		return -1;
	sluice_flow_snapshot_t *s;
	int rc = sluice_flow_snapshot_create(f, &s);
	if (rc != 0)
		return fail("snapshot", rc);
	int ret = 0;
	for (unsigned i = 0; i < C.kills && ret == 0; i++) {
		uint32_t w = i % 2;
		uint64_t t_kill = 0, until = bench_now_ns() + 5 * SEC;
		/* Wait until the slot serves (the last restart may still be on). */
		while (sluice_flow_snapshot_take(f, s) == 0 &&
		       s->workers[w].state != SLUICE_WORKER_READY && bench_now_ns() < until)
			usleep(POLL_US);
		uint32_t r0 = s->workers[w].restarts;
		pid_t pid = kill_slot(f, s, w, &t_kill);
		if (pid == 0) {
			ret = fail("no live worker to kill", 0);
			break;
		}
		until = bench_now_ns() + 5 * SEC;
		for (;;) {
			usleep(POLL_US);
			if ((rc = sluice_flow_snapshot_take(f, s)) != 0) {
				ret = fail("snapshot", rc);
				break;
			}
			const sluice_worker_health_t *h = &s->workers[w];
			if (h->restarts == r0 + 1 && h->state == SLUICE_WORKER_READY && h->ready_ns != 0) {
				if (h->last_pid != pid || h->last_signal != SIGKILL ||
				    h->last_death_ns < t_kill || h->ready_ns < h->forked_ns) {
					ret = fail("the health record does not tell the kill", 0);
					break;
				}
				bench_hist_record(&h_noticed, h->last_death_ns - t_kill);
				bench_hist_record(&h_forked, h->forked_ns - t_kill);
				bench_hist_record(&h_ready, h->ready_ns - t_kill);
				break;
			}
			if (bench_now_ns() > until) {
				ret = fail("no replacement within 5 s", 0);
				break;
			}
		}
		usleep(2000);
	}
	sluice_flow_snapshot_take(f, s);
	restarts_seen = s->steps[0].restarts;
	sluice_flow_snapshot_destroy(s);
	sluice_flow_stop(f, SEC);
	sluice_flow_destroy(f);
	return ret;
}

/* ---- chaos throughput -------------------------------------------------------------------- */

struct load {
	sluice_flow_t *f;
	sluice_flow_snapshot_t *s;
	int efd;
	unsigned seed;
	uint64_t since_kill; /* running time since the last kill, carried between slices */
};

/* Runs f for `ns` with WINDOW tasks in flight; with kills, a random live
 * worker is SIGKILLed every 50 ms of the flow's running time. Returns the
 * tasks finished OK in that time (the rest drain afterwards, uncounted),
 * or -1. */
static int64_t run_load(struct load *L, uint64_t ns, bool kills, unsigned *nkills, uint64_t *died)
{
	sluice_flow_t *f = L->f;
	sluice_task_t *out[CHUNK], *batch[CHUNK];
	uint64_t start = bench_now_ns(), end = start + ns;
	uint64_t next_kill = start + (KILL_EVERY_NS - L->since_kill);
	uint64_t ok = 0, inflight = 0;
	for (;;) {
		uint64_t now = bench_now_ns();
		bool running = now < end;
		if (!running && inflight == 0)
			break;
		while (running && inflight < WINDOW) {
			unsigned k = 0;
			while (k < CHUNK && inflight + k < WINDOW && sluice_task_alloc(f, 8, &batch[k]) == 0) {
				batch[k]->payload_len = 8;
				k++;
			}
			if (k == 0)
				break;
			int rc = sluice_task_submit_many(f, batch, k, 10 * SEC);
			if (rc != (int)k)
				return fail("submit", rc < 0 ? rc : 0);
			inflight += k;
		}
		int n = sluice_flow_reap(f, out, CHUNK);
		if (n < 0)
			return fail("reap", n);
		for (int i = 0; i < n; i++) {
			if (out[i]->status == SLUICE_TASK_OK) {
				ok += running;
			} else if (out[i]->status == SLUICE_TASK_WORKER_DIED && kills) {
				*died += 1;
			} else {
				fprintf(stderr, "bench_restart: a task ended %s: %s\n",
					sluice_task_status_name(out[i]->status), out[i]->message);
				return -1;
			}
			sluice_task_release(f, out[i]);
			inflight--;
		}
		if (n == 0) {
			struct pollfd p = {.fd = L->efd, .events = POLLIN};
			(void)poll(&p, 1, 1);
		}
		if (kills && running && now >= next_kill) {
			next_kill += KILL_EVERY_NS;
			uint64_t at;
			uint32_t w = (uint32_t)(rand_r(&L->seed) % L->s->nworkers);
			if (kill_slot(f, L->s, w, &at) != 0)
				(*nkills)++;
		}
	}
	L->since_kill = next_kill > end ? KILL_EVERY_NS - (next_kill - end) : 0;
	return (int64_t)ok;
}

static int run_chaos(void)
{
	sluice_step_t steps[2];
	static const char *const names[2] = {"a", "b"};
	for (int i = 0; i < 2; i++)
		steps[i] = (sluice_step_t){
			.size_of = sizeof(sluice_step_t), .name = names[i], .handler = {.handle = work},
			.nprocs = 2, .batch_size = 8, .max_attempts = 3,
			.restart_delay_ns = 2 * MSEC, .restart_max_delay_ns = 20 * MSEC,
			.fail_deaths = SLUICE_STEP_NEVER_FAIL,
		};
	struct load L[2] = {{.seed = 1}, {.seed = 2}}; /* 0 quiet, 1 with kills */
	for (int k = 0; k < 2; k++) {
		L[k].f = make_flow(k ? "bench-chaos-kill" : "bench-chaos-quiet", steps, 2);
		if (L[k].f == NULL)
			return -1;
		int rc = sluice_flow_snapshot_create(L[k].f, &L[k].s);
		if (rc != 0)
			return fail("snapshot", rc);
		L[k].efd = sluice_flow_eventfd(L[k].f);
	}
	int ret = 0;
	unsigned nslices = (unsigned)((C.round_ns + SLICE_NS - 1) / SLICE_NS), turn = 0;
	for (unsigned r = 0; r < C.rounds && ret == 0; r++) {
		uint64_t ok[2] = {0, 0}, died = 0;
		unsigned nk = 0;
		for (unsigned sl = 0; sl < nslices && ret == 0; sl++, turn++) {
			for (int j = 0; j < 2 && ret == 0; j++) {
				int k = turn % 2 == 0 ? j : 1 - j;
				int64_t n = run_load(&L[k], C.round_ns / nslices, k == 1, &nk, &died);
				if (n < 0)
					ret = -1;
				else
					ok[k] += (uint64_t)n;
			}
		}
		double secs = (double)(C.round_ns / nslices * nslices) / 1e9;
		R[r].quiet_tps = (double)ok[0] / secs;
		R[r].kill_tps = (double)ok[1] / secs;
		R[r].kills = nk;
		R[r].ok = ok[1];
		R[r].died = died;
		if (ret == 0)
			fprintf(stderr, "round %u: quiet %.0f tasks/s, with kills %.0f tasks/s (%u kills)\n",
				r + 1, R[r].quiet_tps, R[r].kill_tps, R[r].kills);
	}
	for (int k = 0; k < 2; k++) {
		sluice_flow_snapshot_destroy(L[k].s);
		sluice_flow_stop(L[k].f, 5 * SEC);
		sluice_flow_destroy(L[k].f);
	}
	return ret;
}

/* ---- report ---------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double quiet_med, kill_med, ratio_med;

static void summarize(void)
{
	double q[MAX_ROUNDS], k[MAX_ROUNDS], rt[MAX_ROUNDS];
	for (unsigned r = 0; r < C.rounds; r++) {
		q[r] = R[r].quiet_tps;
		k[r] = R[r].kill_tps;
		rt[r] = R[r].quiet_tps > 0 ? R[r].kill_tps / R[r].quiet_tps : 0;
	}
	quiet_med = median(q, C.rounds);
	kill_med = median(k, C.rounds);
	ratio_med = median(rt, C.rounds);
}


static void lat_row(struct bench_table *t, const char *name, const struct bench_hist *h)
{
	struct bench_pct p;
	bench_hist_summary(h, &p);
	char v[7][32];
	snprintf(v[0], 32, "%" PRIu64, p.count);
	bench_fmt_ns(v[1], 32, p.min);
	bench_fmt_ns(v[2], 32, p.p50);
	bench_fmt_ns(v[3], 32, p.p90);
	bench_fmt_ns(v[4], 32, p.p99);
	bench_fmt_ns(v[5], 32, p.p999);
	bench_fmt_ns(v[6], 32, p.max);
	bench_table_rowv(t, 8, name, v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
}

static void print_report(void)
{
	void (*print)(const struct bench_table *, FILE *) =
		C.markdown ? bench_table_print_markdown : bench_table_print;
	printf("\nRestart latency, from the kill (SIGKILL of an idle worker; restart delay 1 ns):\n\n");
	static const char *const h1[] = {"to", "kills", "min", "p50", "p90", "p99", "p99.9", "max"};
	struct bench_table *t = bench_table_new(8, h1);
	lat_row(t, "death noticed (supervisor begins to reap)", &h_noticed);
	lat_row(t, "replacement forked", &h_forked);
	lat_row(t, "replacement ready", &h_ready);
	print(t, stdout);
	bench_table_free(t);

	if (C.rounds == 0)
		goto goals;
	printf("\nThroughput of a 2-step flow (2 workers a step, 20 us a task a step), tasks OK/s:\n\n");
	static const char *const h2[] = {"round", "quiet", "a kill every 50 ms", "kills", "ratio",
					 "ended WORKER_DIED"};
	t = bench_table_new(6, h2);
	for (unsigned r = 0; r < C.rounds; r++) {
		char v[6][32];
		snprintf(v[0], 32, "%u", r + 1);
		snprintf(v[1], 32, "%.0f", R[r].quiet_tps);
		snprintf(v[2], 32, "%.0f", R[r].kill_tps);
		snprintf(v[3], 32, "%u", R[r].kills);
		snprintf(v[4], 32, "%.2f", R[r].quiet_tps > 0 ? R[r].kill_tps / R[r].quiet_tps : 0);
		snprintf(v[5], 32, "%" PRIu64, R[r].died);
		bench_table_rowv(t, 6, v[0], v[1], v[2], v[3], v[4], v[5]);
	}
	char mq[32], mk[32], mr[32];
	snprintf(mq, 32, "%.0f", quiet_med);
	snprintf(mk, 32, "%.0f", kill_med);
	snprintf(mr, 32, "%.2f", ratio_med);
	bench_table_rowv(t, 6, "median", mq, mk, "", mr, "");
	print(t, stdout);
	bench_table_free(t);

goals:;
	uint64_t n99 = bench_hist_quantile(&h_noticed, 0.99), r99 = bench_hist_quantile(&h_ready, 0.99);
	printf("\nGoals (informational):\n");
	printf("  death noticed p99 %.3f ms < 1 ms: %s\n", (double)n99 / 1e6, n99 < MSEC ? "PASS" : "MISS");
	printf("  replacement ready p99 %.3f ms < 10 ms: %s\n", (double)r99 / 1e6,
	       r99 < 10 * MSEC ? "PASS" : "MISS");
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

static int write_json(double load0, double load1)
{
	char model[128], kernel[128];
	int ncpus = 0;
	bench_machine(model, sizeof(model), &ncpus, kernel, sizeof(kernel));
	FILE *f = fopen(C.json, "w");
	if (f == NULL)
		return fail("open json", -errno);
	struct bench_json j;
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "bench", "restart");
	bench_json_str(&j, "command", C.command);
	bench_json_obj_begin(&j, "machine");
	bench_json_str(&j, "model", model);
	bench_json_num(&j, "cpus", ncpus);
	bench_json_str(&j, "kernel", kernel);
	bench_json_num(&j, "loadavg_1min_before", load0);
	bench_json_num(&j, "loadavg_1min_after", load1);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "config");
	bench_json_bool(&j, "quick", C.quick);
	bench_json_u64(&j, "kills", C.kills);
	bench_json_str(&j, "latency_flow",
		       "1 step, 2 workers, idle, on_start none, restart_delay_ns 1 (the minimum), "
		       "fail_deaths never");
	bench_json_u64(&j, "rounds", C.rounds);
	bench_json_u64(&j, "round_ns", C.round_ns);
	bench_json_str(&j, "chaos_flow",
		       "2 steps x 2 workers, batch 8, 20 us a task a step, max_attempts 3, restart "
		       "delay 2 ms doubling to 20 ms, fail_deaths never, 256 tasks in flight");
	bench_json_u64(&j, "kill_every_ns", KILL_EVERY_NS);
	bench_json_u64(&j, "slice_ns", SLICE_NS);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "restart_latency");
	json_pct(&j, "death_noticed", &h_noticed);
	json_pct(&j, "replacement_forked", &h_forked);
	json_pct(&j, "replacement_ready", &h_ready);
	bench_json_obj_end(&j);
	if (C.rounds == 0) {
		bench_json_null(&j, "chaos_throughput");
		goto goals;
	}
	bench_json_obj_begin(&j, "chaos_throughput");
	bench_json_arr_begin(&j, "rounds");
	for (unsigned r = 0; r < C.rounds; r++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_num(&j, "quiet_tasks_per_s", R[r].quiet_tps);
		bench_json_num(&j, "kill_tasks_per_s", R[r].kill_tps);
		bench_json_u64(&j, "kills", R[r].kills);
		bench_json_u64(&j, "worker_died", R[r].died);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_num(&j, "quiet_median", quiet_med);
	bench_json_num(&j, "kill_median", kill_med);
	bench_json_num(&j, "ratio_median", ratio_med);
	bench_json_obj_end(&j);
goals:
	bench_json_arr_begin(&j, "goals");
	uint64_t n99 = bench_hist_quantile(&h_noticed, 0.99), r99 = bench_hist_quantile(&h_ready, 0.99);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "goal", "death noticed, p99");
	bench_json_u64(&j, "measured_ns", n99);
	bench_json_u64(&j, "target_ns", MSEC);
	bench_json_bool(&j, "met", n99 < MSEC);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "goal", "replacement ready, p99");
	bench_json_u64(&j, "measured_ns", r99);
	bench_json_u64(&j, "target_ns", 10 * MSEC);
	bench_json_bool(&j, "met", r99 < 10 * MSEC);
	bench_json_obj_end(&j);
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	fputc('\n', f);
	return fclose(f) == 0 ? 0 : fail("write json", -errno);
}

/* The figures sluice-bench compares (bench/common/metrics.h). */
static void write_metrics(void)
{
	static const char *const names[3] = {"noticed", "forked", "ready"};
	const struct bench_hist *h[3] = {&h_noticed, &h_forked, &h_ready};
	for (unsigned i = 0; i < 3; i++) {
		struct bench_pct p;
		bench_hist_summary(h[i], &p);
		bench_metric((double)p.p50, "ns", "restart.%s.p50", names[i]);
		bench_metric((double)p.p90, "ns", "restart.%s.p90", names[i]);
		bench_metric((double)p.p99, "ns", "restart.%s.p99", names[i]);
		bench_metric((double)p.p999, "ns", "restart.%s.p999", names[i]);
		bench_metric((double)p.max, "ns", "restart.%s.max", names[i]);
	}
	if (C.rounds == 0)
		return;
	double qmin = R[0].quiet_tps, qmax = qmin, kmin = R[0].kill_tps, kmax = kmin;
	for (unsigned r = 1; r < C.rounds; r++) {
		qmin = R[r].quiet_tps < qmin ? R[r].quiet_tps : qmin;
		qmax = R[r].quiet_tps > qmax ? R[r].quiet_tps : qmax;
		kmin = R[r].kill_tps < kmin ? R[r].kill_tps : kmin;
		kmax = R[r].kill_tps > kmax ? R[r].kill_tps : kmax;
	}
	bench_metric(quiet_med, "/s", "restart.chaos.quiet_median");
	bench_metric(qmin, "/s", "restart.chaos.quiet_min");
	bench_metric(qmax, "/s", "restart.chaos.quiet_max");
	bench_metric(kill_med, "/s", "restart.chaos.kill_median");
	bench_metric(kmin, "/s", "restart.chaos.kill_min");
	bench_metric(kmax, "/s", "restart.chaos.kill_max");
	bench_metric(ratio_med, "x", "restart.chaos.ratio_median");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_restart [options]\n"
		   "  --quick         short run (under ~15 s)\n"
		   "  --json FILE     write the results as JSON\n"
		   "  --markdown      print the tables as Markdown\n"
		   "  --metrics FILE  write the figures for sluice-bench (key, value, unit)\n"
		   "  --kills N       restart-latency kills (default 400, quick 100)\n"
		   "  --rounds N      chaos rounds (default 5, quick 3; 0: latency only)\n"
		   "  --round-ms N    each flow's time per round (default 2000, quick 1000)\n"
		   "  --log FILE      append the supervisors' log there (default /dev/null)\n");
}

int main(int argc, char **argv)
{
	enum { O_QUICK = 256, O_JSON, O_MD, O_KILLS, O_ROUNDS, O_ROUND_MS, O_LOG, O_METRICS, O_HELP };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"json", required_argument, NULL, O_JSON},
		{"markdown", no_argument, NULL, O_MD},
		{"kills", required_argument, NULL, O_KILLS},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"round-ms", required_argument, NULL, O_ROUND_MS},
		{"log", required_argument, NULL, O_LOG},
		{"metrics", required_argument, NULL, O_METRICS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	long kills = 0, rounds = -1, round_ms = 0;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		switch (o) {
		case O_QUICK: C.quick = true; break;
		case O_JSON: C.json = optarg; break;
		case O_MD: C.markdown = true; break;
		case O_LOG: C.log = optarg; break;
		case O_METRICS: C.metrics = optarg; break;
		case O_KILLS:
			kills = strtol(optarg, &end, 10);
			if (*end || kills < 1 || kills > 100000)
				goto bad;
			break;
		case O_ROUNDS:
			rounds = strtol(optarg, &end, 10);
			if (*end || rounds < 0 || rounds > (long)MAX_ROUNDS)
				goto bad;
			break;
		case O_ROUND_MS:
			round_ms = strtol(optarg, &end, 10);
			if (*end || round_ms < 100 || round_ms > 600000)
				goto bad;
			break;
		case O_HELP: usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	for (int i = 0, len = 0; i < argc && len < (int)sizeof(C.command); i++)
		len += snprintf(C.command + len, sizeof(C.command) - (size_t)len, "%s%s",
				i ? " " : "", argv[i]);
	C.kills = kills ? (unsigned)kills : (C.quick ? 100 : 400);
	C.rounds = rounds >= 0 ? (unsigned)rounds : (C.quick ? 3 : 5);
	C.round_ns = (uint64_t)(round_ms ? round_ms : (C.quick ? 1000 : 2000)) * MSEC;

	bench_hist_init(&h_noticed);
	bench_hist_init(&h_forked);
	bench_hist_init(&h_ready);
	double load0 = loadavg();
	fprintf(stderr, "restart latency: %u kills...\n", C.kills);
	if (run_latency() != 0)
		return 1;
	if (C.rounds > 0) {
		fprintf(stderr, "chaos throughput: %u rounds of %.1f s per flow...\n", C.rounds,
			(double)C.round_ns / 1e9);
		if (run_chaos() != 0)
			return 1;
	}
	double load1 = loadavg();
	summarize();
	print_report();
	printf("\n(%u restarts in the latency flow; load average %.2f before, %.2f after)\n",
	       restarts_seen, load0, load1);
	if (C.json && write_json(load0, load1) != 0)
		return 1;
	if (bench_metrics_open(C.metrics) != 0) {
		fprintf(stderr, "bench_restart: %s: cannot write\n", C.metrics);
		return 1;
	}
	write_metrics();
	return bench_metrics_close() == 0 ? 0 : 1;
bad:
	usage(stderr);
	return 2;
}
