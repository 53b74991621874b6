/* The shared layout of a descriptor ring (internal: tests and tools may
 * include it; users go through include/sluice/ring.h).
 *
 *	offset 0    struct sluice_ring_hdr        192 bytes
 *	              line 0  geometry, written once by format
 *	              line 1  not_empty eventcount: consumers sleep, producers wake
 *	              line 2  not_full eventcount:  producers sleep, consumers wake
 *	lane_off    lane 0: struct sluice_ring_lane (192 bytes), then
 *	            capacity slots of 64 bytes
 *	+stride     lane 1 ...
 *
 * A lane is a ck_ring (c_head on its own line, p_tail/p_head on the next,
 * size/mask on a third, read-mostly) followed by the lane's owner word on
 * that read-mostly line. Everything is a counter or an offset from the
 * ring's base: no pointers. Every field is validated by sluice_ring_open
 * before a handle uses it; the handle keeps validated copies of the
 * geometry. (ck's own single-descriptor operations re-read the lane's mask
 * from shared memory on every call: format writes it once and open checks
 * it; our bulk operations use the handle's copy.)
 */
#ifndef SLUICE_QUEUES_RING_LAYOUT_H
#define SLUICE_QUEUES_RING_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <ck_ring.h>

#include <sluice/desc.h>
#include <sluice/ring.h>
#include "base/atomic.h"

#define SLUICE_RING_MAGIC UINT64_C(0x31474e4952454c53) /* "SLERING1" little-endian */
#define SLUICE_RING_LAYOUT_VERSION 1u
#define SLUICE_RING_CACHELINE 64u

/* An eventcount: a futex word bumped by wakers, and a flag saying someone
 * may sleep on it (queues/ring.c explains why a flag, not a count). Its own
 * cache line: sleepers write it only on their way into sleep; wakers read
 * it once per call and write it only when it is set. */
struct sluice_ring_ec {
	_Atomic uint32_t seq;      /* futex word; bumped (acq_rel) before FUTEX_WAKE */
	_Atomic uint32_t waiting;  /* 1: someone may sleep on seq; set by sleepers, cleared by the waker */
	_Atomic uint32_t armed;    /* not_empty only: 1 while an eventfd consumer is armed */
	uint32_t _pad[13];
};

struct sluice_ring_hdr {
	/* line 0: written by format before the ring is shared, then read-only */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;   /* sizeof(struct sluice_ring_hdr) */
	uint32_t kind;          /* enum sluice_ring_kind */
	uint32_t nlanes;        /* 1 for SPSC */
	uint32_t capacity;      /* slots per lane, a power of two */
	uint32_t wait;          /* default enum sluice_ring_wait */
	uint64_t spin_ns;       /* default spin of SPIN_SLEEP */
	uint64_t lane_off;      /* from the ring's base to lane 0 */
	uint64_t lane_stride;   /* sizeof(struct sluice_ring_lane) + capacity * 64 */
	uint64_t total_size;    /* bytes from the base to the end of the last lane */
	/* line 1 */
	struct sluice_ring_ec not_empty __attribute__((aligned(SLUICE_RING_CACHELINE)));
	/* line 2 */
	struct sluice_ring_ec not_full __attribute__((aligned(SLUICE_RING_CACHELINE)));
};

struct sluice_ring_lane {
	struct ck_ring ring;    /* ck's counters; touched only through ck_pr */
	/* On ck's read-mostly line (size, mask): written only by claim and
	 * release, read by claim. */
	_Atomic uint32_t owner; /* SLUICE_RING_OWNER_NONE or the producer's id */
	uint32_t _reserved;
} __attribute__((aligned(SLUICE_RING_CACHELINE)));

_Static_assert(sizeof(struct sluice_ring_ec) == 64, "eventcount is one line");
_Static_assert(offsetof(struct sluice_ring_hdr, spin_ns) == 32, "ring header layout");
_Static_assert(offsetof(struct sluice_ring_hdr, lane_off) == 40, "ring header layout");
_Static_assert(offsetof(struct sluice_ring_hdr, total_size) == 56, "ring header layout");
_Static_assert(offsetof(struct sluice_ring_hdr, not_empty) == 64, "ring header layout");
_Static_assert(offsetof(struct sluice_ring_hdr, not_full) == 128, "ring header layout");
_Static_assert(sizeof(struct sluice_ring_hdr) == 192, "ring header layout");
/* ck 0.7.1's struct ck_ring, which we place in shared memory. */
_Static_assert(offsetof(struct ck_ring, c_head) == 0, "ck_ring layout");
_Static_assert(offsetof(struct ck_ring, p_tail) == 64, "ck_ring layout");
_Static_assert(offsetof(struct ck_ring, p_head) == 68, "ck_ring layout");
_Static_assert(offsetof(struct ck_ring, size) == 128, "ck_ring layout");
_Static_assert(offsetof(struct ck_ring, mask) == 132, "ck_ring layout");
_Static_assert(sizeof(struct ck_ring) == 136, "ck_ring layout");
_Static_assert(offsetof(struct sluice_ring_lane, owner) == 136, "lane layout");
_Static_assert(sizeof(struct sluice_ring_lane) == 192, "lane layout");
_Static_assert(sizeof(sluice_desc_t) == SLUICE_RING_CACHELINE, "one slot, one line");

#endif
