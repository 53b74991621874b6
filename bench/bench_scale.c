/* The worker-scaling benchmark: tasks/s of a CPU-heavy 1-step flow as its
 * step's nprocs grows, beside ideal linear scaling, in one run.
 *
 * The handler burns a fixed amount of CPU per task (an xorshift loop whose
 * length is calibrated at start to take --work-us, 1 ms by default, in this
 * process) and writes 8 bytes of result into the payload. One flow per
 * nprocs (1 .. --max-procs, default twice the CPUs this process may use,
 * at least 4), all started at once (idle ones sleep); the client keeps
 * WINDOW tasks in flight (submit_many, reap, and a poll on the flow's
 * eventfd when nothing is done: the client sleeps rather than spin, so
 * that it leaves the CPUs to the workers). Nothing is pinned.
 *
 * Per round, in turn: the handler run inline in this process (no IPC, one
 * CPU: the ceiling of one worker), then each flow; each measured for
 * round_ms after a warm-up, the tasks still in flight drained uncounted.
 * Rounds are outermost, odd rounds in reverse order. Reported: the median
 * tasks/s over rounds with min and max; "ideal" = nprocs x the 1-worker
 * median (linear scaling); "machine" = min(nprocs, CPUs) x the same (what
 * this many CPUs allow); efficiency = measured / ideal.
 *
 * usage: bench_scale [--quick] [--json FILE] [--markdown] [--metrics FILE]
 *                    [--plot-dir DIR] [--rounds N] [--round-ms N]
 *                    [--work-us N] [--max-procs N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#include "bench/common/clock.h"
#include "bench/common/cpu.h"
#include "bench/common/json.h"
#include "bench/common/metrics.h"
#include "bench/common/table.h"

#define MSEC UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define MAX_ROUNDS 32u
#define MAX_PROCS 32u
#define CHUNK 32u
#define PAYLOAD 64u

struct cfg {
	bool quick, markdown;
	const char *json, *metrics;
	unsigned rounds, max_procs, window, ncpus;
	uint64_t round_ns, warm_ns, work_ns;
	char command[512];
};
static struct cfg C;

/* The handler's work: iterations of the loop, set before any flow starts
 * (the workers are forks of this process and inherit it). */
static uint64_t work_iters;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_scale: %s: %s\n", what, rc < 0 ? sluice_strerror(rc) : "failed");
	return -1;
}

/* ---- the work ------------------------------------------------------------------------ */

static uint64_t burn(uint64_t iters, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static int heavy(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = burn(work_iters, items[i].user);
		if (items[i].payload_len >= sizeof(v))
			memcpy(items[i].payload, &v, sizeof(v));
	}
	return 0;
}

/* Sets work_iters so that one task takes about C.work_ns here. */
static void calibrate(void)
{
	uint64_t iters = 1 << 16, took = 0;
	volatile uint64_t sink;
	while (took < 50 * MSEC && iters < (UINT64_C(1) << 40)) {
		iters *= 2;
		uint64_t t0 = bench_now_ns();
		sink = burn(iters, t0);
		took = bench_now_ns() - t0;
	}
	(void)sink;
	work_iters = (uint64_t)((double)iters * (double)C.work_ns / (double)took);
	if (work_iters == 0)
		work_iters = 1;
}

/* The handler run inline for `ns`: tasks per second. */
static double inline_rate(uint64_t ns)
{
	volatile uint64_t sink = 0;
	uint64_t t0 = bench_now_ns(), done = 0, now = t0;
	while (now - t0 < ns) {
		sink += burn(work_iters, done);
		done++;
		now = bench_now_ns();
	}
	(void)sink;
	return (double)done / ((double)(now - t0) / 1e9);
}

/* ---- the flows --------------------------------------------------------------------------- */

struct sflow {
	sluice_flow_t *f;
	int efd;
	unsigned nprocs;
	uint64_t seq;
};
static struct sflow F[MAX_PROCS + 1]; /* F[n]: n workers */

static int sflow_start(struct sflow *s, unsigned nprocs)
{
	sluice_step_t st = {
		.size_of = sizeof(st), .name = "heavy", .handler = {.handle = heavy},
		.nprocs = nprocs, .batch_size = 1, .capacity = 2 * C.window,
	};
	/* The client sleeps for completions at once: a spinning client would
	 * take CPU from the workers it waits for. */
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = "bench-scale",
				.flags = SLUICE_FLOW_UNLISTED, .nsteps = 1, .steps = &st,
				.max_tasks = 2 * C.window, .client_wait = SLUICE_RING_SLEEP};
	char err[256];
	int rc = sluice_flow_create(&o, &s->f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "bench_scale: create: %s: %s\n", sluice_err_name(rc), err);
		return -1;
	}
	rc = sluice_flow_start(s->f, 30 * SEC);
	if (rc != 0) {
		fprintf(stderr, "bench_scale: start: %s: %s\n", sluice_err_name(rc),
			sluice_flow_error(s->f));
		sluice_flow_destroy(s->f);
		s->f = NULL;
		return -1;
	}
	s->efd = sluice_flow_eventfd(s->f);
	s->nprocs = nprocs;
	return s->efd >= 0 ? 0 : fail("eventfd", s->efd);
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

/* Keeps C.window tasks in flight through s for warm + ns; returns the
 * tasks per second finished in the last ns (the rest drain uncounted), or
 * a negative value. */
static double flow_rate(struct sflow *s, uint64_t warm, uint64_t ns)
{
	sluice_task_t *out[CHUNK], *batch[CHUNK];
	uint64_t start = bench_now_ns(), t0 = start + warm, end = t0 + ns;
	uint64_t done = 0, inflight = 0;
	for (;;) {
		uint64_t now = bench_now_ns();
		bool running = now < end;
		if (!running && inflight == 0)
			break;
		while (running && inflight < C.window) {
			unsigned k = 0;
			while (k < CHUNK && inflight + k < C.window &&
			       sluice_task_alloc(s->f, PAYLOAD, &batch[k]) == 0) {
				batch[k]->payload_len = PAYLOAD;
				batch[k]->user = s->seq++;
				k++;
			}
			if (k == 0)
				break;
			int rc = sluice_task_submit_many(s->f, batch, k, 10 * SEC);
			if (rc != (int)k)
				return fail("submit", rc < 0 ? rc : 0);
			inflight += k;
		}
		int n = sluice_flow_reap(s->f, out, CHUNK);
		if (n < 0)
			return fail("reap", n);
		now = bench_now_ns();
		for (int i = 0; i < n; i++) {
			if (out[i]->status != SLUICE_TASK_OK) {
				fprintf(stderr, "bench_scale: a task ended %s: %s\n",
					sluice_task_status_name(out[i]->status), out[i]->message);
				return -1;
			}
			done += now >= t0 && now < end;
			sluice_task_release(s->f, out[i]);
			inflight--;
		}
		if (n == 0) {
			struct pollfd p = {.fd = s->efd, .events = POLLIN};
			(void)poll(&p, 1, 10);
		}
	}
	return (double)done / ((double)ns / 1e9);
}

/* ---- results ------------------------------------------------------------------------------ */

static double r_inline[MAX_ROUNDS], r_flow[MAX_PROCS + 1][MAX_ROUNDS];
static unsigned rounds_done;

struct stats {
	double med, min, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct stats stats_of(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	struct stats r = {0, 0, 0};
	if (n > 0)
		r = (struct stats){n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1]};
	return r;
}

static void report(void)
{
	struct stats in = stats_of(r_inline, rounds_done);
	struct stats one = stats_of(r_flow[1], rounds_done);
	static const char *const h[] = {"workers", "tasks/s median", "min", "max", "ideal (linear)",
					"machine (CPUs)", "median / ideal"};
	struct bench_table *t = bench_table_new(7, h);
	char v[7][32];
	snprintf(v[0], 32, "inline (client, no IPC)");
	snprintf(v[1], 32, "%.0f", in.med);
	snprintf(v[2], 32, "%.0f", in.min);
	snprintf(v[3], 32, "%.0f", in.max);
	const char *row0[7] = {v[0], v[1], v[2], v[3], "", "", ""};
	bench_table_row(t, row0);
	FILE *pf = bench_plot_open("scale", "CPU-heavy 1-step flow: tasks/s by workers");
	if (pf)
		fprintf(pf, "# workers median min max ideal machine\n");
	for (unsigned n = 1; n <= C.max_procs; n++) {
		struct stats s = stats_of(r_flow[n], rounds_done);
		double ideal = one.med * n;
		double machine = one.med * (n < C.ncpus ? n : C.ncpus);
		snprintf(v[0], 32, "%u", n);
		snprintf(v[1], 32, "%.0f", s.med);
		snprintf(v[2], 32, "%.0f", s.min);
		snprintf(v[3], 32, "%.0f", s.max);
		snprintf(v[4], 32, "%.0f", ideal);
		snprintf(v[5], 32, "%.0f", machine);
		snprintf(v[6], 32, "%.2f", ideal > 0 ? s.med / ideal : 0);
		const char *row[7] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
		bench_table_row(t, row);
		bench_metric(s.med, "/s", "scale.n%u.median", n);
		bench_metric(s.min, "/s", "scale.n%u.min", n);
		bench_metric(s.max, "/s", "scale.n%u.max", n);
		bench_metric(ideal, "/s", "scale.n%u.ideal", n);
		bench_metric(machine, "/s", "scale.n%u.machine", n);
		if (pf)
			fprintf(pf, "%u %.1f %.1f %.1f %.1f %.1f\n", n, s.med, s.min, s.max, ideal,
				machine);
	}
	if (pf)
		fclose(pf);
	bench_metric(in.med, "/s", "scale.inline.median");
	bench_metric(in.min, "/s", "scale.inline.min");
	bench_metric(in.max, "/s", "scale.inline.max");
	printf("\nWorker scaling: 1-step flow, %.0f us of CPU per task, %u tasks in flight, "
	       "%u CPUs (tasks/s, median of %u rounds of %.0f ms):\n\n",
	       (double)C.work_ns / 1e3, C.window, C.ncpus, rounds_done, (double)C.round_ns / 1e6);
	if (t)
		(C.markdown ? bench_table_print_markdown : bench_table_print)(t, stdout);
	bench_table_free(t);
	printf("\n1 worker / inline: %.2f (what the flow costs a task beside running it in "
	       "the client)\n", in.med > 0 ? one.med / in.med : 0);
}

static int write_json(const char *model, int nproc, const char *kernel)
{
	FILE *f = fopen(C.json, "w");
	if (f == NULL)
		return fail("open json", -errno);
	struct bench_json j;
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "bench", "scale");
	bench_json_str(&j, "command", C.command);
	bench_json_obj_begin(&j, "machine");
	bench_json_str(&j, "model", model);
	bench_json_num(&j, "cpus", nproc);
	bench_json_str(&j, "kernel", kernel);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "config");
	bench_json_bool(&j, "quick", C.quick);
	bench_json_u64(&j, "rounds", rounds_done);
	bench_json_u64(&j, "round_ns", C.round_ns);
	bench_json_u64(&j, "work_ns", C.work_ns);
	bench_json_u64(&j, "work_iters", work_iters);
	bench_json_u64(&j, "window", C.window);
	bench_json_u64(&j, "cpus_allowed", C.ncpus);
	bench_json_obj_end(&j);
	struct stats in = stats_of(r_inline, rounds_done);
	struct stats one = stats_of(r_flow[1], rounds_done);
	bench_json_obj_begin(&j, "inline");
	bench_json_num(&j, "tasks_per_s_median", in.med);
	bench_json_num(&j, "min", in.min);
	bench_json_num(&j, "max", in.max);
	bench_json_obj_end(&j);
	bench_json_arr_begin(&j, "workers");
	for (unsigned n = 1; n <= C.max_procs; n++) {
		struct stats s = stats_of(r_flow[n], rounds_done);
		bench_json_obj_begin(&j, NULL);
		bench_json_u64(&j, "nprocs", n);
		bench_json_num(&j, "tasks_per_s_median", s.med);
		bench_json_num(&j, "min", s.min);
		bench_json_num(&j, "max", s.max);
		bench_json_num(&j, "ideal", one.med * n);
		bench_json_num(&j, "machine", one.med * (n < C.ncpus ? n : C.ncpus));
		bench_json_arr_begin(&j, "rounds");
		for (unsigned r = 0; r < rounds_done; r++)
			bench_json_num(&j, NULL, r_flow[n][r]);
		bench_json_arr_end(&j);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	return fclose(f) == 0 ? 0 : fail("write json", -errno);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_scale [options]\n"
		   "  --quick          short run (about 5 s)\n"
		   "  --json FILE      write the results as JSON\n"
		   "  --markdown       print the table as Markdown\n"
		   "  --metrics FILE   write the figures for sluice-bench (key, value, unit)\n"
		   "  --plot-dir DIR   write the plot data there, for gnuplot\n"
		   "  --rounds N       rounds (default 5, quick 3)\n"
		   "  --round-ms N     measured time per flow per round (default 1000, quick 250)\n"
		   "  --work-us N      CPU time of one task (default 1000)\n"
		   "  --max-procs N    largest nprocs (default 2 x CPUs, at least 4)\n");
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_QUICK = 256, O_JSON, O_MD, O_METRICS, O_PLOT_DIR, O_ROUNDS, O_ROUND_MS, O_WORK,
	       O_MAXP, O_HELP };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"json", required_argument, NULL, O_JSON},
		{"markdown", no_argument, NULL, O_MD},
		{"metrics", required_argument, NULL, O_METRICS},
		{"plot-dir", required_argument, NULL, O_PLOT_DIR},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"round-ms", required_argument, NULL, O_ROUND_MS},
		{"work-us", required_argument, NULL, O_WORK},
		{"max-procs", required_argument, NULL, O_MAXP},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	long rounds = 0, round_ms = 0, work_us = 1000, max_procs = 0;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_QUICK: C.quick = true; break;
		case O_JSON: C.json = optarg; break;
		case O_MD: C.markdown = true; break;
		case O_METRICS: C.metrics = optarg; break;
		case O_PLOT_DIR: bench_plot_dir(optarg); break;
		case O_ROUNDS:
			if (parse_num(optarg, 1, MAX_ROUNDS, &rounds) != 0)
				goto bad;
			break;
		case O_ROUND_MS:
			if (parse_num(optarg, 10, 600000, &round_ms) != 0)
				goto bad;
			break;
		case O_WORK:
			if (parse_num(optarg, 1, 1000000, &work_us) != 0)
				goto bad;
			break;
		case O_MAXP:
			if (parse_num(optarg, 1, MAX_PROCS, &max_procs) != 0)
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
	int cpus[BENCH_MAX_CPUS];
	int ncpu = bench_cpus_allowed(cpus, BENCH_MAX_CPUS);
	C.ncpus = ncpu > 0 ? (unsigned)ncpu : 1;
	C.rounds = rounds ? (unsigned)rounds : (C.quick ? 3 : 5);
	C.round_ns = (uint64_t)(round_ms ? round_ms : (C.quick ? 250 : 1000)) * MSEC;
	C.warm_ns = C.round_ns / 5;
	C.work_ns = (uint64_t)work_us * 1000;
	C.max_procs = max_procs ? (unsigned)max_procs
				: (2 * C.ncpus < 4 ? 4 : 2 * C.ncpus > MAX_PROCS ? MAX_PROCS : 2 * C.ncpus);
	C.window = 4 * C.max_procs;

	char model[256], kernel[128];
	int nproc;
	bench_machine(model, sizeof(model), &nproc, kernel, sizeof(kernel));
	calibrate();
	printf("%s\n", C.command);
	printf("bench_scale: %s, %d CPUs (%u allowed), Linux %s\n", model, nproc, C.ncpus, kernel);
	printf("%u rounds of %.0f ms per flow after %.0f ms warm-up; %.0f us of CPU per task "
	       "(%" PRIu64 " iterations); 1 .. %u workers; %u tasks in flight\n",
	       C.rounds, (double)C.round_ns / 1e6, (double)C.warm_ns / 1e6,
	       (double)C.work_ns / 1e3, work_iters, C.max_procs, C.window);
	fflush(stdout);

	int failed = 0;
	for (unsigned n = 1; n <= C.max_procs && !failed; n++)
		failed = sflow_start(&F[n], n) != 0;
	for (unsigned r = 0; r < C.rounds && !failed; r++) {
		uint64_t t0 = bench_now_ns();
		/* Position 0 is the inline run, then 1 .. max_procs workers. */
		for (unsigned k = 0; k <= C.max_procs && !failed; k++) {
			unsigned n = r % 2 ? C.max_procs - k : k;
			if (n == 0) {
				(void)inline_rate(C.warm_ns);
				r_inline[r] = inline_rate(C.round_ns);
				continue;
			}
			double v = flow_rate(&F[n], C.warm_ns, C.round_ns);
			if (v < 0)
				failed = 1;
			else
				r_flow[n][r] = v;
		}
		if (!failed)
			rounds_done++;
		printf("round %u/%u done in %.1f s\n", r + 1, C.rounds,
		       (double)(bench_now_ns() - t0) / 1e9);
		fflush(stdout);
	}
	for (unsigned n = 1; n <= C.max_procs; n++)
		sflow_stop(&F[n]);
	if (rounds_done > 0) {
		if (bench_metrics_open(C.metrics) != 0) {
			fprintf(stderr, "bench_scale: %s: cannot write\n", C.metrics);
			failed = 1;
		}
		report();
		if (bench_metrics_close() != 0)
			failed = 1;
		if (C.json && write_json(model, nproc, kernel) != 0)
			failed = 1;
	}
	if (failed)
		fprintf(stderr, "bench_scale: FAILED (see above)\n");
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
