/* Exhaustion (docs/SECURITY.md): every shared resource run out, by a
 * hostile client or by the test, each giving backpressure or a clear code,
 * never a crash, and the flow recovering when the pressure drops.
 *   blocks     a client takes every block of the (one) size class: alloc
 *              says SLUICE_ENOSPC to everyone (the allocator is shared, no
 *              quotas), a task whose step finds no block for its result
 *              ends HANDLER_ERROR with the handler's message; blocks freed
 *              or the client gone (its blocks reclaimed), all is well again;
 *   entries    a client's share of the task table used up: SLUICE_EAGAIN;
 *   rings      a client fills its lanes of a step ring whose workers are
 *              held: its submit times out (SLUICE_ETIMEDOUT, the task stays
 *              its own), another client's submit is not held up (lanes are
 *              per producer), and once the workers go on everything drains
 *              and the timed-out task is submitted again;
 *   clients    the client table full: SLUICE_EUSERS "client table full";
 *              a slot comes back when a client goes;
 *   fds        a client at its RLIMIT_NOFILE: attach fails with a clear
 *              code (SLUICE_EMFILE), leaks no descriptor, costs the flow
 *              no slot; the supervisor at its limit (lowered with prlimit):
 *              an attach is refused SLUICE_EMFILE (no pidfd for the lease)
 *              or times out (accept paused), and works again once the
 *              limit is back.
 * No process of the flow dies; the good clients lose nothing. */
#include "runtime/hostile_test.h"

#include <dirent.h>
#include <sys/resource.h>

#define NBLOCKS 600u

struct report {
	_Atomic uint32_t phase; /* the hostile's */
	_Atomic uint32_t ack;   /* the test's */
	_Atomic uint32_t held;  /* blocks the hostile took */
	_Atomic uint32_t gate;  /* 1: the gate step's worker may go on */
};
static struct report *R;

static void wait_for(_Atomic uint32_t *w, uint32_t v)
{
	uint64_t until = test_now_ns() + 60 * SEC * test_slowdown();
	while (atomic_load(w) < v) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
}

/* ---- blocks, entries, the client table ----------------------------------------- */

static void one_class(sluice_flow_opts_t *o, sluice_step_t *steps)
{
	(void)steps;
	static sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = 1,
					     .classes = {{.block_size = 256, .count = NBLOCKS}}};
	o->blocks = &cfg;
}

static int hog(sluice_flow_t *g, void *arg)
{
	(void)arg;
	static sluice_block_t b[NBLOCKS];
	uint32_t n = 0;
	int rc;
	/* Every block, through the allocator directly (its own owner id). */
	while ((rc = sluice_blocks_alloc(&g->blocks, 8, SLUICE__OWNER_CLIENT(g->client), &b[n])) == 0)
		n++;
	CHECK_RC(rc, SLUICE_ENOSPC);
	sluice_task_t *t;
	CHECK_RC(sluice_task_alloc(g, 8, &t), SLUICE_ENOSPC);
	atomic_store(&R->held, n);
	atomic_store(&R->phase, 1);
	wait_for(&R->ack, 1);
	/* Half back: everyone can allocate again. */
	for (uint32_t i = n / 2; i < n; i++)
		CHECK_OK(sluice_blocks_free(&g->blocks, b[i], SLUICE__OWNER_CLIENT(g->client)));
	n /= 2;
	/* Its share of the task table used up: EAGAIN (entries hold no
	 * block here). */
	unsigned k = 0;
	while ((rc = sluice_task_alloc(g, 0, &t)) == 0)
		k++;
	CHECK_RC(rc, SLUICE_EAGAIN);
	CHECK(k == g->tasks_per_client);
	printf("hostile: %u blocks taken (ENOSPC), half given back; %u entries (EAGAIN)\n",
	       atomic_load(&R->held), k);
	atomic_store(&R->phase, 2);
	wait_for(&R->ack, 2);
	/* Every block again, and it goes without giving them back. */
	while (sluice_blocks_alloc(&g->blocks, 8, SLUICE__OWNER_CLIENT(g->client), &b[n]) == 0)
		n++;
	atomic_store(&R->phase, 3);
	wait_for(&R->ack, 3);
	return 0;
}

/* Attached client slots in use come down to `n`. */
static void wait_slots_used(const sluice_flow_t *f, unsigned n)
{
	TEST_WAIT_FOR(({
		unsigned used = 0;
		for (uint32_t c = 1; c < f->nclients; c++)
			used += atomic_load(&f->cslots[c].pid) != 0;
		used == n;
	}), 30, "the hostile client's slot drained");
}

/* A client that attaches and holds its slot until `go` closes. */
static pid_t holder(int go_rd, int go_wr)
{
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t parent = getpid(), pid = fork();
	CHECK(pid >= 0);
	if (pid != 0) {
		close(ready[1]);
		char c;
		CHECK(read(ready[0], &c, 1) == 1); /* attached */
		close(ready[0]);
		return pid;
	}
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(TEST_FAIL);
	close(go_wr);
	close(ready[0]);
	sluice_flow_t *g = h_attach(0);
	char c = 'a';
	CHECK(write(ready[1], &c, 1) == 1);
	CHECK(read(go_rd, &c, 1) == 0);
	sluice_flow_destroy(g);
	_exit(0);
}

static void blocks_and_table(void)
{
	sluice_flow_t *f = h_flow("blocks", 3, one_class);
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	sluice_task_t *pre = test_task_u64(f, 7); /* its payload block taken before the hog */

	int go[2];
	CHECK(pipe(go) == 0);
	pid_t hold = holder(go[0], go[1]);
	close(go[0]);
	pid_t bad = h_spawn_hostile(hog, NULL);

	wait_for(&R->phase, 1);
	/* No block left for anyone. */
	sluice_task_t *t;
	CHECK_RC(sluice_task_alloc(f, 8, &t), SLUICE_ENOSPC);
	/* A task that needs a result block fails with the handler's word. */
	CHECK_OK(sluice_task_submit(f, pre, 10 * SEC));
	test_wait_task(f, pre);
	printf("no block: alloc ENOSPC; a submitted task: %s '%s'\n",
	       sluice_task_status_name(pre->status), pre->message);
	CHECK(pre->status == SLUICE_TASK_HANDLER_ERROR && strstr(pre->message, "no block"));
	CHECK_OK(sluice_task_release(f, pre));
	/* The table is full too (the creator, the holder, the hog). */
	char err[256];
	CHECK_RC(h_attach_code(10 * SEC, err, sizeof(err)), SLUICE_EUSERS);
	printf("table full: %s\n", err);
	CHECK(strstr(err, "client table full") != NULL);
	atomic_store(&R->ack, 1);

	wait_for(&R->phase, 2);
	for (int i = 0; i < 20; i++)
		h_good_round(f, 0, &seq);
	atomic_store(&R->ack, 2);

	wait_for(&R->phase, 3);
	CHECK_RC(sluice_task_alloc(f, 8, &t), SLUICE_ENOSPC);
	atomic_store(&R->ack, 3);
	CHECK(test_wait(bad) == 0);
	/* It went holding every block: the supervisor reclaims them with its
	 * slot, which a new client then gets. */
	wait_slots_used(f, 1);
	h_good_round(f, 0, &seq);
	h_new_client_works(f, 2, &seq);
	close(go[1]);
	CHECK(test_wait(hold) == 0);
	h_check_intact(f, before);
	h_stop(f);
}

/* ---- rings ------------------------------------------------------------------------ */

static int h_gate(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	while (atomic_load(&R->gate) == 0)
		usleep(200);
	return h_triple(arg, items, n);
}

static void gated(sluice_flow_opts_t *o, sluice_step_t *steps)
{
	steps[0].handler.handle = h_gate;
	steps[0].nprocs = 1;
	steps[0].batch_size = 1;
	steps[0].capacity = 4; /* 3 per lane */
	o->nsteps = 1;
}

static int filler(sluice_flow_t *g, void *arg)
{
	(void)arg;
	sluice_task_t *t[16];
	unsigned n = 0;
	int rc = 0;
	for (; n < 16; n++) {
		t[n] = test_task_u64(g, 100 + n);
		rc = sluice_task_submit(g, t[n], 200 * MSEC);
		if (rc != 0)
			break;
	}
	/* One in the worker's hand at most, three on our normal lane. */
	CHECK_RC(rc, SLUICE_ETIMEDOUT);
	CHECK(n >= 3 && n <= 4);
	printf("hostile: %u submitted, the next timed out (its lane full)\n", n);
	atomic_store(&R->phase, 11);
	wait_for(&R->gate, 1);
	/* It drains: the one that timed out goes now. */
	CHECK_OK(sluice_task_submit(g, t[n], 10 * SEC));
	for (unsigned i = 0; i <= n; i++) {
		test_wait_task(g, t[i]);
		CHECK(t[i]->status == SLUICE_TASK_OK && test_task_result_u64(t[i]) == 3 * (100 + i));
		CHECK_OK(sluice_task_release(g, t[i]));
	}
	return 0;
}

static void rings(void)
{
	atomic_store(&R->gate, 0);
	atomic_store(&R->phase, 10);
	sluice_flow_t *f = h_flow("rings", 3, gated);
	pid_t bad = h_spawn_hostile(filler, NULL);
	wait_for(&R->phase, 11);
	/* Its lane is full, the worker held: our own lane still takes ours. */
	sluice_task_t *t[3];
	for (unsigned i = 0; i < 3; i++)
		t[i] = test_task_u64(f, 200 + i);
	CHECK_RC(sluice_task_submit_many(f, t, 3, 5 * SEC), 3);
	sluice_task_t *x = test_task_u64(f, 300);
	CHECK_RC(sluice_task_submit(f, x, 100 * MSEC), SLUICE_ETIMEDOUT); /* ours full too now */
	atomic_store(&R->gate, 1);
	CHECK_OK(sluice_task_submit(f, x, 10 * SEC));
	for (unsigned i = 0; i < 3; i++) {
		test_wait_task(f, t[i]);
		CHECK(t[i]->status == SLUICE_TASK_OK && test_task_result_u64(t[i]) == 3 * (200 + i));
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	test_wait_task(f, x);
	CHECK(x->status == SLUICE_TASK_OK && test_task_result_u64(x) == 900);
	CHECK_OK(sluice_task_release(f, x));
	CHECK(test_wait(bad) == 0);
	printf("rings: full lanes timed out, then drained\n");
	h_stop(f);
}

/* ---- descriptors -------------------------------------------------------------------- */

/* The open descriptors of process `pid` ("self" for 0): a bit per fd
 * below 1024; returns the count. */
static unsigned open_fds(pid_t pid, uint64_t set[16])
{
	char path[64];
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/fd");
	else
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	memset(set, 0, 16 * sizeof(uint64_t));
	DIR *d = opendir(path);
	CHECK(d != NULL);
	int self = dirfd(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (pid == 0 && fd == self)
			continue;
		CHECK(fd < 1024);
		set[fd / 64] |= UINT64_C(1) << (fd % 64);
		n++;
	}
	closedir(d);
	return n;
}

/* The RLIMIT_NOFILE that leaves exactly `spare` descriptor numbers free. */
static rlim_t limit_for(const uint64_t set[16], unsigned spare)
{
	unsigned free_below = 0;
	for (unsigned fd = 0; fd < 1024; fd++) {
		if (!(set[fd / 64] >> (fd % 64) & 1)) {
			if (free_below == spare)
				return fd;
			free_below++;
		}
	}
	CHECK(!"no such limit");
	return 0;
}

/* In a child: attach with `spare` descriptors left; every failure is a
 * clear code and leaves the descriptors as they were. Writes the code. */
static void client_at_limit(unsigned spare, int out)
{
	uint64_t set0[16], set1[16];
	open_fds(0, set0);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	struct rlimit low = {.rlim_cur = limit_for(set0, spare), .rlim_max = rl.rlim_max};
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	char err[256] = "";
	sluice_flow_t *g = NULL;
	int rc = sluice_flow_attach(h_name, 0, 10 * SEC * test_slowdown(), &g, err, sizeof(err));
	if (rc == 0) {
		sluice_flow_destroy(g);
	} else if (rc != SLUICE_EMFILE) {
		fprintf(stderr, "FAIL: attach with %u descriptors to spare: %s: %s\n", spare,
			sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	open_fds(0, set1);
	CHECK(memcmp(set0, set1, sizeof(set0)) == 0); /* nothing leaked */
	CHECK(write(out, &rc, sizeof(rc)) == sizeof(rc));
}

static void descriptors(void)
{
	sluice_flow_t *f = h_flow("fds", 3, NULL);
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);

	/* A client at its limit: fails, cleanly, until it has enough. */
	unsigned failed = 0, spare = 0;
	for (;; spare++) {
		int p[2];
		CHECK(pipe(p) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			client_at_limit(spare, p[1]);
			_exit(0);
		}
		close(p[1]);
		int rc = 1;
		CHECK(read(p[0], &rc, sizeof(rc)) == sizeof(rc));
		close(p[0]);
		CHECK(test_wait(pid) == 0);
		printf("a client with %u descriptors to spare: %s\n", spare,
		       rc ? sluice_err_name(rc) : "attached");
		h_good_round(f, 0, &seq);
		if (rc == 0)
			break;
		failed++;
		CHECK(spare < 16);
	}
	CHECK(failed >= 1);
	printf("a client attaches with %u descriptors to spare, not fewer (%u refused)\n", spare,
	       failed);
	h_wait_slots_free(f);

	/* The supervisor at its limit. */
	pid_t sup = (pid_t)sluice_flow_supervisor_pid(f);
	struct rlimit rl;
	CHECK(prlimit(sup, RLIMIT_NOFILE, NULL, &rl) == 0);
	uint64_t set[16];
	open_fds(sup, set);
	char err[256];
	/* Room for the connection, none for the lease's pidfd: refused. */
	struct rlimit low = {.rlim_cur = limit_for(set, 1), .rlim_max = rl.rlim_max};
	CHECK(prlimit(sup, RLIMIT_NOFILE, &low, NULL) == 0);
	int rc = h_attach_code(10 * SEC, err, sizeof(err));
	printf("supervisor with 1 descriptor to spare: %s: %s\n", sluice_err_name(rc), err);
	CHECK(rc == SLUICE_EMFILE && strstr(err, "pidfd_open") != NULL);
	/* None at all: it cannot accept; accepting pauses, the attach times
	 * out; the flow serves on. */
	low.rlim_cur = limit_for(set, 0);
	CHECK(prlimit(sup, RLIMIT_NOFILE, &low, NULL) == 0);
	rc = h_attach_code(1 * SEC, err, sizeof(err));
	printf("supervisor with none to spare: %s: %s\n", sluice_err_name(rc), err);
	CHECK(rc == SLUICE_ETIMEDOUT);
	h_good_round(f, 0, &seq);
	/* The limit back: attach works again. */
	CHECK(prlimit(sup, RLIMIT_NOFILE, &rl, NULL) == 0);
	h_wait_slots_free(f);
	h_new_clients_work(f, f->nclients - 1, 2, &seq);
	h_check_intact(f, before);
	h_stop(f);
}

int main(void)
{
	R = test_shared(sizeof(*R));
	blocks_and_table();
	rings();
	descriptors();
	printf("ok\n");
	return TEST_PASS;
}
