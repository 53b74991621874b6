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
 * Synchronization table (region shared by all processes):
 *
 *   | operation            | may run concurrently with                 |
 *   |----------------------|-------------------------------------------|
 *   | alloc, free, ptr     | each other and everything but audit and format, in any process |
 *   | set_owner            | everything; CAS, so two callers never both win |
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
#define SLUICE_OWNER_MAX 0xfffffff0u

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

typedef struct sluice_blocks_stats {
	uint64_t block_size;
	uint32_t capacity;   /* blocks in the class */
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
 * thread, concurrently with everything but audit and format. Lock-free.
 * Returns 0; -EBADHANDLE for a handle out of range; -ENOTOWNER when the
 * block is free or owned by someone else, or owner is 0 (a double free is
 * refused, not obeyed, unless the block was meanwhile allocated again to
 * the same owner id: ids are not generations); -ECORRUPT when the free list
 * head was scribbled on (the block is then left off the list, for audit). */
SLUICE_EXTERN int sluice_blocks_free(const sluice_blocks_t *b, sluice_block_t blk, uint32_t owner);

/* Hands block `blk` from owner `from` to owner `to` by compare-and-swap.
 * Any process, any thread; of two racing calls (or a free and a set_owner)
 * exactly one wins. The release it issues hands `from`'s writes to the
 * block to whoever reads the new owner with acquire.
 * Returns 0, -EBADHANDLE, -EINVAL (to is 0 or too big), or -ENOTOWNER when
 * `from` did not own it (from == 0 never does: a free block stays free). */
SLUICE_EXTERN int sluice_blocks_set_owner(const sluice_blocks_t *b, sluice_block_t blk,
					  uint32_t from, uint32_t to);

/* The current owner of `blk` (SLUICE_OWNER_FREE when free), or a negative
 * code for a bad handle. Any thread; a snapshot (acquire load). */
SLUICE_EXTERN int64_t sluice_blocks_owner(const sluice_blocks_t *b, sluice_block_t blk);

/* This process's address of block `blk` and, in *capacity (may be NULL),
 * its size in bytes; NULL for a handle out of range. Any thread; reads no
 * shared memory. Does not check ownership. */
SLUICE_EXTERN void *sluice_blocks_ptr(const sluice_blocks_t *b, sluice_block_t blk,
				      uint64_t *capacity);

/* Frees every block owned by `owner`, which must be dead (nobody may hand
 * it blocks any more either). Any process, any thread, concurrently with
 * alloc and free by others; O(total blocks), lock-free. Returns the number
 * of blocks freed, -EINVAL for owner 0 or above SLUICE_OWNER_MAX, or
 * -ECORRUPT. A block its owner had popped but not yet marked as its own
 * when it died is not found here: audit finds it. */
SLUICE_EXTERN int64_t sluice_blocks_reclaim(const sluice_blocks_t *b, uint32_t owner);

/* Counters of class `cls`. Any thread, any time (relaxed reads; may be
 * stale by the operations in flight). Returns 0 or -EINVAL. */
SLUICE_EXTERN int sluice_blocks_stats(const sluice_blocks_t *b, uint32_t cls,
				      sluice_blocks_stats_t *out);

/* On a quiescent region (no alloc, free, set_owner or reclaim running
 * anywhere; a dead process's blocks already reclaimed): walks every
 * class's free stack (bounded; an index out of range, a cycle, or a block
 * both on the stack and owned is -ECORRUPT, and then nothing is changed),
 * returns the number of blocks that are neither on a free stack nor owned
 * (leaked by a process killed between taking a block and recording its
 * owner, or between clearing its owner and pushing it), putting them back
 * on the free stack, and resets each class's in_use to its owned blocks
 * (a death inside alloc or free can leave it off by one). -ENOMEM if the
 * walk's bitmap cannot be allocated. */
SLUICE_EXTERN int64_t sluice_blocks_audit(const sluice_blocks_t *b);

#endif
