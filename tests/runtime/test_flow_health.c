/* Health snapshot: what a flow's health records say after known work.
 *
 *   counts   a 2-step flow runs N tasks (step b fails every tenth): the
 *            snapshot shows N submitted, N - N/10 OK and N/10 handler
 *            errors handed back, nothing in flight; each step N tasks;
 *            per worker and per step the batch buckets add up to the
 *            batches and the latency buckets to the tasks, the batch
 *            buckets bound the tasks, max_batch <= batch_size, the
 *            latency sum lies within its buckets; workers ready, idle,
 *            never restarted; sluice_flow_step_stats agrees.
 *   queue    a worker held in handle() with batch_size 1 and K tasks
 *            submitted: the snapshot shows its call in hand (1 task, busy
 *            since a beat) and K - 1 queued on the ring; released, every
 *            one done, nothing in hand or queued.
 *   stop     after stop: workers EXITED, exit code 0, no signal, no
 *            death; the flow STOPPED.
 *   geometry a snapshot made for another flow is refused. */
#include "runtime/flow_test.h"

#define N 3000u
#define WINDOW 128u

static _Atomic uint32_t *hold; /* shared: 1 = step "held" blocks in handle() */

static int h_a(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) * 2))
			sluice_item_fail(&items[i], "no block");
	return 0;
}

static int h_b(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (items[i].user % 10 == 0)
			sluice_item_fail(&items[i], "tenth");
	return 0;
}

static int h_held(void *arg, sluice_item_t *items, unsigned n)
{
	while (atomic_load(hold) != 0)
		usleep(1000);
	return 0;
}

static uint64_t sum(const uint64_t *v, unsigned n)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < n; i++)
		s += v[i];
	return s;
}

/* The invariants of one consistent record (a worker's or a step's sums). */
static void check_hists(const char *what, uint64_t tasks, uint64_t batches, uint32_t max_batch,
			uint32_t batch_size, uint64_t lat_sum, const uint64_t *bh, const uint64_t *lh)
{
	CHECK(sum(bh, SLUICE_HEALTH_BATCH_BUCKETS) == batches);
	CHECK(sum(lh, SLUICE_HEALTH_LATENCY_BUCKETS) == tasks);
	CHECK(max_batch <= batch_size);
	CHECK(tasks >= batches);
	/* A call of 2^i .. 2^(i+1) - 1 tasks: the buckets bound the tasks. */
	uint64_t lo = 0, hi = 0;
	for (unsigned i = 0; i < SLUICE_HEALTH_BATCH_BUCKETS; i++) {
		lo += bh[i] << i;
		hi += bh[i] * ((UINT64_C(2) << i) - 1);
		if (bh[i] != 0)
			CHECK((UINT64_C(1) << i) <= max_batch);
	}
	CHECK(lo <= tasks && tasks <= hi);
	uint64_t llo = 0, lhi = 0;
	for (unsigned i = 0; i < SLUICE_HEALTH_LATENCY_BUCKETS; i++) {
		llo += i == 0 ? 0 : lh[i] << i;
		lhi += lh[i] * ((i == 63 ? UINT64_MAX : (UINT64_C(2) << i) - 1));
	}
	if (!(llo <= lat_sum && lat_sum <= lhi)) {
		fprintf(stderr, "FAIL: %s: latency sum %llu outside its buckets [%llu, %llu]\n", what,
			(unsigned long long)lat_sum, (unsigned long long)llo, (unsigned long long)lhi);
		exit(TEST_FAIL);
	}
}

static void run_counts(void)
{
	sluice_step_t steps[2] = {test_step("a", h_a, 2, 8), test_step("b", h_b, 1, 4)};
	steps[0].batch_timeout_ns = 200 * 1000; /* batches of several sizes */
	sluice_flow_t *f = test_flow("health-counts", steps, 2, 2 * WINDOW);
	test_start(f);
	sluice_flow_snapshot_t *s;
	CHECK_OK(sluice_flow_snapshot_create(f, &s));
	CHECK(s->nsteps == 2 && s->nworkers == 3 && s->steps != NULL && s->workers != NULL);

	sluice_task_t *ts[WINDOW];
	uint64_t ok = 0, failed = 0;
	for (uint64_t next = 0; next < N;) {
		unsigned m = N - next < WINDOW ? (unsigned)(N - next) : WINDOW;
		for (unsigned i = 0; i < m; i++)
			ts[i] = test_task_u64(f, next + i);
		CHECK(sluice_task_submit_many(f, ts, m, 10 * SEC) == (int)m);
		for (unsigned i = 0; i < m; i++) {
			test_wait_task(f, ts[i]);
			if (ts[i]->status == SLUICE_TASK_OK) {
				CHECK(test_task_result_u64(ts[i]) == ts[i]->user * 2);
				ok++;
			} else {
				CHECK(ts[i]->status == SLUICE_TASK_HANDLER_ERROR && ts[i]->user % 10 == 0);
				failed++;
			}
			CHECK_OK(sluice_task_release(f, ts[i]));
		}
		next += m;
	}
	CHECK(ok == N - N / 10 && failed == N / 10);

	CHECK_OK(sluice_flow_snapshot_take(f, s));
	printf("flow: state %u, submitted %llu, ok %llu, handler errors %llu, in flight %llu\n",
	       s->state, (unsigned long long)s->submitted,
	       (unsigned long long)s->completed[SLUICE_TASK_OK],
	       (unsigned long long)s->completed[SLUICE_TASK_HANDLER_ERROR],
	       (unsigned long long)s->in_flight);
	CHECK(s->state == SLUICE_FLOW_RUNNING && s->torn == 0);
	CHECK(s->supervisor_pid == sluice_flow_supervisor_pid(f));
	CHECK(s->submitted == N && s->in_flight == 0);
	CHECK(s->completed[SLUICE_TASK_OK] == ok && s->completed[SLUICE_TASK_HANDLER_ERROR] == failed);
	CHECK(sum(s->completed, SLUICE_HEALTH_NSTATUS) == N);
	for (uint32_t i = 0; i < 2; i++) {
		const sluice_step_health_t *st = &s->steps[i];
		printf("step %s: tasks %llu, batches %llu, max batch %u, queued %llu, mean latency %.1f us\n",
		       st->name, (unsigned long long)st->tasks, (unsigned long long)st->batches,
		       st->max_batch, (unsigned long long)st->queued,
		       st->latency_sum_ns / 1e3 / (double)st->tasks);
		CHECK(strcmp(st->name, i == 0 ? "a" : "b") == 0);
		CHECK(st->tasks == N && st->queued == 0 && st->failed == 0);
		CHECK(st->batch_size == steps[i].batch_size && st->nprocs == steps[i].nprocs);
		CHECK(st->workers_live == st->nprocs && st->deaths == 0 && st->restarts == 0);
		CHECK(st->handler_errors == (i == 1 ? N / 10 : 0));
		CHECK(st->batches >= N / st->batch_size);
		check_hists(st->name, st->tasks, st->batches, st->max_batch, st->batch_size,
			    st->latency_sum_ns, st->batch_hist, st->latency_hist);
		uint64_t wt = 0;
		for (uint32_t k = 0; k < st->nslots; k++) {
			const sluice_worker_health_t *w = &s->workers[st->first_worker + k];
			CHECK(w->step == i && w->position == k && w->torn == 0);
			CHECK(w->state == SLUICE_WORKER_READY);
			CHECK(w->pid > 0 && w->pid == sluice_flow_worker_pid(f, i, k));
			CHECK(w->forked_ns > 0 && w->ready_ns >= w->forked_ns);
			CHECK(w->heartbeat_ns >= w->ready_ns && w->heartbeat_ns <= s->taken_ns);
			CHECK(w->busy_since_ns == 0 && w->busy_ns == 0 && w->in_hand == 0);
			CHECK(w->restarts == 0 && w->deaths == 0 && w->last_pid == 0 && w->last_death_ns == 0);
			check_hists(st->name, w->tasks, w->batches, w->max_batch, st->batch_size,
				    w->latency_sum_ns, w->batch_hist, w->latency_hist);
			wt += w->tasks;
		}
		CHECK(wt == N);
		sluice_step_stats_t ss = test_stats(f, i);
		CHECK(ss.tasks == st->tasks && ss.batches == st->batches && ss.max_batch == st->max_batch);
		CHECK(ss.handler_errors == st->handler_errors && ss.workers_live == st->workers_live);
	}
	/* Step a with 2 workers and a batch timeout: batches of more than one. */
	CHECK(s->steps[0].batches < N);

	/* A snapshot is made for one flow's geometry. */
	sluice_step_t one = test_step("x", h_a, 1, 1);
	sluice_flow_t *g = test_flow("health-other", &one, 1, 8);
	CHECK_RC(sluice_flow_snapshot_take(g, s), SLUICE_EINVAL);
	sluice_flow_snapshot_t *gs;
	CHECK_OK(sluice_flow_snapshot_create(g, &gs));
	CHECK_OK(sluice_flow_snapshot_take(g, gs));
	CHECK(gs->state == SLUICE_FLOW_CREATED && gs->workers[0].pid == 0 && gs->steps[0].tasks == 0);
	sluice_flow_snapshot_destroy(gs);
	sluice_flow_destroy(g);

	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	test_check_gone(pids, np);
	CHECK_OK(sluice_flow_snapshot_take(f, s));
	CHECK(s->state == SLUICE_FLOW_STOPPED);
	for (uint32_t w = 0; w < s->nworkers; w++) {
		const sluice_worker_health_t *h = &s->workers[w];
		CHECK(h->state == SLUICE_WORKER_EXITED && h->torn == 0);
		CHECK(h->last_pid == h->pid && h->last_exit_code == 0 && h->last_signal == 0);
		CHECK(h->deaths == 0 && h->last_kill == SLUICE_KILL_NONE && h->last_death_ns > 0);
		CHECK(h->ready_ns == 0); /* the process is gone */
	}
	sluice_flow_snapshot_destroy(s);
	sluice_flow_destroy(f);
}

static void run_queue(void)
{
	const unsigned K = 5;
	atomic_store(hold, 1);
	sluice_step_t st = test_step("held", h_held, 1, 1);
	sluice_flow_t *f = test_flow("health-queue", &st, 1, 16);
	test_start(f);
	sluice_flow_snapshot_t *s;
	CHECK_OK(sluice_flow_snapshot_create(f, &s));
	sluice_task_t *ts[8];
	for (unsigned i = 0; i < K; i++)
		ts[i] = test_task_u64(f, i);
	CHECK(sluice_task_submit_many(f, ts, K, SEC) == (int)K);
	TEST_WAIT_FOR(sluice_flow_snapshot_take(f, s) == 0 && s->workers[0].in_hand == 1 &&
			      s->steps[0].queued == K - 1,
		      30, "a call in hand and the rest queued");
	const sluice_worker_health_t *w = &s->workers[0];
	printf("in hand %u since %llu ns ago, queued %llu, in flight %llu\n", w->in_hand,
	       (unsigned long long)w->busy_ns, (unsigned long long)s->steps[0].queued,
	       (unsigned long long)s->in_flight);
	CHECK(w->busy_since_ns != 0 && w->heartbeat_ns == w->busy_since_ns);
	CHECK(w->busy_since_ns <= s->taken_ns);
	CHECK(w->tasks == 0 && s->in_flight == K && s->submitted == K);
	atomic_store(hold, 0);
	for (unsigned i = 0; i < K; i++) {
		test_wait_task(f, ts[i]);
		CHECK(ts[i]->status == SLUICE_TASK_OK);
		CHECK_OK(sluice_task_release(f, ts[i]));
	}
	CHECK_OK(sluice_flow_snapshot_take(f, s));
	CHECK(w->in_hand == 0 && w->busy_since_ns == 0 && w->tasks == K && w->batches == K);
	CHECK(w->batch_hist[0] == K && s->steps[0].queued == 0 && s->in_flight == 0);
	sluice_flow_snapshot_destroy(s);
	CHECK_OK(sluice_flow_stop(f, 5 * SEC));
	sluice_flow_destroy(f);
}

int main(void)
{
	hold = test_shared(sizeof(*hold));
	run_counts();
	run_queue();
	printf("ok\n");
	return TEST_PASS;
}
