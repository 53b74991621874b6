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
 * UINT32_MAX. */
static inline bool owner_ok(uint32_t owner)
{
	return owner - 1u < SLUICE_OWNER_MAX;
}

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
	if (__builtin_expect(owner == SLUICE_OWNER_FREE, 0))
		return SLUICE_ENOTOWNER; /* owner 0 owns nothing; never CAS 0 -> 0 */
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
	if (from == SLUICE_OWNER_FREE)
		return SLUICE_ENOTOWNER; /* a free block cannot be claimed off the stack */
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
			 * dead, so nobody should. */
			if (sl_load_relaxed(&meta_of(g, i)->owner) != owner)
				continue;
			int err = give_back(g, i, owner);
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
		if (sl_load_relaxed(&meta_of(g, i)->owner) != SLUICE_OWNER_FREE) {
			owned++;
			continue;
		}
		/* Off the stack and owned by nobody: a process died between its
		 * pop and its owner store, or between its owner CAS and its
		 * push (see the top of this file). */
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
