/* A reader thread takes health snapshots without pause while the workers
 * of a 2-step flow write their records under load: it never sees a torn
 * record. In every copy of a worker record the latency buckets add up to
 * its tasks and the batch buckets to its batches, max_batch and the call
 * in hand fit the batch size, busy_since is set exactly when tasks are in
 * hand; from one snapshot to the next no counter, bucket, restart or death
 * count of a slot goes down; the client's totals only grow and never
 * complete more than was submitted.
 *
 *   plain  no deaths: no record may be torn; at the end each step ran
 *          every task exactly once (labels stress and tsan: the client's
 *          thread writes its totals while the reader reads them)
 *   kill   the main thread also SIGKILLs a random worker every 50 ms
 *          (restarts after 5 ms, 3 runs a task): a record a killed worker
 *          left mid-write is closed by the supervisor when it reaps; one
 *          read before that may be reported torn (counted, not checked)
 *
 * usage: test_flow_health_reader [seconds [plain|kill]]   (default 3 plain) */
#include "runtime/flow_test.h"

#include <pthread.h>

#define WINDOW 256u
#define BS_A 8u
#define BS_B 4u

static bool kill_mode;

struct reader {
	sluice_flow_t *f;
	_Atomic bool stop;
	uint64_t snapshots, torn;
	sluice_flow_snapshot_t *s;
	sluice_worker_health_t *prev; /* last untorn copy per slot */
	bool *have_prev;
	uint64_t prev_submitted, prev_completed[SLUICE_HEALTH_NSTATUS];
};

static int h_a(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	return 0;
}

/* Idempotent (a retry may see what a killed run left): a new block. */
static int h_b(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (items[i].result == NULL || items[i].result_len != sizeof(uint64_t))
			sluice_item_fail(&items[i], "no result from a");
		else if (!test_result_u64(&items[i], (test_payload_u64(&items[i]) + 1) * 2))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

static uint64_t sum(const uint64_t *v, unsigned n)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < n; i++)
		s += v[i];
	return s;
}

#define FAILIF(cond, ...)                                                                \
	do {                                                                             \
		if (cond) {                                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                    \
			fprintf(stderr, "\n");                                           \
			exit(TEST_FAIL);                                                 \
		}                                                                        \
	} while (0)

static void check_worker(struct reader *R, uint32_t w, uint32_t bs)
{
	const sluice_worker_health_t *h = &R->s->workers[w];
	if (h->torn) {
		R->torn++;
		return;
	}
	FAILIF(sum(h->latency_hist, SLUICE_HEALTH_LATENCY_BUCKETS) != h->tasks,
	       "slot %u: latency buckets %llu, tasks %llu", w,
	       (unsigned long long)sum(h->latency_hist, SLUICE_HEALTH_LATENCY_BUCKETS),
	       (unsigned long long)h->tasks);
	FAILIF(sum(h->batch_hist, SLUICE_HEALTH_BATCH_BUCKETS) != h->batches,
	       "slot %u: batch buckets %llu, batches %llu", w,
	       (unsigned long long)sum(h->batch_hist, SLUICE_HEALTH_BATCH_BUCKETS),
	       (unsigned long long)h->batches);
	FAILIF(h->max_batch > bs || h->in_hand > bs || h->tasks < h->batches, "slot %u", w);
	FAILIF((h->busy_since_ns == 0) != (h->in_hand == 0), "slot %u: busy since %llu, in hand %u",
	       w, (unsigned long long)h->busy_since_ns, h->in_hand);
	if (R->have_prev[w]) {
		const sluice_worker_health_t *p = &R->prev[w];
		FAILIF(h->tasks < p->tasks || h->batches < p->batches || h->restarts < p->restarts ||
			       h->deaths < p->deaths || h->handler_errors < p->handler_errors ||
			       h->bad_descriptors < p->bad_descriptors ||
			       h->latency_sum_ns < p->latency_sum_ns || h->max_batch < p->max_batch,
		       "slot %u went back: tasks %llu -> %llu", w, (unsigned long long)p->tasks,
		       (unsigned long long)h->tasks);
		for (unsigned i = 0; i < SLUICE_HEALTH_LATENCY_BUCKETS; i++)
			FAILIF(h->latency_hist[i] < p->latency_hist[i], "slot %u bucket %u", w, i);
		for (unsigned i = 0; i < SLUICE_HEALTH_BATCH_BUCKETS; i++)
			FAILIF(h->batch_hist[i] < p->batch_hist[i], "slot %u bucket %u", w, i);
		if (!kill_mode)
			FAILIF(h->pid != p->pid || h->restarts != 0, "slot %u changed process", w);
	}
	R->prev[w] = *h;
	R->have_prev[w] = true;
}

static void *reader_main(void *arg)
{
	struct reader *R = arg;
	sluice_flow_t *f = R->f;
	while (!atomic_load(&R->stop)) {
		CHECK_OK(sluice_flow_snapshot_take(f, R->s));
		sluice_flow_snapshot_t *s = R->s;
		R->snapshots++;
		for (uint32_t st = 0; st < s->nsteps; st++) {
			const sluice_step_health_t *sh = &s->steps[st];
			for (uint32_t k = 0; k < sh->nslots; k++)
				check_worker(R, sh->first_worker + k, sh->batch_size);
			if (s->torn == 0) {
				FAILIF(sum(sh->latency_hist, SLUICE_HEALTH_LATENCY_BUCKETS) != sh->tasks,
				       "step %u", st);
				FAILIF(sum(sh->batch_hist, SLUICE_HEALTH_BATCH_BUCKETS) != sh->batches,
				       "step %u", st);
			}
		}
		uint64_t done = sum(s->completed, SLUICE_HEALTH_NSTATUS);
		FAILIF(s->submitted < R->prev_submitted || done > s->submitted,
		       "client totals: submitted %llu (was %llu), completed %llu",
		       (unsigned long long)s->submitted, (unsigned long long)R->prev_submitted,
		       (unsigned long long)done);
		for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++) {
			FAILIF(s->completed[k] < R->prev_completed[k], "status %u went back", k);
			R->prev_completed[k] = s->completed[k];
		}
		R->prev_submitted = s->submitted;
		FAILIF(s->in_flight != s->submitted - done, "in flight");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t secs = test_arg_u64(argc, argv, 1, 3);
	kill_mode = argc > 2 && strcmp(argv[2], "kill") == 0;
	if (argc > 2 && !kill_mode && strcmp(argv[2], "plain") != 0) {
		fprintf(stderr, "usage: %s [seconds [plain|kill]]\n", argv[0]);
		return TEST_FAIL;
	}
	sluice_step_t steps[2] = {test_step("a", h_a, 2, BS_A), test_step("b", h_b, 2, BS_B)};
	steps[0].batch_timeout_ns = 100 * 1000;
	for (int i = 0; i < 2; i++) {
		steps[i].restart_delay_ns = 5 * MSEC;
		steps[i].restart_max_delay_ns = 20 * MSEC;
		steps[i].fail_deaths = SLUICE_STEP_NEVER_FAIL;
		steps[i].max_attempts = 3;
	}
	sluice_flow_t *f = test_flow("health-reader", steps, 2, 2 * WINDOW);
	test_start(f);
	int efd = sluice_flow_eventfd(f);
	CHECK(efd >= 0);

	struct reader R = {.f = f};
	CHECK_OK(sluice_flow_snapshot_create(f, &R.s));
	R.prev = calloc(R.s->nworkers, sizeof(*R.prev));
	R.have_prev = calloc(R.s->nworkers, sizeof(*R.have_prev));
	CHECK(R.prev != NULL && R.have_prev != NULL);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, reader_main, &R) == 0);

	uint64_t start = test_now_ns(), end = start + secs * SEC, next_kill = start + 50 * MSEC;
	uint64_t submitted = 0, ok = 0, died = 0, kills = 0, inflight = 0;
	unsigned seed = 7;
	sluice_task_t *out[64];
	for (;;) {
		uint64_t now = test_now_ns();
		bool running = now < end;
		if (!running && inflight == 0)
			break;
		while (running && inflight < WINDOW) {
			sluice_task_t *t = test_task_u64(f, submitted);
			CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
			submitted++;
			inflight++;
		}
		int n = sluice_flow_reap(f, out, 64);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			sluice_task_t *t = out[i];
			if (t->status == SLUICE_TASK_OK) {
				CHECK(test_task_result_u64(t) == (t->user + 1) * 2);
				ok++;
			} else {
				CHECK(kill_mode && t->status == SLUICE_TASK_WORKER_DIED);
				died++;
			}
			CHECK_OK(sluice_task_release(f, t));
			inflight--;
		}
		if (n == 0) {
			struct pollfd p = {.fd = efd, .events = POLLIN};
			(void)poll(&p, 1, 1);
		}
		if (kill_mode && running && now >= next_kill) {
			next_kill = now + 50 * MSEC;
			if (test_signal_slot(f, (uint32_t)(rand_r(&seed) % f->nworkers), SIGKILL) != 0)
				kills++;
		}
	}
	atomic_store(&R.stop, true);
	CHECK(pthread_join(th, NULL) == 0);

	CHECK_OK(sluice_flow_snapshot_take(f, R.s));
	sluice_flow_snapshot_t *s = R.s;
	printf("%llu tasks (%llu ok, %llu worker died), %llu kills; %llu snapshots, %llu torn "
	       "records; steps ran %llu and %llu tasks, %u and %u restarts\n",
	       (unsigned long long)submitted, (unsigned long long)ok, (unsigned long long)died,
	       (unsigned long long)kills, (unsigned long long)R.snapshots,
	       (unsigned long long)R.torn, (unsigned long long)s->steps[0].tasks,
	       (unsigned long long)s->steps[1].tasks, s->steps[0].restarts, s->steps[1].restarts);
	CHECK(R.snapshots > 0 && ok + died == submitted);
	CHECK(s->submitted == submitted && s->completed[SLUICE_TASK_OK] == ok &&
	      s->completed[SLUICE_TASK_WORKER_DIED] == died && s->in_flight == 0);
	if (!kill_mode) {
		CHECK(R.torn == 0 && s->torn == 0);
		CHECK(s->steps[0].tasks == submitted && s->steps[1].tasks == submitted);
	} else {
		CHECK(kills > 0 && s->steps[0].deaths + s->steps[1].deaths >= 1);
	}
	sluice_flow_snapshot_destroy(R.s);
	free(R.prev);
	free(R.have_prev);
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
