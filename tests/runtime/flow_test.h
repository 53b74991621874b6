/* Helpers for the flow tests: real flows, real worker processes.
 *
 * Handlers run in forked workers, so what they want to tell the test goes
 * through an anonymous shared mapping made before sluice_flow_start (the
 * workers inherit it). */
#ifndef SLUICE_TESTS_RUNTIME_FLOW_TEST_H
#define SLUICE_TESTS_RUNTIME_FLOW_TEST_H

#define _GNU_SOURCE
#include "common/test.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/pidfd.h>

#include <sluice/flow.h>
#include "runtime/flow_internal.h"

#define SEC UINT64_C(1000000000)
#define MSEC UINT64_C(1000000)

/* Zeroed memory shared with every process forked after this call. */
static inline void *test_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

/* True when no process has this pid any more (not even a zombie). */
static inline bool test_pid_gone(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

static inline sluice_step_t test_step(const char *name,
				      int (*handle)(void *, sluice_item_t *, unsigned),
				      uint32_t nprocs, uint32_t batch_size)
{
	sluice_step_t s = {
		.size_of = sizeof(s),
		.name = name,
		.handler = {.handle = handle},
		.nprocs = nprocs,
		.batch_size = batch_size,
	};
	return s;
}

static inline sluice_flow_t *test_flow(const char *name, const sluice_step_t *steps,
				       uint32_t nsteps, uint32_t max_tasks)
{
	sluice_flow_opts_t o = {
		.size_of = sizeof(o),
		.name = name,
		.nsteps = nsteps,
		.steps = steps,
		.max_tasks = max_tasks,
		.stop_grace_ns = 2 * SEC,
		/* Tests run side by side under the same names: no control
		 * socket (the attach tests make their own flows). */
		.flags = SLUICE_FLOW_UNLISTED,
	};
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: create %s: %s: %s\n", name, sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	return f;
}

static inline void test_start(sluice_flow_t *f)
{
	int rc = sluice_flow_start(f, 30 * SEC * test_slowdown());
	if (rc != 0) {
		fprintf(stderr, "FAIL: start: %s: %s\n", sluice_err_name(rc), sluice_flow_error(f));
		exit(TEST_FAIL);
	}
}

/* Every pid of the flow's processes (supervisor first), for checking
 * after stop/destroy that none is left. Returns the count. */
static inline unsigned test_flow_pids(const sluice_flow_t *f, pid_t *out, unsigned max)
{
	unsigned n = 0;
	if (n < max)
		out[n++] = (pid_t)sluice_flow_supervisor_pid(f);
	for (uint32_t s = 0; s < f->nsteps; s++)
		for (uint32_t k = 0; k < f->steps[s].nprocs && n < max; k++)
			out[n++] = (pid_t)sluice_flow_worker_pid(f, s, k);
	return n;
}

/* The supervisor was reaped by us and no process of the flow is left. */
static inline void test_check_gone(const pid_t *pids, unsigned n)
{
	CHECK(n >= 1);
	int st;
	/* The supervisor is our child: reaped means waitpid knows it not. */
	errno = 0;
	CHECK(waitpid(pids[0], &st, WNOHANG) == -1 && errno == ECHILD);
	for (unsigned i = 0; i < n; i++) {
		if (!test_pid_gone(pids[i])) {
			fprintf(stderr, "FAIL: process %d of the flow is still there\n", pids[i]);
			exit(TEST_FAIL);
		}
	}
}

/* Blocks in use, over every size class of the flow's allocator. */
static inline uint64_t test_blocks_in_use(const sluice_flow_t *f);

/* Stops a started flow (everything drained within 10 s), checks that no
 * block is left in use, destroys it, and checks that none of its
 * processes is left. */
static inline void test_stop_clean(sluice_flow_t *f)
{
	pid_t pids[SLUICE_FLOW_MAX_WORKERS + 1];
	unsigned np = test_flow_pids(f, pids, SLUICE_FLOW_MAX_WORKERS + 1);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	test_check_gone(pids, np);
}

/* Blocks in use, over every size class of the flow's allocator. */
static inline uint64_t test_blocks_in_use(const sluice_flow_t *f)
{
	uint64_t n = 0;
	sluice_blocks_stats_t st;
	for (uint32_t c = 0; sluice_blocks_stats(&f->blocks, c, &st) == 0; c++)
		n += st.in_use;
	return n;
}

/* Sends `sig` to the process now in worker slot w (an index over the
 * flow's slots), if one runs there; returns its pid, or 0 when the slot has
 * none. Safe against pid reuse: the supervisor zeroes live_pid before it
 * reaps, so a pid read again after the pidfd was opened names the same,
 * unreaped process (the fence pairs with the supervisor's between its store
 * and waitid). */
static inline pid_t test_signal_slot(const sluice_flow_t *f, uint32_t w, int sig)
{
	pid_t pid = (pid_t)atomic_load(&f->wslots[w].live_pid);
	if (pid <= 0)
		return 0;
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return 0;
	atomic_thread_fence(memory_order_seq_cst);
	pid_t again = (pid_t)atomic_load(&f->wslots[w].live_pid);
	int rc = again == pid ? pidfd_send_signal(fd, sig, NULL, 0) : -1;
	close(fd);
	return rc == 0 ? pid : 0;
}

/* Polls `cond` every millisecond for up to `secs` seconds (scaled by the
 * slowdown); fails the test with `what` if it never holds. */
#define TEST_WAIT_FOR(cond, secs, what)                                                  \
	do {                                                                             \
		uint64_t until_ = test_now_ns() + (uint64_t)(secs) * SEC * test_slowdown(); \
		while (!(cond)) {                                                        \
			if (test_now_ns() > until_) {                                    \
				fprintf(stderr, "FAIL %s:%d: never: %s\n", __FILE__, __LINE__, \
					(what));                                         \
				exit(TEST_FAIL);                                         \
			}                                                                \
			usleep(1000);                                                    \
		}                                                                        \
	} while (0)

static inline sluice_step_stats_t test_stats(const sluice_flow_t *f, uint32_t step)
{
	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, step, &st));
	return st;
}

/* Allocates a task with an 8-byte payload holding v. */
static inline sluice_task_t *test_task_u64(sluice_flow_t *f, uint64_t v)
{
	sluice_task_t *t = NULL;
	CHECK_OK(sluice_task_alloc(f, sizeof(uint64_t), &t));
	CHECK(t->payload != NULL && t->payload_cap >= sizeof(uint64_t));
	memcpy(t->payload, &v, sizeof(v));
	t->payload_len = sizeof(v);
	t->user = v;
	return t;
}

static inline uint64_t test_payload_u64(const sluice_item_t *it)
{
	uint64_t v = 0;
	if (it->payload != NULL && it->payload_len == sizeof(v))
		memcpy(&v, it->payload, sizeof(v));
	return v;
}

/* Writes v as the item's result in a new block. Returns false if no
 * block could be had. */
static inline bool test_result_u64(sluice_item_t *it, uint64_t v)
{
	void *p = sluice_item_result_alloc(it, sizeof(v));
	if (p == NULL)
		return false;
	memcpy(p, &v, sizeof(v));
	it->result_len = sizeof(v);
	return true;
}

static inline uint64_t test_task_result_u64(const sluice_task_t *t)
{
	uint64_t v = 0;
	CHECK(t->result != NULL && t->result_len == sizeof(v));
	memcpy(&v, t->result, sizeof(v));
	return v;
}

/* Waits for t (generous timeout), failing the test on a wait error. */
static inline void test_wait_task(sluice_flow_t *f, sluice_task_t *t)
{
	int rc = sluice_task_wait(f, t, 60 * SEC * test_slowdown());
	if (rc != 0) {
		fprintf(stderr, "FAIL: wait for task %llu: %s\n", (unsigned long long)t->user,
			sluice_err_name(rc));
		exit(TEST_FAIL);
	}
}

#endif
