/* The event-loop path: a client that never blocks in sluice, only in
 * epoll_wait on the flow's eventfd, submits a stream of tasks and collects
 * every result with sluice_flow_reap. A lost wake-up shows as an
 * epoll_wait that times out while tasks are pending: the test fails.
 *
 * usage: test_flow_eventfd [tasks [window]] (tasks scaled by
 * SLUICE_TEST_SLOWDOWN) */
#include "runtime/flow_test.h"

#include <sys/epoll.h>

static bool cond_even(void *arg, const sluice_item_t *t)
{
	return test_payload_u64(t) % 2 == 0;
}

static int h_square(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = test_payload_u64(&items[i]);
		if (!test_result_u64(&items[i], x * x))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

static int h_plus(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t r;
		if (it->result_len != 8) {
			sluice_item_fail(it, "no result");
			continue;
		}
		memcpy(&r, it->result, 8);
		r += 1;
		memcpy(it->result, &r, 8);
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ntasks = test_arg_u64(argc, argv, 1, 20000) / test_slowdown();
	uint64_t window = test_arg_u64(argc, argv, 2, 256);
	CHECK(window >= 1 && window <= 512);

	/* Odd payloads skip both steps (completed at submit), even ones get
	 * x * x + 1. */
	sluice_step_t steps[2] = {
		test_step("square", h_square, 1, 16),
		test_step("plus", h_plus, 1, 16),
	};
	steps[0].condition = cond_even;
	steps[1].condition = cond_even;
	steps[0].capacity = 1024; /* the whole window fits in the client's lane */
	sluice_flow_t *f = test_flow("eventfd", steps, 2, 512);
	int efd = sluice_flow_eventfd(f);
	CHECK(efd >= 0);
	test_start(f);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);

	/* The eventfd works from the start, before any reap: one task that
	 * goes through both steps, and the loop's first wait. */
	sluice_task_t *first = test_task_u64(f, 2);
	CHECK_OK(sluice_task_submit(f, first, 10 * SEC));
	struct epoll_event got;
	CHECK(epoll_wait(ep, &got, 1, (int)(10000 * test_slowdown())) == 1);
	sluice_task_t *one[1];
	CHECK(sluice_flow_reap(f, one, 1) == 1 && one[0] == first);
	CHECK(first->status == SLUICE_TASK_OK && test_task_result_u64(first) == 5);
	CHECK_OK(sluice_task_release(f, first));

	uint64_t next = 0, done = 0, inflight = 0, wakeups = 0;
	sluice_task_t *out[32];
	while (done < ntasks) {
		while (inflight < window && next < ntasks) {
			sluice_task_t *t = test_task_u64(f, next++);
			/* Never blocks: the window is below the ring's capacity. */
			CHECK_OK(sluice_task_submit(f, t, 0));
			inflight++;
		}
		int k;
		bool got = false;
		while ((k = sluice_flow_reap(f, out, 32)) > 0) {
			got = true;
			for (int i = 0; i < k; i++) {
				sluice_task_t *t = out[i];
				uint64_t x = t->user;
				CHECK(t->status == SLUICE_TASK_OK);
				if (x % 2 == 0)
					CHECK(test_task_result_u64(t) == x * x + 1);
				else
					CHECK(t->result == NULL);
				CHECK_OK(sluice_task_release(f, t));
				done++;
				inflight--;
			}
			if (k < 32)
				break; /* drained and re-armed */
		}
		if (got || done == ntasks)
			continue;
		/* Nothing to reap: sleep in epoll until the flow says so. */
		int n = epoll_wait(ep, &ev, 1, (int)(30000 * test_slowdown()));
		if (n == 0) {
			fprintf(stderr, "FAIL: epoll_wait timed out with %llu tasks in flight\n",
				(unsigned long long)inflight);
			exit(TEST_FAIL);
		}
		CHECK(n == 1 && ev.data.u64 == 42);
		wakeups++;
	}
	printf("%llu tasks, %llu epoll wake-ups\n", (unsigned long long)ntasks,
	       (unsigned long long)wakeups);

	/* Idle: the eventfd stays quiet. */
	CHECK(sluice_flow_reap(f, out, 32) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 50) == 0);

	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	close(ep);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
