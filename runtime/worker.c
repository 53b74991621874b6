/* A worker process: on_start, the batch loop, on_stop.
 *
 * The loop, per batch:
 *   1. take up to batch_size descriptors off the step's ring into the
 *      slot's scratch in[] (shared memory), with the ring's intent record
 *      in the slot: block until the first, then wait at most
 *      batch_timeout_ns for the rest (0: take what is queued and go);
 *   2. claim each: the slot must lie in the task table and agree with the
 *      task_id, and the entry must move QUEUED(step, gen) -> HELD(me,
 *      gen + 1) by CAS (a stale, duplicated or forged copy fails here and
 *      is dropped); then every field of the entry's descriptor is checked
 *      (slot, client, step, payload and result blocks: valid handle, owned
 *      by the task's client, length within capacity). A task whose fields
 *      are bad ends with SLUICE_TASK_BAD_DESCRIPTOR; one already past its
 *      deadline with SLUICE_TASK_TIMEOUT; during a stop with
 *      SLUICE_TASK_FLOW_STOPPED;
 *   3. hand the rest to handle() as one batch; its start and its end are
 *      beats in the slot's health record (runtime/health.c), which takes
 *      the call's counters and histograms at its end, before any task is
 *      concluded;
 *   4. per task: status (handler's, TIMEOUT if its deadline passed while in
 *      hand, HANDLER_ERROR for a result_len beyond its block), the next
 *      step whose condition accepts it, or its client; write the entry's
 *      journal, hand the blocks over, write its descriptor, record the
 *      outgoing copy in the scratch out[], and move the entry HELD ->
 *      QUEUED(next) or DONE(client) by CAS (release); then free the result
 *      block it replaced;
 *   5. publish the descriptors, one bulk enqueue per target ring; forget
 *      out[].
 *
 * What a supervisor finds when this process dies at any instruction (see
 * runtime/recovery.c): entries taken but not claimed are named by the
 * intent record and in[]; entries held are HELD(this slot) in the table,
 * with a journal when their conclusion had begun; entries moved on but not
 * published are in out[0 .. nout).
 *
 * Block ownership: a result block is allocated owned by this worker and
 * handed to the task's client (set_owner) before the entry moves on; the
 * block it replaces is handed from the client to this worker (set_owner)
 * before the entry moves on, and freed by this worker after. So every
 * block is always owned by someone who will free it: a dead worker's
 * half-made results and replaced results are sluice_blocks_reclaim(worker)'s;
 * for a task it still held, the journal lets the supervisor give the
 * replaced result back to the client and take the new one back first.
 * Payload blocks are the client's from alloc to release; workers never
 * change their owner.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/health.h"
#include "runtime/worker_hooks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* A forward that finds the next ring full waits in slices of this long,
 * looking at the flow state in between. */
#define FORWARD_SLICE_NS UINT64_C(50000000)
/* A retiring worker looks for the supervisor's go this often while its
 * ring is empty. */
#define RETIRE_POLL_NS UINT64_C(10000000)
/* While a lane of our ring (or of one we send on) has impossible
 * counters (a client scribbled on its own lane: docs/SECURITY.md), its
 * takes fail at once instead of sleeping: look again this often. */
#define CORRUPT_NAP_NS 1000000L

sluice__worker_hook_fn sluice__worker_test_hook;

void sluice__worker_set_test_hook(sluice__worker_hook_fn fn)
{
	sluice__worker_test_hook = fn;
}

#define HOOK(W, point, descs, items, n)                                                  \
	do {                                                                             \
		if (__builtin_expect(sluice__worker_test_hook != NULL, 0))               \
			sluice__worker_test_hook((point), (W)->step, (W)->id, (descs), (items), \
						 (n));                                   \
	} while (0)

struct worker {
	sluice_flow_t *f;
	struct sluice__step *st;
	struct sluice__worker_slot *slot;
	struct sluice__health_worker *h; /* its health record (region 5) */
	uint32_t id;      /* index over the flow's workers */
	uint32_t step;
	uint32_t owner;   /* ring-lane and block owner id */
	uint32_t bs;      /* batch_size */
	sluice_ring_t in;
	sluice_ring_producer_t fwd[SLUICE_FLOW_MAX_STEPS][SLUICE__LEVELS]; /* steps after ours */
	sluice_ring_producer_t comp[SLUICE__MAX_CLIENTS];
	sluice_desc_t *descs;  /* bs, in the slot's scratch: what came off the ring */
	sluice_item_t *items;  /* bs: the batch handed to handle() */
	sluice_item_t *spare;  /* bs: room to put the retries last */
	sluice_item_t *call;   /* the items of the running handle() call */
	unsigned nitems;       /* how many */
	sluice_desc_t *out;    /* bs, in the slot's scratch: outgoing descriptors */
	sluice_desc_t *gather; /* bs: one target's share of out[], for its enqueue */
	uint32_t *out_target;  /* bs: step * LEVELS + level, or nsteps * LEVELS + client */
	unsigned nout;         /* mirrored in slot->nout */
	uint64_t done;         /* tasks handed to handle() by this process */
	bool retiring;
};

/* The one worker of this process (NULL outside a worker). */
static struct worker *self;

/* ---- the handler's calls -------------------------------------------------------- */

static bool item_of_batch(const sluice_item_t *it)
{
	return self != NULL && it != NULL && self->call != NULL && it >= self->call &&
	       it < self->call + self->nitems;
}

void *sluice_item_result_alloc(sluice_item_t *it, uint64_t size)
{
	if (!item_of_batch(it) || size > UINT32_MAX)
		return NULL;
	sluice_flow_t *f = self->f;
	sluice_block_t blk;
	if (sluice_blocks_alloc(&f->blocks, size ? size : 1, self->owner, &blk) != 0)
		return NULL;
	uint64_t cap = 0;
	void *p = sluice_blocks_ptr(&f->blocks, blk, &cap);
	if (p == NULL) {
		(void)sluice_blocks_free(&f->blocks, blk, self->owner);
		return NULL;
	}
	if (it->new_result_ != SLUICE_BLOCK_NONE)
		(void)sluice_blocks_free(&f->blocks, it->new_result_, self->owner);
	it->new_result_ = blk;
	it->result = p;
	it->result_cap = cap > UINT32_MAX ? UINT32_MAX : cap;
	it->result_len = 0;
	return p;
}

/* Has the client asked to cancel the task of `it` (an item we hold)? */
static bool cancelled(const sluice_item_t *it)
{
	/* Relaxed: advisory (see the entry's cancel field). */
	return sl_load_relaxed(&((struct sluice__task_entry *)it->entry_)->cancel) != 0;
}

bool sluice_item_cancelled(const sluice_item_t *it)
{
	return item_of_batch(it) && cancelled(it);
}

void sluice_item_fail(sluice_item_t *it, const char *fmt, ...)
{
	if (!item_of_batch(it))
		return;
	struct sluice__task_entry *e = it->entry_;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	it->status_ = SLUICE_TASK_HANDLER_ERROR;
}

/* ---- ending a task at this step ----------------------------------------------------- */

static void set_message(sluice_item_t *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_message(sluice_item_t *it, const char *fmt, ...)
{
	struct sluice__task_entry *e = it->entry_;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* Moves the task of `it` on: to step `next` when its status is OK and
 * next < nsteps, else to its client, and records the outgoing descriptor
 * in out[] (published by flush). */
static void conclude(struct worker *W, sluice_item_t *it, uint32_t next, uint64_t now)
{
	sluice_flow_t *f = W->f;
	struct sluice__task_entry *e = it->entry_;
	uint32_t c = sluice__slot_client(f, it->slot_);
	uint32_t client_owner = SLUICE__OWNER_CLIENT(c);
	bool ok = it->status_ == SLUICE_TASK_OK;
	bool replace = ok && it->new_result_ != SLUICE_BLOCK_NONE;

	/* The journal, before any block changes hands or the desc changes:
	 * what a supervisor must undo if we die from here to the CAS below.
	 * Plain stores into the entry we hold; read only after our death. */
	e->j_worker = W->id;
	e->j_result_block = it->old_result_;
	e->j_result_len = (uint32_t)it->old_len_;
	e->j_new_block = replace ? it->new_result_ : SLUICE_BLOCK_NONE;
	e->j_gen = it->gen_;

	uint32_t result_blk = it->old_result_, free_after = SLUICE_BLOCK_NONE;
	uint64_t result_len = it->old_len_;
	if (replace) {
		/* The block we replace becomes ours to free once the entry has
		 * moved on: then a death anywhere after this leaves it to
		 * reclaim (or, before the CAS, to the journal's undo). */
		if (it->old_result_ != SLUICE_BLOCK_NONE &&
		    sluice_blocks_set_owner(&f->blocks, it->old_result_, client_owner, W->owner) == 0)
			free_after = it->old_result_;
		if (sluice_blocks_set_owner(&f->blocks, it->new_result_, W->owner, client_owner) == 0) {
			result_blk = it->new_result_;
			result_len = it->result_len;
		} else {
			ok = false;
			it->status_ = SLUICE_TASK_HANDLER_ERROR;
			set_message(it, "result block lost its owner");
			e->j_new_block = SLUICE_BLOCK_NONE; /* never name a block we free */
			(void)sluice_blocks_free(&f->blocks, it->new_result_, W->owner);
			/* Give the old one back: it stays the task's result. */
			if (free_after != SLUICE_BLOCK_NONE &&
			    sluice_blocks_set_owner(&f->blocks, free_after, W->owner, client_owner) == 0)
				free_after = SLUICE_BLOCK_NONE;
		}
	} else if (ok) {
		result_len = it->result_len; /* written in place into the block it came with */
	} else if (it->new_result_ != SLUICE_BLOCK_NONE) {
		(void)sluice_blocks_free(&f->blocks, it->new_result_, W->owner);
	}
	it->new_result_ = SLUICE_BLOCK_NONE;

	bool forward = ok && next < f->nsteps;
	uint32_t gen = it->gen_ + 1;
	sluice_desc_t *d = &e->desc; /* ours while HELD */
	d->task_id = SLUICE__TASK_ID(gen, it->slot_);
	d->result_block = result_blk;
	d->result_len = (uint32_t)result_len;
	d->status = (uint16_t)it->status_;
	if (ok)
		e->message[0] = '\0';
	uint64_t desired;
	if (forward) {
		uint64_t to = f->steps[next].task_timeout_ns;
		d->step = (uint16_t)next;
		d->deadline_ns = to ? sluice__deadline(now, to) : 0;
		d->attempt = 0; /* runs are counted per step */
		e->queued_ns = now;
		desired = SLUICE__TW(SLUICE__TS_QUEUED, next, gen);
	} else {
		desired = SLUICE__TW(SLUICE__TS_DONE, c, gen);
	}
	/* The outgoing copy, recorded before the CAS: if we die after the
	 * CAS and before flush, the supervisor publishes it (a record whose
	 * CAS never happened names a state the entry is not in: ignored). */
	W->out[W->nout] = *d;
	W->out_target[W->nout] = forward ? next * SLUICE__LEVELS + sluice__level(d->priority)
					 : f->nsteps * SLUICE__LEVELS + c;
	/* Relaxed: read by the supervisor only after our death. */
	sl_store_relaxed(&W->slot->nout, W->nout + 1);
	HOOK(W, SLUICE__WH_CONCLUDING, NULL, it, 1);
	uint64_t held = SLUICE__TW(SLUICE__TS_HELD, W->id, it->gen_);
	/* Release: publishes desc and message to the next owner (the next
	 * step's worker's CAS, or the client's acquire load on completion). */
	if (!sl_cas_acq_rel(&e->state, &held, desired)) {
		/* Someone moved a HELD entry: shared memory was scribbled on. */
		sluice__health_count(W->h, &W->h->bad_descriptors, 1);
		sl_store_relaxed(&W->slot->nout, W->nout);
		if (result_blk != it->old_result_)
			(void)sluice_blocks_free(&f->blocks, result_blk, client_owner);
		if (free_after != SLUICE_BLOCK_NONE)
			(void)sluice_blocks_free(&f->blocks, free_after, W->owner);
		return;
	}
	if (free_after != SLUICE_BLOCK_NONE)
		(void)sluice_blocks_free(&f->blocks, free_after, W->owner);
	W->nout++;
}

static void nap_corrupt(void)
{
	struct timespec ts = {0, CORRUPT_NAP_NS};
	nanosleep(&ts, NULL);
}

/* Publishes the outgoing descriptors, one bulk enqueue per target, then
 * forgets them.
 *
 * A completion ring holds every task of its client, so our lane there is
 * never full, and its counters never impossible, unless someone scribbled
 * on them (its client can: they are its ring's): then the lane is started
 * over (sluice_ring_producer_reset) and, if that does not make room at
 * once, the completions are dropped and counted in the flow's
 * lost_completions. They were that client's: nobody else's task waits on
 * its ring, and we never wait for it. */
static void flush(struct worker *W)
{
	sluice_flow_t *f = W->f;
	const uint32_t to_clients = f->nsteps * SLUICE__LEVELS;
	for (uint32_t tgt = 0; tgt < to_clients + f->nclients && W->nout > 0; tgt++) {
		unsigned k = 0;
		for (unsigned i = 0; i < W->nout; i++)
			if (W->out_target[i] == tgt)
				W->gather[k++] = W->out[i];
		if (k == 0)
			continue;
		bool to_step = tgt < to_clients;
		sluice_ring_producer_t *p = to_step ? &W->fwd[tgt / SLUICE__LEVELS][tgt % SLUICE__LEVELS]
						    : &W->comp[tgt - to_clients];
		unsigned moved = 0, resets = 0;
		while (moved < k) {
			int rc = sluice_ring_enqueue_bulk_mpmc(p, W->gather + moved, k - moved,
							       to_step ? FORWARD_SLICE_NS : 0);
			if (rc > 0) {
				moved += (unsigned)rc;
				continue;
			}
			if (rc == SLUICE_ECORRUPT) {
				/* Scribbled on: start our lane over (see above) and
				 * try again. Still so: completions go, a forward
				 * waits without spinning. */
				(void)sluice_ring_producer_reset(p);
				if (resets++ == 0)
					continue;
				if (to_step)
					nap_corrupt();
			}
			if (!to_step) {
				/* Relaxed: a counter. */
				sl_fetch_add_relaxed(&f->hdr->lost_completions, k - moved);
				break;
			}
			/* Full: that step is slow. During a stop, leave the rest:
			 * their entries are QUEUED on no ring, and the
			 * supervisor's final sweep completes them as stopped.
			 * Acquire: pairs with the supervisor's release store of
			 * STOPPING. */
			if (sl_load_acquire(&f->hdr->state) >= SLUICE__FS_STOPPING)
				break;
		}
	}
	W->nout = 0;
	/* Relaxed: everything recorded is on its ring (or left to the final
	 * sweep); a death before this store makes the supervisor publish
	 * copies again, which the generation check discards. */
	sl_store_relaxed(&W->slot->nout, 0);
}

/* ---- the batch -------------------------------------------------------------------- */

/* Claims descriptor d; fills *it and returns true when this worker now
 * holds its entry. */
static bool claim(struct worker *W, const sluice_desc_t *d, sluice_item_t *it)
{
	sluice_flow_t *f = W->f;
	uint32_t slot = d->slot;
	if (!sluice__desc_ring_ok(f, d)) {
		sluice__health_count(W->h, &W->h->bad_descriptors, 1);
		return false;
	}
	struct sluice__task_entry *e = &f->tasks[slot];
	uint32_t gen = SLUICE__TASK_ID_GEN(d->task_id);
	uint64_t expected = SLUICE__TW(SLUICE__TS_QUEUED, W->step, gen);
	/* acq_rel: acquire pairs with the release CAS that queued the entry
	 * (its desc is visible to us); the release half orders nothing yet. */
	if (!sl_cas_acq_rel(&e->state, &expected, SLUICE__TW(SLUICE__TS_HELD, W->id, gen + 1))) {
		sluice__health_count(W->h, &W->h->bad_descriptors, 1); /* stale, duplicate or forged */
		return false;
	}
	memset(it, 0, sizeof(*it));
	it->entry_ = e;
	it->slot_ = slot;
	it->gen_ = gen + 1;
	it->step = W->step;
	it->status_ = SLUICE_TASK_OK;
	it->new_result_ = SLUICE_BLOCK_NONE;
	it->old_result_ = SLUICE_BLOCK_NONE;
	return true;
}

/* Checks the held entry's descriptor and fills the item's view of it.
 * Returns false (and sets a message) when a field is bad. */
static bool check_entry(struct worker *W, sluice_item_t *it)
{
	struct sluice__task_entry *e = it->entry_;
	sluice_desc_t d = e->desc; /* one copy: ours while HELD, but checked once */
	it->user = d.user;
	it->priority = sluice__level(d.priority);
	it->attempt = d.attempt;
	it->deadline_ = d.deadline_ns;
	struct sluice__desc_view v;
	char why[SLUICE_TASK_MESSAGE_MAX];
	if (!sluice__desc_entry_ok(W->f, W->step, it->slot_, &d, &v, why, sizeof(why))) {
		set_message(it, "%s", why);
		return false;
	}
	it->payload = v.payload;
	it->payload_len = v.payload_len;
	it->old_result_ = d.result_block;
	it->old_len_ = d.result_len;
	it->result = v.result;
	it->result_len = v.result_len;
	it->result_cap = v.result_cap;
	return true;
}

/* Hands items[0..m) to handle() as one call, then ends or forwards each.
 * hooks: this is the batch's main call (the test hooks fire there). */
static void handle_and_conclude(struct worker *W, sluice_item_t *items, unsigned m, bool hooks)
{
	sluice_flow_t *f = W->f;
	struct sluice__step *st = W->st;
	W->done += m;
	/* For the supervisor's hung check: the earliest deadline in hand
	 * (relaxed: a snapshot it reads now and then). */
	uint64_t busy = 0;
	for (unsigned i = 0; i < m; i++)
		if (items[i].deadline_ != 0 && (busy == 0 || items[i].deadline_ < busy))
			busy = items[i].deadline_;
	sl_store_relaxed(&W->slot->busy_deadline, busy);
	sluice__health_call_begin(W->h, m, sluice__now_ns()); /* a beat */
	/* Each of them now uses up a run (the entries are ours: HELD). */
	for (unsigned i = 0; i < m; i++)
		((struct sluice__task_entry *)items[i].entry_)->j_ran = items[i].gen_;
	W->call = items;
	W->nitems = m;
	int rc = st->handler.handle(st->handler.arg, items, m);
	sl_store_relaxed(&W->slot->busy_deadline, 0);
	uint64_t end = sluice__now_ns();
	sluice__health_call_end(W->h, items, m, end); /* a beat; before any conclusion */
	if (hooks)
		HOOK(W, SLUICE__WH_HANDLED, NULL, items, m);
	for (unsigned i = 0; i < m; i++) {
		sluice_item_t *it = &items[i];
		if (rc < 0 && it->status_ == SLUICE_TASK_OK) {
			it->status_ = SLUICE_TASK_HANDLER_ERROR;
			set_message(it, "step '%s': handle() returned %d (%s)", st->name, rc,
				    sluice_err_name(rc));
		}
		if (it->status_ == SLUICE_TASK_OK && it->deadline_ != 0 && end > it->deadline_) {
			sluice__health_count(W->h, &W->h->timeouts, 1);
			it->status_ = SLUICE_TASK_TIMEOUT;
			set_message(it, "step '%s' ran past its task timeout of %llu ms", st->name,
				    (unsigned long long)(st->task_timeout_ns / 1000000));
		}
		if (it->status_ == SLUICE_TASK_OK && it->result_len > it->result_cap) {
			it->status_ = SLUICE_TASK_HANDLER_ERROR;
			set_message(it, "step '%s': result_len %llu exceeds the result block (%llu bytes)",
				    st->name, (unsigned long long)it->result_len,
				    (unsigned long long)it->result_cap);
		}
		if (it->status_ == SLUICE_TASK_OK && cancelled(it)) {
			it->status_ = SLUICE_TASK_CANCELLED;
			set_message(it, "cancelled while step '%s' ran it", st->name);
		}
		if (it->status_ == SLUICE_TASK_HANDLER_ERROR)
			sluice__health_count(W->h, &W->h->handler_errors, 1);
		uint32_t next = f->nsteps;
		if (it->status_ == SLUICE_TASK_OK)
			next = sluice__route(f, W->step + 1, it);
		conclude(W, it, next, end);
		if (hooks && i + 1 == (m + 1) / 2)
			HOOK(W, SLUICE__WH_PUBLISHING, NULL, items, m);
	}
	W->call = NULL;
	W->nitems = 0;
}

static void run_batch(struct worker *W, unsigned n, bool stopping)
{
	sluice_flow_t *f = W->f;
	struct sluice__step *st = W->st;
	HOOK(W, SLUICE__WH_TAKEN, W->descs, NULL, n);
	uint64_t now = sluice__now_ns();
	unsigned m = 0;
	W->nout = 0;
	for (unsigned i = 0; i < n; i++) {
		/* A copy: in[] is our scratch, but one look is enough. */
		sluice_desc_t d = W->descs[i];
		if ((d.flags & SLUICE__DESC_PILL) && d.slot == SLUICE__PILL_SLOT)
			continue; /* a wake-up from the supervisor, not a task */
		sluice_item_t *it = &W->items[m];
		if (!claim(W, &d, it))
			continue;
		if (!check_entry(W, it)) {
			sluice__health_count(W->h, &W->h->bad_descriptors, 1);
			it->status_ = SLUICE_TASK_BAD_DESCRIPTOR;
			it->old_result_ = SLUICE_BLOCK_NONE; /* not a block to hand on or free */
			it->old_len_ = 0;
			conclude(W, it, f->nsteps, now);
		} else if (stopping) {
			it->status_ = SLUICE_TASK_FLOW_STOPPED;
			set_message(it, "the flow stopped before step '%s' ran the task", st->name);
			conclude(W, it, f->nsteps, now);
		} else if (cancelled(it)) {
			it->status_ = SLUICE_TASK_CANCELLED;
			set_message(it, "cancelled before step '%s' ran it", st->name);
			conclude(W, it, f->nsteps, now);
		} else if (it->deadline_ != 0 && now > it->deadline_) {
			sluice__health_count(W->h, &W->h->timeouts, 1);
			it->status_ = SLUICE_TASK_TIMEOUT;
			set_message(it, "queued at step '%s' past its task timeout", st->name);
			conclude(W, it, f->nsteps, now);
		} else {
			m++;
		}
	}
	/* Every descriptor taken is claimed (HELD, found in the table) or
	 * moved on (in out[]) or was not ours to run: the intent record has
	 * served. */
	sluice_ring_intent_clear(&W->slot->intent);
	/* Retries (attempt > 0: their last run died with its worker) go last,
	 * each in a handle() call of its own: a task that kills its worker
	 * takes no other task down with it a second time. */
	unsigned fresh = m;
	for (unsigned i = 0; i < m; i++)
		if (W->items[i].attempt != 0)
			fresh--;
	if (fresh < m) {
		unsigned a = 0, b = fresh;
		for (unsigned i = 0; i < m; i++)
			W->spare[W->items[i].attempt == 0 ? a++ : b++] = W->items[i];
		memcpy(W->items, W->spare, m * sizeof(*W->items));
	}
	if (fresh > 0)
		handle_and_conclude(W, W->items, fresh, true);
	for (unsigned i = fresh; i < m; i++)
		handle_and_conclude(W, &W->items[i], 1, false);
	flush(W);
}

/* ---- the process --------------------------------------------------------------------- */

static void report_start(struct worker *W, uint32_t state, int rc, const char *msg)
{
	if (msg != NULL)
		snprintf(W->slot->message, sizeof(W->slot->message), "%s", msg);
	sl_store_relaxed(&W->slot->start_rc, rc);
	/* Release: message and start_rc before the state the supervisor reads
	 * (acquire) when the doorbell rings. */
	sl_store_release(&W->slot->state, state);
	sluice__notify(W->f->sup_efd);
}

static int setup(struct worker *W)
{
	sluice_flow_t *f = W->f;
	if (W->slot->scratch_n < W->bs)
		return SLUICE_ECORRUPT;
	W->descs = sluice__scratch_in(f, W->id);
	W->out = sluice__scratch_out(f, W->id);
	/* A fresh start: nothing taken, nothing to send (the supervisor
	 * cleared them after recovering our predecessor; again, to be sure). */
	sluice_ring_intent_clear(&W->slot->intent);
	sl_store_relaxed(&W->slot->nout, 0);
	sl_store_relaxed(&W->slot->busy_deadline, 0);
	sluice__health_worker_start(W->h);
	W->items = calloc(W->bs, sizeof(*W->items));
	W->spare = calloc(W->bs, sizeof(*W->spare));
	W->gather = calloc(W->bs, sizeof(*W->gather));
	W->out_target = calloc(W->bs, sizeof(*W->out_target));
	if (!W->items || !W->spare || !W->gather || !W->out_target)
		return SLUICE_ENOMEM;
	int rc = sluice_ring_open(&W->in, W->st->ring_mem, W->st->ring_size);
	if (rc == 0)
		rc = sluice_ring_set_priority(&W->in, f->ring_lanes, SLUICE_FLOW_PRIORITY_BURST);
	if (rc == 0) /* the step's wait mode (sluice_step_t.wait, validated by create) */
		rc = sluice_ring_set_wait(&W->in, W->st->wait, W->st->spin_ns);
	for (uint32_t t = W->step + 1; rc == 0 && t < f->nsteps; t++)
		rc = sluice__claim_step_lanes(f, t, W->owner, W->fwd[t]);
	for (uint32_t c = 0; rc == 0 && c < f->nclients; c++) {
		sluice_ring_t r;
		rc = sluice_ring_open(&r, f->comp_mem[c], f->comp_size[c]);
		if (rc == 0)
			rc = sluice_ring_producer_claim(&W->comp[c], &r, W->owner);
		if (rc == 0)
			rc = sluice_ring_producer_set_eventfd(&W->comp[c], f->client_efds[c]);
	}
	return rc;
}

void sluice__worker_main(sluice_flow_t *f, uint32_t wid)
{
	static struct worker W;
	W.f = f;
	W.id = wid;
	W.slot = &f->wslots[wid];
	W.h = &f->hworkers[wid];
	W.step = sluice__worker_step(f, wid);
	W.st = &f->steps[W.step];
	W.owner = SLUICE__OWNER_WORKER(wid);
	W.bs = W.st->batch_size;
	self = &W;

	char pname[16];
	snprintf(pname, sizeof(pname), "sl-%.12s", W.st->name); /* comm holds 15 */
	(void)prctl(PR_SET_NAME, pname);
	/* Release: pairs with the supervisor's acquire of the slot state. */
	sl_store_release(&W.slot->state, SLUICE__WS_STARTING);

	int rc = setup(&W);
	if (rc != 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "worker setup failed: %s", sluice_strerror(rc));
		report_start(&W, SLUICE__WS_FAILED, rc, msg);
		_exit(1);
	}
	/* Relaxed: written by the supervisor before it forked us. */
	uint32_t position = sl_load_relaxed(&W.slot->position);
	sluice_worker_info_t info = {
		.flow_name = f->name,
		.step_name = W.st->name,
		.step = W.step,
		.index = position < W.st->nprocs ? position : wid - W.st->first_worker,
		.worker = wid,
	};
	if (W.st->handler.on_start != NULL) {
		char msg[SLUICE_TASK_MESSAGE_MAX] = "";
		rc = W.st->handler.on_start(W.st->handler.arg, &info, msg, sizeof(msg));
		msg[sizeof(msg) - 1] = '\0';
		if (rc != 0) {
			report_start(&W, SLUICE__WS_FAILED, rc < 0 ? rc : -rc, msg);
			_exit(1);
		}
	}
	sluice__health_ready(W.h, sluice__now_ns());
	report_start(&W, SLUICE__WS_READY, 0, NULL);

	sluice_ring_intent_t *intent = &W.slot->intent;
	const uint64_t limit = W.st->max_tasks_per_worker;
	bool corrupt = false;
	for (;;) {
		/* Acquire: pairs with the supervisor's release store of the go
		 * (after our replacement reported READY). */
		if (W.retiring && sl_load_acquire(&W.slot->retire_go) != 0)
			break;
		int n = sluice_ring_dequeue_bulk_mpmc_intent(&W.in, W.descs, W.bs,
							     W.retiring ? RETIRE_POLL_NS
									: SLUICE_RING_FOREVER,
							     intent, 0);
		if (n == SLUICE_ETIMEDOUT || n == SLUICE_EINTR)
			continue;
		if (n == SLUICE_ECORRUPT) {
			/* Nothing to take, and a lane whose counters are
			 * impossible (a client scribbled on its own lane; the
			 * supervisor mends it once that client is gone). The
			 * other lanes still serve: look again soon, counting
			 * the lane once per episode. */
			if (!corrupt)
				sluice__health_count(W.h, &W.h->bad_descriptors, 1);
			corrupt = true;
			/* Acquire: pairs with the supervisor's release store of
			 * STOPPING (its pills may not be taken meanwhile). */
			if (sl_load_acquire(&f->hdr->state) >= SLUICE__FS_STOPPING)
				break;
			nap_corrupt();
			continue;
		}
		if (n < 0)
			break; /* the ring refuses us: nothing more this worker can do */
		corrupt = false;
		if ((unsigned)n < W.bs && W.st->batch_timeout_ns > 0) {
			uint64_t dl = sluice__deadline(sluice__now_ns(), W.st->batch_timeout_ns);
			bool pill = false;
			for (int i = 0; i < n; i++)
				pill |= W.descs[i].slot == SLUICE__PILL_SLOT;
			while ((unsigned)n < W.bs && !pill) {
				uint64_t now = sluice__now_ns();
				if (now >= dl)
					break;
				int k = sluice_ring_dequeue_bulk_mpmc_intent(&W.in, W.descs + n,
									     W.bs - (unsigned)n, dl - now,
									     intent, (uint32_t)n);
				if (k <= 0)
					break;
				for (int i = n; i < n + k; i++)
					pill |= W.descs[i].slot == SLUICE__PILL_SLOT;
				n += k;
			}
		}
		/* Acquire: pairs with the supervisor's release store of
		 * STOPPING (made before it sends the pills that wake us). */
		bool stopping = sl_load_acquire(&f->hdr->state) >= SLUICE__FS_STOPPING;
		run_batch(&W, (unsigned)n, stopping);
		if (stopping)
			break;
		if (limit != 0 && !W.retiring && W.done >= limit) {
			/* Ask for a replacement and keep serving until it is
			 * ready: the step never runs short. */
			W.retiring = true;
			report_start(&W, SLUICE__WS_RETIRING, 0, NULL);
		}
	}
	if (W.st->handler.on_stop != NULL)
		W.st->handler.on_stop(W.st->handler.arg, &info);
	/* Release: the counters before the state the supervisor reads. */
	sl_store_release(&W.slot->state, SLUICE__WS_EXITED);
	_exit(0);
}
