/* The client side of a flow: task entries, submit, completions, wait,
 * reap with an eventfd, release.
 *
 * The client owns a partition of the task table (its slot's entries) and
 * keeps a process-local sluice_task_t per entry: the caller's handle. The
 * entry's state word is the truth shared with the other processes; the
 * local state (enum sluice__lstate) says what the caller has been told.
 *
 * Local lists (one thread, no locking):
 *   in flight  submitted, not yet back, in submit order. The client's own
 *              deadline of a task is submit time + a per-flow constant, so
 *              the head has the earliest: reap and wait look only there.
 *   ready      back from the flow (or timed out here), not yet handed to
 *              the caller by wait or reap.
 *
 * The supervisor's death: submit looks at its pidfd now and then (at most
 * every SUP_CHECK_NS, and while it waits for room), wait sleeps in ppoll on
 * the completion eventfd and the pidfd together, reap looks when it has
 * nothing to return; once it is known dead they return SLUICE_ESUPERVISOR
 * (its workers die with it: PR_SET_PDEATHSIG), and sluice_flow_stop
 * completes what was in flight.
 *
 * A completion descriptor is trusted only after its slot lies in this
 * client's partition and the entry's state word equals DONE(this client,
 * the generation in the descriptor's task_id); anything else is dropped
 * and counted. Its result block is used only if it is a valid handle owned
 * by this client whose capacity holds result_len.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/health.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMP_BATCH 64u
#define SUBMIT_CHUNK 64u
/* A submit looks at the supervisor's pidfd at most this often, and a
 * submit waiting for room on a full ring this often. */
#define SUP_CHECK_NS UINT64_C(10000000)
#define SUBMIT_SLICE_NS UINT64_C(50000000)
/* wait's spin and busy-poll give the CPU up as the rings' waits do
 * (queues/ring.c): a spin every SPIN_YIELD_EVERY looks once it has lasted
 * SPIN_YIELD_AFTER_NS, a busy-poll every BUSY_YIELD_EVERY empty looks. */
#define SPIN_YIELD_AFTER_NS 5000u
#define SPIN_YIELD_EVERY 32u
#define BUSY_YIELD_EVERY 64u

static const char timed_out_msg[] = "the flow did not finish the task by its deadline";
static const char no_message[] = "";

/* ---- local lists -------------------------------------------------------------- */

static void list_push(sluice_task_t **head, sluice_task_t **tail, sluice_task_t *t)
{
	t->next_ = NULL;
	t->prev_ = *tail;
	if (*tail)
		(*tail)->next_ = t;
	else
		*head = t;
	*tail = t;
}

static void list_unlink(sluice_task_t **head, sluice_task_t **tail, sluice_task_t *t)
{
	if (t->prev_)
		t->prev_->next_ = t->next_;
	else
		*head = t->next_;
	if (t->next_)
		t->next_->prev_ = t->prev_;
	else
		*tail = t->prev_;
	t->prev_ = t->next_ = NULL;
}

static sluice_task_t *local_task(sluice_flow_t *f, const sluice_task_t *t)
{
	if (f == NULL || t == NULL || t < f->lt || t >= f->lt + f->tasks_per_client)
		return NULL;
	size_t i = (size_t)(t - f->lt);
	return &f->lt[i] == t ? &f->lt[i] : NULL;
}

static uint32_t my_owner(const sluice_flow_t *f)
{
	return SLUICE__OWNER_CLIENT(f->client);
}

/* ---- init ------------------------------------------------------------------------ */

int sluice__client_init(sluice_flow_t *f, uint32_t slot)
{
	f->client = slot;
	struct sluice__client_slot *cs = &f->cslots[f->client];
	f->lt = calloc(f->tasks_per_client, sizeof(*f->lt));
	f->free_slots = calloc(f->tasks_per_client, sizeof(*f->free_slots));
	if (f->lt == NULL || f->free_slots == NULL)
		return SLUICE_ENOMEM;
	for (uint32_t i = 0; i < f->tasks_per_client; i++) {
		f->lt[i].slot_ = slot * f->tasks_per_client + i; /* our geometry, not the slot's */
		f->lt[i].payload_block_ = SLUICE_BLOCK_NONE;
		f->lt[i].result_block_ = SLUICE_BLOCK_NONE;
		f->lt[i].message = no_message;
		f->free_slots[i] = f->tasks_per_client - 1 - i; /* slot 0 comes out first */
	}
	f->nfree = f->tasks_per_client;
	/* Relaxed: nobody else maps the arena yet (an attached client's slot
	 * pid is the supervisor's to write). */
	if (!f->attached)
		sl_store_relaxed(&cs->pid, (uint32_t)getpid());

	int rc = sluice_ring_open(&f->comp, f->comp_mem[f->client], f->comp_size[f->client]);
	if (rc == 0)
		rc = sluice_ring_set_eventfd(&f->comp, f->client_efd);
	if (rc == 0)
		rc = sluice_ring_producer_claim(&f->comp_self, &f->comp, my_owner(f));
	if (rc == 0)
		rc = sluice_ring_producer_set_eventfd(&f->comp_self, f->client_efd);
	for (uint32_t s = 0; rc == 0 && s < f->nsteps; s++)
		rc = sluice__claim_step_lanes(f, s, my_owner(f), f->prod[s]);
	return rc;
}

void sluice__client_fini(sluice_flow_t *f)
{
	free(f->lt);
	free(f->free_slots);
	f->lt = NULL;
	f->free_slots = NULL;
}

/* ---- completions ------------------------------------------------------------------- */

static void free_block(sluice_flow_t *f, uint32_t *blk)
{
	if (*blk != SLUICE_BLOCK_NONE)
		(void)sluice_blocks_free(&f->blocks, *blk, my_owner(f)); /* refused if not ours: fine */
	*blk = SLUICE_BLOCK_NONE;
}

/* Gives entry and blocks of `t` back; the entry must be ours (DONE or
 * CLIENT). An entry in any other state (shared memory scribbled on) is
 * left out of the free list rather than reused. */
static void recycle(sluice_flow_t *f, sluice_task_t *t)
{
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	free_block(f, &t->payload_block_);
	free_block(f, &t->result_block_);
	/* Acquire: pairs with the release CAS that moved it to DONE (or our
	 * own CAS to CLIENT). */
	uint64_t w = sl_load_acquire(&e->state);
	unsigned st = SLUICE__TW_STATE(w);
	t->lstate_ = SLUICE__LT_FREE;
	t->payload = NULL;
	t->result = NULL;
	t->message = no_message;
	if ((st == SLUICE__TS_DONE || st == SLUICE__TS_CLIENT) &&
	    SLUICE__TW_OWNER(w) == f->client &&
	    /* Release: our reads of the entry happen before anyone reuses it
	     * (pairs with the acquire of our next alloc's CAS). */
	    sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_FREE, 0, SLUICE__TW_GEN(w) + 1))) {
		f->free_slots[f->nfree++] = (uint32_t)(t - f->lt);
		return;
	}
	sl_fetch_add_relaxed(&f->cslots[f->client].dropped, 1);
}

/* Copies status, result and message of entry `e` (DONE, ours) into `t`. */
static void fill_result(sluice_flow_t *f, sluice_task_t *t, struct sluice__task_entry *e)
{
	/* We own the entry now: terminate the message whatever was written. */
	e->message[SLUICE_TASK_MESSAGE_MAX - 1] = '\0';
	t->message = e->message;
	t->status = e->desc.status;
	t->attempt = e->desc.attempt;
	uint32_t blk = e->desc.result_block;
	uint64_t len = e->desc.result_len;
	void *p;
	uint64_t cap;
	if (sluice__block_ok(f, blk, len, my_owner(f), &p, &cap)) {
		t->result = p;
		t->result_len = len;
		t->result_block_ = blk;
	} else {
		t->result = NULL;
		t->result_len = 0;
		t->result_block_ = SLUICE_BLOCK_NONE;
		if (t->status == SLUICE_TASK_OK) {
			t->status = SLUICE_TASK_BAD_DESCRIPTOR;
			snprintf(e->message, sizeof(e->message), "bad result block in the completion");
		}
	}
}

static void take_completion(sluice_flow_t *f, const sluice_desc_t *d)
{
	struct sluice__client_slot *cs = &f->cslots[f->client];
	/* Our share from our own geometry: the slot's copy in shared memory
	 * may have been scribbled on. */
	const uint32_t first = f->client * f->tasks_per_client;
	uint32_t slot = d->slot;
	if (slot - first >= f->tasks_per_client || SLUICE__TASK_ID_SLOT(d->task_id) != slot)
		goto drop;
	struct sluice__task_entry *e = &f->tasks[slot];
	/* Acquire: pairs with the release CAS that moved the entry to DONE,
	 * after its writer filled desc and message. */
	uint64_t w = sl_load_acquire(&e->state);
	if (w != SLUICE__TW(SLUICE__TS_DONE, f->client, SLUICE__TASK_ID_GEN(d->task_id)))
		goto drop;
	sluice_task_t *t = &f->lt[slot - first];
	switch (t->lstate_) {
	case SLUICE__LT_INFLIGHT:
		list_unlink(&f->infl_head, &f->infl_tail, t);
		fill_result(f, t, e);
		sluice__health_completed(f, t->status);
		t->arrived_ = 1;
		t->lstate_ = SLUICE__LT_READY;
		list_push(&f->ready_head, &f->ready_tail, t);
		return;
	case SLUICE__LT_RETURNED:
		if (t->arrived_)
			goto drop;
		/* Timed out here earlier: the late result is dropped now, the
		 * entry at release. */
		t->arrived_ = 1;
		{
			uint32_t blk = e->desc.result_block;
			void *p;
			uint64_t cap;
			if (sluice__block_ok(f, blk, e->desc.result_len, my_owner(f), &p, &cap))
				free_block(f, &blk);
		}
		return;
	case SLUICE__LT_ORPHAN: {
		uint32_t blk = e->desc.result_block;
		void *p;
		uint64_t cap;
		if (sluice__block_ok(f, blk, e->desc.result_len, my_owner(f), &p, &cap))
			t->result_block_ = blk;
		recycle(f, t);
		return;
	}
	}
drop:
	sl_fetch_add_relaxed(&cs->dropped, 1);
}

/* Takes whatever is on the completion ring, without waiting. */
static void drain_ring(sluice_flow_t *f)
{
	sluice_desc_t buf[COMP_BATCH];
	int k;
	while ((k = sluice_ring_try_dequeue_bulk_mpmc(&f->comp, buf, COMP_BATCH)) > 0)
		for (int i = 0; i < k; i++)
			take_completion(f, &buf[i]);
}

void sluice__client_drain(sluice_flow_t *f)
{
	drain_ring(f);
	if (f->efd_mode && f->ready_head != NULL)
		sluice__notify(f->client_efd); /* reap has something */
}

static void time_out_locally(sluice_flow_t *f, sluice_task_t *t)
{
	list_unlink(&f->infl_head, &f->infl_tail, t);
	sluice__health_completed(f, SLUICE_TASK_TIMEOUT);
	t->status = SLUICE_TASK_TIMEOUT;
	t->result = NULL;
	t->result_len = 0;
	t->message = timed_out_msg;
	t->arrived_ = 0;
	t->lstate_ = SLUICE__LT_RETURNED;
}

/* ---- the calls ------------------------------------------------------------------------ */

int sluice_task_alloc(sluice_flow_t *f, uint64_t payload_size, sluice_task_t **out)
{
	if (f == NULL || out == NULL || f->lt == NULL)
		return SLUICE_EINVAL;
	if (f->nfree == 0)
		return SLUICE_EAGAIN;
	sluice_task_t *t = &f->lt[f->free_slots[f->nfree - 1]];
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	uint32_t blk = SLUICE_BLOCK_NONE;
	void *ptr = NULL;
	uint64_t cap = 0;
	if (payload_size > 0) {
		int rc = sluice_blocks_alloc(&f->blocks, payload_size, my_owner(f), &blk);
		if (rc != 0)
			return rc;
		ptr = sluice_blocks_ptr(&f->blocks, blk, &cap);
		if (ptr == NULL) {
			(void)sluice_blocks_free(&f->blocks, blk, my_owner(f));
			return SLUICE_ECORRUPT;
		}
	}
	/* Acquire: pairs with our release CAS to FREE at the entry's last
	 * release. Only this client moves its FREE entries. */
	uint64_t w = sl_load_acquire(&e->state);
	if (SLUICE__TW_STATE(w) != SLUICE__TS_FREE ||
	    !sl_cas_acq_rel(&e->state, &w,
			    SLUICE__TW(SLUICE__TS_CLIENT, f->client, SLUICE__TW_GEN(w) + 1))) {
		if (blk != SLUICE_BLOCK_NONE)
			(void)sluice_blocks_free(&f->blocks, blk, my_owner(f));
		f->nfree--; /* a scribbled entry: never use that slot again */
		sl_fetch_add_relaxed(&f->cslots[f->client].dropped, 1);
		return SLUICE_ECORRUPT;
	}
	f->nfree--;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX; /* descriptors carry 32-bit lengths */
	t->payload = ptr;
	t->payload_cap = cap;
	t->payload_cap_ = cap;
	t->payload_len = 0;
	t->user = 0;
	t->priority = SLUICE_PRIORITY_NORMAL;
	/* Relaxed: the entry is CLIENT(us); a worker reads the flag only
	 * after the entry's next QUEUED -> HELD transition (acq_rel). */
	sl_store_relaxed(&f->tasks[t->slot_].cancel, 0);
	t->status = 0;
	t->attempt = 0;
	t->result = NULL;
	t->result_len = 0;
	t->message = no_message;
	t->bound_ns_ = 0;
	t->payload_block_ = blk;
	t->result_block_ = SLUICE_BLOCK_NONE;
	t->arrived_ = 0;
	t->lstate_ = SLUICE__LT_ALLOC;
	*out = t;
	return 0;
}

/* A task no step accepts: done here, OK, without a result. */
static void complete_locally(sluice_flow_t *f, sluice_task_t *t)
{
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	uint64_t w = sl_load_relaxed(&e->state); /* CLIENT(us): only we move it */
	e->desc.status = SLUICE_TASK_OK;
	e->desc.result_block = SLUICE_BLOCK_NONE;
	e->desc.result_len = 0;
	e->message[0] = '\0';
	/* acq_rel like every transition; nobody else reads it before release. */
	if (!sl_cas_acq_rel(&e->state, &w,
			    SLUICE__TW(SLUICE__TS_DONE, f->client, SLUICE__TW_GEN(w) + 1)))
		sl_fetch_add_relaxed(&f->cslots[f->client].dropped, 1);
	sluice__health_submitted(f, 1);
	sluice__health_completed(f, SLUICE_TASK_OK);
	t->status = SLUICE_TASK_OK;
	t->result = NULL;
	t->result_len = 0;
	t->message = e->message;
	t->arrived_ = 1;
	t->lstate_ = SLUICE__LT_READY;
	list_push(&f->ready_head, &f->ready_tail, t);
}

/* Fills entry and descriptor of `t` for step s and moves the entry
 * CLIENT -> QUEUED(s). */
static void queue_entry(sluice_flow_t *f, sluice_task_t *t, uint32_t s, uint64_t now,
			sluice_desc_t *d)
{
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	uint64_t w = sl_load_relaxed(&e->state); /* CLIENT(us): only we move it */
	uint32_t gen = SLUICE__TW_GEN(w) + 1;
	uint64_t to = f->steps[s].task_timeout_ns;
	*d = (sluice_desc_t){
		.task_id = SLUICE__TASK_ID(gen, t->slot_),
		.submit_ns = now,
		.deadline_ns = to ? sluice__deadline(now, to) : 0,
		.user = t->user,
		.payload_block = t->payload_block_,
		.payload_len = (uint32_t)t->payload_len,
		.result_block = SLUICE_BLOCK_NONE,
		.result_len = 0,
		.slot = t->slot_,
		.client = f->client,
		.step = (uint16_t)s,
		.priority = (uint8_t)t->priority,
	};
	e->desc = *d;
	e->queued_ns = now;
	e->message[0] = '\0';
	/* Release: publishes desc and message to the worker whose CAS
	 * QUEUED -> HELD (acq_rel) wins the entry. Cannot fail: CLIENT(us). */
	if (!sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_QUEUED, s, gen)))
		sl_fetch_add_relaxed(&f->cslots[f->client].dropped, 1);
}

/* Takes a queued entry back: its descriptor never reached a ring. Only
 * the supervisor may have moved it meanwhile (completing what is queued
 * for a step left without workers); then its completion is on the way and
 * the task is in flight after all (returns false). */
static bool unqueue_entry(sluice_flow_t *f, sluice_task_t *t)
{
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	/* Acquire: pairs with a sweeper's CAS, should it have won the entry. */
	uint64_t w = sl_load_acquire(&e->state);
	if (SLUICE__TW_STATE(w) == SLUICE__TS_QUEUED &&
	    sl_cas_acq_rel(&e->state, &w,
			   SLUICE__TW(SLUICE__TS_CLIENT, f->client, SLUICE__TW_GEN(w) + 1))) {
		t->lstate_ = SLUICE__LT_ALLOC;
		return true;
	}
	return false;
}

int sluice_task_submit_many(sluice_flow_t *f, sluice_task_t **tasks, unsigned n,
			    uint64_t timeout_ns)
{
	if (f == NULL || (tasks == NULL && n > 0) || f->lt == NULL)
		return SLUICE_EINVAL;
	if (n == 0)
		return 0;
	if (f->sup_died)
		return SLUICE_ESUPERVISOR;
	/* Acquire: pairs with the store that made it RUNNING; a stop (store
	 * of DRAINING by this thread) is seen at once. */
	if (sl_load_acquire(&f->hdr->state) != SLUICE__FS_RUNNING)
		return SLUICE_ESTOPPED;
	uint64_t now = sluice__now_ns();
	/* Check every task first, marking them so a task listed twice is
	 * caught; nothing is submitted if one is bad. */
	for (unsigned i = 0; i < n; i++) {
		sluice_task_t *t = local_task(f, tasks[i]);
		if (t == NULL || t->lstate_ != SLUICE__LT_ALLOC || t->payload_len > t->payload_cap_ ||
		    t->priority > SLUICE_PRIORITY_HIGH) {
			for (unsigned j = 0; j < i; j++)
				tasks[j]->lstate_ = SLUICE__LT_ALLOC;
			return SLUICE_EINVAL;
		}
		t->lstate_ = SLUICE__LT_INFLIGHT; /* marked; put on the list once queued */
	}

	uint64_t deadline = sluice__deadline(now, timeout_ns);
	uint32_t route[SUBMIT_CHUNK];
	sluice_desc_t descs[SUBMIT_CHUNK];
	unsigned done = 0;
	int err = 0;
	while (done < n && err == 0) {
		unsigned m = n - done < SUBMIT_CHUNK ? n - done : SUBMIT_CHUNK;
		for (unsigned j = 0; j < m; j++) {
			sluice_task_t *t = tasks[done + j];
			sluice_item_t view = {.payload = t->payload, .payload_len = t->payload_len,
					      .user = t->user};
			route[j] = sluice__route(f, 0, &view);
		}
		unsigned j = 0;
		while (j < m && err == 0) {
			uint32_t s = route[j];
			if (s >= f->nsteps) {
				complete_locally(f, tasks[done + j]);
				sluice__notify(f->client_efd);
				j++;
				continue;
			}
			/* A run: the same step, the same level. */
			unsigned k = j, lv = sluice__level((uint8_t)tasks[done + j]->priority);
			while (k < m && route[k] == s &&
			       sluice__level((uint8_t)tasks[done + k]->priority) == lv) {
				queue_entry(f, tasks[done + k], s, now, &descs[k - j]);
				k++;
			}
			unsigned run = k - j, moved = 0;
			uint64_t t_now = now;
			while (moved < run) {
				/* In slices: a full ring whose workers died with the
				 * supervisor would never drain. */
				uint64_t left = deadline > t_now ? deadline - t_now : 0;
				uint64_t slice = left < SUBMIT_SLICE_NS ? left : SUBMIT_SLICE_NS;
				int rc = sluice_ring_enqueue_bulk_mpmc(&f->prod[s][lv], descs + moved,
								       run - moved, slice);
				if (rc > 0) {
					moved += (unsigned)rc;
					t_now = sluice__now_ns();
					continue;
				}
				if (rc != SLUICE_ETIMEDOUT && rc != 0) {
					err = rc;
					break;
				}
				if (sluice__supervisor_gone(f)) {
					err = SLUICE_ESUPERVISOR;
					break;
				}
				if (slice == left) {
					err = SLUICE_ETIMEDOUT;
					break;
				}
				t_now = sluice__now_ns();
			}
			uint64_t sent = 0;
			for (unsigned q = 0; q < run; q++) {
				sluice_task_t *t = tasks[done + j + q];
				if (q < moved || !unqueue_entry(f, t)) {
					t->bound_ns_ = f->client_bound_ns
							       ? sluice__deadline(now, f->client_bound_ns)
							       : 0;
					list_push(&f->infl_head, &f->infl_tail, t);
					sent++;
				}
			}
			sluice__health_submitted(f, sent);
			j += moved;
		}
		done += j;
	}
	/* Whatever was not reached stays allocated (tasks[done..] were only
	 * marked, or were taken back by unqueue_entry). */
	for (unsigned i = done; i < n; i++)
		if (tasks[i]->lstate_ == SLUICE__LT_INFLIGHT)
			tasks[i]->lstate_ = SLUICE__LT_ALLOC;
	/* The supervisor's pidfd, now and then: after the publication, so that
	 * this system call (4-7 us after idleness on the bench VM) overlaps
	 * the worker's wake-up instead of delaying it. A death found here is
	 * reported by the next call; what this one published is in flight,
	 * and wait and reap return SLUICE_ESUPERVISOR for it. */
	if (now >= f->sup_check_ns) {
		f->sup_check_ns = sluice__deadline(now, SUP_CHECK_NS);
		(void)sluice__supervisor_gone(f);
	}
	if (done == 0 && err != 0)
		return err;
	return (int)done;
}

int sluice_task_submit(sluice_flow_t *f, sluice_task_t *t, uint64_t timeout_ns)
{
	int rc = sluice_task_submit_many(f, &t, 1, timeout_ns);
	return rc == 1 ? 0 : rc;
}

/* Spins (busy: polls) from `start` up to `until` for completions;
 * returns once t is ready or the time ran out. With more runnable
 * processes than CPUs the worker we wait for may be off its CPU: give ours
 * up now and then, as the rings do. */
static void spin_for(sluice_flow_t *f, sluice_task_t *t, uint64_t start, uint64_t until,
		     bool busy)
{
	sluice_desc_t buf[COMP_BATCH];
	for (unsigned i = 1; t->lstate_ != SLUICE__LT_READY; i++) {
		int k = sluice_ring_try_dequeue_bulk_mpmc(&f->comp, buf, COMP_BATCH);
		for (int j = 0; j < k; j++)
			take_completion(f, &buf[j]);
		if (k > 0)
			continue;
		sl_cpu_relax();
		if (i % 16 != 0)
			continue;
		uint64_t now = sluice__now_ns();
		if (now >= until)
			return;
		if (busy ? i % BUSY_YIELD_EVERY == 0
			 : i % SPIN_YIELD_EVERY == 0 && now - start >= SPIN_YIELD_AFTER_NS)
			sched_yield();
	}
}

static int wait_done(sluice_flow_t *f, sluice_task_t *t, bool used_efd, int rc)
{
	if (rc == 0) {
		list_unlink(&f->ready_head, &f->ready_tail, t);
		t->lstate_ = SLUICE__LT_RETURNED;
	}
	/* We may have reset the eventfd while collecting other tasks'
	 * completions: keep it readable for the caller's event loop (reap
	 * resets it once it has drained). */
	if (used_efd && f->efd_mode)
		sluice__notify(f->client_efd);
	return rc;
}

int sluice_task_wait(sluice_flow_t *f, sluice_task_t *t, uint64_t timeout_ns)
{
	t = local_task(f, t);
	if (t == NULL)
		return SLUICE_EINVAL;
	switch (t->lstate_) {
	case SLUICE__LT_RETURNED:
		return 0;
	case SLUICE__LT_READY:
		list_unlink(&f->ready_head, &f->ready_tail, t);
		t->lstate_ = SLUICE__LT_RETURNED;
		return 0;
	case SLUICE__LT_INFLIGHT:
		break;
	default:
		return SLUICE_EINVAL;
	}
	uint64_t deadline = sluice__deadline(sluice__now_ns(), timeout_ns);
	bool used_efd = false, spun = false;
	for (;;) {
		drain_ring(f);
		if (t->lstate_ == SLUICE__LT_READY)
			return wait_done(f, t, used_efd, 0);
		uint64_t now = sluice__now_ns();
		if (t->bound_ns_ != 0 && now >= t->bound_ns_) {
			time_out_locally(f, t); /* returned to the caller already */
			(void)wait_done(f, t, used_efd, SLUICE_ETIMEDOUT);
			return 0;
		}
		if (f->sup_died)
			return wait_done(f, t, used_efd, SLUICE_ESUPERVISOR);
		if (now >= deadline)
			return wait_done(f, t, used_efd, SLUICE_ETIMEDOUT);
		uint64_t until = deadline;
		if (t->bound_ns_ != 0 && t->bound_ns_ < until)
			until = t->bound_ns_;
		if (f->client_wait == SLUICE_RING_BUSY_POLL) {
			/* Never sleep; look at the supervisor's pidfd every
			 * SUP_CHECK_NS (its death is judged at the top). */
			spin_for(f, t, now, until - now < SUP_CHECK_NS ? until : now + SUP_CHECK_NS,
				 true);
			if (t->lstate_ != SLUICE__LT_READY)
				(void)sluice__supervisor_gone(f);
			continue;
		}
		if (!spun && f->client_spin_ns > 0) {
			spun = true;
			uint64_t spin = f->client_spin_ns;
			spin_for(f, t, now, until - now < spin ? until : now + spin, false);
			continue;
		}
		/* Sleep on the completion eventfd and the supervisor's pidfd
		 * together: a completion or the supervisor's death wakes us,
		 * whatever the timeout. Arming fences and looks at the ring
		 * again: a completion published after our last look either
		 * shows up there or writes the eventfd. */
		int armed = sluice_ring_arm(&f->comp);
		if (armed == 1)
			continue;
		struct pollfd p[2] = {
			{.fd = f->client_efd, .events = POLLIN},
			{.fd = f->sup_pidfd, .events = POLLIN},
		};
		nfds_t np = f->sup_pidfd >= 0 && !f->sup_reaped ? 2 : 1;
		uint64_t rel = until == UINT64_MAX ? UINT64_MAX : until - now;
		if (armed != 0 && rel > (uint64_t)SLUICE_RING_ARMED_POLL_MS * 1000000u)
			rel = (uint64_t)SLUICE_RING_ARMED_POLL_MS * 1000000u; /* see ring.h */
		struct timespec ts, *tsp = NULL;
		if (rel != UINT64_MAX) {
			ts.tv_sec = (time_t)(rel / 1000000000u);
			ts.tv_nsec = (long)(rel % 1000000000u);
			tsp = &ts;
		}
		int n = ppoll(p, np, tsp, NULL);
		used_efd = true;
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			(void)!read(f->client_efd, &v, sizeof(v));
		}
		sluice_ring_disarm(&f->comp);
		if (n > 0 && np == 2 && p[1].revents != 0)
			(void)sluice__supervisor_gone(f); /* drained and judged at the top */
	}
}

int sluice_flow_reap(sluice_flow_t *f, sluice_task_t **out, unsigned n)
{
	if (f == NULL || (out == NULL && n > 0) || f->lt == NULL)
		return SLUICE_EINVAL;
	unsigned k = 0;
	bool polled = false;
	for (;;) {
		drain_ring(f);
		while (k < n && f->ready_head != NULL) {
			sluice_task_t *t = f->ready_head;
			list_unlink(&f->ready_head, &f->ready_tail, t);
			t->lstate_ = SLUICE__LT_RETURNED;
			out[k++] = t;
		}
		if (k < n && f->infl_head != NULL && f->infl_head->bound_ns_ != 0) {
			uint64_t now = sluice__now_ns();
			while (k < n && f->infl_head != NULL && f->infl_head->bound_ns_ != 0 &&
			       now >= f->infl_head->bound_ns_) {
				sluice_task_t *t = f->infl_head;
				time_out_locally(f, t);
				out[k++] = t;
			}
		}
		if (k == 0 && f->infl_head != NULL && sluice__supervisor_gone(f))
			return SLUICE_ESUPERVISOR; /* nothing will come back */
		if (k == n || !f->efd_mode)
			return (int)k;
		/* Drained: reset the eventfd, then arm; the ring's arm fences
		 * and looks again, so a completion published after our last
		 * look either shows up here or writes the eventfd. */
		uint64_t v;
		(void)!read(f->client_efd, &v, sizeof(v));
		if (f->ready_head != NULL)
			continue;
		int armed = sluice_ring_arm(&f->comp);
		if (armed == 0)
			return (int)k;
		if (armed == SLUICE_RING_ARMED_POLL) {
			/* A worker may publish without seeing the arming
			 * (ring.h): wait up to ARMED_POLL_MS for the eventfd,
			 * look again (once per call), then leave the eventfd
			 * readable so the caller's loop comes back: it looks
			 * every millisecond, instead of sleeping through a
			 * completion or spinning. */
			if (k > 0 || polled) {
				sluice__notify(f->client_efd);
				return (int)k;
			}
			polled = true;
			struct pollfd p = {.fd = f->client_efd, .events = POLLIN};
			(void)poll(&p, 1, SLUICE_RING_ARMED_POLL_MS);
		}
	}
}

void sluice__client_arm(sluice_flow_t *f)
{
	/* Armed from now on: the next completion writes the eventfd. Whatever
	 * is queued or ready already (or a failed membarrier: ARMED_POLL)
	 * makes it readable now, so the caller's first wait returns at once
	 * and its reap re-arms. */
	if (sluice_ring_arm(&f->comp) != 0 || f->ready_head != NULL)
		sluice__notify(f->client_efd);
}

int sluice_task_cancel(sluice_flow_t *f, sluice_task_t *t)
{
	t = local_task(f, t);
	if (t == NULL)
		return SLUICE_EINVAL;
	if (t->lstate_ == SLUICE__LT_READY || t->lstate_ == SLUICE__LT_RETURNED)
		return SLUICE_EALREADY;
	if (t->lstate_ != SLUICE__LT_INFLIGHT)
		return SLUICE_EINVAL;
	struct sluice__task_entry *e = &f->tasks[t->slot_];
	/* Relaxed: advisory; whoever holds the entry looks at it when it
	 * claims the task and when it concludes a step. A holder that misses
	 * it finishes the step as if the cancel came later. */
	sl_store_relaxed(&e->cancel, 1);
	/* Acquire: pairs with the release CAS of whoever queued it. */
	uint64_t w = sl_load_acquire(&e->state);
	while (SLUICE__TW_STATE(w) == SLUICE__TS_QUEUED) {
		uint32_t step = SLUICE__TW_OWNER(w);
		/* acq_rel: wins the entry from the ring (its descriptor there
		 * becomes stale: the worker that takes it fails its claim) and
		 * acquires the desc its last holder wrote. */
		if (!sl_cas_acq_rel(&e->state, &w, SLUICE__TW(SLUICE__TS_DONE, f->client,
								  SLUICE__TW_GEN(w) + 1)))
			continue; /* w reloaded: claimed, or moved by the supervisor */
		e->desc.status = SLUICE_TASK_CANCELLED;
		snprintf(e->message, sizeof(e->message), "cancelled before step '%s' ran it",
			 step < f->nsteps ? f->steps[step].name : "?");
		list_unlink(&f->infl_head, &f->infl_tail, t);
		fill_result(f, t, e);
		t->arrived_ = 1;
		t->lstate_ = SLUICE__LT_READY;
		list_push(&f->ready_head, &f->ready_tail, t);
		if (f->efd_mode)
			sluice__notify(f->client_efd); /* reap has something */
		return 0;
	}
	/* HELD: a worker runs it and will see the flag. DONE: its completion
	 * is on the ring; wait or reap gives its status. */
	return SLUICE__TW_STATE(w) == SLUICE__TS_DONE ? SLUICE_EALREADY : SLUICE_EINPROGRESS;
}

int sluice_task_release(sluice_flow_t *f, sluice_task_t *t)
{
	t = local_task(f, t);
	if (t == NULL)
		return SLUICE_EINVAL;
	switch (t->lstate_) {
	case SLUICE__LT_ALLOC:
		recycle(f, t);
		return 0;
	case SLUICE__LT_INFLIGHT:
		list_unlink(&f->infl_head, &f->infl_tail, t);
		t->lstate_ = SLUICE__LT_ORPHAN;
		return 0;
	case SLUICE__LT_READY:
		list_unlink(&f->ready_head, &f->ready_tail, t);
		recycle(f, t);
		return 0;
	case SLUICE__LT_RETURNED:
		if (t->arrived_)
			recycle(f, t);
		else
			t->lstate_ = SLUICE__LT_ORPHAN;
		return 0;
	}
	return SLUICE_EINVAL;
}
