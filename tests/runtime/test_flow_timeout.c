/* Task timeouts: a handler that overruns its step's task_timeout gives its
 * caller SLUICE_TASK_TIMEOUT, whether the worker finds out (when handle()
 * returns) or the client does first (the whole-flow deadline passes while
 * it waits); a task queued past its deadline is not run at all; the late
 * result of a task timed out by the client is dropped and its blocks
 * freed; the other tasks are unaffected. */
#include "runtime/flow_test.h"

/* Payload: how many milliseconds the handler sleeps. Records what ran. */
struct seen {
	_Atomic uint32_t ran[64];
};
static struct seen *seen;

static int h_sleep(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t ms = test_payload_u64(&items[i]);
		if (items[i].user < 64)
			atomic_fetch_add(&seen->ran[items[i].user], 1);
		if (ms)
			usleep((useconds_t)(ms * 1000));
		test_result_u64(&items[i], ms);
	}
	return 0;
}

static sluice_task_t *task(sluice_flow_t *f, uint64_t id, uint64_t sleep_ms)
{
	sluice_task_t *t = test_task_u64(f, sleep_ms);
	t->user = id;
	return t;
}

static void expect(sluice_task_t *t, unsigned status)
{
	printf("task %llu: %s%s%s\n", (unsigned long long)t->user,
	       sluice_task_status_name(t->status), t->message[0] ? ": " : "", t->message);
	CHECK(t->status == status);
	if (status == SLUICE_TASK_TIMEOUT)
		CHECK(t->result == NULL && t->message[0] != '\0');
}

int main(void)
{
	seen = test_shared(sizeof(*seen));

	/* Worker-side: the handler returns after 80 ms, past its 40 ms step
	 * timeout; the client's own deadline (sum of step timeouts plus a
	 * 100 ms margin) comes later (if the machine is so loaded that it
	 * does not, the client's verdict is the same status). One worker, one
	 * task per batch. */
	sluice_step_t s = test_step("sleepy", h_sleep, 1, 1);
	s.task_timeout_ns = 40 * MSEC;
	sluice_flow_t *f = test_flow("timeout", &s, 1, 64);
	test_start(f);
	sluice_task_t *a = task(f, 1, 80);
	sluice_task_t *b = task(f, 2, 0);   /* queued behind a: past its deadline when a ends */
	sluice_task_t *batch[2] = {a, b};
	CHECK_RC(sluice_task_submit_many(f, batch, 2, 5 * SEC), 2);
	test_wait_task(f, a);
	test_wait_task(f, b);
	expect(a, SLUICE_TASK_TIMEOUT);
	expect(b, SLUICE_TASK_TIMEOUT);
	CHECK_OK(sluice_task_release(f, a));
	CHECK_OK(sluice_task_release(f, b));
	/* A quick task is fine. */
	sluice_task_t *c = task(f, 3, 0);
	CHECK_OK(sluice_task_submit(f, c, 5 * SEC));
	test_wait_task(f, c);
	expect(c, SLUICE_TASK_OK);
	CHECK(test_task_result_u64(c) == 0);
	CHECK_OK(sluice_task_release(f, c));

	/* Client-side: a handler that sleeps 1.5 s is timed out by the
	 * client's wait at about 140 ms, long before it returns. Its late
	 * result is dropped when it arrives. */
	sluice_task_t *d = task(f, 4, 1500);
	CHECK_OK(sluice_task_submit(f, d, 5 * SEC));
	uint64_t t0 = test_now_ns();
	test_wait_task(f, d);
	uint64_t waited = test_now_ns() - t0;
	expect(d, SLUICE_TASK_TIMEOUT);
	printf("client-side timeout after %.0f ms\n", waited / 1e6);
	CHECK_OK(sluice_task_release(f, d)); /* still in the worker's hands: released on arrival */

	/* Stop drains: the late result arrives and is dropped, blocks freed. */
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	sluice_task_t *out[4];
	CHECK_RC(sluice_flow_reap(f, out, 4), 0); /* d's completion was taken and dropped */
	CHECK(test_blocks_in_use(f) == 0);
	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	printf("step timeouts counted: %llu\n", (unsigned long long)st.timeouts);
	/* a overran, b was found past its deadline, d overran. */
	CHECK(st.timeouts == 3);
	CHECK(atomic_load(&seen->ran[1]) == 1 && atomic_load(&seen->ran[2]) == 0);
	CHECK(atomic_load(&seen->ran[3]) == 1 && atomic_load(&seen->ran[4]) == 1);
	/* Every task entry is free again. */
	sluice_task_t *all[64];
	for (int i = 0; i < 64; i++)
		CHECK_OK(sluice_task_alloc(f, 0, &all[i]));
	for (int i = 0; i < 64; i++)
		CHECK_OK(sluice_task_release(f, all[i]));
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
