/* sluice__flow_open_arena: a flow's process-local handle built from its
 * arena alone (what an exec'd worker does), every field of the shared
 * geometry checked as untrusted input.
 *
 *   good     a second mapping of a created flow opens, and the handle
 *            agrees with the creator's in every field of the geometry
 *            (counts, steps, names, ring and slot offsets)
 *   corrupt  one field at a time scribbled on (header, step records,
 *            names, worker slots, client slots, a ring, the allocator):
 *            each open is refused with a code and a message naming the
 *            field, and never crashes (ASan build) */
#include "runtime/flow_test.h"

#include <stddef.h>

static int h_noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

static bool cond_any(void *arg, const sluice_item_t *t)
{
	return true;
}

static sluice_flow_t *f;    /* the creator's handle: scribbled on through it */
static sluice_arena_t *att; /* a second mapping of the same memfd */

static uint64_t arena_off(const sluice_flow_t *g, const void *p)
{
	return (uint64_t)((const char *)p - (const char *)sluice_arena_base(g->arena));
}

static void check_same(const sluice_flow_t *g)
{
	CHECK(strcmp(g->name, f->name) == 0);
	CHECK(g->nsteps == f->nsteps && g->nworkers == f->nworkers && g->nclients == f->nclients);
	CHECK(g->max_tasks == f->max_tasks && g->tasks_per_client == f->tasks_per_client);
	CHECK(g->ring_lanes == f->ring_lanes && g->stop_grace_ns == f->stop_grace_ns);
	for (uint32_t i = 0; i < f->nsteps; i++) {
		const struct sluice__step *a = &f->steps[i], *b = &g->steps[i];
		CHECK(strcmp(a->name, b->name) == 0);
		CHECK(strcmp(a->handler_name, b->handler_name) == 0);
		CHECK(strcmp(a->condition_name, b->condition_name) == 0);
		CHECK(b->has_condition == (a->condition != NULL));
		CHECK(b->handler.handle == NULL && b->condition == NULL && b->exec_path == NULL);
		CHECK(a->nprocs == b->nprocs && a->nslots == b->nslots);
		CHECK(a->batch_size == b->batch_size && a->capacity == b->capacity);
		CHECK(a->max_attempts == b->max_attempts && a->first_worker == b->first_worker);
		CHECK(a->fail_deaths == b->fail_deaths && a->batch_timeout_ns == b->batch_timeout_ns);
		CHECK(a->task_timeout_ns == b->task_timeout_ns);
		CHECK(a->restart_delay_ns == b->restart_delay_ns);
		CHECK(a->restart_max_delay_ns == b->restart_max_delay_ns);
		CHECK(a->fail_window_ns == b->fail_window_ns && a->hung_grace_ns == b->hung_grace_ns);
		CHECK(a->max_tasks_per_worker == b->max_tasks_per_worker);
		CHECK(a->ring_size == b->ring_size);
		CHECK(arena_off(f, a->ring_mem) == arena_off(g, b->ring_mem));
	}
	CHECK(arena_off(f, f->hdr) == arena_off(g, g->hdr));
	CHECK(arena_off(f, f->step_recs) == arena_off(g, g->step_recs));
	CHECK(arena_off(f, f->wslots) == arena_off(g, g->wslots));
	CHECK(arena_off(f, f->cslots) == arena_off(g, g->cslots));
	CHECK(arena_off(f, f->tasks) == arena_off(g, g->tasks));
	CHECK(arena_off(f, f->comp_mem[0]) == arena_off(g, g->comp_mem[0]));
	CHECK(f->comp_size[0] == g->comp_size[0]);
	for (uint32_t w = 0; w < f->nworkers; w++)
		CHECK(arena_off(f, sluice__scratch_in(f, w)) == arena_off(g, sluice__scratch_in(g, w)));
	CHECK(g->sup_efd == -1 && g->client_efd == -1 && g->sup_pidfd == -1 && g->lt == NULL);
}

/* Scribbles `len` bytes at `p` (in the creator's mapping) with `val`
 * (repeated), opens the second mapping, expects a refusal whose code is
 * `want` (0: any) and whose message holds `what`; then restores. */
static unsigned ncases;

static size_t round_up_64(size_t v)
{
	return (v + 63) & ~(size_t)63;
}

static void corrupt(const char *label, void *p, size_t len, const void *val, size_t vlen, int want,
		    const char *what)
{
	unsigned char save[256];
	CHECK(len <= sizeof(save) && vlen > 0);
	memcpy(save, p, len);
	for (size_t i = 0; i < len; i++)
		((unsigned char *)p)[i] = ((const unsigned char *)val)[i % vlen];
	sluice_flow_t *g = NULL;
	char err[256] = "";
	int rc = sluice__flow_open_arena(att, &g, err, sizeof(err));
	memcpy(p, save, len);
	printf("%-28s %-11s %s\n", label, sluice_err_name(rc), err);
	if (rc >= 0 || g != NULL || (want != 0 && rc != want) || strstr(err, what) == NULL) {
		fprintf(stderr, "FAIL: %s: want %s with '%s'\n", label,
			want ? sluice_err_name(want) : "a refusal", what);
		exit(TEST_FAIL);
	}
	ncases++;
}

#define SET32(label, field, v, want, what)                                              \
	do {                                                                            \
		uint32_t v_ = (uint32_t)(v);                                            \
		corrupt(label, &(field), sizeof(uint32_t), &v_, sizeof(v_), want, what); \
	} while (0)
#define SET64(label, field, v, want, what)                                              \
	do {                                                                            \
		uint64_t v_ = (uint64_t)(v);                                            \
		corrupt(label, &(field), sizeof(uint64_t), &v_, sizeof(v_), want, what); \
	} while (0)
#define FILL(label, field, want, what) corrupt(label, (field), sizeof(field), "x", 1, want, what)

int main(void)
{
	sluice_step_t steps[3] = {
		test_step("first", h_noop, 2, 4),
		test_step("second", NULL, 1, 8),
		test_step("third", h_noop, 3, 2),
	};
	steps[1].exec_path = "/nonexistent/worker"; /* never started */
	steps[1].handler_name = "second_handler";
	steps[1].max_tasks_per_worker = 100;        /* a spare slot */
	steps[1].task_timeout_ns = 5 * SEC;
	steps[2].condition = cond_any;
	steps[2].condition_name = "third_condition";
	steps[2].capacity = 16;
	f = test_flow("open", steps, 3, 64);

	/* good */
	sluice_arena_t *a = NULL;
	CHECK_OK(sluice_arena_attach(sluice_arena_fd(f->arena), 0, &a));
	sluice_flow_t *g = NULL;
	char err[256];
	int rc = sluice__flow_open_arena(a, &g, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: open: %s: %s\n", sluice_err_name(rc), err);
		return TEST_FAIL;
	}
	CHECK(g->arena == a && sluice_arena_base(a) != sluice_arena_base(f->arena));
	check_same(g);
	sluice_flow_destroy(g); /* unmaps a */
	CHECK_RC(sluice__flow_open_arena(NULL, &g, err, sizeof(err)), SLUICE_EINVAL);

	/* corrupt */
	CHECK_OK(sluice_arena_attach(sluice_arena_fd(f->arena), 0, &att));
	struct sluice__flow_hdr *h = f->hdr;
	const int C = SLUICE_ECORRUPT;
	SET64("hdr.magic", h->magic, 1, SLUICE_EBADMAGIC, "bad magic");
	SET32("hdr.layout_version", h->layout_version, 2, SLUICE_EVERSION, "layout version 2");
	SET32("hdr.header_size", h->header_size, 448, C, "header_size");
	FILL("hdr.name", h->name, C, "name not terminated");
	SET32("hdr.nsteps 0", h->nsteps, 0, C, "nsteps");
	SET32("hdr.nsteps 17", h->nsteps, 17, C, "nsteps");
	SET32("hdr.nsteps 2", h->nsteps, 2, C, "nworkers");
	SET32("hdr.nworkers 0", h->nworkers, 0, C, "nworkers");
	SET32("hdr.nworkers +1", h->nworkers, f->nworkers + 1, C, "ring_lanes");
	SET32("hdr.nclients", h->nclients, SLUICE__MAX_CLIENTS + 1, C, "nclients");
	SET32("hdr.max_tasks 0", h->max_tasks, 0, C, "max_tasks");
	SET32("hdr.max_tasks huge", h->max_tasks, SLUICE_FLOW_MAX_TASKS + 1, C, "max_tasks");
	SET32("hdr.tasks_per_client", h->tasks_per_client, 63, C, "tasks_per_client");
	SET32("hdr.ring_lanes", h->ring_lanes, f->ring_lanes + 1, C, "ring_lanes");
	SET64("hdr.steps_off unaligned", h->steps_off, h->steps_off + 8, C, "steps_off");
	SET64("hdr.steps_off in header", h->steps_off, 0, C, "steps_off");
	SET64("hdr.steps_off past end", h->steps_off, UINT64_MAX - 63, C, "steps_off");
	SET64("hdr.workers_off overlap", h->workers_off, h->steps_off, C, "workers_off");
	SET64("hdr.clients_off overlap", h->clients_off, h->workers_off, C, "clients_off");
	SET64("hdr.clients_off past end", h->clients_off, UINT64_C(1) << 40, C, "clients_off");
	SET64("hdr.names_off overlap", h->names_off, h->clients_off, C, "names_off");

	struct sluice__step_rec *r = &f->step_recs[1];
	FILL("step.name unterminated", r->name, C, "steps[1].name");
	corrupt("step.name empty", r->name, 1, "", 1, C, "steps[1].name");
	corrupt("step.name duplicate", r->name, 6, "first", 6, C, "also the name of steps[0]");
	SET32("step.nprocs 0", r->nprocs, 0, C, "steps[1].nprocs");
	SET32("step.nprocs 300", r->nprocs, 300, C, "steps[1].nprocs");
	SET32("step.nslots", r->nslots, 1, C, "steps[1].nslots");
	SET32("step.first_worker", r->first_worker, 1, C, "steps[1].first_worker");
	SET32("step.first_worker far", f->step_recs[2].first_worker, 1000, C, "steps[2].first_worker");
	SET32("step.batch_size 0", r->batch_size, 0, C, "steps[1].batch_size");
	SET32("step.batch_size huge", r->batch_size, SLUICE_STEP_MAX_BATCH + 1, C, "batch_size");
	SET32("step.capacity 3", r->capacity, 3, C, "steps[1].capacity");
	SET32("step.capacity huge", r->capacity, 1u << 31, C, "steps[1].capacity");
	SET32("step.max_attempts 0", r->max_attempts, 0, C, "steps[1].max_attempts");
	SET32("step.has_condition 2", r->has_condition, 2, C, "steps[1].has_condition");
	SET32("step.fail_deaths 0", r->fail_deaths, 0, C, "steps[1].fail_deaths");
	SET64("step.restart_delay 0", r->restart_delay_ns, 0, C, "steps[1].restart_delay_ns");
	SET64("step.restart_max < delay", r->restart_max_delay_ns, 1, C,
	      "steps[1].restart_max_delay_ns");
	SET64("step.fail_window 0", r->fail_window_ns, 0, C, "steps[1].fail_window_ns");
	SET64("step.hung_grace 0", r->hung_grace_ns, 0, C, "steps[1].hung_grace_ns");
	SET64("step.ring_off +64", r->ring_off, r->ring_off + 64, 0, "steps[1]");
	SET64("step.ring_off overlap", r->ring_off, 0, C, "steps[1]: ring_off");
	SET64("step.ring_off past end", r->ring_off, UINT64_MAX - 63, C, "steps[1]: ring_off");
	SET64("step.ring_size", r->ring_size, r->ring_size - 64, C, "steps[1]: ring_off");
	SET32("step.max_tasks_per_worker", f->step_recs[0].max_tasks_per_worker, 5, C,
	      "steps[0].nslots");

	struct sluice__step_names *nm = (void *)((char *)h + h->names_off);
	FILL("names.handler", nm[1].handler, C, "steps[1]: handler or condition name");
	FILL("names.condition", nm[2].condition, C, "steps[2]: handler or condition name");
	corrupt("names.condition no cond", nm[0].condition, 2, "c", 2, C, "steps[0]: a condition name");

	struct sluice__worker_slot *ws = f->wslots;
	SET32("worker.step", ws[3].step, 0, C, "worker slot 3");
	SET32("worker.index", ws[3].index, 0, C, "worker slot 3");
	SET32("worker.scratch_n", ws[4].scratch_n, 4, C, "worker slot 4");
	SET64("worker.scratch_off overlap", ws[4].scratch_off, ws[3].scratch_off, C, "worker slot 4");
	SET64("worker.scratch_off names", ws[0].scratch_off, h->names_off, C, "worker slot 0");
	SET64("worker.scratch_off past end", ws[6].scratch_off, UINT64_MAX - 63, C, "worker slot 6");
	SET64("worker.scratch_off unaligned", ws[5].scratch_off, ws[5].scratch_off + 8, C,
	      "worker slot 5");

	struct sluice__client_slot *cs = f->cslots;
	SET32("client.first_task", cs[0].first_task, 1, C, "client slot 0");
	SET32("client.ntasks", cs[0].ntasks, 65, C, "client slot 0");
	SET64("client.comp_ring_off overlap", cs[0].comp_ring_off, f->step_recs[2].ring_off, C,
	      "client slot 0");
	SET64("client.comp_ring_size huge", cs[0].comp_ring_size, UINT64_C(1) << 40, C, "client slot 0");
	SET64("client.comp_ring_size short", cs[0].comp_ring_size, 64, 0, "completion ring");

	/* What the step table points at: the rings and the allocator open
	 * with their own validation. */
	corrupt("ring magic", f->steps[0].ring_mem, 8, "\x01", 1, SLUICE_EBADMAGIC, "steps[0]: ring");
	corrupt("completion ring magic", f->comp_mem[0], 8, "\x01", 1, SLUICE_EBADMAGIC,
		"completion ring");
	corrupt("blocks magic", f->blocks.region, 8, "\x01", 1, SLUICE_EBADMAGIC, "blocks");
	struct sluice__health_hdr *hh =
		(void *)((char *)f->hworkers - round_up_64(sizeof(struct sluice__health_hdr)));
	corrupt("health magic", hh, 8, "\x01", 1, SLUICE_EBADMAGIC, "health region");
	SET32("health.layout_version", hh->layout_version, 99, SLUICE_EVERSION, "health region");
	SET32("health.nworkers", hh->nworkers, f->nworkers + 1, C, "health region");
	SET32("health.worker_size", hh->worker_size, 64, C, "health region");
	SET64("health.clients_off", hh->clients_off, hh->clients_off + 64, C, "health region");

	/* Everything restored: it opens again. */
	CHECK_OK(sluice__flow_open_arena(att, &g, err, sizeof(err)));
	check_same(g);
	sluice_flow_destroy(g);
	sluice_flow_destroy(f);
	printf("%u corruptions refused\nok\n", ncases);
	return TEST_PASS;
}
