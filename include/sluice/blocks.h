/* The block allocator: payload and result blocks in an arena region.
 *
 * Blocks come from size classes (a list of block sizes and counts, each
 * size a power of two from 64 B up). Each class keeps its free blocks on a
 * lock-free stack of block indices whose head word holds the top index and
 * an ABA tag in the same 64 bits. Any number of processes may allocate and
 * free at once.
 *
 * Every block records its owner: a non-zero 32-bit id chosen by the caller
 * (a client slot, a worker slot, "in flight": shm/ does not know which).
 * Ownership changes only by compare-and-swap, so sluice_blocks_reclaim()
 * can hand back every block of a dead owner in one call.
 *
 * A block is named by a sluice_block_t handle (class and index packed in 32
 * bits), never by a pointer; sluice_blocks_ptr() turns a handle into this
 * process's address after checking it.
 *
 * A thread that allocates and frees often puts a sluice_blocks_cache_t in
 * front (see below): a per-thread magazine of blocks per class, like glibc's
 * tcache, whose hits use no locked instruction and write no shared line.
 * Cached blocks stay owned (owner | SLUICE_OWNER_CACHED), so reclaim still
 * finds them after a crash.
 *
 * Synchronization table (region shared by all processes):
 *
 *   | operation            | may run concurrently with                 |
 *   |----------------------|-------------------------------------------|
 *   | alloc, free, ptr     | each other and everything but audit and format, in any process |
 *   | set_owner            | everything; CAS, so two callers never both win |
 *   | cache_alloc, cache_free, cache_flush | everything but audit and format, in any process, except calls acting as the cache's owner from another thread (that id is the cache thread's alone) |
 *   | reclaim(owner)       | everything, as long as `owner` is dead (it no longer allocates, frees or hands off) |
 *   | stats                | everything; counters may be mutually stale by a few operations |
 *   | audit                | nothing: only on a quiescent region         |
 *   | format               | nothing: before the region is shared        |
 */
#ifndef SLUICE_BLOCKS_H
#define SLUICE_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sluice/arena.h>
#include <sluice/export.h>

typedef uint32_t sluice_block_t;
#define SLUICE_BLOCK_NONE UINT32_MAX
#define SLUICE_BLOCKS_MAX_CLASSES 32
/* Owner 0 means free; callers use 1 .. SLUICE_OWNER_MAX. */
#define SLUICE_OWNER_FREE 0u
#define SLUICE_OWNER_MAX 0x7ffffff0u
/* A block sitting in the cache of owner o has owner word o | CACHED: still
 * owned (reclaim(o) frees it, audit counts it), but nobody may free it or
 * hand it on until the cache gives it out again. No caller id has this bit. */
#define SLUICE_OWNER_CACHED 0x80000000u
/* Most blocks a cache keeps of one class. */
#define SLUICE_BLOCKS_CACHE_DEPTH 64

typedef struct sluice_blocks_class {
	uint64_t block_size; /* a power of two, >= 64 */
	uint32_t count;      /* blocks in this class, >= 1, < 2^27 */
	uint32_t _reserved;
} sluice_blocks_class_t;

typedef struct sluice_blocks_config {
	size_t size_of; /* sizeof(sluice_blocks_config_t) */
	uint32_t nclasses;
	uint32_t _reserved;
	sluice_blocks_class_t classes[SLUICE_BLOCKS_MAX_CLASSES]; /* ascending sizes */
} sluice_blocks_config_t;

/* Process-local view of an allocator region; fill with sluice_blocks_open.
 * Caller-allocated, immutable after open: any thread may use it. Its
 * fields are private to shm/blocks.c. */
typedef struct sluice_blocks {
	void *region;      /* mapped base of the region */
	uint64_t region_size;
	uint32_t nclasses;
	uint32_t _reserved;
	/* class_of_log2[k]: the smallest class whose blocks hold 2^k bytes,
	 * or 0xff when none does; alloc indexes it by ceil(log2(size)), so
	 * finding the class costs one clz and one load. */
	uint8_t class_of_log2[72];
	/* Validated copies of each class's geometry, taken at open, so the hot
	 * path never trusts shared memory for a bound. 64 bytes each: alloc
	 * and free touch one line of it. */
	struct sluice__blocks_geom {
		uint64_t block_size;
		uint64_t data_off; /* from region base */
		uint64_t meta_off; /* from region base */
		uint32_t count;
		uint32_t log2_size;
		void *ctl;         /* the class's shared control line */
		void *meta;        /* region + meta_off: per-block owner and next */
		char *data;        /* region + data_off: block 0 */
		uint64_t _pad;
	} cls[SLUICE_BLOCKS_MAX_CLASSES];
} sluice_blocks_t;

/* A per-thread block cache: for each class, a magazine (a LIFO of block
 * indices) that alloc takes from and free puts back into with no locked
 * instruction, refilled from and flushed to the shared free stack one batch
 * (half a magazine) at a time, with one CAS. Caller-allocated, used by one
 * thread only; fill with sluice_blocks_cache_init. Its fields are private
 * to shm/blocks.c. A forked child must not use a cache it inherited (the
 * blocks in it belong to the parent): it inits its own. */
typedef struct sluice_blocks_cache {
	const sluice_blocks_t *b;
	uint32_t owner;
	uint32_t nclasses;
	/* Copies of b's class table and of each class's count and meta
	 * array, so that a hit reads only the cache and the block's owner
	 * word (one dependent load fewer than going through b). */
	uint8_t class_of_log2[72];
	struct sluice__blocks_mag {
		uint32_t n;     /* blocks held: idx[0 .. n-1], top at n-1 */
		uint32_t cap;   /* most held; 0: the class is not cached */
		uint32_t batch; /* blocks moved per refill or flush */
		uint32_t count; /* blocks in the class */
		void *meta;     /* the class's owner and next words */
		uint64_t _pad;
		uint32_t idx[SLUICE_BLOCKS_CACHE_DEPTH];
	} mag[SLUICE_BLOCKS_MAX_CLASSES];
} sluice_blocks_cache_t;

typedef struct sluice_blocks_stats {
	uint64_t block_size;
	uint32_t capacity;   /* blocks in the class */
	/* Blocks off the shared free stack: allocated ones, and the ones
	 * sitting in per-thread caches (counted when a cache takes a batch,
	 * uncounted when it gives one back). */
	uint32_t in_use;
	uint32_t high_water; /* most blocks ever in use at once */
	uint32_t _reserved;
	uint64_t bookkeeping_bytes; /* control and per-block metadata */
} sluice_blocks_stats_t;

/* Fills `cfg` with a default geometry: classes from 256 B up to 64 MiB
 * (powers of four) sharing about `budget` bytes of blocks (bookkeeping
 * comes on top: see sluice_blocks_region_size). The largest class is the
 * biggest power of four up to 64 MiB no larger than budget / 4, so one block
 * of every class always fits; every class has at least one block and about
 * an equal share of the bytes, so smaller classes have more blocks. Any
 * thread. Returns 0, or -EINVAL (budget below 1 KiB or above 32 TiB). */
SLUICE_EXTERN int sluice_blocks_config_default(sluice_blocks_config_t *cfg, uint64_t budget);

/* The region size `cfg` needs, in bytes (blocks plus 64 B per class plus
 * 8 B per block, plus alignment), or a negative code for a bad
 * configuration (-EINVAL: sizes not powers of two from 64 B to 1 TiB, not
 * ascending, counts of 0 or 2^27 and up, too many classes, more than 64 TiB
 * in all). Any thread; reads nothing shared. */
SLUICE_EXTERN int64_t sluice_blocks_region_size(const sluice_blocks_config_t *cfg);

/* Lays out an empty allocator in `region` (size bytes, 64-byte aligned):
 * every block free. The creator calls it once, before anyone else maps the
 * region; it runs concurrently with nothing. Returns 0, or -EINVAL (bad
 * configuration, misaligned region) / -ENOSPC (region too small). */
SLUICE_EXTERN int sluice_blocks_format(void *region, uint64_t size,
				       const sluice_blocks_config_t *cfg);

/* Opens the allocator in region `region_id` of arena `a`, validating its
 * header (magic, version, class geometry: the exact layout format writes
 * for its class list, inside the region) before trusting it, and copying
 * the geometry into `b`. Any process, any thread; runs concurrently with
 * anything but format. Works on a read-only arena too (stats, owner, ptr
 * only). Returns 0, -ENOENT (no such region), -EBADMAGIC, -EVERSION or
 * -ECORRUPT; on failure `b` is zeroed. */
SLUICE_EXTERN int sluice_blocks_open(sluice_blocks_t *b, const sluice_arena_t *a,
				     uint32_t region_id);

/* Takes a free block of the smallest class that holds `size` bytes (0 and
 * 1 take the smallest class) and records `owner` as its owner. Any process,
 * any thread, concurrently with everything but audit and format.
 * Lock-free; no system call, never blocks.
 * Returns 0 and the handle in *out; -E2BIG when size exceeds the largest
 * class; -ENOSPC when the fitting class is exhausted (no larger class is
 * tried: a small request never eats a big block);
 * -EINVAL for owner 0 or above SLUICE_OWNER_MAX; -ECORRUPT when the free
 * list holds an index out of range (shared memory was scribbled on). */
SLUICE_EXTERN int sluice_blocks_alloc(const sluice_blocks_t *b, uint64_t size, uint32_t owner,
				      sluice_block_t *out);

/* Returns block `blk` to its class if `owner` owns it. Any process, any
 * thread, concurrently with everything but audit and format (when `owner`
 * has a cache, only from that cache's thread: see the cache section).
 * Lock-free. A block taken with sluice_blocks_cache_alloc may be freed here.
 * Returns 0; -EBADHANDLE for a handle out of range; -ENOTOWNER when the
 * block is free, cached, or owned by someone else, or owner is 0 or above
 * SLUICE_OWNER_MAX (a double free is
 * refused, not obeyed, unless the block was meanwhile allocated again to
 * the same owner id: ids are not generations); -ECORRUPT when the free list
 * head was scribbled on (the block is then left off the list, for audit). */
SLUICE_EXTERN int sluice_blocks_free(const sluice_blocks_t *b, sluice_block_t blk, uint32_t owner);

/* Hands block `blk` from owner `from` to owner `to` by compare-and-swap.
 * Any process, any thread; of two racing calls (or a free and a set_owner)
 * exactly one wins. The release it issues hands `from`'s writes to the
 * block to whoever reads the new owner with acquire. When `from` has a
 * cache, only that cache's thread may call this with `from` (the cache
 * writes its owner's words with plain stores). `to` may have a cache: its
 * thread may free the block into it with sluice_blocks_cache_free.
 * Returns 0, -EBADHANDLE, -EINVAL (to is 0 or too big), or -ENOTOWNER when
 * `from` did not own it (from == 0 never does: a free block stays free; nor
 * does a from with SLUICE_OWNER_CACHED set: a cached block stays put). */
SLUICE_EXTERN int sluice_blocks_set_owner(const sluice_blocks_t *b, sluice_block_t blk,
					  uint32_t from, uint32_t to);

/* The current owner of `blk` (SLUICE_OWNER_FREE when free, owner |
 * SLUICE_OWNER_CACHED while it sits in owner's cache), or a negative code
 * for a bad handle. Any thread; a snapshot (acquire load). */
SLUICE_EXTERN int64_t sluice_blocks_owner(const sluice_blocks_t *b, sluice_block_t blk);

/* This process's address of block `blk` and, in *capacity (may be NULL),
 * its size in bytes; NULL for a handle out of range. Any thread; reads no
 * shared memory. Does not check ownership. */
SLUICE_EXTERN void *sluice_blocks_ptr(const sluice_blocks_t *b, sluice_block_t blk,
				      uint64_t *capacity);

/* Frees every block owned by `owner`, which must be dead (nobody may hand
 * it blocks any more either), the blocks sitting in its caches (owner word
 * owner | SLUICE_OWNER_CACHED) included. Any process, any thread,
 * concurrently with alloc and free by others; O(total blocks), lock-free.
 * Returns the number of blocks freed, -EINVAL for owner 0 or above
 * SLUICE_OWNER_MAX, or -ECORRUPT. Blocks its owner had popped but not yet
 * marked as its own when it died (one block, or one cache batch) are not
 * found here: audit finds them. */
SLUICE_EXTERN int64_t sluice_blocks_reclaim(const sluice_blocks_t *b, uint32_t owner);

/* ---- per-thread caches --------------------------------------------------
 *
 * Who writes a block's owner word: while a cache for `owner` is live, the
 * cache's thread is the only one that acts as `owner` (allocates, frees or
 * hands on blocks as `owner`), so it is the only writer of the owner word
 * of a block owned by `owner` or sitting in its cache. Others may hand it
 * blocks with set_owner, whose CAS is over before the block is `owner`'s;
 * reclaim(owner) runs only once the thread is dead. That is what lets a
 * cache hit use a plain load and a release store where alloc and free use
 * locked instructions. Two threads of one process take two owner ids.
 *
 * Classes of fewer than 16 blocks are not cached (a cache would hoard a big
 * share of them): the cache calls pass them to sluice_blocks_alloc and
 * sluice_blocks_free. Other classes get a magazine of min(64, count / 8)
 * blocks, moved half a magazine at a time. A cache never holds more than
 * an eighth of a class, but an idle cache may hold that many blocks where
 * another process's alloc cannot find them: flush idle caches, or give the
 * classes that headroom. */

/* Prepares `cache` (caller-allocated, any memory) for the one thread that
 * will use it, allocating as `owner` from `b` (which must outlive the
 * cache). Reads nothing shared; takes no blocks yet. Returns 0, or -EINVAL
 * (a NULL argument, owner 0 or above SLUICE_OWNER_MAX). */
SLUICE_EXTERN int sluice_blocks_cache_init(sluice_blocks_cache_t *cache, const sluice_blocks_t *b,
					   uint32_t owner);

/* As sluice_blocks_alloc(b, size, owner, out), through the cache. Only the
 * cache's thread; concurrently with everything others do but audit and
 * format. A hit pops the magazine and stores `owner` in the block's owner
 * word (release): no locked instruction, no shared line written but the
 * block's own owner word. A miss takes a batch off the class's free stack
 * with one CAS (lock-free), marks each block owner | SLUICE_OWNER_CACHED
 * and adds the batch to in_use. Never blocks, no system call. Returns 0
 * and the handle in *out; -E2BIG; -ENOSPC when the magazine and the
 * class's free stack are both empty (other caches may still hold blocks of
 * the class); -ECORRUPT. */
SLUICE_EXTERN int sluice_blocks_cache_alloc(sluice_blocks_cache_t *cache, uint64_t size,
					    sluice_block_t *out);

/* As sluice_blocks_free(b, blk, owner), into the cache. The block may come
 * from this cache, from sluice_blocks_alloc as the cache's owner, or from
 * anyone who handed it to the owner with set_owner. Only the cache's
 * thread; concurrently with everything others do but audit and format. A
 * hit checks the owner word (acquire load) and stores owner |
 * SLUICE_OWNER_CACHED (release): no locked instruction. A full magazine
 * first gives its oldest half back to the free stack with one CAS.
 * Returns 0; -EBADHANDLE; -ENOTOWNER when the block is free, already
 * cached (a double free), or someone else's; -ECORRUPT when the magazine
 * was full and the class's free-stack head was scribbled on (the block
 * stays the caller's and the magazine as it was; only if the head was
 * scribbled on during the push is the half being pushed left off every
 * stack, unowned, for audit). */
SLUICE_EXTERN int sluice_blocks_cache_free(sluice_blocks_cache_t *cache, sluice_block_t blk);

/* Gives every cached block back to the free stacks: per class, the whole
 * magazine with one CAS, in_use lowered by the count. Only the cache's
 * thread; concurrently with everything others do but audit and format.
 * Lock-free. The cache stays usable. Returns the number of blocks given
 * back, or -ECORRUPT (a free stack's head was scribbled on: that class's
 * magazine and the ones after it are left as they were, unless the head
 * was scribbled on during the push, when that magazine's blocks are left
 * off every stack, unowned, for audit). */
SLUICE_EXTERN int64_t sluice_blocks_cache_flush(sluice_blocks_cache_t *cache);

/* Flushes the cache (as sluice_blocks_cache_flush); `cache` may then be
 * dropped or given to sluice_blocks_cache_init again. Same caller and
 * concurrency as flush. Returns what flush returns. */
SLUICE_EXTERN int64_t sluice_blocks_cache_fini(sluice_blocks_cache_t *cache);

/* Counters of class `cls`. Any thread, any time (relaxed reads; may be
 * stale by the operations in flight). in_use counts cached blocks too.
 * Returns 0 or -EINVAL. */
SLUICE_EXTERN int sluice_blocks_stats(const sluice_blocks_t *b, uint32_t cls,
				      sluice_blocks_stats_t *out);

/* On a quiescent region (no alloc, free, set_owner, reclaim or cache call
 * running anywhere; a dead process's blocks already reclaimed): walks every
 * class's free stack (bounded; an index out of range, a cycle, or a block
 * both on the stack and owned is -ECORRUPT, and then nothing is changed),
 * returns the number of blocks that are neither on a free stack nor owned
 * (leaked by a process killed between taking a block, or a cache's batch,
 * and recording its owner, or between clearing the owner and pushing it),
 * putting them back on the free stack, and resets each class's in_use to
 * its owned blocks (a death inside alloc, free or a cache's refill or
 * flush can leave it off). Blocks sitting in live caches (owner |
 * SLUICE_OWNER_CACHED) are owned, not leaked. -ENOMEM if the walk's bitmap
 * cannot be allocated. */
SLUICE_EXTERN int64_t sluice_blocks_audit(const sluice_blocks_t *b);

#endif
