/* Clients SIGKILLed mid-flight, over and over (argv[1] times; the issue's
 * run is 1,000): each child attaches and submits without end; it is killed
 * after a random 0-3 ms, in attach, in submit, in wait, anywhere. The flow
 * keeps serving the creator, whose tasks are checked between kills; at
 * the end every client slot comes back, every task entry of the slots is
 * FREE, and after stop no block is left in use.
 *
 * usage: test_flow_attach_kill [kills]   (default 200, / slowdown) */
#include "runtime/flow_test.h"

static int h_triple(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		if (!test_result_u64(&items[k], test_payload_u64(&items[k]) * 3))
			sluice_item_fail(&items[k], "no block");
	return 0;
}

static __attribute__((noreturn)) void child(const char *name)
{
	char err[256];
	sluice_flow_t *g = NULL;
	if (sluice_flow_attach(name, 0, 10 * SEC, &g, err, sizeof(err)) != 0)
		_exit(3); /* table full while earlier slots drain: fine */
	for (uint64_t i = 0;; i++) {
		sluice_task_t *t[16];
		unsigned m = 0;
		for (; m < 16; m++)
			if (sluice_task_alloc(g, 8 + (i % 4) * 1000, &t[m]) != 0)
				break;
		for (unsigned k = 0; k < m; k++) {
			memcpy(t[k]->payload, &i, sizeof(i));
			t[k]->payload_len = sizeof(i);
		}
		if (m > 0 && sluice_task_submit_many(g, t, m, SEC) != (int)m)
			_exit(4);
		/* Leave some in flight, wait for some, keep some unreleased. */
		if (m > 0)
			(void)sluice_task_wait(g, t[0], SEC);
		sluice_task_t *got[16];
		int k = sluice_flow_reap(g, got, 16);
		for (int j = 0; j < k; j++)
			if (j % 3 != 0)
				(void)sluice_task_release(g, got[j]);
	}
}

static void check_mine(sluice_flow_t *f, uint64_t base)
{
	sluice_task_t *t[8];
	for (unsigned i = 0; i < 8; i++)
		t[i] = test_task_u64(f, base + i);
	CHECK_RC(sluice_task_submit_many(f, t, 8, 30 * SEC), 8);
	for (unsigned i = 0; i < 8; i++) {
		test_wait_task(f, t[i]);
		CHECK(t[i]->status == SLUICE_TASK_OK);
		CHECK(test_task_result_u64(t[i]) == (base + i) * 3);
		CHECK_OK(sluice_task_release(f, t[i]));
	}
}

int main(int argc, char **argv)
{
	unsigned kills = argc > 1 ? (unsigned)atoi(argv[1]) : 200;
	kills = kills / test_slowdown() ? kills / test_slowdown() : 1;
	char name[64];
	snprintf(name, sizeof(name), "attach-kill-%d", (int)getpid());
	sluice_step_t steps[1] = {test_step("triple", h_triple, 2, 8)};
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = name, .nsteps = 1, .steps = steps,
				.max_tasks = 4 * 256, .max_clients = 4, .stop_grace_ns = 2 * SEC};
	char err[256];
	sluice_flow_t *f = NULL;
	CHECK_OK(sluice_flow_create(&o, &f, err, sizeof(err)));
	test_start(f);
	srand(7);
	uint64_t mine = 0;
	for (unsigned k = 0; k < kills; k++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			child(name);
		usleep((useconds_t)(rand() % 3000));
		CHECK(kill(pid, SIGKILL) == 0);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 4) {
			fprintf(stderr, "FAIL: a client's submit failed\n");
			return TEST_FAIL;
		}
		if (k % 16 == 0) {
			check_mine(f, (uint64_t)k << 8);
			mine += 8;
		}
	}
	/* Every slot back, every entry of theirs FREE. */
	TEST_WAIT_FOR(({
		unsigned busy = 0;
		for (uint32_t c = 1; c < f->nclients; c++)
			busy += atomic_load(&f->cslots[c].pid) != 0;
		busy == 0;
	}), 30, "every client slot back");
	for (uint32_t c = 1; c < f->nclients; c++) {
		const struct sluice__client_slot *cs = &f->cslots[c];
		for (uint32_t i = 0; i < cs->ntasks; i++) {
			uint64_t w = atomic_load(&f->tasks[cs->first_task + i].state);
			if (SLUICE__TW_STATE(w) != SLUICE__TS_FREE) {
				fprintf(stderr, "FAIL: slot %u entry %u left in state %u\n", c, i,
					SLUICE__TW_STATE(w));
				return TEST_FAIL;
			}
		}
	}
	check_mine(f, 1u << 30);
	mine += 8;
	/* The killed clients did submit: the flow's totals say how much. */
	sluice_flow_snapshot_t *snap = NULL;
	CHECK_OK(sluice_flow_snapshot_create(f, &snap));
	CHECK_OK(sluice_flow_snapshot_take(f, snap));
	uint64_t theirs = snap->submitted - mine;
	sluice_flow_snapshot_destroy(snap);
	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	uint64_t left = test_blocks_in_use(f);
	printf("%u clients killed; they had submitted %llu tasks; blocks in use at the end: %llu\n",
	       kills, (unsigned long long)theirs, (unsigned long long)left);
	CHECK(left == 0);
	CHECK(theirs > 0);
	sluice_flow_destroy(f);
	test_check_gone(pids, np);
	printf("ok\n");
	return TEST_PASS;
}
