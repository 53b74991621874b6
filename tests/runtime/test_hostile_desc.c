/* Hostile descriptors (docs/SECURITY.md): an attached client writes
 * descriptors straight into the step rings through its own lanes, and
 * task entries of its own share with forged fields, while a second
 * attached client and the creator keep submitting and checking every
 * result:
 *   - slots out of range, a task_id that disagrees with its slot, pills
 *     (a real pill is skipped, a false one refused), a step index out of
 *     range, garbage;
 *   - copies of the other clients' entries (a "stolen" entry): for every
 *     entry of theirs seen QUEUED, a descriptor naming it at its
 *     generation, with our own payload block; for others, stale ones;
 *   - entries of its own submitted by hand with a payload or result block
 *     out of range or owned by another client, lengths past capacity, a
 *     descriptor naming another slot, client or step, an entry queued at
 *     a step index out of range.
 * Every one is refused (bad_descriptors counts at least as many as were
 * sent; its own entries end BAD_DESCRIPTOR with a message); no worker
 * dies; the good clients lose nothing (every result right); a stolen
 * entry runs once, as its owner wrote it; afterwards the hostile slot is
 * drained, new clients attach to every slot and work, and after stop no
 * block is left in use. */
#include "runtime/hostile_test.h"

#include <sluice/ring.h>

/* What the hostile child tells the test (shared memory). */
struct report {
	_Atomic uint64_t refusable; /* descriptors sent that a worker must refuse */
	_Atomic uint64_t stolen;    /* copies of another client's QUEUED entry */
	_Atomic uint32_t own_bad;   /* own entries that ended BAD_DESCRIPTOR */
	_Atomic uint32_t own_sent;
};
static struct report *R;

static void put(sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n)
{
	unsigned k = 0;
	while (k < n) {
		int rc = sluice_ring_enqueue_bulk_mpmc(p, d + k, n - k, 10 * SEC);
		CHECK(rc > 0);
		k += (unsigned)rc;
	}
}

/* Our own entry for `t` queued at `step` by hand with descriptor `d`
 * (task_id, slot, client filled in unless `keep`), its state word moved
 * CLIENT -> QUEUED(state_step), and a copy on our lane of ring `step`. */
static void forge_submit(sluice_flow_t *g, sluice_task_t *t, uint32_t step, uint32_t state_step,
			 sluice_desc_t d, bool keep)
{
	struct sluice__task_entry *e = &g->tasks[t->slot_];
	uint64_t w = atomic_load(&e->state);
	CHECK(SLUICE__TW_STATE(w) == SLUICE__TS_CLIENT && SLUICE__TW_OWNER(w) == g->client);
	uint32_t gen = SLUICE__TW_GEN(w) + 1;
	if (!keep) {
		d.slot = t->slot_;
		d.client = g->client;
		d.step = (uint16_t)step;
	}
	d.task_id = SLUICE__TASK_ID(gen, t->slot_);
	e->desc = d;
	e->queued_ns = test_now_ns();
	atomic_store(&e->state, SLUICE__TW(SLUICE__TS_QUEUED, state_step, gen));
	put(&g->prod[step][0], &d, 1);
}

/* Waits until our entry of t is DONE(us); returns its status. */
static unsigned forged_outcome(sluice_flow_t *g, sluice_task_t *t, char *msg, size_t len)
{
	struct sluice__task_entry *e = &g->tasks[t->slot_];
	uint64_t until = test_now_ns() + 20 * SEC * test_slowdown();
	uint64_t w;
	while (w = atomic_load(&e->state),
	       SLUICE__TW_STATE(w) != SLUICE__TS_DONE || SLUICE__TW_OWNER(w) != g->client) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
	snprintf(msg, len, "%.*s", (int)sizeof(e->message) - 1, e->message);
	return e->desc.status;
}

/* A block of another client: the payload of one of their entries in
 * flight, owned by them. */
static uint32_t others_block(sluice_flow_t *g)
{
	uint64_t until = test_now_ns() + 20 * SEC * test_slowdown();
	for (;;) {
		for (uint32_t slot = 0; slot < g->max_tasks; slot++) {
			if (sluice__slot_client(g, slot) == g->client)
				continue;
			uint32_t blk = g->tasks[slot].desc.payload_block;
			int64_t owner = sluice_blocks_owner(&g->blocks, blk);
			if (owner > 0 && owner != SLUICE__OWNER_CLIENT(g->client) &&
			    owner < (int64_t)SLUICE__OWNER_CLIENT(SLUICE__MAX_CLIENTS))
				return blk;
		}
		CHECK(test_now_ns() < until);
		usleep(100);
	}
}

static int hostile(sluice_flow_t *g, void *arg)
{
	(void)arg;
	const uint32_t me = g->client, mt = g->max_tasks;
	sluice_desc_t d[8];

	/* Junk through our normal and high lanes of both steps. */
	memset(d, 0, sizeof(d));
	d[0].slot = mt;                                      /* just out of range */
	d[0].task_id = SLUICE__TASK_ID(1, mt);
	d[1].slot = UINT32_MAX - 1;                          /* far out */
	d[1].task_id = SLUICE__TASK_ID(1, UINT32_MAX - 1);
	d[2].slot = h_first(g, me);                          /* ours, id of another slot */
	d[2].task_id = SLUICE__TASK_ID(1, h_first(g, me) + 1);
	d[3].slot = SLUICE__PILL_SLOT;                       /* looks like a pill, is not */
	d[4].slot = h_first(g, me) + 3;                      /* our FREE entry */
	d[4].task_id = SLUICE__TASK_ID(0, h_first(g, me) + 3);
	d[4].step = 99;                                      /* a step out of range */
	memset(&d[5], 0xa5, sizeof(d[5]));                   /* garbage */
	d[5].flags = 0;
	d[6].slot = 0;                                       /* the creator's first entry, */
	d[6].task_id = SLUICE__TASK_ID(12345, 0);            /* a generation it is not at */
	d[6].flags = SLUICE__DESC_PILL;                      /* a pill flag on a task slot */
	for (uint32_t s = 0; s < g->nsteps; s++)
		for (unsigned lv = 0; lv < SLUICE__LEVELS; lv++)
			put(&g->prod[s][lv], d, 7);
	atomic_fetch_add(&R->refusable, 7 * g->nsteps * SLUICE__LEVELS);
	/* A real pill is no task: skipped, not counted. */
	sluice_desc_t pill = {.slot = SLUICE__PILL_SLOT, .flags = SLUICE__DESC_PILL};
	put(&g->prod[0][0], &pill, 1);

	/* Stolen entries: for 1.5 s, a copy of every entry of the other
	 * clients, at the generation its state word shows, pointing at our
	 * own payload block. Of each pair (theirs, ours) at most one claims
	 * the entry: the other is refused, and the entry's own desc is what
	 * runs. */
	sluice_task_t *mine;
	CHECK_OK(sluice_task_alloc(g, 8, &mine));
	uint64_t end = test_now_ns() + 1500 * MSEC;
	while (test_now_ns() < end) {
		for (uint32_t slot = 0; slot < mt; slot++) {
			if (sluice__slot_client(g, slot) == me)
				continue;
			uint64_t w = atomic_load(&g->tasks[slot].state);
			unsigned st = SLUICE__TW_STATE(w);
			uint32_t step = SLUICE__TW_OWNER(w);
			sluice_desc_t x = {.slot = slot, .client = me,
					   .payload_block = mine->payload_block_, .payload_len = 8,
					   .result_block = SLUICE_BLOCK_NONE};
			if (st == SLUICE__TS_QUEUED && step < g->nsteps) {
				x.task_id = SLUICE__TASK_ID(SLUICE__TW_GEN(w), slot);
				x.step = (uint16_t)step;
				put(&g->prod[step][0], &x, 1);
				atomic_fetch_add(&R->stolen, 1);
				atomic_fetch_add(&R->refusable, 1);
			} else if (slot % 7 == 0 && st != SLUICE__TS_FREE) {
				/* Held, done or the client's: a copy at the
				 * generation it had when queued (stale). */
				x.task_id = SLUICE__TASK_ID(SLUICE__TW_GEN(w) - 1, slot);
				put(&g->prod[slot % g->nsteps][0], &x, 1);
				atomic_fetch_add(&R->refusable, 1);
			}
		}
		usleep(1000);
	}

	/* Our own entries, submitted by hand with bad fields. */
	uint32_t theirs = others_block(g);
	struct {
		const char *what;
		uint32_t step, state_step;
		bool keep;
		sluice_desc_t d;
		const char *words;
	} cases[] = {
		{"payload out of range", 0, 0, false,
		 {.payload_block = 0x07ffffff, .payload_len = 8, .result_block = SLUICE_BLOCK_NONE},
		 "payload block"},
		{"payload another client's", 0, 0, false,
		 {.payload_block = theirs, .payload_len = 8, .result_block = SLUICE_BLOCK_NONE},
		 "payload block"},
		{"payload past capacity", 0, 0, false,
		 {.payload_block = mine->payload_block_, .payload_len = 1u << 20,
		  .result_block = SLUICE_BLOCK_NONE},
		 "payload block"},
		{"payload length without a block", 0, 0, false,
		 {.payload_block = SLUICE_BLOCK_NONE, .payload_len = 8,
		  .result_block = SLUICE_BLOCK_NONE},
		 "payload block"},
		{"result another client's", 1, 1, false,
		 {.payload_block = SLUICE_BLOCK_NONE, .result_block = theirs, .result_len = 8},
		 "result block"},
		{"result out of range", 1, 1, false,
		 {.payload_block = SLUICE_BLOCK_NONE, .result_block = 0x0fffffff, .result_len = 8},
		 "result block"},
		{"result without a block", 1, 1, false,
		 {.payload_block = SLUICE_BLOCK_NONE, .result_block = SLUICE_BLOCK_NONE,
		  .result_len = 64},
		 "result block"},
		{"desc of another client", 0, 0, true,
		 {.client = 0, .step = 0, .payload_block = SLUICE_BLOCK_NONE,
		  .result_block = SLUICE_BLOCK_NONE},
		 "descriptor names"},
		{"desc of another step", 0, 0, true,
		 {.client = me, .step = 99, .payload_block = SLUICE_BLOCK_NONE,
		  .result_block = SLUICE_BLOCK_NONE},
		 "descriptor names"},
	};
	const unsigned ncases = sizeof(cases) / sizeof(cases[0]);
	sluice_task_t *t[16];
	for (unsigned i = 0; i < ncases; i++) {
		CHECK_OK(sluice_task_alloc(g, 0, &t[i]));
		sluice_desc_t x = cases[i].d;
		if (cases[i].keep)
			x.slot = t[i]->slot_; /* its own slot; client and step as above */
		forge_submit(g, t[i], cases[i].step, cases[i].state_step, x, cases[i].keep);
		atomic_fetch_add(&R->own_sent, 1);
		atomic_fetch_add(&R->refusable, 1);
	}
	for (unsigned i = 0; i < ncases; i++) {
		char msg[SLUICE_TASK_MESSAGE_MAX];
		unsigned st = forged_outcome(g, t[i], msg, sizeof(msg));
		printf("hostile: %s: %s: %s\n", cases[i].what, sluice_task_status_name(st), msg);
		if (st != SLUICE_TASK_BAD_DESCRIPTOR || strstr(msg, cases[i].words) == NULL) {
			fprintf(stderr, "FAIL: %s: %s '%s'\n", cases[i].what, sluice_task_status_name(st),
				msg);
			return TEST_FAIL;
		}
		atomic_fetch_add(&R->own_bad, 1);
		CHECK_OK(sluice_task_release(g, t[i])); /* DONE(us): back to FREE */
	}
	/* Another client's block was never handed to us. */
	CHECK(sluice_blocks_owner(&g->blocks, theirs) != SLUICE__OWNER_CLIENT(me));

	/* An entry of ours queued at a step that does not exist, its copy on
	 * step 0's ring: the claim (QUEUED(0)) fails; the entry stays queued
	 * nowhere until our slot is drained. */
	sluice_task_t *lost;
	CHECK_OK(sluice_task_alloc(g, 0, &lost));
	forge_submit(g, lost, 0, 99,
		     (sluice_desc_t){.payload_block = SLUICE_BLOCK_NONE,
				     .result_block = SLUICE_BLOCK_NONE},
		     false);
	atomic_fetch_add(&R->refusable, 1);
	return 0;
}

int main(void)
{
	R = test_shared(sizeof(*R));
	sluice_flow_t *f = h_flow("desc", 3, NULL);
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	int stop[2];
	CHECK(pipe(stop) == 0);
	pid_t good = h_spawn_good(stop[0], stop[1], 1);
	close(stop[0]);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	uint64_t bad0 = h_bad_descriptors(f);
	pid_t bad = h_spawn_hostile(hostile, NULL);
	CHECK(h_good_while(f, bad, 0, &seq) == 0);
	/* Every refusable descriptor counted (the workers may still be
	 * taking the last ones). */
	uint64_t want = atomic_load(&R->refusable);
	TEST_WAIT_FOR(h_bad_descriptors(f) - bad0 >= want, 20, "every hostile descriptor refused");
	printf("hostile sent %llu refusable descriptors (%llu copies of queued entries of others, "
	       "%u own entries); the workers refused %llu; the creator ran %llu tasks\n",
	       (unsigned long long)want, (unsigned long long)atomic_load(&R->stolen),
	       atomic_load(&R->own_sent), (unsigned long long)(h_bad_descriptors(f) - bad0),
	       (unsigned long long)seq);
	CHECK(atomic_load(&R->own_bad) == atomic_load(&R->own_sent));
	close(stop[1]);
	CHECK(test_wait(good) == 0);
	h_check_intact(f, before);
	/* The hostile's slot comes back; a new client in it works. */
	h_wait_slots_free(f);
	h_new_clients_work(f, f->nclients - 1, 2, &seq);
	h_check_intact(f, before);
	h_stop(f);
	printf("ok\n");
	return TEST_PASS;
}
