/* Attaching by name: 8 processes forked after start (the pre-fork
 * pattern) attach and submit at once beside the creator, each gets exactly
 * its own results; a full client table, no such flow, a second live flow
 * of the same name, a stale socket left by a killed supervisor; an
 * observer's read-only attach: its snapshot sees the work, its mapping
 * cannot be written (a write faults, mprotect refuses); start and stop
 * refused on an attached handle; a detached client's slot comes back. */
#include "runtime/flow_test.h"

#include <sys/mman.h>

#define NCLIENTS 8
#define PER_CLIENT 20000u

static int h_triple(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		if (!test_result_u64(&items[k], test_payload_u64(&items[k]) * 3))
			sluice_item_fail(&items[k], "no block");
	return 0;
}

static char name[64];

static sluice_flow_t *make(const char *nm, uint32_t max_clients)
{
	static sluice_step_t steps[1];
	steps[0] = test_step("triple", h_triple, 2, 16);
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = nm, .nsteps = 1, .steps = steps,
				.max_tasks = 1024 * max_clients, .max_clients = max_clients,
				.stop_grace_ns = 2 * SEC};
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: create: %s: %s\n", sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	return f;
}

/* Submits n tasks tagged `tag` in windows of 64 and checks that every
 * task reap hands back is one of ours, with the right result. */
static void work(sluice_flow_t *f, uint64_t tag, unsigned n)
{
	sluice_task_t *t[64], *got[64];
	unsigned done = 0;
	while (done < n) {
		unsigned m = n - done < 64 ? n - done : 64;
		for (unsigned i = 0; i < m; i++)
			t[i] = test_task_u64(f, tag << 40 | (done + i));
		CHECK_RC(sluice_task_submit_many(f, t, m, 30 * SEC), (int)m);
		unsigned back = 0;
		while (back < m) {
			CHECK_OK(sluice_task_wait(f, t[back], 30 * SEC * test_slowdown()));
			int k = sluice_flow_reap(f, got, 64);
			CHECK(k >= 0);
			for (unsigned i = 0; i < m; i++)
				if (t[i]->status != SLUICE_TASK_OK && i == back) {
					fprintf(stderr, "FAIL: %s\\n", t[i]->message);
					exit(TEST_FAIL);
				}
			back++;
		}
		for (unsigned i = 0; i < m; i++) {
			CHECK(t[i]->status == SLUICE_TASK_OK);
			CHECK(t[i]->user >> 40 == tag);
			CHECK(test_task_result_u64(t[i]) == (tag << 40 | (done + i)) * 3);
			CHECK_OK(sluice_task_release(f, t[i]));
		}
		done += m;
	}
}

static sluice_flow_t *attach_or_die(const char *nm, uint32_t flags)
{
	char err[256];
	sluice_flow_t *g = NULL;
	int rc = sluice_flow_attach(nm, flags, 10 * SEC, &g, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: attach: %s: %s\n", sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	return g;
}

static void many_clients(void)
{
	sluice_flow_t *f = make(name, NCLIENTS + 1);
	test_start(f);
	unsigned per = PER_CLIENT / test_slowdown();
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t kids[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			close(go[1]);
			sluice_flow_t *g = attach_or_die(name, 0);
			char c;
			(void)!read(go[0], &c, 1); /* all attached: go together */
			work(g, (uint64_t)i + 1, per);
			sluice_flow_destroy(g);
			_exit(0);
		}
	}
	close(go[0]);
	/* Every slot taken: one more is refused, clearly. */
	TEST_WAIT_FOR(({
		unsigned n = 0;
		for (uint32_t c = 1; c < f->nclients; c++)
			n += atomic_load(&f->cslots[c].pid) != 0;
		n == NCLIENTS;
	}), 30, "8 clients attached");
	char err[256];
	sluice_flow_t *x = NULL;
	CHECK_RC(sluice_flow_attach(name, 0, 10 * SEC, &x, err, sizeof(err)), SLUICE_EUSERS);
	printf("9th client: %s\n", err);
	CHECK(strstr(err, "client table full") != NULL);
	/* An observer needs no slot. */
	sluice_flow_t *obs = attach_or_die(name, SLUICE_ATTACH_READ_ONLY);
	close(go[1]); /* go */
	work(f, 100, per);
	for (int i = 0; i < NCLIENTS; i++) {
		int st;
		CHECK(waitpid(kids[i], &st, 0) == kids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* The observer's snapshot sees all of it. */
	sluice_flow_snapshot_t *s = NULL;
	CHECK_OK(sluice_flow_snapshot_create(obs, &s));
	CHECK_OK(sluice_flow_snapshot_take(obs, s));
	CHECK(s->submitted == (uint64_t)(NCLIENTS + 1) * per);
	CHECK(s->completed[SLUICE_TASK_OK] == (uint64_t)(NCLIENTS + 1) * per);
	sluice_flow_snapshot_destroy(s);
	/* Its tasks calls are refused; it cannot start or stop the flow. */
	sluice_task_t *t = NULL;
	CHECK_RC(sluice_task_alloc(obs, 8, &t), SLUICE_EINVAL);
	CHECK_RC(sluice_flow_start(obs, SEC), SLUICE_EINVAL);
	CHECK_RC(sluice_flow_stop(obs, SEC), SLUICE_EPERM);
	/* Its mapping cannot be written: a write faults... */
	pid_t w = fork();
	CHECK(w >= 0);
	if (w == 0) {
		signal(SIGSEGV, SIG_DFL); /* sanitizers catch SEGV; we want the kernel's verdict */
		atomic_store((_Atomic uint32_t *)&obs->hdr->magic, 0);
		_exit(0);
	}
	int st;
	CHECK(waitpid(w, &st, 0) == w);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	/* ... and cannot be made writable. */
	void *page = (void *)((uintptr_t)obs->hdr & ~(uintptr_t)4095);
	CHECK(mprotect(page, 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
	sluice_flow_destroy(obs);

	/* The detached clients' slots come back; a new client gets one. */
	TEST_WAIT_FOR(({
		unsigned n = 0;
		for (uint32_t c = 1; c < f->nclients; c++)
			n += atomic_load(&f->cslots[c].pid) != 0;
		n == 0;
	}), 30, "every slot back");
	sluice_flow_t *g = attach_or_die(name, 0);
	work(g, 200, 100);
	sluice_flow_destroy(g);

	/* A second live flow of the same name cannot start. */
	sluice_flow_t *twin = make(name, 2);
	CHECK_RC(sluice_flow_start(twin, 10 * SEC), SLUICE_EEXIST);
	printf("twin: %s\n", sluice_flow_error(twin));
	sluice_flow_destroy(twin);

	test_stop_clean(f);
	/* Gone with its flow: the name is free. */
	CHECK_RC(sluice_flow_attach(name, 0, SEC, &x, err, sizeof(err)), SLUICE_ENOENT);
	printf("after stop: %s\n", err);
}

/* A supervisor killed leaves its socket behind: the next flow of that
 * name replaces it. */
static void stale_socket(void)
{
	sluice_flow_t *f = make(name, 2);
	test_start(f);
	pid_t sup = (pid_t)sluice_flow_supervisor_pid(f);
	CHECK(kill(sup, SIGKILL) == 0);
	CHECK_RC(sluice_flow_stop(f, SEC), SLUICE_ESUPERVISOR);
	sluice_flow_destroy(f);
	char err[256];
	sluice_flow_t *x = NULL;
	CHECK_RC(sluice_flow_attach(name, 0, SEC, &x, err, sizeof(err)), SLUICE_ENOENT);
	f = make(name, 2);
	test_start(f);
	sluice_flow_t *g = attach_or_die(name, 0);
	work(g, 7, 100);
	sluice_flow_destroy(g);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	sluice_flow_destroy(f);
}

int main(void)
{
	snprintf(name, sizeof(name), "attach-test-%d", (int)getpid());
	char err[256];
	sluice_flow_t *x = NULL;
	CHECK_RC(sluice_flow_attach(name, 0, SEC, &x, err, sizeof(err)), SLUICE_ENOENT);
	printf("no such flow: %s\n", err);
	many_clients();
	stale_socket();
	printf("ok\n");
	return TEST_PASS;
}
