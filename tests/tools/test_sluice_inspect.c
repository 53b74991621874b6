/* sluice-inspect on a live flow (docs/INSPECT.md): N tasks through two
 * steps; --json (through --arena and by name) reports exactly N done, the
 * steps' and workers' counts and pids; a worker SIGKILLed and restarted
 * shows restarts 1 and its exit cause; the list shows the flow; 'no such
 * flow' exits 3, 'not allowed' 4, bad usage 2, each with one line;
 * --prometheus passes `promtool check metrics` (the test exits 77, after
 * every other check passed, only where promtool is not installed).
 *
 *   test_sluice_inspect PATH-OF-sluice-inspect
 */
#include "runtime/flow_test.h"
#include "common/json.h"
#include "tools/run_cmd.h"

#include <sluice/metrics.h>

#include <stdarg.h>

#define NSTEPS 2
static const uint32_t nprocs[NSTEPS] = {2, 3};

static int bump(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 1))
			sluice_item_fail(&items[i], "no block");
	return 0;
}

static const char *tool;
static char arena_path[64];
static char flow_name[32]; /* inspect-PID: unique, for the lookup by name */

/* Runs the tool with up to 3 arguments. */
static struct cmd_out inspect(const char *a1, const char *a2, const char *a3)
{
	char *argv[] = {(char *)tool, (char *)a1, (char *)a2, (char *)a3, NULL};
	return cmd_run(argv);
}

static struct json *inspect_json(void)
{
	struct cmd_out r = inspect("--arena", arena_path, "--json");
	if (r.status != 0 || r.err_len != 0) {
		fprintf(stderr, "FAIL: --json exited %d: %s\n", r.status, r.err);
		exit(TEST_FAIL);
	}
	struct json *j = json_parse(r.out, r.out_len);
	if (j == NULL) {
		fprintf(stderr, "FAIL: --json printed no JSON:\n%s\n", r.out);
		exit(TEST_FAIL);
	}
	CHECK(cmd_lines(r.out) == 1);
	cmd_out_free(&r);
	return j;
}

/* The integer at path (fails the test when absent or not an integer). */
static int64_t num(const struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t num(const struct json *j, const char *fmt, ...)
{
	char path[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	const struct json *v = json_at(j, path);
	if (v == NULL || v->type != JSON_NUM || strpbrk(v->s, ".eE") != NULL) {
		fprintf(stderr, "FAIL: %s: not an integer\n", path);
		exit(TEST_FAIL);
	}
	return strtoll(v->s, NULL, 10);
}

static const char *text(const struct json *j, const char *path)
{
	const struct json *v = json_at(j, path);
	if (v == NULL || v->type != JSON_STR) {
		fprintf(stderr, "FAIL: %s: not a string\n", path);
		exit(TEST_FAIL);
	}
	return v->s;
}

static bool is_null(const struct json *j, const char *path)
{
	const struct json *v = json_at(j, path);
	CHECK(v != NULL);
	return v->type == JSON_NULL;
}

static void run_tasks(sluice_flow_t *f, unsigned n, uint64_t base)
{
	sluice_task_t **t = calloc(n, sizeof(*t));
	CHECK(t != NULL);
	for (unsigned i = 0; i < n; i++)
		t[i] = test_task_u64(f, base + i);
	CHECK(sluice_task_submit_many(f, t, n, 30 * SEC) == (int)n);
	for (unsigned i = 0; i < n; i++) {
		test_wait_task(f, t[i]);
		CHECK(t[i]->status == SLUICE_TASK_OK);
		CHECK(test_task_result_u64(t[i]) == base + i + 1);
		CHECK_OK(sluice_task_release(f, t[i]));
	}
	free(t);
}

/* The JSON agrees with the flow: N tasks done, steps and workers. */
static void check_counts(const struct json *j, sluice_flow_t *f, int64_t n)
{
	CHECK(num(j, "schema_version") == SLUICE_METRICS_SCHEMA_VERSION);
	CHECK(strcmp(text(j, "flow"), flow_name) == 0);
	CHECK(strcmp(text(j, "state"), "running") == 0);
	CHECK(num(j, "supervisor_pid") == sluice_flow_supervisor_pid(f));
	CHECK(!is_null(j, "uptime_ns"));
	CHECK(is_null(j, "interval_ns")); /* one snapshot: counters only */
	CHECK(num(j, "tasks.submitted") == n);
	CHECK(num(j, "tasks.completed") == n);
	CHECK(num(j, "tasks.by_status.ok") == n);
	CHECK(num(j, "tasks.by_status.worker_died") == 0);
	CHECK(num(j, "tasks.in_flight") == 0);
	CHECK(json_at(j, "steps")->n == NSTEPS);
	for (uint32_t s = 0; s < NSTEPS; s++) {
		CHECK(num(j, "steps.%u.index", s) == s);
		CHECK(num(j, "steps.%u.nprocs", s) == nprocs[s]);
		CHECK(num(j, "steps.%u.workers_live", s) == nprocs[s]);
		CHECK(num(j, "steps.%u.capacity", s) == f->steps[s].capacity);
		CHECK(num(j, "steps.%u.tasks", s) == n);
		CHECK(num(j, "steps.%u.queued", s) == 0);
		CHECK(is_null(j, "steps.0.tasks_per_s"));
		CHECK(!is_null(j, "steps.0.latency_p50_ns") && !is_null(j, "steps.0.latency_p99_ns"));
		int64_t hist = 0;
		for (unsigned b = 0; b < SLUICE_HEALTH_LATENCY_BUCKETS; b++)
			hist += num(j, "steps.%u.latency_hist.%u", s, b);
		CHECK(hist == n);
		char path[64];
		snprintf(path, sizeof(path), "steps.%u.workers", s);
		CHECK(json_at(j, path)->n == nprocs[s]);
		int64_t sum = 0;
		for (uint32_t k = 0; k < nprocs[s]; k++) {
			snprintf(path, sizeof(path), "steps.%u.workers.%u.state", s, k);
			CHECK(strcmp(text(j, path), "ready") == 0);
			CHECK(num(j, "steps.%u.workers.%u.pid", s, k) == sluice_flow_worker_pid(f, s, k));
			CHECK(num(j, "steps.%u.workers.%u.position", s, k) == k);
			sum += num(j, "steps.%u.workers.%u.tasks", s, k);
		}
		CHECK(sum == n);
	}
	CHECK(strcmp(text(j, "steps.0.name"), "parse") == 0);
	CHECK(strcmp(text(j, "steps.1.name"), "score") == 0);
	CHECK(json_at(j, "arena.classes")->n > 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	tool = argv[1];
	sluice_step_t steps[NSTEPS] = {test_step("parse", bump, nprocs[0], 4),
				       test_step("score", bump, nprocs[1], 8)};
	snprintf(flow_name, sizeof(flow_name), "inspect-%d", (int)getpid());
	/* Listed (unlike test_flow's): found by name through its control socket. */
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = flow_name, .nsteps = NSTEPS,
				.steps = steps, .max_tasks = 1024, .stop_grace_ns = 2 * SEC};
	char err[256];
	sluice_flow_t *f = NULL;
	CHECK_OK(sluice_flow_create(&o, &f, err, sizeof(err)));
	test_start(f);
	snprintf(arena_path, sizeof(arena_path), "/proc/%d/fd/%d", (int)getpid(),
		 sluice_arena_fd(f->arena));
	const unsigned N = 600;
	run_tasks(f, N, 1000);

	/* --json through --arena: exactly N done, the worker counts. */
	struct json *j = inspect_json();
	check_counts(j, f, N);
	for (uint32_t s = 0; s < NSTEPS; s++)
		for (uint32_t k = 0; k < nprocs[s]; k++) {
			CHECK(num(j, "steps.%u.workers.%u.restarts", s, k) == 0);
			char path[64];
			snprintf(path, sizeof(path), "steps.%u.workers.%u.last_exit", s, k);
			CHECK(is_null(j, path));
		}
	json_free(j);

	/* A worker of 'score' killed: restarted, and the JSON says how it died. */
	uint32_t w = f->steps[1].first_worker + 1;
	pid_t killed = test_signal_slot(f, w, SIGKILL);
	CHECK(killed > 0);
	sluice_flow_snapshot_t *snap;
	CHECK_OK(sluice_flow_snapshot_create(f, &snap));
	TEST_WAIT_FOR(sluice_flow_snapshot_take(f, snap) == 0 && snap->workers[w].restarts == 1 &&
			      snap->workers[w].state == SLUICE_WORKER_READY,
		      20, "the killed worker restarted");
	pid_t fresh = (pid_t)snap->workers[w].pid;
	CHECK(fresh != killed);
	sluice_flow_snapshot_destroy(snap);
	run_tasks(f, N, 5000);
	j = inspect_json();
	check_counts(j, f, 2 * N);
	CHECK(num(j, "steps.1.workers.1.restarts") == 1);
	CHECK(num(j, "steps.1.workers.1.deaths") == 1);
	CHECK(num(j, "steps.1.workers.1.pid") == fresh);
	CHECK(num(j, "steps.1.workers.1.last_exit.pid") == killed);
	CHECK(num(j, "steps.1.workers.1.last_exit.signal") == SIGKILL);
	CHECK(strcmp(text(j, "steps.1.workers.1.last_exit.signal_name"), "SIGKILL") == 0);
	CHECK(strcmp(text(j, "steps.1.workers.1.last_exit.kill_reason"), "none") == 0);
	CHECK(is_null(j, "steps.1.workers.1.last_exit.code"));
	CHECK(!is_null(j, "steps.1.workers.1.last_exit.ago_ns"));
	CHECK(num(j, "steps.1.restarts") == 1 && num(j, "steps.1.deaths") == 1);
	CHECK(num(j, "steps.0.restarts") == 0 && num(j, "steps.1.workers.0.restarts") == 0);
	json_free(j);

	/* By name, through the /proc scan; and the list. */
	struct cmd_out r = inspect(flow_name, "--json", NULL);
	CHECK(r.status == 0 && r.err_len == 0);
	j = json_parse(r.out, r.out_len);
	CHECK(j != NULL);
	check_counts(j, f, 2 * N);
	json_free(j);
	cmd_out_free(&r);
	r = inspect(NULL, NULL, NULL);
	printf("%s", r.out);
	CHECK(r.status == 0);
	char want[160];
	snprintf(want, sizeof(want), " %lld ", (long long)sluice_flow_supervisor_pid(f));
	char head[40];
	snprintf(head, sizeof(head), "\n%s ", flow_name);
	const char *row = strstr(r.out, head);
	CHECK(row != NULL && strstr(row, want) != NULL && strstr(row, "running") != NULL);
	cmd_out_free(&r);

	/* No such flow: 3, one line. */
	r = inspect("no-such-flow-here", "--json", NULL);
	printf("%s", r.err);
	CHECK(r.status == 3 && r.out_len == 0 && cmd_lines(r.err) == 1);
	CHECK(strncmp(r.err, "sluice-inspect: no such flow: 'no-such-flow-here'", 49) == 0);
	cmd_out_free(&r);
	char gone[64];
	snprintf(gone, sizeof(gone), "/proc/%d/fd/987654", (int)getpid());
	r = inspect("--arena", gone, "--json");
	CHECK(r.status == 3 && cmd_lines(r.err) == 1 && strstr(r.err, "no such flow") != NULL);
	cmd_out_free(&r);

	/* Not allowed: 4, one line. As root: the tool runs as nobody, which
	 * may not open our descriptors; as anyone else: a file we made
	 * unreadable. */
	char tmp[] = "/tmp/sluice-inspect-XXXXXX";
	int tfd = mkstemp(tmp);
	CHECK(tfd >= 0);
	close(tfd);
	CHECK(chmod(tmp, 0) == 0);
	char *deny[] = {(char *)tool, "--arena", geteuid() == 0 ? arena_path : tmp, "--json", NULL};
	r = cmd_run_as(deny, NULL, geteuid() == 0 ? 65534 : 0, 60);
	printf("%s", r.err);
	unlink(tmp);
	if (r.status == 125 || r.status == 127) {
		printf("SKIP part: 'not allowed' cannot be made here (%d)\n", r.status);
	} else {
		CHECK(r.status == 4 && r.out_len == 0 && cmd_lines(r.err) == 1);
		CHECK(strncmp(r.err, "sluice-inspect: not allowed: ", 29) == 0);
	}
	cmd_out_free(&r);

	/* Usage: 2. */
	r = inspect("--bogus", NULL, NULL);
	CHECK(r.status == 2);
	cmd_out_free(&r);
	r = inspect("--json", NULL, NULL);
	CHECK(r.status == 2);
	cmd_out_free(&r);
	r = inspect("--arena", arena_path, "-i");
	CHECK(r.status == 2);
	cmd_out_free(&r);

	/* --prometheus: the counters, and promtool accepts it. */
	r = inspect("--arena", arena_path, "--prometheus");
	CHECK(r.status == 0 && r.err_len == 0);
	snprintf(want, sizeof(want), "sluice_step_tasks_total{flow=\"%s\",step=\"score\"} %u\n",
		 flow_name, 2 * N);
	CHECK(strstr(r.out, want) != NULL);
	snprintf(want, sizeof(want), "sluice_worker_restarts_total{flow=\"%s\",step=\"score\",worker=\"1\"} 1\n",
		 flow_name);
	CHECK(strstr(r.out, want) != NULL);
	snprintf(want, sizeof(want),
		 "sluice_worker_last_exit_signal{flow=\"%s\",step=\"score\",worker=\"1\"} 9\n", flow_name);
	CHECK(strstr(r.out, want) != NULL);
	char prom_file[] = "/tmp/sluice-inspect-prom-XXXXXX";
	int pfd = mkstemp(prom_file);
	CHECK(pfd >= 0 && write(pfd, r.out, r.out_len) == (ssize_t)r.out_len);
	close(pfd);
	cmd_out_free(&r);
	char promtool[256];
	bool have_promtool = cmd_which("promtool", promtool, sizeof(promtool)) != NULL;
	if (have_promtool) {
		char *check[] = {promtool, "check", "metrics", NULL};
		r = cmd_run_as(check, prom_file, 0, 60);
		printf("promtool check metrics: %d %s%s", r.status, r.out, r.err);
		CHECK(r.status == 0);
		cmd_out_free(&r);
	}
	unlink(prom_file);

	pid_t pids[16];
	unsigned np = test_flow_pids(f, pids, 16);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	sluice_flow_destroy(f);
	test_check_gone(pids, np);
	if (!have_promtool)
		test_skip("promtool is not installed (Debian package prometheus): the Prometheus "
			  "output was not checked by it; everything else passed");
	printf("ok\n");
	return TEST_PASS;
}
