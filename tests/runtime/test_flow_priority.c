/* Priorities: under a saturating load of normal tasks, high-priority tasks
 * overtake the normal ones queued before them, at the first step and at a
 * later one; and a flood of high tasks does not starve the normal ones: a
 * worker serves normal tasks at least once in every
 * SLUICE_FLOW_PRIORITY_BURST + 1 batches while both wait.
 *
 * Two steps, one worker each, batch_size 1. The step under test is held
 * closed (its handler waits in shared memory) while every task queues
 * there, then opened; the payload says how long each step's handler spins
 * per task. Each handler stamps the order in which its step ran the task
 * into the result (a per-step counter in shared memory). The assertions
 * are about that order, never about time. */
#include "runtime/flow_test.h"

struct work {
	uint32_t spin_us[2];
};

struct order {
	_Atomic uint64_t seq[2];
	_Atomic uint32_t closed[2]; /* 1: the step's handler waits before it runs a task */
};

static struct order *ord;

static void spin_us(uint32_t us)
{
	uint64_t until = test_now_ns() + (uint64_t)us * 1000;
	while (test_now_ns() < until)
		;
}

static int h_stamp(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		sluice_item_t *it = &items[k];
		struct work w = {{0, 0}};
		if (it->payload_len == sizeof(w))
			memcpy(&w, it->payload, sizeof(w));
		while (atomic_load(&ord->closed[it->step]))
			usleep(100);
		spin_us(w.spin_us[it->step]);
		uint64_t *r = it->result;
		if (it->step == 0) {
			r = sluice_item_result_alloc(it, 2 * sizeof(uint64_t));
			if (r == NULL) {
				sluice_item_fail(it, "no result block");
				continue;
			}
		}
		r[it->step] = atomic_fetch_add(&ord->seq[it->step], 1);
		it->result_len = 2 * sizeof(uint64_t);
	}
	return 0;
}

static sluice_task_t *task(sluice_flow_t *f, uint32_t s0, uint32_t s1, uint32_t prio, uint64_t id)
{
	sluice_task_t *t = NULL;
	CHECK_OK(sluice_task_alloc(f, sizeof(struct work), &t));
	struct work w = {{s0, s1}};
	memcpy(t->payload, &w, sizeof(w));
	t->payload_len = sizeof(w);
	t->priority = prio;
	t->user = id;
	return t;
}

static uint64_t stamp(const sluice_task_t *t, unsigned step)
{
	CHECK(t->status == SLUICE_TASK_OK);
	CHECK(t->result != NULL && t->result_len == 2 * sizeof(uint64_t));
	return ((const uint64_t *)t->result)[step];
}

#define NORMAL 1500u
#define HIGH 40u
#define MAXT (NORMAL + 3000u + 64u)

static sluice_task_t *ts[MAXT];

static void wait_all(sluice_flow_t *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		test_wait_task(f, ts[i]);
		if (ts[i]->status != SLUICE_TASK_OK) {
			fprintf(stderr, "FAIL: task %u: %s: %s\n", i,
				sluice_task_status_name(ts[i]->status), ts[i]->message);
			exit(TEST_FAIL);
		}
	}
}

static void release_all(sluice_flow_t *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(sluice_task_release(f, ts[i]));
}

/* NORMAL normal tasks queue up at `step`; then HIGH high ones join them
 * there; then the step opens. Each high task must run before all but a
 * bounded number of the normal ones. */
static void overtake(sluice_flow_t *f, unsigned step)
{
	uint32_t s0 = step == 0 ? 10 : 0, s1 = step == 1 ? 10 : 0;
	uint64_t passed0 = test_stats(f, 0).tasks;
	atomic_store(&ord->closed[step], 1);
	for (unsigned i = 0; i < NORMAL; i++)
		ts[i] = task(f, s0, s1, SLUICE_PRIORITY_NORMAL, i);
	CHECK_RC(sluice_task_submit_many(f, ts, NORMAL, 60 * SEC), (int)NORMAL);
	for (unsigned i = 0; i < HIGH; i++)
		ts[NORMAL + i] = task(f, s0, s1, SLUICE_PRIORITY_HIGH, NORMAL + i);
	CHECK_RC(sluice_task_submit_many(f, ts + NORMAL, HIGH, 60 * SEC), (int)HIGH);
	if (step == 1) /* step 0 passes them all on to step 1's queue */
		TEST_WAIT_FOR(test_stats(f, 0).tasks - passed0 >= NORMAL + HIGH, 30,
			      "step 0 passes every task on");
	/* One normal task is in the closed handler's hands. */
	uint64_t base = atomic_load(&ord->seq[step]);
	atomic_store(&ord->closed[step], 0);
	wait_all(f, NORMAL + HIGH);
	/* From `base`: the task in hand, the high tasks and the normal
	 * share (one in BURST + 1). */
	uint64_t bound = base + 1 + HIGH + HIGH / SLUICE_FLOW_PRIORITY_BURST + 1;
	uint64_t last_high = 0;
	for (unsigned i = NORMAL; i < NORMAL + HIGH; i++) {
		uint64_t s = stamp(ts[i], step);
		if (s > last_high)
			last_high = s;
	}
	unsigned normal_after = 0;
	for (unsigned i = 0; i < NORMAL; i++)
		normal_after += stamp(ts[i], step) > last_high;
	printf("step %u: the last high task ran %llu runs after the step opened (bound %llu); "
	       "%u of %u normal tasks ran after it\n",
	       step, (unsigned long long)(last_high - base), (unsigned long long)(bound - base),
	       normal_after, NORMAL);
	CHECK(last_high < bound);
	CHECK(normal_after + HIGH / SLUICE_FLOW_PRIORITY_BURST + 2 >= NORMAL);
	release_all(f, NORMAL + HIGH);
}

/* A flood of high tasks beside normal ones: the normal ones get their
 * share of the worker's batches. */
static void no_starvation(sluice_flow_t *f)
{
	const unsigned nn = 300, nh = 3000;
	for (unsigned i = 0; i < nn; i++)
		ts[i] = task(f, 5, 0, SLUICE_PRIORITY_NORMAL, i);
	for (unsigned i = 0; i < nh; i++)
		ts[nn + i] = task(f, 5, 0, SLUICE_PRIORITY_HIGH, nn + i);
	atomic_store(&ord->closed[0], 1);
	CHECK_RC(sluice_task_submit_many(f, ts, nn + nh, 60 * SEC), (int)(nn + nh));
	uint64_t base = atomic_load(&ord->seq[0]);
	atomic_store(&ord->closed[0], 0);
	wait_all(f, nn + nh);
	/* In the first 900 runs after the step opened: at least 1 in
	 * BURST + 1 normal (less the task in hand when it opened). */
	const unsigned window = 900;
	unsigned normal_in = 0, high_in = 0;
	for (unsigned i = 0; i < nn + nh; i++) {
		uint64_t s = stamp(ts[i], 0) - base;
		if (s < window) {
			if (i < nn)
				normal_in++;
			else
				high_in++;
		}
	}
	unsigned want = window / (SLUICE_FLOW_PRIORITY_BURST + 1) - 1;
	printf("flood: of the first %u runs, %u normal and %u high (want >= %u normal, and "
	       "high first)\n", window, normal_in, high_in, want);
	CHECK(normal_in >= want);
	CHECK(high_in > normal_in);
	release_all(f, nn + nh);
}

int main(void)
{
	ord = test_shared(sizeof(*ord));
	sluice_step_t steps[2] = {test_step("first", h_stamp, 1, 1), test_step("second", h_stamp, 1, 1)};
	steps[0].capacity = steps[1].capacity = 4096;
	sluice_flow_t *f = test_flow("priority", steps, 2, 8192);
	test_start(f);
	overtake(f, 0);
	overtake(f, 1);
	no_starvation(f);
	/* A priority outside the levels is refused; the task stays usable. */
	sluice_task_t *t = task(f, 0, 0, SLUICE_PRIORITY_HIGH + 1, 1);
	CHECK_RC(sluice_task_submit(f, t, SEC), SLUICE_EINVAL);
	t->priority = SLUICE_PRIORITY_NORMAL;
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_OK);
	CHECK_OK(sluice_task_release(f, t));
	test_stop_clean(f);
	printf("ok\n");
	return TEST_PASS;
}
