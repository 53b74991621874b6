/* The block allocator's region layout. Shared memory, mapped by every
 * process of a flow at its own address: offsets and indices only.
 *
 *   offset 0                 struct sluice_blocks_hdr (one cache line)
 *   64 * (1 + c)             struct sluice_blocks_ctl of class c (one line each)
 *   meta_off[c]              count[c] x struct sluice_blocks_meta, 64-aligned
 *   data_off[c]              count[c] blocks of block_size[c] bytes, aligned
 *                            to min(block_size, 4096)
 *
 * The meta arrays come first, in class order, then the data arrays, in class
 * order. sluice__blocks_layout() computes every offset from the class list
 * alone; format writes what it computes and open recomputes it and refuses a
 * region whose recorded geometry differs by a byte.
 *
 * The header and the geometry fields of each control line are written once
 * by format before the region is shared, then only read (by open, which
 * copies them after validation); they are plain fields. The stack head and
 * the counters are _Atomic and touched only through base/atomic.h.
 */
#ifndef SLUICE_SHM_BLOCKS_LAYOUT_H
#define SLUICE_SHM_BLOCKS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/blocks.h>

#include "base/atomic.h"

#define SLUICE_BLOCKS_MAGIC UINT64_C(0x534b434f4c424c53) /* "SLBLOCKS" little-endian */
#define SLUICE_BLOCKS_LAYOUT_VERSION 1u

/* Handles: class in the top 5 bits, index in the low 27. */
#define SLUICE_BLOCKS_INDEX_BITS 27
#define SLUICE_BLOCKS_INDEX_MASK ((UINT32_C(1) << SLUICE_BLOCKS_INDEX_BITS) - 1)
#define SLUICE_BLOCKS_MAX_COUNT SLUICE_BLOCKS_INDEX_MASK /* count < 2^27 */
/* The biggest block size a class may have (1 TiB): keeps count * size and
 * every offset far from 64-bit overflow. */
#define SLUICE_BLOCKS_MAX_LOG2 40
#define SLUICE_BLOCKS_MIN_LOG2 6

/* Free-stack head word: top index in the low 32 bits, ABA tag in the high
 * 32 bits. An empty stack has index SLUICE_BLOCKS_EMPTY. */
#define SLUICE_BLOCKS_EMPTY UINT32_MAX
#define SLUICE_BLOCKS_HEAD(tag, idx) (((uint64_t)(tag) << 32) | (uint32_t)(idx))
#define SLUICE_BLOCKS_HEAD_IDX(h) ((uint32_t)(h))
#define SLUICE_BLOCKS_HEAD_TAG(h) ((uint32_t)((h) >> 32))

struct sluice_blocks_hdr {
	uint64_t magic;          /* SLUICE_BLOCKS_MAGIC */
	uint32_t layout_version; /* SLUICE_BLOCKS_LAYOUT_VERSION */
	uint32_t header_size;    /* sizeof(struct sluice_blocks_hdr) */
	uint32_t nclasses;       /* 1 .. SLUICE_BLOCKS_MAX_CLASSES */
	uint32_t ctl_size;       /* sizeof(struct sluice_blocks_ctl) */
	uint64_t used_size;      /* bytes of the region the layout uses */
	uint64_t geom_hash;      /* FNV-1a of every class's block size and count */
	uint8_t _pad[24];
};

/* One per class, one cache line: the free-stack head and the counters are
 * what every alloc and free of the class touches, so they share the line
 * (the counter update after the head CAS finds the line already owned).
 * Classes do not share lines. */
struct sluice_blocks_ctl {
	_Atomic uint64_t head;        /* SLUICE_BLOCKS_HEAD(tag, top index) */
	_Atomic uint32_t in_use;      /* blocks taken and not yet given back */
	_Atomic uint32_t high_water;  /* most in_use ever seen */
	/* Geometry: written by format, read only by open (which validates and
	 * copies it). Never used as a bound after open. */
	uint64_t block_size;
	uint64_t meta_off;
	uint64_t data_off;
	uint32_t count;
	uint32_t log2_size;
	uint8_t _pad[16];
};

/* One per block, in the class's meta array. */
struct sluice_blocks_meta {
	_Atomic uint32_t owner; /* SLUICE_OWNER_FREE or the owner's id */
	_Atomic uint32_t next;  /* while on the free stack: the index below it */
};

_Static_assert(sizeof(struct sluice_blocks_hdr) == 64, "blocks header is one cache line");
_Static_assert(offsetof(struct sluice_blocks_hdr, used_size) == 24, "blocks header layout");
_Static_assert(sizeof(struct sluice_blocks_ctl) == 64, "class control is one cache line");
_Static_assert(offsetof(struct sluice_blocks_ctl, head) == 0, "class control layout");
_Static_assert(offsetof(struct sluice_blocks_ctl, in_use) == 8, "class control layout");
_Static_assert(offsetof(struct sluice_blocks_ctl, high_water) == 12, "class control layout");
_Static_assert(offsetof(struct sluice_blocks_ctl, block_size) == 16, "class control layout");
_Static_assert(offsetof(struct sluice_blocks_ctl, count) == 40, "class control layout");
_Static_assert(sizeof(struct sluice_blocks_meta) == 8, "block metadata layout");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
	       "atomics have the size of their plain types");
_Static_assert(SLUICE_BLOCKS_MAX_CLASSES <= (1u << (32 - SLUICE_BLOCKS_INDEX_BITS)),
	       "class fits in a handle's top bits");
_Static_assert(sizeof(struct sluice__blocks_geom) == 64, "process-local geometry is one line");

/* Offsets of every class's meta and data arrays, computed from the class
 * list alone (block sizes and counts, already checked); *used is the bytes
 * the whole layout takes. Shared by region_size, format and open. */
void sluice__blocks_layout(uint32_t nclasses, const uint64_t *block_size, const uint32_t *count,
			   uint64_t *meta_off, uint64_t *data_off, uint64_t *used);

/* FNV-1a over the class list: a second copy of the geometry, so a count
 * scribbled to another value that still lays out inside the region is
 * caught by open. */
static inline uint64_t sluice__blocks_geom_hash(uint32_t nclasses, const uint64_t *block_size,
						const uint32_t *count)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (uint32_t c = 0; c < nclasses; c++) {
		uint64_t v[2] = {block_size[c], count[c]};
		for (int k = 0; k < 2; k++)
			for (int i = 0; i < 8; i++)
				h = (h ^ ((v[k] >> (8 * i)) & 0xff)) * UINT64_C(0x100000001b3);
	}
	return h;
}

/* The control line of class `c` in a region based at `region`. */
static inline struct sluice_blocks_ctl *sluice__blocks_ctl(void *region, uint32_t c)
{
	return (struct sluice_blocks_ctl *)((char *)region + sizeof(struct sluice_blocks_hdr) +
					    (size_t)c * sizeof(struct sluice_blocks_ctl));
}

#endif
