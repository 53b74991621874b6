/* Health: the writers of region 5 (one per part, see
 * runtime/health_layout.h) and its readers: sluice_flow_snapshot_take and
 * sluice_flow_step_stats. Readers only read (atomic loads of at most 64
 * bits), so they work on a read-only mapping of the arena too, and never
 * take a lock: a part is copied until its sequence counter says the copy
 * is one writer's state between two sections.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/health.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reader spins this many times on a counter that moves, then sleeps
 * READ_NAP_NS between tries, for READ_PATIENCE_NS in all: a writer
 * preempted inside its section (a few stores) is given time to finish;
 * one that died there, with nobody to close its section, is not waited
 * for longer. */
#define READ_SPINS 64u
#define READ_NAP_NS 20000L
#define READ_PATIENCE_NS UINT64_C(10000000)

#define COUNT_STATUS(name, value, msg) +1
_Static_assert(0 SLUICE_TASK_STATUS_MAP(COUNT_STATUS) == SLUICE_HEALTH_NSTATUS - 1,
	       "SLUICE_HEALTH_NSTATUS: one per task status, and one for any other value");
#undef COUNT_STATUS
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(SLUICE_WORKER_NONE, SLUICE__WS_NONE) && SAME(SLUICE_WORKER_STARTING, SLUICE__WS_STARTING) &&
		       SAME(SLUICE_WORKER_READY, SLUICE__WS_READY) &&
		       SAME(SLUICE_WORKER_FAILED, SLUICE__WS_FAILED) &&
		       SAME(SLUICE_WORKER_EXITED, SLUICE__WS_EXITED) &&
		       SAME(SLUICE_WORKER_DEAD, SLUICE__WS_DEAD) &&
		       SAME(SLUICE_WORKER_RETIRING, SLUICE__WS_RETIRING),
	       "public worker states are the slot states");
_Static_assert(SAME(SLUICE_FLOW_CREATED, SLUICE__FS_CREATED) && SAME(SLUICE_FLOW_STARTING, SLUICE__FS_STARTING) &&
		       SAME(SLUICE_FLOW_RUNNING, SLUICE__FS_RUNNING) &&
		       SAME(SLUICE_FLOW_START_FAILED, SLUICE__FS_START_FAILED) &&
		       SAME(SLUICE_FLOW_DRAINING, SLUICE__FS_DRAINING) &&
		       SAME(SLUICE_FLOW_STOPPING, SLUICE__FS_STOPPING) &&
		       SAME(SLUICE_FLOW_STOPPED, SLUICE__FS_STOPPED),
	       "public flow states are the header's");
#undef SAME
_Static_assert(SLUICE_HEALTH_BATCH_BUCKETS > 12, "a batch of SLUICE_STEP_MAX_BATCH has its own bucket");

static uint64_t round64(uint64_t v)
{
	return (v + 63) & ~(uint64_t)63;
}

/* ---- layout ------------------------------------------------------------------ */

uint64_t sluice__health_region_size(uint32_t nworkers, uint32_t nclients)
{
	return sizeof(struct sluice__health_hdr) +
	       (uint64_t)nworkers * sizeof(struct sluice__health_worker) +
	       (uint64_t)nclients * sizeof(struct sluice__health_client);
}

void sluice__health_format(sluice_flow_t *f, void *mem)
{
	/* Plain stores: nobody else maps the arena yet. */
	struct sluice__health_hdr *h = mem;
	h->magic = SLUICE_HEALTH_MAGIC;
	h->layout_version = SLUICE_FLOW_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->nworkers = f->nworkers;
	h->nclients = f->nclients;
	h->worker_size = sizeof(struct sluice__health_worker);
	h->client_size = sizeof(struct sluice__health_client);
	h->workers_off = round64(sizeof(*h));
	h->clients_off = h->workers_off + (uint64_t)f->nworkers * sizeof(struct sluice__health_worker);
	f->hworkers = (void *)((char *)mem + h->workers_off);
	f->hclients = (void *)((char *)mem + h->clients_off);
}

int sluice__health_open(sluice_flow_t *f, void *mem, uint64_t size)
{
	if (size < sizeof(struct sluice__health_hdr))
		return SLUICE_ETRUNCATED;
	/* A copy: the header is written once by create, but checked once. */
	struct sluice__health_hdr h;
	memcpy(&h, mem, sizeof(h));
	if (h.magic != SLUICE_HEALTH_MAGIC)
		return SLUICE_EBADMAGIC;
	if (h.layout_version != SLUICE_FLOW_LAYOUT_VERSION)
		return SLUICE_EVERSION;
	uint64_t workers_off = round64(sizeof(h));
	uint64_t clients_off = workers_off + (uint64_t)f->nworkers * sizeof(struct sluice__health_worker);
	if (h.header_size != sizeof(h) || h.nworkers != f->nworkers || h.nclients != f->nclients ||
	    h.worker_size != sizeof(struct sluice__health_worker) ||
	    h.client_size != sizeof(struct sluice__health_client) || h.workers_off != workers_off ||
	    h.clients_off != clients_off)
		return SLUICE_ECORRUPT;
	if (size < sluice__health_region_size(f->nworkers, f->nclients))
		return SLUICE_ETRUNCATED;
	f->hworkers = (void *)((char *)mem + workers_off);
	f->hclients = (void *)((char *)mem + clients_off);
	return 0;
}

/* ---- writers ----------------------------------------------------------------------- */

void sluice__health_worker_start(struct sluice__health_worker *h)
{
	sluice__seq_begin(&h->wseq);
	/* Relaxed, here and in every section: the counter's fences order them. */
	sl_store_relaxed(&h->busy_since_ns, 0);
	sl_store_relaxed(&h->in_hand, 0);
	sluice__seq_end(&h->wseq);
}

void sluice__health_ready(struct sluice__health_worker *h, uint64_t now)
{
	sluice__seq_begin(&h->wseq);
	sl_store_relaxed(&h->ready_ns, now);
	sl_store_relaxed(&h->heartbeat_ns, now);
	sluice__seq_end(&h->wseq);
}

void sluice__health_call_begin(struct sluice__health_worker *h, uint32_t n, uint64_t now)
{
	sluice__seq_begin(&h->wseq);
	sl_store_relaxed(&h->heartbeat_ns, now);
	sl_store_relaxed(&h->busy_since_ns, now);
	sl_store_relaxed(&h->in_hand, n);
	sluice__seq_end(&h->wseq);
}

void sluice__health_call_end(struct sluice__health_worker *h, const sluice_item_t *items,
			     uint32_t n, uint64_t end)
{
	sluice__seq_begin(&h->wseq);
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		/* The entry is ours (HELD): a plain read of what its last
		 * owner wrote before the CAS we won. A time from the future
		 * (shared memory scribbled on) counts as 0. */
		uint64_t q = ((const struct sluice__task_entry *)items[i].entry_)->queued_ns;
		uint64_t lat = q != 0 && end > q ? end - q : 0;
		sum += lat;
		sluice__seq_add(&h->latency_hist[sluice__latency_bucket(lat)], 1);
	}
	sluice__seq_add(&h->latency_sum_ns, sum);
	sluice__seq_add(&h->tasks, n);
	sluice__seq_add(&h->batches, 1);
	sluice__seq_add(&h->batch_hist[sluice__batch_bucket(n)], 1);
	if (n > sl_load_relaxed(&h->max_batch))
		sl_store_relaxed(&h->max_batch, n);
	sl_store_relaxed(&h->heartbeat_ns, end);
	sl_store_relaxed(&h->busy_since_ns, 0);
	sl_store_relaxed(&h->in_hand, 0);
	sluice__seq_end(&h->wseq);
}

void sluice__health_forked(sluice_flow_t *f, uint32_t w, uint32_t pid, bool restart, uint64_t now)
{
	struct sluice__health_worker *h = &f->hworkers[w];
	sluice__seq_begin(&h->sseq);
	sl_store_relaxed(&h->pid, pid);
	sl_store_relaxed(&h->forked_ns, now);
	if (restart)
		sl_store_relaxed(&h->restarts, sl_load_relaxed(&h->restarts) + 1);
	sluice__seq_end(&h->sseq);
}

void sluice__health_reaped(sluice_flow_t *f, uint32_t w, const siginfo_t *si, bool clean,
			   unsigned kill, uint64_t noticed)
{
	struct sluice__health_worker *h = &f->hworkers[w];
	/* The worker part is ours until the next fork: the process is gone. */
	sluice__seq_begin(&h->wseq);
	sl_store_relaxed(&h->busy_since_ns, 0);
	sl_store_relaxed(&h->in_hand, 0);
	sl_store_relaxed(&h->ready_ns, 0);
	sluice__seq_end(&h->wseq);

	bool exited = si->si_code == CLD_EXITED;
	sluice__seq_begin(&h->sseq);
	sl_store_relaxed(&h->last_pid, (uint32_t)si->si_pid);
	sl_store_relaxed(&h->last_exit_code, exited ? si->si_status : -1);
	sl_store_relaxed(&h->last_signal, exited ? 0 : si->si_status);
	sl_store_relaxed(&h->last_kill, kill);
	sl_store_relaxed(&h->death_ns, noticed);
	if (!clean)
		sl_store_relaxed(&h->deaths, sl_load_relaxed(&h->deaths) + 1);
	sluice__seq_end(&h->sseq);
}

void sluice__health_submitted(sluice_flow_t *f, uint64_t n)
{
	struct sluice__health_client *c = &f->hclients[f->client];
	sluice__seq_begin(&c->cseq);
	sluice__seq_add(&c->submitted, n);
	sluice__seq_end(&c->cseq);
}

void sluice__health_completed(sluice_flow_t *f, unsigned status)
{
	struct sluice__health_client *c = &f->hclients[f->client];
	sluice__seq_begin(&c->cseq);
	sluice__seq_add(&c->completed[status < SLUICE_HEALTH_NSTATUS - 1 ? status
									  : SLUICE_HEALTH_NSTATUS - 1],
			1);
	sluice__seq_end(&c->cseq);
}

/* ---- readers ------------------------------------------------------------------------ */

struct patience {
	unsigned tries;
	uint64_t since;
};

/* May the reader try again? Spins, then naps, up to READ_PATIENCE_NS. */
static bool try_again(struct patience *p)
{
	if (++p->tries < READ_SPINS) {
		sl_cpu_relax();
		return true;
	}
	uint64_t now = sluice__now_ns();
	if (p->since == 0)
		p->since = now;
	if (now - p->since >= READ_PATIENCE_NS)
		return false;
	struct timespec nap = {.tv_sec = 0, .tv_nsec = READ_NAP_NS};
	nanosleep(&nap, NULL);
	return true;
}

bool sluice__health_busy(const struct sluice__health_worker *h, uint64_t *since, uint64_t *beat)
{
	for (unsigned i = 0; i < READ_SPINS; i++) {
		uint64_t s0 = sluice__seq_read_begin(&h->wseq);
		/* Relaxed: inside a read section (see sluice__seq_read_retry). */
		*since = sl_load_relaxed(&h->busy_since_ns);
		*beat = sl_load_relaxed(&h->heartbeat_ns);
		if (!sluice__seq_read_retry(&h->wseq, s0))
			return true;
		sl_cpu_relax();
	}
	return false;
}

/* Copies the worker part of h. Relaxed loads: inside a read section. */
static void copy_worker_part(const struct sluice__health_worker *h, sluice_worker_health_t *o)
{
	o->ready_ns = sl_load_relaxed(&h->ready_ns);
	o->heartbeat_ns = sl_load_relaxed(&h->heartbeat_ns);
	o->busy_since_ns = sl_load_relaxed(&h->busy_since_ns);
	o->in_hand = sl_load_relaxed(&h->in_hand);
	o->max_batch = sl_load_relaxed(&h->max_batch);
	o->tasks = sl_load_relaxed(&h->tasks);
	o->batches = sl_load_relaxed(&h->batches);
	o->handler_errors = sl_load_relaxed(&h->handler_errors);
	o->timeouts = sl_load_relaxed(&h->timeouts);
	o->bad_descriptors = sl_load_relaxed(&h->bad_descriptors);
	o->latency_sum_ns = sl_load_relaxed(&h->latency_sum_ns);
	for (unsigned i = 0; i < SLUICE_HEALTH_BATCH_BUCKETS; i++)
		o->batch_hist[i] = sl_load_relaxed(&h->batch_hist[i]);
	for (unsigned i = 0; i < SLUICE_HEALTH_LATENCY_BUCKETS; i++)
		o->latency_hist[i] = sl_load_relaxed(&h->latency_hist[i]);
}

static void copy_supervisor_part(const struct sluice__health_worker *h, sluice_worker_health_t *o)
{
	o->pid = sl_load_relaxed(&h->pid);
	o->restarts = sl_load_relaxed(&h->restarts);
	o->deaths = sl_load_relaxed(&h->deaths);
	o->forked_ns = sl_load_relaxed(&h->forked_ns);
	o->last_pid = sl_load_relaxed(&h->last_pid);
	o->last_exit_code = sl_load_relaxed(&h->last_exit_code);
	o->last_signal = sl_load_relaxed(&h->last_signal);
	o->last_kill = sl_load_relaxed(&h->last_kill);
	o->last_death_ns = sl_load_relaxed(&h->death_ns);
}

/* Reads worker slot w into *o; returns false when a part was torn. */
static bool read_worker(const sluice_flow_t *f, uint32_t w, uint64_t now, sluice_worker_health_t *o)
{
	const struct sluice__health_worker *h = &f->hworkers[w];
	const struct sluice__worker_slot *ws = &f->wslots[w];
	bool torn = false;
	struct patience p = {0};
	for (;;) {
		uint64_t s0 = sluice__seq_read_begin(&h->wseq);
		copy_worker_part(h, o);
		if (!sluice__seq_read_retry(&h->wseq, s0))
			break;
		if (!try_again(&p)) {
			torn = true;
			break;
		}
	}
	p = (struct patience){0};
	for (;;) {
		uint64_t s0 = sluice__seq_read_begin(&h->sseq);
		copy_supervisor_part(h, o);
		if (!sluice__seq_read_retry(&h->sseq, s0))
			break;
		if (!try_again(&p)) {
			torn = true;
			break;
		}
	}
	o->step = ws->step; /* written once by create */
	/* Relaxed: single words, each a snapshot. */
	o->position = sl_load_relaxed(&ws->position);
	o->state = sl_load_relaxed(&ws->state);
	o->torn = torn;
	o->busy_ns = o->busy_since_ns != 0 && now > o->busy_since_ns ? now - o->busy_since_ns : 0;
	return !torn;
}

static bool live_state(uint32_t s)
{
	return s == SLUICE__WS_STARTING || s == SLUICE__WS_READY || s == SLUICE__WS_RETIRING;
}

/* Adds worker record w to step record st. */
static void add_worker(sluice_step_health_t *st, const sluice_worker_health_t *w)
{
	st->workers_live += live_state(w->state);
	st->tasks += w->tasks;
	st->batches += w->batches;
	st->handler_errors += w->handler_errors;
	st->timeouts += w->timeouts;
	st->bad_descriptors += w->bad_descriptors;
	st->latency_sum_ns += w->latency_sum_ns;
	if (w->max_batch > st->max_batch)
		st->max_batch = w->max_batch;
	for (unsigned i = 0; i < SLUICE_HEALTH_BATCH_BUCKETS; i++)
		st->batch_hist[i] += w->batch_hist[i];
	for (unsigned i = 0; i < SLUICE_HEALTH_LATENCY_BUCKETS; i++)
		st->latency_hist[i] += w->latency_hist[i];
}

/* The supervisor's counters of step s (single words, one writer). */
static void read_step_rec(const sluice_flow_t *f, uint32_t s, sluice_step_health_t *o)
{
	const struct sluice__step_rec *rec = &f->step_recs[s];
	/* Relaxed: each a snapshot of a counter with one writer. */
	o->failed = sl_load_relaxed(&rec->failed);
	o->deaths = sl_load_relaxed(&rec->deaths);
	o->restarts = sl_load_relaxed(&rec->restarts);
	o->recycled = sl_load_relaxed(&rec->recycled);
	o->hung_kills = sl_load_relaxed(&rec->hung_kills);
	o->requeued = sl_load_relaxed(&rec->requeued);
	o->retried = sl_load_relaxed(&rec->retried);
	o->worker_died = sl_load_relaxed(&rec->worker_died);
}

/* ---- the public calls -------------------------------------------------------------------- */

struct snapshot_alloc {
	sluice_flow_snapshot_t s;
	uint32_t nsteps, nworkers; /* the geometry it was made for */
};

int sluice_flow_snapshot_create(const sluice_flow_t *f, sluice_flow_snapshot_t **out)
{
	if (f == NULL || out == NULL)
		return SLUICE_EINVAL;
	size_t head = (sizeof(struct snapshot_alloc) + 63) & ~(size_t)63;
	size_t steps = f->nsteps * sizeof(sluice_step_health_t);
	size_t workers = f->nworkers * sizeof(sluice_worker_health_t);
	char *mem = calloc(1, head + steps + workers);
	if (mem == NULL)
		return SLUICE_ENOMEM;
	struct snapshot_alloc *a = (void *)mem;
	a->nsteps = f->nsteps;
	a->nworkers = f->nworkers;
	a->s.steps = (void *)(mem + head);
	a->s.workers = (void *)(mem + head + steps);
	a->s.nsteps = f->nsteps;
	a->s.nworkers = f->nworkers;
	a->s.nclients = f->nclients;
	*out = &a->s;
	return 0;
}

void sluice_flow_snapshot_destroy(sluice_flow_snapshot_t *s)
{
	free(s); /* the first member of its snapshot_alloc */
}

int sluice_flow_snapshot_take(const sluice_flow_t *f, sluice_flow_snapshot_t *s)
{
	if (f == NULL || s == NULL)
		return SLUICE_EINVAL;
	struct snapshot_alloc *a = (struct snapshot_alloc *)s;
	if (a->nsteps != f->nsteps || a->nworkers != f->nworkers)
		return SLUICE_EINVAL;
	sluice_step_health_t *steps = s->steps;
	sluice_worker_health_t *workers = s->workers;
	memset(s, 0, sizeof(*s));
	s->steps = steps;
	s->workers = workers;
	s->nsteps = f->nsteps;
	s->nworkers = f->nworkers;
	s->nclients = f->nclients;
	uint64_t now = sluice__now_ns();
	s->taken_ns = now;
	/* Relaxed: single words, snapshots. */
	s->state = sl_load_relaxed(&f->hdr->state);
	s->supervisor_pid = sl_load_relaxed(&f->hdr->sup_pid);
	s->lost_completions = sl_load_relaxed(&f->hdr->lost_completions);

	for (uint32_t c = 0; c < f->nclients; c++) {
		const struct sluice__health_client *hc = &f->hclients[c];
		uint64_t sub, done[SLUICE_HEALTH_NSTATUS];
		struct patience p = {0};
		for (;;) {
			uint64_t s0 = sluice__seq_read_begin(&hc->cseq);
			/* Relaxed: inside a read section. */
			sub = sl_load_relaxed(&hc->submitted);
			for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++)
				done[k] = sl_load_relaxed(&hc->completed[k]);
			if (!sluice__seq_read_retry(&hc->cseq, s0))
				break;
			if (!try_again(&p)) {
				s->torn++;
				break;
			}
		}
		s->submitted += sub;
		for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++)
			s->completed[k] += done[k];
	}
	uint64_t done = 0;
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++)
		done += s->completed[k];
	s->in_flight = s->submitted > done ? s->submitted - done : 0;

	for (uint32_t i = 0; i < f->nsteps; i++) {
		const struct sluice__step *st = &f->steps[i];
		sluice_step_health_t *o = &steps[i];
		memset(o, 0, sizeof(*o));
		memcpy(o->name, st->name, sizeof(o->name));
		o->nprocs = st->nprocs;
		o->first_worker = st->first_worker;
		o->nslots = st->nslots;
		o->batch_size = st->batch_size;
		sluice_ring_t r;
		if (sluice_ring_open(&r, st->ring_mem, st->ring_size) == 0)
			o->queued = sluice_ring_count(&r);
		for (uint32_t k = 0; k < st->nslots; k++) {
			uint32_t w = st->first_worker + k;
			if (!read_worker(f, w, now, &workers[w]))
				s->torn++;
			add_worker(o, &workers[w]);
		}
		read_step_rec(f, i, o);
	}
	return 0;
}

int sluice_flow_step_stats(const sluice_flow_t *f, uint32_t step, sluice_step_stats_t *out)
{
	if (f == NULL || out == NULL || step >= f->nsteps)
		return SLUICE_EINVAL;
	memset(out, 0, sizeof(*out));
	const struct sluice__step *st = &f->steps[step];
	sluice_step_health_t sum;
	memset(&sum, 0, sizeof(sum));
	uint64_t now = sluice__now_ns();
	for (uint32_t k = 0; k < st->nslots; k++) {
		sluice_worker_health_t w;
		(void)read_worker(f, st->first_worker + k, now, &w);
		add_worker(&sum, &w);
	}
	read_step_rec(f, step, &sum);
	out->workers = st->nprocs;
	out->workers_live = sum.workers_live;
	out->worker_deaths = sum.deaths;
	out->max_batch = sum.max_batch;
	out->tasks = sum.tasks;
	out->batches = sum.batches;
	out->handler_errors = sum.handler_errors;
	out->timeouts = sum.timeouts;
	out->bad_descriptors = sum.bad_descriptors;
	out->restarts = sum.restarts;
	out->recycled = sum.recycled;
	out->hung_kills = sum.hung_kills;
	out->failed = sum.failed;
	out->requeued = sum.requeued;
	out->retried = sum.retried;
	out->worker_died = sum.worker_died;
	return 0;
}
