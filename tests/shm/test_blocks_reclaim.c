/* A dead owner's blocks come back, and nobody else's move.
 *
 * 1. A child allocates a known set of blocks under its own owner id while
 *    the parent holds blocks under another, says so through shared memory,
 *    and is SIGKILLed: reclaim(child) returns exactly the child's count, the
 *    parent's blocks keep their owner and their bytes, the counters agree.
 *    Then again with a child that allocates through a per-thread cache:
 *    reclaim also returns the blocks sitting in its magazines.
 * 2. Children are SIGKILLed in the middle of a busy alloc/free loop, at
 *    random moments, several times, every other one allocating and freeing
 *    through a cache: reclaim, then audit the quiet region; every block is
 *    accounted for (in_use is what the parent still holds, everything else
 *    can be allocated again), and at most one block per death was leaked (a
 *    single-threaded process is inside at most one alloc or free when it
 *    dies), or one batch for a cache's refill or flush, which audit repairs.
 *
 *   test_blocks_reclaim [kills]   (default 20)
 */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdint.h>

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include "base/atomic.h"

#define REGION_BLOCKS 1
#define REGION_CTL 2
#define PARENT 1u
#define CHILD 2u
#define HOLD 4
#define MAX_COUNT 128

/* Magazines of 16, 8 and 2 blocks (batches of 8, 4, 1) in the first three
 * classes; the last is too small to be cached. */
static const struct { uint64_t size; uint32_t count; } classes[] = {
	{64, 128}, {256, 64}, {4096, 16}, {65536, 4},
};
#define NCLASSES 4u
#define MAX_BATCH 8

/* What the parent holds in each class, and what the first child takes. */
static const uint32_t parent_takes[NCLASSES] = {5, 3, 2, 1};
static const uint32_t child_takes[NCLASSES] = {10, 6, 3, 2};

struct ctl {
	_Atomic uint32_t ready;    /* child: its blocks are allocated and stamped */
	_Atomic uint64_t progress; /* child: iterations of its busy loop */
};

static sluice_arena_t *arena;
static sluice_blocks_t blocks;
static struct ctl *ctl;

static void setup(void)
{
	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = NCLASSES};
	for (uint32_t c = 0; c < NCLASSES; c++)
		cfg.classes[c] = (sluice_blocks_class_t){.block_size = classes[c].size,
							 .count = classes[c].count};
	int64_t need = sluice_blocks_region_size(&cfg);
	CHECK(need > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "blocks-reclaim", .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = REGION_BLOCKS, .size = (uint64_t)need};
	o.regions[1] = (sluice_region_req_t){.id = REGION_CTL, .size = sizeof(struct ctl)};
	CHECK_OK(sluice_arena_create(&o, &arena));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(arena, REGION_BLOCKS, &off, &size));
	CHECK_OK(sluice_blocks_format(sluice_arena_at(arena, off, size, 64), size, &cfg));
	CHECK_OK(sluice_blocks_open(&blocks, arena, REGION_BLOCKS));
	CHECK_OK(sluice_arena_region(arena, REGION_CTL, &off, &size));
	ctl = sluice_arena_at(arena, off, sizeof(*ctl), 64);
	CHECK(ctl != NULL);
}

/* Fills block h with a byte pattern derived from (owner, h). */
static void stamp(const sluice_blocks_t *b, sluice_block_t h, uint32_t owner)
{
	uint64_t cap;
	uint8_t *p = sluice_blocks_ptr(b, h, &cap);
	for (uint64_t i = 0; i < cap; i += 8)
		p[i] = (uint8_t)(owner * 31 + h * 7 + i / 8);
}

static bool stamp_ok(const sluice_blocks_t *b, sluice_block_t h, uint32_t owner)
{
	uint64_t cap;
	const uint8_t *p = sluice_blocks_ptr(b, h, &cap);
	for (uint64_t i = 0; i < cap; i += 8)
		if (p[i] != (uint8_t)(owner * 31 + h * 7 + i / 8))
			return false;
	return true;
}

/* The child's own view: it maps the arena again, at an address of its own. */
static void child_open(sluice_blocks_t *b)
{
	sluice_arena_t *a = NULL;
	if (sluice_arena_attach(sluice_arena_fd(arena), 0, &a) != 0 ||
	    sluice_blocks_open(b, a, REGION_BLOCKS) != 0)
		_exit(2);
}

static void wait_for(_Atomic uint64_t *word, uint64_t at_least, pid_t pid)
{
	uint64_t deadline = test_now_ns() + UINT64_C(20000000000) * test_slowdown();
	/* acquire: pairs with the child's release of the word. */
	while (sl_load_acquire(word) < at_least) {
		if (test_now_ns() > deadline) {
			kill(pid, SIGKILL);
			fprintf(stderr, "child made no progress\n");
			exit(TEST_FAIL);
		}
		sl_cpu_relax();
	}
}

/* Class c's blocks whose owner word is exactly `word`. */
static uint32_t owner_words(uint32_t c, uint32_t word)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < classes[c].count; i++)
		n += sluice_blocks_owner(&blocks, (c << 27) | i) == (int64_t)word;
	return n;
}

/* Class c's blocks in use, counted from the owner words. */
static uint32_t owned_in_class(uint32_t c, uint32_t *parent_owned)
{
	uint32_t n = 0, p = 0;
	for (uint32_t i = 0; i < classes[c].count; i++) {
		int64_t o = sluice_blocks_owner(&blocks, (c << 27) | i);
		CHECK(o >= 0);
		n += o != SLUICE_OWNER_FREE;
		p += o == PARENT;
	}
	*parent_owned = p;
	return n;
}

/* Everything but the parent's blocks can be allocated, once each. */
static void check_rest_allocatable(void)
{
	for (uint32_t c = 0; c < NCLASSES; c++) {
		sluice_block_t h[MAX_COUNT];
		uint32_t n = 0;
		while (n < MAX_COUNT && sluice_blocks_alloc(&blocks, classes[c].size, 3, &h[n]) == 0)
			n++;
		CHECK(n == classes[c].count - parent_takes[c]);
		for (uint32_t i = 0; i < n; i++)
			CHECK_OK(sluice_blocks_free(&blocks, h[i], 3));
	}
}

static void test_reclaim_known_set(sluice_block_t parent_held[][8], bool cached)
{
	sl_store_relaxed(&ctl->ready, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sluice_blocks_t b;
		sluice_blocks_cache_t cache;
		child_open(&b);
		if (sluice_blocks_cache_init(&cache, &b, CHILD) != 0)
			_exit(3);
		for (uint32_t c = 0; c < NCLASSES; c++) {
			for (uint32_t i = 0; i < child_takes[c]; i++) {
				sluice_block_t h;
				if ((cached ? sluice_blocks_cache_alloc(&cache, classes[c].size, &h)
					    : sluice_blocks_alloc(&b, classes[c].size, CHILD, &h)) != 0)
					_exit(3);
				stamp(&b, h, CHILD);
			}
		}
		/* release: pairs with the parent's acquire of ready; the
		 * blocks are taken before the parent looks. */
		sl_store_release(&ctl->ready, 1);
		for (;;)
			pause();
	}
	uint64_t deadline = test_now_ns() + UINT64_C(20000000000) * test_slowdown();
	/* acquire: pairs with the child's release of ready. */
	while (!sl_load_acquire(&ctl->ready)) {
		CHECK(test_now_ns() < deadline);
		usleep(100);
	}
	/* Through a cache, the child took whole batches: 16 of the 64 B class
	 * (10 out, 6 cached), 8 of 256 B (6, 2), 3 of 4 KiB (batches of 1),
	 * and the 2 blocks of 64 KiB directly. */
	static const uint32_t child_cached[NCLASSES] = {6, 2, 0, 0};
	int64_t expect = 0;
	uint32_t peak[NCLASSES];
	for (uint32_t c = 0; c < NCLASSES; c++) {
		uint32_t in_cache = cached ? child_cached[c] : 0;
		sluice_blocks_stats_t s;
		CHECK_OK(sluice_blocks_stats(&blocks, c, &s));
		peak[c] = parent_takes[c] + child_takes[c] + in_cache;
		CHECK(s.in_use == peak[c]);
		CHECK(owner_words(c, CHILD) == child_takes[c]);
		CHECK(owner_words(c, CHILD | SLUICE_OWNER_CACHED) == in_cache);
		expect += child_takes[c] + in_cache;
	}
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(test_wait(pid) == 128 + SIGKILL);

	CHECK(sluice_blocks_reclaim(&blocks, CHILD) == expect);
	CHECK(sluice_blocks_reclaim(&blocks, CHILD) == 0);
	for (uint32_t c = 0; c < NCLASSES; c++) {
		sluice_blocks_stats_t s;
		CHECK_OK(sluice_blocks_stats(&blocks, c, &s));
		CHECK(s.in_use == parent_takes[c]);
		CHECK(s.high_water >= peak[c] && s.high_water <= s.capacity);
		CHECK(owner_words(c, CHILD) == 0 && owner_words(c, CHILD | SLUICE_OWNER_CACHED) == 0);
		uint32_t mine;
		CHECK(owned_in_class(c, &mine) == parent_takes[c] && mine == parent_takes[c]);
		for (uint32_t i = 0; i < parent_takes[c]; i++) {
			CHECK(sluice_blocks_owner(&blocks, parent_held[c][i]) == PARENT);
			CHECK(stamp_ok(&blocks, parent_held[c][i], PARENT));
		}
	}
	CHECK(sluice_blocks_audit(&blocks) == 0);
	check_rest_allocatable();
}

/* The busy child: alloc/free pairs of random sizes, up to HOLD held,
 * through a cache when `cached`. */
static void busy_child(uint32_t owner, bool cached)
{
	sluice_blocks_t b;
	sluice_blocks_cache_t cache;
	child_open(&b);
	if (sluice_blocks_cache_init(&cache, &b, owner) != 0)
		_exit(3);
	sluice_block_t held[HOLD];
	for (int i = 0; i < HOLD; i++)
		held[i] = SLUICE_BLOCK_NONE;
	uint64_t rng = 0x2545f4914f6cdd1dull ^ owner;
	for (uint64_t it = 1;; it++) {
		rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
		uint64_t r = rng * 0x2545f4914f6cdd1dull;
		int slot = (int)(r % HOLD);
		if (held[slot] != SLUICE_BLOCK_NONE) {
			if ((cached ? sluice_blocks_cache_free(&cache, held[slot])
				    : sluice_blocks_free(&b, held[slot], owner)) != 0)
				_exit(4);
			held[slot] = SLUICE_BLOCK_NONE;
		}
		uint64_t size = 1 + (r >> 20) % classes[(r >> 8) % NCLASSES].size;
		sluice_block_t h;
		int rc = cached ? sluice_blocks_cache_alloc(&cache, size, &h)
				: sluice_blocks_alloc(&b, size, owner, &h);
		if (rc == 0) {
			uint64_t cap;
			uint64_t *p = sluice_blocks_ptr(&b, h, &cap);
			p[0] = it;
			held[slot] = h;
		} else if (rc != SLUICE_ENOSPC) {
			_exit(5);
		}
		/* release: pairs with the parent's acquire in wait_for. */
		sl_store_release(&ctl->progress, it);
	}
}

static void test_kill_busy(sluice_block_t parent_held[][8], unsigned kills)
{
	uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
	int64_t leaked_total = 0, reclaimed_total = 0, cached_total = 0;
	for (unsigned k = 0; k < kills; k++) {
		uint32_t owner = 100 + k;
		bool cached = k % 2 == 1;
		sl_store_relaxed(&ctl->progress, 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			busy_child(owner, cached);
		rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
		/* Kill it at a random point of its loop, after a while. */
		wait_for(&ctl->progress, 1000 + rng % 50000, pid);
		CHECK(kill(pid, SIGKILL) == 0);
		CHECK(test_wait(pid) == 128 + SIGKILL);

		/* Blocks it held, and with a cache the ones in its magazines
		 * (at most 16 + 8 + 2). */
		uint32_t in_cache = 0;
		for (uint32_t c = 0; c < NCLASSES; c++)
			in_cache += owner_words(c, owner | SLUICE_OWNER_CACHED);
		CHECK(cached || in_cache == 0);
		CHECK(in_cache <= 16 + 8 + 2);
		int64_t r = sluice_blocks_reclaim(&blocks, owner);
		CHECK(r >= in_cache && r <= HOLD + in_cache);
		reclaimed_total += r;
		cached_total += in_cache;
		for (uint32_t c = 0; c < NCLASSES; c++)
			CHECK(owner_words(c, owner) == 0 &&
			      owner_words(c, owner | SLUICE_OWNER_CACHED) == 0);
		/* The region is quiet now: audit it. At most one block can be
		 * lost per death, or one batch inside a cache's refill or
		 * flush. */
		int64_t leaked = sluice_blocks_audit(&blocks);
		CHECK(leaked >= 0 && leaked <= (cached ? MAX_BATCH : 1));
		leaked_total += leaked;
		CHECK(sluice_blocks_audit(&blocks) == 0);
		for (uint32_t c = 0; c < NCLASSES; c++) {
			sluice_blocks_stats_t s;
			CHECK_OK(sluice_blocks_stats(&blocks, c, &s));
			CHECK(s.in_use == parent_takes[c]);
			CHECK(s.high_water <= s.capacity);
			uint32_t mine;
			CHECK(owned_in_class(c, &mine) == parent_takes[c] && mine == parent_takes[c]);
			for (uint32_t i = 0; i < parent_takes[c]; i++)
				CHECK(stamp_ok(&blocks, parent_held[c][i], PARENT));
		}
		check_rest_allocatable();
	}
	printf("%u busy children killed (every other one with a cache): %lld blocks reclaimed "
	       "(%lld of them from caches), %lld leaked in a crash window and repaired by audit\n",
	       kills, (long long)reclaimed_total, (long long)cached_total, (long long)leaked_total);
	/* Caches did hold blocks when their threads died. */
	CHECK(kills < 2 || cached_total > 0);
}

int main(int argc, char **argv)
{
	unsigned kills = (unsigned)test_arg_u64(argc, argv, 1, 20);
	setup();
	sluice_block_t parent_held[NCLASSES][8];
	for (uint32_t c = 0; c < NCLASSES; c++) {
		for (uint32_t i = 0; i < parent_takes[c]; i++) {
			CHECK_OK(sluice_blocks_alloc(&blocks, classes[c].size, PARENT,
						     &parent_held[c][i]));
			stamp(&blocks, parent_held[c][i], PARENT);
		}
	}
	test_reclaim_known_set(parent_held, false);
	test_reclaim_known_set(parent_held, true);
	test_kill_busy(parent_held, kills);

	for (uint32_t c = 0; c < NCLASSES; c++)
		for (uint32_t i = 0; i < parent_takes[c]; i++)
			CHECK_OK(sluice_blocks_free(&blocks, parent_held[c][i], PARENT));
	for (uint32_t c = 0; c < NCLASSES; c++) {
		sluice_blocks_stats_t s;
		CHECK_OK(sluice_blocks_stats(&blocks, c, &s));
		CHECK(s.in_use == 0);
	}
	CHECK(sluice_blocks_audit(&blocks) == 0);
	sluice_arena_destroy(arena);
	printf("ok\n");
	return TEST_PASS;
}
