/* The cost benchmark: what an idle flow costs in CPU and memory, and how
 * much of its arena is bookkeeping.
 *
 *   - idle CPU: a flow of --steps no-op steps of --nprocs workers each (3 x
 *     2 by default), started, run through 2,000 tasks so that every worker
 *     has been through its loop, then left alone; over --idle-s seconds (5
 *     by default) the CPU time of its supervisor and of each worker, from
 *     /proc/PID/schedstat (nanoseconds on a CPU), as % of one core, and
 *     their context switches per second (wake-ups), from /proc/PID/status.
 *     The client (this process) sleeps meanwhile.
 *   - memory, right after: each process's resident memory from
 *     /proc/PID/smaps: RSS; PSS (shared pages divided among the processes
 *     that map them, so PSS summed over processes counts every page once);
 *     private (pages only this process maps: what it costs on its own);
 *     and the arena's share of each (the mapping of the flow's memfd). The
 *     flow's total counts the arena once: the non-arena PSS of every
 *     process plus the arena's resident pages (the memfd's allocated
 *     blocks).
 *   - bookkeeping: per size class of the block allocator, its control line
 *     and per-block words (sluice_blocks_stats) as a share of the class's
 *     block bytes; and the arena's regions (flow tables, task table,
 *     rings, health records, blocks) as shares of the arena.
 * Goals: the idle flow under 1% of a core; under 1 MiB private per worker
 * (a no-op handler owns nothing); bookkeeping under 1% per class.
 *
 * usage: bench_cost [--quick] [--json FILE] [--markdown] [--metrics FILE]
 *                   [--idle-s N] [--steps N] [--nprocs N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#include "bench/common/clock.h"
#include "bench/common/cpu.h"
#include "bench/common/json.h"
#include "bench/common/metrics.h"
#include "bench/common/table.h"
#include "runtime/flow_internal.h"

#define SEC UINT64_C(1000000000)
#define MSEC UINT64_C(1000000)
#define MAX_STEPS 8u
#define MAX_NPROCS 8u
#define MAX_PROCS (2 + MAX_STEPS * MAX_NPROCS)
#define WARM_TASKS 2000u
#define WINDOW 64u

struct cfg {
	bool quick, markdown;
	const char *json, *metrics;
	unsigned steps, nprocs;
	uint64_t idle_ns;
	char command[512];
};
static struct cfg C;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_cost: %s: %s\n", what, rc < 0 ? sluice_strerror(rc) : "failed");
	return -1;
}

/* ---- /proc -------------------------------------------------------------------------- */

/* Nanoseconds process `pid` has spent on a CPU (all its threads), or -1. */
static int64_t cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	unsigned long long ns;
	int ok = fscanf(f, "%llu", &ns) == 1;
	fclose(f);
	return ok ? (int64_t)ns : -1;
}

/* Voluntary plus involuntary context switches of `pid`, or -1. */
static int64_t ctx_switches(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	int64_t sum = 0;
	int seen = 0;
	unsigned long long v;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1) {
			sum += (int64_t)v;
			seen++;
		}
	}
	fclose(f);
	return seen == 2 ? sum : -1;
}

/* Resident memory of one process, KiB: everything, and its mappings of
 * the arena (the memfd whose inode is `arena_ino`). */
struct mem {
	uint64_t rss, pss, priv;
	uint64_t arena_rss, arena_pss, arena_priv;
};

static int read_smaps(pid_t pid, unsigned long arena_ino, struct mem *m)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	memset(m, 0, sizeof(*m));
	bool arena = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perms[8];
		unsigned long long kb;
		/* A mapping's header: "lo-hi perms offset dev inode [path]". */
		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu", &lo, &hi, perms, &ino) == 4) {
			arena = ino == arena_ino && strstr(line, "memfd:") != NULL;
			continue;
		}
		if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
			m->rss += kb;
			m->arena_rss += arena ? kb : 0;
		} else if (sscanf(line, "Pss: %llu kB", &kb) == 1) {
			m->pss += kb;
			m->arena_pss += arena ? kb : 0;
		} else if (sscanf(line, "Private_Clean: %llu kB", &kb) == 1 ||
			   sscanf(line, "Private_Dirty: %llu kB", &kb) == 1) {
			m->priv += kb;
			m->arena_priv += arena ? kb : 0;
		}
	}
	fclose(f);
	return m->rss > 0 ? 0 : -ENOENT;
}

/* ---- the flow ---------------------------------------------------------------------------- */

static int noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

/* Runs `count` tasks through f, WINDOW at a time. */
static int warm(sluice_flow_t *f, unsigned count)
{
	sluice_task_t *t[WINDOW];
	for (unsigned done = 0; done < count; done += WINDOW) {
		for (unsigned i = 0; i < WINDOW; i++) {
			int rc = sluice_task_alloc(f, 64, &t[i]);
			if (rc == 0) {
				t[i]->payload_len = 64;
				rc = sluice_task_submit(f, t[i], 10 * SEC);
			}
			if (rc != 0)
				return fail("submit", rc);
		}
		for (unsigned i = 0; i < WINDOW; i++) {
			int rc = sluice_task_wait(f, t[i], 10 * SEC);
			if (rc != 0 || t[i]->status != SLUICE_TASK_OK)
				return fail("wait", rc);
			sluice_task_release(f, t[i]);
		}
	}
	return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

struct proc {
	char role[40];
	pid_t pid;
	double cpu_pct, wakeups_per_s;
	bool has_cpu;
	struct mem m;
};
static struct proc P[MAX_PROCS];
static unsigned nprocs;

struct cls {
	uint64_t block_size, count, bytes, bookkeeping;
};
static struct cls K[SLUICE_BLOCKS_MAX_CLASSES];
static unsigned nclasses;

static const char *const region_names[] = {"", "flow tables", "task table", "blocks", "rings",
					   "health records"};
#define NREGIONS 5u
static uint64_t region_size[NREGIONS + 1];
static uint64_t arena_size, arena_resident_kib, blocks_data;

static double idle_total_pct, idle_max_pct, idle_wakeups;
static uint64_t total_kib, worker_priv_max, worker_priv_sum, nworkers;

static void measure_layout(sluice_flow_t *f)
{
	arena_size = sluice_arena_size(f->arena);
	for (uint32_t id = 1; id <= NREGIONS; id++) {
		uint64_t off, size;
		if (sluice_arena_region(f->arena, id, &off, &size) == 0)
			region_size[id] = size;
	}
	nclasses = f->blocks.nclasses;
	for (uint32_t c = 0; c < nclasses; c++) {
		sluice_blocks_stats_t s;
		if (sluice_blocks_stats(&f->blocks, c, &s) != 0)
			continue;
		K[c] = (struct cls){s.block_size, s.capacity, s.block_size * s.capacity,
				    s.bookkeeping_bytes};
		blocks_data += K[c].bytes;
	}
	struct stat st;
	if (fstat(sluice_arena_fd(f->arena), &st) == 0)
		arena_resident_kib = (uint64_t)st.st_blocks * 512 / 1024;
}

static void fmt_kib(char *b, size_t n, uint64_t kib)
{
	if (kib >= 10240)
		snprintf(b, n, "%.1f MiB", (double)kib / 1024);
	else
		snprintf(b, n, "%" PRIu64 " KiB", kib);
}

static void report(void)
{
	void (*print)(const struct bench_table *, FILE *) =
		C.markdown ? bench_table_print_markdown : bench_table_print;
	printf("\nAn idle flow (%u steps x %u workers, no-op handler) over %.0f s, and its "
	       "memory:\n\n", C.steps, C.nprocs, (double)C.idle_ns / 1e9);
	static const char *const h1[] = {"process", "CPU % of a core", "wake-ups/s", "RSS",
					 "PSS", "private", "arena RSS", "arena private"};
	struct bench_table *t = bench_table_new(8, h1);
	for (unsigned i = 0; t && i < nprocs; i++) {
		const struct proc *p = &P[i];
		char v[8][32];
		snprintf(v[1], 32, p->has_cpu ? "%.3f" : "-", p->cpu_pct);
		snprintf(v[2], 32, p->has_cpu ? "%.1f" : "-", p->wakeups_per_s);
		fmt_kib(v[3], 32, p->m.rss);
		fmt_kib(v[4], 32, p->m.pss);
		fmt_kib(v[5], 32, p->m.priv);
		fmt_kib(v[6], 32, p->m.arena_rss);
		fmt_kib(v[7], 32, p->m.arena_priv);
		const char *row[8] = {p->role, v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
		bench_table_row(t, row);
	}
	if (t)
		print(t, stdout);
	bench_table_free(t);
	char tk[32], ar[32], as[32];
	fmt_kib(tk, sizeof(tk), total_kib);
	fmt_kib(ar, sizeof(ar), arena_resident_kib);
	fmt_kib(as, sizeof(as), arena_size / 1024);
	printf("\nidle: supervisor and workers %.3f%% of a core in all (the busiest %.3f%%), "
	       "%.1f wake-ups/s\n", idle_total_pct, idle_max_pct, idle_wakeups);
	printf("memory: %s in all (PSS outside the arena, plus the arena's %s resident of %s, "
	       "counted once); private per worker: %.0f KiB at most, %.0f KiB on average\n",
	       tk, ar, as, (double)worker_priv_max,
	       nworkers ? (double)worker_priv_sum / (double)nworkers : 0);

	printf("\nThe arena's bookkeeping, per size class of the block allocator:\n\n");
	static const char *const h2[] = {"class", "blocks", "block bytes", "bookkeeping",
					 "share"};
	t = bench_table_new(5, h2);
	for (unsigned c = 0; t && c < nclasses; c++) {
		char v[5][32];
		if (K[c].block_size >= (1u << 20))
			snprintf(v[0], 32, "%" PRIu64 " MiB", K[c].block_size >> 20);
		else if (K[c].block_size >= 1024)
			snprintf(v[0], 32, "%" PRIu64 " KiB", K[c].block_size >> 10);
		else
			snprintf(v[0], 32, "%" PRIu64 " B", K[c].block_size);
		snprintf(v[1], 32, "%" PRIu64, K[c].count);
		snprintf(v[2], 32, "%" PRIu64, K[c].bytes);
		snprintf(v[3], 32, "%" PRIu64, K[c].bookkeeping);
		snprintf(v[4], 32, "%.3f%%", 100.0 * (double)K[c].bookkeeping / (double)K[c].bytes);
		const char *row[5] = {v[0], v[1], v[2], v[3], v[4]};
		bench_table_row(t, row);
	}
	if (t)
		print(t, stdout);
	bench_table_free(t);
	printf("\nThe arena's regions (%" PRIu64 " bytes in all):\n\n", arena_size);
	static const char *const h3[] = {"region", "bytes", "share of the arena"};
	t = bench_table_new(3, h3);
	for (unsigned id = 1; t && id <= NREGIONS; id++) {
		char v[3][32];
		snprintf(v[0], 32, "%s", region_names[id]);
		snprintf(v[1], 32, "%" PRIu64, region_size[id]);
		snprintf(v[2], 32, "%.3f%%", 100.0 * (double)region_size[id] / (double)arena_size);
		const char *row[3] = {v[0], v[1], v[2]};
		bench_table_row(t, row);
	}
	if (t)
		print(t, stdout);
	bench_table_free(t);
	double over = 100.0 * (double)(arena_size - blocks_data) / (double)arena_size;
	printf("\neverything but block bytes: %.3f%% of the arena\n", over);
}

static void write_metrics(void)
{
	bench_metric(idle_total_pct, "%", "cost.idle.flow_pct");
	bench_metric(idle_max_pct, "%", "cost.idle.max_process_pct");
	bench_metric(idle_wakeups, "/s", "cost.idle.wakeups");
	bench_metric((double)total_kib, "KiB", "cost.mem.total_kib");
	bench_metric((double)worker_priv_max, "KiB", "cost.mem.worker_private_max_kib");
	bench_metric(nworkers ? (double)worker_priv_sum / (double)nworkers : NAN, "KiB",
		     "cost.mem.worker_private_mean_kib");
	bench_metric((double)arena_resident_kib, "KiB", "cost.mem.arena_resident_kib");
	for (unsigned i = 0; i < nprocs; i++) {
		if (strcmp(P[i].role, "client") == 0 || strcmp(P[i].role, "supervisor") == 0) {
			bench_metric((double)P[i].m.pss, "KiB", "cost.mem.%s_pss_kib", P[i].role);
			bench_metric((double)P[i].m.priv, "KiB", "cost.mem.%s_private_kib", P[i].role);
		}
	}
	double worst = 0;
	for (unsigned c = 0; c < nclasses; c++) {
		double pct = 100.0 * (double)K[c].bookkeeping / (double)K[c].bytes;
		bench_metric(pct, "%", "cost.blocks.%" PRIu64 ".bookkeeping_pct", K[c].block_size);
		worst = pct > worst ? pct : worst;
	}
	bench_metric(worst, "%", "cost.blocks.worst_bookkeeping_pct");
	bench_metric(100.0 * (double)(arena_size - blocks_data) / (double)arena_size, "%",
		     "cost.arena.overhead_pct");
}

static int write_json(const char *model, int nproc, const char *kernel)
{
	FILE *f = fopen(C.json, "w");
	if (f == NULL)
		return fail("open json", -errno);
	struct bench_json j;
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "bench", "cost");
	bench_json_str(&j, "command", C.command);
	bench_json_obj_begin(&j, "machine");
	bench_json_str(&j, "model", model);
	bench_json_num(&j, "cpus", nproc);
	bench_json_str(&j, "kernel", kernel);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "config");
	bench_json_bool(&j, "quick", C.quick);
	bench_json_u64(&j, "steps", C.steps);
	bench_json_u64(&j, "nprocs", C.nprocs);
	bench_json_num(&j, "idle_s", (double)C.idle_ns / 1e9);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "idle");
	bench_json_num(&j, "flow_pct_core", idle_total_pct);
	bench_json_num(&j, "max_process_pct_core", idle_max_pct);
	bench_json_num(&j, "wakeups_per_s", idle_wakeups);
	bench_json_obj_end(&j);
	bench_json_arr_begin(&j, "processes");
	for (unsigned i = 0; i < nprocs; i++) {
		const struct proc *p = &P[i];
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "role", p->role);
		if (p->has_cpu) {
			bench_json_num(&j, "idle_cpu_pct_core", p->cpu_pct);
			bench_json_num(&j, "idle_wakeups_per_s", p->wakeups_per_s);
		}
		bench_json_u64(&j, "rss_kib", p->m.rss);
		bench_json_u64(&j, "pss_kib", p->m.pss);
		bench_json_u64(&j, "private_kib", p->m.priv);
		bench_json_u64(&j, "arena_rss_kib", p->m.arena_rss);
		bench_json_u64(&j, "arena_pss_kib", p->m.arena_pss);
		bench_json_u64(&j, "arena_private_kib", p->m.arena_priv);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_begin(&j, "memory");
	bench_json_u64(&j, "total_kib", total_kib);
	bench_json_u64(&j, "arena_resident_kib", arena_resident_kib);
	bench_json_u64(&j, "arena_bytes", arena_size);
	bench_json_u64(&j, "worker_private_max_kib", worker_priv_max);
	bench_json_obj_end(&j);
	bench_json_arr_begin(&j, "size_classes");
	for (unsigned c = 0; c < nclasses; c++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_u64(&j, "block_size", K[c].block_size);
		bench_json_u64(&j, "blocks", K[c].count);
		bench_json_u64(&j, "block_bytes", K[c].bytes);
		bench_json_u64(&j, "bookkeeping_bytes", K[c].bookkeeping);
		bench_json_num(&j, "bookkeeping_pct",
			       100.0 * (double)K[c].bookkeeping / (double)K[c].bytes);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_arr_begin(&j, "regions");
	for (unsigned id = 1; id <= NREGIONS; id++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "region", region_names[id]);
		bench_json_u64(&j, "bytes", region_size[id]);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	return fclose(f) == 0 ? 0 : fail("write json", -errno);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_cost [options]\n"
		   "  --quick          short run (idle 2 s)\n"
		   "  --json FILE      write the results as JSON\n"
		   "  --markdown       print the tables as Markdown\n"
		   "  --metrics FILE   write the figures for sluice-bench (key, value, unit)\n"
		   "  --idle-s N       idle time measured (default 5, quick 2)\n"
		   "  --steps N        steps of the flow (default 3)\n"
		   "  --nprocs N       workers per step (default 2)\n");
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
	enum { O_QUICK = 256, O_JSON, O_MD, O_METRICS, O_IDLE, O_STEPS, O_NPROCS, O_HELP };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"json", required_argument, NULL, O_JSON},
		{"markdown", no_argument, NULL, O_MD},
		{"metrics", required_argument, NULL, O_METRICS},
		{"idle-s", required_argument, NULL, O_IDLE},
		{"steps", required_argument, NULL, O_STEPS},
		{"nprocs", required_argument, NULL, O_NPROCS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	long idle_s = 0, steps = 3, np = 2;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_QUICK: C.quick = true; break;
		case O_JSON: C.json = optarg; break;
		case O_MD: C.markdown = true; break;
		case O_METRICS: C.metrics = optarg; break;
		case O_IDLE:
			if (parse_num(optarg, 1, 3600, &idle_s) != 0)
				goto bad;
			break;
		case O_STEPS:
			if (parse_num(optarg, 1, MAX_STEPS, &steps) != 0)
				goto bad;
			break;
		case O_NPROCS:
			if (parse_num(optarg, 1, MAX_NPROCS, &np) != 0)
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
	C.steps = (unsigned)steps;
	C.nprocs = (unsigned)np;
	C.idle_ns = (uint64_t)(idle_s ? idle_s : (C.quick ? 2 : 5)) * SEC;

	char model[256], kernel[128];
	int nproc;
	bench_machine(model, sizeof(model), &nproc, kernel, sizeof(kernel));
	printf("%s\n", C.command);
	printf("bench_cost: %s, %d CPUs, Linux %s; a flow of %u steps x %u workers, idle %.0f s\n",
	       model, nproc, kernel, C.steps, C.nprocs, (double)C.idle_ns / 1e9);
	fflush(stdout);

	sluice_step_t st[MAX_STEPS];
	static const char *const names[MAX_STEPS] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
	for (unsigned k = 0; k < C.steps; k++)
		st[k] = (sluice_step_t){.size_of = sizeof(sluice_step_t), .name = names[k],
					.handler = {.handle = noop}, .nprocs = C.nprocs,
					.batch_size = 8};
	/* Listed, as a flow is by default (its supervisor listens on the
	 * control socket); the pid keeps the name unique. */
	char fname[64];
	snprintf(fname, sizeof(fname), "bench-cost-%d", (int)getpid());
	sluice_flow_opts_t fo = {.size_of = sizeof(fo), .name = fname, .nsteps = C.steps,
				 .steps = st};
	sluice_flow_t *f;
	char err[256];
	int rc = sluice_flow_create(&fo, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "bench_cost: create: %s: %s\n", sluice_err_name(rc), err);
		return 1;
	}
	rc = sluice_flow_start(f, 30 * SEC);
	if (rc != 0) {
		fprintf(stderr, "bench_cost: start: %s: %s\n", sluice_err_name(rc), sluice_flow_error(f));
		sluice_flow_destroy(f);
		return 1;
	}
	int failed = warm(f, WARM_TASKS) != 0;

	/* The processes: supervisor, then the workers in step order. */
	snprintf(P[0].role, sizeof(P[0].role), "client");
	P[0].pid = getpid();
	snprintf(P[1].role, sizeof(P[1].role), "supervisor");
	P[1].pid = (pid_t)sluice_flow_supervisor_pid(f);
	nprocs = 2;
	for (unsigned k = 0; k < C.steps; k++)
		for (unsigned i = 0; i < C.nprocs; i++) {
			struct proc *p = &P[nprocs++];
			snprintf(p->role, sizeof(p->role), "worker %.8s.%u", names[k], i);
			p->pid = (pid_t)sluice_flow_worker_pid(f, k, i);
		}

	/* Idle: let the spinners fall asleep, then measure. */
	bench_sleep_ns(200 * MSEC);
	int64_t c0[MAX_PROCS], s0[MAX_PROCS];
	for (unsigned i = 1; i < nprocs; i++) {
		c0[i] = cpu_ns(P[i].pid);
		s0[i] = ctx_switches(P[i].pid);
	}
	uint64_t t0 = bench_now_ns();
	if (!failed)
		bench_sleep_ns(C.idle_ns);
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	for (unsigned i = 1; i < nprocs && !failed; i++) {
		int64_t c1 = cpu_ns(P[i].pid), s1 = ctx_switches(P[i].pid);
		if (c0[i] < 0 || c1 < 0 || s0[i] < 0 || s1 < 0) {
			fprintf(stderr, "bench_cost: cannot read /proc/%d\n", (int)P[i].pid);
			failed = 1;
			break;
		}
		P[i].has_cpu = true;
		P[i].cpu_pct = 100.0 * (double)(c1 - c0[i]) / 1e9 / secs;
		P[i].wakeups_per_s = (double)(s1 - s0[i]) / secs;
		idle_total_pct += P[i].cpu_pct;
		idle_max_pct = P[i].cpu_pct > idle_max_pct ? P[i].cpu_pct : idle_max_pct;
		idle_wakeups += P[i].wakeups_per_s;
	}

	/* Memory, then the layout. */
	struct stat st_arena;
	unsigned long ino = fstat(sluice_arena_fd(f->arena), &st_arena) == 0 ? st_arena.st_ino : 0;
	for (unsigned i = 0; i < nprocs && !failed; i++) {
		if ((rc = read_smaps(P[i].pid, ino, &P[i].m)) != 0) {
			fprintf(stderr, "bench_cost: /proc/%d/smaps: %s\n", (int)P[i].pid, strerror(-rc));
			failed = 1;
		}
		total_kib += P[i].m.pss - P[i].m.arena_pss;
		if (strncmp(P[i].role, "worker", 6) == 0) {
			worker_priv_max = P[i].m.priv > worker_priv_max ? P[i].m.priv : worker_priv_max;
			worker_priv_sum += P[i].m.priv;
			nworkers++;
		}
	}
	measure_layout(f);
	total_kib += arena_resident_kib;
	rc = sluice_flow_stop(f, 10 * SEC);
	if (rc != 0)
		failed |= fail("stop", rc) != 0;
	sluice_flow_destroy(f);
	if (!failed) {
		report();
		if (bench_metrics_open(C.metrics) != 0) {
			fprintf(stderr, "bench_cost: %s: cannot write\n", C.metrics);
			failed = 1;
		}
		write_metrics();
		if (bench_metrics_close() != 0)
			failed = 1;
		if (C.json && write_json(model, nproc, kernel) != 0)
			failed = 1;
	}
	if (failed)
		fprintf(stderr, "bench_cost: FAILED (see above)\n");
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
