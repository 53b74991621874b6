/* Test hooks of the worker loop (internal; for tests only).
 *
 * A fault-injection test parks a worker at one of these points (the hook
 * blocks, or pauses) and SIGKILLs it there, to check that the supervisor's
 * recovery loses no task and runs none twice whatever the window. The
 * points, in the order a batch passes them:
 *
 *   TAKEN       the batch's descriptors are off the ring (every CAS of the
 *               dequeue done) and in the worker's scratch; none claimed
 *   HANDLED     handle() returned; every task of the batch is still HELD
 *   CONCLUDING  one task's conclusion is half done: the result block it
 *               replaces taken over, the new one handed to the client, the
 *               entry's desc rewritten, its outgoing copy recorded; the CAS
 *               that moves it on not yet made (called for every task)
 *   PUBLISHING  about half of the batch moved on (CAS made, descriptors
 *               recorded but not on their rings); the rest still HELD
 *
 * (Inside the handler is the test's own handler; the window between the
 * intent record and the ring's CAS is queues/ring_hooks.h's dequeue hook.)
 *
 * The hook is a process-local function pointer (not in shared memory),
 * NULL unless a test sets it; the loop pays one predictable branch per
 * point. Set it before sluice_flow_start (the workers inherit it); never
 * in production.
 */
#ifndef SLUICE_RUNTIME_WORKER_HOOKS_H
#define SLUICE_RUNTIME_WORKER_HOOKS_H

#include <sluice/export.h>
#include <sluice/flow.h>

enum sluice__worker_hook_point {
	SLUICE__WH_TAKEN = 1,
	SLUICE__WH_HANDLED = 2,
	SLUICE__WH_CONCLUDING = 3,
	SLUICE__WH_PUBLISHING = 4,
};

/* point: enum sluice__worker_hook_point; step, worker: who (worker: the
 * slot index over the flow); descs[0..n): at TAKEN, the descriptors taken
 * (items NULL); items[0..n): at the other points, the batch (at CONCLUDING,
 * items[0] is the task being concluded, n = 1). */
typedef void (*sluice__worker_hook_fn)(unsigned point, uint32_t step, uint32_t worker,
				       const sluice_desc_t *descs, const sluice_item_t *items,
				       unsigned n);

extern sluice__worker_hook_fn sluice__worker_test_hook;

/* FOR TESTS ONLY: sets (or, with NULL, clears) the hook of this process;
 * workers forked afterwards inherit it. */
SLUICE_EXTERN void sluice__worker_set_test_hook(sluice__worker_hook_fn fn);

#endif
