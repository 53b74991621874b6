/* The block allocator, one process at a time (plus children that die on
 * purpose inside alloc and free, or hand blocks over): configuration,
 * format and open, size classes, exhaustion, ownership, handles, counters,
 * what a scribbled-on region does (a clear error, never a crash), and the
 * per-thread caches (round trips, refills and flushes at the batch
 * boundaries, exhaustion, double frees, hand-offs between processes,
 * reclaim and audit of a dead cache). Real memfd arenas. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdint.h>
#include <sys/mman.h>

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include "shm/blocks_layout.h"

#define REGION 1
#define OWNER_A 5u
#define OWNER_B 6u

/* 64 B x 8, 256 B x 4, 4 KiB x 2, 64 KiB x 1 */
static sluice_blocks_config_t small_config(void)
{
	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = 4};
	cfg.classes[0] = (sluice_blocks_class_t){.block_size = 64, .count = 8};
	cfg.classes[1] = (sluice_blocks_class_t){.block_size = 256, .count = 4};
	cfg.classes[2] = (sluice_blocks_class_t){.block_size = 4096, .count = 2};
	cfg.classes[3] = (sluice_blocks_class_t){.block_size = 65536, .count = 1};
	return cfg;
}

/* An arena with one region holding a formatted allocator, opened in `b`. */
static sluice_arena_t *make_blocks(const sluice_blocks_config_t *cfg, sluice_blocks_t *b)
{
	int64_t need = sluice_blocks_region_size(cfg);
	CHECK(need > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "test-blocks", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = REGION, .size = (uint64_t)need};
	sluice_arena_t *a = NULL;
	CHECK_OK(sluice_arena_create(&o, &a));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(a, REGION, &off, &size));
	CHECK_OK(sluice_blocks_format(sluice_arena_at(a, off, size, 64), size, cfg));
	CHECK_OK(sluice_blocks_open(b, a, REGION));
	return a;
}

static sluice_blocks_stats_t stats(const sluice_blocks_t *b, uint32_t cls)
{
	sluice_blocks_stats_t s;
	CHECK_OK(sluice_blocks_stats(b, cls, &s));
	return s;
}

static struct sluice_blocks_meta *meta_at(const sluice_blocks_t *b, uint32_t cls, uint32_t idx)
{
	return (struct sluice_blocks_meta *)((char *)b->region + b->cls[cls].meta_off) + idx;
}

/* Every block of every class can be taken exactly once, and then given
 * back: the free stacks hold each block once and nothing else. */
static void check_all_free(const sluice_blocks_t *b)
{
	for (uint32_t c = 0; c < b->nclasses; c++) {
		sluice_blocks_stats_t s = stats(b, c);
		CHECK(s.in_use == 0);
		uint32_t n = s.capacity;
		sluice_block_t *h = calloc(n, sizeof(*h));
		uint8_t *seen = calloc(n, 1);
		CHECK(h != NULL && seen != NULL);
		for (uint32_t i = 0; i < n; i++) {
			CHECK_OK(sluice_blocks_alloc(b, s.block_size, OWNER_A, &h[i]));
			CHECK(h[i] >> 27 == c);
			CHECK(!seen[h[i] & 0x7ffffff]);
			seen[h[i] & 0x7ffffff] = 1;
		}
		sluice_block_t extra;
		CHECK_RC(sluice_blocks_alloc(b, s.block_size, OWNER_A, &extra), SLUICE_ENOSPC);
		for (uint32_t i = 0; i < n; i++)
			CHECK_OK(sluice_blocks_free(b, h[i], OWNER_A));
		CHECK(stats(b, c).in_use == 0);
		free(h);
		free(seen);
	}
}

static void test_config(void)
{
	sluice_blocks_config_t cfg = small_config();
	int64_t need = sluice_blocks_region_size(&cfg);
	CHECK(need >= 8 * 64 + 4 * 256 + 2 * 4096 + 65536);
	CHECK(need < 8 * 64 + 4 * 256 + 2 * 4096 + 65536 + 8192);

	CHECK(sluice_blocks_region_size(NULL) == SLUICE_EINVAL);
	sluice_blocks_config_t bad = cfg;
	bad.size_of = 8;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.nclasses = 0;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.nclasses = SLUICE_BLOCKS_MAX_CLASSES + 1;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[1].block_size = 300; /* not a power of two */
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[0].block_size = 32; /* below 64 */
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[2].block_size = 128; /* not ascending */
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[2].block_size = 256; /* equal */
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[3].count = 0;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[0].count = 1u << 27; /* does not fit a handle */
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[3].block_size = UINT64_C(1) << 41;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL);
	bad = cfg, bad.classes[3].block_size = UINT64_C(1) << 30, bad.classes[3].count = 1u << 20;
	CHECK(sluice_blocks_region_size(&bad) == SLUICE_EINVAL); /* 2^50 bytes */
	bad = cfg, bad.classes[0].count = (1u << 27) - 1; /* the most a class may hold */
	CHECK(sluice_blocks_region_size(&bad) > (int64_t)(((1u << 27) - 1) * UINT64_C(72)));

	/* The default geometry: powers of four from 256 B to 64 MiB, at least
	 * one block each, more of the small ones, near the budget. */
	uint64_t budgets[] = {UINT64_C(1) << 30, UINT64_C(256) << 20, UINT64_C(100) << 20,
			      UINT64_C(64) << 10, 1024};
	for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
		uint64_t budget = budgets[k];
		CHECK_OK(sluice_blocks_config_default(&cfg, budget));
		CHECK(cfg.size_of == sizeof(cfg));
		CHECK(cfg.nclasses >= 1 && cfg.nclasses <= 10);
		uint64_t bytes = 0;
		for (uint32_t c = 0; c < cfg.nclasses; c++) {
			CHECK(cfg.classes[c].block_size == UINT64_C(256) << (2 * c));
			CHECK(cfg.classes[c].count >= 1);
			if (c > 0)
				CHECK(cfg.classes[c].count <= cfg.classes[c - 1].count);
			bytes += cfg.classes[c].block_size * cfg.classes[c].count;
		}
		CHECK(cfg.classes[cfg.nclasses - 1].block_size * 4 <= budget);
		CHECK(bytes <= budget && bytes >= budget / 4 * 3);
		CHECK(sluice_blocks_region_size(&cfg) >= (int64_t)bytes);
		if (budget >= (UINT64_C(256) << 20))
			CHECK(cfg.nclasses == 10 &&
			      cfg.classes[9].block_size == (UINT64_C(64) << 20));
	}
	CHECK_RC(sluice_blocks_config_default(&cfg, 1023), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_config_default(NULL, 1 << 20), SLUICE_EINVAL);

	/* format: a misaligned or short region is refused. */
	cfg = small_config();
	need = sluice_blocks_region_size(&cfg);
	char *mem = aligned_alloc(64, (size_t)need + 64);
	CHECK(mem != NULL);
	memset(mem, 0, (size_t)need + 64);
	CHECK_RC(sluice_blocks_format(mem + 8, (uint64_t)need, &cfg), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_format(mem, (uint64_t)need - 1, &cfg), SLUICE_ENOSPC);
	CHECK_RC(sluice_blocks_format(NULL, (uint64_t)need, &cfg), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_format(mem, (uint64_t)need, &bad), SLUICE_ENOSPC); /* valid, too big */
	bad = cfg, bad.classes[1].count = 0;
	CHECK_RC(sluice_blocks_format(mem, (uint64_t)need, &bad), SLUICE_EINVAL);
	CHECK_OK(sluice_blocks_format(mem, (uint64_t)need, &cfg));
	free(mem);
}

static void test_open_and_classes(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_t other;
	CHECK_RC(sluice_blocks_open(&other, a, REGION + 1), SLUICE_ENOENT);
	CHECK(b.nclasses == 4);
	for (uint32_t c = 0; c < 4; c++) {
		sluice_blocks_stats_t s = stats(&b, c);
		CHECK(s.block_size == cfg.classes[c].block_size);
		CHECK(s.capacity == cfg.classes[c].count);
		CHECK(s.in_use == 0 && s.high_water == 0);
		CHECK(s.bookkeeping_bytes == 64 + 8 * s.capacity);
	}
	sluice_blocks_stats_t s;
	CHECK_RC(sluice_blocks_stats(&b, 4, &s), SLUICE_EINVAL);

	/* Each class boundary: size == block_size fits the class, one byte
	 * more goes to the next class, past the largest is -E2BIG. */
	for (uint32_t c = 0; c < 4; c++) {
		uint64_t bs = cfg.classes[c].block_size;
		sluice_block_t h;
		CHECK_OK(sluice_blocks_alloc(&b, bs, OWNER_A, &h));
		CHECK(h >> 27 == c);
		uint64_t cap = 0;
		char *p = sluice_blocks_ptr(&b, h, &cap);
		CHECK(p != NULL && cap == bs);
		CHECK((uintptr_t)p % (bs < 4096 ? bs : 4096) == 0);
		CHECK(p >= (char *)b.region && p + bs <= (char *)b.region + b.region_size);
		memset(p, 0xab, bs); /* the whole block is ours */
		CHECK(sluice_blocks_owner(&b, h) == OWNER_A);
		CHECK(stats(&b, c).in_use == 1);
		CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
		CHECK(sluice_blocks_owner(&b, h) == SLUICE_OWNER_FREE);

		sluice_block_t h2;
		if (c + 1 < 4) {
			CHECK_OK(sluice_blocks_alloc(&b, bs + 1, OWNER_A, &h2));
			CHECK(h2 >> 27 == c + 1);
			CHECK_OK(sluice_blocks_free(&b, h2, OWNER_A));
		} else {
			CHECK_RC(sluice_blocks_alloc(&b, bs + 1, OWNER_A, &h2), SLUICE_E2BIG);
		}
	}
	sluice_block_t h;
	CHECK_OK(sluice_blocks_alloc(&b, 0, OWNER_A, &h));
	CHECK(h >> 27 == 0);
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK_OK(sluice_blocks_alloc(&b, 1, OWNER_A, &h));
	CHECK(h >> 27 == 0);
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK_OK(sluice_blocks_alloc(&b, 65, OWNER_A, &h)); /* 64 < 65 <= 256 */
	CHECK(h >> 27 == 1);
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK_OK(sluice_blocks_alloc(&b, 257, OWNER_A, &h)); /* skips to 4 KiB */
	CHECK(h >> 27 == 2);
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK_RC(sluice_blocks_alloc(&b, UINT64_MAX, OWNER_A, &h), SLUICE_E2BIG);
	CHECK_RC(sluice_blocks_alloc(&b, (UINT64_C(1) << 63) + 1, OWNER_A, &h), SLUICE_E2BIG);
	CHECK_RC(sluice_blocks_alloc(&b, 1u << 20, OWNER_A, &h), SLUICE_E2BIG);
	check_all_free(&b);
	CHECK(sluice_blocks_audit(&b) == 0);
	sluice_arena_destroy(a);
}

static void test_exhaustion(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t h[8];
	for (int i = 0; i < 8; i++)
		CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h[i]));
	/* Exhausted: -ENOSPC, again and again, and no bigger class is eaten. */
	for (int k = 0; k < 3; k++) {
		sluice_block_t x = 12345;
		CHECK_RC(sluice_blocks_alloc(&b, 10, OWNER_A, &x), SLUICE_ENOSPC);
		CHECK(x == 12345);
	}
	CHECK(stats(&b, 0).in_use == 8 && stats(&b, 0).high_water == 8);
	CHECK(stats(&b, 1).in_use == 0);
	/* A free makes room, and the freed block is the one handed out next. */
	CHECK_RC(sluice_blocks_free(&b, h[3], OWNER_B), SLUICE_ENOTOWNER);
	CHECK_OK(sluice_blocks_free(&b, h[3], OWNER_A));
	sluice_block_t again;
	CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_B, &again));
	CHECK(again == h[3]);
	CHECK(sluice_blocks_owner(&b, again) == OWNER_B);
	CHECK_RC(sluice_blocks_alloc(&b, 64, OWNER_A, &again), SLUICE_ENOSPC);
	CHECK_OK(sluice_blocks_free(&b, h[3], OWNER_B));
	for (int i = 0; i < 8; i++)
		if (i != 3)
			CHECK_OK(sluice_blocks_free(&b, h[i], OWNER_A));
	/* The single 64 KiB block. */
	sluice_block_t big, big2;
	CHECK_OK(sluice_blocks_alloc(&b, 40000, OWNER_A, &big));
	CHECK_RC(sluice_blocks_alloc(&b, 40000, OWNER_A, &big2), SLUICE_ENOSPC);
	CHECK_OK(sluice_blocks_free(&b, big, OWNER_A));
	CHECK(stats(&b, 3).high_water == 1);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

static void test_ownership(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t h, k;

	/* Owner ids: 1 .. SLUICE_OWNER_MAX. */
	CHECK_RC(sluice_blocks_alloc(&b, 64, SLUICE_OWNER_FREE, &h), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_alloc(&b, 64, SLUICE_OWNER_MAX + 1, &h), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_alloc(&b, 64, UINT32_MAX, &h), SLUICE_EINVAL);
	CHECK(stats(&b, 0).in_use == 0);
	CHECK_OK(sluice_blocks_alloc(&b, 64, SLUICE_OWNER_MAX, &k));
	CHECK(sluice_blocks_owner(&b, k) == SLUICE_OWNER_MAX);
	CHECK_OK(sluice_blocks_free(&b, k, SLUICE_OWNER_MAX));

	CHECK_OK(sluice_blocks_alloc(&b, 100, OWNER_A, &h));
	CHECK_OK(sluice_blocks_alloc(&b, 100, OWNER_A, &k));
	uint32_t in_use = stats(&b, 1).in_use;
	CHECK(in_use == 2);
	/* Wrong owner and owner 0: refused, nothing changes. */
	CHECK_RC(sluice_blocks_free(&b, h, OWNER_B), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, h, SLUICE_OWNER_FREE), SLUICE_ENOTOWNER);
	CHECK(sluice_blocks_owner(&b, h) == OWNER_A);
	CHECK(stats(&b, 1).in_use == in_use);
	/* Double free: the second is refused and changes nothing. */
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK_RC(sluice_blocks_free(&b, h, OWNER_A), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, h, OWNER_B), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, h, SLUICE_OWNER_FREE), SLUICE_ENOTOWNER);
	CHECK(stats(&b, 1).in_use == 1);
	CHECK(sluice_blocks_owner(&b, h) == SLUICE_OWNER_FREE);
	CHECK(sluice_blocks_audit(&b) == 0); /* the stack holds h once */

	/* set_owner is a CAS: only the current owner hands over. */
	CHECK_RC(sluice_blocks_set_owner(&b, k, OWNER_B, 7), SLUICE_ENOTOWNER);
	CHECK(sluice_blocks_owner(&b, k) == OWNER_A);
	CHECK_RC(sluice_blocks_set_owner(&b, k, OWNER_A, SLUICE_OWNER_FREE), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_set_owner(&b, k, OWNER_A, SLUICE_OWNER_MAX + 1), SLUICE_EINVAL);
	CHECK(sluice_blocks_owner(&b, k) == OWNER_A);
	CHECK_OK(sluice_blocks_set_owner(&b, k, OWNER_A, OWNER_B));
	CHECK(sluice_blocks_owner(&b, k) == OWNER_B);
	CHECK_RC(sluice_blocks_set_owner(&b, k, OWNER_A, OWNER_B), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, k, OWNER_A), SLUICE_ENOTOWNER);
	CHECK_OK(sluice_blocks_set_owner(&b, k, OWNER_B, OWNER_B)); /* to itself: fine */
	/* A free block cannot be claimed with from == 0. */
	CHECK_RC(sluice_blocks_set_owner(&b, h, SLUICE_OWNER_FREE, OWNER_A), SLUICE_ENOTOWNER);
	CHECK(sluice_blocks_owner(&b, h) == SLUICE_OWNER_FREE);
	CHECK(stats(&b, 1).in_use == 1);
	CHECK_OK(sluice_blocks_free(&b, k, OWNER_B));

	/* reclaim: every block of one owner, nobody else's. */
	sluice_block_t mine[3], theirs[2];
	for (int i = 0; i < 3; i++)
		CHECK_OK(sluice_blocks_alloc(&b, (uint64_t)64 << (2 * i), OWNER_A, &mine[i]));
	for (int i = 0; i < 2; i++)
		CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_B, &theirs[i]));
	CHECK(sluice_blocks_reclaim(&b, OWNER_A) == 3);
	CHECK(sluice_blocks_reclaim(&b, OWNER_A) == 0);
	CHECK(sluice_blocks_reclaim(&b, SLUICE_OWNER_FREE) == SLUICE_EINVAL);
	CHECK(sluice_blocks_reclaim(&b, UINT32_MAX) == SLUICE_EINVAL);
	for (int i = 0; i < 3; i++)
		CHECK(sluice_blocks_owner(&b, mine[i]) == SLUICE_OWNER_FREE);
	for (int i = 0; i < 2; i++)
		CHECK(sluice_blocks_owner(&b, theirs[i]) == OWNER_B);
	CHECK(stats(&b, 0).in_use == 2 && stats(&b, 1).in_use == 0 && stats(&b, 2).in_use == 0);
	CHECK(sluice_blocks_reclaim(&b, OWNER_B) == 2);
	check_all_free(&b);
	CHECK(sluice_blocks_audit(&b) == 0);
	sluice_arena_destroy(a);
}

static void test_bad_handles(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t bad[] = {
		SLUICE_BLOCK_NONE,
		(4u << 27) | 0,         /* class past the last */
		(31u << 27) | 0,
		(0u << 27) | 8,         /* index past the class's count */
		(3u << 27) | 1,
		(2u << 27) | 0x7ffffff,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t cap = 99;
		CHECK_RC(sluice_blocks_free(&b, bad[i], OWNER_A), SLUICE_EBADHANDLE);
		CHECK_RC(sluice_blocks_set_owner(&b, bad[i], OWNER_A, OWNER_B), SLUICE_EBADHANDLE);
		CHECK(sluice_blocks_owner(&b, bad[i]) == SLUICE_EBADHANDLE);
		CHECK(sluice_blocks_ptr(&b, bad[i], &cap) == NULL && cap == 99);
	}
	/* The last valid index of each class is fine. */
	CHECK(sluice_blocks_ptr(&b, (0u << 27) | 7, NULL) != NULL);
	CHECK(sluice_blocks_ptr(&b, (3u << 27) | 0, NULL) != NULL);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

static void test_counters(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t h[5];
	for (int i = 0; i < 3; i++)
		CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h[i]));
	CHECK(stats(&b, 0).in_use == 3 && stats(&b, 0).high_water == 3);
	CHECK_OK(sluice_blocks_free(&b, h[0], OWNER_A));
	CHECK_OK(sluice_blocks_free(&b, h[1], OWNER_A));
	CHECK(stats(&b, 0).in_use == 1 && stats(&b, 0).high_water == 3);
	CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h[0]));
	CHECK(stats(&b, 0).in_use == 2 && stats(&b, 0).high_water == 3);
	for (int i = 1; i < 5; i++)
		if (i != 2)
			CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h[i]));
	CHECK(stats(&b, 0).in_use == 5 && stats(&b, 0).high_water == 5);
	/* Refused operations do not move the counters. */
	sluice_block_t x;
	CHECK_RC(sluice_blocks_free(&b, h[0], OWNER_B), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_alloc(&b, 1 << 30, OWNER_A, &x), SLUICE_E2BIG);
	CHECK(stats(&b, 0).in_use == 5);
	for (int i = 0; i < 5; i++)
		CHECK_OK(sluice_blocks_free(&b, h[i], OWNER_A));
	CHECK(stats(&b, 0).in_use == 0 && stats(&b, 0).high_water == 5);
	CHECK(stats(&b, 1).high_water == 0);
	sluice_arena_destroy(a);
}

/* Scribbled-on shared memory: a clear error, never a crash, and the
 * region works again once the word is put back. */
static void test_corruption(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(b.region, 1);
	sluice_block_t h, held;
	CHECK_OK(sluice_blocks_alloc(&b, 200, OWNER_A, &held));
	uint64_t saved = sl_load_relaxed(&ctl->head);

	/* Head index out of range. */
	uint32_t bad_idx[] = {4, 5, 1000, (1u << 27) - 1, UINT32_MAX - 1};
	for (size_t i = 0; i < sizeof(bad_idx) / sizeof(bad_idx[0]); i++) {
		sl_store_relaxed(&ctl->head, SLUICE_BLOCKS_HEAD(77, bad_idx[i]));
		CHECK_RC(sluice_blocks_alloc(&b, 200, OWNER_A, &h), SLUICE_ECORRUPT);
		CHECK(sluice_blocks_audit(&b) == SLUICE_ECORRUPT);
		CHECK(stats(&b, 1).in_use == 1);
		/* Other classes carry on. */
		CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h));
		CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	}
	/* A free onto a corrupt stack reports it; the block is left off the
	 * stack (audit finds it once the head is repaired). */
	CHECK_RC(sluice_blocks_free(&b, held, OWNER_A), SLUICE_ECORRUPT);
	sl_store_relaxed(&ctl->head, saved);
	CHECK(sluice_blocks_audit(&b) == 1);

	/* A next word out of range, under the top. */
	saved = sl_load_relaxed(&ctl->head);
	uint32_t top = SLUICE_BLOCKS_HEAD_IDX(saved);
	CHECK(top < 4);
	uint32_t next_saved = sl_load_relaxed(&meta_at(&b, 1, top)->next);
	sl_store_relaxed(&meta_at(&b, 1, top)->next, 9999);
	CHECK_RC(sluice_blocks_alloc(&b, 200, OWNER_A, &h), SLUICE_ECORRUPT);
	CHECK(sluice_blocks_audit(&b) == SLUICE_ECORRUPT);
	/* A cycle: the top points at itself. alloc cannot see it cheaply;
	 * audit's bounded walk does. */
	sl_store_relaxed(&meta_at(&b, 1, top)->next, top);
	CHECK(sluice_blocks_audit(&b) == SLUICE_ECORRUPT);
	/* A block on the stack with an owner. */
	sl_store_relaxed(&meta_at(&b, 1, top)->next, next_saved);
	CHECK(sluice_blocks_audit(&b) == 0);
	sl_store_relaxed(&meta_at(&b, 1, top)->owner, OWNER_B);
	CHECK(sluice_blocks_audit(&b) == SLUICE_ECORRUPT);
	sl_store_relaxed(&meta_at(&b, 1, top)->owner, SLUICE_OWNER_FREE);
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

/* open() on a region whose header or geometry was edited: refused. */
static void test_open_refusals(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b, o;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	size_t keep = sizeof(struct sluice_blocks_hdr) + 4 * sizeof(struct sluice_blocks_ctl);
	char saved[sizeof(struct sluice_blocks_hdr) + 4 * sizeof(struct sluice_blocks_ctl)];
	memcpy(saved, b.region, keep);
	struct sluice_blocks_hdr *h = b.region;
	struct sluice_blocks_ctl *c3 = sluice__blocks_ctl(b.region, 3);
	struct sluice_blocks_ctl *c1 = sluice__blocks_ctl(b.region, 1);
#define REFUSED(edit, want)                                                    \
	do {                                                                   \
		edit;                                                          \
		CHECK_RC(sluice_blocks_open(&o, a, REGION), want);             \
		CHECK(o.nclasses == 0);                                        \
		memcpy(b.region, saved, keep);                                 \
	} while (0)
	REFUSED(h->magic ^= 1, SLUICE_EBADMAGIC);
	REFUSED(h->magic = 0, SLUICE_EBADMAGIC);
	REFUSED(h->layout_version = 2, SLUICE_EVERSION);
	REFUSED(h->header_size = 32, SLUICE_ECORRUPT);
	REFUSED(h->ctl_size = 128, SLUICE_ECORRUPT);
	REFUSED(h->nclasses = 0, SLUICE_ECORRUPT);
	REFUSED(h->nclasses = 33, SLUICE_ECORRUPT);
	REFUSED(h->nclasses = 5, SLUICE_ECORRUPT);     /* a class of zeros */
	REFUSED(h->used_size += 64, SLUICE_ECORRUPT);
	/* Geometry outside the region. */
	REFUSED(c3->count = 1000, SLUICE_ECORRUPT);
	REFUSED(c3->data_off = b.region_size, SLUICE_ECORRUPT);
	REFUSED(c3->data_off = UINT64_MAX - 4096, SLUICE_ECORRUPT);
	REFUSED((c3->count = 1u << 26, h->used_size = UINT64_C(1) << 42), SLUICE_ECORRUPT);
	REFUSED(c1->meta_off = b.region_size - 8, SLUICE_ECORRUPT);
	/* Geometry inside the region but not the one format wrote. */
	REFUSED(c1->meta_off += 64, SLUICE_ECORRUPT);
	REFUSED(c1->data_off -= 256, SLUICE_ECORRUPT);
	REFUSED(c1->block_size = 300, SLUICE_ECORRUPT);
	REFUSED(c1->block_size = 128, SLUICE_ECORRUPT);
	REFUSED(c1->log2_size = 9, SLUICE_ECORRUPT);
	REFUSED(c1->count = 0, SLUICE_ECORRUPT);
	REFUSED(c1->count = 3, SLUICE_ECORRUPT);       /* fits, but fails the hash */
	REFUSED(h->geom_hash ^= 1 << 20, SLUICE_ECORRUPT);
#undef REFUSED
	/* Untouched, it opens, and sees the same geometry. */
	CHECK_OK(sluice_blocks_open(&o, a, REGION));
	CHECK(memcmp(&o, &b, sizeof(o)) == 0);
	sluice_arena_destroy(a);

	/* A region that was never formatted: zeros. */
	sluice_arena_opts_t ao = {.size_of = sizeof(ao), .nregions = 1};
	ao.regions[0] = (sluice_region_req_t){.id = REGION, .size = 8192};
	CHECK_OK(sluice_arena_create(&ao, &a));
	CHECK_RC(sluice_blocks_open(&o, a, REGION), SLUICE_EBADMAGIC);
	CHECK_RC(sluice_blocks_open(NULL, a, REGION), SLUICE_EINVAL);
	sluice_arena_destroy(a);
}

/* A process dies between two steps of alloc or free. The children do by
 * hand, on the shared words, the first steps of alloc or free, then
 * SIGKILL themselves: the state a real death in that window leaves. */
enum window { POP_ONLY, POP_AND_COUNT, OWNER_CLEARED, OWNER_CLEARED_AND_COUNTED };

static void die_in_window(sluice_arena_t *a, enum window w, sluice_block_t held)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The child maps the arena again, at an address of its own. */
		sluice_arena_t *ca = NULL;
		sluice_blocks_t cb;
		if (sluice_arena_attach(sluice_arena_fd(a), 0, &ca) != 0 ||
		    sluice_blocks_open(&cb, ca, REGION) != 0)
			_exit(2);
		struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(cb.region, 1);
		if (w == POP_ONLY || w == POP_AND_COUNT) {
			uint64_t h = sl_load_acquire(&ctl->head);
			uint32_t idx = SLUICE_BLOCKS_HEAD_IDX(h);
			if (idx >= cb.cls[1].count)
				_exit(3);
			struct sluice_blocks_meta *m = meta_at(&cb, 1, idx);
			uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1,
							 sl_load_relaxed(&m->next));
			if (!sl_cas_acq_rel(&ctl->head, &h, nh))
				_exit(4);
			if (w == POP_AND_COUNT)
				sl_fetch_add_relaxed(&ctl->in_use, 1);
		} else {
			uint32_t want = 9;
			struct sluice_blocks_meta *m = meta_at(&cb, 1, held & 0x7ffffff);
			if (!sl_cas_acq_rel(&m->owner, &want, SLUICE_OWNER_FREE))
				_exit(5);
			if (w == OWNER_CLEARED_AND_COUNTED)
				sl_fetch_sub_relaxed(&ctl->in_use, 1);
		}
		raise(SIGKILL);
		_exit(6);
	}
	CHECK(test_wait(pid) == 128 + SIGKILL);
}

static void test_audit_repairs_deaths(void)
{
	sluice_blocks_config_t cfg = small_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t mine;
	CHECK_OK(sluice_blocks_alloc(&b, 256, OWNER_A, &mine));

	for (int w = POP_ONLY; w <= OWNER_CLEARED_AND_COUNTED; w++) {
		sluice_block_t held = SLUICE_BLOCK_NONE;
		if (w >= OWNER_CLEARED)
			CHECK_OK(sluice_blocks_alloc(&b, 256, 9, &held));
		die_in_window(a, (enum window)w, held);
		/* reclaim cannot see the block: it has no owner. */
		CHECK(sluice_blocks_reclaim(&b, 9) == 0);
		/* One block is missing: only 2 of the 3 others can be had. */
		sluice_block_t h[4];
		int got = 0;
		while (got < 4 && sluice_blocks_alloc(&b, 256, OWNER_B, &h[got]) == 0)
			got++;
		CHECK(got == 2);
		while (got > 0)
			CHECK_OK(sluice_blocks_free(&b, h[--got], OWNER_B));
		/* audit finds it, puts it back, and sets in_use to the truth. */
		CHECK(sluice_blocks_audit(&b) == 1);
		CHECK(stats(&b, 1).in_use == 1);
		CHECK(sluice_blocks_audit(&b) == 0);
		CHECK(sluice_blocks_owner(&b, mine) == OWNER_A);
		while (got < 4 && sluice_blocks_alloc(&b, 256, OWNER_B, &h[got]) == 0)
			got++;
		CHECK(got == 3);
		while (got > 0)
			CHECK_OK(sluice_blocks_free(&b, h[--got], OWNER_B));
	}
	CHECK_OK(sluice_blocks_free(&b, mine, OWNER_A));
	check_all_free(&b);
	sluice_arena_destroy(a);
}

/* Many blocks, the default geometry: every handle distinct and in range. */
static void test_default_geometry(void)
{
	sluice_blocks_config_t cfg;
	CHECK_OK(sluice_blocks_config_default(&cfg, UINT64_C(8) << 20));
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	CHECK(b.nclasses == cfg.nclasses);
	check_all_free(&b);
	CHECK(sluice_blocks_audit(&b) == 0);
	sluice_arena_destroy(a);
}

/* ---- per-thread caches --------------------------------------------------- */

/* Cached classes: 64 B x 256 (magazine 32, batches of 16), 256 B x 64
 * (8, 4), 4 KiB x 16 (2, 1); 64 KiB x 8 has too few blocks to be cached. */
static sluice_blocks_config_t cache_config(void)
{
	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = 4};
	cfg.classes[0] = (sluice_blocks_class_t){.block_size = 64, .count = 256};
	cfg.classes[1] = (sluice_blocks_class_t){.block_size = 256, .count = 64};
	cfg.classes[2] = (sluice_blocks_class_t){.block_size = 4096, .count = 16};
	cfg.classes[3] = (sluice_blocks_class_t){.block_size = 65536, .count = 8};
	return cfg;
}

static uint32_t owner_of(const sluice_blocks_t *b, sluice_block_t h)
{
	int64_t o = sluice_blocks_owner(b, h);
	CHECK(o >= 0);
	return (uint32_t)o;
}

/* Blocks of class c whose owner word is exactly `word`. */
static uint32_t count_owned(const sluice_blocks_t *b, uint32_t c, uint32_t word)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < b->cls[c].count; i++)
		n += owner_of(b, (c << 27) | i) == word;
	return n;
}

static void test_cache_init(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_cache_t k;
	CHECK_RC(sluice_blocks_cache_init(NULL, &b, OWNER_A), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_cache_init(&k, NULL, OWNER_A), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_cache_init(&k, &b, SLUICE_OWNER_FREE), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_cache_init(&k, &b, SLUICE_OWNER_MAX + 1), SLUICE_EINVAL);
	CHECK_RC(sluice_blocks_cache_init(&k, &b, OWNER_A | SLUICE_OWNER_CACHED), SLUICE_EINVAL);
	CHECK_OK(sluice_blocks_cache_init(&k, &b, SLUICE_OWNER_MAX));
	CHECK_OK(sluice_blocks_cache_init(&k, &b, OWNER_A));
	/* Magazines: min(64, count / 8), none under 16 blocks. */
	CHECK(k.mag[0].cap == 32 && k.mag[0].batch == 16);
	CHECK(k.mag[1].cap == 8 && k.mag[1].batch == 4);
	CHECK(k.mag[2].cap == 2 && k.mag[2].batch == 1);
	CHECK(k.mag[3].cap == 0);
	CHECK(sluice_blocks_cache_flush(&k) == 0);
	CHECK(sluice_blocks_cache_flush(NULL) == SLUICE_EINVAL);

	/* The default geometry: never more than an eighth of a class, never
	 * more than the depth, no class of fewer than 16 blocks. */
	CHECK_OK(sluice_blocks_config_default(&cfg, UINT64_C(64) << 20));
	sluice_blocks_t d;
	sluice_arena_t *da = make_blocks(&cfg, &d);
	CHECK_OK(sluice_blocks_cache_init(&k, &d, OWNER_A));
	for (uint32_t c = 0; c < d.nclasses; c++) {
		CHECK(k.mag[c].cap <= SLUICE_BLOCKS_CACHE_DEPTH);
		CHECK(k.mag[c].cap <= d.cls[c].count / 8);
		CHECK((k.mag[c].cap == 0) == (d.cls[c].count < 16));
	}
	CHECK(k.mag[0].cap == SLUICE_BLOCKS_CACHE_DEPTH);
	sluice_arena_destroy(da);

	/* Owner words with the cached bit are nobody's id. */
	sluice_block_t h;
	CHECK_RC(sluice_blocks_alloc(&b, 64, OWNER_A | SLUICE_OWNER_CACHED, &h), SLUICE_EINVAL);
	CHECK(sluice_blocks_reclaim(&b, OWNER_A | SLUICE_OWNER_CACHED) == SLUICE_EINVAL);
	sluice_arena_destroy(a);
}

static void test_cache_round_trip(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_cache_t k;
	CHECK_OK(sluice_blocks_cache_init(&k, &b, OWNER_A));

	/* The first alloc takes a batch: one block given out, the rest cached,
	 * all counted in in_use. */
	sluice_block_t h;
	CHECK_OK(sluice_blocks_cache_alloc(&k, 50, &h));
	CHECK(h >> 27 == 0);
	CHECK(owner_of(&b, h) == OWNER_A);
	CHECK(stats(&b, 0).in_use == 16 && stats(&b, 0).high_water == 16);
	CHECK(k.mag[0].n == 15);
	CHECK(count_owned(&b, 0, OWNER_A | SLUICE_OWNER_CACHED) == 15);
	CHECK(count_owned(&b, 0, OWNER_A) == 1);
	uint64_t cap;
	char *p = sluice_blocks_ptr(&b, h, &cap);
	CHECK(p != NULL && cap == 64);
	memset(p, 0x5a, cap);
	/* Back into the magazine: cached, still counted, and the next alloc
	 * of the class gets the same block (LIFO). */
	CHECK_OK(sluice_blocks_cache_free(&k, h));
	CHECK(owner_of(&b, h) == (OWNER_A | SLUICE_OWNER_CACHED));
	CHECK(k.mag[0].n == 16 && stats(&b, 0).in_use == 16);
	sluice_block_t h2;
	CHECK_OK(sluice_blocks_cache_alloc(&k, 64, &h2));
	CHECK(h2 == h && owner_of(&b, h) == OWNER_A);
	CHECK_OK(sluice_blocks_cache_free(&k, h2));

	/* Double free through the cache, and every other way of touching a
	 * cached block from outside: refused, nothing changes. */
	CHECK_RC(sluice_blocks_cache_free(&k, h), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, h, OWNER_A), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_free(&b, h, OWNER_A | SLUICE_OWNER_CACHED), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_set_owner(&b, h, OWNER_A, OWNER_B), SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_set_owner(&b, h, OWNER_A | SLUICE_OWNER_CACHED, OWNER_B),
		 SLUICE_ENOTOWNER);
	CHECK_RC(sluice_blocks_set_owner(&b, h, OWNER_A, OWNER_A | SLUICE_OWNER_CACHED),
		 SLUICE_EINVAL);
	CHECK(owner_of(&b, h) == (OWNER_A | SLUICE_OWNER_CACHED));
	CHECK(k.mag[0].n == 16 && stats(&b, 0).in_use == 16);
	/* Someone else's block, and a free one: refused. */
	sluice_block_t theirs;
	CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_B, &theirs));
	CHECK_RC(sluice_blocks_cache_free(&k, theirs), SLUICE_ENOTOWNER);
	CHECK_OK(sluice_blocks_free(&b, theirs, OWNER_B));
	CHECK_RC(sluice_blocks_cache_free(&k, theirs), SLUICE_ENOTOWNER);
	CHECK(owner_of(&b, theirs) == SLUICE_OWNER_FREE);
	/* Bad handles. */
	sluice_block_t bad[] = {SLUICE_BLOCK_NONE, 4u << 27, (31u << 27) | 1, 256, (1u << 27) | 64,
				(3u << 27) | 8};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_RC(sluice_blocks_cache_free(&k, bad[i]), SLUICE_EBADHANDLE);
	CHECK_RC(sluice_blocks_cache_alloc(&k, 65537, &h2), SLUICE_E2BIG);
	CHECK_RC(sluice_blocks_cache_alloc(&k, UINT64_MAX, &h2), SLUICE_E2BIG);

	/* Allocated through the cache, freed plainly: in_use drops by one. */
	CHECK_OK(sluice_blocks_cache_alloc(&k, 64, &h));
	CHECK_OK(sluice_blocks_free(&b, h, OWNER_A));
	CHECK(stats(&b, 0).in_use == 15 && k.mag[0].n == 15);
	/* Allocated plainly, freed into the cache: in_use stays (the block is
	 * still off the stack, in the magazine). */
	CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_A, &h));
	CHECK(stats(&b, 0).in_use == 16);
	CHECK_OK(sluice_blocks_cache_free(&k, h));
	CHECK(stats(&b, 0).in_use == 16 && k.mag[0].n == 16);
	CHECK(owner_of(&b, h) == (OWNER_A | SLUICE_OWNER_CACHED));
	/* Allocated by another owner and handed over: freed into the cache. */
	CHECK_OK(sluice_blocks_alloc(&b, 64, OWNER_B, &h));
	CHECK_RC(sluice_blocks_cache_free(&k, h), SLUICE_ENOTOWNER);
	CHECK_OK(sluice_blocks_set_owner(&b, h, OWNER_B, OWNER_A));
	CHECK_OK(sluice_blocks_cache_free(&k, h));
	CHECK(k.mag[0].n == 17 && stats(&b, 0).in_use == 17);

	/* A class too small to cache goes straight to the shared stack. */
	CHECK_OK(sluice_blocks_cache_alloc(&k, 40000, &h));
	CHECK(h >> 27 == 3 && owner_of(&b, h) == OWNER_A);
	CHECK(stats(&b, 3).in_use == 1 && k.mag[3].n == 0);
	CHECK_OK(sluice_blocks_cache_free(&k, h));
	CHECK(owner_of(&b, h) == SLUICE_OWNER_FREE && stats(&b, 3).in_use == 0);
	CHECK_RC(sluice_blocks_cache_free(&k, h), SLUICE_ENOTOWNER);

	/* A live cache's blocks are owned, not leaked: audit leaves them and
	 * in_use alone. Flush gives them all back. */
	CHECK(sluice_blocks_audit(&b) == 0);
	CHECK(stats(&b, 0).in_use == 17);
	CHECK(sluice_blocks_cache_flush(&k) == 17);
	CHECK(k.mag[0].n == 0 && stats(&b, 0).in_use == 0);
	CHECK(count_owned(&b, 0, OWNER_A | SLUICE_OWNER_CACHED) == 0);
	CHECK(sluice_blocks_cache_flush(&k) == 0);
	CHECK(sluice_blocks_audit(&b) == 0);
	/* The cache carries on after a flush. */
	CHECK_OK(sluice_blocks_cache_alloc(&k, 200, &h));
	CHECK(h >> 27 == 1 && stats(&b, 1).in_use == 4);
	CHECK_OK(sluice_blocks_cache_free(&k, h));
	CHECK(sluice_blocks_cache_fini(&k) == 4);
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

/* A random walk of allocs and frees through one cache over every class,
 * against a model of each magazine and each class's shared stack: the
 * refills and flushes happen exactly at the batch boundaries, in_use is
 * always the blocks off the stack, exhaustion gives -ENOSPC, no block is
 * handed out twice. */
static void test_cache_batches(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_cache_t k;
	CHECK_OK(sluice_blocks_cache_init(&k, &b, OWNER_A));
	for (uint32_t c = 0; c < 4; c++) {
		uint32_t count = cfg.classes[c].count, cap = k.mag[c].cap, batch = k.mag[c].batch;
		sluice_block_t *held = calloc(count, sizeof(*held));
		uint8_t *out = calloc(count, 1);
		CHECK(held != NULL && out != NULL);
		uint32_t nheld = 0, n = 0, in_use = 0, enospc = 0;
		uint64_t rng = 0x9e3779b97f4a7c15ull + c;
		for (int step = 0; step < 20000; step++) {
			rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
			uint64_t r = rng * 0x2545f4914f6cdd1dull;
			/* Drift up to exhaustion and back down, in phases. */
			bool up = ((step / 1000) % 2 == 0) ? r % 8 < 6 : r % 8 < 2;
			if (up) {
				sluice_block_t h;
				int rc = sluice_blocks_cache_alloc(&k, cfg.classes[c].block_size, &h);
				if (cap == 0) {
					/* not cached: straight to the stack */
					if (in_use == count) {
						CHECK(rc == SLUICE_ENOSPC);
						enospc++;
						continue;
					}
					in_use++;
				} else if (n == 0) {
					uint32_t take = count - in_use < batch ? count - in_use : batch;
					if (take == 0) {
						CHECK(rc == SLUICE_ENOSPC);
						enospc++;
						continue;
					}
					in_use += take;
					n = take - 1;
				} else {
					n--;
				}
				CHECK_OK(rc);
				CHECK(h >> 27 == c && !out[h & 0x7ffffff]);
				CHECK(owner_of(&b, h) == OWNER_A);
				out[h & 0x7ffffff] = 1;
				held[nheld++] = h;
			} else if (nheld > 0) {
				uint32_t i = (uint32_t)(r >> 32) % nheld;
				sluice_block_t h = held[i];
				held[i] = held[--nheld];
				out[h & 0x7ffffff] = 0;
				CHECK_OK(sluice_blocks_cache_free(&k, h));
				if (cap == 0) {
					in_use--;
				} else {
					if (n == cap)
						n -= batch, in_use -= batch;
					n++;
					CHECK(owner_of(&b, h) == (OWNER_A | SLUICE_OWNER_CACHED));
				}
			}
			CHECK(k.mag[c].n == n);
			CHECK(stats(&b, c).in_use == in_use);
			CHECK(nheld + n == in_use);
			CHECK(count_owned(&b, c, OWNER_A) == nheld);
			CHECK(count_owned(&b, c, OWNER_A | SLUICE_OWNER_CACHED) == n);
		}
		CHECK(enospc > 0);                       /* exhaustion was reached */
		CHECK(stats(&b, c).high_water == count); /* every block was out */
		while (nheld > 0)
			CHECK_OK(sluice_blocks_cache_free(&k, held[--nheld]));
		CHECK(sluice_blocks_audit(&b) == 0);
		uint32_t cached = k.mag[c].n; /* other magazines are empty */
		CHECK(stats(&b, c).in_use == cached);
		CHECK(sluice_blocks_cache_flush(&k) == cached);
		CHECK(stats(&b, c).in_use == 0 && k.mag[c].n == 0);
		free(held);
		free(out);
	}
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

/* Two caches share a class: what one holds, the other cannot have; after
 * a flush it can. A dead cache's blocks, cached and given out, come back
 * with reclaim(owner). */
static void test_cache_two_and_reclaim(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_cache_t ka, kb;
	CHECK_OK(sluice_blocks_cache_init(&ka, &b, OWNER_A));
	CHECK_OK(sluice_blocks_cache_init(&kb, &b, OWNER_B));
	/* A takes 2 blocks of the 256 B class and caches 2 more (batch 4). */
	sluice_block_t mine[2];
	for (int i = 0; i < 2; i++)
		CHECK_OK(sluice_blocks_cache_alloc(&ka, 256, &mine[i]));
	CHECK(ka.mag[1].n == 2 && stats(&b, 1).in_use == 4);
	/* B gets the other 60, then -ENOSPC while A's magazine holds 2. */
	sluice_block_t theirs[64];
	uint32_t got = 0;
	int rc;
	while ((rc = sluice_blocks_cache_alloc(&kb, 256, &theirs[got])) == 0)
		got++;
	CHECK(rc == SLUICE_ENOSPC && got == 60);
	CHECK(stats(&b, 1).in_use == 64 && stats(&b, 1).high_water == 64);
	CHECK(sluice_blocks_audit(&b) == 0);
	/* A flushes: B finds the two. */
	CHECK(sluice_blocks_cache_flush(&ka) == 2);
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 256, &theirs[got++]));
	CHECK(kb.mag[1].n == 1); /* a batch of the 2 there were */
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 256, &theirs[got++]));
	CHECK_RC(sluice_blocks_cache_alloc(&kb, 256, &theirs[got]), SLUICE_ENOSPC);
	/* B's thread "dies" holding 62 blocks given out and a few cached in
	 * other classes too: reclaim(B) finds every one, A's stay A's. */
	sluice_block_t x;
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 64, &x));     /* 1 out, 15 cached */
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 4096, &x));   /* 1 out, 0 cached */
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 40000, &x));  /* not cached */
	CHECK_OK(sluice_blocks_cache_alloc(&kb, 4000, &x));   /* refill of 1 */
	CHECK_OK(sluice_blocks_cache_free(&kb, x));           /* 1 cached */
	CHECK(count_owned(&b, 0, OWNER_B | SLUICE_OWNER_CACHED) == 15);
	CHECK(sluice_blocks_reclaim(&b, OWNER_B) == 62 + 16 + 2 + 1);
	CHECK(sluice_blocks_reclaim(&b, OWNER_B) == 0);
	for (uint32_t c = 0; c < 4; c++)
		CHECK(count_owned(&b, c, OWNER_B) == 0 &&
		      count_owned(&b, c, OWNER_B | SLUICE_OWNER_CACHED) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(owner_of(&b, mine[i]) == OWNER_A);
	CHECK(stats(&b, 0).in_use == 0 && stats(&b, 1).in_use == 2 && stats(&b, 2).in_use == 0 &&
	      stats(&b, 3).in_use == 0);
	CHECK(sluice_blocks_audit(&b) == 0);
	for (int i = 0; i < 2; i++)
		CHECK_OK(sluice_blocks_cache_free(&ka, mine[i]));
	CHECK(sluice_blocks_cache_fini(&ka) == 2);
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

/* Blocks cross processes: a child allocates through its own cache and
 * hands blocks to the parent's owner with set_owner; the parent frees them
 * into its cache, and its flush puts them where the child's next refill
 * finds them. Then the child frees, plainly, a block the parent allocated
 * through its cache and handed over. */
struct handoff {
	_Atomic uint32_t n;         /* child: handles published */
	_Atomic uint32_t back;      /* parent: a block handed to the child */
	_Atomic uint32_t done;      /* child: finished */
	_Atomic uint32_t blk[8];
};

static void test_cache_handoff(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	struct handoff *ho = mmap(NULL, sizeof(*ho), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(ho != MAP_FAILED);
	memset(ho, 0, sizeof(*ho));
	sl_store_relaxed(&ho->back, SLUICE_BLOCK_NONE);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sluice_arena_t *ca = NULL;
		sluice_blocks_t cb;
		sluice_blocks_cache_t ck;
		if (sluice_arena_attach(sluice_arena_fd(a), 0, &ca) != 0 ||
		    sluice_blocks_open(&cb, ca, REGION) != 0 ||
		    sluice_blocks_cache_init(&ck, &cb, OWNER_B) != 0)
			_exit(2);
		for (uint32_t i = 0; i < 8; i++) {
			sluice_block_t h;
			if (sluice_blocks_cache_alloc(&ck, 256, &h) != 0)
				_exit(3);
			memset(sluice_blocks_ptr(&cb, h, NULL), (int)(0x40 + i), 256);
			if (sluice_blocks_set_owner(&cb, h, OWNER_B, OWNER_A) != 0)
				_exit(4);
			sl_store_relaxed(&ho->blk[i], h);
			/* release: pairs with the parent's acquire of n; the
			 * set_owner CAS already released the bytes. */
			sl_store_release(&ho->n, i + 1);
		}
		/* acquire: pairs with the parent's release of back. */
		uint64_t deadline = test_now_ns() + UINT64_C(20000000000);
		uint32_t back;
		while ((back = sl_load_acquire(&ho->back)) == SLUICE_BLOCK_NONE)
			if (test_now_ns() > deadline)
				_exit(5);
		const uint8_t *p = sluice_blocks_ptr(&cb, back, NULL);
		if (p == NULL || p[0] != 0x77 || p[255] != 0x77)
			_exit(6);
		if (sluice_blocks_free(&cb, back, OWNER_B) != 0)
			_exit(7);
		if (sluice_blocks_cache_flush(&ck) < 0)
			_exit(8);
		_exit(0);
	}
	sluice_blocks_cache_t k;
	CHECK_OK(sluice_blocks_cache_init(&k, &b, OWNER_A));
	uint64_t deadline = test_now_ns() + UINT64_C(20000000000) * test_slowdown();
	/* acquire: pairs with the child's release of n. */
	while (sl_load_acquire(&ho->n) < 8)
		CHECK(test_now_ns() < deadline);
	for (uint32_t i = 0; i < 8; i++) {
		sluice_block_t h = sl_load_relaxed(&ho->blk[i]);
		CHECK(owner_of(&b, h) == OWNER_A);
		const uint8_t *p = sluice_blocks_ptr(&b, h, NULL);
		CHECK(p[0] == 0x40 + i && p[255] == 0x40 + i);
		CHECK_OK(sluice_blocks_cache_free(&k, h));
		CHECK_RC(sluice_blocks_cache_free(&k, h), SLUICE_ENOTOWNER);
	}
	/* Magazine of 8: the 8 fit, no flush yet. */
	CHECK(k.mag[1].n == 8);
	sluice_block_t h;
	CHECK_OK(sluice_blocks_cache_alloc(&k, 256, &h));
	memset(sluice_blocks_ptr(&b, h, NULL), 0x77, 256);
	CHECK_OK(sluice_blocks_set_owner(&b, h, OWNER_A, OWNER_B));
	/* release: pairs with the child's acquire of back (set_owner's CAS
	 * released the bytes already). */
	sl_store_release(&ho->back, h);
	CHECK(test_wait(pid) == 0);
	CHECK(count_owned(&b, 1, OWNER_B) == 0);
	CHECK(count_owned(&b, 1, OWNER_B | SLUICE_OWNER_CACHED) == 0);
	CHECK(sluice_blocks_cache_flush(&k) == 7);
	CHECK(stats(&b, 1).in_use == 0);
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	munmap(ho, sizeof(*ho));
	sluice_arena_destroy(a);
}

/* A thread dies inside a cache's refill (after the pop CAS, before its
 * owner stores) or flush (after clearing the owner words, before the push
 * CAS): up to a batch of blocks off the stack and owned by nobody. reclaim
 * cannot see them; audit puts them back and sets in_use to the truth. The
 * children do the steps of refill and flush by hand on the shared words,
 * then SIGKILL themselves. A third child dies with a plain full cache:
 * reclaim alone finds everything. */
enum cache_window { REFILL_POPPED, REFILL_COUNTED, FLUSH_CLEARED, FLUSH_UNCOUNTED, CACHE_HELD };

static void cache_die_in_window(sluice_arena_t *a, enum cache_window w)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sluice_arena_t *ca = NULL;
		sluice_blocks_t cb;
		sluice_blocks_cache_t ck;
		if (sluice_arena_attach(sluice_arena_fd(a), 0, &ca) != 0 ||
		    sluice_blocks_open(&cb, ca, REGION) != 0 ||
		    sluice_blocks_cache_init(&ck, &cb, 9) != 0)
			_exit(2);
		struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(cb.region, 1);
		if (w == REFILL_POPPED || w == REFILL_COUNTED) {
			/* Pop a chain of 4 with one CAS, as cache_refill does. */
			uint64_t h = sl_load_acquire(&ctl->head);
			uint32_t idx = SLUICE_BLOCKS_HEAD_IDX(h);
			for (int i = 0; i < 4; i++) {
				if (idx >= cb.cls[1].count)
					_exit(3);
				idx = sl_load_relaxed(&meta_at(&cb, 1, idx)->next);
			}
			uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1, idx);
			if (!sl_cas_acq_rel(&ctl->head, &h, nh))
				_exit(4);
			if (w == REFILL_COUNTED)
				sl_fetch_add_relaxed(&ctl->in_use, 4);
		} else {
			/* A real refill: 1 block out, 3 cached. */
			sluice_block_t x;
			if (sluice_blocks_cache_alloc(&ck, 256, &x) != 0 || ck.mag[1].n != 3)
				_exit(5);
			if (w != CACHE_HELD) {
				/* flush's first steps on the 3 cached blocks */
				for (uint32_t i = 0; i < 3; i++)
					sl_store_relaxed(&meta_at(&cb, 1, ck.mag[1].idx[i])->owner,
							 SLUICE_OWNER_FREE);
				if (w == FLUSH_UNCOUNTED)
					sl_fetch_sub_relaxed(&ctl->in_use, 3);
			}
		}
		raise(SIGKILL);
		_exit(6);
	}
	CHECK(test_wait(pid) == 128 + SIGKILL);
}

static void test_cache_deaths(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_block_t mine;
	CHECK_OK(sluice_blocks_alloc(&b, 256, OWNER_A, &mine));
	static const struct { int64_t reclaimed, leaked; } want[] = {
		[REFILL_POPPED] = {0, 4}, [REFILL_COUNTED] = {0, 4},
		[FLUSH_CLEARED] = {1, 3}, [FLUSH_UNCOUNTED] = {1, 3},
		[CACHE_HELD] = {4, 0},
	};
	for (int w = REFILL_POPPED; w <= CACHE_HELD; w++) {
		cache_die_in_window(a, (enum cache_window)w);
		CHECK(sluice_blocks_reclaim(&b, 9) == want[w].reclaimed);
		CHECK(sluice_blocks_audit(&b) == want[w].leaked);
		CHECK(sluice_blocks_audit(&b) == 0);
		CHECK(stats(&b, 1).in_use == 1);
		CHECK(owner_of(&b, mine) == OWNER_A);
		/* Everything else can be had again. */
		sluice_block_t h[64];
		uint32_t got = 0;
		while (got < 64 && sluice_blocks_alloc(&b, 256, OWNER_B, &h[got]) == 0)
			got++;
		CHECK(got == 63);
		while (got > 0)
			CHECK_OK(sluice_blocks_free(&b, h[--got], OWNER_B));
	}
	CHECK_OK(sluice_blocks_free(&b, mine, OWNER_A));
	check_all_free(&b);
	sluice_arena_destroy(a);
}


/* A scribbled-on free-stack head under a cache: refill, a free into a full
 * magazine and flush all say -ECORRUPT and change nothing; once the word
 * is put back, everything carries on. */
static void test_cache_corruption(void)
{
	sluice_blocks_config_t cfg = cache_config();
	sluice_blocks_t b;
	sluice_arena_t *a = make_blocks(&cfg, &b);
	sluice_blocks_cache_t k;
	CHECK_OK(sluice_blocks_cache_init(&k, &b, OWNER_A));
	struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(b.region, 1);
	/* Three refills of 4 for 9 blocks (3 left in the magazine); 5 freed
	 * fill the magazine (8); 4 still held. */
	sluice_block_t h[9];
	for (int i = 0; i < 9; i++)
		CHECK_OK(sluice_blocks_cache_alloc(&k, 256, &h[i]));
	for (int i = 0; i < 5; i++)
		CHECK_OK(sluice_blocks_cache_free(&k, h[i]));
	CHECK(k.mag[1].n == 8 && stats(&b, 1).in_use == 12);
	uint64_t saved = sl_load_relaxed(&ctl->head);
	sl_store_relaxed(&ctl->head, SLUICE_BLOCKS_HEAD(5, 64));
	CHECK_RC(sluice_blocks_cache_free(&k, h[5]), SLUICE_ECORRUPT);
	CHECK(owner_of(&b, h[5]) == OWNER_A && k.mag[1].n == 8);
	CHECK(sluice_blocks_cache_flush(&k) == SLUICE_ECORRUPT);
	CHECK(k.mag[1].n == 8 && stats(&b, 1).in_use == 12);
	CHECK(count_owned(&b, 1, OWNER_A | SLUICE_OWNER_CACHED) == 8);
	/* Empty the magazine by hand-outs, then a refill meets the bad head. */
	sluice_block_t out[8];
	for (int i = 0; i < 8; i++)
		CHECK_OK(sluice_blocks_cache_alloc(&k, 256, &out[i]));
	sluice_block_t x;
	CHECK_RC(sluice_blocks_cache_alloc(&k, 256, &x), SLUICE_ECORRUPT);
	CHECK(stats(&b, 1).in_use == 12);
	sl_store_relaxed(&ctl->head, saved);
	CHECK(sluice_blocks_audit(&b) == 0);
	for (int i = 0; i < 8; i++)
		CHECK_OK(sluice_blocks_cache_free(&k, out[i]));
	CHECK(k.mag[1].n == 8 && stats(&b, 1).in_use == 12);
	CHECK_OK(sluice_blocks_cache_free(&k, h[5])); /* full: 4 go back first */
	CHECK(k.mag[1].n == 5 && stats(&b, 1).in_use == 8);
	for (int i = 6; i < 9; i++)
		CHECK_OK(sluice_blocks_cache_free(&k, h[i]));
	CHECK(sluice_blocks_cache_fini(&k) == 8);
	CHECK(sluice_blocks_audit(&b) == 0);
	check_all_free(&b);
	sluice_arena_destroy(a);
}

int main(void)
{
	test_config();
	test_open_and_classes();
	test_exhaustion();
	test_ownership();
	test_bad_handles();
	test_counters();
	test_corruption();
	test_open_refusals();
	test_audit_repairs_deaths();
	test_default_geometry();
	test_cache_init();
	test_cache_round_trip();
	test_cache_batches();
	test_cache_two_and_reclaim();
	test_cache_handoff();
	test_cache_deaths();
	test_cache_corruption();
	printf("ok\n");
	return TEST_PASS;
}
