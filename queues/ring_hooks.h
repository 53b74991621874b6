/* Test hooks of the rings (internal; for tests only).
 *
 * The enqueue hook runs on the producer's enqueue path after the slots are
 * written and before they are published (the p_tail store): the window in
 * which a killed producer leaves a written, unpublished slot behind. A
 * crash test parks a producer there and SIGKILLs it.
 *
 * The hook is a process-local function pointer (not in shared memory), NULL
 * unless a test sets it; the hot path pays one predictable branch on it. Set
 * it before starting threads or forking producers; never in production.
 */
#ifndef SLUICE_QUEUES_RING_HOOKS_H
#define SLUICE_QUEUES_RING_HOOKS_H

#include <sluice/export.h>
#include <sluice/ring.h>

/* p: the producer; d, n: the descriptors being enqueued by this call, the
 * first n of which are written to their slots but not yet published. */
typedef void (*sluice__ring_test_hook_fn)(const sluice_ring_producer_t *p,
					  const sluice_desc_t *d, unsigned n);

/* The hook itself; read on the enqueue path. */
extern sluice__ring_test_hook_fn sluice__ring_test_hook;

/* FOR TESTS ONLY: sets (or, with NULL, clears) the enqueue hook of this
 * process. Call before the process has more than one thread. */
SLUICE_EXTERN void sluice__ring_set_test_hook(sluice__ring_test_hook_fn fn);

/* The dequeue hook runs in sluice_ring_dequeue_bulk_mpmc_intent after the
 * intent record of a take is written and before the CAS that takes it:
 * the window in which a killed consumer has recorded a take that did not
 * happen. intent: the record; d, n: the descriptors copied for the take. */
typedef void (*sluice__ring_dequeue_hook_fn)(const sluice_ring_intent_t *intent,
					     const sluice_desc_t *d, unsigned n);
extern sluice__ring_dequeue_hook_fn sluice__ring_dequeue_test_hook;

/* FOR TESTS ONLY: sets (or clears) the dequeue hook of this process. Call
 * before the process has more than one thread. */
SLUICE_EXTERN void sluice__ring_set_dequeue_test_hook(sluice__ring_dequeue_hook_fn fn);

#endif
