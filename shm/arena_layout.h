/* The arena header: the first bytes of every arena. Shared memory; written
 * once by the creator before the arena is sealed and handed to anyone, then
 * read-only, so it needs no atomics. Every field is validated by attach. */
#ifndef SLUICE_SHM_ARENA_LAYOUT_H
#define SLUICE_SHM_ARENA_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/arena.h>

#define SLUICE_ARENA_MAGIC UINT64_C(0x414e455241454c53) /* "SLEARENA" little-endian */
#define SLUICE_ARENA_LAYOUT_VERSION 1u

struct sluice_region_entry {
	uint32_t id;
	uint32_t _reserved;
	uint64_t offset;
	uint64_t size;
};

struct sluice_arena_hdr {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;  /* sizeof(struct sluice_arena_hdr) */
	uint64_t total_size;   /* bytes, equals the memfd's size */
	uint32_t flags;        /* SLUICE_ARENA_HUGEPAGES if it got them */
	uint32_t nregions;
	uint64_t created_ns;   /* CLOCK_REALTIME at create */
	uint32_t creator_pid;
	uint32_t _reserved;
	struct sluice_region_entry regions[SLUICE_ARENA_MAX_REGIONS];
};

_Static_assert(sizeof(struct sluice_region_entry) == 24, "region entry layout");
_Static_assert(offsetof(struct sluice_arena_hdr, regions) == 48, "arena header layout");
_Static_assert(sizeof(struct sluice_arena_hdr) == 48 + 24 * SLUICE_ARENA_MAX_REGIONS,
	       "arena header layout");
_Static_assert(sizeof(struct sluice_arena_hdr) <= SLUICE_ARENA_REGION_ALIGN,
	       "header must fit before the first region");

#endif
