/* What the libFuzzer targets share: a check that aborts (libFuzzer counts an
 * abort as a crash and saves the input), the check that a return code is
 * one of sluice's, ASan poisoning of the memory around a region, and the
 * constants the targets and tests/fuzz/make_seeds.c agree on.
 *
 * The targets run single-threaded in one process: they look for what a
 * forged or scribbled-on shared segment can make a validating call do
 * (crash, read or write outside the segment, hang, return a code outside
 * the vocabulary), not for races.
 */
#ifndef SLUICE_TESTS_FUZZ_COMMON_H
#define SLUICE_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/error.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#endif
#endif
#ifndef FUZZ_POISON
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A property the library promises was broken: report and abort. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* A return value is a count (>= 0) or a code sluice defines. */
#define FUZZ_CHECK_RC(rc)                                                      \
	do {                                                                   \
		int64_t rc_ = (rc);                                            \
		if (rc_ < 0 && (rc_ < INT32_MIN ||                             \
				strcmp(sluice_err_name((int)rc_), "UNKNOWN") == 0)) { \
			fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s returned %lld, " \
				"not a sluice code\n", __FILE__, __LINE__, #rc, \
				(long long)rc_);                               \
			abort();                                               \
		}                                                              \
	} while (0)

/* Reads every byte of [p, p + n): a read outside what is mapped or what
 * ASan allows faults here rather than going unnoticed. */
static inline void fuzz_touch(const void *p, size_t n)
{
	const volatile unsigned char *c = p;
	unsigned char sink = 0;
	for (size_t i = 0; i < n; i++)
		sink ^= c[i];
	(void)sink;
}

/* fuzz_blocks_open and fuzz_ring_open: the input is FUZZ_OPS_LEN bytes of
 * operations (one byte each: low 3 bits the operation, high 5 bits its
 * argument) followed by the bytes of the shared segment. */
#define FUZZ_OPS_LEN 32u

/* fuzz_blocks_open: the allocator's region id in its arena, the region
 * that follows it (kept poisoned), and the most pages the region gets. */
#define FUZZ_BLOCKS_REGION 3u
#define FUZZ_GUARD_REGION 9u
#define FUZZ_BLOCKS_MAX_PAGES 16u

/* fuzz_desc_check: the fixed allocator the descriptors point into. Class
 * 0: 64 B x 32, class 1: 256 B x 16, class 2: 4096 B x 4. At setup, from a
 * freshly formatted region (blocks come off each stack in index order):
 * class 0 blocks 0..7 and class 1 blocks 0..3 go to client 0, class 0
 * blocks 8..11 and class 2 block 0 to worker 0; the rest stay free. */
#define FUZZ_DESC_MAX_TASKS 64u
#define FUZZ_DESC_CLIENT_OWNER 1u      /* SLUICE__OWNER_CLIENT(0) */
#define FUZZ_DESC_WORKER_OWNER 0x2000u /* SLUICE__OWNER_WORKER(0) */
#define FUZZ_HANDLE(cls, idx) (((uint32_t)(cls) << 27) | (uint32_t)(idx))

/* fuzz_render: byte 3 of the input (see tests/fuzz/fuzz_render.c). */
#define FUZZ_RENDER_PREV 0x1u          /* render with an earlier snapshot */
#define FUZZ_RENDER_CAPACITY 0x2u      /* with per-step capacities */
#define FUZZ_RENDER_CLASSES 0x4u       /* with per-class block statistics */
#define FUZZ_RENDER_PREV_GEOMETRY 0x8u /* the earlier one's counts from its own bytes */

#endif
