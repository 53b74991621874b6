/* Health of dying workers: what the snapshot says about a death.
 *
 *   kill       a worker SIGKILLed: its slot shows restarts + 1, a new pid
 *              (the one sluice_flow_worker_pid gives), the old one as
 *              last_pid, signal 9, exit code -1, no kill reason (not the
 *              supervisor's doing), the moment the supervisor noticed it
 *              (after the kill, before the replacement's fork and ready);
 *              the other slot is untouched
 *   exit       a handler that calls _exit(3): exit code 3, no signal; the
 *              task ends WORKER_DIED, counted in the flow's totals
 *   heartbeat  a handler asleep past heartbeat_timeout_ns, no task
 *              timeout: the worker is killed (kill reason HEARTBEAT,
 *              SIGKILL, counted in hung_kills) and the task retried,
 *              OK at attempt 1; then the flow idles several heartbeat
 *              timeouts long and nothing more is killed (an idle worker is
 *              not judged). */
#include "runtime/flow_test.h"

static int h_ok(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (test_payload_u64(&items[i]) == 3)
			_exit(3);
	return 0;
}

/* Task 41 at attempt 0: sleeps (not spinning: a stale heartbeat, not a
 * busy CPU); otherwise x + 1. */
static int h_sleepy(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (items[i].attempt == 0 && test_payload_u64(&items[i]) == 41)
			for (;;)
				usleep(10000);
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

static sluice_flow_snapshot_t *snap(sluice_flow_t *f, sluice_flow_snapshot_t *s)
{
	CHECK_OK(sluice_flow_snapshot_take(f, s));
	return s;
}

static void run_kill_and_exit(void)
{
	sluice_step_t st = test_step("k", h_ok, 2, 1);
	st.restart_delay_ns = 5 * MSEC;
	sluice_flow_t *f = test_flow("health-kill", &st, 1, 16);
	test_start(f);
	sluice_flow_snapshot_t *s;
	CHECK_OK(sluice_flow_snapshot_create(f, &s));
	snap(f, s);
	sluice_worker_health_t before = s->workers[0], other = s->workers[1];
	CHECK(before.restarts == 0 && before.pid > 0 && before.state == SLUICE_WORKER_READY);

	uint64_t t_kill = test_now_ns();
	pid_t victim = test_signal_slot(f, 0, SIGKILL);
	CHECK(victim == before.pid);
	TEST_WAIT_FOR(snap(f, s)->workers[0].restarts == 1 &&
			      s->workers[0].state == SLUICE_WORKER_READY,
		      30, "the killed worker restarted");
	const sluice_worker_health_t *w = &s->workers[0];
	printf("killed pid %d: noticed after %.3f ms, replacement pid %lld ready after %.3f ms\n",
	       victim, (w->last_death_ns - t_kill) / 1e6, (long long)w->pid,
	       (w->ready_ns - t_kill) / 1e6);
	CHECK(w->pid > 0 && w->pid != victim && w->pid == sluice_flow_worker_pid(f, 0, 0));
	CHECK(w->last_pid == victim && w->last_signal == SIGKILL && w->last_exit_code == -1);
	CHECK(w->last_kill == SLUICE_KILL_NONE && w->deaths == 1 && w->torn == 0);
	CHECK(w->last_death_ns >= t_kill && w->forked_ns >= w->last_death_ns);
	CHECK(w->ready_ns >= w->forked_ns);
	CHECK(s->steps[0].deaths == 1 && s->steps[0].restarts == 1 && s->steps[0].workers_live == 2);
	/* The other slot saw nothing. */
	CHECK(s->workers[1].pid == other.pid && s->workers[1].restarts == 0 &&
	      s->workers[1].deaths == 0 && s->workers[1].last_pid == 0);

	/* A handler that exits with code 3: one of the two slots. */
	sluice_task_t *t = test_task_u64(f, 3);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_WORKER_DIED);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(snap(f, s)->steps[0].deaths == 2 && s->steps[0].restarts == 2 &&
			      s->steps[0].workers_live == 2,
		      30, "the exited worker restarted");
	uint32_t k = s->workers[0].deaths == 2 ? 0 : 1;
	w = &s->workers[k];
	printf("slot %u: exit code %d, signal %d, deaths %u, restarts %u\n", k, w->last_exit_code,
	       w->last_signal, w->deaths, w->restarts);
	CHECK(w->last_exit_code == 3 && w->last_signal == 0 && w->last_kill == SLUICE_KILL_NONE);
	CHECK(s->completed[SLUICE_TASK_WORKER_DIED] == 1 && s->submitted == 1 && s->in_flight == 0);
	sluice_flow_snapshot_destroy(s);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	sluice_flow_destroy(f);
}

static void run_heartbeat(void)
{
	sluice_step_t st = test_step("sleepy", h_sleepy, 1, 1);
	st.heartbeat_timeout_ns = 100 * MSEC;
	st.max_attempts = 2;
	st.restart_delay_ns = 5 * MSEC;
	sluice_flow_t *f = test_flow("health-heartbeat", &st, 1, 16);
	test_start(f);
	sluice_flow_snapshot_t *s;
	CHECK_OK(sluice_flow_snapshot_create(f, &s));
	pid_t first = (pid_t)snap(f, s)->workers[0].pid;

	sluice_task_t *t = test_task_u64(f, 41);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	printf("task: %s (attempt %u): %s\n", sluice_task_status_name(t->status), t->attempt,
	       t->message);
	CHECK(t->status == SLUICE_TASK_OK && t->attempt == 1 && test_task_result_u64(t) == 42);
	CHECK_OK(sluice_task_release(f, t));
	TEST_WAIT_FOR(snap(f, s)->workers[0].restarts == 1 && s->steps[0].retried == 1, 30,
		      "the stale worker is replaced and its task retried");
	const sluice_worker_health_t *w = &s->workers[0];
	printf("hung kills %u, last kill %u, signal %d, pid %d -> %lld\n", s->steps[0].hung_kills,
	       w->last_kill, w->last_signal, first, (long long)w->pid);
	CHECK(w->last_pid == first && w->pid != first);
	CHECK(w->last_kill == SLUICE_KILL_HEARTBEAT && w->last_signal == SIGKILL && w->deaths == 1);
	CHECK(s->steps[0].hung_kills == 1 && s->steps[0].deaths == 1);

	/* Idle for several heartbeat timeouts: an idle worker does not beat
	 * and is not judged. */
	TEST_WAIT_FOR(snap(f, s)->workers[0].state == SLUICE_WORKER_READY, 30, "ready again");
	usleep(500 * 1000);
	snap(f, s);
	CHECK(s->steps[0].hung_kills == 1 && s->steps[0].deaths == 1 && w->restarts == 1);
	CHECK(w->busy_since_ns == 0 && w->in_hand == 0);
	/* And it serves. */
	t = test_task_u64(f, 1);
	CHECK_OK(sluice_task_submit(f, t, SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_OK && t->attempt == 0 && test_task_result_u64(t) == 2);
	CHECK_OK(sluice_task_release(f, t));
	sluice_flow_snapshot_destroy(s);
	pid_t pids[4];
	unsigned np = test_flow_pids(f, pids, 4);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK(test_pid_gone(first));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
}

int main(void)
{
	run_kill_and_exit();
	run_heartbeat();
	printf("ok\n");
	return TEST_PASS;
}
