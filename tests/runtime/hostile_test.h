/* The hostile-client tests' common ground (docs/SECURITY.md): a listed
 * flow under a name of its own, well-behaved clients that keep submitting
 * and checking every result, and a hostile client in another process that
 * attaches like any client and then does its damage through the real
 * mapping of the arena.
 *
 * The flow: step "triple" makes a new result block holding 3x for a
 * payload x, step "mark" adds 1 to it in place; a task's result is 3x + 1.
 * Every task a good client submits carries its own tag and sequence number
 * in x, so a result that is wrong, late, lost or someone else's is caught.
 */
#ifndef SLUICE_TESTS_RUNTIME_HOSTILE_TEST_H
#define SLUICE_TESTS_RUNTIME_HOSTILE_TEST_H

#include "runtime/flow_test.h"

#include <sys/prctl.h>

#define H_WINDOW 16u /* tasks per round of a good client */

static int h_triple(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	for (unsigned k = 0; k < n; k++)
		if (!test_result_u64(&items[k], test_payload_u64(&items[k]) * 3))
			sluice_item_fail(&items[k], "no block");
	return 0;
}

static int h_mark(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	for (unsigned k = 0; k < n; k++) {
		sluice_item_t *it = &items[k];
		uint64_t r;
		if (it->result == NULL || it->result_len != sizeof(r)) {
			sluice_item_fail(it, "mark: no result from triple");
			continue;
		}
		memcpy(&r, it->result, sizeof(r));
		r += 1;
		memcpy(it->result, &r, sizeof(r));
	}
	return 0;
}

static char h_name[64];

/* Creates and starts the flow "hostile-TAG-PID": two steps of two workers,
 * max_clients client slots, 256 task entries each. `tweak` (may be NULL)
 * adjusts the options before create. */
static sluice_flow_t *h_flow(const char *tag, uint32_t max_clients,
			     void (*tweak)(sluice_flow_opts_t *o, sluice_step_t *steps))
{
	static sluice_step_t steps[2];
	steps[0] = test_step("triple", h_triple, 2, 8);
	steps[1] = test_step("mark", h_mark, 2, 8);
	snprintf(h_name, sizeof(h_name), "hostile-%s-%d", tag, (int)getpid());
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = h_name, .nsteps = 2, .steps = steps,
				.max_tasks = 256 * max_clients, .max_clients = max_clients,
				.stop_grace_ns = 2 * SEC};
	if (tweak != NULL)
		tweak(&o, steps);
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: create %s: %s: %s\n", h_name, sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	test_start(f);
	return f;
}

/* Attaches to the flow as a client (or an observer), failing the test if
 * it cannot. */
static sluice_flow_t *h_attach(uint32_t flags)
{
	char err[256];
	sluice_flow_t *g = NULL;
	int rc = sluice_flow_attach(h_name, flags, 20 * SEC * test_slowdown(), &g, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: attach %s: %s: %s\n", h_name, sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	return g;
}

/* One round of a well-behaved client: H_WINDOW tasks tagged `tag`,
 * submitted together, each waited for; every one must come back OK with
 * 3x + 1 and its own user value. Fails the test (exits) otherwise. */
static void h_good_round(sluice_flow_t *f, uint32_t tag, uint64_t *seq)
{
	sluice_task_t *t[H_WINDOW];
	for (unsigned i = 0; i < H_WINDOW; i++) {
		uint64_t x = (uint64_t)tag << 40 | (*seq)++;
		int rc;
		/* The allocator is shared: a hostile client may hold every
		 * block for a moment (the exhaustion test); wait for one. */
		uint64_t until = test_now_ns() + 30 * SEC * test_slowdown();
		while ((rc = sluice_task_alloc(f, sizeof(x), &t[i])) == SLUICE_ENOSPC &&
		       test_now_ns() < until)
			usleep(1000);
		CHECK_OK(rc);
		memcpy(t[i]->payload, &x, sizeof(x));
		t[i]->payload_len = sizeof(x);
		t[i]->user = x;
	}
	CHECK_RC(sluice_task_submit_many(f, t, H_WINDOW, 30 * SEC * test_slowdown()), (int)H_WINDOW);
	for (unsigned i = 0; i < H_WINDOW; i++) {
		test_wait_task(f, t[i]);
		uint64_t x = t[i]->user, r = 0;
		if (t[i]->status != SLUICE_TASK_OK || t[i]->result == NULL ||
		    t[i]->result_len != sizeof(r) || (memcpy(&r, t[i]->result, sizeof(r)), r) != 3 * x + 1 ||
		    x >> 40 != tag || t[i]->message[0] != '\0') {
			fprintf(stderr, "FAIL: good client %u: task %llu: %s '%s', result %llu\n", tag,
				(unsigned long long)(x & 0xffffffffffu),
				sluice_task_status_name(t[i]->status), t[i]->message,
				(unsigned long long)r);
			exit(TEST_FAIL);
		}
		CHECK_OK(sluice_task_release(f, t[i]));
	}
}

/* A well-behaved attached client in a child process: attaches, then runs
 * rounds until `stop_rd` reads as closed, then one more, detaches and
 * exits 0 (any wrong result fails it). */
static pid_t h_spawn_good(int stop_rd, int stop_wr, uint32_t tag)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid != 0)
		return pid;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(TEST_FAIL);
	close(stop_wr);
	sluice_flow_t *g = h_attach(0);
	uint64_t seq = 0;
	for (;;) {
		h_good_round(g, tag, &seq);
		struct pollfd p = {.fd = stop_rd, .events = POLLIN};
		if (poll(&p, 1, 0) != 0)
			break;
	}
	h_good_round(g, tag, &seq);
	printf("good client %u: %llu tasks, all right\n", tag, (unsigned long long)seq);
	sluice_flow_destroy(g);
	_exit(0);
}

/* A hostile client in a child process: attaches and runs fn on its handle;
 * the child's exit code is fn's (0: it saw what it expected). It dies
 * with the test. */
static pid_t h_spawn_hostile(int (*fn)(sluice_flow_t *g, void *arg), void *arg)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid != 0)
		return pid;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(TEST_FAIL);
	sluice_flow_t *g = h_attach(0);
	int rc = fn(g, arg);
	fflush(stdout);
	/* No detach: a hostile client just goes (its slot is drained). */
	_exit(rc);
}

/* Runs good rounds on the creator's handle until child `pid` has exited;
 * returns its test_wait status. */
static int h_good_while(sluice_flow_t *f, pid_t pid, uint32_t tag, uint64_t *seq)
{
	for (;;) {
		h_good_round(f, tag, seq);
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		CHECK(r >= 0);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

/* Attach in a child (attaching is for a fresh process); returns its code
 * and message. */
static int h_attach_code(uint64_t timeout_ns, char *err, size_t len)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		char e[256] = "";
		sluice_flow_t *g = NULL;
		int rc = sluice_flow_attach(h_name, 0, timeout_ns, &g, e, sizeof(e));
		if (rc == 0)
			sluice_flow_destroy(g);
		CHECK(write(p[1], &rc, sizeof(rc)) == sizeof(rc));
		CHECK(write(p[1], e, sizeof(e)) == sizeof(e));
		_exit(0);
	}
	close(p[1]);
	int rc = 1;
	char e[256];
	CHECK(read(p[0], &rc, sizeof(rc)) == sizeof(rc));
	CHECK(read(p[0], e, sizeof(e)) == sizeof(e));
	close(p[0]);
	CHECK(test_wait(pid) == 0);
	snprintf(err, len, "%s", e);
	return rc;
}

/* n new clients attach at once (n slots free: all of them taken, the
 * slot a hostile client had among them), and each gets every result of
 * its rounds right, while the creator goes on too. */
static void h_new_clients_work(sluice_flow_t *f, unsigned n, uint32_t tag, uint64_t *seq)
{
	int ready[2], go[2];
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	pid_t parent = getpid(), pid[SLUICE_FLOW_MAX_CLIENTS];
	for (unsigned k = 0; k < n; k++) {
		pid[k] = fork();
		CHECK(pid[k] >= 0);
		if (pid[k] != 0)
			continue;
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(TEST_FAIL);
		close(ready[0]);
		close(go[1]);
		sluice_flow_t *g = h_attach(0);
		char c = 'r';
		CHECK(write(ready[1], &c, 1) == 1);
		CHECK(read(go[0], &c, 1) == 0); /* everyone attached */
		uint64_t s = 0;
		for (int i = 0; i < 4; i++)
			h_good_round(g, tag + k, &s);
		sluice_flow_destroy(g);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	for (unsigned k = 0; k < n; k++) {
		char c;
		CHECK(read(ready[0], &c, 1) == 1);
	}
	close(ready[0]);
	close(go[1]);
	for (unsigned k = 0; k < n; k++)
		CHECK(h_good_while(f, pid[k], 0, seq) == 0);
}

/* One new client attaches and works. */
static void h_new_client_works(sluice_flow_t *f, uint32_t tag, uint64_t *seq)
{
	h_new_clients_work(f, 1, tag, seq);
}

/* The pids of every worker slot's process, to tell later that none died. */
static void h_worker_pids(const sluice_flow_t *f, pid_t *out)
{
	for (uint32_t w = 0; w < f->nworkers; w++)
		out[w] = (pid_t)atomic_load(&f->wslots[w].pid);
}

/* Nothing of the flow died: the supervisor runs, every worker is the
 * process it was, no step counted a death or a restart. */
static void h_check_intact(sluice_flow_t *f, const pid_t *before)
{
	CHECK(!sluice__supervisor_gone(f));
	for (uint32_t w = 0; w < f->nworkers; w++) {
		if (atomic_load(&f->wslots[w].pid) != (uint32_t)before[w] ||
		    atomic_load(&f->wslots[w].state) != SLUICE__WS_READY) {
			fprintf(stderr, "FAIL: worker slot %u: pid %u (was %d), state %u\n", w,
				atomic_load(&f->wslots[w].pid), before[w],
				atomic_load(&f->wslots[w].state));
			exit(TEST_FAIL);
		}
	}
	for (uint32_t s = 0; s < f->nsteps; s++) {
		sluice_step_stats_t st = test_stats(f, s);
		CHECK(st.workers_live == st.workers && st.worker_deaths == 0 && st.restarts == 0);
		CHECK(st.failed == 0);
	}
}

/* Descriptors refused over every step. */
static uint64_t h_bad_descriptors(const sluice_flow_t *f)
{
	uint64_t n = 0;
	for (uint32_t s = 0; s < f->nsteps; s++)
		n += test_stats(f, s).bad_descriptors;
	return n;
}

/* Every attached client slot is free again (drained by the supervisor). */
static void h_wait_slots_free(const sluice_flow_t *f)
{
	TEST_WAIT_FOR(({
		bool all = true;
		for (uint32_t c = 1; c < f->nclients; c++)
			all &= atomic_load(&f->cslots[c].pid) == 0;
		all;
	}), 30, "every attached client slot drained");
}

/* Stops the flow; no process of it is left and no block is in use. */
static void h_stop(sluice_flow_t *f)
{
	pid_t pids[16];
	unsigned np = test_flow_pids(f, pids, 16);
	int rc = sluice_flow_stop(f, 10 * SEC * test_slowdown());
	if (rc != 0) {
		fprintf(stderr, "FAIL: stop: %s: %s\n", sluice_err_name(rc), sluice_flow_error(f));
		exit(TEST_FAIL);
	}
	test_check_gone(pids, np);
	/* Every worker left cleanly (on_stop), none had to be killed. */
	for (uint32_t w = 0; w < f->nworkers; w++)
		CHECK(atomic_load(&f->wslots[w].state) == SLUICE__WS_EXITED);
	uint64_t in_use = test_blocks_in_use(f);
	if (in_use != 0) {
		fprintf(stderr, "FAIL: %llu blocks still in use after stop\n", (unsigned long long)in_use);
		exit(TEST_FAIL);
	}
	sluice_flow_destroy(f);
}

/* A client slot's share of the task table. */
static inline uint32_t h_first(const sluice_flow_t *g, uint32_t c)
{
	return c * g->tasks_per_client;
}

#endif
