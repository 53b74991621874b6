/* Fault injection: a worker is parked at each point of its path and
 * SIGKILLed there, at each step of a 2-step flow; every task must end
 * exactly once, retried or reported as 'worker died', never lost, never
 * run twice at one attempt, and no block may leak.
 *
 * The points (runtime/worker_hooks.h, queues/ring_hooks.h):
 *   RING        the intent record of a take is written, its CAS not made:
 *               the descriptors are still on the ring
 *   TAKEN       the batch is off the ring (CAS made), nothing claimed
 *   HANDLER     inside handle(): every task of the batch HELD
 *   HANDLED     handle() returned, nothing concluded
 *   CONCLUDING  the first task's conclusion half done (blocks handed over,
 *               desc rewritten, outgoing copy recorded; its CAS not made)
 *   PUBLISHING  half the batch moved on (CAS made, not on its ring), the
 *               rest HELD
 *
 * Steps: "a" makes x + 1 in a new block; "b" makes 2 * (x + 1) in a new
 * block, replacing a's (so a death in b's conclusion must give a's block
 * back). One worker each, restarted after 5 ms: a task taken back or
 * retried waits for the new one. Each case submits one batch of BATCH
 * tasks in one publication, parks the worker of the chosen step at the
 * chosen point, kills it, and checks every task's end, the handlers' run
 * records and the blocks. Run with max_attempts 2 (every task ends OK),
 * then a few cases with max_attempts 1 (held tasks end WORKER_DIED). */
#include "runtime/flow_test.h"
#include "runtime/worker_hooks.h"
#include "queues/ring_hooks.h"

#define BATCH 4u
#define MAX_TASKS 4096u

enum point {
	P_RING = 1,
	P_TAKEN,
	P_HANDLER,
	P_HANDLED,
	P_CONCLUDING,
	P_PUBLISHING,
	P_COUNT,
};
static const char *point_name[P_COUNT] = {
	[P_RING] = "ring (intent, no CAS)", [P_TAKEN] = "taken",
	[P_HANDLER] = "in the handler",     [P_HANDLED] = "handled",
	[P_CONCLUDING] = "concluding",      [P_PUBLISHING] = "publishing",
};

struct shared {
	_Atomic uint32_t armed;      /* 1: the next worker reaching (point, step) parks */
	_Atomic uint32_t point;
	_Atomic uint32_t step;
	_Atomic int32_t parked;      /* pid of the parked worker */
	/* Handler entries per task, step and attempt. */
	_Atomic uint8_t runs[MAX_TASKS][2][4];
};
static struct shared *sh;

static void park_if_armed(unsigned point, uint32_t step)
{
	uint32_t one = 1;
	if (atomic_load(&sh->point) != point || atomic_load(&sh->step) != step ||
	    !atomic_compare_exchange_strong(&sh->armed, &one, 0))
		return;
	atomic_store(&sh->parked, (int32_t)getpid());
	for (;;)
		pause();
}

static void worker_hook(unsigned point, uint32_t step, uint32_t worker, const sluice_desc_t *descs,
			const sluice_item_t *items, unsigned n)
{
	switch (point) {
	case SLUICE__WH_TAKEN:
		park_if_armed(P_TAKEN, step);
		break;
	case SLUICE__WH_HANDLED:
		park_if_armed(P_HANDLED, step);
		break;
	case SLUICE__WH_CONCLUDING:
		park_if_armed(P_CONCLUDING, step);
		break;
	case SLUICE__WH_PUBLISHING:
		park_if_armed(P_PUBLISHING, step);
		break;
	}
}

static void ring_hook(const sluice_ring_intent_t *intent, const sluice_desc_t *d, unsigned n)
{
	/* Only workers take with an intent record; the step is in the task
	 * descriptors (not in a pill). */
	if (n > 0 && d[0].slot != UINT32_MAX)
		park_if_armed(P_RING, d[0].step);
}

static void record(const sluice_item_t *it, uint32_t step)
{
	uint64_t id = it->user;
	if (id < MAX_TASKS && it->attempt < 4)
		atomic_fetch_add(&sh->runs[id][step][it->attempt], 1);
}

static int h_a(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		record(&items[i], 0);
	park_if_armed(P_HANDLER, 0);
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	return 0;
}

static int h_b(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		record(&items[i], 1);
	park_if_armed(P_HANDLER, 1);
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
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

static uint64_t next_id;

/* One case: BATCH tasks, the worker of `step` parked at `point` and
 * killed. */
static void one_case(sluice_flow_t *f, unsigned point, uint32_t step, uint32_t max_attempts)
{
	sluice_task_t *t[BATCH];
	uint64_t id0 = next_id;
	for (unsigned i = 0; i < BATCH; i++) {
		t[i] = test_task_u64(f, 1000 + next_id);
		t[i]->user = next_id++;
	}
	atomic_store(&sh->parked, 0);
	atomic_store(&sh->point, point);
	atomic_store(&sh->step, step);
	atomic_store(&sh->armed, 1);
	uint32_t deaths = test_stats(f, step).worker_deaths;
	CHECK_RC(sluice_task_submit_many(f, t, BATCH, 10 * SEC), (int)BATCH);
	TEST_WAIT_FOR(atomic_load(&sh->parked) != 0, 30, "a worker parks at the point");
	pid_t victim = atomic_load(&sh->parked);
	CHECK(kill(victim, SIGKILL) == 0);

	unsigned ok = 0, died = 0, retried = 0;
	for (unsigned i = 0; i < BATCH; i++) {
		test_wait_task(f, t[i]);
		uint64_t id = t[i]->user, x = 1000 + id;
		if (t[i]->status == SLUICE_TASK_OK) {
			CHECK(test_task_result_u64(t[i]) == 2 * (x + 1));
			ok++;
		} else if (t[i]->status == SLUICE_TASK_WORKER_DIED) {
			CHECK(strstr(t[i]->message, "killed by signal 9") != NULL);
			CHECK(strstr(t[i]->message, "run 1 of 1") != NULL);
			died++;
		} else {
			fprintf(stderr, "FAIL: task %llu: %s: %s\n", (unsigned long long)id,
				sluice_task_status_name(t[i]->status), t[i]->message);
			exit(TEST_FAIL);
		}
		/* Never two runs at one attempt; a later attempt only after an
		 * earlier one. */
		for (uint32_t s = 0; s < 2; s++) {
			for (uint32_t a = 0; a < 4; a++) {
				unsigned r = atomic_load(&sh->runs[id][s][a]);
				if (r > 1) {
					fprintf(stderr, "FAIL: task %llu ran %u times at step %u attempt %u\n",
						(unsigned long long)id, r, s, a);
					exit(TEST_FAIL);
				}
				if (a > 0 && r == 1)
					CHECK(atomic_load(&sh->runs[id][s][a - 1]) == 1);
				if (a >= max_attempts)
					CHECK(r == 0);
			}
			retried += atomic_load(&sh->runs[id][s][1]);
		}
		if (t[i]->status == SLUICE_TASK_OK)
			CHECK(atomic_load(&sh->runs[id][1][t[i]->attempt]) == 1);
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	/* Every task came back once: the flow holds none of them any more,
	 * and every block is free again (the dead worker's were reclaimed,
	 * the client's freed at release). */
	TEST_WAIT_FOR(test_stats(f, step).worker_deaths == deaths + 1, 30, "the death is counted");
	TEST_WAIT_FOR(test_blocks_in_use(f) == 0, 30, "every block is free");
	printf("%-24s step %u, %u run(s): tasks %llu..%llu: %u ok, %u worker died, %u retried "
	       "(pid %d killed)\n",
	       point_name[point], step, max_attempts, (unsigned long long)id0,
	       (unsigned long long)next_id - 1, ok, died, retried, victim);
	CHECK(ok + died == BATCH);
	if (max_attempts > 1)
		CHECK(died == 0);
	/* Which tasks must have been retried: the ones the worker held. */
	bool held = point == P_HANDLER || point == P_HANDLED || point == P_CONCLUDING ||
		    point == P_PUBLISHING;
	if (max_attempts > 1 && held)
		CHECK(retried >= (point == P_PUBLISHING ? BATCH / 2 : BATCH));
	if (!held)
		CHECK(retried == 0 && died == 0); /* never ran: taken back, same attempt */
	if (max_attempts == 1 && held)
		CHECK(died >= (point == P_PUBLISHING ? BATCH / 2 : BATCH));
}

static sluice_flow_t *make(uint32_t max_attempts)
{
	sluice_step_t steps[2] = {
		test_step("a", h_a, 1, BATCH),
		test_step("b", h_b, 1, BATCH),
	};
	for (int i = 0; i < 2; i++) {
		steps[i].max_attempts = max_attempts;
		steps[i].restart_delay_ns = 5 * MSEC;
		steps[i].restart_max_delay_ns = 5 * MSEC;
		steps[i].fail_deaths = SLUICE_STEP_NEVER_FAIL;
		/* A batch published at once is taken at once; the timeout
		 * only matters if the worker wakes between two tasks. */
		steps[i].batch_timeout_ns = 50 * MSEC;
	}
	sluice_flow_t *f = test_flow("recovery", steps, 2, 64);
	test_start(f);
	return f;
}

static void finish(sluice_flow_t *f)
{
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	for (uint32_t s = 0; s < 2; s++) {
		sluice_step_stats_t st = test_stats(f, s);
		printf("step %u: %u deaths, %u restarts, %llu taken back or sent on, %llu retried, "
		       "%llu worker died, %llu stale copies dropped\n",
		       s, st.worker_deaths, st.restarts, (unsigned long long)st.requeued,
		       (unsigned long long)st.retried, (unsigned long long)st.worker_died,
		       (unsigned long long)st.bad_descriptors);
	}
	sluice_flow_destroy(f);
}

int main(void)
{
	sh = test_shared(sizeof(*sh));
	sluice__worker_set_test_hook(worker_hook);
	sluice__ring_set_dequeue_test_hook(ring_hook);

	sluice_flow_t *f = make(2);
	for (uint32_t step = 0; step < 2; step++)
		for (unsigned p = P_RING; p < P_COUNT; p++)
			one_case(f, p, step, 2);
	finish(f);

	f = make(1);
	for (uint32_t step = 0; step < 2; step++) {
		one_case(f, P_TAKEN, step, 1);
		one_case(f, P_HANDLER, step, 1);
		one_case(f, P_CONCLUDING, step, 1);
		one_case(f, P_PUBLISHING, step, 1);
	}
	finish(f);
	printf("ok\n");
	return TEST_PASS;
}
