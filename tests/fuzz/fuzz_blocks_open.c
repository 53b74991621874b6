/* libFuzzer target: the input, after FUZZ_OPS_LEN bytes of operations, is
 * the content of a block allocator's region inside a valid arena (the
 * region is the input's length rounded up to 4 KiB, at most
 * FUZZ_BLOCKS_MAX_PAGES pages, zero-filled past the input). The arena's
 * header page and a guard region after the allocator's are poisoned for
 * ASan, so a read or write outside the region is reported even though the
 * arena is one mmap.
 *
 * sluice_blocks_open must refuse or accept without crashing; on success
 * every class's geometry lies in the region, and a script of alloc, free,
 * set_owner, cache, reclaim, stats and audit calls never crashes, never
 * hands out a pointer outside the region, and returns only sluice codes
 * (errors such as -ECORRUPT are expected: the free stacks and owner words
 * are the fuzzer's). Once audit accepts the region, it is consistent: a
 * second audit finds nothing, and draining a class yields distinct blocks.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <sluice/arena.h>
#include <sluice/blocks.h>

#define PAGE 4096u
#define MAX_HELD 32u

/* One arena per region size, made on first use and kept: arenas are
 * memfds and mmaps, too slow to make per input. */
static sluice_arena_t *arenas[FUZZ_BLOCKS_MAX_PAGES + 1];

static sluice_arena_t *arena_for(uint32_t pages, char **region)
{
	if (arenas[pages] == NULL) {
		sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "fuzz-blocks"};
		o.nregions = 2;
		o.regions[0] = (sluice_region_req_t){.id = FUZZ_BLOCKS_REGION, .size = pages * PAGE};
		o.regions[1] = (sluice_region_req_t){.id = FUZZ_GUARD_REGION, .size = PAGE};
		FUZZ_CHECK(sluice_arena_create(&o, &arenas[pages]) == 0);
		char *base = sluice_arena_base(arenas[pages]);
		uint64_t off, len, goff, glen;
		FUZZ_CHECK(sluice_arena_region(arenas[pages], FUZZ_BLOCKS_REGION, &off, &len) == 0);
		FUZZ_CHECK(sluice_arena_region(arenas[pages], FUZZ_GUARD_REGION, &goff, &glen) == 0);
		FUZZ_CHECK(off == PAGE && goff == off + len);
		/* Only the allocator's region is the library's to touch. */
		FUZZ_POISON(base, off);
		FUZZ_POISON(base + goff, glen);
	}
	uint64_t off;
	FUZZ_CHECK(sluice_arena_region(arenas[pages], FUZZ_BLOCKS_REGION, &off, NULL) == 0);
	*region = (char *)sluice_arena_base(arenas[pages]) + off;
	return arenas[pages];
}

struct held {
	sluice_block_t blk;
	uint32_t owner;
};

struct state {
	sluice_blocks_t b;
	sluice_blocks_cache_t cache;
	char *region;
	uint64_t region_size;
	struct held held[MAX_HELD];
	uint32_t nheld;
};

/* A pointer the allocator handed out must lie inside the region, and its
 * whole block must be there: write it (it is ours). */
static void check_block(struct state *s, sluice_block_t blk, uint64_t want)
{
	uint64_t cap = 0;
	char *p = sluice_blocks_ptr(&s->b, blk, &cap);
	FUZZ_CHECK(p != NULL);
	FUZZ_CHECK(cap >= want && cap >= 64);
	FUZZ_CHECK(p >= s->region && cap <= s->region_size &&
		   (uint64_t)(p - s->region) <= s->region_size - cap);
	memset(p, 0xa5, cap);
}

static void hold(struct state *s, sluice_block_t blk, uint32_t owner)
{
	if (s->nheld < MAX_HELD)
		s->held[s->nheld++] = (struct held){blk, owner};
}

static uint64_t size_for(uint32_t arg)
{
	/* 0, 1, powers of two and one past them, up to 2^20. */
	if (arg == 0)
		return 0;
	uint64_t v = UINT64_C(1) << ((arg >> 1) % 21);
	return (arg & 1) ? v + 1 : v;
}

static void run_op(struct state *s, uint8_t op, bool cached)
{
	uint32_t arg = op >> 3;
	uint32_t owner = 1 + (arg & 3);
	sluice_block_t blk;
	int64_t rc;
	switch (op & 7) {
	case 0: { /* alloc */
		uint64_t want = size_for(arg);
		rc = sluice_blocks_alloc(&s->b, want, owner, &blk);
		FUZZ_CHECK_RC(rc);
		if (rc == 0) {
			check_block(s, blk, want);
			/* The owner word is in the fuzzer's hands only until we
			 * store ours: alloc just did. */
			FUZZ_CHECK(sluice_blocks_owner(&s->b, blk) == owner);
			hold(s, blk, owner);
		}
		break;
	}
	case 1: /* free a held block */
		if (s->nheld > 0) {
			struct held h = s->held[arg % s->nheld];
			s->held[arg % s->nheld] = s->held[--s->nheld];
			FUZZ_CHECK_RC(sluice_blocks_free(&s->b, h.blk, h.owner));
		}
		break;
	case 2: { /* free, owner, ptr and set_owner of a made-up handle */
		blk = ((arg & 0x1f) << 27) | (arg * 7u);
		if (arg == 31)
			blk = SLUICE_BLOCK_NONE;
		FUZZ_CHECK_RC(sluice_blocks_owner(&s->b, blk));
		uint64_t cap;
		char *p = sluice_blocks_ptr(&s->b, blk, &cap);
		if (p != NULL)
			FUZZ_CHECK(p >= s->region && (uint64_t)(p - s->region) + cap <= s->region_size);
		FUZZ_CHECK_RC(sluice_blocks_set_owner(&s->b, blk, owner, owner + 1));
		FUZZ_CHECK_RC(sluice_blocks_free(&s->b, blk, owner));
		break;
	}
	case 3: /* hand a held block to another owner */
		if (s->nheld > 0) {
			struct held *h = &s->held[arg % s->nheld];
			uint32_t to = h->owner % 4 + 1;
			rc = sluice_blocks_set_owner(&s->b, h->blk, h->owner, to);
			FUZZ_CHECK_RC(rc);
			if (rc == 0)
				h->owner = to;
		}
		break;
	case 4: /* through the cache */
		if (!cached)
			break;
		if (arg & 1) {
			uint64_t want = size_for(arg >> 1);
			rc = sluice_blocks_cache_alloc(&s->cache, want, &blk);
			FUZZ_CHECK_RC(rc);
			if (rc == 0) {
				check_block(s, blk, want);
				hold(s, blk, s->cache.owner);
			}
		} else if (s->nheld > 0) {
			struct held h = s->held[(arg >> 1) % s->nheld];
			if (h.owner == s->cache.owner) {
				s->held[(arg >> 1) % s->nheld] = s->held[--s->nheld];
				FUZZ_CHECK_RC(sluice_blocks_cache_free(&s->cache, h.blk));
			}
		}
		break;
	case 5: /* the cache gives everything back */
		if (cached)
			FUZZ_CHECK_RC(sluice_blocks_cache_flush(&s->cache));
		break;
	case 6: /* an owner dies: its blocks go back */
		rc = sluice_blocks_reclaim(&s->b, owner);
		FUZZ_CHECK_RC(rc);
		if (rc >= 0) {
			for (uint32_t i = 0; i < s->nheld;) {
				if (s->held[i].owner == owner)
					s->held[i] = s->held[--s->nheld];
				else
					i++;
			}
		}
		break;
	case 7: /* statistics, then an audit (the region is quiescent) */
		for (uint32_t c = 0; c <= s->b.nclasses; c++) {
			sluice_blocks_stats_t st;
			rc = sluice_blocks_stats(&s->b, c, &st);
			FUZZ_CHECK_RC(rc);
			FUZZ_CHECK((rc == 0) == (c < s->b.nclasses));
			if (rc == 0)
				FUZZ_CHECK(st.capacity == s->b.cls[c].count &&
					   st.block_size == s->b.cls[c].block_size);
		}
		FUZZ_CHECK_RC(sluice_blocks_audit(&s->b));
		break;
	}
}

/* What open promises about the geometry it copied. */
static void check_geometry(const struct state *s)
{
	const sluice_blocks_t *b = &s->b;
	FUZZ_CHECK(b->region == s->region && b->region_size == s->region_size);
	FUZZ_CHECK(b->nclasses >= 1 && b->nclasses <= SLUICE_BLOCKS_MAX_CLASSES);
	for (uint32_t c = 0; c < b->nclasses; c++) {
		const struct sluice__blocks_geom *g = &b->cls[c];
		FUZZ_CHECK(g->block_size >= 64 && (g->block_size & (g->block_size - 1)) == 0);
		FUZZ_CHECK(g->block_size == UINT64_C(1) << g->log2_size);
		FUZZ_CHECK(g->count >= 1);
		FUZZ_CHECK(c == 0 || g->block_size > b->cls[c - 1].block_size);
		FUZZ_CHECK(g->meta_off + (uint64_t)g->count * 8 <= s->region_size);
		FUZZ_CHECK(g->data_off + (uint64_t)g->count * g->block_size <= s->region_size);
		FUZZ_CHECK((char *)g->ctl >= s->region &&
			   (uint64_t)((char *)g->ctl - s->region) + 64 <= s->region_size);
	}
}

/* After an audit that accepted the region: a second finds nothing to
 * repair, and class c's free stack yields distinct blocks until empty. */
static void check_consistent(struct state *s, uint32_t c)
{
	FUZZ_CHECK(sluice_blocks_audit(&s->b) == 0);
	const struct sluice__blocks_geom *g = &s->b.cls[c];
	uint8_t *seen = calloc(g->count, 1);
	FUZZ_CHECK(seen != NULL);
	for (;;) {
		sluice_block_t blk;
		int rc = sluice_blocks_alloc(&s->b, g->block_size, 9, &blk);
		if (rc == SLUICE_ENOSPC)
			break;
		FUZZ_CHECK(rc == 0);
		FUZZ_CHECK(blk >> 27 == c);
		uint32_t idx = blk & ((UINT32_C(1) << 27) - 1);
		FUZZ_CHECK(idx < g->count && !seen[idx]);
		seen[idx] = 1;
	}
	free(seen);
	FUZZ_CHECK(sluice_blocks_reclaim(&s->b, 9) >= 0);
	FUZZ_CHECK(sluice_blocks_audit(&s->b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < FUZZ_OPS_LEN)
		return 0;
	const uint8_t *ops = data;
	data += FUZZ_OPS_LEN;
	size -= FUZZ_OPS_LEN;
	uint32_t pages = (uint32_t)((size + PAGE - 1) / PAGE);
	if (pages == 0)
		pages = 1;
	if (pages > FUZZ_BLOCKS_MAX_PAGES) {
		pages = FUZZ_BLOCKS_MAX_PAGES;
		size = FUZZ_BLOCKS_MAX_PAGES * PAGE;
	}
	static struct state s;
	memset(&s, 0, sizeof(s));
	sluice_arena_t *a = arena_for(pages, &s.region);
	s.region_size = (uint64_t)pages * PAGE;
	memcpy(s.region, data, size);
	memset(s.region + size, 0, s.region_size - size);

	int rc = sluice_blocks_open(&s.b, a, FUZZ_BLOCKS_REGION);
	FUZZ_CHECK_RC(rc);
	if (rc != 0) {
		FUZZ_CHECK(s.b.nclasses == 0 && s.b.region == NULL);
		return 0;
	}
	check_geometry(&s);
	bool cached = sluice_blocks_cache_init(&s.cache, &s.b, 7) == 0;
	FUZZ_CHECK(cached);
	for (uint32_t i = 0; i < FUZZ_OPS_LEN; i++)
		run_op(&s, ops[i], cached);
	FUZZ_CHECK_RC(sluice_blocks_cache_fini(&s.cache));
	int64_t leaked = sluice_blocks_audit(&s.b);
	FUZZ_CHECK_RC(leaked);
	if (leaked >= 0)
		check_consistent(&s, ops[0] % s.b.nclasses);
	return 0;
}
