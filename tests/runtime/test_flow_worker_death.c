/* A worker killed while it holds a task: the supervisor notices at once,
 * reclaims its blocks and completes the task with WORKER_DIED (no restart
 * in this slice); the step's other worker goes on; once a step has no
 * live worker, what is queued for it completes with STEP_FAILED. Nothing
 * hangs, nothing leaks, no process is left. */
#include "runtime/flow_test.h"

struct state {
	_Atomic int32_t holder; /* pid of the worker sleeping on a task */
};
static struct state *sh;

/* Payload 1: make a result block, then sleep until killed. */
static int h_maybe_hang(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = test_payload_u64(&items[i]);
		if (!test_result_u64(&items[i], x + 100))
			sluice_item_fail(&items[i], "no block");
		if (x == 1) {
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
	pid_t pid;
	for (int i = 0; (pid = atomic_load(&sh->holder)) == 0; i++) {
		CHECK(i < 60000);
		usleep(1000);
	}
	return pid;
}

static void expect(sluice_flow_t *f, sluice_task_t *t, unsigned status, const char *words)
{
	test_wait_task(f, t);
	printf("task %llu: %s: %s\n", (unsigned long long)t->user,
	       sluice_task_status_name(t->status), t->message);
	CHECK(t->status == status);
	CHECK(strstr(t->message, words) != NULL);
	CHECK_OK(sluice_task_release(f, t));
}

int main(void)
{
	sh = test_shared(sizeof(*sh));
	sluice_step_t s = test_step("fragile", h_maybe_hang, 2, 1);
	sluice_flow_t *f = test_flow("death", &s, 1, 64);
	test_start(f);
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);

	sluice_task_t *t;
	pid_t victim = hang_one(f, &t);
	CHECK(kill(victim, SIGKILL) == 0);
	expect(f, t, SLUICE_TASK_WORKER_DIED, "killed by signal 9");
	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	CHECK(st.worker_deaths == 1 && st.workers_live == 1);

	/* The other worker still serves. */
	t = test_task_u64(f, 5);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_OK && test_task_result_u64(t) == 105);
	CHECK_OK(sluice_task_release(f, t));

	/* Kill the last one: the step fails, and so do its queued tasks. */
	victim = hang_one(f, &t);
	CHECK(kill(victim, SIGKILL) == 0);
	expect(f, t, SLUICE_TASK_WORKER_DIED, "killed by signal 9");
	t = test_task_u64(f, 6);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	expect(f, t, SLUICE_TASK_STEP_FAILED, "no live worker");
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	CHECK(st.worker_deaths == 2 && st.workers_live == 0);

	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	/* The dead workers' result blocks were reclaimed. */
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
