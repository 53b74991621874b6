/* Flow definition and arena: validation with messages that name the field,
 * the layout of the five regions, destroy, and the read-only accessors.
 * Layout in runtime/flow_layout.h; the processes in runtime/supervisor.c
 * and runtime/worker.c; the client calls in runtime/client.c.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/control.h"
#include "runtime/flow_internal.h"
#include "runtime/health.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CAPACITY 256u
#define DEFAULT_MAX_TASKS 1024u
#define DEFAULT_BLOCK_BUDGET (UINT64_C(64) << 20)
#define DEFAULT_STOP_GRACE_NS UINT64_C(1000000000)
#define DEFAULT_RESTART_DELAY_NS UINT64_C(100000000)
#define DEFAULT_RESTART_MAX_DELAY_NS UINT64_C(5000000000)
#define DEFAULT_FAIL_DEATHS 5u
#define DEFAULT_FAIL_WINDOW_NS UINT64_C(10000000000)
#define DEFAULT_HUNG_GRACE_NS UINT64_C(2000000000)
/* The client's whole-flow deadline allows each retry this much beyond the
 * step's timeout and hung grace, for the death to be noticed and the task
 * to reach a worker again (a restart's on_start included). */
#define RETRY_SLACK_NS UINT64_C(1000000000)
/* Largest ring we lay out: the arena's regions are lazily backed, but an
 * absurd capacity is a configuration error, not a wish. */
#define MAX_RING_BYTES (UINT64_C(4) << 30)

/* ---- small helpers --------------------------------------------------------- */

uint64_t sluice__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sluice__deadline(uint64_t now, uint64_t timeout_ns)
{
	return timeout_ns >= UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

int sluice__futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns != SLUICE_FLOW_FOREVER) {
		uint64_t s = timeout_ns / 1000000000u;
		ts.tv_sec = s > INT_MAX ? INT_MAX : (time_t)s;
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	/* Not FUTEX_PRIVATE: the word is in a MAP_SHARED arena and the waker
	 * is another process. */
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, tsp, NULL, 0) == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return 0; /* the word had already moved */
	case ETIMEDOUT:
		return SLUICE_ETIMEDOUT;
	case EINTR:
		return SLUICE_EINTR;
	}
	return -errno;
}

void sluice__futex_wake(_Atomic uint32_t *word)
{
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void sluice__seterr(sluice_flow_t *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->err, sizeof(f->err), fmt, ap);
	va_end(ap);
}

void sluice__notify(int efd)
{
	uint64_t one = 1;
	if (efd >= 0)
		(void)!write(efd, &one, sizeof(one)); /* EAGAIN: the counter is full, already readable */
}

int sluice__claim_step_lanes(const sluice_flow_t *f, uint32_t s, uint32_t owner,
			     sluice_ring_producer_t prod[SLUICE__LEVELS])
{
	sluice_ring_t r;
	int rc = sluice_ring_open(&r, f->steps[s].ring_mem, f->steps[s].ring_size);
	for (uint32_t lv = 0; rc == 0 && lv < SLUICE__LEVELS; lv++)
		rc = sluice_ring_producer_claim_in(&prod[lv], &r, owner, lv * f->ring_lanes,
						   f->ring_lanes);
	return rc;
}

uint32_t sluice__route(const sluice_flow_t *f, uint32_t from, const sluice_item_t *view)
{
	for (uint32_t s = from; s < f->nsteps; s++) {
		const struct sluice__step *st = &f->steps[s];
		if (st->condition == NULL || st->condition(st->condition_arg, view))
			return s;
	}
	return f->nsteps;
}

bool sluice__block_ok(const sluice_flow_t *f, uint32_t blk, uint64_t len, uint32_t owner,
		      void **ptr, uint64_t *cap)
{
	if (blk == SLUICE_BLOCK_NONE) {
		*ptr = NULL;
		*cap = 0;
		return len == 0;
	}
	uint64_t c = 0;
	void *p = sluice_blocks_ptr(&f->blocks, blk, &c);
	if (p == NULL || len > c)
		return false;
	if (owner != 0 && sluice_blocks_owner(&f->blocks, blk) != (int64_t)owner)
		return false;
	*ptr = p;
	*cap = c;
	return true;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t next_pow2(uint32_t v)
{
	uint32_t p = 2;
	while (p < v)
		p <<= 1;
	return p;
}

/* ---- validation -------------------------------------------------------------- */

struct plan {
	uint32_t nworkers;   /* worker slots */
	uint32_t nprocs;     /* worker processes at start */
	uint32_t lanes;
	uint32_t max_tasks;
	uint32_t nclients;
	uint32_t comp_capacity;
	uint64_t stop_grace_ns;
	uint64_t step_ring_size[SLUICE_FLOW_MAX_STEPS];
	uint64_t comp_ring_size;
	sluice_blocks_config_t blocks;
	uint64_t blocks_size;
};

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return SLUICE_EINVAL;
}

static int64_t ring_size(uint32_t capacity, uint32_t lanes)
{
	sluice_ring_config_t rc = {
		.size_of = sizeof(rc), .kind = SLUICE_RING_MPMC, .capacity = capacity, .lanes = lanes,
	};
	return sluice_ring_mem_size(&rc);
}

/* A name for an exec'd worker's registry: NULL, or 1 .. NAME_MAX - 1
 * bytes. */
static int check_name(const char *name, const char *field, uint32_t i, const char *step,
		      char *err, size_t errlen)
{
	if (name != NULL && (name[0] == '\0' || strlen(name) >= SLUICE_HANDLER_NAME_MAX))
		return bad(err, errlen, "steps[%u].%s: must be 1..%u bytes ('%s')", i, field,
			   SLUICE_HANDLER_NAME_MAX - 1, step);
	return 0;
}

/* Step i's exec_path, handler_name and condition_name. */
static int validate_exec(const sluice_flow_opts_t *o, uint32_t i, char *err, size_t errlen)
{
	const sluice_step_t *s = &o->steps[i];
	if (s->exec_path != NULL && (s->exec_path[0] == '\0' || strlen(s->exec_path) >= PATH_MAX))
		return bad(err, errlen, "steps[%u].exec_path: must be 1..%u bytes ('%s')", i,
			   PATH_MAX - 1, s->name);
	if (s->exec_path != NULL && s->handler_name == NULL)
		return bad(err, errlen,
			   "steps[%u].handler_name: required with exec_path: the handler's name in "
			   "the registry of %s ('%s')", i, s->exec_path, s->name);
	if (s->exec_path == NULL && s->handler_name != NULL)
		return bad(err, errlen, "steps[%u].handler_name: only for a step with exec_path ('%s')",
			   i, s->name);
	int rc = check_name(s->handler_name, "handler_name", i, s->name, err, errlen);
	if (rc == 0)
		rc = check_name(s->condition_name, "condition_name", i, s->name, err, errlen);
	if (rc != 0)
		return rc;
	if (s->condition == NULL && s->condition_name != NULL)
		return bad(err, errlen, "steps[%u].condition_name: given without a condition ('%s')", i,
			   s->name);
	/* The workers of earlier steps run this step's condition: an exec'd
	 * one can find it only by name. */
	for (uint32_t j = 0; s->condition != NULL && s->condition_name == NULL && j < i; j++)
		if (o->steps[j].exec_path != NULL)
			return bad(err, errlen,
				   "steps[%u].condition_name: required: steps[%u] ('%s') is started by "
				   "exec and runs this step's condition by name ('%s')",
				   i, j, o->steps[j].name, s->name);
	return 0;
}

static const char *wait_name(uint32_t wait)
{
	switch (wait) {
	case SLUICE_RING_SPIN_SLEEP: return "SLUICE_RING_SPIN_SLEEP";
	case SLUICE_RING_SLEEP: return "SLUICE_RING_SLEEP";
	case SLUICE_RING_BUSY_POLL: return "SLUICE_RING_BUSY_POLL";
	}
	return "?";
}

/* A wait mode and its spin, a step's or the client's: `wfield` and
 * `sfield` name them in a refusal, `who` ends it (" ('step')" or ""). */
static int check_wait(uint32_t wait, uint64_t spin_ns, const char *wfield, const char *sfield,
		      const char *who, char *err, size_t errlen)
{
	if (wait > SLUICE_RING_BUSY_POLL)
		return bad(err, errlen,
			   "%s: must be 0 (the default), SLUICE_RING_SPIN_SLEEP (%d), "
			   "SLUICE_RING_SLEEP (%d) or SLUICE_RING_BUSY_POLL (%d), got %u%s",
			   wfield, SLUICE_RING_SPIN_SLEEP, SLUICE_RING_SLEEP, SLUICE_RING_BUSY_POLL,
			   wait, who);
	if (spin_ns != 0 && (wait == SLUICE_RING_SLEEP || wait == SLUICE_RING_BUSY_POLL))
		return bad(err, errlen, "%s: must be 0 with %s, which does not spin, got %llu%s",
			   sfield, wait_name(wait), (unsigned long long)spin_ns, who);
	if (spin_ns > SLUICE_FLOW_MAX_SPIN_NS)
		return bad(err, errlen, "%s: must be at most %llu (1 s), got %llu%s", sfield,
			   (unsigned long long)SLUICE_FLOW_MAX_SPIN_NS, (unsigned long long)spin_ns,
			   who);
	return 0;
}

/* The mode a valid (wait, spin_ns) means: 0 is SPIN_SLEEP, its spin 0 the
 * rings' default; the other modes do not spin. */
static void wait_defaults(uint32_t wait, uint64_t spin_ns, uint32_t *wait_out,
			  uint64_t *spin_out)
{
	*wait_out = wait ? wait : SLUICE_RING_SPIN_SLEEP;
	*spin_out = 0;
	if (*wait_out == SLUICE_RING_SPIN_SLEEP)
		*spin_out = spin_ns ? spin_ns : SLUICE_RING_SPIN_NS_DEFAULT;
}

static int validate(const sluice_flow_opts_t *o, struct plan *p, char *err, size_t errlen)
{
	if (o == NULL)
		return bad(err, errlen, "opts: must not be NULL");
	if (o->size_of < sizeof(*o))
		return bad(err, errlen, "opts.size_of: must be sizeof(sluice_flow_opts_t) = %zu, got %zu",
			   sizeof(*o), o->size_of);
	if (o->name != NULL && strlen(o->name) >= sizeof(((struct sluice__flow_hdr *)0)->name))
		return bad(err, errlen, "name: longer than %zu bytes",
			   sizeof(((struct sluice__flow_hdr *)0)->name) - 1);
	if (o->flags & ~(uint32_t)(SLUICE_FLOW_HUGEPAGES | SLUICE_FLOW_UNLISTED))
		return bad(err, errlen, "flags: unknown bits 0x%x", o->flags);
	if (o->name != NULL && o->name[0] != '\0' && !(o->flags & SLUICE_FLOW_UNLISTED)) {
		char why[160];
		if (sluice__ctl_name_check(o->name, why, sizeof(why)) != 0)
			return bad(err, errlen, "name: %s (or set SLUICE_FLOW_UNLISTED)", why);
	}
	if (o->nsteps == 0 || o->nsteps > SLUICE_FLOW_MAX_STEPS)
		return bad(err, errlen, "nsteps: must be 1..%u, got %u", SLUICE_FLOW_MAX_STEPS,
			   o->nsteps);
	if (o->steps == NULL)
		return bad(err, errlen, "steps: must not be NULL");
	p->max_tasks = o->max_tasks ? o->max_tasks : DEFAULT_MAX_TASKS;
	if (p->max_tasks > SLUICE_FLOW_MAX_TASKS)
		return bad(err, errlen, "max_tasks: must be 1..%u, got %u", SLUICE_FLOW_MAX_TASKS,
			   o->max_tasks);
	p->nclients = o->max_clients ? o->max_clients : 1;
	if (p->nclients > SLUICE_FLOW_MAX_CLIENTS)
		return bad(err, errlen, "max_clients: must be 1..%u, got %u", SLUICE_FLOW_MAX_CLIENTS,
			   o->max_clients);
	if (p->max_tasks < p->nclients)
		return bad(err, errlen,
			   "max_tasks: %u cannot be shared among %u client slots (max_clients)",
			   p->max_tasks, p->nclients);
	p->stop_grace_ns = o->stop_grace_ns ? o->stop_grace_ns : DEFAULT_STOP_GRACE_NS;
	int rc = check_wait(o->client_wait, o->client_spin_ns, "client_wait", "client_spin_ns", "",
			    err, errlen);
	if (rc != 0)
		return rc;

	p->nworkers = 0;
	p->nprocs = 0;
	for (uint32_t i = 0; i < o->nsteps; i++) {
		const sluice_step_t *s = &o->steps[i];
		if (s->size_of != sizeof(*s))
			return bad(err, errlen,
				   "steps[%u].size_of: must be sizeof(sluice_step_t) = %zu, got %zu", i,
				   sizeof(*s), s->size_of);
		if (s->name == NULL || s->name[0] == '\0')
			return bad(err, errlen, "steps[%u].name: must not be empty", i);
		if (strlen(s->name) >= SLUICE_STEP_NAME_MAX)
			return bad(err, errlen, "steps[%u].name: longer than %u bytes", i,
				   SLUICE_STEP_NAME_MAX - 1);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(o->steps[j].name, s->name) == 0)
				return bad(err, errlen, "steps[%u].name: '%s' is also the name of steps[%u]",
					   i, s->name, j);
		rc = validate_exec(o, i, err, errlen);
		if (rc != 0)
			return rc;
		if (s->handler.handle == NULL && s->exec_path == NULL)
			return bad(err, errlen, "steps[%u].handler.handle: must not be NULL ('%s')", i,
				   s->name);
		if (s->nprocs == 0 || s->nprocs > SLUICE_STEP_MAX_NPROCS)
			return bad(err, errlen, "steps[%u].nprocs: must be 1..%u, got %u ('%s')", i,
				   SLUICE_STEP_MAX_NPROCS, s->nprocs, s->name);
		if (s->batch_size == 0 || s->batch_size > SLUICE_STEP_MAX_BATCH)
			return bad(err, errlen, "steps[%u].batch_size: must be 1..%u, got %u ('%s')", i,
				   SLUICE_STEP_MAX_BATCH, s->batch_size, s->name);
		uint32_t cap = s->capacity ? s->capacity : DEFAULT_CAPACITY;
		if (cap < SLUICE_RING_MIN_CAPACITY || cap > SLUICE_RING_MAX_CAPACITY ||
		    (cap & (cap - 1)) != 0)
			return bad(err, errlen,
				   "steps[%u].capacity: must be a power of two in %u..%u, got %u ('%s')",
				   i, SLUICE_RING_MIN_CAPACITY, SLUICE_RING_MAX_CAPACITY, s->capacity,
				   s->name);
		if (s->max_attempts > SLUICE_STEP_MAX_ATTEMPTS)
			return bad(err, errlen, "steps[%u].max_attempts: must be 0..%u, got %u ('%s')",
				   i, SLUICE_STEP_MAX_ATTEMPTS, s->max_attempts, s->name);
		if (s->restart_max_delay_ns != 0 && s->restart_max_delay_ns < s->restart_delay_ns)
			return bad(err, errlen,
				   "steps[%u].restart_max_delay_ns: %llu is below restart_delay_ns %llu ('%s')",
				   i, (unsigned long long)s->restart_max_delay_ns,
				   (unsigned long long)s->restart_delay_ns, s->name);
		if (s->fail_deaths > SLUICE_STEP_MAX_FAIL_DEATHS && s->fail_deaths != SLUICE_STEP_NEVER_FAIL)
			return bad(err, errlen,
				   "steps[%u].fail_deaths: must be 0..%u or SLUICE_STEP_NEVER_FAIL, got %u ('%s')",
				   i, SLUICE_STEP_MAX_FAIL_DEATHS, s->fail_deaths, s->name);
		char wf[40], sf[40], who[48];
		snprintf(wf, sizeof(wf), "steps[%u].wait", i);
		snprintf(sf, sizeof(sf), "steps[%u].spin_ns", i);
		snprintf(who, sizeof(who), " ('%s')", s->name);
		rc = check_wait(s->wait, s->spin_ns, wf, sf, who, err, errlen);
		if (rc != 0)
			return rc;
		p->nprocs += s->nprocs;
		if (p->nprocs > SLUICE_FLOW_MAX_WORKERS)
			return bad(err, errlen,
				   "steps[%u].nprocs: the flow's workers would number %u, more than %u",
				   i, p->nprocs, SLUICE_FLOW_MAX_WORKERS);
		/* A step that recycles its workers has a spare slot for the
		 * replacement, which runs beside the worker it replaces. */
		p->nworkers += s->nprocs + (s->max_tasks_per_worker ? 1 : 0);
	}
	/* Every ring has a lane per possible producer: the clients, the
	 * supervisor, every worker, and one spare for tools. */
	p->lanes = p->nclients + 1 + p->nworkers + 1;
	for (uint32_t i = 0; i < o->nsteps; i++) {
		const sluice_step_t *s = &o->steps[i];
		uint32_t cap = s->capacity ? s->capacity : DEFAULT_CAPACITY;
		int64_t sz = ring_size(cap, p->lanes * SLUICE__LEVELS);
		if (sz < 0 || (uint64_t)sz > MAX_RING_BYTES)
			return bad(err, errlen,
				   "steps[%u].capacity: %u slots x %u lanes would take %lld bytes, "
				   "more than %llu ('%s')",
				   i, cap, p->lanes * SLUICE__LEVELS, (long long)sz, (unsigned long long)MAX_RING_BYTES,
				   s->name);
		p->step_ring_size[i] = (uint64_t)sz;
	}
	/* A completion lane holds every task of its client, so completing a
	 * task never waits (a worker blocked on a full completion ring while
	 * its client blocks on a full step ring would be a deadlock). */
	p->comp_capacity = next_pow2(p->max_tasks / p->nclients + 1);
	int64_t csz = ring_size(p->comp_capacity, p->lanes);
	if (csz < 0 || (uint64_t)csz > MAX_RING_BYTES)
		return bad(err, errlen,
			   "max_tasks: completion rings of %u slots x %u lanes would take %lld bytes",
			   p->comp_capacity, p->lanes, (long long)csz);
	p->comp_ring_size = (uint64_t)csz;

	if (o->blocks != NULL) {
		if (o->blocks->size_of != sizeof(*o->blocks))
			return bad(err, errlen, "blocks.size_of: must be sizeof(sluice_blocks_config_t)");
		p->blocks = *o->blocks;
	} else {
		uint64_t budget = o->block_budget ? o->block_budget : DEFAULT_BLOCK_BUDGET;
		if (sluice_blocks_config_default(&p->blocks, budget) != 0)
			return bad(err, errlen, "block_budget: %llu bytes is not a usable budget",
				   (unsigned long long)budget);
	}
	int64_t bsz = sluice_blocks_region_size(&p->blocks);
	if (bsz < 0)
		return bad(err, errlen, "blocks: not a valid size-class configuration (%s)",
			   sluice_err_name((int)bsz));
	p->blocks_size = (uint64_t)bsz;
	return 0;
}

/* ---- create ---------------------------------------------------------------------- */

static int layout(sluice_flow_t *f, const sluice_flow_opts_t *o, const struct plan *p,
		  char *err, size_t errlen)
{
	uint64_t steps_off = round_up(sizeof(struct sluice__flow_hdr), 64);
	uint64_t workers_off = steps_off + o->nsteps * sizeof(struct sluice__step_rec);
	uint64_t clients_off = workers_off + p->nworkers * sizeof(struct sluice__worker_slot);
	uint64_t names_off = round_up(clients_off + p->nclients * sizeof(struct sluice__client_slot),
				      64);
	uint64_t scratch_off = names_off + o->nsteps * sizeof(struct sluice__step_names);
	/* Per worker slot, in[batch_size] and out[batch_size] descriptors. */
	uint64_t flow_size = scratch_off;
	for (uint32_t i = 0; i < o->nsteps; i++) {
		uint32_t nslots = o->steps[i].nprocs + (o->steps[i].max_tasks_per_worker ? 1 : 0);
		flow_size += (uint64_t)nslots * 2 * o->steps[i].batch_size * sizeof(sluice_desc_t);
	}

	uint64_t ring_off[SLUICE_FLOW_MAX_STEPS], comp_off[SLUICE__MAX_CLIENTS];
	uint64_t rings_size = 0;
	for (uint32_t i = 0; i < o->nsteps; i++) {
		ring_off[i] = rings_size;
		rings_size = round_up(rings_size + p->step_ring_size[i], 64);
	}
	for (uint32_t c = 0; c < p->nclients; c++) {
		comp_off[c] = rings_size;
		rings_size = round_up(rings_size + p->comp_ring_size, 64);
	}

	char memfd_name[96];
	snprintf(memfd_name, sizeof(memfd_name), "sluice-flow:%s", o->name ? o->name : "");
	sluice_arena_opts_t ao = {
		.size_of = sizeof(ao),
		.name = memfd_name,
		.flags = (o->flags & SLUICE_FLOW_HUGEPAGES) ? SLUICE_ARENA_HUGEPAGES : 0,
		.nregions = 5,
	};
	ao.regions[0] = (sluice_region_req_t){.id = SLUICE__REGION_FLOW, .size = flow_size};
	ao.regions[1] = (sluice_region_req_t){
		.id = SLUICE__REGION_TASKS,
		.size = (uint64_t)p->max_tasks * sizeof(struct sluice__task_entry)};
	ao.regions[2] = (sluice_region_req_t){.id = SLUICE__REGION_BLOCKS, .size = p->blocks_size};
	ao.regions[3] = (sluice_region_req_t){.id = SLUICE__REGION_RINGS, .size = rings_size};
	ao.regions[4] = (sluice_region_req_t){
		.id = SLUICE__REGION_HEALTH,
		.size = sluice__health_region_size(p->nworkers, p->nclients)};
	int rc = sluice_arena_create(&ao, &f->arena);
	if (rc != 0) {
		bad(err, errlen, "arena: %s", sluice_strerror(rc));
		return rc;
	}

	uint64_t off[6], size[6];
	for (uint32_t id = 1; id <= 5; id++)
		if (sluice_arena_region(f->arena, id, &off[id], &size[id]) != 0)
			return SLUICE_ECORRUPT;
	char *flow = sluice_arena_at(f->arena, off[1], size[1], 64);
	char *tasks = sluice_arena_at(f->arena, off[2], size[2], 64);
	char *blocks = sluice_arena_at(f->arena, off[3], size[3], 64);
	char *rings = sluice_arena_at(f->arena, off[4], size[4], 64);
	char *health = sluice_arena_at(f->arena, off[5], size[5], 64);
	if (!flow || !tasks || !blocks || !rings || !health)
		return SLUICE_ECORRUPT;

	/* The arena is zero-filled and nobody else maps it yet: plain stores.
	 * fork() later hands it over whole. */
	struct sluice__flow_hdr *h = (void *)flow;
	h->magic = SLUICE_FLOW_MAGIC;
	h->layout_version = SLUICE_FLOW_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->nsteps = o->nsteps;
	h->nworkers = p->nworkers;
	h->nclients = p->nclients;
	h->max_tasks = p->max_tasks;
	h->tasks_per_client = p->max_tasks / p->nclients;
	h->ring_lanes = p->lanes;
	h->steps_off = steps_off;
	h->workers_off = workers_off;
	h->clients_off = clients_off;
	h->stop_grace_ns = p->stop_grace_ns;
	snprintf(h->name, sizeof(h->name), "%s", o->name ? o->name : "");
	h->names_off = names_off;
	struct sluice__step_names *names = (void *)(flow + names_off);
	f->hdr = h;
	f->step_recs = (void *)(flow + steps_off);
	f->wslots = (void *)(flow + workers_off);
	f->cslots = (void *)(flow + clients_off);
	f->tasks = (void *)tasks;
	sluice__health_format(f, health);

	uint32_t w = 0;
	for (uint32_t i = 0; i < o->nsteps; i++) {
		const sluice_step_t *s = &o->steps[i];
		struct sluice__step *st = &f->steps[i];
		struct sluice__step_rec *r = &f->step_recs[i];
		snprintf(st->name, sizeof(st->name), "%s", s->name);
		st->handler = s->handler;
		st->condition = s->condition;
		st->condition_arg = s->condition_arg;
		st->has_condition = s->condition != NULL;
		st->nprocs = s->nprocs;
		st->nslots = s->nprocs + (s->max_tasks_per_worker ? 1 : 0);
		st->batch_size = s->batch_size;
		st->capacity = s->capacity ? s->capacity : DEFAULT_CAPACITY;
		st->max_attempts = s->max_attempts ? s->max_attempts : 1;
		st->batch_timeout_ns = s->batch_timeout_ns;
		st->task_timeout_ns = s->task_timeout_ns;
		st->restart_delay_ns = s->restart_delay_ns ? s->restart_delay_ns : DEFAULT_RESTART_DELAY_NS;
		st->restart_max_delay_ns = s->restart_max_delay_ns ? s->restart_max_delay_ns
								   : DEFAULT_RESTART_MAX_DELAY_NS;
		if (st->restart_max_delay_ns < st->restart_delay_ns)
			st->restart_max_delay_ns = st->restart_delay_ns;
		st->fail_deaths = s->fail_deaths ? s->fail_deaths : DEFAULT_FAIL_DEATHS;
		st->fail_window_ns = s->fail_window_ns ? s->fail_window_ns : DEFAULT_FAIL_WINDOW_NS;
		st->hung_grace_ns = s->hung_grace_ns ? s->hung_grace_ns : DEFAULT_HUNG_GRACE_NS;
		st->max_tasks_per_worker = s->max_tasks_per_worker;
		st->heartbeat_timeout_ns = s->heartbeat_timeout_ns;
		wait_defaults(s->wait, s->spin_ns, &st->wait, &st->spin_ns);
		st->first_worker = w;
		st->ring_mem = rings + ring_off[i];
		st->ring_size = p->step_ring_size[i];
		if (s->exec_path != NULL && (st->exec_path = strdup(s->exec_path)) == NULL) {
			bad(err, errlen, "steps[%u].exec_path: out of memory", i);
			return SLUICE_ENOMEM;
		}
		snprintf(st->handler_name, sizeof(st->handler_name), "%s",
			 s->handler_name ? s->handler_name : "");
		snprintf(st->condition_name, sizeof(st->condition_name), "%s",
			 s->condition_name ? s->condition_name : "");
		memcpy(names[i].handler, st->handler_name, sizeof(names[i].handler));
		memcpy(names[i].condition, st->condition_name, sizeof(names[i].condition));

		memcpy(r->name, st->name, sizeof(r->name));
		r->nprocs = st->nprocs;
		r->batch_size = st->batch_size;
		r->capacity = st->capacity;
		r->max_attempts = st->max_attempts;
		r->batch_timeout_ns = st->batch_timeout_ns;
		r->task_timeout_ns = st->task_timeout_ns;
		r->first_worker = w;
		r->has_condition = st->condition != NULL;
		r->ring_off = ring_off[i];
		r->ring_size = st->ring_size;
		r->nslots = st->nslots;
		r->fail_deaths = st->fail_deaths;
		r->restart_delay_ns = st->restart_delay_ns;
		r->restart_max_delay_ns = st->restart_max_delay_ns;
		r->fail_window_ns = st->fail_window_ns;
		r->hung_grace_ns = st->hung_grace_ns;
		r->max_tasks_per_worker = st->max_tasks_per_worker;
		r->heartbeat_timeout_ns = st->heartbeat_timeout_ns;
		r->wait = st->wait;
		r->spin_ns = st->spin_ns;

		sluice_ring_config_t rcfg = {.size_of = sizeof(rcfg), .kind = SLUICE_RING_MPMC,
					     .capacity = st->capacity, .lanes = p->lanes * SLUICE__LEVELS};
		rc = sluice_ring_format(st->ring_mem, st->ring_size, &rcfg);
		if (rc != 0) {
			bad(err, errlen, "steps[%u]: ring format: %s", i, sluice_strerror(rc));
			return rc;
		}
		for (uint32_t k = 0; k < st->nslots; k++, w++) {
			struct sluice__worker_slot *ws = &f->wslots[w];
			ws->step = i;
			ws->index = k;
			/* Plain-equivalent stores: nobody else maps the arena. */
			sl_store_relaxed(&ws->position, k < st->nprocs ? k : SLUICE__NO_POSITION);
			ws->scratch_n = st->batch_size;
			ws->scratch_off = scratch_off;
			scratch_off += 2 * (uint64_t)st->batch_size * sizeof(sluice_desc_t);
		}
	}
	for (uint32_t c = 0; c < p->nclients; c++) {
		struct sluice__client_slot *cs = &f->cslots[c];
		cs->comp_ring_off = comp_off[c];
		cs->comp_ring_size = p->comp_ring_size;
		cs->first_task = c * h->tasks_per_client;
		cs->ntasks = h->tasks_per_client;
		f->comp_mem[c] = rings + comp_off[c];
		f->comp_size[c] = p->comp_ring_size;
		sluice_ring_config_t rcfg = {.size_of = sizeof(rcfg), .kind = SLUICE_RING_MPMC,
					     .capacity = p->comp_capacity, .lanes = p->lanes};
		rc = sluice_ring_format(f->comp_mem[c], f->comp_size[c], &rcfg);
		if (rc != 0) {
			bad(err, errlen, "completion ring format: %s", sluice_strerror(rc));
			return rc;
		}
	}
	rc = sluice_blocks_format(blocks, size[3], &p->blocks);
	if (rc == 0)
		rc = sluice_blocks_open(&f->blocks, f->arena, SLUICE__REGION_BLOCKS);
	if (rc != 0) {
		bad(err, errlen, "blocks: %s", sluice_strerror(rc));
		return rc;
	}
	return 0;
}

/* The client's own deadline for a task: only when every step bounds its
 * time. A step that retries allows each retry its timeout, its hung grace
 * (the worker is killed only then) and a slack for the task to reach a
 * worker again. */
void sluice__set_client_bound(sluice_flow_t *f)
{
	uint64_t sum = 0;
	bool bounded = true;
	for (uint32_t i = 0; i < f->nsteps; i++) {
		const struct sluice__step *st = &f->steps[i];
		uint64_t t = st->task_timeout_ns;
		uint64_t retry = t + st->hung_grace_ns + RETRY_SLACK_NS;
		/* Terms bounded (2^48), 255 attempts, 16 steps: no overflow. */
		if (t == 0 || t > (UINT64_C(1) << 48) || st->hung_grace_ns > (UINT64_C(1) << 48))
			bounded = false;
		else
			sum += t + (uint64_t)(st->max_attempts - 1) * retry;
	}
	f->client_bound_ns = bounded ? sum + SLUICE__CLIENT_MARGIN_NS : 0;
}

int sluice_flow_create(const sluice_flow_opts_t *opts, sluice_flow_t **out, char *err,
		       size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL)
		return bad(err, errlen, "out: must not be NULL");
	*out = NULL;
	struct plan *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return SLUICE_ENOMEM;
	int rc = validate(opts, p, err, errlen);
	if (rc != 0) {
		free(p);
		return rc;
	}
	sluice_flow_t *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		free(p);
		return SLUICE_ENOMEM;
	}
	snprintf(f->name, sizeof(f->name), "%s", opts->name ? opts->name : "");
	f->nsteps = opts->nsteps;
	f->nworkers = p->nworkers;
	f->nclients = p->nclients;
	f->max_tasks = p->max_tasks;
	f->tasks_per_client = p->max_tasks / p->nclients;
	f->ring_lanes = p->lanes;
	f->stop_grace_ns = p->stop_grace_ns;
	wait_defaults(opts->client_wait, opts->client_spin_ns, &f->client_wait, &f->client_spin_ns);
	f->metrics_port = opts->metrics_port;
	f->sup_pidfd = -1;
	f->sup_efd = -1;
	f->client_efd = -1;
	f->ctl_fd = -1;
	f->listed = opts->name != NULL && opts->name[0] != '\0' && !(opts->flags & SLUICE_FLOW_UNLISTED);
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++)
		f->client_efds[c] = -1;

	rc = layout(f, opts, p, err, errlen);
	free(p);
	if (rc == 0)
		sluice__set_client_bound(f);
	for (uint32_t c = 0; rc == 0 && c < f->nclients; c++) {
		f->client_efds[c] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (f->client_efds[c] < 0) {
			rc = -errno;
			bad(err, errlen, "eventfd: %s", sluice_strerror(rc));
		}
	}
	if (rc == 0)
		f->client_efd = f->client_efds[0];
	if (rc == 0) {
		rc = sluice__client_init(f, 0);
		if (rc != 0)
			bad(err, errlen, "client: %s", sluice_strerror(rc));
	}
	if (rc != 0) {
		sluice_flow_destroy(f);
		return rc;
	}
	*out = f;
	return 0;
}

void sluice_flow_destroy(sluice_flow_t *f)
{
	if (f == NULL)
		return;
	if (f->started && !f->sup_reaped && !f->attached)
		(void)sluice_flow_stop(f, 0);
	if (f->ctl_fd >= 0)
		close(f->ctl_fd); /* the lease: the supervisor takes the slot back */
	sluice__client_fini(f);
	sluice__task_fd_fini(f);
	if (f->sup_pidfd >= 0)
		close(f->sup_pidfd);
	if (f->sup_efd >= 0)
		close(f->sup_efd);
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++)
		if (f->client_efds[c] >= 0)
			close(f->client_efds[c]);
	if (f->client_efd >= 0 && (f->nclients == 0 || f->client_efd != f->client_efds[0]))
		close(f->client_efd);
	for (uint32_t i = 0; i < f->nsteps; i++)
		free(f->steps[i].exec_path);
	sluice_arena_destroy(f->arena);
	free(f);
}

const char *sluice_flow_error(const sluice_flow_t *f)
{
	return f->err;
}

int sluice_flow_eventfd(sluice_flow_t *f)
{
	if (f->lt == NULL)
		return SLUICE_EINVAL; /* an observer has no completions */
	if (!f->efd_mode) {
		f->efd_mode = true;
		sluice__client_arm(f);
	}
	return f->client_efd;
}

int64_t sluice_flow_worker_pid(const sluice_flow_t *f, uint32_t step, uint32_t index)
{
	if (f == NULL || step >= f->nsteps || index >= f->steps[step].nprocs)
		return SLUICE_EINVAL;
	const struct sluice__step *st = &f->steps[step];
	/* Relaxed: a snapshot. The slot serving position `index` (during a
	 * hand-over, the replacement rather than the retiring worker); else
	 * the slot that served it at start. */
	int64_t any = -1;
	for (uint32_t k = 0; k < st->nslots; k++) {
		struct sluice__worker_slot *ws = &f->wslots[st->first_worker + k];
		if (sl_load_relaxed(&ws->position) != index)
			continue;
		uint32_t s = sl_load_relaxed(&ws->state);
		int64_t pid = sl_load_relaxed(&ws->pid);
		if (s != SLUICE__WS_RETIRING && s != SLUICE__WS_EXITED && pid != 0)
			return pid;
		if (any < 0)
			any = pid;
	}
	if (any >= 0)
		return any;
	return sl_load_relaxed(&f->wslots[st->first_worker + index].pid);
}

int64_t sluice_flow_supervisor_pid(const sluice_flow_t *f)
{
	return f->sup_pid;
}

int sluice_flow_supervisor_pidfd(const sluice_flow_t *f)
{
	return f == NULL ? -1 : f->sup_pidfd;
}
