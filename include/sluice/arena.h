/* Shared-memory arenas: one memfd per flow, sized once, sealed against
 * shrink and grow, mapped by every process of the flow at whatever address
 * the kernel picks. Everything inside is addressed by offset from the base.
 *
 * An arena is a header followed by regions. The creator names each region
 * by a small id and a size; the header records where each one starts, so a
 * process that attaches, or a tool, can check what it reads.
 *
 * Synchronization: an arena handle (sluice_arena_t) is process-local and
 * immutable after create/attach; any thread may use it concurrently, except
 * sluice_arena_destroy, which the caller must order after every other use.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sluice/export.h>

typedef struct sluice_arena sluice_arena_t;

#define SLUICE_ARENA_MAX_REGIONS 16
/* Every region starts on a 4 KiB boundary. */
#define SLUICE_ARENA_REGION_ALIGN 4096u

enum sluice_arena_flags {
	/* create: try a hugetlb memfd first; fall back quietly to normal pages
	 * (with MADV_HUGEPAGE) when the kernel has none to give. */
	SLUICE_ARENA_HUGEPAGES = 1u << 0,
	/* attach: map read-only (PROT_READ). Required when the descriptor was
	 * opened O_RDONLY. */
	SLUICE_ARENA_RDONLY = 1u << 1,
};

typedef struct sluice_region_req {
	uint32_t id;   /* caller's name for the region; non-zero, unique */
	uint32_t _reserved;
	uint64_t size; /* bytes; rounded up to SLUICE_ARENA_REGION_ALIGN */
} sluice_region_req_t;

typedef struct sluice_arena_opts {
	size_t size_of;   /* sizeof(sluice_arena_opts_t), so the struct can grow */
	const char *name; /* memfd name (shows in /proc/PID/maps); may be NULL */
	uint32_t flags;   /* SLUICE_ARENA_HUGEPAGES */
	uint32_t nregions;
	sluice_region_req_t regions[SLUICE_ARENA_MAX_REGIONS];
} sluice_arena_opts_t;

/* Creates a sealed memfd arena with the requested regions, zero-filled,
 * mapped read-write. The memfd is close-on-exec and sealed with
 * F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL before this returns.
 * Any thread. Blocks on: memfd_create, ftruncate, mmap.
 * Returns 0 and a handle the caller owns (sluice_arena_destroy), or
 * -EINVAL (bad options), -ENOMEM, or another -errno of the system calls. */
SLUICE_EXTERN int sluice_arena_create(const sluice_arena_opts_t *opts, sluice_arena_t **out);

/* Maps the arena behind `fd` after validating it: a memfd sealed against
 * shrink and grow (else -ENOTSEALED), at least a header long and exactly
 * the size its header says (else -ETRUNCATED), the right magic (else
 * -EBADMAGIC), this library's layout version (else -EVERSION), and regions
 * that lie inside it without overlapping (else -ECORRUPT). `fd` is
 * duplicated; the caller keeps its own. flags: 0 or SLUICE_ARENA_RDONLY.
 * Any thread. Returns 0 and a handle the caller owns. */
SLUICE_EXTERN int sluice_arena_attach(int fd, uint32_t flags, sluice_arena_t **out);

/* Unmaps the arena and closes its descriptor. The memory lives on while any
 * other process maps it. Calling thread must be the last user of `a`. */
SLUICE_EXTERN void sluice_arena_destroy(sluice_arena_t *a);

/* The arena's memfd (owned by the handle; do not close it). */
SLUICE_EXTERN int sluice_arena_fd(const sluice_arena_t *a);

/* A new descriptor for the same arena, opened O_RDONLY|O_CLOEXEC: what an
 * observer is given, so that it can only map the arena read-only. Returns the
 * descriptor (the caller owns it) or a negative code. */
SLUICE_EXTERN int sluice_arena_reopen_rdonly(const sluice_arena_t *a);

SLUICE_EXTERN void *sluice_arena_base(const sluice_arena_t *a);
SLUICE_EXTERN uint64_t sluice_arena_size(const sluice_arena_t *a);
SLUICE_EXTERN bool sluice_arena_is_rdonly(const sluice_arena_t *a);
/* True when the arena got huge pages (hugetlb memfd). */
SLUICE_EXTERN bool sluice_arena_has_hugepages(const sluice_arena_t *a);

/* Looks up region `id`: its offset and size. Returns 0, or -ENOENT. */
SLUICE_EXTERN int sluice_arena_region(const sluice_arena_t *a, uint32_t id, uint64_t *off,
				      uint64_t *size);

/* Translates an offset into a pointer after checking that
 * [off, off + len) lies inside the arena and that off is a multiple of
 * `align` (a power of two; 0 or 1 means any). Returns NULL when it does not:
 * the one way offsets read from shared memory become pointers. */
SLUICE_EXTERN void *sluice_arena_at(const sluice_arena_t *a, uint64_t off, uint64_t len,
				    uint64_t align);

#endif
