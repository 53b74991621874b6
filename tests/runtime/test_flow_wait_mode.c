/* Wait modes: sluice_step_t.wait / spin_ns (how a step's workers wait for
 * tasks) and sluice_flow_opts_t.client_wait / client_spin_ns (how
 * sluice_task_wait waits for a completion).
 *
 * 1. Validation: a mode out of range, a spin with a mode that does not
 *    spin, a spin over SLUICE_FLOW_MAX_SPIN_NS are refused with
 *    SLUICE_EINVAL and a message naming the field (steps[i].wait,
 *    steps[i].spin_ns, client_wait, client_spin_ns); good ones are stored
 *    with their defaults in the step record and the handle.
 * 2. Per mode (the default, SPIN_SLEEP with a 1 us spin, SLEEP, BUSY_POLL;
 *    the same for both steps and the client), a 2-step flow gives every
 *    task its right result, one task at a time and many in flight.
 * 3. The mode is the one that runs: the voluntary context switches
 *    (/proc/PID/status) of an idle worker, and of the client inside
 *    sluice_task_wait, while tasks come 5 ms apart / take 5 ms. A sleeping
 *    mode sleeps for each (counted: at least half of them); busy-poll
 *    never sleeps (sched_yield is an involuntary switch): at most 2.
 * 4. The supervisor SIGKILLed while a task hangs: a wait without a timeout
 *    returns SLUICE_ESUPERVISOR in every mode (busy-poll looks at the
 *    supervisor's pidfd every 10 ms; the others sleep on it too).
 *
 * usage: test_flow_wait_mode [TASKS] (default 500; divided by
 * SLUICE_TEST_SLOWDOWN). */
#include "runtime/flow_test.h"

#define SLEEPY UINT64_C(0x8000000000000000) /* payload bit: step 0 sleeps 5 ms */
#define HANG UINT64_C(0x4000000000000000)   /* payload bit: step 0 sleeps 60 s */
#define GAP_US 5000u
#define NGAPS 10u

/* Step 0: result = v + 1 (a new block); 5 ms first for a SLEEPY task. */
static int h_add(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = test_payload_u64(&items[i]);
		if (v & SLEEPY)
			usleep(GAP_US);
		if (v & HANG)
			sleep(60);
		if (!test_result_u64(&items[i], (v & ~SLEEPY) + 1))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

/* Step 1: result *= 2, in place. */
static int h_double(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t r;
		if (items[i].result == NULL || items[i].result_len != sizeof(r)) {
			sluice_item_fail(&items[i], "no result from step 0");
			continue;
		}
		memcpy(&r, items[i].result, sizeof(r));
		r *= 2;
		memcpy(items[i].result, &r, sizeof(r));
	}
	return 0;
}

static sluice_step_t steps[2];
static sluice_flow_opts_t opts;

static void reset(void)
{
	steps[0] = test_step("add", h_add, 1, 8);
	steps[1] = test_step("double", h_double, 1, 8);
	opts = (sluice_flow_opts_t){.size_of = sizeof(opts), .name = "wait-mode", .flags = SLUICE_FLOW_UNLISTED, .nsteps = 2,
				    .steps = steps, .max_tasks = 256, .stop_grace_ns = 2 * SEC};
}

static void expect_bad(const char *why, const char *want)
{
	char err[256] = "untouched";
	sluice_flow_t *f = (sluice_flow_t *)0x1;
	int rc = sluice_flow_create(&opts, &f, err, sizeof(err));
	if (rc != SLUICE_EINVAL || f != NULL || strstr(err, want) == NULL) {
		fprintf(stderr, "FAIL %s: rc %s, message '%s', want '%s'\n", why,
			sluice_err_name(rc), err, want);
		exit(TEST_FAIL);
	}
	printf("%-24s -> %s\n", why, err);
}

static sluice_flow_t *create(void)
{
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&opts, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: create: %s: %s\n", sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	return f;
}

static void test_validation(void)
{
	reset();
	steps[1].wait = 7;
	expect_bad("wait 7", "steps[1].wait");
	reset();
	steps[0].wait = SLUICE_RING_BUSY_POLL + 1;
	expect_bad("wait BUSY_POLL + 1", "steps[0].wait");
	reset();
	steps[0].wait = SLUICE_RING_BUSY_POLL;
	steps[0].spin_ns = 1000;
	expect_bad("busy-poll with a spin", "steps[0].spin_ns");
	reset();
	steps[1].wait = SLUICE_RING_SLEEP;
	steps[1].spin_ns = 1;
	expect_bad("sleep with a spin", "steps[1].spin_ns");
	reset();
	steps[1].spin_ns = SLUICE_FLOW_MAX_SPIN_NS + 1;
	expect_bad("spin too long", "steps[1].spin_ns");
	reset();
	opts.client_wait = 4;
	expect_bad("client_wait 4", "client_wait");
	reset();
	opts.client_wait = SLUICE_RING_BUSY_POLL;
	opts.client_spin_ns = 5;
	expect_bad("client busy with a spin", "client_spin_ns");
	reset();
	opts.client_spin_ns = SLUICE_FLOW_MAX_SPIN_NS + 1;
	expect_bad("client spin too long", "client_spin_ns");

	/* Good ones, with their defaults. */
	reset();
	steps[1].wait = SLUICE_RING_BUSY_POLL;
	opts.client_wait = SLUICE_RING_SPIN_SLEEP;
	opts.client_spin_ns = SLUICE_FLOW_MAX_SPIN_NS;
	sluice_flow_t *f = create();
	CHECK(f->steps[0].wait == SLUICE_RING_SPIN_SLEEP);
	CHECK(f->steps[0].spin_ns == SLUICE_RING_SPIN_NS_DEFAULT);
	CHECK(f->step_recs[0].wait == SLUICE_RING_SPIN_SLEEP);
	CHECK(f->step_recs[0].spin_ns == SLUICE_RING_SPIN_NS_DEFAULT);
	CHECK(f->steps[1].wait == SLUICE_RING_BUSY_POLL && f->steps[1].spin_ns == 0);
	CHECK(f->step_recs[1].wait == SLUICE_RING_BUSY_POLL && f->step_recs[1].spin_ns == 0);
	CHECK(f->client_wait == SLUICE_RING_SPIN_SLEEP);
	CHECK(f->client_spin_ns == SLUICE_FLOW_MAX_SPIN_NS);
	sluice_flow_destroy(f);
	reset();
	opts.client_wait = SLUICE_RING_SLEEP;
	steps[0].wait = SLUICE_RING_SPIN_SLEEP;
	steps[0].spin_ns = 1234;
	f = create();
	CHECK(f->steps[0].wait == SLUICE_RING_SPIN_SLEEP && f->steps[0].spin_ns == 1234);
	CHECK(f->step_recs[0].spin_ns == 1234);
	CHECK(f->client_wait == SLUICE_RING_SLEEP && f->client_spin_ns == 0);
	sluice_flow_destroy(f);
}

static void check_done(sluice_task_t *t, uint64_t v)
{
	if (t->status != SLUICE_TASK_OK) {
		fprintf(stderr, "FAIL: task %llu: %s: %s\n", (unsigned long long)v,
			sluice_task_status_name(t->status), t->message);
		exit(TEST_FAIL);
	}
	CHECK(test_task_result_u64(t) == ((v & ~SLEEPY) + 1) * 2);
}

/* voluntary_ctxt_switches of process `pid` (0: this one). */
static uint64_t voluntary_switches(pid_t pid)
{
	char path[64], line[256];
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *fp = fopen(path, "r");
	CHECK(fp != NULL);
	uint64_t v = UINT64_MAX;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "voluntary_ctxt_switches: %" SCNu64, &v) == 1)
			break;
	fclose(fp);
	CHECK(v != UINT64_MAX);
	return v;
}

struct mode {
	const char *name;
	uint32_t wait;
	uint64_t spin_ns;
	bool sleeps;
};

static void test_mode(const struct mode *m, uint64_t ntasks)
{
	reset();
	for (int s = 0; s < 2; s++) {
		steps[s].wait = m->wait;
		steps[s].spin_ns = m->spin_ns;
	}
	opts.client_wait = m->wait;
	opts.client_spin_ns = m->spin_ns;
	sluice_flow_t *f = create();
	test_start(f);

	/* One at a time. */
	for (uint64_t v = 0; v < ntasks; v++) {
		sluice_task_t *t = test_task_u64(f, v);
		CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
		test_wait_task(f, t);
		check_done(t, v);
		CHECK_OK(sluice_task_release(f, t));
	}
	/* Many in flight: submit_many in chunks, then wait for each. */
	for (uint64_t base = 0; base < ntasks; base += 128) {
		sluice_task_t *t[128];
		unsigned n = ntasks - base < 128 ? (unsigned)(ntasks - base) : 128;
		for (unsigned i = 0; i < n; i++)
			t[i] = test_task_u64(f, 1000000 + base + i);
		CHECK_RC(sluice_task_submit_many(f, t, n, 10 * SEC), (int)n);
		for (unsigned i = 0; i < n; i++) {
			test_wait_task(f, t[i]);
			check_done(t[i], 1000000 + base + i);
			CHECK_OK(sluice_task_release(f, t[i]));
		}
	}

	/* The worker of step 0 while tasks come GAP_US apart. */
	pid_t w0 = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	CHECK(w0 > 0);
	uint64_t before = voluntary_switches(w0);
	for (uint64_t v = 0; v < NGAPS; v++) {
		usleep(GAP_US);
		sluice_task_t *t = test_task_u64(f, v);
		CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
		test_wait_task(f, t);
		check_done(t, v);
		CHECK_OK(sluice_task_release(f, t));
	}
	uint64_t worker_sw = voluntary_switches(w0) - before;

	/* The client inside wait, for tasks that take GAP_US at step 0. */
	uint64_t client_sw = 0;
	for (uint64_t v = 0; v < NGAPS; v++) {
		sluice_task_t *t = test_task_u64(f, v | SLEEPY);
		CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
		uint64_t b = voluntary_switches(0);
		test_wait_task(f, t);
		client_sw += voluntary_switches(0) - b;
		check_done(t, v | SLEEPY);
		CHECK_OK(sluice_task_release(f, t));
	}
	printf("%-22s %llu tasks x 2 OK; voluntary switches over %u gaps: worker %llu, "
	       "client in wait %llu\n",
	       m->name, (unsigned long long)ntasks, NGAPS, (unsigned long long)worker_sw,
	       (unsigned long long)client_sw);
	if (m->sleeps) {
		CHECK(worker_sw >= NGAPS / 2);
		CHECK(client_sw >= NGAPS / 2);
	} else {
		CHECK(worker_sw <= 2);
		CHECK(client_sw <= 2);
	}

	/* The supervisor dies while the client waits for a hung task. */
	sluice_task_t *t = test_task_u64(f, HANG);
	CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
	CHECK_RC(sluice_task_wait(f, t, 20 * MSEC), SLUICE_ETIMEDOUT);
	CHECK(kill((pid_t)sluice_flow_supervisor_pid(f), SIGKILL) == 0);
	CHECK_RC(sluice_task_wait(f, t, SLUICE_FLOW_FOREVER), SLUICE_ESUPERVISOR);
	CHECK_RC(sluice_flow_stop(f, 10 * SEC), SLUICE_ESUPERVISOR);
	CHECK_OK(sluice_task_wait(f, t, 0)); /* completed by stop */
	CHECK(t->status == SLUICE_TASK_FLOW_STOPPED);
	CHECK_OK(sluice_task_release(f, t));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
}

int main(int argc, char **argv)
{
	uint64_t ntasks = test_arg_u64(argc, argv, 1, 500) / test_slowdown();
	if (ntasks == 0)
		ntasks = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);

	test_validation();

	static const struct mode modes[] = {
		{"default (0)", 0, 0, true},
		{"SPIN_SLEEP, 1 us spin", SLUICE_RING_SPIN_SLEEP, 1000, true},
		{"SLEEP", SLUICE_RING_SLEEP, 0, true},
		{"BUSY_POLL", SLUICE_RING_BUSY_POLL, 0, false},
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		test_mode(&modes[i], ntasks);
	printf("PASS\n");
	return TEST_PASS;
}
