/* Batching: a worker hands its handler up to batch_size tasks, waiting at
 * most batch_timeout after the first; a lone task is still delivered; with
 * batch_timeout 0 it takes what is queued and goes; a task no step
 * accepts completes at once. Every batch the handler sees is recorded in
 * shared memory and checked. */
#include "runtime/flow_test.h"

#define MAX_BATCHES 256

struct record {
	_Atomic uint32_t nbatches;
	_Atomic uint32_t sizes[MAX_BATCHES];
};

static struct record *rec;
static unsigned batch_size;

static int h_record(void *arg, sluice_item_t *items, unsigned n)
{
	uint32_t i = atomic_fetch_add(&rec->nbatches, 1);
	if (i < MAX_BATCHES)
		atomic_store(&rec->sizes[i], n);
	for (unsigned k = 0; k < n; k++) {
		if (n > batch_size)
			sluice_item_fail(&items[k], "batch of %u > %u", n, batch_size);
		else if (!test_result_u64(&items[k], test_payload_u64(&items[k]) * 3))
			sluice_item_fail(&items[k], "no block");
	}
	return 0;
}

static void reset_record(void)
{
	atomic_store(&rec->nbatches, 0);
	for (int i = 0; i < MAX_BATCHES; i++)
		atomic_store(&rec->sizes[i], 0);
}

/* Submits n tasks in one call (one publication), waits for all, checks
 * each result. */
static void run(sluice_flow_t *f, unsigned n, uint64_t base)
{
	sluice_task_t *t[64];
	CHECK(n <= 64);
	for (unsigned i = 0; i < n; i++)
		t[i] = test_task_u64(f, base + i);
	CHECK_RC(sluice_task_submit_many(f, t, n, 10 * SEC), (int)n);
	for (unsigned i = 0; i < n; i++) {
		test_wait_task(f, t[i]);
		if (t[i]->status != SLUICE_TASK_OK) {
			fprintf(stderr, "FAIL: task %u: %s: %s\n", i,
				sluice_task_status_name(t[i]->status), t[i]->message);
			exit(TEST_FAIL);
		}
		CHECK(test_task_result_u64(t[i]) == (base + i) * 3);
		CHECK_OK(sluice_task_release(f, t[i]));
	}
}

static void print_batches(const char *what)
{
	uint32_t nb = atomic_load(&rec->nbatches);
	printf("%s: %u batches:", what, nb);
	for (uint32_t i = 0; i < nb && i < MAX_BATCHES; i++)
		printf(" %u", atomic_load(&rec->sizes[i]));
	printf("\n");
}

static bool never(void *arg, const sluice_item_t *t)
{
	return false;
}

int main(void)
{
	rec = test_shared(sizeof(*rec));

	/* One worker, batch_size 8, a long batch timeout: batching is then
	 * decided by what is queued, not by the clock. */
	batch_size = 8;
	sluice_step_t s = test_step("batch8", h_record, 1, 8);
	s.batch_timeout_ns = 1 * SEC;
	sluice_flow_t *f = test_flow("batch", &s, 1, 256);
	test_start(f);

	/* Exactly batch_size tasks published at once: one batch of 8. */
	reset_record();
	run(f, 8, 100);
	print_batches("8 tasks");
	CHECK(atomic_load(&rec->nbatches) == 1 && atomic_load(&rec->sizes[0]) == 8);

	/* 20 at once: 8, 8, then the last 4 after waiting for more in vain. */
	reset_record();
	run(f, 20, 200);
	print_batches("20 tasks");
	CHECK(atomic_load(&rec->nbatches) == 3);
	CHECK(atomic_load(&rec->sizes[0]) == 8 && atomic_load(&rec->sizes[1]) == 8 &&
	      atomic_load(&rec->sizes[2]) == 4);

	/* A lone task is delivered once the batch timeout passes. */
	reset_record();
	run(f, 1, 300);
	print_batches("1 task");
	CHECK(atomic_load(&rec->nbatches) == 1 && atomic_load(&rec->sizes[0]) == 1);

	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, 0, &st));
	CHECK(st.max_batch == 8 && st.tasks == 29 && st.batches == 5);
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);

	/* batch_timeout 0: whatever is queued, at once; never more than
	 * batch_size, however much is queued. */
	batch_size = 5;
	s = test_step("batch5", h_record, 1, 5);
	f = test_flow("batch0", &s, 1, 256);
	test_start(f);
	reset_record();
	run(f, 1, 400);
	CHECK(atomic_load(&rec->nbatches) == 1 && atomic_load(&rec->sizes[0]) == 1);
	reset_record();
	run(f, 64, 500);
	print_batches("64 tasks, batch_timeout 0");
	uint32_t nb = atomic_load(&rec->nbatches), sum = 0;
	CHECK(nb >= 13 && nb <= MAX_BATCHES);
	for (uint32_t i = 0; i < nb; i++) {
		uint32_t sz = atomic_load(&rec->sizes[i]);
		CHECK(sz >= 1 && sz <= 5);
		sum += sz;
	}
	CHECK(sum == 64);

	/* A task no step accepts completes at once, OK, with no result; the
	 * eventfd tells about it too. */
	sluice_flow_destroy(f); /* destroy stops a running flow */
	s = test_step("never", h_record, 1, 4);
	s.condition = never;
	f = test_flow("skip-all", &s, 1, 16);
	int efd = sluice_flow_eventfd(f);
	test_start(f);
	reset_record();
	sluice_task_t *t = test_task_u64(f, 7);
	CHECK_OK(sluice_task_submit(f, t, 0));
	sluice_task_t *out[4];
	uint64_t v;
	CHECK(read(efd, &v, sizeof(v)) == sizeof(v) && v >= 1);
	CHECK_RC(sluice_flow_reap(f, out, 4), 1);
	CHECK(out[0] == t && t->status == SLUICE_TASK_OK && t->result == NULL);
	CHECK_OK(sluice_task_wait(f, t, 0)); /* returned already: at once */
	CHECK_OK(sluice_task_release(f, t));
	CHECK(atomic_load(&rec->nbatches) == 0);
	np = test_flow_pids(f, pids, 4);
	sluice_flow_destroy(f);
	test_check_gone(pids, np);
	printf("ok\n");
	return TEST_PASS;
}
