/* The handlers of tests/runtime/test_flow_chaos.c, shared with the worker
 * program that runs them in an exec'd step (tests/runtime/flow_exec_worker.c).
 * Step a: result = x + 1; step b: result = 2 * a's. Every run is counted in
 * memory shared with the test; in the segv and exit modes the handlers die
 * on some tasks (see test_flow_chaos.c). */
#ifndef SLUICE_TESTS_RUNTIME_CHAOS_HANDLERS_H
#define SLUICE_TESTS_RUNTIME_CHAOS_HANDLERS_H

#include "runtime/exec_test.h"

#include <stdatomic.h>

#define MAX_IDS (1u << 20)
#define ATTEMPTS 3u
#define POISON(id) ((id) % 5003 == 5)

enum mode { KILL, SEGV, EXIT };

struct shared {
	_Atomic uint32_t mode;            /* enum mode: set by the test before start */
	_Atomic uint64_t last_crash;      /* CLOCK_MONOTONIC of the last handler crash */
	_Atomic uint8_t runs[MAX_IDS][2][ATTEMPTS + 1];
};
/* The test's mapping, inherited by forked workers; an exec'd worker maps
 * it in chaos_on_start. */
static struct shared *sh;

static inline void die_now(void)
{
	if (atomic_load(&sh->mode) == SEGV) {
		/* The kernel's verdict, not a sanitizer's report. The address
		 * is not NULL, so UBSan's null check lets the store through. */
		signal(SIGSEGV, SIG_DFL);
		volatile uintptr_t bad = 16;
		*(volatile int *)bad = 1;
	}
	exit(7);
}

static inline bool should_die(const sluice_item_t *it, uint32_t step)
{
	if (atomic_load(&sh->mode) == KILL)
		return false;
	uint64_t id = it->user;
	if (POISON(id) && step == 1)
		return true;
	if (id % 97 != 3 + step || it->attempt != 0)
		return false;
	uint64_t now = test_now_ns(), last = atomic_load(&sh->last_crash);
	return now - last >= 50 * MSEC && atomic_compare_exchange_strong(&sh->last_crash, &last, now);
}

/* Some work per task, so that most kills land inside a handler. */
static inline void work(void)
{
	uint64_t until = test_now_ns() + 20000;
	while (test_now_ns() < until)
		sl_cpu_relax();
}

static inline void record(const sluice_item_t *it, uint32_t step)
{
	work();
	if (it->user < MAX_IDS && it->attempt <= ATTEMPTS)
		atomic_fetch_add(&sh->runs[it->user][step][it->attempt], 1);
}

static inline int h_a(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		record(&items[i], 0);
		if (should_die(&items[i], 0))
			die_now();
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "a: no block");
	}
	return 0;
}

static inline int h_b(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		record(it, 1);
		if (should_die(it, 1))
			die_now();
		uint64_t r;
		if (it->result == NULL || it->result_len != 8) {
			sluice_item_fail(it, "b: no result from a");
			continue;
		}
		memcpy(&r, it->result, 8);
		if (!test_result_u64(it, 2 * r))
			sluice_item_fail(it, "b: no block");
	}
	return 0;
}

/* on_start of the exec'd workers: the test's memory, through the memfd it
 * named in the environment. */
static inline int chaos_on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	if (sh == NULL)
		sh = test_exec_shared_attach(sizeof(*sh));
	if (sh == NULL) {
		snprintf(msg, len, "no shared memory from the test (%s)", TEST_SHARED_FD_ENV);
		return SLUICE_EINVAL;
	}
	return 0;
}

#endif
