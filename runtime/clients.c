/* The supervisor's client slots: handing a slot to a process that attached
 * (docs/ATTACH.md), and taking everything back when it goes.
 *
 * Slot 0 is the creator's for the flow's life (its death stops the flow).
 * Slots 1 .. nclients - 1 go to attached processes: FREE -> ACTIVE at
 * grant, ACTIVE -> DRAINING when the process dies or detaches (its
 * connection closes or its pidfd says it exited), DRAINING -> FREE once
 * every entry of the slot's share of the task table is FREE again and the
 * slot's blocks and ring lanes are back. Only the supervisor moves a slot.
 *
 * Draining a dead client's share, entry by entry (every move a CAS of the
 * state word, so a worker racing for the entry loses cleanly):
 *
 *	CLIENT(c), DONE(c)  -> FREE: nobody else touches them
 *	QUEUED(s)           -> FREE: the descriptor on the ring goes stale and
 *	                       the worker that takes it fails its claim
 *	HELD(w)             cancel flag set: the worker completes it as
 *	                       cancelled when its step concludes it (or its
 *	                       recovery does, if it dies), DONE(c): next pass
 *
 * and its completion ring is emptied (the copies are dropped; the entries
 * are freed through the table, not the ring). When no entry is left
 * HELD, the blocks the client owned (payloads, results, its allocator
 * cache) are reclaimed and its lanes on the step rings and on its
 * completion ring are released. A slot is granted again only FREE, so the
 * next client starts with its whole share free.
 *
 * A client maps the arena read-write and may have scribbled on what is
 * its own (docs/SECURITY.md): so the share is found from our own copy of
 * the geometry, never from the slot in shared memory; an entry HELD by a
 * worker that does not hold it (forged) is freed, not waited for; the
 * slot table is written back from our copy before every grant and at
 * release; a health section the client left open is closed; its lanes'
 * counters are made consistent again as they are released (queues/).
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/clients.h"
#include "runtime/flow_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <unistd.h>

#define MSEC UINT64_C(1000000)

void sluice__clients_init(struct sluice__clients *T, sluice_flow_t *f)
{
	T->f = f;
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++) {
		T->state[c] = c == 0 ? SLUICE__CS_ACTIVE : SLUICE__CS_FREE;
		T->pid[c] = 0;
		T->opened[c] = false;
		T->conn[c] = -1;
		T->pidfd[c] = -1;
		/* Plain reads: written by create before the supervisor was
		 * forked; no client can have attached yet. */
		if (c < f->nclients)
			T->geom[c] = f->cslots[c];
	}
	T->ndraining = 0;
	T->listening = false;
	T->epfd = -1;
}

int sluice__clients_listen(struct sluice__clients *T, int epfd, uint64_t tag, char *msg,
			   size_t msglen)
{
	int rc = sluice__ctl_server_init(&T->ctl, T->f->name, NULL, msg, msglen);
	if (rc != 0)
		return rc;
	T->listening = true;
	T->epfd = epfd;
	T->tag = tag;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = tag | (uint64_t)SLUICE__CLIENTS_EV_CTL << 8};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, T->ctl.epfd, &ev) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "epoll_ctl: %s", sluice_strerror(rc));
		sluice__clients_fini(T);
		return rc;
	}
	return 0;
}

static void close_lease(struct sluice__clients *T, uint32_t c)
{
	if (T->conn[c] >= 0) {
		if (T->epfd >= 0)
			(void)epoll_ctl(T->epfd, EPOLL_CTL_DEL, T->conn[c], NULL);
		close(T->conn[c]);
	}
	if (T->pidfd[c] >= 0) {
		if (T->epfd >= 0)
			(void)epoll_ctl(T->epfd, EPOLL_CTL_DEL, T->pidfd[c], NULL);
		close(T->pidfd[c]);
	}
	T->conn[c] = T->pidfd[c] = -1;
}

void sluice__clients_close_in_child(struct sluice__clients *T)
{
	if (T->listening)
		sluice__ctl_server_close_in_child(&T->ctl);
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++) {
		if (T->conn[c] >= 0)
			close(T->conn[c]);
		if (T->pidfd[c] >= 0)
			close(T->pidfd[c]);
	}
}

void sluice__clients_fini(struct sluice__clients *T)
{
	if (T->listening)
		sluice__ctl_server_fini(&T->ctl);
	T->listening = false;
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++)
		close_lease(T, c);
}

/* Writes client slot c's geometry back from our copy (a no-op unless a
 * client scribbled on it). Plain stores: these fields are read only by
 * sluice__flow_open_arena in a process that attaches, which checks them. */
static void restore_slot(struct sluice__clients *T, uint32_t c)
{
	struct sluice__client_slot *cs = &T->f->cslots[c];
	const struct sluice__client_slot *g = &T->geom[c];
	cs->comp_ring_off = g->comp_ring_off;
	cs->comp_ring_size = g->comp_ring_size;
	cs->first_task = g->first_task;
	cs->ntasks = g->ntasks;
}

/* Takes back slot c, just granted and never handed over. */
static void ungrant(struct sluice__clients *T, uint32_t c)
{
	T->state[c] = SLUICE__CS_FREE;
	T->pid[c] = 0;
	/* Relaxed: an observer's snapshot, as in grant. */
	sl_store_relaxed(&T->f->cslots[c].pid, 0);
}

/* Answers one valid hello. */
static void answer(struct sluice__clients *T, const struct sluice__ctl_request *rq, bool accepting)
{
	sluice_flow_t *f = T->f;
	int memfd = sluice_arena_fd(f->arena);
	uint64_t size = sluice_arena_size(f->arena);
	/* The newcomer validates the whole slot table: what a client wrote
	 * over its own slot must not keep others out. */
	for (uint32_t c = 0; c < f->nclients; c++)
		restore_slot(T, c);
	if (rq->flags & SLUICE__CTL_F_READ_ONLY) {
		int fd = sluice__ctl_server_grant(&T->ctl, rq, SLUICE__CTL_NO_SLOT, memfd, -1, size);
		if (fd >= 0)
			close(fd); /* an observer holds no slot: no lease to watch */
		return;
	}
	if (!accepting) {
		sluice__ctl_server_refuse(&T->ctl, rq, SLUICE_ESTOPPED, "flow '%s' is stopping",
					  f->name);
		return;
	}
	uint32_t c;
	if (sluice__clients_grant(T, rq->peer.pid, &c) != 0) {
		sluice__ctl_server_refuse(&T->ctl, rq, SLUICE_EUSERS,
					  "client table full (%u slots, %u draining; max_clients %u)",
					  f->nclients - 1, T->ndraining, f->nclients);
		return;
	}
	/* The lease is watched two ways: the connection (closed by detach or
	 * death, unless a child inherited it) and the pidfd (the process).
	 * The pidfd before the grant: without it we could not watch the
	 * client, so a supervisor out of descriptors refuses, with a code
	 * that says so, rather than grant a slot and take it back at once. */
	int pfd = pidfd_open(rq->peer.pid, 0);
	if (pfd < 0) {
		int err = errno;
		int code = err == EMFILE || err == ENFILE ? -err : SLUICE_EAGAIN;
		sluice__ctl_server_refuse(&T->ctl, rq, code,
					  "the supervisor cannot watch the client: pidfd_open: %s",
					  sluice_strerror(-err));
		ungrant(T, c);
		return;
	}
	int fd = sluice__ctl_server_grant(&T->ctl, rq, c, memfd, f->client_efds[c], size);
	T->conn[c] = fd;
	T->pidfd[c] = pfd;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	bool ok = fd >= 0 && pfd >= 0;
	ev.data.u64 = T->tag | (uint64_t)SLUICE__CLIENTS_EV_CONN << 8 | c;
	ok = ok && epoll_ctl(T->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
	ev.events = EPOLLIN;
	ev.data.u64 = T->tag | (uint64_t)SLUICE__CLIENTS_EV_PID << 8 | c;
	ok = ok && epoll_ctl(T->epfd, EPOLL_CTL_ADD, pfd, &ev) == 0;
	if (!ok) { /* it left already, or we cannot watch it: take it back */
		close_lease(T, c);
		sluice__clients_gone(T, c);
	}
}

void sluice__clients_event(struct sluice__clients *T, uint64_t tag, bool accepting)
{
	unsigned kind = (unsigned)(tag >> 8) & 0xffu;
	uint32_t c = (uint32_t)tag & 0xffu;
	if (kind == SLUICE__CLIENTS_EV_CTL)
		return; /* the tick polls the listener */
	if (c >= T->f->nclients || T->state[c] != SLUICE__CS_ACTIVE)
		return;
	/* Anything on a lease (hang-up, or bytes a client should not send)
	 * or its pidfd (exit) ends the client. */
	close_lease(T, c);
	sluice__clients_gone(T, c);
}

uint64_t sluice__clients_next(const struct sluice__clients *T, uint64_t now)
{
	uint64_t next = T->listening ? sluice__ctl_server_deadline(&T->ctl) : UINT64_MAX;
	if (T->ndraining > 0 && now + MSEC < next)
		next = now + MSEC;
	return next;
}

int sluice__clients_grant(struct sluice__clients *T, pid_t pid, uint32_t *slot)
{
	sluice_flow_t *f = T->f;
	for (uint32_t c = 1; c < f->nclients; c++) {
		if (T->state[c] != SLUICE__CS_FREE)
			continue;
		T->state[c] = SLUICE__CS_ACTIVE;
		T->pid[c] = pid;
		/* The slot's eventfd may hold a count from the last client. */
		uint64_t v;
		(void)!read(f->client_efds[c], &v, sizeof(v));
		/* Relaxed: an observer's snapshot; the client learns its slot
		 * from our reply, not from here. */
		sl_store_relaxed(&f->cslots[c].pid, (uint32_t)pid);
		*slot = c;
		return 0;
	}
	return SLUICE_EBUSY;
}

void sluice__clients_gone(struct sluice__clients *T, uint32_t c)
{
	if (c == 0 || c >= T->f->nclients || T->state[c] != SLUICE__CS_ACTIVE)
		return;
	T->state[c] = SLUICE__CS_DRAINING;
	T->ndraining++;
}

/* Takes whatever is on client c's completion ring: copies of entries we
 * free through the table. */
static void empty_completions(struct sluice__clients *T, uint32_t c)
{
	sluice_flow_t *f = T->f;
	if (!T->opened[c]) {
		if (sluice_ring_open(&T->comp[c], f->comp_mem[c], f->comp_size[c]) != 0)
			return; /* validated by create: cannot fail */
		T->opened[c] = true;
	}
	sluice_desc_t buf[64];
	while (sluice_ring_try_dequeue_bulk_mpmc(&T->comp[c], buf, 64) > 0)
		;
}

/* Is entry `slot`, whose state word read `w` = HELD(worker, g), really
 * held by that worker? A worker holds only entries it claimed from the
 * descriptors of its current batch, which stay in its scratch in[] until
 * it has concluded all of them: one of them names the slot at generation
 * g - 1. A HELD word that no live worker's in[] backs was forged (by the
 * client that owns the entry: shared memory is writable to it). Our own
 * HELD(supervisor) is never left behind between two of our calls. */
static bool held_for_real(const sluice_flow_t *f, uint32_t slot, uint64_t w)
{
	uint32_t wk = SLUICE__TW_OWNER(w), gen = SLUICE__TW_GEN(w);
	if (wk >= f->nworkers)
		return false;
	const sluice_desc_t *in = sluice__scratch_in(f, wk);
	uint32_t n = f->steps[sluice__worker_step(f, wk)].batch_size;
	bool named = false;
	for (uint32_t i = 0; i < n && !named; i++) {
		/* A copy: the worker may be writing in[] (a new batch, once
		 * this entry is no longer held: the second look below tells). */
		sluice_desc_t d;
		memcpy(&d, &in[i], sizeof(d));
		named = d.slot == slot && d.task_id == SLUICE__TASK_ID(gen - 1, slot);
	}
	/* Acquire fence: the copies above before the second look; as a
	 * seqlock reader's. A genuine holder wrote in[] before its claim's
	 * release CAS, which our first (acquire) load of the word saw. */
	sl_fence_acquire();
	/* Still HELD by it at g: in[] cannot have moved on meanwhile. */
	return named || sl_load_relaxed(&f->tasks[slot].state) != w;
}

/* One pass over client c's entries; returns how many are still HELD. */
static uint32_t free_entries(struct sluice__clients *T, uint32_t c)
{
	sluice_flow_t *f = T->f;
	/* Our own geometry: the slot's first_task in shared memory is the
	 * client's to scribble on. */
	const uint32_t first = c * f->tasks_per_client;
	uint32_t held = 0;
	for (uint32_t i = 0; i < f->tasks_per_client; i++) {
		struct sluice__task_entry *e = &f->tasks[first + i];
		/* Acquire: pairs with the release CAS of the entry's last
		 * holder (nothing of the entry is read but the word). */
		uint64_t w = sl_load_acquire(&e->state);
		unsigned st = SLUICE__TW_STATE(w);
		if (st == SLUICE__TS_FREE)
			continue;
		if (st == SLUICE__TS_HELD && held_for_real(f, first + i, w)) {
			/* Relaxed: advisory, as the client's own cancel. */
			sl_store_relaxed(&e->cancel, 1);
			held++;
			continue;
		}
		/* acq_rel, like every transition; a worker's claim of a
		 * QUEUED entry racing with us loses, or we do (then it is
		 * HELD: next pass). */
		if (!sl_cas_acq_rel(&e->state, &w,
				    SLUICE__TW(SLUICE__TS_FREE, 0, SLUICE__TW_GEN(w) + 1)))
			held++;
	}
	return held;
}

static void release_slot(struct sluice__clients *T, uint32_t c)
{
	sluice_flow_t *f = T->f;
	uint32_t owner = SLUICE__OWNER_CLIENT(c);
	restore_slot(T, c);
	/* We are the slot's health writer until the next client: close a
	 * section the client left open (killed inside it, or scribbled). */
	struct sluice__health_client *h = &f->hclients[c];
	if (sl_load_relaxed(&h->cseq) & 1)
		sluice__seq_end(&h->cseq);
	(void)sluice_blocks_reclaim(&f->blocks, owner);
	for (uint32_t s = 0; s < f->nsteps; s++) {
		sluice_ring_t r;
		if (sluice_ring_open(&r, f->steps[s].ring_mem, f->steps[s].ring_size) == 0)
			(void)sluice_ring_lane_release(&r, owner);
	}
	(void)sluice_ring_lane_release(&T->comp[c], owner);
	/* Its consumer counters, which it may have scribbled on: usable by
	 * the next client (we are the ring's only consumer now). */
	(void)sluice_ring_mend(&T->comp[c]);
	sl_store_relaxed(&f->cslots[c].pid, 0);
	T->pid[c] = 0;
	T->state[c] = SLUICE__CS_FREE;
	T->ndraining--;
}

void sluice__clients_tick(struct sluice__clients *T, bool accepting)
{
	struct sluice__ctl_request rq;
	while (T->listening && sluice__ctl_server_poll(&T->ctl, sluice__now_ns(), &rq) == 1)
		answer(T, &rq, accepting);
	(void)sluice__clients_drain(T);
}

bool sluice__clients_drain(struct sluice__clients *T)
{
	sluice_flow_t *f = T->f;
	for (uint32_t c = 1; c < f->nclients && T->ndraining > 0; c++) {
		if (T->state[c] != SLUICE__CS_DRAINING)
			continue;
		empty_completions(T, c);
		if (free_entries(T, c) == 0) {
			/* Completions that raced with the pass are stale now. */
			empty_completions(T, c);
			release_slot(T, c);
		}
	}
	return T->ndraining > 0;
}
