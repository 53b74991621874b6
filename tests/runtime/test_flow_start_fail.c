/* Start failures: an on_start that fails, one that hangs past the start
 * timeout, one whose worker dies. Each fails sluice_flow_start with a
 * code and a message naming the step and the worker, and leaves no
 * process behind: the supervisor is reaped, every worker is gone. */
#include "runtime/flow_test.h"

#define MAXW 16

/* Every worker writes its pid here from on_start. */
struct pids {
	_Atomic int32_t pid[MAXW];
	_Atomic uint32_t stopped;
};
static struct pids *shared;

enum mode { FAIL, HANG, DIE, FINE };

static int h_noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

/* arg: the mode for worker 1 of its step; other workers start fine. */
static int on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	atomic_store(&shared->pid[w->worker], (int32_t)getpid());
	if (w->index != 1)
		return 0;
	switch ((enum mode)(uintptr_t)arg) {
	case FAIL:
		snprintf(msg, len, "model.bin missing in %s", w->step_name);
		return SLUICE_ENOENT;
	case HANG:
		for (;;)
			pause();
	case DIE:
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	case FINE:
		break;
	}
	return 0;
}

static void on_stop(void *arg, const sluice_worker_info_t *w)
{
	atomic_fetch_add(&shared->stopped, 1);
}

/* Starts a flow whose step "load" (2nd of 2, 3 workers) has mode m for
 * its worker 1; expects code `want` and a message with every word. */
static void attempt(enum mode m, uint64_t timeout_ns, int want, const char *w1, const char *w2)
{
	memset(shared, 0, sizeof(*shared));
	sluice_step_t steps[2] = {
		test_step("prep", h_noop, 2, 1),
		test_step("load", h_noop, 3, 1),
	};
	for (int i = 0; i < 2; i++) {
		steps[i].handler.on_start = on_start;
		steps[i].handler.on_stop = on_stop;
		steps[i].handler.arg = (void *)(uintptr_t)(i == 1 ? m : FINE);
	}
	sluice_flow_t *f = test_flow("startfail", steps, 2, 16);
	uint64_t t0 = test_now_ns();
	int rc = sluice_flow_start(f, timeout_ns);
	double ms = (test_now_ns() - t0) / 1e6;
	const char *err = sluice_flow_error(f);
	printf("mode %d: %s after %.0f ms: %s\n", m, sluice_err_name(rc), ms, err);
	if (rc != want || strstr(err, w1) == NULL || strstr(err, w2) == NULL) {
		fprintf(stderr, "FAIL: want %s with '%s' and '%s'\n", sluice_err_name(want), w1, w2);
		exit(TEST_FAIL);
	}
	/* Nothing left: the supervisor reaped, every worker that ran gone. */
	pid_t pids[1 + MAXW];
	unsigned n = 0;
	pids[n++] = (pid_t)sluice_flow_supervisor_pid(f);
	CHECK(pids[0] > 0);
	for (uint32_t i = 0; i < 5; i++) {
		/* The pid the supervisor recorded at fork; the worker wrote the
		 * same from on_start, if it got that far. */
		pid_t p = (pid_t)sluice_flow_worker_pid(f, i < 2 ? 0 : 1, i < 2 ? i : i - 2);
		pid_t q = atomic_load(&shared->pid[i]);
		CHECK(p > 0 && (q == 0 || q == p));
		pids[n++] = p;
	}
	test_check_gone(pids, n);
	CHECK(atomic_load(&shared->stopped) == 0); /* killed, not stopped */

	/* The flow is unusable but safe to use and destroy. */
	CHECK_RC(sluice_flow_start(f, SEC), SLUICE_EINVAL);
	sluice_task_t *t;
	CHECK_OK(sluice_task_alloc(f, 8, &t));
	CHECK_RC(sluice_task_submit(f, t, 0), SLUICE_ESTOPPED);
	CHECK_OK(sluice_task_release(f, t));
	CHECK_OK(sluice_flow_stop(f, 0));
	sluice_flow_destroy(f);
}

int main(void)
{
	shared = test_shared(sizeof(*shared));
	uint64_t slow = test_slowdown();

	attempt(FAIL, 20 * SEC * slow, SLUICE_EWORKERSTART, "step 'load' worker 1",
		"model.bin missing in load");
	attempt(HANG, 300 * MSEC * slow, SLUICE_ETIMEDOUT, "step 'load' worker 1",
		"did not finish");
	attempt(DIE, 20 * SEC * slow, SLUICE_EWORKERSTART, "step 'load' worker 1",
		"killed by signal 9");

	/* And a flow that starts: every on_start ran, every on_stop runs. */
	memset(shared, 0, sizeof(*shared));
	sluice_step_t s = test_step("fine", h_noop, 3, 1);
	s.handler.on_start = on_start;
	s.handler.on_stop = on_stop;
	s.handler.arg = (void *)(uintptr_t)FINE;
	sluice_flow_t *f = test_flow("startok", &s, 1, 16);
	test_start(f);
	for (int i = 0; i < 3; i++)
		CHECK(atomic_load(&shared->pid[i]) == (int32_t)sluice_flow_worker_pid(f, 0, (uint32_t)i));
	CHECK_RC(sluice_flow_start(f, SEC), SLUICE_EINVAL);
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK(atomic_load(&shared->stopped) == 3);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
