/* Errors reach their callers: a handler failing some tasks of a batch
 * (status and message) while the others succeed and go on to the next
 * step; a handle() that returns an error; a result_len beyond the block;
 * and bad descriptors, forged into the rings or the task table, which fail
 * only their own task (or are dropped) and never take a worker down. */
#include "runtime/flow_test.h"

#include <sluice/ring.h>

#define BATCH 8

/* Step "check": odd payloads fail; 1000 makes the whole batch fail; 2000
 * sets a result_len larger than its block; others get 10 * x. */
static int h_check(void *arg, sluice_item_t *items, unsigned n)
{
	bool whole = false;
	for (unsigned i = 0; i < n; i++)
		whole |= test_payload_u64(&items[i]) == 1000;
	if (whole)
		return SLUICE_EIO;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it);
		if (x == 2000) {
			test_result_u64(it, 1);
			it->result_len = it->result_cap + 1;
		} else if (x % 2 == 1) {
			sluice_item_fail(it, "odd payload %llu", (unsigned long long)x);
		} else if (!test_result_u64(it, 10 * x)) {
			sluice_item_fail(it, "no block");
		}
	}
	return 0;
}

/* Step "mark": adds 1 in place; must only see tasks "check" passed. */
static int h_mark(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t r;
		if (it->result == NULL || it->result_len != 8) {
			sluice_item_fail(it, "mark: no result from check");
			continue;
		}
		memcpy(&r, it->result, 8);
		r += 1;
		memcpy(it->result, &r, 8);
	}
	return 0;
}

static void submit_all(sluice_flow_t *f, sluice_task_t **t, unsigned n)
{
	CHECK_RC(sluice_task_submit_many(f, t, n, 10 * SEC), (int)n);
	for (unsigned i = 0; i < n; i++)
		test_wait_task(f, t[i]);
}

static void check_ok(sluice_task_t *t, uint64_t want)
{
	if (t->status != SLUICE_TASK_OK) {
		fprintf(stderr, "FAIL: task %llu: %s: %s\n", (unsigned long long)t->user,
			sluice_task_status_name(t->status), t->message);
		exit(TEST_FAIL);
	}
	CHECK(test_task_result_u64(t) == want);
	CHECK(t->message[0] == '\0');
}

static void check_failed(sluice_task_t *t, unsigned status, const char *words)
{
	if (t->status != status || strstr(t->message, words) == NULL) {
		fprintf(stderr, "FAIL: task %llu: %s '%s', want %s '%s'\n",
			(unsigned long long)t->user, sluice_task_status_name(t->status), t->message,
			sluice_task_status_name(status), words);
		exit(TEST_FAIL);
	}
	printf("task %llu: %s: %s\n", (unsigned long long)t->user,
	       sluice_task_status_name(t->status), t->message);
}

int main(void)
{
	sluice_step_t steps[2] = {
		test_step("check", h_check, 1, BATCH),
		test_step("mark", h_mark, 2, BATCH),
	};
	steps[0].batch_timeout_ns = 1 * SEC; /* a whole submit_many is one batch */
	sluice_flow_t *f = test_flow("errors", steps, 2, 64);
	test_start(f);
	sluice_task_t *t[BATCH];

	/* One batch of 8: odd ones fail with their message, even ones pass
	 * both steps. */
	for (unsigned i = 0; i < BATCH; i++)
		t[i] = test_task_u64(f, i);
	submit_all(f, t, BATCH);
	for (unsigned i = 0; i < BATCH; i++) {
		if (i % 2 == 1) {
			char want[32];
			snprintf(want, sizeof(want), "odd payload %u", i);
			check_failed(t[i], SLUICE_TASK_HANDLER_ERROR, want);
			CHECK(t[i]->result == NULL);
		} else {
			check_ok(t[i], 10 * i + 1);
		}
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	CHECK(st.max_batch == BATCH && st.batches == 1 && st.handler_errors == BATCH / 2);
	CHECK_OK(sluice_flow_step_stats(f, 1, &st));
	CHECK(st.tasks == BATCH / 2 && st.handler_errors == 0);

	/* handle() returning an error fails every task of its batch. */
	uint64_t xs[4] = {2, 1000, 4, 6};
	for (unsigned i = 0; i < 4; i++)
		t[i] = test_task_u64(f, xs[i]);
	submit_all(f, t, 4);
	for (unsigned i = 0; i < 4; i++) {
		check_failed(t[i], SLUICE_TASK_HANDLER_ERROR, "handle() returned");
		CHECK(strstr(t[i]->message, "EIO") != NULL && strstr(t[i]->message, "check"));
		CHECK_OK(sluice_task_release(f, t[i]));
	}

	/* A result_len beyond the block fails that task only. */
	t[0] = test_task_u64(f, 2000);
	t[1] = test_task_u64(f, 8);
	submit_all(f, t, 2);
	check_failed(t[0], SLUICE_TASK_HANDLER_ERROR, "exceeds the result block");
	check_ok(t[1], 81);
	CHECK_OK(sluice_task_release(f, t[0]));
	CHECK_OK(sluice_task_release(f, t[1]));

	/* Bad descriptors. Garbage straight into step 0's ring, through the
	 * lane kept for tools: dropped and counted, nobody crashes. */
	sluice_ring_t r;
	sluice_ring_producer_t p;
	CHECK_OK(sluice_ring_open(&r, f->steps[0].ring_mem, f->steps[0].ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, SLUICE__OWNER_TOOL));
	sluice_desc_t junk[6];
	memset(junk, 0xa5, sizeof(junk));
	junk[1].slot = 5;          /* in range, but task_id disagrees */
	junk[2].slot = 5;          /* in range, agreeing id, entry not queued */
	junk[2].task_id = SLUICE__TASK_ID(77, 5);
	junk[3].slot = UINT32_MAX; /* out of range, not a pill */
	junk[3].flags = 0;
	junk[4].slot = 63;
	junk[4].task_id = SLUICE__TASK_ID(0, 63); /* FREE entry, generation 0 */
	CHECK_RC(sluice_ring_enqueue_bulk_mpmc(&p, junk, 6, 5 * SEC), 6);
	/* A forged task: a real entry whose descriptor names a block out of
	 * range, another whose payload block belongs to someone else, and
	 * one whose length exceeds its block. */
	t[0] = test_task_u64(f, 10);
	t[1] = test_task_u64(f, 12);
	t[2] = test_task_u64(f, 14);
	t[3] = test_task_u64(f, 16); /* an honest one in the same batch */
	uint32_t real0 = t[0]->payload_block_, real1 = t[1]->payload_block_;
	uint64_t realcap2 = t[2]->payload_cap_;
	sluice_block_t other;
	CHECK_OK(sluice_blocks_alloc(&f->blocks, 8, SLUICE__OWNER_TOOL, &other));
	t[0]->payload_block_ = 0x07ffffff;
	t[1]->payload_block_ = other;
	t[2]->payload_cap_ = UINT32_MAX; /* lets the client send a length past the block */
	t[2]->payload_len = 1u << 20;
	submit_all(f, t, 4);
	check_failed(t[0], SLUICE_TASK_BAD_DESCRIPTOR, "payload block");
	check_failed(t[1], SLUICE_TASK_BAD_DESCRIPTOR, "payload block");
	check_failed(t[2], SLUICE_TASK_BAD_DESCRIPTOR, "payload block");
	check_ok(t[3], 161);
	t[0]->payload_block_ = real0;
	t[1]->payload_block_ = real1;
	t[2]->payload_cap_ = realcap2;
	for (unsigned i = 0; i < 4; i++)
		CHECK_OK(sluice_task_release(f, t[i]));
	CHECK_OK(sluice_blocks_free(&f->blocks, other, SLUICE__OWNER_TOOL));
	CHECK_OK(sluice_ring_producer_release(&p));
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	printf("step 0 refused %llu descriptors\n", (unsigned long long)st.bad_descriptors);
	CHECK(st.bad_descriptors >= 6 + 3);

	/* Everyone is still alive and working. */
	for (uint32_t s = 0; s < 2; s++) {
		CHECK_OK(sluice_flow_step_stats(f, s, &st));
		CHECK(st.workers_live == st.workers && st.worker_deaths == 0);
	}
	t[0] = test_task_u64(f, 20);
	submit_all(f, t, 1);
	check_ok(t[0], 201);
	CHECK_OK(sluice_task_release(f, t[0]));

	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
