/* Stop: no new work, drain what is in flight, on_stop in every worker,
 * every process ended and reaped; a task that could not finish completes
 * with SLUICE_TASK_FLOW_STOPPED, never lost. Also: a handler that ignores
 * the stop is killed after the grace period; destroy stops a running flow.
 *
 * usage: test_flow_stop [tasks] */
#include "runtime/flow_test.h"

struct counts {
	_Atomic uint32_t started;
	_Atomic uint32_t stopped;
	_Atomic uint64_t handled;
};
static struct counts *cnt;

/* Payload: microseconds to sleep per task. */
static int h_slow(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t us = test_payload_u64(&items[i]);
		if (us)
			usleep((useconds_t)us);
		if (!test_result_u64(&items[i], us + 1))
			sluice_item_fail(&items[i], "no block");
		atomic_fetch_add(&cnt->handled, 1);
	}
	return 0;
}

static int on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	atomic_fetch_add(&cnt->started, 1);
	return 0;
}

static void on_stop(void *arg, const sluice_worker_info_t *w)
{
	atomic_fetch_add(&cnt->stopped, 1);
}

static sluice_flow_t *make(const char *name, uint64_t grace)
{
	sluice_step_t steps[2] = {
		test_step("first", h_slow, 2, 4),
		test_step("second", h_slow, 2, 4),
	};
	for (int i = 0; i < 2; i++) {
		steps[i].handler.on_start = on_start;
		steps[i].handler.on_stop = on_stop;
	}
	sluice_flow_opts_t o = {
		.size_of = sizeof(o), .name = name, .flags = SLUICE_FLOW_UNLISTED, .nsteps = 2, .steps = steps,
		.max_tasks = 1024, .stop_grace_ns = grace,
	};
	char err[256];
	sluice_flow_t *f = NULL;
	CHECK_OK(sluice_flow_create(&o, &f, err, sizeof(err)));
	memset(cnt, 0, sizeof(*cnt));
	test_start(f);
	CHECK(atomic_load(&cnt->started) == 4);
	return f;
}

/* Submits n tasks sleeping us each; stops with `timeout`; checks every
 * task ended OK or stopped; returns how many were stopped. */
static unsigned run(uint32_t n, uint64_t us, uint64_t timeout, int *stop_rc)
{
	sluice_flow_t *f = make("stop", 5 * SEC);
	sluice_task_t **t = calloc(n, sizeof(*t));
	CHECK(t != NULL);
	for (uint32_t i = 0; i < n; i++)
		t[i] = test_task_u64(f, us);
	for (uint32_t done = 0; done < n;) {
		int k = sluice_task_submit_many(f, t + done, n - done, 10 * SEC);
		CHECK(k > 0);
		done += (uint32_t)k;
	}
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	*stop_rc = sluice_flow_stop(f, timeout);
	test_check_gone(pids, np);
	CHECK(atomic_load(&cnt->stopped) == 4); /* on_stop in every worker */
	/* No new work once stopped. */
	sluice_task_t *extra;
	CHECK_OK(sluice_task_alloc(f, 8, &extra));
	CHECK_RC(sluice_task_submit(f, extra, 0), SLUICE_ESTOPPED);
	CHECK_OK(sluice_task_release(f, extra));
	CHECK_OK(sluice_flow_stop(f, 0)); /* again: nothing to do */

	unsigned ok = 0, stopped = 0;
	for (uint32_t i = 0; i < n; i++) {
		CHECK_OK(sluice_task_wait(f, t[i], 0)); /* everything is back already */
		if (t[i]->status == SLUICE_TASK_OK) {
			CHECK(test_task_result_u64(t[i]) == us + 1);
			ok++;
		} else if (t[i]->status == SLUICE_TASK_FLOW_STOPPED) {
			CHECK(t[i]->message[0] != '\0');
			stopped++;
		} else {
			fprintf(stderr, "FAIL: task %u: %s: %s\n", i,
				sluice_task_status_name(t[i]->status), t[i]->message);
			exit(TEST_FAIL);
		}
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	printf("%u tasks of %llu us, stop(%llu ms) = %s: %u ok, %u stopped; handled %llu\n", n,
	       (unsigned long long)us, (unsigned long long)(timeout / MSEC),
	       sluice_err_name(*stop_rc), ok, stopped,
	       (unsigned long long)atomic_load(&cnt->handled));
	CHECK(ok + stopped == n);
	CHECK(*stop_rc == 0 || *stop_rc == SLUICE_ETIMEDOUT);
	CHECK(*stop_rc != 0 || stopped == 0); /* a clean drain stops nothing */
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	free(t);
	return stopped;
}

int main(int argc, char **argv)
{
	uint32_t n = (uint32_t)test_arg_u64(argc, argv, 1, 600);
	cnt = test_shared(sizeof(*cnt));
	int rc;

	/* A long enough drain: everything finishes. */
	run(n, 200, 60 * SEC * test_slowdown(), &rc);
	CHECK(rc == 0);
	/* A drain far too short for n tasks of 2 ms on 2 + 2 workers: the
	 * rest complete as stopped. */
	unsigned stopped = run(n, 2000, 20 * MSEC, &rc);
	CHECK(rc == SLUICE_ETIMEDOUT && stopped > 0);
	/* No drain at all. */
	run(n, 2000, 0, &rc);
	CHECK(rc == SLUICE_ETIMEDOUT);

	/* A handler that ignores the stop is killed after the grace period;
	 * its task completes as stopped; the others' on_stop runs. */
	sluice_flow_t *f = make("stuck", 300 * MSEC);
	sluice_task_t *t = test_task_u64(f, 30 * 1000 * 1000); /* 30 s */
	CHECK_OK(sluice_task_submit(f, t, SEC));
	for (int i = 0;; i++) {
		sluice_step_stats_t st;
		CHECK_OK(sluice_flow_step_stats(f, 0, &st));
		if (st.tasks > 0)
			break; /* counted just before handle() is called */
		CHECK(i < 60000);
		usleep(1000);
	}
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	uint64_t t0 = test_now_ns();
	CHECK_RC(sluice_flow_stop(f, 50 * MSEC), SLUICE_ETIMEDOUT);
	printf("stop with a stuck handler took %.0f ms\n", (test_now_ns() - t0) / 1e6);
	test_check_gone(pids, np);
	CHECK(atomic_load(&cnt->stopped) == 3); /* the stuck one was killed */
	CHECK_OK(sluice_task_wait(f, t, 0));
	CHECK(t->status == SLUICE_TASK_FLOW_STOPPED);
	printf("stuck task: %s: %s\n", sluice_task_status_name(t->status), t->message);
	CHECK_OK(sluice_task_release(f, t));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);

	/* Destroy of a running flow with work in flight: stops it, leaves
	 * nothing behind. */
	f = make("destroy", SEC);
	for (int i = 0; i < 16; i++) {
		t = test_task_u64(f, 1000);
		CHECK_OK(sluice_task_submit(f, t, SEC));
	}
	np = test_flow_pids(f, pids, 8);
	sluice_flow_destroy(f);
	test_check_gone(pids, np);
	CHECK(atomic_load(&cnt->stopped) == 4);
	printf("ok\n");
	return TEST_PASS;
}
