/* A worker killed while it holds a task: the supervisor notices at once,
 * reclaims its blocks, completes the task with WORKER_DIED (one run
 * allowed) or runs it again (two allowed: the retry's attempt is 1, and
 * the client sees it), and restarts the worker; the step's other worker
 * goes on meanwhile. A step whose workers die fail_deaths times within its
 * window fails: its live workers are killed, nothing of it restarts, and
 * what is queued for it completes with STEP_FAILED. Nothing hangs, nothing
 * leaks, no process is left. */
#include "runtime/flow_test.h"

struct state {
	_Atomic int32_t holder; /* pid of the worker sleeping on a task */
};
static struct state *sh;

/* Payload 1: make a result block, then sleep until killed; on a retry
 * (attempt 1) return normally. */
static int h_maybe_hang(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = test_payload_u64(&items[i]);
		if (!test_result_u64(&items[i], x + 100 + items[i].attempt))
			sluice_item_fail(&items[i], "no block");
		if (x == 1 && items[i].attempt == 0) {
			atomic_store(&sh->holder, (int32_t)getpid());
			for (;;)
				pause();
		}
	}
	return 0;
}

static pid_t hang_one(sluice_flow_t *f, sluice_task_t **out)
{
	atomic_store(&sh->holder, 0);
	*out = test_task_u64(f, 1);
	CHECK_OK(sluice_task_submit(f, *out, SEC));
	TEST_WAIT_FOR(atomic_load(&sh->holder) != 0, 60, "a worker holds the task");
	return atomic_load(&sh->holder);
}

static void expect(sluice_flow_t *f, sluice_task_t *t, unsigned status, const char *words)
{
	test_wait_task(f, t);
	printf("task %llu: %s (attempt %u): %s\n", (unsigned long long)t->user,
	       sluice_task_status_name(t->status), t->attempt, t->message);
	CHECK(t->status == status);
	CHECK(strstr(t->message, words) != NULL);
	CHECK_OK(sluice_task_release(f, t));
}

static sluice_flow_t *make(const char *name, uint32_t max_attempts, uint32_t fail_deaths)
{
	sluice_step_t s = test_step("fragile", h_maybe_hang, 2, 1);
	s.max_attempts = max_attempts;
	s.restart_delay_ns = 20 * MSEC;
	s.fail_deaths = fail_deaths;
	s.fail_window_ns = 60 * SEC;
	sluice_flow_t *f = test_flow(name, &s, 1, 64);
	test_start(f);
	return f;
}

static void finish(sluice_flow_t *f, pid_t *seen, unsigned nseen)
{
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	test_check_gone(pids, np);
	for (unsigned i = 0; i < nseen; i++)
		CHECK(test_pid_gone(seen[i]));
	/* The dead workers' result blocks were reclaimed. */
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
}

int main(void)
{
	sh = test_shared(sizeof(*sh));

	/* One run allowed: the task ends WORKER_DIED, the worker restarts. */
	sluice_flow_t *f = make("death", 1, 5);
	pid_t first = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	sluice_task_t *t;
	pid_t victim = hang_one(f, &t);
	CHECK(kill(victim, SIGKILL) == 0);
	expect(f, t, SLUICE_TASK_WORKER_DIED, "killed by signal 9");
	CHECK(t->attempt == 0);
	/* The supervisor counts once its recovery is done: maybe after the
	 * completion reached us. */
	TEST_WAIT_FOR(test_stats(f, 0).worker_died == 1, 30, "the death is counted");
	CHECK(test_stats(f, 0).worker_deaths == 1);
	/* The other worker still serves, restart or not. */
	t = test_task_u64(f, 5);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_OK && test_task_result_u64(t) == 105);
	CHECK_OK(sluice_task_release(f, t));
	/* And the dead one comes back. */
	TEST_WAIT_FOR(test_stats(f, 0).restarts == 1 && test_stats(f, 0).workers_live == 2, 30,
		      "the worker restarted");
	pid_t now0 = (pid_t)sluice_flow_worker_pid(f, 0, 0), now1 = (pid_t)sluice_flow_worker_pid(f, 0, 1);
	CHECK(now0 != victim && now1 != victim);
	printf("worker restarted: %d -> %d\n", victim, now0 == first ? now1 : now0);
	pid_t seen[4] = {victim};
	finish(f, seen, 1);

	/* Two runs allowed: the retry finishes it, attempt 1, on whichever
	 * worker gets it. */
	f = make("retry", 2, 5);
	victim = hang_one(f, &t);
	CHECK(kill(victim, SIGKILL) == 0);
	test_wait_task(f, t);
	printf("task 1: %s (attempt %u)\n", sluice_task_status_name(t->status), t->attempt);
	CHECK(t->status == SLUICE_TASK_OK && t->attempt == 1);
	CHECK(test_task_result_u64(t) == 1 + 100 + 1);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(test_stats(f, 0).retried == 1, 30, "the retry is counted");
	CHECK(test_stats(f, 0).worker_died == 0);
	seen[0] = victim;
	finish(f, seen, 1);

	/* fail_deaths 2: the second death fails the step. Its other worker
	 * is killed, queued tasks fail, nothing restarts. */
	f = make("fail", 1, 2);
	victim = hang_one(f, &t);
	CHECK(kill(victim, SIGKILL) == 0);
	expect(f, t, SLUICE_TASK_WORKER_DIED, "killed by signal 9");
	seen[0] = victim;
	seen[1] = hang_one(f, &t);
	CHECK(kill(seen[1], SIGKILL) == 0);
	test_wait_task(f, t);
	printf("task 1: %s: %s\n", sluice_task_status_name(t->status), t->message);
	CHECK(t->status == SLUICE_TASK_WORKER_DIED || t->status == SLUICE_TASK_STEP_FAILED);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(test_stats(f, 0).failed == 1 && test_stats(f, 0).workers_live == 0, 30,
		      "the step failed and its workers are gone");
	t = test_task_u64(f, 6);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	expect(f, t, SLUICE_TASK_STEP_FAILED, "failed");
	sluice_step_stats_t st = test_stats(f, 0);
	printf("deaths %u, restarts %u\n", st.worker_deaths, st.restarts);
	CHECK(st.worker_deaths >= 2);
	for (unsigned k = 0; k < 2; k++)
		seen[2 + k] = (pid_t)sluice_flow_worker_pid(f, 0, k);
	finish(f, seen, 4);
	printf("ok\n");
	return TEST_PASS;
}
