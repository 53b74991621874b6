/* A 3-step flow with conditions, real workers: every task gets the right
 * result, no handler ever sees a batch larger than its batch_size, each
 * step runs exactly the tasks its condition accepts, nothing leaks.
 *
 *   parse   (skips x % 1000 == 999)   result = x + 1            new block
 *   double  (skips x % 3 == 0)        result = 2 * (result or x) new block
 *   finish  (skips x % 10007 == 0)    result += 7 in place, or x + 7 in a new block
 *
 * usage: test_flow_pipeline [tasks [window]]   (tasks scaled down by
 * SLUICE_TEST_SLOWDOWN) */
#include "runtime/flow_test.h"

enum { PARSE_BATCH = 32, DOUBLE_BATCH = 16, FINISH_BATCH = 64 };

static bool applies_parse(uint64_t x) { return x % 1000 != 999; }
static bool applies_double(uint64_t x) { return x % 3 != 0; }
static bool applies_finish(uint64_t x) { return x % 10007 != 0; }

static bool cond_parse(void *arg, const sluice_item_t *t) { return applies_parse(test_payload_u64(t)); }
static bool cond_double(void *arg, const sluice_item_t *t) { return applies_double(test_payload_u64(t)); }
static bool cond_finish(void *arg, const sluice_item_t *t) { return applies_finish(test_payload_u64(t)); }

/* Expected result; false when no step makes one. */
static bool expected(uint64_t x, uint64_t *r)
{
	bool has = false;
	if (applies_parse(x))
		*r = x + 1, has = true;
	if (applies_double(x))
		*r = 2 * (has ? *r : x), has = true;
	if (applies_finish(x))
		*r = (has ? *r : x) + 7, has = true;
	return has;
}

static int too_big(sluice_item_t *items, unsigned n, unsigned max)
{
	if (n == 0 || n > max) {
		for (unsigned i = 0; i < n; i++)
			sluice_item_fail(&items[i], "batch of %u, batch_size %u", n, max);
		return 1;
	}
	return 0;
}

static int h_parse(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, PARSE_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it);
		if (it->payload_len != 8 || it->result != NULL || !applies_parse(x))
			sluice_item_fail(it, "parse: wrong task %llu", (unsigned long long)x);
		else if (!test_result_u64(it, x + 1))
			sluice_item_fail(it, "parse: no block");
	}
	return 0;
}

static int h_double(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, DOUBLE_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it), r = x;
		if (!applies_double(x) || (it->result != NULL) != applies_parse(x)) {
			sluice_item_fail(it, "double: wrong task %llu", (unsigned long long)x);
			continue;
		}
		if (it->result != NULL) {
			if (it->result_len != 8) {
				sluice_item_fail(it, "double: result_len %llu",
						 (unsigned long long)it->result_len);
				continue;
			}
			memcpy(&r, it->result, 8); /* still readable after a new alloc, but read first */
		}
		if (!test_result_u64(it, 2 * r))
			sluice_item_fail(it, "double: no block");
	}
	return 0;
}

static int h_finish(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, FINISH_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it), r;
		if (!applies_finish(x)) {
			sluice_item_fail(it, "finish: wrong task %llu", (unsigned long long)x);
		} else if (it->result != NULL) {
			/* In place, in the block an earlier step made. */
			if (it->result_len != 8 || it->result_cap < 8) {
				sluice_item_fail(it, "finish: bad result");
				continue;
			}
			memcpy(&r, it->result, 8);
			r += 7;
			memcpy(it->result, &r, 8);
		} else if (!test_result_u64(it, x + 7)) {
			sluice_item_fail(it, "finish: no block");
		}
	}
	return 0;
}

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
	sluice_flow_t *f = test_flow("pipeline", steps, 3, 1024);
	test_start(f);

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
	printf("%llu tasks through 3 steps in %.3f s (%.0f tasks/s)\n", (unsigned long long)ntasks,
	       dt / 1e9, ntasks / (dt / 1e9));

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
