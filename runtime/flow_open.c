/* Opening a flow from its arena alone: the process-local handle (struct
 * sluice_flow) built from the shared geometry, for a process that is not a
 * fork of the flow's creator: an exec'd worker (runtime/worker_exec.c),
 * and later a client attaching by name.
 *
 * Everything read here is untrusted input: any process that maps the arena
 * read-write could have written it. The geometry (header lines 0-2, the
 * step records' lines 0-2, the names, the slots' identities) is copied
 * once, checked field by field against the layout create writes (counts in
 * range, tables inside the flow region in order and not overlapping, each
 * ring inside the rings region and of the size its configuration needs,
 * slot identities agreeing with the step table), and only the validated
 * copy is used afterwards; the rings and the allocator are opened with
 * their own validation and checked against the step table. A refusal
 * names the field. Layout in runtime/flow_layout.h.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/health.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64u

static int refuse(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* [off, off + len) lies inside [lo, size), off aligned. No overflow: len
 * is compared with what is left. */
static bool span_ok(uint64_t off, uint64_t len, uint64_t lo, uint64_t size, uint64_t align)
{
	return off >= lo && off <= size && len <= size - off && off % align == 0;
}

static bool terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static bool pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static uint64_t ring_bytes(uint32_t capacity, uint32_t lanes)
{
	sluice_ring_config_t rc = {
		.size_of = sizeof(rc), .kind = SLUICE_RING_MPMC, .capacity = capacity, .lanes = lanes,
	};
	int64_t n = sluice_ring_mem_size(&rc);
	return n < 0 ? 0 : (uint64_t)n;
}

/* Opens the ring at [mem, mem + size) and checks it is what the step table
 * says: MPMC, `lanes` lanes, and lanes of at least `min_cap` slots. */
static int ring_ok(void *mem, uint64_t size, uint32_t lanes, uint32_t min_cap)
{
	sluice_ring_t r;
	int rc = sluice_ring_open(&r, mem, size);
	if (rc != 0)
		return rc;
	if (sluice_ring_kind(&r) != SLUICE_RING_MPMC || sluice_ring_lanes(&r) != lanes ||
	    sluice_ring_lane_capacity(&r) + 1 < min_cap)
		return SLUICE_ECORRUPT;
	return 0;
}

struct regions {
	char *base[SLUICE__REGION_HEALTH + 1];
	uint64_t size[SLUICE__REGION_HEALTH + 1];
};

/* The header: counts and the offsets of the tables in the flow region. */
static int check_header(const struct sluice__flow_hdr *h, uint64_t flow_size, char *err,
			size_t errlen)
{
	if (h->magic != SLUICE_FLOW_MAGIC)
		return refuse(err, errlen, SLUICE_EBADMAGIC, "flow header: bad magic 0x%llx",
			      (unsigned long long)h->magic);
	if (h->layout_version != SLUICE_FLOW_LAYOUT_VERSION)
		return refuse(err, errlen, SLUICE_EVERSION,
			      "flow header: layout version %u, this library reads %u",
			      h->layout_version, SLUICE_FLOW_LAYOUT_VERSION);
	if (h->header_size != sizeof(*h))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: header_size %u, want %zu",
			      h->header_size, sizeof(*h));
	if (!terminated(h->name, sizeof(h->name)))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: name not terminated");
	if (h->nsteps == 0 || h->nsteps > SLUICE_FLOW_MAX_STEPS)
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: nsteps %u", h->nsteps);
	if (h->nworkers == 0 || h->nworkers > SLUICE_FLOW_MAX_WORKERS + SLUICE_FLOW_MAX_STEPS)
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: nworkers %u", h->nworkers);
	/* This library keeps room for SLUICE__MAX_CLIENTS completion rings. */
	if (h->nclients == 0 || h->nclients > SLUICE__MAX_CLIENTS)
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: nclients %u", h->nclients);
	if (h->max_tasks == 0 || h->max_tasks > SLUICE_FLOW_MAX_TASKS ||
	    h->tasks_per_client != h->max_tasks / h->nclients || h->tasks_per_client == 0)
		return refuse(err, errlen, SLUICE_ECORRUPT,
			      "flow header: max_tasks %u, tasks_per_client %u", h->max_tasks,
			      h->tasks_per_client);
	/* One lane per possible producer: clients, supervisor, workers, a spare. */
	if (h->ring_lanes != h->nclients + 1 + h->nworkers + 1)
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: ring_lanes %u",
			      h->ring_lanes);
	/* The tables, in create's order, none overlapping the next. */
	uint64_t steps_len = (uint64_t)h->nsteps * sizeof(struct sluice__step_rec);
	uint64_t workers_len = (uint64_t)h->nworkers * sizeof(struct sluice__worker_slot);
	uint64_t clients_len = (uint64_t)h->nclients * sizeof(struct sluice__client_slot);
	uint64_t names_len = (uint64_t)h->nsteps * sizeof(struct sluice__step_names);
	if (!span_ok(h->steps_off, steps_len, sizeof(*h), flow_size, ALIGN))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: steps_off %llu",
			      (unsigned long long)h->steps_off);
	if (!span_ok(h->workers_off, workers_len, h->steps_off + steps_len, flow_size, ALIGN))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: workers_off %llu",
			      (unsigned long long)h->workers_off);
	if (!span_ok(h->clients_off, clients_len, h->workers_off + workers_len, flow_size, ALIGN))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: clients_off %llu",
			      (unsigned long long)h->clients_off);
	if (!span_ok(h->names_off, names_len, h->clients_off + clients_len, flow_size, ALIGN))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: names_off %llu",
			      (unsigned long long)h->names_off);
	return 0;
}

/* Step i's record (a copy) and names, into the handle; *w is the first
 * worker slot of the step, *ring_end where the previous ring ended. */
static int check_step(sluice_flow_t *f, uint32_t i, const struct sluice__step_rec *r,
		      const struct sluice__step_names *nm, const struct regions *R, uint32_t *w,
		      uint64_t *ring_end, uint32_t *nprocs, char *err, size_t errlen)
{
#define BAD(...) refuse(err, errlen, SLUICE_ECORRUPT, __VA_ARGS__)
	if (!terminated(r->name, sizeof(r->name)) || r->name[0] == '\0')
		return BAD("steps[%u].name: empty or not terminated", i);
	for (uint32_t j = 0; j < i; j++)
		if (strcmp(f->steps[j].name, r->name) == 0)
			return BAD("steps[%u].name: '%s' is also the name of steps[%u]", i, r->name, j);
	if (r->nprocs == 0 || r->nprocs > SLUICE_STEP_MAX_NPROCS)
		return BAD("steps[%u].nprocs: %u", i, r->nprocs);
	if (r->nslots != r->nprocs + (r->max_tasks_per_worker ? 1u : 0u))
		return BAD("steps[%u].nslots: %u for %u workers", i, r->nslots, r->nprocs);
	if (r->first_worker != *w || r->nslots > f->nworkers - *w)
		return BAD("steps[%u].first_worker: %u, want %u", i, r->first_worker, *w);
	*nprocs += r->nprocs;
	if (*nprocs > SLUICE_FLOW_MAX_WORKERS)
		return BAD("steps[%u].nprocs: %u workers in all", i, *nprocs);
	if (r->batch_size == 0 || r->batch_size > SLUICE_STEP_MAX_BATCH)
		return BAD("steps[%u].batch_size: %u", i, r->batch_size);
	if (!pow2(r->capacity) || r->capacity < SLUICE_RING_MIN_CAPACITY ||
	    r->capacity > SLUICE_RING_MAX_CAPACITY)
		return BAD("steps[%u].capacity: %u", i, r->capacity);
	if (r->max_attempts == 0 || r->max_attempts > SLUICE_STEP_MAX_ATTEMPTS)
		return BAD("steps[%u].max_attempts: %u", i, r->max_attempts);
	if (r->has_condition > 1)
		return BAD("steps[%u].has_condition: %u", i, r->has_condition);
	if (r->fail_deaths == 0 ||
	    (r->fail_deaths > SLUICE_STEP_MAX_FAIL_DEATHS && r->fail_deaths != SLUICE_STEP_NEVER_FAIL))
		return BAD("steps[%u].fail_deaths: %u", i, r->fail_deaths);
	if (r->restart_delay_ns == 0)
		return BAD("steps[%u].restart_delay_ns: 0", i);
	if (r->restart_max_delay_ns < r->restart_delay_ns)
		return BAD("steps[%u].restart_max_delay_ns: below restart_delay_ns", i);
	if (r->fail_window_ns == 0)
		return BAD("steps[%u].fail_window_ns: 0", i);
	if (r->hung_grace_ns == 0)
		return BAD("steps[%u].hung_grace_ns: 0", i);
	if (r->wait < SLUICE_RING_SPIN_SLEEP || r->wait > SLUICE_RING_BUSY_POLL ||
	    r->spin_ns > SLUICE_FLOW_MAX_SPIN_NS ||
	    (r->wait == SLUICE_RING_SPIN_SLEEP) != (r->spin_ns != 0))
		return BAD("steps[%u]: wait %u, spin_ns %llu", i, r->wait,
			   (unsigned long long)r->spin_ns);
	uint64_t want = ring_bytes(r->capacity, f->ring_lanes * SLUICE__LEVELS);
	if (want == 0 || r->ring_size != want ||
	    !span_ok(r->ring_off, r->ring_size, *ring_end, R->size[SLUICE__REGION_RINGS], ALIGN))
		return BAD("steps[%u]: ring_off %llu, ring_size %llu", i,
			   (unsigned long long)r->ring_off, (unsigned long long)r->ring_size);
	if (!terminated(nm->handler, sizeof(nm->handler)) ||
	    !terminated(nm->condition, sizeof(nm->condition)))
		return BAD("steps[%u]: handler or condition name not terminated", i);
	if (nm->condition[0] != '\0' && !r->has_condition)
		return BAD("steps[%u]: a condition name without a condition", i);
#undef BAD
	struct sluice__step *st = &f->steps[i];
	memcpy(st->name, r->name, sizeof(st->name));
	memcpy(st->handler_name, nm->handler, sizeof(st->handler_name));
	memcpy(st->condition_name, nm->condition, sizeof(st->condition_name));
	st->nprocs = r->nprocs;
	st->nslots = r->nslots;
	st->batch_size = r->batch_size;
	st->capacity = r->capacity;
	st->max_attempts = r->max_attempts;
	st->first_worker = r->first_worker;
	st->fail_deaths = r->fail_deaths;
	st->batch_timeout_ns = r->batch_timeout_ns;
	st->task_timeout_ns = r->task_timeout_ns;
	st->restart_delay_ns = r->restart_delay_ns;
	st->restart_max_delay_ns = r->restart_max_delay_ns;
	st->fail_window_ns = r->fail_window_ns;
	st->hung_grace_ns = r->hung_grace_ns;
	st->heartbeat_timeout_ns = r->heartbeat_timeout_ns;
	st->wait = r->wait;
	st->spin_ns = r->spin_ns;
	st->max_tasks_per_worker = r->max_tasks_per_worker;
	st->has_condition = r->has_condition != 0;
	st->ring_mem = R->base[SLUICE__REGION_RINGS] + r->ring_off;
	st->ring_size = r->ring_size;
	*w += r->nslots;
	*ring_end = r->ring_off + r->ring_size;
	int rc = ring_ok(st->ring_mem, st->ring_size, f->ring_lanes * SLUICE__LEVELS, st->capacity);
	if (rc != 0)
		return refuse(err, errlen, rc, "steps[%u]: ring: %s", i, sluice_strerror(rc));
	return 0;
}

/* The worker slots' identities and scratch areas: each slot in its step,
 * scratch inside the flow region after the tables, in slot order, none
 * overlapping the next. */
static int check_workers(sluice_flow_t *f, uint64_t scratch_lo, uint64_t flow_size, char *err,
			 size_t errlen)
{
	uint64_t end = scratch_lo;
	for (uint32_t w = 0; w < f->nworkers; w++) {
		const struct sluice__worker_slot *ws = &f->wslots[w];
		uint32_t s = sluice__worker_step(f, w);
		const struct sluice__step *st = &f->steps[s];
		/* Plain reads of fields written once by create; each read once
		 * here. */
		uint32_t step = ws->step, index = ws->index, n = ws->scratch_n;
		uint64_t off = ws->scratch_off;
		if (step != s || index != w - st->first_worker || n != st->batch_size ||
		    !span_ok(off, 2 * (uint64_t)n * sizeof(sluice_desc_t), end, flow_size, ALIGN))
			return refuse(err, errlen, SLUICE_ECORRUPT,
				      "worker slot %u: step %u, index %u, scratch %u at %llu", w, step,
				      index, n, (unsigned long long)off);
		end = off + 2 * (uint64_t)n * sizeof(sluice_desc_t);
	}
	return 0;
}

/* The client slots: their share of the task table and completion rings
 * that hold every task of the client. */
static int check_clients(sluice_flow_t *f, const struct regions *R, uint64_t ring_end, char *err,
			 size_t errlen)
{
	for (uint32_t c = 0; c < f->nclients; c++) {
		const struct sluice__client_slot *cs = &f->cslots[c];
		uint64_t off = cs->comp_ring_off, size = cs->comp_ring_size;
		uint32_t first = cs->first_task, n = cs->ntasks;
		if (first != c * f->tasks_per_client || n != f->tasks_per_client ||
		    !span_ok(off, size, ring_end, R->size[SLUICE__REGION_RINGS], ALIGN))
			return refuse(err, errlen, SLUICE_ECORRUPT,
				      "client slot %u: tasks %u+%u, completion ring at %llu, %llu bytes",
				      c, first, n, (unsigned long long)off, (unsigned long long)size);
		f->comp_mem[c] = R->base[SLUICE__REGION_RINGS] + off;
		f->comp_size[c] = size;
		ring_end = off + size;
		/* A completion lane holds every task of its client. */
		int rc = ring_ok(f->comp_mem[c], size, f->ring_lanes, f->tasks_per_client + 1);
		if (rc != 0)
			return refuse(err, errlen, rc, "client slot %u: completion ring: %s", c,
				      sluice_strerror(rc));
	}
	return 0;
}

static int open_into(sluice_flow_t *f, sluice_arena_t *a, char *err, size_t errlen)
{
	struct regions R;
	for (uint32_t id = SLUICE__REGION_FLOW; id <= SLUICE__REGION_HEALTH; id++) {
		uint64_t off;
		if (sluice_arena_region(a, id, &off, &R.size[id]) != 0)
			return refuse(err, errlen, SLUICE_ECORRUPT, "arena: no region %u", id);
		R.base[id] = sluice_arena_at(a, off, R.size[id], ALIGN);
		if (R.base[id] == NULL)
			return refuse(err, errlen, SLUICE_ECORRUPT, "arena: region %u out of bounds", id);
	}
	uint64_t flow_size = R.size[SLUICE__REGION_FLOW];
	if (flow_size < sizeof(struct sluice__flow_hdr))
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow region: %llu bytes, below its header",
			      (unsigned long long)flow_size);
	char *flow = R.base[SLUICE__REGION_FLOW];
	/* The geometry (lines 0-2), copied once: only the copy is used. */
	struct sluice__flow_hdr h;
	memcpy(&h, flow, offsetof(struct sluice__flow_hdr, state));
	int rc = check_header(&h, flow_size, err, errlen);
	if (rc != 0)
		return rc;
	memcpy(f->name, h.name, sizeof(f->name));
	f->nsteps = h.nsteps;
	f->nworkers = h.nworkers;
	f->nclients = h.nclients;
	f->max_tasks = h.max_tasks;
	f->tasks_per_client = h.tasks_per_client;
	f->ring_lanes = h.ring_lanes;
	f->stop_grace_ns = h.stop_grace_ns;
	f->hdr = (void *)flow;
	f->step_recs = (void *)(flow + h.steps_off);
	f->wslots = (void *)(flow + h.workers_off);
	f->cslots = (void *)(flow + h.clients_off);
	const struct sluice__step_names *names = (const void *)(flow + h.names_off);

	uint32_t w = 0, nprocs = 0;
	uint64_t ring_end = 0;
	for (uint32_t i = 0; i < f->nsteps; i++) {
		struct sluice__step_rec r;
		struct sluice__step_names nm;
		memcpy(&r, &f->step_recs[i], offsetof(struct sluice__step_rec, failed));
		memcpy(&nm, &names[i], sizeof(nm));
		rc = check_step(f, i, &r, &nm, &R, &w, &ring_end, &nprocs, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (w != f->nworkers)
		return refuse(err, errlen, SLUICE_ECORRUPT, "flow header: nworkers %u, the steps have %u",
			      f->nworkers, w);
	uint64_t names_end = h.names_off + (uint64_t)h.nsteps * sizeof(struct sluice__step_names);
	rc = check_workers(f, names_end, flow_size, err, errlen);
	if (rc == 0)
		rc = check_clients(f, &R, ring_end, err, errlen);
	if (rc != 0)
		return rc;
	if (R.size[SLUICE__REGION_TASKS] / sizeof(struct sluice__task_entry) < f->max_tasks)
		return refuse(err, errlen, SLUICE_ECORRUPT, "tasks region: %llu bytes for %u tasks",
			      (unsigned long long)R.size[SLUICE__REGION_TASKS], f->max_tasks);
	f->tasks = (void *)R.base[SLUICE__REGION_TASKS];
	rc = sluice_blocks_open(&f->blocks, a, SLUICE__REGION_BLOCKS);
	if (rc != 0)
		return refuse(err, errlen, rc, "blocks: %s", sluice_strerror(rc));
	rc = sluice__health_open(f, R.base[SLUICE__REGION_HEALTH], R.size[SLUICE__REGION_HEALTH]);
	if (rc != 0)
		return refuse(err, errlen, rc, "health region: %s", sluice_strerror(rc));
	return 0;
}

int sluice__flow_open_arena(sluice_arena_t *a, sluice_flow_t **out, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (a == NULL || out == NULL)
		return refuse(err, errlen, SLUICE_EINVAL, "arena and out: must not be NULL");
	*out = NULL;
	sluice_flow_t *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return refuse(err, errlen, SLUICE_ENOMEM, "out of memory");
	f->sup_pidfd = -1;
	f->sup_efd = -1;
	f->client_efd = -1;
	f->ctl_fd = -1;
	for (uint32_t c = 0; c < SLUICE__MAX_CLIENTS; c++)
		f->client_efds[c] = -1;
	int rc = open_into(f, a, err, errlen);
	if (rc != 0) {
		free(f);
		return rc;
	}
	f->arena = a;
	*out = f;
	return 0;
}
