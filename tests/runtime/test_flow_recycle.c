/* Recycling: a worker that has run max_tasks_per_worker tasks is replaced,
 * its replacement started first: the old one serves until the new one's
 * on_start is done, then finishes its batch, runs on_stop and exits
 * cleanly. So the step (one worker here) never has nobody serving: every
 * on_stop comes after the next worker's on_start finished. Nothing is lost,
 * nobody dies, every result is right. */
#include "runtime/flow_test.h"

#define LIMIT 50u
#define MAX_PIDS 256

struct shared {
	_Atomic int32_t serving;      /* workers between on_start's end and on_stop */
	_Atomic uint32_t dropped_to_zero;
	_Atomic uint32_t flow_stopping;
	_Atomic uint32_t npids;
	_Atomic int32_t pid[MAX_PIDS];
	_Atomic uint32_t ran[MAX_PIDS]; /* tasks each ran */
	_Atomic uint32_t stopped[MAX_PIDS];
};
static struct shared *sh;

static uint32_t my_index(void)
{
	int32_t me = (int32_t)getpid();
	uint32_t n = atomic_load(&sh->npids);
	for (uint32_t i = 0; i < n && i < MAX_PIDS; i++)
		if (atomic_load(&sh->pid[i]) == me)
			return i;
	return MAX_PIDS;
}

static int on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	usleep(30 * 1000); /* loading a model, say */
	uint32_t i = atomic_fetch_add(&sh->npids, 1);
	if (i < MAX_PIDS)
		atomic_store(&sh->pid[i], (int32_t)getpid());
	atomic_fetch_add(&sh->serving, 1);
	return 0;
}

static void on_stop(void *arg, const sluice_worker_info_t *w)
{
	/* Our replacement finished its on_start before we were told to go
	 * (except at the flow's stop, when nobody replaces us). */
	if (atomic_fetch_sub(&sh->serving, 1) - 1 < 1 && !atomic_load(&sh->flow_stopping))
		atomic_fetch_add(&sh->dropped_to_zero, 1);
	uint32_t i = my_index();
	if (i < MAX_PIDS)
		atomic_store(&sh->stopped[i], 1);
}

static int h_plus1(void *arg, sluice_item_t *items, unsigned n)
{
	uint32_t i = my_index();
	for (unsigned k = 0; k < n; k++) {
		usleep(500);
		if (i < MAX_PIDS)
			atomic_fetch_add(&sh->ran[i], 1);
		if (!test_result_u64(&items[k], test_payload_u64(&items[k]) + 1))
			sluice_item_fail(&items[k], "no block");
	}
	return 0;
}

int main(void)
{
	sh = test_shared(sizeof(*sh));
	sluice_step_t s = test_step("model", h_plus1, 1, 4);
	s.handler.on_start = on_start;
	s.handler.on_stop = on_stop;
	s.max_tasks_per_worker = LIMIT;
	sluice_flow_t *f = test_flow("recycle", &s, 1, 128);
	test_start(f);

	/* Keep tasks flowing until the worker was replaced three times. */
	sluice_task_t *fifo[32];
	uint64_t head = 0, tail = 0, next = 0;
	uint64_t give_up = test_now_ns() + 60 * SEC * test_slowdown();
	while (test_stats(f, 0).recycled < 3 || head < tail) {
		CHECK(test_now_ns() < give_up);
		while (test_stats(f, 0).recycled < 3 && tail - head < 32) {
			sluice_task_t *t = test_task_u64(f, next++);
			CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
			fifo[tail++ % 32] = t;
		}
		if (head == tail)
			break;
		sluice_task_t *t = fifo[head++ % 32];
		test_wait_task(f, t);
		CHECK(t->status == SLUICE_TASK_OK && test_task_result_u64(t) == t->user + 1);
		CHECK_OK(sluice_task_release(f, t));
	}
	sluice_step_stats_t st = test_stats(f, 0);
	uint32_t n = atomic_load(&sh->npids);
	printf("%llu tasks, %u workers started, %u recycled, %u deaths, %u restarts\n",
	       (unsigned long long)next, n, st.recycled, st.worker_deaths, st.restarts);
	CHECK(st.recycled >= 3 && st.worker_deaths == 0 && st.restarts == 0);
	CHECK(atomic_load(&sh->dropped_to_zero) == 0);
	/* Every retired worker ran at least its LIMIT tasks and left by
	 * on_stop. */
	uint32_t retired = 0;
	for (uint32_t i = 0; i < n && i < MAX_PIDS; i++) {
		uint32_t ran = atomic_load(&sh->ran[i]);
		printf("  worker pid %d: %u tasks%s\n", atomic_load(&sh->pid[i]), ran,
		       atomic_load(&sh->stopped[i]) ? ", retired" : "");
		if (atomic_load(&sh->stopped[i])) {
			CHECK(ran >= LIMIT);
			retired++;
		}
	}
	CHECK(retired >= 3);

	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	/* The flow's stop is no hand-over: on_stop may see nobody serving. */
	atomic_store(&sh->flow_stopping, 1);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	for (uint32_t i = 0; i < n && i < MAX_PIDS; i++)
		CHECK(test_pid_gone(atomic_load(&sh->pid[i])));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
