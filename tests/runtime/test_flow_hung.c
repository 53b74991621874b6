/* Hung workers: a handler stuck in an endless loop holds a task past its
 * step's task timeout plus the hung grace; the supervisor kills the worker
 * and handles it as dead: the task is run again (two runs allowed: the
 * retry's attempt is 1 and it finishes) or ends with TIMEOUT (one run).
 * The kill is logged, counted, and the worker restarted. */
#include "runtime/flow_test.h"

/* attempt 0: loop for ever (burning CPU, as a real hang would); later
 * attempts: x + 1. */
static int h_hang_once(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (items[i].attempt == 0) {
			volatile uint64_t spin = 0;
			for (;;)
				spin++;
		}
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

static sluice_flow_t *make(const char *name, uint32_t max_attempts)
{
	sluice_step_t s = test_step("spin", h_hang_once, 1, 1);
	s.task_timeout_ns = 50 * MSEC;
	s.hung_grace_ns = 100 * MSEC;
	s.max_attempts = max_attempts;
	s.restart_delay_ns = 5 * MSEC;
	sluice_flow_t *f = test_flow(name, &s, 1, 16);
	test_start(f);
	return f;
}

static void finish(sluice_flow_t *f, pid_t hung)
{
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK(test_pid_gone(hung));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
}

int main(void)
{
	/* Two runs: killed at about 150 ms, retried, done. */
	sluice_flow_t *f = make("hung-retry", 2);
	pid_t first = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	sluice_task_t *t = test_task_u64(f, 41);
	uint64_t t0 = test_now_ns();
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	printf("task: %s (attempt %u) after %.0f ms: %s\n", sluice_task_status_name(t->status),
	       t->attempt, (test_now_ns() - t0) / 1e6, t->message);
	CHECK(t->status == SLUICE_TASK_OK && t->attempt == 1 && test_task_result_u64(t) == 42);
	/* Not before its timeout and grace: the supervisor waits them out. */
	CHECK(test_now_ns() - t0 >= 150 * MSEC);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(test_stats(f, 0).retried == 1, 30, "the retry is counted");
	sluice_step_stats_t st = test_stats(f, 0);
	printf("hung kills %u, deaths %u, retried %llu, restarts %u\n", st.hung_kills,
	       st.worker_deaths, (unsigned long long)st.retried, st.restarts);
	CHECK(st.hung_kills == 1 && st.worker_deaths == 1);
	CHECK(test_pid_gone(first) || (pid_t)sluice_flow_worker_pid(f, 0, 0) != first);
	finish(f, first);

	/* One run: the task ends TIMEOUT (from the supervisor, or from the
	 * client's own deadline if that came first), the worker is killed
	 * all the same. */
	f = make("hung-timeout", 1);
	first = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	t = test_task_u64(f, 7);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	printf("task: %s (attempt %u): %s\n", sluice_task_status_name(t->status), t->attempt,
	       t->message);
	CHECK(t->status == SLUICE_TASK_TIMEOUT);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(test_stats(f, 0).hung_kills == 1 && test_stats(f, 0).worker_died == 1, 30,
		      "the hung worker is killed");
	/* A new worker serves. */
	TEST_WAIT_FOR(test_stats(f, 0).workers_live == 1 && test_stats(f, 0).restarts == 1, 30,
		      "the worker restarted");
	finish(f, first);
	printf("ok\n");
	return TEST_PASS;
}
