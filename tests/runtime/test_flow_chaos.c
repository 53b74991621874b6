/* Chaos: a 2-step flow under continuous load while its workers die.
 *
 *   kill   a thread SIGKILLs a random worker every 50 ms
 *   segv   handlers die of SIGSEGV: some tasks on their first run (at
 *          most one such death per 50 ms), poison tasks on every run
 *   exit   the same, calling exit() instead
 *
 * Every submitted task must come back exactly once, OK with the right
 * result or WORKER_DIED after its three runs; no handler runs a task twice
 * at one attempt; no wait hangs; at the end every process is gone and every
 * block of the arena is free. The supervisor's log (its stderr, and its
 * workers', go through a pipe we read) must name only the deaths the mode
 * causes: a worker dying of anything else (a sanitizer's report, say) would
 * otherwise pass for chaos. Workers are also replaced every 5000 tasks
 * (max_tasks_per_worker), so hand-overs meet deaths.
 *
 * With "exec", step b's workers are exec'd (the worker program
 * tests/runtime/flow_exec_worker.c, handler "chaos_b"): every completion
 * then comes from an exec'd process, and the kills, deaths, restarts and
 * replacements hit exec'd workers as they hit forked ones.
 *
 * usage: test_flow_chaos [seconds [kill|segv|exit [exec]]]   (default 5 s,
 * kill; the 20-second run: test_flow_chaos 20 kill) */
#include "runtime/chaos_handlers.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>

#define WINDOW 256u

static enum mode mode;

static sluice_flow_t *flow;
static _Atomic bool stop_killing;
static _Atomic uint32_t kills;

static void *killer(void *arg)
{
	unsigned seed = 12345;
	while (!atomic_load(&stop_killing)) {
		usleep(50 * 1000);
		uint32_t w = (uint32_t)rand_r(&seed) % flow->nworkers;
		if (test_signal_slot(flow, w, SIGKILL) != 0)
			atomic_fetch_add(&kills, 1);
	}
	return NULL;
}

/* Reads the flow's stderr, passes it on, and counts deaths whose cause is
 * not the mode's, and sanitizer reports. */
static int log_in = -1, log_out = -1;
static uint32_t unexpected, logged_deaths;

static void judge(const char *line)
{
	/* Each followed by ';' or by " while retiring" (a recycled worker
	 * that died on its way out). */
	static const char *const want[] = {
		[KILL] = "was killed by signal 9",
		[SEGV] = "was killed by signal 11",
		[EXIT] = "exited with code 7",
	};
	if (strstr(line, "Sanitizer") || strstr(line, "runtime error")) {
		unexpected++;
		return;
	}
	if (strncmp(line, "sluice: flow 'chaos': ", 22) != 0)
		return;
	bool death = strstr(line, " was killed by signal ") || strstr(line, " exited with code ");
	if (!death || strstr(line, "during the stop"))
		return;
	logged_deaths++;
	const char *cause = strstr(line, want[mode]);
	char after = cause ? cause[strlen(want[mode])] : '\0';
	if (cause == NULL || (after != ';' && after != ' ')) {
		(void)!write(log_out, "^^^ UNEXPECTED\n", 15);
		unexpected++;
	}
}

static void *log_reader(void *arg)
{
	char buf[8192], line[1024];
	size_t len = 0;
	ssize_t n;
	while ((n = read(log_in, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (len < sizeof(line) - 1)
				line[len++] = buf[i];
			if (buf[i] != '\n')
				continue;
			line[len] = '\0';
			(void)!write(log_out, line, len);
			judge(line);
			len = 0;
		}
	}
	return NULL;
}

static uint64_t ok, died;

static void check_task(sluice_flow_t *f, sluice_task_t *t)
{
	uint64_t id = t->user, x = id * 3 + 1;
	if (t->status == SLUICE_TASK_OK) {
		if (test_task_result_u64(t) != 2 * (x + 1)) {
			fprintf(stderr, "FAIL: task %llu: result %llu, want %llu\n", (unsigned long long)id,
				(unsigned long long)test_task_result_u64(t),
				(unsigned long long)(2 * (x + 1)));
			exit(TEST_FAIL);
		}
		ok++;
	} else if (t->status == SLUICE_TASK_WORKER_DIED && strstr(t->message, "run 3 of 3")) {
		died++;
	} else {
		fprintf(stderr, "FAIL: task %llu: %s (attempt %u): %s\n", (unsigned long long)id,
			sluice_task_status_name(t->status), t->attempt, t->message);
		exit(TEST_FAIL);
	}
	/* Handlers that die: a task that shared a handle() call with the
	 * dying one loses that run, but its retries run alone (and a task held
	 * but not yet run when its worker died keeps its run): only a poison
	 * task uses up all three. */
	if (mode != KILL)
		CHECK((t->status == SLUICE_TASK_WORKER_DIED) == POISON(id));
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t a = 0; a <= ATTEMPTS; a++) {
			unsigned r = atomic_load(&sh->runs[id][s][a]);
			if (r > 1 || (a == ATTEMPTS && r != 0)) {
				fprintf(stderr, "FAIL: task %llu ran %u times at step %u attempt %u\n",
					(unsigned long long)id, r, s, a);
				exit(TEST_FAIL);
			}
		}
	CHECK_OK(sluice_task_release(f, t));
}

int main(int argc, char **argv)
{
	uint64_t secs = test_arg_u64(argc, argv, 1, 5);
	const char *m = argc > 2 ? argv[2] : "kill";
	if (strcmp(m, "kill") == 0)
		mode = KILL;
	else if (strcmp(m, "segv") == 0)
		mode = SEGV;
	else if (strcmp(m, "exit") == 0)
		mode = EXIT;
	else
		test_skip("mode must be kill, segv or exit");
	bool exec = argc > 3 && strcmp(argv[3], "exec") == 0;
	/* Dying workers must not leave core files behind. */
	struct rlimit no_core = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &no_core);
	sh = test_exec_shared(sizeof(*sh)); /* exec'd workers map it too */
	atomic_store(&sh->mode, mode);

	sluice_step_t steps[2] = {
		test_step("a", h_a, 2, 8),
		test_step("b", h_b, 2, 8),
	};
	for (int i = 0; i < 2; i++) {
		steps[i].max_attempts = ATTEMPTS;
		steps[i].restart_delay_ns = 2 * MSEC;
		steps[i].restart_max_delay_ns = 20 * MSEC;
		steps[i].fail_deaths = SLUICE_STEP_NEVER_FAIL;
		steps[i].capacity = 64;
		/* Hand-overs to replacements happen amid the deaths too. */
		steps[i].max_tasks_per_worker = 5000;
	}
	if (exec) {
		steps[1].exec_path = test_exec_worker();
		steps[1].handler_name = "chaos_b";
	}
	flow = test_flow("chaos", steps, 2, 1024);
	sluice_flow_t *f = flow;
	/* The supervisor (and the workers it forks) get a pipe as stderr; we
	 * keep ours. */
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	log_in = pfd[0];
	log_out = dup(2);
	CHECK(log_out >= 0);
	pthread_t reader;
	CHECK(pthread_create(&reader, NULL, log_reader, NULL) == 0);
	fflush(stderr);
	CHECK(dup2(pfd[1], 2) == 2); /* dup2 clears O_CLOEXEC on 2 */
	test_start(f);
	CHECK(dup2(log_out, 2) == 2);
	for (uint32_t k = 0; exec && k < 2; k++)
		CHECK(test_runs_program((pid_t)sluice_flow_worker_pid(f, 1, k), steps[1].exec_path));
	close(pfd[1]);
	pthread_t th;
	if (mode == KILL)
		CHECK(pthread_create(&th, NULL, killer, NULL) == 0);

	sluice_task_t *fifo[WINDOW];
	uint64_t head = 0, tail = 0, next = 0;
	uint64_t end = test_now_ns() + secs * SEC;
	for (;;) {
		bool more = test_now_ns() < end && next < MAX_IDS;
		if (!more && head == tail)
			break;
		while (more && tail - head < WINDOW) {
			sluice_task_t *batch[32];
			unsigned k = 0;
			while (k < 32 && tail - head + k < WINDOW && next < MAX_IDS) {
				batch[k] = test_task_u64(f, next * 3 + 1);
				batch[k]->user = next++;
				k++;
			}
			unsigned done = 0;
			while (done < k) {
				int rc = sluice_task_submit_many(f, batch + done, k - done,
								 60 * SEC * test_slowdown());
				if (rc <= 0) {
					fprintf(stderr, "FAIL: submit: %s\n", sluice_err_name(rc));
					exit(TEST_FAIL);
				}
				done += (unsigned)rc;
			}
			for (unsigned i = 0; i < k; i++)
				fifo[tail++ % WINDOW] = batch[i];
		}
		sluice_task_t *t = fifo[head++ % WINDOW];
		test_wait_task(f, t); /* fails the test after 60 s: a hang */
		check_task(f, t);
	}
	if (mode == KILL) {
		atomic_store(&stop_killing, true);
		CHECK(pthread_join(th, NULL) == 0);
	}

	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 30 * SEC));
	test_check_gone(pids, np);
	uint32_t deaths = 0;
	for (uint32_t s = 0; s < 2; s++) {
		sluice_step_stats_t st = test_stats(f, s);
		deaths += st.worker_deaths;
		printf("step %u: %llu tasks run, %u deaths, %u restarts, %u recycled, %llu taken back "
		       "or sent on, %llu retried, %llu worker died, %llu stale copies dropped\n",
		       s, (unsigned long long)st.tasks, st.worker_deaths, st.restarts, st.recycled,
		       (unsigned long long)st.requeued, (unsigned long long)st.retried,
		       (unsigned long long)st.worker_died, (unsigned long long)st.bad_descriptors);
	}
	/* Every process of the flow is gone: the pipe is at its end. */
	CHECK(pthread_join(reader, NULL) == 0);
	printf("%u deaths in the log, %u unexpected\n", logged_deaths, unexpected);
	CHECK(unexpected == 0);
	uint64_t leaked = sl_load_relaxed(&f->hdr->leaked_blocks);
	uint64_t lost = sl_load_relaxed(&f->hdr->lost_completions);
	printf("%s%s, %llu s: %llu tasks: %llu ok, %llu worker died; %u kills; "
	       "%llu blocks found leaked by the audit at stop, %llu duplicate completions dropped\n",
	       m, exec ? " (step b exec'd)" : "", (unsigned long long)secs,
	       (unsigned long long)next, (unsigned long long)ok, (unsigned long long)died, atomic_load(&kills), (unsigned long long)leaked,
	       (unsigned long long)sl_load_relaxed(&f->cslots[0].dropped));
	CHECK(ok + died == next);
	CHECK(deaths > 0); /* the chaos happened */
	CHECK(lost == 0);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
