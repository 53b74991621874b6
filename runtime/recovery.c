/* Recovery: what happens to the tasks of a worker that died, and the sweeps
 * that complete tasks nobody will finish. Run by the supervisor (and by the
 * client after the supervisor itself died). docs/RUNTIME.md has the
 * protocol with its windows and the tests that kill a worker in each.
 *
 * A worker can die at any instruction. Whatever it was doing, every task
 * entry it touched is in one of these places, which recovery looks at in
 * this order:
 *
 *   taken, not claimed   QUEUED(step, g) on no ring: its descriptor left
 *                        the ring by the worker's CAS of the lane's
 *                        consumer counter. The ring's intent record in the
 *                        worker slot says how much of in[] may have left
 *                        the ring (sluice_ring_intent_taken). Each entry
 *                        named there and still exactly QUEUED(step, g) is
 *                        queued again at generation g + 2; a live copy
 *                        of the old descriptor (another consumer's) fails
 *                        its claim. The task never ran: same attempt.
 *   moved on, not sent   QUEUED(next, g) or DONE(client, g), its outgoing
 *                        descriptor recorded in out[0 .. nout) before the
 *                        CAS that moved it: queued again, or its
 *                        completion sent again at g + 1 (a copy the worker
 *                        did send becomes stale; the client drops it).
 *   held                 HELD(worker, g): taken over (HELD(supervisor)),
 *                        its half-done conclusion undone (the journal, see
 *                        sluice__settle_held); queued again with the same
 *                        attempt if it was never handed to handle() (the
 *                        entry's j_ran), else run again at the same step
 *                        (attempt + 1) while it has runs left, or
 *                        completed with WORKER_DIED (TIMEOUT when it was
 *                        the task a hung worker was killed for;
 *                        STEP_FAILED when the step failed; FLOW_STOPPED
 *                        during a stop).
 *
 * Every move is a CAS of the state word that bumps the generation: whoever
 * wins owns the entry, a stale copy fails, and no task runs twice at one
 * attempt or completes twice. Blocks: the worker's own (half-made results,
 * results it took over to free) go back with sluice_blocks_reclaim once the
 * journals are settled; payloads and results the client owns stay.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"

#include <stdio.h>
#include <string.h>

#define COMPLETION_TRY_NS UINT64_C(100000000)

void sluice__send_completion(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t slot,
			     uint32_t gen)
{
	struct sluice__task_entry *e = &f->tasks[slot];
	uint32_t c = sluice__slot_client(f, slot);
	sluice_desc_t d = e->desc; /* ours, or DONE and only read by the client */
	d.task_id = SLUICE__TASK_ID(gen, slot);
	d.slot = slot;
	d.client = c;
	/* The enqueue publishes desc and message (release) to the client's
	 * dequeue. The ring holds every task of its client, so it has room
	 * unless shared memory was scribbled on. */
	int rc = 0;
	for (int tries = 0; rc <= 0 && tries < 10; tries++) {
		rc = sluice_ring_enqueue_mpmc(&comp[c], &d, COMPLETION_TRY_NS);
		if (rc == SLUICE_ECORRUPT) /* the client scribbled on our lane's counters */
			(void)sluice_ring_producer_reset(&comp[c]);
	}
	if (rc <= 0)
		sl_fetch_add_relaxed(&f->hdr->lost_completions, 1);
}

void sluice__settle_held(sluice_flow_t *f, uint32_t slot, uint32_t held_gen, uint32_t holder)
{
	struct sluice__task_entry *e = &f->tasks[slot];
	/* Plain reads: the journal's writer is dead and we won the entry by
	 * CAS (acquire), after learning of the death from the kernel. */
	uint32_t w = e->j_worker;
	/* A journal naming another worker than the holder was forged (its
	 * client can write its entries): acting on it would hand that
	 * worker's blocks, in use, to the client. */
	if (held_gen == 0 || e->j_gen != held_gen || w >= f->nworkers ||
	    (holder != SLUICE__HELD_SUPERVISOR && w != holder))
		return;
	uint32_t orig = e->j_result_block, orig_len = e->j_result_len, made = e->j_new_block;
	uint32_t client_owner = SLUICE__OWNER_CLIENT(sluice__slot_client(f, slot));
	uint32_t worker_owner = SLUICE__OWNER_WORKER(w);
	/* Forget the journal before acting on it: should we die half-way, a
	 * second settle must not hand on a block that may have been freed
	 * and reused since (a leak is the lesser harm). */
	e->j_gen = 0;
	e->desc.result_block = orig;
	e->desc.result_len = orig_len;
	/* Each hand-over is a CAS that fails harmlessly when the worker never
	 * got that far. */
	if (orig != SLUICE_BLOCK_NONE)
		(void)sluice_blocks_set_owner(&f->blocks, orig, worker_owner, client_owner);
	if (made != SLUICE_BLOCK_NONE && made != orig)
		(void)sluice_blocks_set_owner(&f->blocks, made, client_owner, worker_owner);
}

/* ---- sweeps ------------------------------------------------------------------ */

uint32_t sluice__sweep(sluice_flow_t *f, sluice_ring_producer_t *comp, uint32_t queued_step,
		       bool all_held, unsigned status, const char *message)
{
	uint32_t n = 0;
	for (uint32_t slot = 0; slot < f->max_tasks; slot++) {
		struct sluice__task_entry *e = &f->tasks[slot];
		/* Acquire: pairs with the release CAS that made it QUEUED or
		 * HELD, so its desc is visible if we win it. */
		uint64_t w = sl_load_acquire(&e->state);
		unsigned st = SLUICE__TW_STATE(w);
		uint32_t owner = SLUICE__TW_OWNER(w);
		bool take = false;
		if (st == SLUICE__TS_QUEUED)
			take = queued_step == SLUICE__SWEEP_ALL_QUEUED || owner == queued_step;
		else if (st == SLUICE__TS_HELD)
			take = all_held;
		if (!take)
			continue;
		uint32_t c = sluice__slot_client(f, slot);
		uint32_t gen = SLUICE__TW_GEN(w) + 1;
		/* acq_rel: we own the entry from here; a worker that still has a
		 * copy of its descriptor fails its CAS (generation moved). */
		if (!sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_DONE, c, gen)))
			continue;
		if (st == SLUICE__TS_HELD)
			sluice__settle_held(f, slot,
					    owner == SLUICE__HELD_SUPERVISOR ? gen - 2 : gen - 1, owner);
		sluice_desc_t *d = &e->desc;
		void *p;
		uint64_t cap;
		if (!sluice__block_ok(f, d->result_block, d->result_len, SLUICE__OWNER_CLIENT(c), &p,
				      &cap)) {
			d->result_block = SLUICE_BLOCK_NONE;
			d->result_len = 0;
		}
		d->task_id = SLUICE__TASK_ID(gen, slot);
		d->slot = slot;
		d->client = c;
		d->status = (uint16_t)status;
		snprintf(e->message, sizeof(e->message), "%s", message);
		sluice__send_completion(f, comp, slot, gen);
		n++;
	}
	return n;
}

/* ---- a dead worker ---------------------------------------------------------------- */

/* Takes entry `slot` from exactly `expected` (QUEUED(step, g)) and queues it
 * again at step `step`, generation g + 2 (through HELD(supervisor) at
 * g + 1, while its desc is rewritten). Returns false if the entry was not
 * in that state. */
static bool requeue_entry(struct sluice__recovery *R, uint32_t slot, uint64_t expected,
			  uint32_t step)
{
	struct sluice__task_entry *e = &R->f->tasks[slot];
	uint32_t g = SLUICE__TW_GEN(expected);
	uint64_t w = expected;
	/* acq_rel: we own the entry (and its desc) from here; a worker with a
	 * copy of the old descriptor fails its claim. */
	if (!sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_HELD, SLUICE__HELD_SUPERVISOR, g + 1)))
		return false;
	e->desc.task_id = SLUICE__TASK_ID(g + 2, slot);
	uint64_t held = SLUICE__TW(SLUICE__TS_HELD, SLUICE__HELD_SUPERVISOR, g + 1);
	/* Release: the desc before the state; the claimer acquires it with its
	 * CAS (and with the ring's publication of the new descriptor). Cannot
	 * fail: only the holder moves a HELD entry. */
	(void)sl_cas_acq_rel(&e->state, &held, SLUICE__TW(SLUICE__TS_QUEUED, step, g + 2));
	R->requeue(R->arg, step, slot, g + 2);
	return true;
}

/* A descriptor the dead worker took off its step's ring. */
static void take_back(struct sluice__recovery *R, const sluice_desc_t *d, uint32_t step)
{
	sluice_flow_t *f = R->f;
	uint32_t slot = d->slot;
	if (slot >= f->max_tasks || SLUICE__TASK_ID_SLOT(d->task_id) != slot)
		return; /* a pill, or a torn or forged copy */
	uint64_t expected = SLUICE__TW(SLUICE__TS_QUEUED, step, SLUICE__TASK_ID_GEN(d->task_id));
	/* Relaxed: a first look; the CAS decides. */
	if (sl_load_relaxed(&f->tasks[slot].state) != expected)
		return; /* claimed (by it: HELD; by another), or moved on */
	if (!R->run)
		return; /* stopping: the final sweep completes what is QUEUED */
	if (requeue_entry(R, slot, expected, step))
		R->requeued++;
}

/* A descriptor the dead worker recorded as outgoing. */
static void send_again(struct sluice__recovery *R, const sluice_desc_t *d)
{
	sluice_flow_t *f = R->f;
	uint32_t slot = d->slot;
	if (slot >= f->max_tasks || SLUICE__TASK_ID_SLOT(d->task_id) != slot)
		return;
	struct sluice__task_entry *e = &f->tasks[slot];
	uint32_t g = SLUICE__TASK_ID_GEN(d->task_id);
	uint32_t c = sluice__slot_client(f, slot);
	/* Acquire: pairs with the worker's release CAS that moved it (its
	 * desc is complete). */
	uint64_t w = sl_load_acquire(&e->state);
	if (d->step < f->nsteps && w == SLUICE__TW(SLUICE__TS_QUEUED, d->step, g)) {
		if (R->run && requeue_entry(R, slot, w, d->step))
			R->republished++;
		return;
	}
	if (w == SLUICE__TW(SLUICE__TS_DONE, c, g)) {
		/* acq_rel: a copy the worker may have sent is stale from here;
		 * the client's release of the entry (DONE -> FREE) races with
		 * us only by CAS. */
		if (sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_DONE, c, g + 1))) {
			sluice__send_completion(f, R->comp, slot, g + 1);
			R->republished++;
		}
	}
}

/* An entry the dead worker held: w is HELD(dead, g). */
static void take_over_held(struct sluice__recovery *R, uint32_t slot, uint64_t w, uint32_t step,
			   uint64_t now)
{
	sluice_flow_t *f = R->f;
	const struct sluice__step *st = &f->steps[step];
	struct sluice__task_entry *e = &f->tasks[slot];
	uint32_t g = SLUICE__TW_GEN(w);
	uint64_t mine = SLUICE__TW(SLUICE__TS_HELD, SLUICE__HELD_SUPERVISOR, g + 1);
	/* acq_rel: pairs with the worker's claim; its desc, message and
	 * journal are ours from here. */
	if (!sl_cas_acq_rel(&e->state, &w, mine))
		return;
	sluice__settle_held(f, slot, g, SLUICE__TW_OWNER(w));
	sluice_desc_t *d = &e->desc;
	uint32_t c = sluice__slot_client(f, slot);
	bool overdue = R->hung && d->deadline_ns != 0 && now > d->deadline_ns;
	/* Plain read: the writer is dead, the entry ours (see the journal). */
	bool ran = e->j_ran == g;
	/* Relaxed: advisory (the entry's cancel field); the entry is ours. */
	bool cancel = sl_load_relaxed(&e->cancel) != 0;
	if (R->run && !R->step_failed && !cancel && !ran) {
		/* Held, but never handed to handle(): it keeps its run. */
		d->step = (uint16_t)step;
		d->task_id = SLUICE__TASK_ID(g + 2, slot);
		/* Release: desc before the state. */
		(void)sl_cas_acq_rel(&e->state, &mine, SLUICE__TW(SLUICE__TS_QUEUED, step, g + 2));
		R->requeue(R->arg, step, slot, g + 2);
		R->requeued++;
		return;
	}
	if (R->run && !R->step_failed && !cancel && (uint32_t)d->attempt + 1 < st->max_attempts) {
		d->attempt++;
		d->status = SLUICE_TASK_OK;
		d->step = (uint16_t)step;
		d->task_id = SLUICE__TASK_ID(g + 2, slot);
		d->deadline_ns = st->task_timeout_ns ? sluice__deadline(now, st->task_timeout_ns) : 0;
		e->message[0] = '\0';
		/* Release: desc and message before the state. */
		(void)sl_cas_acq_rel(&e->state, &mine, SLUICE__TW(SLUICE__TS_QUEUED, step, g + 2));
		R->requeue(R->arg, step, slot, g + 2);
		R->retried++;
		return;
	}
	unsigned status = SLUICE_TASK_WORKER_DIED;
	if (!R->run)
		status = SLUICE_TASK_FLOW_STOPPED;
	else if (R->step_failed)
		status = SLUICE_TASK_STEP_FAILED;
	else if (cancel)
		status = SLUICE_TASK_CANCELLED;
	else if (overdue)
		status = SLUICE_TASK_TIMEOUT;
	void *p;
	uint64_t cap;
	if (!sluice__block_ok(f, d->result_block, d->result_len, SLUICE__OWNER_CLIENT(c), &p, &cap)) {
		d->result_block = SLUICE_BLOCK_NONE;
		d->result_len = 0;
	}
	d->task_id = SLUICE__TASK_ID(g + 2, slot);
	d->slot = slot;
	d->client = c;
	d->status = (uint16_t)status;
	if (status == SLUICE_TASK_TIMEOUT)
		snprintf(e->message, sizeof(e->message), "%s: hung past the task's timeout (run %u of %u)",
			 R->why, d->attempt + 1u, st->max_attempts);
	else if (status == SLUICE_TASK_WORKER_DIED)
		snprintf(e->message, sizeof(e->message), "%s (run %u of %u)", R->why, d->attempt + 1u,
			 st->max_attempts);
	else if (status == SLUICE_TASK_CANCELLED)
		snprintf(e->message, sizeof(e->message), "cancelled; %s", R->why);
	else if (status == SLUICE_TASK_STEP_FAILED)
		snprintf(e->message, sizeof(e->message), "step '%s' failed: %s", st->name, R->why);
	else
		snprintf(e->message, sizeof(e->message), "the flow stopped: %s", R->why);
	/* Release: desc and message before DONE; the client trusts them once
	 * it dequeues the completion (which also publishes them). */
	(void)sl_cas_acq_rel(&e->state, &mine, SLUICE__TW(SLUICE__TS_DONE, c, g + 2));
	sluice__send_completion(f, R->comp, slot, g + 2);
	if (status == SLUICE_TASK_WORKER_DIED || status == SLUICE_TASK_TIMEOUT)
		R->died++;
}

void sluice__recover_worker(struct sluice__recovery *R, uint32_t w)
{
	sluice_flow_t *f = R->f;
	struct sluice__worker_slot *ws = &f->wslots[w];
	uint32_t step = sluice__worker_step(f, w);
	const struct sluice__step *st = &f->steps[step];
	uint32_t cap = ws->scratch_n; /* written once by create */
	uint64_t now = sluice__now_ns();
	sluice_ring_t ring;
	bool have_ring = sluice_ring_open(&ring, st->ring_mem, st->ring_size) == 0;

	/* Taken off the ring, not claimed. Copies: in[] and out[] are the
	 * dead worker's; nobody writes them until the slot's next process. */
	if (have_ring) {
		uint32_t n = sluice_ring_intent_taken(&ring, &ws->intent);
		if (n > cap)
			n = cap; /* a record the worker never wrote: scribbled on */
		const sluice_desc_t *in = sluice__scratch_in(f, w);
		for (uint32_t i = 0; i < n; i++) {
			sluice_desc_t d = in[i];
			take_back(R, &d, step);
		}
	}
	/* Moved on, maybe not sent. Relaxed: the writer is dead. */
	uint32_t nout = sl_load_relaxed(&ws->nout);
	if (nout > cap)
		nout = cap;
	const sluice_desc_t *out = sluice__scratch_out(f, w);
	for (uint32_t i = 0; i < nout; i++) {
		sluice_desc_t d = out[i];
		send_again(R, &d);
	}
	/* Held. */
	for (uint32_t slot = 0; R->scan_held && slot < f->max_tasks; slot++) {
		/* Relaxed: a first look; take_over_held's CAS decides. */
		uint64_t s = sl_load_relaxed(&f->tasks[slot].state);
		if (SLUICE__TW_STATE(s) == SLUICE__TS_HELD && SLUICE__TW_OWNER(s) == w)
			take_over_held(R, slot, s, step, now);
	}
	/* Its blocks (the journals are settled: nothing it owns belongs to a
	 * task any more), its ring lanes (their published descriptors stay
	 * for the consumers), its scratch. */
	(void)sluice_blocks_reclaim(&f->blocks, SLUICE__OWNER_WORKER(w));
	for (uint32_t t = 0; t < f->nsteps; t++) {
		sluice_ring_t r;
		if (sluice_ring_open(&r, f->steps[t].ring_mem, f->steps[t].ring_size) == 0)
			(void)sluice_ring_lane_release(&r, SLUICE__OWNER_WORKER(w));
	}
	for (uint32_t c = 0; c < f->nclients; c++) {
		sluice_ring_t r;
		if (sluice_ring_open(&r, f->comp_mem[c], f->comp_size[c]) == 0)
			(void)sluice_ring_lane_release(&r, SLUICE__OWNER_WORKER(w));
	}
	sluice_ring_intent_clear(&ws->intent);
	sl_store_relaxed(&ws->nout, 0);
	sl_store_relaxed(&ws->busy_deadline, 0);
}
