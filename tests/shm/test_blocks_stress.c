/* The block allocator under contention: several workers, one arena, each
 * doing alloc/free pairs of random sizes across several classes while
 * holding a small random set of blocks, so the free stacks are really
 * fought over and classes run dry now and then. Some workers go through a
 * per-thread cache (sluice_blocks_cache_t), mixing in plain allocs and frees
 * of the same blocks and flushing now and then; the others call alloc and
 * free directly. Now and then a worker hands a block it holds to the next
 * worker (set_owner, then a one-slot mailbox that orders nothing: the
 * owner word alone publishes the block), which frees it (into its cache if
 * it has one). Each block gets a pattern (owner, handle, sequence) at its
 * start and end, checked before the free (of handed blocks, every other
 * one: the rest are freed unread, see receive()): two workers holding the
 * same block at once would break it. At the end, after every cache is
 * flushed, every block is free, every counter is back to zero, the audit
 * finds nothing, and no high-water mark passed its class's capacity.
 *
 * The workers are forked processes, each with its own mapping of the arena
 * ("procs", the default), or threads of one process sharing the parent's
 * mapping ("threads"): the same code, each worker its own owner id and
 * cache either way. Threads are what ThreadSanitizer can check: it sees
 * neither across processes nor across two mappings of the same memory, so
 * only there does it verify that the allocator's acquire/release pairs
 * order the patterns written into the blocks (plain stores) before the
 * next owner's reads and writes: while the workers run, the test itself
 * makes no edge between them.
 *
 *   test_blocks_stress [workers [iterations per worker [cached [procs|threads]]]]
 *   (default 4, 1,000,000, 1, procs; iterations are divided by
 *   SLUICE_TEST_SLOWDOWN; cached: 0 no worker uses a cache, 1 the
 *   odd-numbered ones, 2 all)
 */
#define _GNU_SOURCE
#include "common/test.h"

#include <pthread.h>
#include <stdint.h>

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include "base/atomic.h"

#define REGION_BLOCKS 1
#define REGION_CTL 2
#define HOLD 6          /* blocks each worker holds at most */
#define OWNER_BASE 100u

/* Classes with few blocks: 4 workers x 6 held blocks (plus what their
 * caches hold: magazines of 32, 16, 6 and 2 blocks in the first four
 * classes; the last two are too small to be cached) exhaust some of them,
 * so -ENOSPC is part of the run. */
static const struct { uint64_t size; uint32_t count; } classes[] = {
	{64, 256}, {256, 128}, {1024, 48}, {4096, 16}, {16384, 6}, {65536, 4},
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))
#define MAX_WORKERS 64

struct ctl {
	_Atomic uint32_t ready; /* workers that have opened the allocator */
	_Atomic uint32_t go;    /* set by the parent once all are ready */
	/* inbox[i]: a block handed to worker i (owned by it), or NONE.
	 * Written NONE -> handle only by worker i - 1, back to NONE only by
	 * worker i (and by the parent once all have exited). */
	_Atomic uint32_t inbox[MAX_WORKERS];
};

struct stamp {
	uint32_t owner;
	uint32_t handle;
	uint64_t seq;
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* The pattern sits at the start and at the end of the block (they overlap
 * in nothing: the smallest block is 64 bytes). */
static void stamp_write(char *p, uint64_t cap, struct stamp s)
{
	memcpy(p, &s, sizeof(s));
	memcpy(p + cap - sizeof(s), &s, sizeof(s));
}

static bool stamp_ok(const char *p, uint64_t cap, struct stamp s)
{
	return memcmp(p, &s, sizeof(s)) == 0 && memcmp(p + cap - sizeof(s), &s, sizeof(s)) == 0;
}

/* What one worker is given. */
struct job {
	/* threads: the parent's arena, one mapping shared by every thread;
	 * procs: NULL, and the child attaches fd itself. */
	const sluice_arena_t *arena;
	int fd;
	uint32_t id;
	uint32_t nworkers;
	uint64_t iters;
	bool cached;
	struct ctl *ctl;
	pid_t pid;        /* procs */
	pthread_t thread; /* threads */
	int rc;           /* threads: the worker's exit code */
};

/* Takes the block in worker id's inbox, if any, and frees it (into `cache`
 * when not NULL). The inbox only names the block and orders nothing
 * (relaxed on both sides): what orders the sender's pattern before this
 * worker's use of the block is the owner word alone, as the contract of
 * set_owner says. In threads mode TSan checks that chain, with no other
 * edge to hide behind. Until this worker's acquire sees itself as the owner
 * the word may still show the sender (prev_owner); the block then waits
 * for a later call.
 *
 * Checked (blind false): sluice_blocks_owner's acquire pairs with the
 * release of the sender's set_owner CAS; the pattern is then checked, wiped
 * and the block freed. Blind: the block is freed unread, so that the free's
 * own acquire (the owner CAS in free, the owner load in cache_free) is
 * what must order the sender's writes before the block's next owner's
 * (through the free stack's release and acquire); -ENOTOWNER there means
 * "not visibly ours yet". A block that never becomes ours is found by the
 * parent, whose final free of it fails. Returns 0 or 1 (failed). */
static int receive(const sluice_blocks_t *b, sluice_blocks_cache_t *cache, uint32_t id,
		   uint32_t prev_owner, struct ctl *ctl, bool blind, uint64_t *received)
{
	uint32_t owner = OWNER_BASE + id;
	/* relaxed: see above. */
	uint32_t in = sl_load_relaxed(&ctl->inbox[id]);
	if (in == SLUICE_BLOCK_NONE)
		return 0;
	if (blind) {
		int rc = cache != NULL ? sluice_blocks_cache_free(cache, in)
				       : sluice_blocks_free(b, in, owner);
		if (rc == SLUICE_ENOTOWNER)
			return 0;
		if (rc != 0) {
			fprintf(stderr, "worker %u: blind free of handed block: %s\n", id,
				sluice_err_name(rc));
			return 1;
		}
		/* relaxed: only this worker empties its inbox, and the sender
		 * looks at it only to find it empty. */
		sl_store_relaxed(&ctl->inbox[id], SLUICE_BLOCK_NONE);
		(*received)++;
		return 0;
	}
	/* acquire (in sluice_blocks_owner): pairs with the sender's set_owner. */
	int64_t in_owner = sluice_blocks_owner(b, in);
	if (in_owner == prev_owner && prev_owner != owner)
		return 0;
	if (in_owner != owner) {
		fprintf(stderr, "worker %u: handed block %#x has owner %lld\n", id, in,
			(long long)in_owner);
		return 1;
	}
	uint64_t cap;
	char *p = sluice_blocks_ptr(b, in, &cap);
	struct stamp st;
	if (p != NULL)
		memcpy(&st, p, sizeof(st));
	if (p == NULL || st.owner != owner || st.handle != in || !stamp_ok(p, cap, st)) {
		fprintf(stderr, "worker %u: handed block %#x broken\n", id, in);
		return 1;
	}
	memset(p, 0, sizeof(struct stamp));
	/* relaxed: as above. */
	sl_store_relaxed(&ctl->inbox[id], SLUICE_BLOCK_NONE);
	int rc = cache != NULL ? sluice_blocks_cache_free(cache, in)
			       : sluice_blocks_free(b, in, owner);
	if (rc != 0) {
		fprintf(stderr, "worker %u: free of handed block: %s\n", id, sluice_err_name(rc));
		return 1;
	}
	(*received)++;
	return 0;
}

/* The worker's run over allocator b, once every worker is ready: returns its
 * exit code (0 or 1). The same code for a process and a thread. */
static int work(const sluice_blocks_t *b, const struct job *j)
{
	uint32_t id = j->id;
	uint32_t owner = OWNER_BASE + id;
	uint32_t next = (id + 1) % j->nworkers;
	uint32_t prev_owner = OWNER_BASE + (id + j->nworkers - 1) % j->nworkers;
	bool cached = j->cached;
	struct ctl *ctl = j->ctl;
	sluice_blocks_cache_t cache;
	if (cached && sluice_blocks_cache_init(&cache, b, owner) != 0) {
		fprintf(stderr, "worker %u: cache init failed\n", id);
		return 1;
	}

	sluice_block_t held[HOLD];
	struct stamp stamps[HOLD];
	for (int i = 0; i < HOLD; i++)
		held[i] = SLUICE_BLOCK_NONE;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
	uint64_t allocs = 0, enospc = 0, sent = 0, received = 0, flushed = 0;
	for (uint64_t it = 1; it <= j->iters; it++) {
		uint64_t r = rng_next(&rng);
		int slot = (int)(r % HOLD);
		if (receive(b, cached ? &cache : NULL, id, prev_owner, ctl, (r >> 12) % 2 == 0,
			    &received) != 0)
			return 1;
		/* Now and then hand a held block to the next worker, when its
		 * inbox is empty (relaxed: the emptying publishes nothing; the
		 * receiver's previous block went back through the allocator,
		 * and this one goes over by set_owner's CAS alone). */
		if (held[slot] != SLUICE_BLOCK_NONE && (r >> 40) % 16 == 0 &&
		    sl_load_relaxed(&ctl->inbox[next]) == SLUICE_BLOCK_NONE) {
			uint64_t cap;
			char *p = sluice_blocks_ptr(b, held[slot], &cap);
			if (p == NULL || !stamp_ok(p, cap, stamps[slot])) {
				fprintf(stderr, "worker %u: block %#x pattern broken\n", id,
					held[slot]);
				return 1;
			}
			struct stamp st = stamps[slot];
			st.owner = OWNER_BASE + next;
			stamp_write(p, cap, st);
			int rc = sluice_blocks_set_owner(b, held[slot], owner, st.owner);
			if (rc != 0) {
				fprintf(stderr, "worker %u: set_owner: %s\n", id, sluice_err_name(rc));
				return 1;
			}
			/* relaxed: names the block only; set_owner's CAS above
			 * is what publishes it (see receive()). */
			sl_store_relaxed(&ctl->inbox[next], held[slot]);
			held[slot] = SLUICE_BLOCK_NONE;
			sent++;
		}
		if (cached && (r >> 48) % 4096 == 0) {
			int64_t n = sluice_blocks_cache_flush(&cache);
			if (n < 0) {
				fprintf(stderr, "worker %u: flush: %s\n", id, sluice_err_name((int)n));
				return 1;
			}
			flushed += (uint64_t)n;
		}
		/* A cached worker also uses the plain calls, one time in 8. */
		bool plain = !cached || (r >> 56) % 8 == 0;
		if (held[slot] != SLUICE_BLOCK_NONE) {
			uint64_t cap;
			char *p = sluice_blocks_ptr(b, held[slot], &cap);
			if (p == NULL || !stamp_ok(p, cap, stamps[slot])) {
				fprintf(stderr, "worker %u: block %#x pattern broken (seq %llu)\n", id,
					held[slot], (unsigned long long)stamps[slot].seq);
				return 1;
			}
			if (sluice_blocks_owner(b, held[slot]) != owner) {
				fprintf(stderr, "worker %u: block %#x lost its owner\n", id, held[slot]);
				return 1;
			}
			/* Wipe the pattern: a worker that got the same block
			 * while we held it would fail its own check. */
			memset(p, 0, sizeof(struct stamp));
			int rc = plain ? sluice_blocks_free(b, held[slot], owner)
				       : sluice_blocks_cache_free(&cache, held[slot]);
			if (rc != 0) {
				fprintf(stderr, "worker %u: free: %s\n", id, sluice_err_name(rc));
				return 1;
			}
			held[slot] = SLUICE_BLOCK_NONE;
		}
		/* A random class, then a random size inside it. */
		uint32_t c = (uint32_t)((r >> 16) % NCLASSES);
		uint64_t lo = c == 0 ? 1 : classes[c - 1].size + 1;
		uint64_t size = lo + (r >> 24) % (classes[c].size - lo + 1);
		sluice_block_t h;
		plain = !cached || (r >> 59) % 8 == 0;
		int rc = plain ? sluice_blocks_alloc(b, size, owner, &h)
			       : sluice_blocks_cache_alloc(&cache, size, &h);
		if (rc == SLUICE_ENOSPC) {
			enospc++;
			continue;
		}
		if (rc != 0 || h >> 27 != c) {
			fprintf(stderr, "worker %u: alloc(%llu): %s, class %u\n", id,
				(unsigned long long)size, sluice_err_name(rc), h >> 27);
			return 1;
		}
		allocs++;
		uint64_t cap;
		char *p = sluice_blocks_ptr(b, h, &cap);
		if (p == NULL || cap < size) {
			fprintf(stderr, "worker %u: ptr of %#x\n", id, h);
			return 1;
		}
		stamps[slot] = (struct stamp){.owner = owner, .handle = h, .seq = it};
		stamp_write(p, cap, stamps[slot]);
		held[slot] = h;
	}
	for (int i = 0; i < HOLD; i++) {
		if (held[i] == SLUICE_BLOCK_NONE)
			continue;
		uint64_t cap;
		char *p = sluice_blocks_ptr(b, held[i], &cap);
		if (!stamp_ok(p, cap, stamps[i]) ||
		    (cached ? sluice_blocks_cache_free(&cache, held[i])
			    : sluice_blocks_free(b, held[i], owner)) != 0) {
			fprintf(stderr, "worker %u: final free of %#x\n", id, held[i]);
			return 1;
		}
	}
	if (cached) {
		int64_t n = sluice_blocks_cache_fini(&cache);
		if (n < 0) {
			fprintf(stderr, "worker %u: final flush: %s\n", id, sluice_err_name((int)n));
			return 1;
		}
		flushed += (uint64_t)n;
	}
	printf("worker %u (%s): %llu allocs, %llu ENOSPC, %llu handed on, %llu received, "
	       "%llu flushed\n",
	       id, cached ? "cached" : "plain", (unsigned long long)allocs,
	       (unsigned long long)enospc, (unsigned long long)sent, (unsigned long long)received,
	       (unsigned long long)flushed);
	return 0;
}

/* One worker, a process or a thread: returns its exit code. */
static int worker(const struct job *j)
{
	/* A process maps the arena at an address of its own, as a real worker
	 * does; threads share the parent's mapping (TSan tells memory apart
	 * by address, so a second mapping would hide every race). */
	sluice_arena_t *mine = NULL;
	const sluice_arena_t *a = j->arena;
	if (a == NULL && sluice_arena_attach(j->fd, 0, &mine) == 0)
		a = mine;
	sluice_blocks_t b;
	bool opened = a != NULL && sluice_blocks_open(&b, a, REGION_BLOCKS) == 0;
	if (!opened)
		fprintf(stderr, "worker %u: attach/open failed\n", j->id);
	/* Counted ready even when it failed, so the others are not held up.
	 * release: pairs with the parent's acquire load of ready. */
	sl_fetch_add_acq_rel(&j->ctl->ready, 1);
	int rc = 1;
	if (opened) {
		/* acquire: pairs with the parent's release store of go. */
		while (!sl_load_acquire(&j->ctl->go))
			sl_cpu_relax();
		rc = work(&b, j);
	}
	if (mine != NULL)
		sluice_arena_destroy(mine);
	return rc;
}

static void *worker_thread(void *arg)
{
	struct job *j = arg;
	j->rc = worker(j);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned slow = test_slowdown();
	uint32_t nworkers = (uint32_t)test_arg_u64(argc, argv, 1, 4);
	uint64_t iters = test_arg_u64(argc, argv, 2, 1000000) / slow;
	uint64_t cached = test_arg_u64(argc, argv, 3, 1);
	const char *mode = argc > 4 ? argv[4] : "procs";
	bool threads = strcmp(mode, "threads") == 0;
	if (nworkers < 1 || nworkers > MAX_WORKERS || iters < 1 || cached > 2 ||
	    (!threads && strcmp(mode, "procs") != 0)) {
		fprintf(stderr, "usage: %s [workers 1..64 [iterations [cached 0..2 [procs|threads]]]]\n",
			argv[0]);
		return TEST_FAIL;
	}

	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = NCLASSES};
	for (uint32_t c = 0; c < NCLASSES; c++)
		cfg.classes[c] = (sluice_blocks_class_t){.block_size = classes[c].size,
							 .count = classes[c].count};
	int64_t need = sluice_blocks_region_size(&cfg);
	CHECK(need > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "blocks-stress", .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = REGION_BLOCKS, .size = (uint64_t)need};
	o.regions[1] = (sluice_region_req_t){.id = REGION_CTL, .size = sizeof(struct ctl)};
	sluice_arena_t *a = NULL;
	CHECK_OK(sluice_arena_create(&o, &a));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(a, REGION_BLOCKS, &off, &size));
	CHECK_OK(sluice_blocks_format(sluice_arena_at(a, off, size, 64), size, &cfg));
	sluice_blocks_t b;
	CHECK_OK(sluice_blocks_open(&b, a, REGION_BLOCKS));
	CHECK_OK(sluice_arena_region(a, REGION_CTL, &off, &size));
	struct ctl *ctl = sluice_arena_at(a, off, sizeof(*ctl), 64);
	CHECK(ctl != NULL);
	for (uint32_t i = 0; i < MAX_WORKERS; i++)
		sl_store_relaxed(&ctl->inbox[i], SLUICE_BLOCK_NONE);

	static struct job jobs[MAX_WORKERS];
	fflush(stdout);
	for (uint32_t i = 0; i < nworkers; i++) {
		struct job *j = &jobs[i];
		*j = (struct job){.arena = threads ? a : NULL, .fd = sluice_arena_fd(a), .id = i,
				  .nworkers = nworkers, .iters = iters,
				  .cached = cached == 2 || (cached == 1 && i % 2 == 1), .ctl = ctl};
		if (threads) {
			CHECK(pthread_create(&j->thread, NULL, worker_thread, j) == 0);
			continue;
		}
		j->pid = fork();
		CHECK(j->pid >= 0);
		if (j->pid == 0) {
			int rc = worker(j);
			fflush(stdout);
			_exit(rc);
		}
	}
	/* acquire: pairs with each worker's fetch_add of ready. */
	uint64_t deadline = test_now_ns() + UINT64_C(30000000000) * slow;
	while (sl_load_acquire(&ctl->ready) < nworkers) {
		if (test_now_ns() > deadline) {
			/* Returning from main ends the threads too. */
			fprintf(stderr, "workers did not start\n");
			for (uint32_t i = 0; i < nworkers && !threads; i++)
				kill(jobs[i].pid, SIGKILL);
			return TEST_FAIL;
		}
		usleep(1000);
	}
	uint64_t t0 = test_now_ns();
	/* release: pairs with the workers' acquire loads of go. */
	sl_store_release(&ctl->go, 1);
	int failed = 0;
	for (uint32_t i = 0; i < nworkers; i++) {
		int rc;
		if (threads) {
			CHECK(pthread_join(jobs[i].thread, NULL) == 0);
			rc = jobs[i].rc;
		} else {
			rc = test_wait(jobs[i].pid);
		}
		if (rc != 0)
			failed++;
	}
	double secs = (double)(test_now_ns() - t0) / 1e9;
	printf("%u %s x %llu iterations: %.2f s, %.2f M pairs/s in all\n", nworkers,
	       threads ? "threads" : "processes", (unsigned long long)iters, secs,
	       (double)nworkers * (double)iters / secs / 1e6);
	CHECK(failed == 0);

	/* A block still in an inbox belongs to a worker that has ended: free
	 * it as that owner (it is dead; nobody else acts as it). The ends
	 * (waitpid, pthread_join) order its writes before these loads. */
	for (uint32_t i = 0; i < nworkers; i++) {
		uint32_t h = sl_load_relaxed(&ctl->inbox[i]);
		if (h != SLUICE_BLOCK_NONE)
			CHECK_OK(sluice_blocks_free(&b, h, OWNER_BASE + i));
	}

	/* Everything is back: counters, stacks, owners. */
	for (uint32_t c = 0; c < NCLASSES; c++) {
		sluice_blocks_stats_t s;
		CHECK_OK(sluice_blocks_stats(&b, c, &s));
		printf("class %u (%llu B): capacity %u, high water %u\n", c,
		       (unsigned long long)s.block_size, s.capacity, s.high_water);
		CHECK(s.in_use == 0);
		CHECK(s.high_water <= s.capacity);
		CHECK(s.high_water >= 1);
		for (uint32_t i = 0; i < s.capacity; i++)
			CHECK(sluice_blocks_owner(&b, (c << 27) | i) == SLUICE_OWNER_FREE);
	}
	CHECK(sluice_blocks_audit(&b) == 0);
	/* Each block can be taken exactly once. */
	for (uint32_t c = 0; c < NCLASSES; c++) {
		uint32_t n = classes[c].count;
		sluice_block_t h[257];
		uint8_t seen[256] = {0};
		CHECK(n < 257);
		for (uint32_t i = 0; i < n; i++) {
			CHECK_OK(sluice_blocks_alloc(&b, classes[c].size, 1, &h[i]));
			CHECK(h[i] >> 27 == c && (h[i] & 0x7ffffff) < n && !seen[h[i] & 0x7ffffff]);
			seen[h[i] & 0x7ffffff] = 1;
		}
		CHECK_RC(sluice_blocks_alloc(&b, classes[c].size, 1, &h[n]), SLUICE_ENOSPC);
		for (uint32_t i = 0; i < n; i++)
			CHECK_OK(sluice_blocks_free(&b, h[i], 1));
	}
	CHECK(sluice_blocks_audit(&b) == 0);
	sluice_arena_destroy(a);
	printf("ok\n");
	return TEST_PASS;
}
