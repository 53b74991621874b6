/* A 3-step flow with conditions, real workers: every task gets the right
 * result, no handler ever sees a batch larger than its batch_size, each
 * step runs exactly the tasks its condition accepts, nothing leaks.
 *
 *   parse   (skips x % 1000 == 999)   result = x + 1            new block
 *   double  (skips x % 3 == 0)        result = 2 * (result or x) new block
 *   finish  (skips x % 10007 == 0)    result += 7 in place, or x + 7 in a new block
 *
 * With "exec", step 1 (double) is started by exec of the worker program
 * tests/runtime/flow_exec_worker.c, which runs the same handler and, to
 * route tasks on, finish's condition (found by its condition_name): the
 * same checks then hold for a step of exec'd workers between two steps of
 * forked ones.
 *
 * usage: test_flow_pipeline [tasks [window [exec]]]   (tasks scaled down
 * by SLUICE_TEST_SLOWDOWN) */
#include "runtime/exec_test.h"
#include "runtime/pipeline_handlers.h"

static uint64_t checked;

static void check_task(sluice_flow_t *f, sluice_task_t *t)
{
	uint64_t x = t->user, want = 0;
	bool has = expected(x, &want);
	if (t->status != SLUICE_TASK_OK) {
		fprintf(stderr, "FAIL: task %llu: status %s: %s\n", (unsigned long long)x,
			sluice_task_status_name(t->status), t->message);
		exit(TEST_FAIL);
	}
	CHECK(t->message != NULL && t->message[0] == '\0');
	if (!has) {
		CHECK(t->result == NULL && t->result_len == 0);
	} else {
		uint64_t got = test_task_result_u64(t);
		if (got != want) {
			fprintf(stderr, "FAIL: task %llu: result %llu, want %llu\n",
				(unsigned long long)x, (unsigned long long)got,
				(unsigned long long)want);
			exit(TEST_FAIL);
		}
	}
	/* The payload is untouched, in place. */
	uint64_t p;
	memcpy(&p, t->payload, 8);
	CHECK(p == x);
	checked++;
	CHECK_OK(sluice_task_release(f, t));
}

int main(int argc, char **argv)
{
	uint64_t ntasks = test_arg_u64(argc, argv, 1, 100000) / test_slowdown();
	uint64_t window = test_arg_u64(argc, argv, 2, 512);
	CHECK(window >= 1 && window <= 1024);
	bool exec = argc > 3 && strcmp(argv[3], "exec") == 0;

	sluice_step_t steps[3] = {
		test_step("parse", h_parse, 2, PARSE_BATCH),
		test_step("double", h_double, 2, DOUBLE_BATCH),
		test_step("finish", h_finish, 1, FINISH_BATCH),
	};
	steps[0].condition = cond_parse;
	steps[1].condition = cond_double;
	steps[1].batch_timeout_ns = 200000; /* 200 us */
	steps[2].condition = cond_finish;
	steps[2].capacity = 64; /* small: producers of finish meet a full ring */
	if (exec) {
		steps[1].exec_path = test_exec_worker();
		steps[1].handler_name = "double";
		steps[2].condition_name = "finish"; /* run by step 1's workers */
	}
	sluice_flow_t *f = test_flow("pipeline", steps, 3, 1024);
	test_start(f);
	for (uint32_t k = 0; exec && k < 2; k++)
		CHECK(test_runs_program((pid_t)sluice_flow_worker_pid(f, 1, k), steps[1].exec_path));

	/* Tasks in submit order; the head is waited for, the others collect
	 * in the flow's ready list meanwhile. */
	sluice_task_t **fifo = calloc(window, sizeof(*fifo));
	CHECK(fifo != NULL);
	uint64_t head = 0, tail = 0, next = 0, chunk_no = 0;
	uint64_t t0 = test_now_ns();
	while (checked < ntasks) {
		while (tail - head < window && next < ntasks) {
			sluice_task_t *batch[64];
			unsigned m = 0;
			while (m < 64 && tail - head + m < window && next < ntasks)
				batch[m++] = test_task_u64(f, next++);
			if (chunk_no++ % 2 == 0) {
				unsigned done = 0;
				while (done < m) {
					int k = sluice_task_submit_many(f, batch + done, m - done,
									SLUICE_FLOW_FOREVER);
					CHECK(k > 0);
					done += (unsigned)k;
				}
			} else {
				for (unsigned i = 0; i < m; i++)
					CHECK_OK(sluice_task_submit(f, batch[i], SLUICE_FLOW_FOREVER));
			}
			for (unsigned i = 0; i < m; i++)
				fifo[tail++ % window] = batch[i];
		}
		sluice_task_t *t = fifo[head++ % window];
		test_wait_task(f, t);
		check_task(f, t);
	}
	uint64_t dt = test_now_ns() - t0;
	printf("%llu tasks through 3 steps%s in %.3f s (%.0f tasks/s)\n", (unsigned long long)ntasks,
	       exec ? " (step 1 exec'd)" : "", dt / 1e9, ntasks / (dt / 1e9));

	/* Each step ran exactly the tasks its condition accepted, in batches
	 * never larger than its batch_size. */
	uint64_t want[3] = {0, 0, 0};
	for (uint64_t x = 0; x < ntasks; x++) {
		want[0] += applies_parse(x);
		want[1] += applies_double(x);
		want[2] += applies_finish(x);
	}
	const unsigned bs[3] = {PARSE_BATCH, DOUBLE_BATCH, FINISH_BATCH};
	for (uint32_t s = 0; s < 3; s++) {
		sluice_step_stats_t st;
		CHECK_OK(sluice_flow_step_stats(f, s, &st));
		printf("step %u: %llu tasks in %llu batches, largest %u (batch_size %u)\n", s,
		       (unsigned long long)st.tasks, (unsigned long long)st.batches, st.max_batch,
		       bs[s]);
		CHECK(st.tasks == want[s]);
		CHECK(st.max_batch >= 1 && st.max_batch <= bs[s]);
		CHECK(st.handler_errors == 0 && st.timeouts == 0 && st.bad_descriptors == 0);
		CHECK(st.workers_live == st.workers && st.worker_deaths == 0);
	}

	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	CHECK(sl_load_relaxed(&f->cslots[0].dropped) == 0);
	sluice_flow_destroy(f);
	free(fifo);
	printf("ok\n");
	return TEST_PASS;
}
