/* bench_alloc: alloc+free pairs per second, sluice's block allocator against
 * glibc malloc/free, the same sizes, measured in the same run.
 *
 * Each pair is: take a block of the size, write one word into it, give it
 * back. Sizes: 256 B, 4 KiB, 64 KiB, and a mixed sequence (log-uniform
 * between 64 B and 64 KiB, the same sequence for all allocators); and
 * bursts: take 256 blocks of 256 B, then give them all back, which runs
 * through every layer (sluice's per-thread cache refills and flushes, glibc's
 * tcache overflows into its bins). sluice runs twice: plain
 * (sluice_blocks_alloc/free: the shared free stacks on every call) and
 * through a per-thread cache (sluice_blocks_cache_alloc/free). From one
 * process, and from two processes at once (forked, pinned to separate CPUs
 * when two are allowed): sluice's two processes share one arena (plain,
 * they fight over its free stacks; cached, over the free stacks only on a
 * refill or flush); malloc's two each have a heap of their own.
 * Rounds rotate the order of the three so that noise hits all; the table
 * shows the median of the rounds and the ratios to malloc (> 1: sluice is
 * faster).
 *
 *   bench_alloc [--quick] [--rounds N] [--pairs N]
 */
#define _GNU_SOURCE
#include <sluice/arena.h>
#include <sluice/blocks.h>
#include <sluice/error.h>

#include "base/atomic.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION 1
#define MAX_ROUNDS 31
#define SIZES_LEN 4096 /* a power of two: the mixed sequence repeats */

enum alloc_kind { SLUICE, CACHED, MALLOC, NKINDS };
static const char *const kind_name[] = {"sluice", "sluice cached", "malloc"};

struct workload {
	const char *name;
	uint64_t fixed; /* 0: the mixed sequence */
	uint32_t burst; /* 0: alloc+free pairs; else take this many, then free them */
};

#define MAX_BURST 256
static const struct workload workloads[] = {
	{"256 B", 256, 0},
	{"4 KiB", 4096, 0},
	{"64 KiB", 65536, 0},
	{"mixed 64 B-64 KiB", 0, 0},
	{"256 B, bursts of 256", 256, 256},
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

/* Shared with the children: a start line and each child's timings. */
struct shared {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;
	_Atomic uint64_t start_ns[2];
	_Atomic uint64_t end_ns[2];
	_Atomic uint32_t failed;
};

static sluice_blocks_t blocks;
static sluice_blocks_cache_t cache; /* each child's own, as owner 10 + child */
static uint64_t sizes[SIZES_LEN];
static uint32_t burst;
static struct shared *shared;
static int cpus[2];
static int ncpus_allowed;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keeps the compiler from dropping a malloc/free pair whose block it can
 * see is unused. */
static inline void escape(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static int run_sluice(uint64_t pairs, uint32_t owner)
{
	for (uint64_t i = 0; i < pairs; i++) {
		sluice_block_t h;
		int rc = sluice_blocks_alloc(&blocks, sizes[i & (SIZES_LEN - 1)], owner, &h);
		if (__builtin_expect(rc != 0, 0)) {
			fprintf(stderr, "sluice_blocks_alloc: %s\n", sluice_strerror(rc));
			return 1;
		}
		uint64_t *p = sluice_blocks_ptr(&blocks, h, NULL);
		*p = i;
		escape(p);
		if (__builtin_expect(sluice_blocks_free(&blocks, h, owner) != 0, 0))
			return 1;
	}
	return 0;
}

static int run_cached(uint64_t pairs)
{
	for (uint64_t i = 0; i < pairs; i++) {
		sluice_block_t h;
		int rc = sluice_blocks_cache_alloc(&cache, sizes[i & (SIZES_LEN - 1)], &h);
		if (__builtin_expect(rc != 0, 0)) {
			fprintf(stderr, "sluice_blocks_cache_alloc: %s\n", sluice_strerror(rc));
			return 1;
		}
		uint64_t *p = sluice_blocks_ptr(&blocks, h, NULL);
		*p = i;
		escape(p);
		if (__builtin_expect(sluice_blocks_cache_free(&cache, h) != 0, 0))
			return 1;
	}
	return 0;
}

/* Bursts: `burst` blocks taken, each written once, then all given back, in
 * the order taken. pairs is rounded down to whole bursts. */
static int run_burst(enum alloc_kind kind, uint64_t pairs, uint32_t owner)
{
	sluice_block_t h[MAX_BURST];
	void *p[MAX_BURST];
	for (uint64_t i = 0; i + burst <= pairs; i += burst) {
		for (uint32_t j = 0; j < burst; j++) {
			uint64_t size = sizes[(i + j) & (SIZES_LEN - 1)];
			int rc = 0;
			if (kind == MALLOC) {
				p[j] = malloc(size);
				rc = p[j] == NULL ? SLUICE_ENOMEM : 0;
			} else {
				rc = kind == CACHED ? sluice_blocks_cache_alloc(&cache, size, &h[j])
						    : sluice_blocks_alloc(&blocks, size, owner, &h[j]);
				p[j] = rc == 0 ? sluice_blocks_ptr(&blocks, h[j], NULL) : NULL;
			}
			if (__builtin_expect(rc != 0, 0)) {
				fprintf(stderr, "%s alloc: %s\n", kind_name[kind], sluice_strerror(rc));
				return 1;
			}
			*(uint64_t *)p[j] = i + j;
			escape(p[j]);
		}
		for (uint32_t j = 0; j < burst; j++) {
			int rc = 0;
			if (kind == MALLOC)
				free(p[j]);
			else
				rc = kind == CACHED ? sluice_blocks_cache_free(&cache, h[j])
						    : sluice_blocks_free(&blocks, h[j], owner);
			if (__builtin_expect(rc != 0, 0))
				return 1;
		}
	}
	return 0;
}

static int run_malloc(uint64_t pairs)
{
	for (uint64_t i = 0; i < pairs; i++) {
		uint64_t *p = malloc(sizes[i & (SIZES_LEN - 1)]);
		if (__builtin_expect(p == NULL, 0))
			return 1;
		*p = i;
		escape(p);
		free(p);
	}
	return 0;
}

static int run(enum alloc_kind kind, uint64_t pairs, uint32_t owner)
{
	if (burst)
		return run_burst(kind, pairs, owner);
	switch (kind) {
	case SLUICE:
		return run_sluice(pairs, owner);
	case CACHED:
		return run_cached(pairs);
	default:
		return run_malloc(pairs);
	}
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

/* One measurement: `nproc` children (1 or 2), each doing `pairs` pairs.
 * Returns pairs per second over the span from the first start to the last
 * end, or a negative value on failure. */
static double measure(enum alloc_kind kind, uint32_t nproc, uint64_t pairs)
{
	memset(shared, 0, sizeof(*shared));
	pid_t pids[2];
	for (uint32_t i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			exit(1);
		}
		if (pids[i] == 0) {
			if (ncpus_allowed >= 2 || nproc == 1)
				pin(cpus[i % ncpus_allowed]);
			uint32_t owner = 10 + i;
			int rc = kind == CACHED ? sluice_blocks_cache_init(&cache, &blocks, owner) : 0;
			/* A short warm-up outside the timed span (whole bursts). */
			if (rc == 0)
				rc = run(kind, burst ? 4 * burst : 1000, owner);
			/* relaxed counter; the go flag below orders the start. */
			sl_fetch_add_relaxed(&shared->ready, 1);
			/* acquire: pairs with the parent's release store of go. */
			while (!sl_load_acquire(&shared->go))
				sched_yield();
			sl_store_relaxed(&shared->start_ns[i], now_ns());
			if (rc == 0)
				rc = run(kind, pairs, owner);
			sl_store_relaxed(&shared->end_ns[i], now_ns());
			/* The cache's blocks go back to the arena for the next
			 * measurement (outside the timed span: once per run). */
			if (kind == CACHED && sluice_blocks_cache_fini(&cache) < 0)
				rc = 1;
			if (rc != 0)
				sl_store_relaxed(&shared->failed, 1);
			_exit(rc);
		}
	}
	while (sl_load_relaxed(&shared->ready) < nproc)
		usleep(200);
	/* release: pairs with the children's acquire loads of go. */
	sl_store_release(&shared->go, 1);
	int bad = 0;
	for (uint32_t i = 0; i < nproc; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	/* waitpid orders the children's stores before these loads. */
	if (bad || sl_load_relaxed(&shared->failed))
		return -1;
	uint64_t start = UINT64_MAX, end = 0;
	for (uint32_t i = 0; i < nproc; i++) {
		uint64_t s = sl_load_relaxed(&shared->start_ns[i]);
		uint64_t e = sl_load_relaxed(&shared->end_ns[i]);
		start = s < start ? s : start;
		end = e > end ? e : end;
	}
	uint64_t done = burst ? pairs / burst * burst : pairs;
	return (double)done * nproc / ((double)(end - start) / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill_sizes(const struct workload *w)
{
	burst = w->burst;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < SIZES_LEN; i++) {
		if (w->fixed) {
			sizes[i] = w->fixed;
			continue;
		}
		x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
		uint64_t r = x * 0x2545f4914f6cdd1dull;
		uint32_t k = 6 + (uint32_t)(r % 10); /* 2^6 .. 2^15 */
		sizes[i] = (UINT64_C(1) << k) + (r >> 32) % (UINT64_C(1) << k); /* 64 .. 65535 */
	}
}

static void machine(void)
{
	char model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "model name", 10) == 0) {
				char *colon = strchr(line, ':');
				if (colon) {
					snprintf(model, sizeof(model), "%s", colon + 2);
					model[strcspn(model, "\n")] = '\0';
				}
				break;
			}
		}
		fclose(f);
	}
	struct utsname u;
	uname(&u);
	printf("machine: %ld CPUs online (%d allowed), %s, Linux %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), ncpus_allowed, model, u.release);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--quick] [--rounds N (1..%d)] [--pairs N]\n", argv0,
		MAX_ROUNDS);
	exit(2);
}

int main(int argc, char **argv)
{
	int rounds = 7;
	uint64_t pairs = 2000000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			rounds = 3;
			pairs = 200000;
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) {
			pairs = strtoull(argv[++i], NULL, 10);
		} else {
			usage(argv[0]);
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || pairs < 1)
		usage(argv[0]);

	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int c = 0; c < CPU_SETSIZE && ncpus_allowed < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus[ncpus_allowed++] = c;
	}
	if (ncpus_allowed == 0)
		cpus[ncpus_allowed++] = 0;

	/* The default geometry (256 B .. 64 MiB, powers of four) over 256 MiB:
	 * the memfd is sparse, only the blocks touched take memory. */
	sluice_blocks_config_t cfg;
	int rc = sluice_blocks_config_default(&cfg, UINT64_C(256) << 20);
	int64_t need = rc ? rc : sluice_blocks_region_size(&cfg);
	if (need < 0) {
		fprintf(stderr, "config: %s\n", sluice_strerror((int)need));
		return 1;
	}
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "bench-alloc", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = REGION, .size = (uint64_t)need};
	sluice_arena_t *a;
	uint64_t off, size;
	if ((rc = sluice_arena_create(&o, &a)) != 0 ||
	    (rc = sluice_arena_region(a, REGION, &off, &size)) != 0 ||
	    (rc = sluice_blocks_format(sluice_arena_at(a, off, size, 64), size, &cfg)) != 0 ||
	    (rc = sluice_blocks_open(&blocks, a, REGION)) != 0) {
		fprintf(stderr, "arena: %s\n", sluice_strerror(rc));
		return 1;
	}
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	machine();
	printf("alloc+free pairs, %llu per process per round, median of %d rounds\n",
	       (unsigned long long)pairs, rounds);
	fflush(stdout);

	double res[NWORK][2][NKINDS][MAX_ROUNDS]; /* [workload][procs-1][kind][round] */
	for (int r = 0; r < rounds; r++) {
		for (size_t w = 0; w < NWORK; w++) {
			fill_sizes(&workloads[w]);
			for (uint32_t np = 1; np <= 2; np++) {
				for (int k = 0; k < NKINDS; k++) {
					/* Rotate which goes first, round by round. */
					enum alloc_kind kind = (enum alloc_kind)((k + r) % NKINDS);
					double v = measure(kind, np, pairs);
					if (v < 0) {
						fprintf(stderr, "%s, %s, %u proc: failed\n",
							workloads[w].name, kind_name[kind], np);
						return 1;
					}
					res[w][np - 1][kind][r] = v;
				}
			}
		}
	}

	printf("\n| size | processes | sluice (M pairs/s) | sluice cached (M pairs/s) | "
	       "malloc (M pairs/s) | sluice/malloc | cached/malloc |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (size_t w = 0; w < NWORK; w++) {
		for (int np = 0; np < 2; np++) {
			double s = median(res[w][np][SLUICE], rounds) / 1e6;
			double c = median(res[w][np][CACHED], rounds) / 1e6;
			double m = median(res[w][np][MALLOC], rounds) / 1e6;
			printf("| %s | %d | %.1f | %.1f | %.1f | %.2f | %.2f |\n", workloads[w].name,
			       np + 1, s, c, m, s / m, c / m);
		}
	}
	printf("\nns per pair, 1 process (sluice / cached / malloc):\n");
	for (size_t w = 0; w < NWORK; w++)
		printf("  %-22s %5.1f / %5.1f / %5.1f\n", workloads[w].name,
		       1e9 / median(res[w][0][SLUICE], rounds),
		       1e9 / median(res[w][0][CACHED], rounds),
		       1e9 / median(res[w][0][MALLOC], rounds));
	sluice_arena_destroy(a);
	return 0;
}
