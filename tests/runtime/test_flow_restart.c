/* Restarts with exponential back-off, and no fork storm: a worker whose
 * replacements all die in on_start is restarted after 20, 40, 80, 80 ms
 * (restart_delay 20 ms, max 80 ms), then its step fails at the fifth death
 * within the window, and no process is forked for it afterwards. Every
 * process that ran is counted (on_start records each, with the time), and
 * the supervisor's log names the step, the cause and the delay. A task
 * queued meanwhile completes with STEP_FAILED; the other step goes on.
 *
 * Timing is checked only as lower bounds the supervisor guarantees (a
 * restart never comes sooner than its delay); nothing about speed. */
#include "runtime/flow_test.h"

#include <fcntl.h>

#define MAX_STARTS 64

struct shared {
	_Atomic uint32_t crash;               /* 1: on_start of step "loop" dies */
	_Atomic uint32_t starts;              /* on_start calls of step "loop" */
	_Atomic uint64_t start_ns[MAX_STARTS];
	_Atomic int32_t start_pid[MAX_STARTS];
};
static struct shared *sh;

static int on_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t len)
{
	uint32_t i = atomic_fetch_add(&sh->starts, 1);
	if (i < MAX_STARTS) {
		atomic_store(&sh->start_ns[i], test_now_ns());
		atomic_store(&sh->start_pid[i], (int32_t)getpid());
	}
	if (atomic_load(&sh->crash))
		_exit(3);
	return 0;
}

static int h_plus1(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	return 0;
}

static bool cond_to_loop(void *arg, const sluice_item_t *t)
{
	return test_payload_u64(t) % 2 == 0; /* even payloads go through "loop" */
}

int main(void)
{
	sh = test_shared(sizeof(*sh));
	uint64_t delay = 20 * MSEC, max_delay = 80 * MSEC;

	/* The supervisor's log goes to our stderr: catch it in a file. */
	char logpath[] = "/tmp/sluice-restart-XXXXXX";
	int logfd = mkstemp(logpath);
	CHECK(logfd >= 0);
	unlink(logpath);
	int saved_err = dup(2);
	CHECK(saved_err >= 0 && dup2(logfd, 2) == 2);

	sluice_step_t steps[2] = {
		test_step("loop", h_plus1, 1, 4),
		test_step("steady", h_plus1, 1, 4),
	};
	steps[0].handler.on_start = on_start;
	steps[0].condition = cond_to_loop;
	steps[0].restart_delay_ns = delay;
	steps[0].restart_max_delay_ns = max_delay;
	steps[0].fail_deaths = 5;
	steps[0].fail_window_ns = 120 * SEC;
	sluice_flow_t *f = test_flow("restart", steps, 2, 64);
	test_start(f);
	CHECK(atomic_load(&sh->starts) == 1);

	/* From now on every replacement dies in on_start. */
	atomic_store(&sh->crash, 1);
	pid_t first = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	CHECK(kill(first, SIGKILL) == 0);
	TEST_WAIT_FOR(test_stats(f, 0).failed == 1, 60, "the step failed");
	/* No fork storm: nothing more is forked for it, ever. */
	uint32_t starts = atomic_load(&sh->starts);
	usleep(300 * 1000);
	CHECK(atomic_load(&sh->starts) == starts);
	sluice_step_stats_t st = test_stats(f, 0);
	printf("step loop: %u on_start calls, %u deaths, %u restarts, failed %u\n", starts,
	       st.worker_deaths, st.restarts, st.failed);
	/* 1 at start + 4 restarts; the 5th death (the 4th restart's) fails
	 * the step. */
	CHECK(starts == 5 && st.restarts == 4 && st.worker_deaths == 5);
	for (uint32_t k = 1; k < starts; k++) {
		/* Restart k came after death k, which came after on_start k-1
		 * (the kill for k = 1; an immediate _exit after). */
		uint64_t gap = atomic_load(&sh->start_ns[k]) - atomic_load(&sh->start_ns[k - 1]);
		uint64_t want = delay << (k - 1);
		if (want > max_delay)
			want = max_delay;
		printf("restart %u after %.1f ms (back-off %llu ms)\n", k, gap / 1e6,
		       (unsigned long long)(want / MSEC));
		CHECK(gap >= want);
		CHECK(atomic_load(&sh->start_pid[k]) != atomic_load(&sh->start_pid[k - 1]));
	}

	/* The failed step's tasks fail; the other step still serves (odd
	 * payloads skip "loop"). */
	sluice_task_t *even = test_task_u64(f, 4), *odd = test_task_u64(f, 5);
	CHECK_OK(sluice_task_submit(f, even, SEC));
	CHECK_OK(sluice_task_submit(f, odd, SEC));
	test_wait_task(f, even);
	test_wait_task(f, odd);
	printf("even: %s: %s; odd: %s\n", sluice_task_status_name(even->status), even->message,
	       sluice_task_status_name(odd->status));
	CHECK(even->status == SLUICE_TASK_STEP_FAILED && strstr(even->message, "'loop'") != NULL);
	CHECK(odd->status == SLUICE_TASK_OK && test_task_result_u64(odd) == 6);
	CHECK_OK(sluice_task_release(f, even));
	CHECK_OK(sluice_task_release(f, odd));

	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	for (uint32_t k = 0; k < starts; k++)
		CHECK(test_pid_gone(atomic_load(&sh->start_pid[k])));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);

	/* The log: cause, step, delay, failure. */
	fflush(stderr);
	CHECK(dup2(saved_err, 2) == 2);
	close(saved_err);
	char log[16384];
	ssize_t len = pread(logfd, log, sizeof(log) - 1, 0);
	close(logfd);
	CHECK(len > 0);
	log[len] = '\0';
	fputs(log, stderr);
	CHECK(strstr(log, "step 'loop' worker 0 (pid") != NULL);
	CHECK(strstr(log, "was killed by signal 9") != NULL);
	CHECK(strstr(log, "exited with code 3") != NULL);
	CHECK(strstr(log, "restarting in 20 ms") != NULL);
	CHECK(strstr(log, "restarting in 40 ms") != NULL);
	CHECK(strstr(log, "restarting in 80 ms") != NULL);
	CHECK(strstr(log, "step 'loop' failed: 5 worker deaths") != NULL);
	printf("ok\n");
	return TEST_PASS;
}
