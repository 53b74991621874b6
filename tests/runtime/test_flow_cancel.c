/* Cancel: a queued task is taken off its step at once and no worker runs
 * it; a running one completes as cancelled when its step concludes it (the
 * handler may stop early), and runs no further step; a worker that dies
 * holding a cancelled task completes it as cancelled instead of retrying
 * it; a completed task says EALREADY; reap and the eventfd see a cancel;
 * nothing leaks.
 *
 * The payload (u64) says how the handler treats a task: its low byte is a
 * mode, the rest an id the handler records as seen, per step. */
#include "runtime/flow_test.h"

enum mode {
	M_FAST = 0,  /* return at once */
	M_GATE = 1,  /* wait for the gate; stop early when cancelled */
	M_DEAF = 2,  /* wait for the gate; never look at the cancel */
};

#define MAX_ID 64

struct shared {
	_Atomic uint32_t gate;
	_Atomic uint32_t entered;
	_Atomic uint32_t seen[2][MAX_ID];
};

static struct shared *sh;

static int h_mode(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		sluice_item_t *it = &items[k];
		uint64_t v = test_payload_u64(it);
		unsigned mode = (unsigned)(v & 0xff), id = (unsigned)(v >> 8) % MAX_ID;
		atomic_fetch_add(&sh->seen[it->step][id], 1);
		atomic_fetch_add(&sh->entered, 1);
		while (mode != M_FAST && !atomic_load(&sh->gate)) {
			if (mode == M_GATE && sluice_item_cancelled(it))
				break;
			usleep(200);
		}
		if (!test_result_u64(it, v))
			sluice_item_fail(it, "no block");
	}
	return 0;
}

static sluice_task_t *submit(sluice_flow_t *f, unsigned mode, unsigned id)
{
	sluice_task_t *t = test_task_u64(f, (uint64_t)id << 8 | mode);
	CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
	return t;
}

static void expect(sluice_flow_t *f, sluice_task_t *t, unsigned status, const char *msg_part)
{
	test_wait_task(f, t);
	if (t->status != status || (msg_part && !strstr(t->message, msg_part))) {
		fprintf(stderr, "FAIL: task %llu: %s '%s', want %s '%s'\n",
			(unsigned long long)t->user, sluice_task_status_name(t->status), t->message,
			sluice_task_status_name(status), msg_part ? msg_part : "");
		exit(TEST_FAIL);
	}
}

static void reset(void)
{
	memset(sh, 0, sizeof(*sh));
}

/* One step, one worker: a queued task and a running one. */
static void one_step(void)
{
	reset();
	sluice_step_t steps[1] = {test_step("only", h_mode, 1, 1)};
	sluice_flow_t *f = test_flow("cancel1", steps, 1, 64);
	test_start(f);

	sluice_task_t *t0 = NULL;
	CHECK_OK(sluice_task_alloc(f, 8, &t0));
	CHECK_RC(sluice_task_cancel(f, t0), SLUICE_EINVAL); /* not submitted */
	CHECK_OK(sluice_task_release(f, t0));

	sluice_task_t *a = submit(f, M_GATE, 1); /* runs, waits at the gate */
	TEST_WAIT_FOR(atomic_load(&sh->entered) == 1, 10, "task 1 reaches the handler");
	sluice_task_t *b = submit(f, M_FAST, 2); /* queued behind it */
	sluice_task_t *c = submit(f, M_FAST, 3);
	CHECK_OK(sluice_task_cancel(f, b));
	expect(f, b, SLUICE_TASK_CANCELLED, "cancelled before step 'only' ran it");
	CHECK(b->result == NULL);
	CHECK_RC(sluice_task_cancel(f, b), SLUICE_EALREADY);
	/* The running one: the handler sees the cancel and stops early. */
	CHECK_RC(sluice_task_cancel(f, a), SLUICE_EINPROGRESS);
	expect(f, a, SLUICE_TASK_CANCELLED, "cancelled while step 'only' ran it");
	expect(f, c, SLUICE_TASK_OK, NULL);
	CHECK_RC(sluice_task_cancel(f, c), SLUICE_EALREADY);
	CHECK(atomic_load(&sh->seen[0][2]) == 0); /* b never ran */
	CHECK(atomic_load(&sh->seen[0][1]) == 1 && atomic_load(&sh->seen[0][3]) == 1);
	CHECK_OK(sluice_task_release(f, a));
	CHECK_OK(sluice_task_release(f, b));
	CHECK_OK(sluice_task_release(f, c));
	CHECK_RC(sluice_task_cancel(f, c), SLUICE_EINVAL); /* released */
	/* b's descriptor was still on the ring: the worker refused it. */
	TEST_WAIT_FOR(test_stats(f, 0).bad_descriptors == 1, 10, "the stale copy is refused");

	/* Through the eventfd and reap. */
	int efd = sluice_flow_eventfd(f);
	CHECK(efd >= 0);
	atomic_store(&sh->gate, 0);
	sluice_task_t *d = submit(f, M_DEAF, 4);
	TEST_WAIT_FOR(atomic_load(&sh->entered) == 3, 10, "task 4 reaches the handler");
	sluice_task_t *e = submit(f, M_FAST, 5);
	sluice_task_t *got[4];
	CHECK(sluice_flow_reap(f, got, 4) == 0);
	CHECK_OK(sluice_task_cancel(f, e));
	struct pollfd p = {.fd = efd, .events = POLLIN};
	CHECK(poll(&p, 1, 10000) == 1);
	CHECK(sluice_flow_reap(f, got, 4) == 1 && got[0] == e);
	CHECK(e->status == SLUICE_TASK_CANCELLED);
	/* A deaf handler finishes; the cancel still decides the status. */
	CHECK_RC(sluice_task_cancel(f, d), SLUICE_EINPROGRESS);
	atomic_store(&sh->gate, 1);
	expect(f, d, SLUICE_TASK_CANCELLED, "cancelled while step 'only' ran it");
	CHECK_OK(sluice_task_release(f, d));
	CHECK_OK(sluice_task_release(f, e));

	test_stop_clean(f);
}

/* Two steps: a task cancelled while step 0 runs it never reaches step 1;
 * a worker killed holding a cancelled task does not get it retried. */
static void two_steps(void)
{
	reset();
	sluice_step_t steps[2] = {test_step("first", h_mode, 1, 1), test_step("second", h_mode, 1, 1)};
	steps[0].max_attempts = 3;
	steps[0].restart_delay_ns = 1 * MSEC;
	sluice_flow_t *f = test_flow("cancel2", steps, 2, 64);
	test_start(f);

	sluice_task_t *a = submit(f, M_DEAF, 1);
	TEST_WAIT_FOR(atomic_load(&sh->seen[0][1]) == 1, 10, "task 1 reaches step 0");
	CHECK_RC(sluice_task_cancel(f, a), SLUICE_EINPROGRESS);
	atomic_store(&sh->gate, 1);
	expect(f, a, SLUICE_TASK_CANCELLED, "cancelled while step 'first' ran it");
	CHECK(atomic_load(&sh->seen[1][1]) == 0);
	CHECK_OK(sluice_task_release(f, a));

	/* Killed while holding a cancelled task: completed as cancelled, not
	 * run again (max_attempts 3 would allow it). */
	atomic_store(&sh->gate, 0);
	sluice_task_t *b = submit(f, M_DEAF, 2);
	TEST_WAIT_FOR(atomic_load(&sh->seen[0][2]) == 1, 10, "task 2 reaches step 0");
	CHECK_RC(sluice_task_cancel(f, b), SLUICE_EINPROGRESS);
	CHECK(test_signal_slot(f, f->steps[0].first_worker, SIGKILL) > 0);
	expect(f, b, SLUICE_TASK_CANCELLED, "cancelled;");
	CHECK(atomic_load(&sh->seen[0][2]) == 1 && atomic_load(&sh->seen[1][2]) == 0);
	CHECK_OK(sluice_task_release(f, b));
	atomic_store(&sh->gate, 1);

	/* The flow goes on: a task runs both steps. */
	TEST_WAIT_FOR(test_stats(f, 0).restarts == 1, 10, "the killed worker is restarted");
	sluice_task_t *c = submit(f, M_FAST, 3);
	expect(f, c, SLUICE_TASK_OK, NULL);
	CHECK(atomic_load(&sh->seen[1][3]) == 1);
	CHECK_OK(sluice_task_release(f, c));

	test_stop_clean(f);
}

int main(void)
{
	sh = test_shared(sizeof(*sh));
	one_step();
	two_steps();
	printf("ok\n");
	return TEST_PASS;
}
