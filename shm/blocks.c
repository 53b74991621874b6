/* The block allocator: size classes of fixed blocks in one arena region,
 * each class's free blocks on a lock-free stack of indices (a Treiber stack
 * whose head word carries an ABA tag), every block's owner recorded in a
 * word changed only by compare-and-swap. Layout in shm/blocks_layout.h,
 * contract in include/sluice/blocks.h, reasons in docs/DECISIONS-blocks.md.
 *
 * Order of the steps, chosen so that a process killed between any two of
 * them leaves something audit or reclaim can repair, and so that in_use
 * never exceeds the blocks taken off the stack:
 *
 *   alloc: pop (head CAS) -> in_use += 1 -> owner store
 *   free:  owner CAS owner->FREE -> in_use -= 1 -> push (head CAS)
 *
 * Crash windows (the process dies between two steps):
 *   - alloc, after the pop and before the owner store: the block is off the
 *     stack and owned by nobody. reclaim cannot find it (no owner to match);
 *     sluice_blocks_audit() on a quiescent region finds it and pushes it
 *     back. in_use may count it (died after the += 1): audit recomputes it.
 *   - free, after the owner CAS and before the push: the same, a block off
 *     the stack owned by nobody; audit repairs it.
 *   - Never a broken stack: the stack changes only by one CAS on the head
 *     word, so a death leaves it either before or after that CAS.
 * Owned blocks never outnumber in_use (the count rises before an owner is
 * stored and falls after it is cleared), so reclaim never drives in_use
 * below zero.
 *
 * Per-thread caches (sluice_blocks_cache_t) move blocks in batches, with
 * the same order of steps:
 *
 *   refill: pop a chain of k (one head CAS) -> in_use += k -> k owner stores
 *           of owner|CACHED
 *   flush:  k owner stores of FREE -> in_use -= k -> push the chain linked
 *           through the next words (one head CAS)
 *   hit:    alloc: pop the magazine -> owner store of `owner`
 *           free:  owner load and compare -> owner store of owner|CACHED ->
 *                  push the magazine
 *
 * A hit writes only the block's own owner word, with a plain release store:
 * while the cache's thread lives it is the only writer of the owner words
 * of blocks owned by its owner or sitting in its cache (see blocks.h). A
 * death between a refill's CAS and its owner stores, or between a flush's
 * owner stores and its CAS, leaves up to k blocks off the stack and owned
 * by nobody: the same kind of window as alloc's, repaired by audit. A dead
 * thread's cached blocks carry owner|CACHED, which reclaim(owner) frees.
 */
#include <sluice/blocks.h>
#include <sluice/error.h>

#include "shm/blocks_layout.h"

#include <stdlib.h>
#include <string.h>

#define CLASS_NONE 0xffu
/* Largest region the allocator lays out: the arena's own region limit. */
#define MAX_REGION (UINT64_C(1) << 46)
/* config_default's classes: 256 B (2^8) to 64 MiB (2^26), powers of four. */
#define DEFAULT_MIN_LOG2 8
#define DEFAULT_MAX_LOG2 26

static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline bool is_pow2(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static inline uint32_t log2_u64(uint64_t v) /* v a power of two */
{
	return (uint32_t)__builtin_ctzll(v);
}

/* Owner ids callers may use: 1 .. SLUICE_OWNER_MAX. One compare: 0 wraps to
 * UINT32_MAX. Refuses every word with SLUICE_OWNER_CACHED set. */
static inline bool owner_ok(uint32_t owner)
{
	return owner - 1u < SLUICE_OWNER_MAX;
}

_Static_assert(SLUICE_OWNER_MAX < SLUICE_OWNER_CACHED, "no caller id has the cached bit");

void sluice__blocks_layout(uint32_t nclasses, const uint64_t *block_size, const uint32_t *count,
			   uint64_t *meta_off, uint64_t *data_off, uint64_t *used)
{
	uint64_t off = sizeof(struct sluice_blocks_hdr) +
		       (uint64_t)nclasses * sizeof(struct sluice_blocks_ctl);
	for (uint32_t c = 0; c < nclasses; c++) {
		off = round_up(off, 64);
		meta_off[c] = off;
		off += (uint64_t)count[c] * sizeof(struct sluice_blocks_meta);
	}
	for (uint32_t c = 0; c < nclasses; c++) {
		uint64_t align = block_size[c] < 4096 ? block_size[c] : 4096;
		off = round_up(off, align);
		data_off[c] = off;
		off += (uint64_t)count[c] * block_size[c];
	}
	*used = round_up(off, 64);
}

/* Checks a class list: 1..MAX_CLASSES classes, sizes powers of two from
 * 64 B to 2^40 B strictly ascending, counts 1 .. 2^27 - 1, each class at
 * most MAX_REGION bytes of data. On success *used is the layout's size. */
static int check_classes(uint32_t n, const uint64_t *bs, const uint32_t *cnt, uint64_t *meta_off,
			 uint64_t *data_off, uint64_t *used)
{
	if (n == 0 || n > SLUICE_BLOCKS_MAX_CLASSES)
		return SLUICE_EINVAL;
	for (uint32_t c = 0; c < n; c++) {
		if (!is_pow2(bs[c]) || log2_u64(bs[c]) < SLUICE_BLOCKS_MIN_LOG2 ||
		    log2_u64(bs[c]) > SLUICE_BLOCKS_MAX_LOG2)
			return SLUICE_EINVAL;
		if (c > 0 && bs[c] <= bs[c - 1])
			return SLUICE_EINVAL;
		if (cnt[c] == 0 || cnt[c] > SLUICE_BLOCKS_MAX_COUNT ||
		    cnt[c] > (MAX_REGION >> log2_u64(bs[c])))
			return SLUICE_EINVAL;
	}
	/* No overflow: at most 32 classes of 2^46 data and 2^30 meta bytes. */
	sluice__blocks_layout(n, bs, cnt, meta_off, data_off, used);
	return *used <= MAX_REGION ? 0 : SLUICE_EINVAL;
}

static int check_config(const sluice_blocks_config_t *cfg, uint64_t *bs, uint32_t *cnt,
			uint64_t *meta_off, uint64_t *data_off, uint64_t *used)
{
	if (cfg == NULL || cfg->size_of < sizeof(*cfg) || cfg->nclasses == 0 ||
	    cfg->nclasses > SLUICE_BLOCKS_MAX_CLASSES)
		return SLUICE_EINVAL;
	for (uint32_t c = 0; c < cfg->nclasses; c++) {
		bs[c] = cfg->classes[c].block_size;
		cnt[c] = cfg->classes[c].count;
	}
	return check_classes(cfg->nclasses, bs, cnt, meta_off, data_off, used);
}

int sluice_blocks_config_default(sluice_blocks_config_t *cfg, uint64_t budget)
{
	if (cfg == NULL || budget < (UINT64_C(4) << DEFAULT_MIN_LOG2) || budget > (MAX_REGION >> 1))
		return SLUICE_EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size_of = sizeof(*cfg);
	/* The largest class is the biggest power of four up to 64 MiB whose
	 * one block takes at most a quarter of the budget, so that one block
	 * of every class (4/3 of the largest) always fits. */
	uint32_t top = 63 - (uint32_t)__builtin_clzll(budget / 4);
	if (top > DEFAULT_MAX_LOG2)
		top = DEFAULT_MAX_LOG2;
	top -= (top - DEFAULT_MIN_LOG2) & 1; /* powers of four from 2^8 */
	uint32_t n = (top - DEFAULT_MIN_LOG2) / 2 + 1;
	/* Largest first: each class takes an equal share of what is left (at
	 * least one block), so big classes that cannot fill a share leave it to
	 * the smaller ones. Equal bytes per class means four times as many
	 * blocks per class down. */
	uint64_t left = budget;
	for (uint32_t i = n; i-- > 0;) {
		uint32_t l = DEFAULT_MIN_LOG2 + 2 * i;
		uint64_t want = (left / (i + 1)) >> l;
		if (want < 1)
			want = 1;
		if (want > SLUICE_BLOCKS_MAX_COUNT)
			want = SLUICE_BLOCKS_MAX_COUNT;
		cfg->classes[i].block_size = UINT64_C(1) << l;
		cfg->classes[i].count = (uint32_t)want;
		uint64_t bytes = want << l;
		left -= bytes < left ? bytes : left;
	}
	cfg->nclasses = n;
	return 0;
}

int64_t sluice_blocks_region_size(const sluice_blocks_config_t *cfg)
{
	uint64_t bs[SLUICE_BLOCKS_MAX_CLASSES], mo[SLUICE_BLOCKS_MAX_CLASSES],
		do_[SLUICE_BLOCKS_MAX_CLASSES], used;
	uint32_t cnt[SLUICE_BLOCKS_MAX_CLASSES];
	int err = check_config(cfg, bs, cnt, mo, do_, &used);
	return err ? err : (int64_t)used;
}

int sluice_blocks_format(void *region, uint64_t size, const sluice_blocks_config_t *cfg)
{
	uint64_t bs[SLUICE_BLOCKS_MAX_CLASSES], mo[SLUICE_BLOCKS_MAX_CLASSES],
		dof[SLUICE_BLOCKS_MAX_CLASSES], used;
	uint32_t cnt[SLUICE_BLOCKS_MAX_CLASSES];
	int err = check_config(cfg, bs, cnt, mo, dof, &used);
	if (err)
		return err;
	if (region == NULL || ((uintptr_t)region & 63) != 0)
		return SLUICE_EINVAL;
	if (size < used)
		return SLUICE_ENOSPC;

	/* Nobody else maps the region yet (the contract), so the order of these
	 * stores does not matter; whatever shares the region afterwards (fork,
	 * sendmsg of the memfd and a later mmap) orders them before any use. */
	char *base = region;
	for (uint32_t c = 0; c < cfg->nclasses; c++) {
		struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(region, c);
		struct sluice_blocks_meta *meta = (struct sluice_blocks_meta *)(base + mo[c]);
		ctl->block_size = bs[c];
		ctl->meta_off = mo[c];
		ctl->data_off = dof[c];
		ctl->count = cnt[c];
		ctl->log2_size = log2_u64(bs[c]);
		/* Every block free: 0 on top, each one's next the one after. */
		for (uint32_t i = 0; i < cnt[c]; i++) {
			sl_store_relaxed(&meta[i].owner, SLUICE_OWNER_FREE);
			sl_store_relaxed(&meta[i].next, i + 1 < cnt[c] ? i + 1 : SLUICE_BLOCKS_EMPTY);
		}
		sl_store_relaxed(&ctl->in_use, 0);
		sl_store_relaxed(&ctl->high_water, 0);
		sl_store_relaxed(&ctl->head, SLUICE_BLOCKS_HEAD(0, 0));
	}
	struct sluice_blocks_hdr *h = region;
	h->layout_version = SLUICE_BLOCKS_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->nclasses = cfg->nclasses;
	h->ctl_size = sizeof(struct sluice_blocks_ctl);
	h->used_size = used;
	h->geom_hash = sluice__blocks_geom_hash(cfg->nclasses, bs, cnt);
	h->magic = SLUICE_BLOCKS_MAGIC;
	return 0;
}

/* Validates the allocator at `region` (`size` bytes) and fills `b` with
 * private copies of its geometry. Every shared field is read once. */
static int open_region(sluice_blocks_t *b, void *region, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	if (size < sizeof(struct sluice_blocks_hdr))
		return SLUICE_EBADMAGIC;
	struct sluice_blocks_hdr h;
	memcpy(&h, region, sizeof(h));
	if (h.magic != SLUICE_BLOCKS_MAGIC)
		return SLUICE_EBADMAGIC;
	if (h.layout_version != SLUICE_BLOCKS_LAYOUT_VERSION)
		return SLUICE_EVERSION;
	if (h.header_size != sizeof(h) || h.ctl_size != sizeof(struct sluice_blocks_ctl) ||
	    h.nclasses == 0 || h.nclasses > SLUICE_BLOCKS_MAX_CLASSES ||
	    sizeof(h) + (uint64_t)h.nclasses * sizeof(struct sluice_blocks_ctl) > size)
		return SLUICE_ECORRUPT;

	uint32_t n = h.nclasses;
	uint64_t bs[SLUICE_BLOCKS_MAX_CLASSES], mo[SLUICE_BLOCKS_MAX_CLASSES],
		dof[SLUICE_BLOCKS_MAX_CLASSES], want_mo[SLUICE_BLOCKS_MAX_CLASSES],
		want_do[SLUICE_BLOCKS_MAX_CLASSES], used;
	uint32_t cnt[SLUICE_BLOCKS_MAX_CLASSES], lg[SLUICE_BLOCKS_MAX_CLASSES];
	for (uint32_t c = 0; c < n; c++) {
		/* Geometry is written once by format before the region is
		 * shared; copy it, then check only the copy. */
		const struct sluice_blocks_ctl *ctl = sluice__blocks_ctl(region, c);
		bs[c] = ctl->block_size;
		mo[c] = ctl->meta_off;
		dof[c] = ctl->data_off;
		cnt[c] = ctl->count;
		lg[c] = ctl->log2_size;
	}
	if (check_classes(n, bs, cnt, want_mo, want_do, &used) != 0)
		return SLUICE_ECORRUPT;
	/* The whole layout is a function of the class list: any offset that
	 * differs from the recomputed one is corruption, and the recomputed
	 * layout lies inside `size` bytes. */
	if (used != h.used_size || used > size || h.geom_hash != sluice__blocks_geom_hash(n, bs, cnt))
		return SLUICE_ECORRUPT;
	for (uint32_t c = 0; c < n; c++)
		if (mo[c] != want_mo[c] || dof[c] != want_do[c] || lg[c] != log2_u64(bs[c]))
			return SLUICE_ECORRUPT;

	b->region = region;
	b->region_size = size;
	b->nclasses = n;
	memset(b->class_of_log2, CLASS_NONE, sizeof(b->class_of_log2));
	uint32_t k = 0;
	for (uint32_t c = 0; c < n; c++) {
		struct sluice__blocks_geom *g = &b->cls[c];
		g->block_size = bs[c];
		g->data_off = dof[c];
		g->meta_off = mo[c];
		g->count = cnt[c];
		g->log2_size = lg[c];
		g->ctl = sluice__blocks_ctl(region, c);
		g->meta = (char *)region + mo[c];
		g->data = (char *)region + dof[c];
		for (; k <= lg[c]; k++)
			b->class_of_log2[k] = (uint8_t)c;
	}
	return 0;
}

int sluice_blocks_open(sluice_blocks_t *b, const sluice_arena_t *a, uint32_t region_id)
{
	if (b == NULL || a == NULL)
		return SLUICE_EINVAL;
	memset(b, 0, sizeof(*b));
	uint64_t off, size;
	int err = sluice_arena_region(a, region_id, &off, &size);
	if (err)
		return err;
	void *region = sluice_arena_at(a, off, size, 64);
	if (region == NULL)
		return SLUICE_ECORRUPT;
	err = open_region(b, region, size);
	if (err)
		memset(b, 0, sizeof(*b));
	return err;
}

/* ---- the free stack ---------------------------------------------------- */

/* Takes the top index off class `g`'s free stack. 0 and *out, -ENOSPC when
 * empty, -ECORRUPT when the head or a next word holds an index out of
 * range. Lock-free: a CAS fails only because another pop or push won. */
static inline int stack_pop(const struct sluice__blocks_geom *g, uint32_t *out)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	struct sluice_blocks_meta *meta = g->meta;
	/* acquire: pairs with the release of the head CAS in stack_push that
	 * installed this top (or any later pop or push of the same release
	 * sequence: every head write is a CAS), so that push's store to
	 * meta[top].next, and the freeing owner's last writes to the block,
	 * happen before we read them. */
	uint64_t h = sl_load_acquire(&ctl->head);
	for (;;) {
		uint32_t idx = SLUICE_BLOCKS_HEAD_IDX(h);
		if (__builtin_expect(idx == SLUICE_BLOCKS_EMPTY, 0))
			return SLUICE_ENOSPC;
		if (__builtin_expect(idx >= g->count, 0))
			return SLUICE_ECORRUPT; /* the head word was scribbled on */
		/* relaxed: ordered after the acquire that read h. If h is stale
		 * by now, next may be too, and then the CAS fails on the tag.
		 * Only pushes write next, always with an index that passed the
		 * check below, so an out-of-range value means corruption. */
		uint32_t next = sl_load_relaxed(&meta[idx].next);
		if (__builtin_expect(next >= g->count && next != SLUICE_BLOCKS_EMPTY, 0))
			return SLUICE_ECORRUPT;
		uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1, next);
		/* acq_rel: on success the acquire half pairs with the release of
		 * the push that installed h, as above (the release half orders
		 * nothing a popper needs; x86 lock cmpxchg is a full barrier
		 * either way). On failure h gets the current head with acquire,
		 * pairing the same way for the retry. The tag, bumped on every
		 * pop and push, makes the CAS fail if idx was popped and pushed
		 * back meanwhile with a different next (ABA). */
		if (__builtin_expect(sl_cas_acq_rel(&ctl->head, &h, nh), 1)) {
			*out = idx;
			return 0;
		}
	}
}

/* Puts index `idx` (owned by the caller, off the stack, owner word already
 * FREE) on top of class `g`'s free stack. 0, or -ECORRUPT when the head
 * holds an index out of range (then idx stays off the stack: audit finds
 * it). Lock-free. */
static inline int stack_push(const struct sluice__blocks_geom *g, uint32_t idx)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	struct sluice_blocks_meta *meta = g->meta;
	/* relaxed: the top index is only copied into meta[idx].next, never
	 * followed, and the CAS below checks it is still the top. */
	uint64_t h = sl_load_relaxed(&ctl->head);
	for (;;) {
		uint32_t top = SLUICE_BLOCKS_HEAD_IDX(h);
		if (__builtin_expect(top != SLUICE_BLOCKS_EMPTY && top >= g->count, 0))
			return SLUICE_ECORRUPT;
		/* relaxed: published by the release half of the CAS below. */
		sl_store_relaxed(&meta[idx].next, top);
		uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1, idx);
		/* acq_rel: the release half pairs with the acquire load / CAS of
		 * head in stack_pop: the popper sees meta[idx].next and every
		 * write the block's last owner made to it. On failure h gets
		 * the current head (acquire, unneeded here) and we retry. */
		if (__builtin_expect(sl_cas_acq_rel(&ctl->head, &h, nh), 1))
			return 0;
	}
}

/* ---- handles ------------------------------------------------------------ */

/* The class of handle `blk` and its index in *idx, or NULL when either is
 * out of range. Bounds come from the private copy taken at open. */
static inline const struct sluice__blocks_geom *decode(const sluice_blocks_t *b,
						       sluice_block_t blk, uint32_t *idx)
{
	uint32_t c = blk >> SLUICE_BLOCKS_INDEX_BITS;
	uint32_t i = blk & SLUICE_BLOCKS_INDEX_MASK;
	if (__builtin_expect(c >= b->nclasses || i >= b->cls[c].count, 0))
		return NULL;
	*idx = i;
	return &b->cls[c];
}

static inline struct sluice_blocks_meta *meta_of(const struct sluice__blocks_geom *g, uint32_t idx)
{
	return (struct sluice_blocks_meta *)g->meta + idx;
}

/* ---- alloc and free ---------------------------------------------------- */

int sluice_blocks_alloc(const sluice_blocks_t *b, uint64_t size, uint32_t owner,
			sluice_block_t *out)
{
	if (__builtin_expect(!owner_ok(owner), 0))
		return SLUICE_EINVAL;
	/* ceil(log2(size)); sizes 0 and 1 go to the smallest class. */
	uint32_t l = size > 1 ? 64 - (uint32_t)__builtin_clzll(size - 1) : 0;
	uint32_t c = b->class_of_log2[l];
	if (__builtin_expect(c == CLASS_NONE, 0))
		return SLUICE_E2BIG;
	const struct sluice__blocks_geom *g = &b->cls[c];
	uint32_t idx;
	int err = stack_pop(g, &idx);
	if (__builtin_expect(err != 0, 0))
		return err;

	struct sluice_blocks_ctl *ctl = g->ctl;
	/* relaxed: a statistic, no data is published through it. It rises
	 * after the pop and falls before the push (free), so it never exceeds
	 * the blocks off the stack; and before the owner store, so owned
	 * blocks never outnumber it. */
	uint32_t now = sl_fetch_add_relaxed(&ctl->in_use, 1) + 1;
	/* relaxed: a statistic; the CAS loop only ever raises it. */
	uint32_t hw = sl_load_relaxed(&ctl->high_water);
	while (__builtin_expect(now > hw, 0) && !sl_cas_relaxed(&ctl->high_water, &hw, now))
		;
	/* release: pairs with the acquire in sluice_blocks_owner and the
	 * acq_rel owner CAS in free, set_owner and reclaim: whoever sees this
	 * owner also sees the block off the stack (and reclaim's later push
	 * cannot overtake our pop). */
	sl_store_release(&meta_of(g, idx)->owner, owner);
	*out = (c << SLUICE_BLOCKS_INDEX_BITS) | idx;
	return 0;
}

/* Clears `owner` from block idx of class g and pushes it. The common tail of
 * free and reclaim. 0, -ENOTOWNER, or -ECORRUPT from the push. */
static inline int give_back(const struct sluice__blocks_geom *g, uint32_t idx, uint32_t owner)
{
	uint32_t expected = owner;
	/* acq_rel: the acquire half pairs with the release that made `owner`
	 * the owner (alloc's store, set_owner's CAS), so a reclaimer sees the
	 * block as the dead owner left it. The release half orders the owner's
	 * last use of the block before the block is FREE; the push's release
	 * then carries it to the next popper. */
	if (!sl_cas_acq_rel(&meta_of(g, idx)->owner, &expected, SLUICE_OWNER_FREE))
		return SLUICE_ENOTOWNER;
	/* relaxed: a statistic; falls before the push so it never counts a
	 * block that is back on the stack (see alloc). */
	sl_fetch_sub_relaxed(&((struct sluice_blocks_ctl *)g->ctl)->in_use, 1);
	return stack_push(g, idx);
}

int sluice_blocks_free(const sluice_blocks_t *b, sluice_block_t blk, uint32_t owner)
{
	uint32_t idx;
	const struct sluice__blocks_geom *g = decode(b, blk, &idx);
	if (__builtin_expect(g == NULL, 0))
		return SLUICE_EBADHANDLE;
	/* Owner 0 owns nothing (never CAS 0 -> 0), and a word with the cached
	 * bit names a block in a cache, which nobody frees from outside. */
	if (__builtin_expect(!owner_ok(owner), 0))
		return SLUICE_ENOTOWNER;
	return give_back(g, idx, owner);
}

int sluice_blocks_set_owner(const sluice_blocks_t *b, sluice_block_t blk, uint32_t from,
			    uint32_t to)
{
	uint32_t idx;
	const struct sluice__blocks_geom *g = decode(b, blk, &idx);
	if (g == NULL)
		return SLUICE_EBADHANDLE;
	if (!owner_ok(to))
		return SLUICE_EINVAL;
	/* A free block cannot be claimed off the stack, nor a cached one out of
	 * its cache (only the cache's thread writes that word). */
	if (!owner_ok(from))
		return SLUICE_ENOTOWNER;
	uint32_t expected = from;
	/* acq_rel: the acquire half pairs with the release that made `from`
	 * the owner; the release half pairs with the acquire of whoever next
	 * reads the owner word (owner(), free's CAS, reclaim's CAS), handing
	 * it `from`'s writes to the block. */
	return sl_cas_acq_rel(&meta_of(g, idx)->owner, &expected, to) ? 0 : SLUICE_ENOTOWNER;
}

int64_t sluice_blocks_owner(const sluice_blocks_t *b, sluice_block_t blk)
{
	uint32_t idx;
	const struct sluice__blocks_geom *g = decode(b, blk, &idx);
	if (g == NULL)
		return SLUICE_EBADHANDLE;
	/* acquire: pairs with the release store in alloc and the release half
	 * of the owner CASes (set_owner, free, reclaim). */
	return sl_load_acquire(&meta_of(g, idx)->owner);
}

void *sluice_blocks_ptr(const sluice_blocks_t *b, sluice_block_t blk, uint64_t *capacity)
{
	uint32_t idx;
	const struct sluice__blocks_geom *g = decode(b, blk, &idx);
	if (g == NULL)
		return NULL;
	if (capacity)
		*capacity = g->block_size;
	return g->data + ((uint64_t)idx << g->log2_size);
}

int64_t sluice_blocks_reclaim(const sluice_blocks_t *b, uint32_t owner)
{
	if (b == NULL || !owner_ok(owner))
		return SLUICE_EINVAL;
	int64_t freed = 0;
	for (uint32_t c = 0; c < b->nclasses; c++) {
		const struct sluice__blocks_geom *g = &b->cls[c];
		for (uint32_t i = 0; i < g->count; i++) {
			/* relaxed: a filter only; give_back's CAS decides, with
			 * acq_rel. Another process may hand a block to `owner`
			 * right after this load; the contract says `owner` is
			 * dead, so nobody should. A block in the dead owner's
			 * cache carries owner|CACHED: it is freed the same way. */
			uint32_t o = sl_load_relaxed(&meta_of(g, i)->owner);
			if (o != owner && o != (owner | SLUICE_OWNER_CACHED))
				continue;
			int err = give_back(g, i, o);
			if (err == SLUICE_ECORRUPT)
				return err;
			if (err == 0)
				freed++;
		}
	}
	return freed;
}

int sluice_blocks_stats(const sluice_blocks_t *b, uint32_t cls, sluice_blocks_stats_t *out)
{
	if (b == NULL || out == NULL || cls >= b->nclasses)
		return SLUICE_EINVAL;
	const struct sluice__blocks_geom *g = &b->cls[cls];
	struct sluice_blocks_ctl *ctl = g->ctl;
	memset(out, 0, sizeof(*out));
	out->block_size = g->block_size;
	out->capacity = g->count;
	/* relaxed: statistics, each read once; they may disagree with each
	 * other by the operations in flight. */
	out->in_use = sl_load_relaxed(&ctl->in_use);
	out->high_water = sl_load_relaxed(&ctl->high_water);
	out->bookkeeping_bytes = sizeof(struct sluice_blocks_ctl) +
				 (uint64_t)g->count * sizeof(struct sluice_blocks_meta);
	return 0;
}

/* ---- per-thread caches -------------------------------------------------- */

_Static_assert(sizeof(((sluice_blocks_cache_t *)0)->class_of_log2) ==
		       sizeof(((sluice_blocks_t *)0)->class_of_log2),
	       "the cache copies the whole class table");

/* Classes with fewer blocks than this are not cached. */
#define CACHE_MIN_COUNT 16
/* A magazine holds at most 1 / 2^CACHE_SHARE_SHIFT of its class. */
#define CACHE_SHARE_SHIFT 3

/* Takes up to `want` blocks off the top of class g's free stack with one
 * CAS: walks `want` next words down from the top, then swings the head past
 * them. Writes the indices to out[0 .. *got-1], top first. 0, -ENOSPC when
 * the stack is empty, -ECORRUPT for an index out of range. Lock-free.
 *
 * Why the walk is safe: a CAS that succeeds found the head word, tag
 * included, as the acquire load read it, so no pop or push happened in
 * between (each bumps the tag), and a block on the stack has no writer of
 * its next word (only the pusher of an off-stack block writes next): the
 * chain read is the stack as it was. A walk over a stack that changed
 * under it may read any in-range value (next words only ever hold checked
 * indices) and then fails the CAS; it reads at most `want` words. */
static int stack_pop_chain(const struct sluice__blocks_geom *g, uint32_t want, uint32_t *out,
			   uint32_t *got)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	struct sluice_blocks_meta *meta = g->meta;
	/* acquire: pairs with the release of the head CAS (a push, or any
	 * later CAS of the same release sequence: all head writes are RMWs)
	 * that installed this top, so every next word of the chain below it,
	 * and the previous owners' last writes to those blocks, are visible. */
	uint64_t h = sl_load_acquire(&ctl->head);
	for (;;) {
		uint32_t idx = SLUICE_BLOCKS_HEAD_IDX(h);
		if (idx == SLUICE_BLOCKS_EMPTY)
			return SLUICE_ENOSPC;
		uint32_t n = 0;
		while (n < want && idx != SLUICE_BLOCKS_EMPTY) {
			if (__builtin_expect(idx >= g->count, 0))
				return SLUICE_ECORRUPT; /* head or a next word scribbled on */
			out[n++] = idx;
			/* relaxed: ordered after the acquire that read h; if h
			 * is stale the CAS below fails on the tag. */
			idx = sl_load_relaxed(&meta[idx].next);
		}
		if (__builtin_expect(idx != SLUICE_BLOCKS_EMPTY && idx >= g->count, 0))
			return SLUICE_ECORRUPT;
		uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1, idx);
		/* acq_rel: as in stack_pop; on failure h gets the current head
		 * with acquire, pairing the same way for the retry. */
		if (sl_cas_acq_rel(&ctl->head, &h, nh)) {
			*got = n;
			return 0;
		}
	}
}

/* Puts the k blocks idx[0 .. k-1] (the caller's, off the stack, owner words
 * already FREE) on class g's free stack with one CAS: idx[0] on top, each
 * one's next the one after, the last one's next the old top. 0, or
 * -ECORRUPT when the head holds an index out of range (the blocks stay off
 * the stack: audit finds them). Lock-free. */
static int stack_push_chain(const struct sluice__blocks_geom *g, const uint32_t *idx, uint32_t k)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	struct sluice_blocks_meta *meta = g->meta;
	/* relaxed: published by the release half of the CAS below. */
	for (uint32_t i = 0; i + 1 < k; i++)
		sl_store_relaxed(&meta[idx[i]].next, idx[i + 1]);
	/* relaxed: the top index is only copied into a next word, never
	 * followed; the CAS checks it is still the top. */
	uint64_t h = sl_load_relaxed(&ctl->head);
	for (;;) {
		uint32_t top = SLUICE_BLOCKS_HEAD_IDX(h);
		if (__builtin_expect(top != SLUICE_BLOCKS_EMPTY && top >= g->count, 0))
			return SLUICE_ECORRUPT;
		/* relaxed: published by the CAS below. */
		sl_store_relaxed(&meta[idx[k - 1]].next, top);
		uint64_t nh = SLUICE_BLOCKS_HEAD(SLUICE_BLOCKS_HEAD_TAG(h) + 1, idx[0]);
		/* acq_rel: the release half pairs with the acquire load / CAS of
		 * head in stack_pop and stack_pop_chain: a popper sees every
		 * next word of the chain and every write the cache's thread (or
		 * the blocks' earlier owners) made to the blocks. On failure h
		 * gets the current head and we retry. */
		if (sl_cas_acq_rel(&ctl->head, &h, nh))
			return 0;
	}
}

int sluice_blocks_cache_init(sluice_blocks_cache_t *cache, const sluice_blocks_t *b,
			     uint32_t owner)
{
	if (cache == NULL || b == NULL || b->nclasses == 0 || !owner_ok(owner))
		return SLUICE_EINVAL;
	memset(cache, 0, sizeof(*cache));
	cache->b = b;
	cache->owner = owner;
	cache->nclasses = b->nclasses;
	memcpy(cache->class_of_log2, b->class_of_log2, sizeof(cache->class_of_log2));
	for (uint32_t c = 0; c < b->nclasses; c++) {
		uint32_t count = b->cls[c].count;
		cache->mag[c].count = count;
		cache->mag[c].meta = b->cls[c].meta;
		uint32_t cap = count >> CACHE_SHARE_SHIFT;
		if (count < CACHE_MIN_COUNT)
			cap = 0; /* a few big blocks: never hoarded */
		if (cap > SLUICE_BLOCKS_CACHE_DEPTH)
			cap = SLUICE_BLOCKS_CACHE_DEPTH;
		cache->mag[c].cap = cap;
		cache->mag[c].batch = cap / 2 > 0 ? cap / 2 : 1;
	}
	return 0;
}

/* Gives the k blocks idx[0 .. k-1] of magazine class g back to the free
 * stack: owner words FREE, in_use -= k, one CAS. 0, or -ECORRUPT when the
 * head was scribbled on: *kept says whether the blocks are still the
 * cache's (the head is checked first, and then nothing changes) or were
 * lost off every stack, unowned, for audit (the head was scribbled on
 * between that check and the CAS). */
static int cache_give_back(const struct sluice__blocks_geom *g, const uint32_t *idx, uint32_t k,
			   bool *kept)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	/* relaxed: a pre-check only, so a corrupt head leaves the magazine
	 * as it was; stack_push_chain checks again on every try. */
	uint32_t top = SLUICE_BLOCKS_HEAD_IDX(sl_load_relaxed(&ctl->head));
	if (__builtin_expect(top != SLUICE_BLOCKS_EMPTY && top >= g->count, 0)) {
		*kept = true;
		return SLUICE_ECORRUPT;
	}
	*kept = false;
	for (uint32_t i = 0; i < k; i++) {
		/* relaxed: this thread is the word's only writer while the
		 * block is cached (see blocks.h). Nothing is published through
		 * FREE itself: the push's release carries the block's last use
		 * to the next popper; reclaim never matches FREE, and audit
		 * runs only on a quiescent region. */
		sl_store_relaxed(&meta_of(g, idx[i])->owner, SLUICE_OWNER_FREE);
	}
	/* relaxed: a statistic; falls after the owner words are cleared and
	 * before the push, as in free. */
	sl_fetch_sub_relaxed(&ctl->in_use, k);
	return stack_push_chain(g, idx, k);
}

/* The miss path of cache_alloc: the magazine of class c is empty; takes a
 * batch off the free stack. 0, -ENOSPC, -ECORRUPT. */
static __attribute__((noinline)) int cache_refill(sluice_blocks_cache_t *cache, uint32_t c)
{
	const struct sluice__blocks_geom *g = &cache->b->cls[c];
	struct sluice__blocks_mag *m = &cache->mag[c];
	struct sluice_blocks_ctl *ctl = g->ctl;
	uint32_t got = 0;
	int err = stack_pop_chain(g, m->batch, m->idx, &got);
	if (err)
		return err;
	/* relaxed: statistics, as in alloc: in_use rises after the pop and
	 * before the owner stores. */
	uint32_t now = sl_fetch_add_relaxed(&ctl->in_use, got) + got;
	uint32_t hw = sl_load_relaxed(&ctl->high_water);
	while (now > hw && !sl_cas_relaxed(&ctl->high_water, &hw, now))
		;
	uint32_t cached = cache->owner | SLUICE_OWNER_CACHED;
	for (uint32_t i = 0; i < got; i++) {
		/* release: pairs with the acquire of sluice_blocks_owner and of
		 * reclaim's CAS: whoever sees owner|CACHED also sees the block
		 * off the stack (our pop CAS came first). */
		sl_store_release(&meta_of(g, m->idx[i])->owner, cached);
	}
	/* The top of the shared stack (warmest) goes on top of the magazine. */
	for (uint32_t i = 0, j = got - 1; i < j; i++, j--) {
		uint32_t t = m->idx[i];
		m->idx[i] = m->idx[j];
		m->idx[j] = t;
	}
	m->n = got;
	return 0;
}

/* The top of class c's magazine (not empty) given out as `owner`'s. */
static inline void cache_pop(sluice_blocks_cache_t *cache, uint32_t c, sluice_block_t *out)
{
	struct sluice__blocks_mag *m = &cache->mag[c];
	uint32_t idx = m->idx[--m->n];
	/* release: pairs with the acquire of sluice_blocks_owner() (stats,
	 * the inspector, a consumer checking who owns a block) and of the
	 * owner CAS in free, set_owner and reclaim: whoever sees `owner` sees
	 * the block as this thread left it when it cached it. The block has
	 * been ours since then and nobody else writes this word (blocks.h), so
	 * no locked instruction is needed. What the caller writes into the
	 * block after this is published by whatever hands it on later
	 * (set_owner's release CAS, a ring's release): a consumer in another
	 * process pairs with that, not with this store. */
	sl_store_release(&((struct sluice_blocks_meta *)m->meta)[idx].owner, cache->owner);
	*out = (c << SLUICE_BLOCKS_INDEX_BITS) | idx;
}

/* cache_alloc's miss: class c's magazine is empty. Out of line, so that the
 * hit path saves no registers. */
static __attribute__((noinline)) int cache_alloc_miss(sluice_blocks_cache_t *cache, uint32_t c,
						      uint64_t size, sluice_block_t *out)
{
	if (cache->mag[c].cap == 0)
		return sluice_blocks_alloc(cache->b, size, cache->owner, out);
	int err = cache_refill(cache, c);
	if (err)
		return err;
	cache_pop(cache, c, out);
	return 0;
}

int sluice_blocks_cache_alloc(sluice_blocks_cache_t *cache, uint64_t size, sluice_block_t *out)
{
	/* ceil(log2(size)); sizes 0 and 1 go to the smallest class. */
	uint32_t l = size > 1 ? 64 - (uint32_t)__builtin_clzll(size - 1) : 0;
	uint32_t c = cache->class_of_log2[l];
	if (__builtin_expect(c == CLASS_NONE, 0))
		return SLUICE_E2BIG;
	if (__builtin_expect(cache->mag[c].n == 0, 0))
		return cache_alloc_miss(cache, c, size, out);
	cache_pop(cache, c, out);
	return 0;
}

/* Puts block idx (meta word `meta`, the owner's: checked) into magazine m,
 * which holds n < cap blocks. */
static inline void cache_push(struct sluice__blocks_mag *m, uint32_t n,
			      struct sluice_blocks_meta *meta, uint32_t idx, uint32_t owner)
{
	/* release: pairs with the acquire of reclaim's CAS (after this thread
	 * dies, the reclaimer's push then carries the block's last use to the
	 * next popper) and of sluice_blocks_owner(): the caller's last reads
	 * and writes of the block come before the block counts as cached. */
	sl_store_release(&meta->owner, owner | SLUICE_OWNER_CACHED);
	m->idx[n] = idx;
	m->n = n + 1;
}

/* cache_free with a full magazine: the oldest batch (the bottom, coldest)
 * goes back to the free stack first. Out of line, like cache_alloc_miss. */
static __attribute__((noinline)) int cache_free_full(sluice_blocks_cache_t *cache, uint32_t c,
						     uint32_t idx)
{
	struct sluice__blocks_mag *m = &cache->mag[c];
	bool kept;
	int err = cache_give_back(&cache->b->cls[c], m->idx, m->batch, &kept);
	if (!kept) {
		m->n -= m->batch;
		memmove(m->idx, m->idx + m->batch, m->n * sizeof(m->idx[0]));
	}
	if (err)
		return err; /* the block is still the caller's, uncached */
	cache_push(m, m->n, meta_of(&cache->b->cls[c], idx), idx, cache->owner);
	return 0;
}

int sluice_blocks_cache_free(sluice_blocks_cache_t *cache, sluice_block_t blk)
{
	/* The handle's class and index, checked against the copies of the
	 * geometry (taken from b's private copy at init). */
	uint32_t c = blk >> SLUICE_BLOCKS_INDEX_BITS;
	uint32_t idx = blk & SLUICE_BLOCKS_INDEX_MASK;
	if (__builtin_expect(c >= cache->nclasses, 0))
		return SLUICE_EBADHANDLE;
	struct sluice__blocks_mag *m = &cache->mag[c];
	if (__builtin_expect(idx >= m->count, 0))
		return SLUICE_EBADHANDLE;
	/* Read before the acquire below, which would make them reloads. */
	uint32_t owner = cache->owner, n = m->n, cap = m->cap;
	if (__builtin_expect(cap == 0, 0))
		return sluice_blocks_free(cache->b, blk, owner);
	struct sluice_blocks_meta *meta = (struct sluice_blocks_meta *)m->meta + idx;
	/* acquire: pairs with the release that made the cache's owner the
	 * owner: this thread's own store (alloc, cache_alloc), or the release
	 * CAS of set_owner in another process that handed the block over, so
	 * the previous owner's reads and writes of the block happen before
	 * this thread gives it out again. A plain load and compare suffice: if
	 * it is ours, nobody else writes the word until we do (blocks.h). */
	if (__builtin_expect(sl_load_acquire(&meta->owner) != owner, 0))
		return SLUICE_ENOTOWNER; /* free, cached already, or someone else's */
	if (__builtin_expect(n == cap, 0))
		return cache_free_full(cache, c, idx);
	cache_push(m, n, meta, idx, owner);
	return 0;
}

int64_t sluice_blocks_cache_flush(sluice_blocks_cache_t *cache)
{
	if (cache == NULL || cache->b == NULL)
		return SLUICE_EINVAL;
	int64_t given = 0;
	for (uint32_t c = 0; c < cache->nclasses; c++) {
		struct sluice__blocks_mag *m = &cache->mag[c];
		uint32_t k = m->n;
		if (k == 0)
			continue;
		/* Top first, so the warmest block is on top of the stack. */
		uint32_t chain[SLUICE_BLOCKS_CACHE_DEPTH];
		for (uint32_t i = 0; i < k; i++)
			chain[i] = m->idx[k - 1 - i];
		bool kept;
		int err = cache_give_back(&cache->b->cls[c], chain, k, &kept);
		if (!kept)
			m->n = 0;
		if (err)
			return err;
		given += k;
	}
	return given;
}

int64_t sluice_blocks_cache_fini(sluice_blocks_cache_t *cache)
{
	return sluice_blocks_cache_flush(cache);
}

/* ---- audit -------------------------------------------------------------- */

/* Walks class g's free stack on a quiescent region. Without `repair`: checks
 * only. With it: pushes back every block that is off the stack and owned by
 * nobody, and sets in_use to the number of owned blocks. Returns the number
 * of such leaked blocks, or -ECORRUPT / -ENOMEM. */
static int64_t audit_class(const struct sluice__blocks_geom *g, bool repair)
{
	struct sluice_blocks_ctl *ctl = g->ctl;
	uint64_t *on_stack = calloc((g->count + 63) / 64, sizeof(uint64_t));
	if (on_stack == NULL)
		return SLUICE_ENOMEM;
	int64_t ret = 0;
	/* acquire: pairs with the release of the last head CAS (a push), so
	 * the next words it published are visible. The region is quiescent:
	 * nothing moves while we walk. */
	uint32_t idx = SLUICE_BLOCKS_HEAD_IDX(sl_load_acquire(&ctl->head));
	/* Bounded: each step marks a new index, so at most count steps; an
	 * index seen twice is a cycle. */
	while (idx != SLUICE_BLOCKS_EMPTY) {
		if (idx >= g->count || (on_stack[idx / 64] >> (idx % 64)) & 1) {
			ret = SLUICE_ECORRUPT;
			goto out;
		}
		on_stack[idx / 64] |= UINT64_C(1) << (idx % 64);
		/* relaxed: quiescent; ordered by the acquire above. A block on
		 * the stack with an owner could be handed to two users. */
		if (sl_load_relaxed(&meta_of(g, idx)->owner) != SLUICE_OWNER_FREE) {
			ret = SLUICE_ECORRUPT;
			goto out;
		}
		idx = sl_load_relaxed(&meta_of(g, idx)->next);
	}
	uint32_t owned = 0;
	for (uint32_t i = 0; i < g->count; i++) {
		if ((on_stack[i / 64] >> (i % 64)) & 1)
			continue;
		/* Any owner word but FREE is owned: an allocated block, or one
		 * in a live cache (owner|CACHED), which in_use counts too. */
		if (sl_load_relaxed(&meta_of(g, i)->owner) != SLUICE_OWNER_FREE) {
			owned++;
			continue;
		}
		/* Off the stack and owned by nobody: a process died between its
		 * pop and its owner store, or between its owner CAS and its
		 * push, or inside a cache's refill or flush (see the top of
		 * this file). */
		ret++;
		if (repair && stack_push(g, i) != 0) {
			ret = SLUICE_ECORRUPT;
			goto out;
		}
	}
	if (repair) {
		/* relaxed: quiescent. in_use drifts only by a death inside
		 * alloc or free; the owner words are the truth. */
		if (sl_load_relaxed(&ctl->in_use) != owned)
			sl_store_relaxed(&ctl->in_use, owned);
		uint32_t hw = sl_load_relaxed(&ctl->high_water);
		if (hw < owned)
			sl_store_relaxed(&ctl->high_water, owned);
		else if (hw > g->count) /* a drifted in_use overshot before */
			sl_store_relaxed(&ctl->high_water, g->count);
	}
out:
	free(on_stack);
	return ret;
}

int64_t sluice_blocks_audit(const sluice_blocks_t *b)
{
	if (b == NULL || b->nclasses == 0)
		return SLUICE_EINVAL;
	/* Check every class before repairing any, so a corrupt region is
	 * reported and left as it was found. */
	for (uint32_t c = 0; c < b->nclasses; c++) {
		int64_t r = audit_class(&b->cls[c], false);
		if (r < 0)
			return r;
	}
	int64_t leaked = 0;
	for (uint32_t c = 0; c < b->nclasses; c++) {
		int64_t r = audit_class(&b->cls[c], true);
		if (r < 0)
			return r;
		leaked += r;
	}
	return leaked;
}
