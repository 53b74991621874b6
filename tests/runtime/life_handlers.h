/* The handlers of tests/runtime/test_flow_exec.c's lifecycle check, shared
 * with the worker program that runs them exec'd
 * (tests/runtime/flow_exec_worker.c):
 *
 *   pre   (forked)                     result = x + 1 in a new block
 *   life  (exec'd, handler "life")     result *= 3 in place; on_start and
 *                                      on_stop counted in shared memory
 *   post  (forked; condition "even":   result += 5 in place
 *          x even, run by life's
 *          workers by name)
 */
#ifndef SLUICE_TESTS_RUNTIME_LIFE_HANDLERS_H
#define SLUICE_TESTS_RUNTIME_LIFE_HANDLERS_H

#include "runtime/exec_test.h"

#include <stdatomic.h>

#define LIFE_FLOW "exec-life"
#define LIFE_MAXW 16

struct life_shared {
	_Atomic uint32_t started;  /* on_start calls of life's workers */
	_Atomic uint32_t stopped;  /* on_stop calls */
	_Atomic uint32_t bad_info; /* on_start saw a wrong sluice_worker_info_t */
	_Atomic uint32_t batches;  /* handle() calls */
	_Atomic int32_t pid[LIFE_MAXW]; /* by info.worker: the last process there */
};
static struct life_shared *life;

static inline uint64_t life_expected(uint64_t x)
{
	return (x + 1) * 3 + (x % 2 == 0 ? 5 : 0);
}

static inline bool life_even(void *arg, const sluice_item_t *t)
{
	return test_payload_u64(t) % 2 == 0;
}

static inline int life_pre(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "pre: no block");
	return 0;
}

static inline int life_on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	if (life == NULL)
		life = test_exec_shared_attach(sizeof(*life));
	if (life == NULL) {
		snprintf(msg, len, "no shared memory from the test (%s)", TEST_SHARED_FD_ENV);
		return SLUICE_EINVAL;
	}
	if (w->step != 1 || w->index >= 2 || w->worker >= LIFE_MAXW ||
	    strcmp(w->step_name, "life") != 0 || strcmp(w->flow_name, LIFE_FLOW) != 0)
		atomic_fetch_add(&life->bad_info, 1);
	else
		atomic_store(&life->pid[w->worker], (int32_t)getpid());
	atomic_fetch_add(&life->started, 1);
	return 0;
}

static inline int life_handle(void *arg, sluice_item_t *items, unsigned n)
{
	atomic_fetch_add(&life->batches, 1);
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t r;
		if (it->result == NULL || it->result_len != 8) {
			sluice_item_fail(it, "life: no result from pre");
			continue;
		}
		memcpy(&r, it->result, 8);
		r *= 3;
		memcpy(it->result, &r, 8);
	}
	return 0;
}

static inline void life_on_stop(void *arg, const sluice_worker_info_t *w)
{
	atomic_fetch_add(&life->stopped, 1);
}

static inline int life_post(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t r;
		if (it->result == NULL || it->result_len != 8) {
			sluice_item_fail(it, "post: no result");
			continue;
		}
		memcpy(&r, it->result, 8);
		r += 5;
		memcpy(it->result, &r, 8);
	}
	return 0;
}

#endif
