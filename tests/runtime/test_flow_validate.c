/* Flow definitions: every bad option is refused with SLUICE_EINVAL and a
 * message naming the field; a good one creates an arena and no process. */
#include "runtime/flow_test.h"

static int noop(void *arg, sluice_item_t *items, unsigned n)
{
	return 0;
}

static sluice_step_t steps[SLUICE_FLOW_MAX_STEPS + 1];
static sluice_flow_opts_t opts;

static void reset(uint32_t nsteps)
{
	static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
				      "j", "k", "l", "m", "n", "o", "p", "q"};
	for (uint32_t i = 0; i < SLUICE_FLOW_MAX_STEPS + 1; i++)
		steps[i] = test_step(names[i], noop, 1, 4);
	opts = (sluice_flow_opts_t){.size_of = sizeof(opts), .name = "validate",
				    .flags = SLUICE_FLOW_UNLISTED, .nsteps = nsteps, .steps = steps,
				    .max_tasks = 64};
}

/* Creation fails with EINVAL, *out stays NULL, and the message contains
 * every one of the given words. */
static void expect_bad(const char *why, const char *want1, const char *want2)
{
	char err[256] = "untouched";
	sluice_flow_t *f = (sluice_flow_t *)0x1;
	int rc = sluice_flow_create(&opts, &f, err, sizeof(err));
	if (rc != SLUICE_EINVAL || f != NULL || strstr(err, want1) == NULL ||
	    (want2 && strstr(err, want2) == NULL)) {
		fprintf(stderr, "FAIL %s: rc %s, message '%s', want '%s'%s%s\n", why,
			sluice_err_name(rc), err, want1, want2 ? " and " : "", want2 ? want2 : "");
		exit(TEST_FAIL);
	}
	printf("%-28s -> %s\n", why, err);
}

int main(void)
{
	char err[256];
	sluice_flow_t *f = NULL;

	CHECK_RC(sluice_flow_create(NULL, &f, err, sizeof(err)), SLUICE_EINVAL);
	CHECK(strstr(err, "opts") != NULL);

	reset(3);
	opts.size_of = 8;
	expect_bad("opts.size_of", "opts.size_of", NULL);

	reset(0);
	expect_bad("no steps", "nsteps", "got 0");
	reset(SLUICE_FLOW_MAX_STEPS + 1);
	expect_bad("too many steps", "nsteps", "got 17");
	reset(3);
	opts.steps = NULL;
	expect_bad("steps NULL", "steps", NULL);

	reset(3);
	steps[1].nprocs = 0;
	expect_bad("nprocs 0", "steps[1].nprocs", "got 0");
	reset(3);
	steps[2].nprocs = SLUICE_STEP_MAX_NPROCS + 1;
	expect_bad("nprocs too big", "steps[2].nprocs", NULL);
	reset(8);
	for (int i = 0; i < 5; i++)
		steps[i].nprocs = SLUICE_STEP_MAX_NPROCS;
	expect_bad("too many workers", "steps[4].nprocs", "more than 1024");

	reset(3);
	steps[0].batch_size = 0;
	expect_bad("batch_size 0", "steps[0].batch_size", "got 0");
	reset(3);
	steps[1].batch_size = SLUICE_STEP_MAX_BATCH + 1;
	expect_bad("batch_size too big", "steps[1].batch_size", NULL);

	reset(3);
	steps[0].capacity = 1000;
	expect_bad("capacity not pow2", "steps[0].capacity", "power of two");
	reset(3);
	steps[2].capacity = 1;
	expect_bad("capacity 1", "steps[2].capacity", NULL);
	reset(3);
	steps[1].capacity = 1u << 25;
	expect_bad("capacity too big", "steps[1].capacity", NULL);
	/* Each lane legal, but lanes x capacity x 64 bytes impossible. */
	reset(2);
	steps[0].nprocs = 200;
	steps[0].capacity = 1u << 24;
	expect_bad("capacity x lanes", "steps[0].capacity", "bytes");

	reset(3);
	steps[1].name = "";
	expect_bad("empty name", "steps[1].name", "empty");
	reset(3);
	steps[1].name = NULL;
	expect_bad("NULL name", "steps[1].name", NULL);
	reset(3);
	steps[2].name = "a";
	expect_bad("duplicate name", "steps[2].name", "steps[0]");
	reset(3);
	steps[0].name = "a-name-that-is-far-too-long-for-a-step";
	expect_bad("long name", "steps[0].name", "longer");

	reset(3);
	steps[1].handler.handle = NULL;
	expect_bad("no handle()", "steps[1].handler.handle", NULL);
	reset(3);
	steps[1].max_attempts = 300;
	expect_bad("max_attempts", "steps[1].max_attempts", NULL);
	reset(3);
	steps[1].size_of = sizeof(sluice_step_t) - 8;
	expect_bad("step size_of", "steps[1].size_of", NULL);
	reset(3);
	opts.max_tasks = SLUICE_FLOW_MAX_TASKS + 1;
	expect_bad("max_tasks", "max_tasks", NULL);
	reset(3);
	opts.flags = 0x80;
	expect_bad("flags", "flags", NULL);
	/* A listed flow's name names its control socket (docs/ATTACH.md). */
	reset(3);
	opts.flags = 0;
	opts.name = "../escape";
	expect_bad("listed name", "name:", "SLUICE_FLOW_UNLISTED");
	reset(3);
	opts.max_clients = SLUICE_FLOW_MAX_CLIENTS + 1;
	expect_bad("max_clients", "max_clients", "got 65");
	reset(3);
	opts.max_clients = 65 - 1;
	opts.max_tasks = 63;
	expect_bad("max_tasks < max_clients", "max_tasks", "64 client slots");
	reset(3);
	opts.block_budget = 16;
	expect_bad("block_budget", "block_budget", NULL);

	/* A NULL message buffer is allowed. */
	reset(3);
	steps[0].nprocs = 0;
	CHECK_RC(sluice_flow_create(&opts, &f, NULL, 0), SLUICE_EINVAL);

	/* A good definition: an arena, no process. */
	reset(3);
	steps[0].capacity = 0; /* default */
	steps[1].capacity = 2;
	CHECK_OK(sluice_flow_create(&opts, &f, err, sizeof(err)));
	CHECK(f != NULL && err[0] == '\0');
	CHECK(sluice_flow_supervisor_pid(f) == 0);
	CHECK(sluice_flow_worker_pid(f, 0, 0) == 0);
	CHECK(sluice_flow_worker_pid(f, 3, 0) == SLUICE_EINVAL);
	CHECK(sluice_flow_eventfd(f) >= 0);
	sluice_step_stats_t st;
	CHECK_OK(sluice_flow_step_stats(f, 2, &st));
	CHECK(st.workers == 1 && st.workers_live == 0 && st.tasks == 0);
	CHECK_RC(sluice_flow_step_stats(f, 3, &st), SLUICE_EINVAL);
	/* Not started: tasks can be allocated and released, not submitted. */
	sluice_task_t *t = NULL;
	CHECK_OK(sluice_task_alloc(f, 100, &t));
	CHECK(t->payload != NULL && t->payload_cap >= 100);
	CHECK_RC(sluice_task_submit(f, t, 0), SLUICE_ESTOPPED);
	CHECK_RC(sluice_task_wait(f, t, 0), SLUICE_EINVAL);
	CHECK_OK(sluice_task_release(f, t));
	CHECK_RC(sluice_task_release(f, t), SLUICE_EINVAL);
	/* Every entry can be taken, then none. */
	sluice_task_t *all[64];
	for (int i = 0; i < 64; i++)
		CHECK_OK(sluice_task_alloc(f, 0, &all[i]));
	CHECK_RC(sluice_task_alloc(f, 0, &t), SLUICE_EAGAIN);
	for (int i = 0; i < 64; i++)
		CHECK_OK(sluice_task_release(f, all[i]));
	CHECK(test_blocks_in_use(f) == 0);
	CHECK_RC(sluice_task_alloc(f, UINT64_C(1) << 40, &t), SLUICE_E2BIG);
	CHECK_OK(sluice_flow_stop(f, 0)); /* never started: nothing to stop */
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
