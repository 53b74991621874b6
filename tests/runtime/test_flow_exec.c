/* Exec'd workers (docs/RUNTIME.md, "Exec'd workers"):
 *
 *   create   exec_path, handler_name and condition_name are checked, each
 *            refusal naming its field; an exec'd step needs no handle
 *   program  the worker program run by hand says what it is, exits 2
 *   life     a step of two exec'd workers between two forked steps (its
 *            condition-routed successor found by condition_name): every
 *            result right; the workers run the program (/proc/PID/exe),
 *            inherit none of the client's close-on-exec descriptors (a
 *            forked worker has them), get the right sluice_worker_info_t,
 *            run on_start, and on_stop at stop; one killed is exec'd
 *            again and the flow goes on; nothing leaks, no process left
 *   start    an unknown handler name, an unknown condition name, a
 *            missing program, a program that is no sluice worker: start
 *            fails with SLUICE_EWORKERSTART and a message naming the step
 *            and the name (or the path), no process left
 *
 * The same multi-step correctness and chaos checks as forked steps:
 * test_flow_pipeline ... exec and test_flow_chaos ... exec. */
#include "runtime/life_handlers.h"
#include "runtime/pipeline_handlers.h"

#include <dirent.h>
#include <fcntl.h>

static const char *worker;

/* ---- create ---------------------------------------------------------------------- */

static void refused(const sluice_step_t *steps, uint32_t n, const char *w1, const char *w2)
{
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = "exec", .flags = SLUICE_FLOW_UNLISTED, .nsteps = n, .steps = steps,
				.max_tasks = 16};
	char err[256];
	sluice_flow_t *f = NULL;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	printf("refused: %s\n", err);
	CHECK_RC(rc, SLUICE_EINVAL);
	CHECK(f == NULL);
	if (strstr(err, w1) == NULL || strstr(err, w2) == NULL) {
		fprintf(stderr, "FAIL: want '%s' and '%s' in the message\n", w1, w2);
		exit(TEST_FAIL);
	}
}

static void pipeline_steps(sluice_step_t *steps)
{
	steps[0] = test_step("parse", h_parse, 1, PARSE_BATCH);
	steps[1] = test_step("double", h_double, 1, DOUBLE_BATCH);
	steps[2] = test_step("finish", h_finish, 1, FINISH_BATCH);
	steps[0].condition = cond_parse;
	steps[1].condition = cond_double;
	steps[2].condition = cond_finish;
	steps[1].exec_path = worker;
	steps[1].handler_name = "double";
	steps[2].condition_name = "finish";
}

static void check_create(void)
{
	sluice_step_t s[3];
	char longname[SLUICE_HANDLER_NAME_MAX + 1];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	pipeline_steps(s);
	s[1].handler_name = NULL;
	refused(s, 3, "steps[1].handler_name", "required with exec_path");
	pipeline_steps(s);
	s[0].handler_name = "parse";
	refused(s, 3, "steps[0].handler_name", "only for a step with exec_path");
	pipeline_steps(s);
	s[1].handler_name = longname;
	refused(s, 3, "steps[1].handler_name", "1..63 bytes");
	pipeline_steps(s);
	s[1].handler_name = "";
	refused(s, 3, "steps[1].handler_name", "1..63 bytes");
	pipeline_steps(s);
	s[1].exec_path = "";
	refused(s, 3, "steps[1].exec_path", "('double')");
	pipeline_steps(s);
	s[2].condition_name = NULL;
	refused(s, 3, "steps[2].condition_name: required", "steps[1] ('double') is started by exec");
	pipeline_steps(s);
	s[0].condition_name = "parse"; /* fine: nothing before it is exec'd */
	s[2].condition = NULL;
	refused(s, 3, "steps[2].condition_name", "without a condition");
	pipeline_steps(s);
	s[1].handler.handle = NULL; /* an exec'd step needs none */
	s[0].handler.handle = NULL;
	refused(s, 3, "steps[0].handler.handle", "must not be NULL");

	/* Good: an exec'd step without a handle, a condition_name where none
	 * is needed; nothing starts. */
	pipeline_steps(s);
	s[1].handler.handle = NULL;
	s[0].condition_name = "parse";
	sluice_flow_t *f = test_flow("exec", s, 3, 16);
	CHECK(strcmp(f->steps[1].exec_path, worker) == 0);
	CHECK(strcmp(f->steps[1].handler_name, "double") == 0);
	CHECK(strcmp(f->steps[2].condition_name, "finish") == 0);
	CHECK(f->steps[0].exec_path == NULL && f->steps[2].exec_path == NULL);
	CHECK(sluice_flow_supervisor_pid(f) == 0);
	sluice_flow_destroy(f);
}

/* ---- the program by hand ------------------------------------------------------------ */

static void check_program(void)
{
	static const char *const bad[][3] = {
		{NULL},
		{"--sluice-worker", NULL},
		{"--sluice-worker", "arena=3,doorbell=4,slot=0", NULL},
		{"--sluice-worker", "arena=3,doorbell=4,slot=0,supervisor=1,arena=3"},
		{"--sluice-worker", "arena=-1,doorbell=4,slot=0,supervisor=1"},
		{"--other", "arena=3,doorbell=4,slot=0,supervisor=1"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			char *argv[4] = {(char *)worker, (char *)bad[i][0], (char *)bad[i][1], NULL};
			if (bad[i][0] == NULL)
				argv[1] = NULL;
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 2);
			execv(worker, argv);
			_exit(99);
		}
		CHECK(test_wait(pid) == 2);
	}
}

/* ---- life ---------------------------------------------------------------------------- */

/* Does process `pid` hold a descriptor of the file at `path`? */
static bool holds(pid_t pid, const char *path)
{
	char dir[64], link[PATH_MAX + 64], target[PATH_MAX];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d)) != NULL) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			found = strcmp(target, path) == 0;
		}
	}
	closedir(d);
	return found;
}

static void run_tasks(sluice_flow_t *f, uint64_t from, uint64_t n)
{
	sluice_task_t *ts[64];
	for (uint64_t x = from; x < from + n;) {
		unsigned m = 0;
		while (m < 64 && x < from + n)
			ts[m++] = test_task_u64(f, x++);
		CHECK(sluice_task_submit_many(f, ts, m, 30 * SEC * test_slowdown()) == (int)m);
		for (unsigned i = 0; i < m; i++) {
			test_wait_task(f, ts[i]);
			if (ts[i]->status != SLUICE_TASK_OK ||
			    test_task_result_u64(ts[i]) != life_expected(ts[i]->user)) {
				fprintf(stderr, "FAIL: task %llu: %s: %s\n", (unsigned long long)ts[i]->user,
					sluice_task_status_name(ts[i]->status), ts[i]->message);
				exit(TEST_FAIL);
			}
			CHECK_OK(sluice_task_release(f, ts[i]));
		}
	}
}

static void check_life(void)
{
	life = test_exec_shared(sizeof(*life));
	/* A close-on-exec descriptor of the client: forked workers have it,
	 * exec'd ones must not. */
	char path[] = "/tmp/sluice-test-exec-XXXXXX";
	int tmp = mkostemp(path, O_CLOEXEC);
	CHECK(tmp >= 0);

	sluice_step_t steps[3] = {
		test_step("pre", life_pre, 1, 8),
		test_step("life", NULL, 2, 8),
		test_step("post", life_post, 1, 8),
	};
	steps[1].exec_path = worker;
	steps[1].handler_name = "life";
	steps[1].max_attempts = 2;
	steps[1].restart_delay_ns = 10 * MSEC;
	steps[2].condition = life_even;
	steps[2].condition_name = "even";
	sluice_flow_t *f = test_flow(LIFE_FLOW, steps, 3, 256);
	test_start(f);

	pid_t pre = (pid_t)sluice_flow_worker_pid(f, 0, 0);
	pid_t w0 = (pid_t)sluice_flow_worker_pid(f, 1, 0), w1 = (pid_t)sluice_flow_worker_pid(f, 1, 1);
	CHECK(atomic_load(&life->started) == 2 && atomic_load(&life->bad_info) == 0);
	CHECK(atomic_load(&life->pid[1]) == w0 && atomic_load(&life->pid[2]) == w1);
	CHECK(test_runs_program(w0, worker) && test_runs_program(w1, worker));
	CHECK(!test_runs_program(pre, worker));
	CHECK(holds(pre, path));
	CHECK(!holds(w0, path) && !holds(w1, path));
	unlink(path);
	close(tmp);

	uint64_t n = 2000 / test_slowdown();
	run_tasks(f, 0, n);
	sluice_step_stats_t st = test_stats(f, 1);
	CHECK(st.tasks == n && st.bad_descriptors == 0 && st.handler_errors == 0);
	CHECK(test_stats(f, 2).tasks == (n + 1) / 2);
	CHECK(atomic_load(&life->batches) == st.batches);

	/* Killed, it is exec'd again, and the flow goes on. */
	CHECK(test_signal_slot(f, 2, SIGKILL) == w1); /* slot 2: life's worker 1 */
	TEST_WAIT_FOR(test_stats(f, 1).restarts == 1 && test_stats(f, 1).workers_live == 2, 10,
		      "life's worker 1 restarted");
	pid_t w1b = (pid_t)sluice_flow_worker_pid(f, 1, 1);
	CHECK(w1b != w1 && test_runs_program(w1b, worker));
	TEST_WAIT_FOR(atomic_load(&life->pid[2]) == w1b, 10, "on_start of the restarted worker");
	run_tasks(f, n, n);
	CHECK(atomic_load(&life->started) == 3 && atomic_load(&life->bad_info) == 0);

	pid_t pids[8];
	unsigned np = test_flow_pids(f, pids, 8);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	test_check_gone(pids, np);
	CHECK(atomic_load(&life->stopped) == 2);
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	printf("life: %llu tasks, exec'd workers %d %d (restarted as %d), on_start 3, on_stop 2\n",
	       (unsigned long long)(2 * n), w0, w1, w1b);
}

/* ---- start failures ---------------------------------------------------------------------- */

static void start_fails(sluice_step_t *steps, const char *w1, const char *w2)
{
	sluice_flow_t *f = test_flow("exec", steps, 3, 64);
	int rc = sluice_flow_start(f, 30 * SEC * test_slowdown());
	const char *err = sluice_flow_error(f);
	printf("start: %s: %s\n", sluice_err_name(rc), err);
	CHECK_RC(rc, SLUICE_EWORKERSTART);
	if (strstr(err, w1) == NULL || strstr(err, w2) == NULL) {
		fprintf(stderr, "FAIL: want '%s' and '%s' in the message\n", w1, w2);
		exit(TEST_FAIL);
	}
	pid_t pids[8];
	unsigned np = 0;
	pids[np++] = (pid_t)sluice_flow_supervisor_pid(f);
	for (uint32_t s = 0; s < 3; s++) {
		pid_t p = (pid_t)sluice_flow_worker_pid(f, s, 0);
		if (p > 0)
			pids[np++] = p;
	}
	test_check_gone(pids, np);
	sluice_flow_destroy(f);
}

static void check_start_failures(void)
{
	sluice_step_t s[3];
	pipeline_steps(s);
	s[1].handler_name = "no_such_handler";
	start_fails(s, "step 'double'", "handler 'no_such_handler' is not in flow_exec_worker's");

	pipeline_steps(s);
	s[2].condition_name = "no_such_condition";
	start_fails(s, "step 'double'", "condition 'no_such_condition' of step 'finish' is not in");

	pipeline_steps(s);
	s[1].exec_path = "/nonexistent/sluice-worker";
	start_fails(s, "step 'double'", "exec of '/nonexistent/sluice-worker' failed: No such file");

	/* A program that is no sluice worker: it exits and start says so. */
	pipeline_steps(s);
	s[1].exec_path = "/bin/true";
	if (access(s[1].exec_path, X_OK) == 0)
		start_fails(s, "step 'double'", "exited with code 0 during on_start");
}

int main(void)
{
	worker = test_exec_worker();
	check_create();
	check_program();
	check_life();
	check_start_failures();
	printf("ok\n");
	return TEST_PASS;
}
