/* The supervisor is killed: every worker is gone within a second
 * (PR_SET_PDEATHSIG), and the client's calls say so with
 * SLUICE_ESUPERVISOR instead of hanging: a wait without a timeout that was
 * already asleep, one made afterwards, a submit blocked on a full ring, a
 * later submit, reap. Stop then completes what was in flight with
 * FLOW_STOPPED, and no block leaks.
 *
 * Each call that could hang runs under alarm(): a hang kills the test. */
#include "runtime/flow_test.h"

#include <pthread.h>

/* Payload: milliseconds to sleep. */
static int h_sleep(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t ms = test_payload_u64(&items[i]);
		if (ms)
			usleep((useconds_t)(ms * 1000));
		if (!test_result_u64(&items[i], ms + 1))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

static sluice_flow_t *make(const char *name, uint32_t capacity)
{
	sluice_step_t steps[2] = {
		test_step("first", h_sleep, 2, 1),
		test_step("second", h_sleep, 2, 1),
	};
	steps[0].capacity = capacity;
	sluice_flow_t *f = test_flow(name, steps, 2, 256);
	test_start(f);
	return f;
}

struct killer {
	pid_t pid;
	unsigned delay_ms;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;
	usleep(k->delay_ms * 1000);
	CHECK(kill(k->pid, SIGKILL) == 0);
	return NULL;
}

/* The workers' pidfds, opened while they run. */
static unsigned open_worker_pidfds(sluice_flow_t *f, int *fds)
{
	unsigned n = 0;
	for (uint32_t s = 0; s < f->nsteps; s++)
		for (uint32_t k = 0; k < f->steps[s].nprocs; k++) {
			fds[n] = pidfd_open((pid_t)sluice_flow_worker_pid(f, s, k), 0);
			CHECK(fds[n] >= 0);
			n++;
		}
	return n;
}

/* Every worker exits within a second of the supervisor's death. */
static void check_workers_gone(int *fds, unsigned n, uint64_t died_ns)
{
	for (unsigned i = 0; i < n; i++) {
		struct pollfd p = {.fd = fds[i], .events = POLLIN};
		CHECK(poll(&p, 1, (int)(1000 * test_slowdown())) == 1);
		close(fds[i]);
	}
	printf("  all %u workers gone %.1f ms after the supervisor's death\n", n,
	       (test_now_ns() - died_ns) / 1e6);
}

static void stop_and_check(sluice_flow_t *f, sluice_task_t **t, unsigned n)
{
	alarm(30 * test_slowdown());
	CHECK_RC(sluice_flow_stop(f, SEC), SLUICE_ESUPERVISOR);
	CHECK(strstr(sluice_flow_error(f), "supervisor died") != NULL);
	CHECK_RC(sluice_flow_stop(f, SEC), SLUICE_ESUPERVISOR); /* again: same answer */
	unsigned stopped = 0, ok = 0;
	for (unsigned i = 0; i < n; i++) {
		if (t[i] == NULL)
			continue;
		CHECK_OK(sluice_task_wait(f, t[i], 0)); /* completed by stop */
		if (t[i]->status == SLUICE_TASK_FLOW_STOPPED) {
			CHECK(strstr(t[i]->message, "supervisor died") != NULL);
			stopped++;
		} else {
			CHECK(t[i]->status == SLUICE_TASK_OK); /* finished before the death */
			ok++;
		}
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	alarm(0);
	printf("  after stop: %u stopped, %u ok\n", stopped, ok);
	CHECK(stopped > 0);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
}

int main(void)
{
	/* 1. Killed while tasks are in flight and the client is asleep in a
	 * wait without a timeout. */
	printf("wait asleep when the supervisor dies:\n");
	sluice_flow_t *f = make("sd-wait", 0);
	sluice_task_t *t[8];
	for (unsigned i = 0; i < 8; i++) {
		t[i] = test_task_u64(f, 10000); /* 10 s each: still running at the death */
		CHECK_OK(sluice_task_submit(f, t[i], SEC));
	}
	int fds[8];
	unsigned nw = open_worker_pidfds(f, fds);
	struct killer k = {.pid = (pid_t)sluice_flow_supervisor_pid(f), .delay_ms = 100};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, kill_later, &k) == 0);
	alarm(30 * test_slowdown());
	CHECK_RC(sluice_task_wait(f, t[0], SLUICE_FLOW_FOREVER), SLUICE_ESUPERVISOR);
	uint64_t died = test_now_ns();
	alarm(0);
	CHECK(pthread_join(th, NULL) == 0);
	check_workers_gone(fds, nw, died);
	/* Later calls know at once. */
	CHECK_RC(sluice_task_wait(f, t[1], SLUICE_FLOW_FOREVER), SLUICE_ESUPERVISOR);
	sluice_task_t *extra = test_task_u64(f, 1);
	CHECK_RC(sluice_task_submit(f, extra, SLUICE_FLOW_FOREVER), SLUICE_ESUPERVISOR);
	CHECK_OK(sluice_task_release(f, extra));
	sluice_task_t *out[4];
	CHECK_RC(sluice_flow_reap(f, out, 4), SLUICE_ESUPERVISOR);
	stop_and_check(f, t, 8);

	/* 2. Killed first; the client finds out on its next calls: a wait
	 * without a timeout, a submit. */
	printf("calls after the supervisor died:\n");
	f = make("sd-after", 0);
	sluice_task_t *quick = test_task_u64(f, 0);
	CHECK_OK(sluice_task_submit(f, quick, SEC));
	test_wait_task(f, quick); /* one that finishes before */
	CHECK(quick->status == SLUICE_TASK_OK && test_task_result_u64(quick) == 1);
	for (unsigned i = 0; i < 4; i++) {
		t[i] = test_task_u64(f, 10000);
		CHECK_OK(sluice_task_submit(f, t[i], SEC));
	}
	nw = open_worker_pidfds(f, fds);
	pid_t sup = (pid_t)sluice_flow_supervisor_pid(f);
	int sfd = pidfd_open(sup, 0);
	CHECK(sfd >= 0);
	CHECK(kill(sup, SIGKILL) == 0);
	died = test_now_ns();
	struct pollfd sp = {.fd = sfd, .events = POLLIN};
	CHECK(poll(&sp, 1, 10000) == 1);
	close(sfd);
	check_workers_gone(fds, nw, died);
	alarm(30 * test_slowdown());
	CHECK_RC(sluice_task_wait(f, t[0], SLUICE_FLOW_FOREVER), SLUICE_ESUPERVISOR);
	alarm(0);
	extra = test_task_u64(f, 1);
	CHECK_RC(sluice_task_submit(f, extra, SEC), SLUICE_ESUPERVISOR);
	CHECK_OK(sluice_task_release(f, extra));
	CHECK_OK(sluice_task_release(f, quick));
	stop_and_check(f, t, 4);

	/* 3. Killed while the client is blocked in submit on a full ring (one
	 * slot per lane: capacity 2), with no timeout. */
	printf("submit blocked on a full ring when the supervisor dies:\n");
	f = make("sd-submit", 2);
	sluice_task_t *many[16] = {NULL};
	for (unsigned i = 0; i < 16; i++)
		many[i] = test_task_u64(f, 10000);
	k = (struct killer){.pid = (pid_t)sluice_flow_supervisor_pid(f), .delay_ms = 200};
	CHECK(pthread_create(&th, NULL, kill_later, &k) == 0);
	alarm(30 * test_slowdown());
	int n = sluice_task_submit_many(f, many, 16, SLUICE_FLOW_FOREVER);
	alarm(0);
	CHECK(pthread_join(th, NULL) == 0);
	printf("  submit_many returned %d (%s)\n", n, n < 0 ? sluice_err_name(n) : "submitted");
	/* Some went in before the ring filled; the call reports how many, and
	 * the next one the death. */
	CHECK(n > 0 && n < 16);
	CHECK_RC(sluice_task_submit_many(f, many + n, 16 - (unsigned)n, SLUICE_FLOW_FOREVER),
		 SLUICE_ESUPERVISOR);
	for (unsigned i = (unsigned)n; i < 16; i++) {
		CHECK_OK(sluice_task_release(f, many[i]));
		many[i] = NULL;
	}
	stop_and_check(f, many, 16);
	printf("ok\n");
	return TEST_PASS;
}
