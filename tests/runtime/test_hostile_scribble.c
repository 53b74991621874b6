/* Hostile scribbles (docs/SECURITY.md): an attached client writes garbage
 * over what it can write of its own in the arena, through its read-write
 * mapping, while a second attached client and the creator keep
 * submitting and checking every result:
 *   1. its task entries while in flight: state words (random, HELD by a
 *      worker that does not hold them, QUEUED at another step, DONE for
 *      another client), descriptors (another client's blocks, lengths),
 *      journals, cancel flags, messages without a NUL; it leaves some
 *      entries forged HELD and some queued at no step when it goes;
 *   2. health records: its client totals with the sequence counter left
 *      odd, and a worker's record (shared memory is writable to it) kept
 *      odd and filled with garbage for a while;
 *   3. its client slot (first_task, ntasks, completion ring offset and
 *      size, pid, dropped), left so while a new client and an observer
 *      attach;
 *   4. the counters of its own ring lanes (a step lane's p_tail and
 *      another's c_head made impossible) and of every lane of its
 *      completion ring, while 1,600 tasks of its own come back through it
 *      (more than a lane holds: the workers meet the scribble); left so
 *      when it goes;
 *   5. the magic of its completion ring's header, of a step ring's header
 *      and of the flow header: the processes running go on (they use
 *      their own validated copies), a client attaching meanwhile is
 *      refused with SLUICE_EBADMAGIC (what every later attach would get,
 *      were they left so: a limit, docs/SECURITY.md); put back.
 *   6. (another flow) a worker's heartbeat, on a step with a heartbeat
 *      timeout: the supervisor kills that worker as hung, restarts it and
 *      runs again the task it held; that is the one death a scribble may
 *      cause that the design accepts.
 * What is guaranteed and asserted: no process of the flow dies (but 6), the good
 * clients lose nothing, snapshots return (reporting torn records), the
 * hostile's slot is drained and comes back, new clients attach and work
 * (one in the hostile's old slot), and after stop no block is left in
 * use. */
#include "runtime/hostile_test.h"

#include "queues/ring_layout.h"

#include <sluice/ring.h>

struct report {
	_Atomic uint32_t phase;   /* the hostile's: 1..5, 6 when done */
	_Atomic uint32_t ack;     /* the test's: the phase it has seen through */
	_Atomic uint32_t torn;    /* snapshots that reported a torn record */
	_Atomic uint32_t snaps;
};
static struct report *R;

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void wait_ack(uint32_t phase)
{
	uint64_t until = test_now_ns() + 60 * SEC * test_slowdown();
	while (atomic_load(&R->ack) < phase) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
}

static struct sluice_ring_lane *lane_of(const sluice_ring_producer_t *p)
{
	return p->lane_;
}

/* Every lane of our completion ring: the consumers' counter made
 * impossible (the producers' snapshots cannot agree with it). */
static void scribble_completions(sluice_flow_t *g)
{
	char *base = (char *)g->comp_mem[g->client];
	const struct sluice_ring_hdr *h = (const void *)base;
	for (uint32_t i = 0; i < h->nlanes; i++) {
		struct sluice_ring_lane *l = (void *)(base + h->lane_off + i * h->lane_stride);
		unsigned c = atomic_load((_Atomic unsigned *)&l->ring.c_head);
		atomic_store((_Atomic unsigned *)&l->ring.c_head, c + 99999u);
	}
}

static void scribble_lanes(sluice_flow_t *g)
{
	struct sluice_ring_lane *a = lane_of(&g->prod[0][0]), *b = lane_of(&g->prod[1][0]);
	atomic_store((_Atomic unsigned *)&a->ring.p_tail,
		     atomic_load((_Atomic unsigned *)&a->ring.c_head) + 1000u);
	atomic_store((_Atomic unsigned *)&b->ring.c_head,
		     atomic_load((_Atomic unsigned *)&b->ring.p_tail) - 3000u);
}

static void scribble_slot(sluice_flow_t *g)
{
	struct sluice__client_slot *cs = &g->cslots[g->client];
	cs->first_task = 0xfffff000u;
	cs->ntasks = 0xffffffffu;
	cs->comp_ring_off = UINT64_MAX - 63;
	cs->comp_ring_size = UINT64_C(1) << 50;
	atomic_store(&cs->pid, 1);
	atomic_store(&cs->dropped, rnd());
}

static int hostile(sluice_flow_t *g, void *arg)
{
	(void)arg;
	const uint32_t me = g->client, first = h_first(g, me);

	/* 1. Entries in flight. */
	atomic_store(&R->phase, 1);
	sluice_task_t *t[64];
	for (unsigned i = 0; i < 64; i++) {
		CHECK_OK(sluice_task_alloc(g, 8, &t[i]));
		memcpy(t[i]->payload, &i, sizeof(i));
		t[i]->payload_len = 8;
	}
	CHECK_RC(sluice_task_submit_many(g, t, 64, 10 * SEC), 64);
	uint64_t end = test_now_ns() + 300 * MSEC;
	for (unsigned round = 0; test_now_ns() < end; round++) {
		for (unsigned i = 0; i < 64; i++) {
			struct sluice__task_entry *e = &g->tasks[t[i]->slot_];
			uint64_t w = atomic_load(&e->state);
			uint32_t gen = SLUICE__TW_GEN(w);
			switch ((i + round) % 6) {
			case 0:
				atomic_store(&e->state, rnd());
				break;
			case 1:
				atomic_store(&e->state, SLUICE__TW(SLUICE__TS_HELD,
								   rnd() % g->nworkers, gen + 1));
				break;
			case 2:
				atomic_store(&e->state, SLUICE__TW(SLUICE__TS_QUEUED, 1, gen + 1));
				break;
			case 3:
				atomic_store(&e->state, SLUICE__TW(SLUICE__TS_DONE, 0, gen + 1));
				break;
			case 4:
				e->desc.payload_block = (uint32_t)rnd();
				e->desc.result_block = (uint32_t)rnd() % 64;
				e->desc.result_len = (uint32_t)rnd();
				e->desc.slot = (uint32_t)rnd() % g->max_tasks;
				break;
			case 5:
				e->j_gen = gen + 1;
				e->j_worker = (uint32_t)rnd() % (g->nworkers + 2);
				e->j_result_block = (uint32_t)rnd() % 64;
				e->j_new_block = (uint32_t)rnd() % 64;
				atomic_store(&e->cancel, (uint32_t)rnd());
				memset(e->message, 0xff, sizeof(e->message));
				break;
			}
		}
		usleep(100);
	}
	/* What it leaves: forged HELD entries (held by workers that do not
	 * hold them), entries queued at a step that does not exist, garbage. */
	for (unsigned i = 0; i < 64; i++) {
		struct sluice__task_entry *e = &g->tasks[t[i]->slot_];
		uint32_t gen = SLUICE__TW_GEN(atomic_load(&e->state));
		uint64_t w = i % 3 == 0   ? SLUICE__TW(SLUICE__TS_HELD, i % g->nworkers, gen + 1)
			     : i % 3 == 1 ? SLUICE__TW(SLUICE__TS_QUEUED, 77, gen + 1)
					  : rnd();
		atomic_store(&e->state, w);
	}
	/* And entries it never used (the last of its share: alloc hands out
	 * the first ones first), forged too. */
	const uint32_t top = first + g->tasks_per_client;
	for (uint32_t i = top - 32; i < top - 1; i++)
		atomic_store(&g->tasks[i].state,
			     SLUICE__TW(SLUICE__TS_HELD, SLUICE__HELD_SUPERVISOR, 5));
	atomic_store(&g->tasks[top - 1].state, SLUICE__TW(SLUICE__TS_HELD, 0xfffff0, 5));

	/* 2. Health records. */
	atomic_store(&R->phase, 2);
	struct sluice__health_client *hc = &g->hclients[me];
	atomic_store(&hc->cseq, 12345); /* odd: a section never closed */
	atomic_store(&hc->submitted, UINT64_MAX - 3);
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++)
		atomic_store(&hc->completed[k], rnd());
	struct sluice__health_worker *hw = &g->hworkers[0];
	end = test_now_ns() + 300 * MSEC;
	while (test_now_ns() < end) {
		atomic_store(&hw->wseq, (atomic_load(&hw->wseq) + 1) | 1);
		atomic_store(&hw->heartbeat_ns, 1);
		atomic_store(&hw->busy_since_ns, 1);
		atomic_store(&hw->in_hand, (uint32_t)rnd());
		atomic_store(&hw->max_batch, (uint32_t)rnd());
		atomic_store(&hw->latency_hist[rnd() % SLUICE_HEALTH_LATENCY_BUCKETS], rnd());
		usleep(100);
	}
	wait_ack(2);

	/* 3. The client slot, while a client and an observer attach; and
	 * again after (the supervisor wrote it back for them), left so. */
	atomic_store(&R->phase, 3);
	scribble_slot(g);
	wait_ack(3);
	scribble_slot(g);

	/* 4. Ring lanes: ours on the step rings, and our completion ring,
	 * while tasks of ours (high priority: our normal lane on step 0 is
	 * the one made impossible) come back through it. */
	atomic_store(&R->phase, 4);
	scribble_lanes(g);
	scribble_completions(g);
	sluice_task_t *u[32];
	for (unsigned i = 0; i < 32; i++) {
		CHECK_OK(sluice_task_alloc(g, 8, &u[i]));
		memcpy(u[i]->payload, &i, sizeof(i));
		u[i]->payload_len = 8;
		u[i]->priority = SLUICE_PRIORITY_HIGH;
	}
	CHECK_RC(sluice_task_submit_many(g, u, 32, 10 * SEC), 32);
	/* A worker looks at its completion lane's consumer counter only when
	 * its own count says the lane is full: push more than a lane's worth
	 * through, by hand (entries of ours the library no longer hands out
	 * are queued and, once DONE, reused), scribbling as we go. */
	uint32_t lo = first + 100, hi = first + 200;
	for (unsigned round = 0; round < 16; round++) {
		scribble_lanes(g);
		scribble_completions(g);
		for (uint32_t slot = lo; slot < hi; slot++) {
			struct sluice__task_entry *e = &g->tasks[slot];
			uint32_t gen = SLUICE__TW_GEN(atomic_load(&e->state)) + 1;
			sluice_desc_t d = {.task_id = SLUICE__TASK_ID(gen, slot), .slot = slot,
					   .client = me, .step = 0, .priority = 1,
					   .payload_block = SLUICE_BLOCK_NONE,
					   .result_block = SLUICE_BLOCK_NONE};
			e->desc = d;
			e->queued_ns = test_now_ns();
			atomic_store(&e->cancel, 0);
			atomic_store(&e->state, SLUICE__TW(SLUICE__TS_QUEUED, 0, gen));
			CHECK(sluice_ring_enqueue_mpmc(&g->prod[0][1], &d, 10 * SEC) == 1);
		}
		uint64_t until = test_now_ns() + 20 * SEC * test_slowdown();
		for (uint32_t slot = lo; slot < hi; slot++) {
			unsigned st;
			while ((st = SLUICE__TW_STATE(atomic_load(&g->tasks[slot].state))) ==
				       SLUICE__TS_QUEUED ||
			       st == SLUICE__TS_HELD) {
				CHECK(test_now_ns() < until);
				usleep(100);
			}
		}
	}
	end = test_now_ns() + 300 * MSEC;
	while (test_now_ns() < end) {
		scribble_lanes(g);
		usleep(1000);
	}
	scribble_completions(g);
	wait_ack(4);
	/* 5. Geometry written once by create, which every process that opens
	 * the arena validates: the magic of its completion ring's header, of
	 * a step ring's header and of the flow header. Running processes use
	 * their own validated copies; newcomers are refused, clearly. Put back
	 * before it goes. */
	uint64_t *m[3] = {(uint64_t *)g->comp_mem[me], (uint64_t *)g->steps[1].ring_mem,
			  &g->hdr->magic};
	uint64_t was[3];
	for (int i = 0; i < 3; i++) {
		was[i] = *m[i];
		*m[i] = 0x6c6c61766e6920ULL;
	}
	atomic_store(&R->phase, 5);
	wait_ack(5);
	for (int i = 0; i < 3; i++)
		*m[i] = was[i];

	/* Its client totals left in an open section (its own calls above
	 * closed the first one). */
	atomic_store(&g->hclients[me].cseq, 77777);
	atomic_store(&R->phase, 6);
	return 0;
}

/* Every lane of every step ring has counters a consumer can use: the
 * lanes of the client that scribbled on them were mended when its slot
 * was drained (released). */
static void check_lanes(const sluice_flow_t *f)
{
	for (uint32_t s = 0; s < f->nsteps; s++) {
		char *base = f->steps[s].ring_mem;
		const struct sluice_ring_hdr *h = (const void *)base;
		for (uint32_t i = 0; i < h->nlanes; i++) {
			struct sluice_ring_lane *l = (void *)(base + h->lane_off + i * h->lane_stride);
			unsigned c = atomic_load((_Atomic unsigned *)&l->ring.c_head);
			unsigned p = atomic_load((_Atomic unsigned *)&l->ring.p_tail);
			if (p - c > h->capacity - 1) {
				fprintf(stderr, "FAIL: step %u lane %u: c_head %u, p_tail %u\n", s, i, c, p);
				exit(TEST_FAIL);
			}
		}
	}
}

static sluice_flow_snapshot_t *snap;

/* The test's loop while the hostile works: good rounds, a snapshot after
 * each, and what each phase wants. */
static int watch(sluice_flow_t *f, pid_t bad, uint64_t *seq)
{
	for (;;) {
		h_good_round(f, 0, seq);
		CHECK_OK(sluice_flow_snapshot_take(f, snap));
		atomic_fetch_add(&R->snaps, 1);
		if (snap->torn > 0)
			atomic_fetch_add(&R->torn, 1);
		uint32_t ph = atomic_load(&R->phase);
		if (ph == 2 && atomic_load(&R->ack) < 2 && atomic_load(&R->torn) > 0) {
			atomic_store(&R->ack, 2);
		} else if (ph == 3 && atomic_load(&R->ack) < 3) {
			/* Its slot is garbage: others still attach (the
			 * supervisor writes the slot table back from its own
			 * copy before every grant) and work. */
			sluice_flow_t *obs = h_attach(SLUICE_ATTACH_READ_ONLY);
			sluice_flow_destroy(obs);
			h_new_client_works(f, 3, seq);
			atomic_store(&R->ack, 3);
		} else if (ph == 4 && atomic_load(&R->ack) < 4) {
			/* Tasks of every good client keep coming back while its
			 * lanes are impossible: a few rounds more. */
			for (int i = 0; i < 50; i++)
				h_good_round(f, 0, seq);
			atomic_store(&R->ack, 4);
		} else if (ph == 5 && atomic_load(&R->ack) < 5) {
			/* Headers scribbled: we go on; a newcomer is refused. */
			for (int i = 0; i < 20; i++)
				h_good_round(f, 0, seq);
			char err[256];
			int rc = h_attach_code(10 * SEC, err, sizeof(err));
			printf("attach while the headers are scribbled on: %s: %s\n",
			       sluice_err_name(rc), err);
			CHECK(rc == SLUICE_EBADMAGIC);
			atomic_store(&R->ack, 5);
		}
		int st;
		pid_t r = waitpid(bad, &st, WNOHANG);
		CHECK(r >= 0);
		if (r == bad)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

/* 6. A worker's heartbeat scribbled on a step with heartbeat_timeout_ns:
 * the supervisor takes the worker for hung and kills it (the one death
 * a scribble can cause that the design accepts: the task it held is run
 * again, it is restarted). The hostile stops once it has been killed. */
static int stale_heartbeat(sluice_flow_t *g, void *arg)
{
	(void)arg;
	struct sluice__health_worker *hw = &g->hworkers[0];
	uint64_t until = test_now_ns() + 30 * SEC * test_slowdown();
	while (atomic_load(&g->step_recs[0].hung_kills) == 0) {
		CHECK(test_now_ns() < until);
		sluice__seq_begin(&hw->wseq);
		atomic_store(&hw->busy_since_ns, 1);
		atomic_store(&hw->heartbeat_ns, 1);
		sluice__seq_end(&hw->wseq);
	}
	return 0;
}

static void beats(sluice_flow_opts_t *o, sluice_step_t *steps)
{
	(void)o;
	steps[0].heartbeat_timeout_ns = 100 * MSEC;
	steps[0].max_attempts = 3;
	steps[0].restart_delay_ns = 10 * MSEC;
}

static void heartbeat(void)
{
	sluice_flow_t *f = h_flow("heartbeat", 3, beats);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	CHECK(h_good_while(f, h_spawn_hostile(stale_heartbeat, NULL), 0, &seq) == 0);
	TEST_WAIT_FOR(test_stats(f, 0).restarts >= 1 && test_stats(f, 0).workers_live == 2, 10,
		      "the worker killed for its heartbeat restarted");
	for (int i = 0; i < 20; i++)
		h_good_round(f, 0, &seq);
	sluice_step_stats_t st = test_stats(f, 0);
	printf("heartbeat scribbled: %u killed as hung, %u restarted, %llu tasks run again; the "
	       "creator's %llu tasks all right\n",
	       st.hung_kills, st.restarts, (unsigned long long)st.retried, (unsigned long long)seq);
	CHECK(st.hung_kills >= 1 && st.failed == 0);
	CHECK(test_stats(f, 1).worker_deaths == 0);
	h_wait_slots_free(f);
	h_stop(f);
}

int main(void)
{
	R = test_shared(sizeof(*R));
	sluice_flow_t *f = h_flow("scribble", 4, NULL);
	CHECK_OK(sluice_flow_snapshot_create(f, &snap));
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	int stop[2];
	CHECK(pipe(stop) == 0);
	pid_t good = h_spawn_good(stop[0], stop[1], 1);
	close(stop[0]);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	pid_t bad = h_spawn_hostile(hostile, NULL);
	CHECK(watch(f, bad, &seq) == 0);
	CHECK(atomic_load(&R->phase) == 6);
	printf("%u snapshots while it scribbled, %u reported torn records; the creator ran %llu "
	       "tasks\n",
	       atomic_load(&R->snaps), atomic_load(&R->torn), (unsigned long long)seq);
	close(stop[1]);
	CHECK(test_wait(good) == 0);
	h_check_intact(f, before);
	/* Its slot is drained (forged HELD entries included) and comes back:
	 * a new client gets it and works. */
	h_wait_slots_free(f);
	check_lanes(f);
	/* Every record reads whole again (the worker closed its section at
	 * its next write, the supervisor the gone client's at release). */
	TEST_WAIT_FOR(sluice_flow_snapshot_take(f, snap) == 0 && snap->torn == 0, 10,
		      "no torn record once the hostile client is gone");
	h_new_clients_work(f, f->nclients - 1, 4, &seq);
	h_check_intact(f, before);
	sluice_flow_snapshot_destroy(snap);
	h_stop(f);
	heartbeat();
	printf("ok\n");
	return TEST_PASS;
}
