/* The metrics renderers on snapshots made by hand (include/sluice/metrics.h):
 * JSON that parses, with every field the schema names; names with quotes,
 * backslashes, newlines, invalid UTF-8 and no terminator escaped in both
 * formats; quantiles interpolated as documented; Prometheus histograms
 * cumulative with le = 2^(i+1) - 1 (in seconds for latencies), every line
 * well formed (and promtool's check where it is installed); rates only
 * with a usable earlier snapshot; truncation as snprintf; the serving
 * verdict and its reasons; slots outside the worker array left out.
 */
#define _GNU_SOURCE
#include "common/json.h"
#include "common/prom_text.h"
#include "common/test.h"
#include "tools/run_cmd.h"

#include <sluice/metrics.h>

#define NSTEPS 2
#define NWORKERS 3

static sluice_step_health_t steps[NSTEPS], psteps[NSTEPS];
static sluice_worker_health_t workers[NWORKERS], pworkers[NWORKERS];
static sluice_flow_snapshot_t snap, prev;
static uint32_t capacity[NSTEPS] = {64, 128};
static sluice_blocks_stats_t classes[2] = {{.block_size = 256, .capacity = 100, .in_use = 7,
					     .high_water = 9},
					    {.block_size = 4096, .capacity = 10}};

static void make_snapshot(void)
{
	memset(steps, 0, sizeof(steps));
	memset(workers, 0, sizeof(workers));
	snap = (sluice_flow_snapshot_t){
		.taken_ns = 10 * UINT64_C(1000000000), .state = SLUICE_FLOW_RUNNING, .nsteps = NSTEPS,
		.nworkers = NWORKERS, .nclients = 1, .supervisor_pid = 4242, .submitted = 1000,
		.in_flight = 10, .steps = steps, .workers = workers,
	};
	snap.completed[SLUICE_TASK_OK] = 980;
	snap.completed[SLUICE_TASK_WORKER_DIED] = 10;
	/* A quote, a backslash and a newline. */
	strcpy(steps[0].name, "pa\"rs\\e\nx");
	/* Invalid UTF-8, a valid é, a control byte, and no terminator. */
	memset(steps[1].name, 'z', sizeof(steps[1].name));
	memcpy(steps[1].name, "\xff\xfe ok \xc3\xa9\x01", 9);
	steps[0].nprocs = 2, steps[0].nslots = 2, steps[0].first_worker = 0, steps[0].batch_size = 8;
	steps[1].nprocs = 1, steps[1].nslots = 1, steps[1].first_worker = 2, steps[1].batch_size = 4;
	steps[0].tasks = 100, steps[0].batches = 30, steps[0].max_batch = 7;
	steps[0].latency_hist[10] = 100; /* 1024 .. 2047 ns */
	steps[0].latency_sum_ns = 150000;
	steps[0].batch_hist[0] = 10, steps[0].batch_hist[1] = 10, steps[0].batch_hist[2] = 10;
	steps[1].tasks = 100, steps[1].batches = 100;
	steps[1].latency_hist[0] = 50, steps[1].latency_hist[3] = 50; /* 0..1 ns and 8..15 ns */
	steps[1].batch_hist[0] = 100;
	steps[1].workers_live = 1, steps[0].workers_live = 2;
	steps[1].restarts = 1, steps[1].deaths = 1, steps[1].queued = 5;
	for (uint32_t w = 0; w < NWORKERS; w++) {
		workers[w].step = w < 2 ? 0 : 1;
		workers[w].position = w < 2 ? w : 0;
		workers[w].state = SLUICE_WORKER_READY;
		workers[w].pid = 100 + w;
		workers[w].forked_ns = UINT64_C(4000000000);
		workers[w].tasks = w < 2 ? 50 : 100;
	}
	workers[1].in_hand = 3, workers[1].busy_since_ns = 1, workers[1].busy_ns = 2500000;
	workers[2].restarts = 1, workers[2].deaths = 1, workers[2].last_pid = 99;
	workers[2].last_exit_code = -1, workers[2].last_signal = SIGKILL;
	workers[2].last_death_ns = UINT64_C(9000000000);
	workers[0].last_pid = 98, workers[0].last_exit_code = 3, workers[0].last_kill = SLUICE_KILL_HUNG;
}

static sluice_metrics_src_t src_of(const sluice_flow_snapshot_t *now, const sluice_flow_snapshot_t *p)
{
	return (sluice_metrics_src_t){.size_of = sizeof(sluice_metrics_src_t), .flow = "render \"t\"",
				      .now = now, .prev = p, .capacity = capacity, .classes = classes,
				      .nclasses = 2, .uptime_ns = 1234567890};
}

/* Renders into a fresh buffer of exactly the right size. */
static char *render(bool json, const sluice_metrics_src_t *src, size_t *len)
{
	int64_t n = json ? sluice_metrics_json(src, NULL, 0) : sluice_metrics_prometheus(src, NULL, 0);
	CHECK(n > 0);
	char *b = malloc((size_t)n + 1);
	CHECK(b != NULL);
	int64_t m = json ? sluice_metrics_json(src, b, (size_t)n + 1)
			 : sluice_metrics_prometheus(src, b, (size_t)n + 1);
	CHECK(m == n && b[n] == '\0' && strlen(b) == (size_t)n);
	*len = (size_t)n;
	return b;
}

static const struct json *at(const struct json *j, const char *path)
{
	const struct json *v = json_at(j, path);
	if (v == NULL) {
		fprintf(stderr, "FAIL: no %s\n", path);
		exit(TEST_FAIL);
	}
	return v;
}

static bool num_is(const struct json *j, const char *path, const char *want)
{
	const struct json *v = at(j, path);
	if (v->type != JSON_NUM || strcmp(v->s, want) != 0) {
		fprintf(stderr, "FAIL: %s is %s, want %s\n", path, v->type == JSON_NUM ? v->s : "(not a number)",
			want);
		return false;
	}
	return true;
}

static bool str_is(const struct json *j, const char *path, const char *want)
{
	const struct json *v = at(j, path);
	return v->type == JSON_STR && strcmp(v->s, want) == 0;
}

static bool null_at(const struct json *j, const char *path)
{
	return at(j, path)->type == JSON_NULL;
}

static void check_json(void)
{
	sluice_metrics_src_t src = src_of(&snap, NULL);
	size_t len;
	char *text = render(true, &src, &len);
	printf("%s", text);
	CHECK(text[len - 1] == '\n' && memchr(text, '\n', len - 1) == NULL);
	struct json *j = json_parse(text, len);
	CHECK(j != NULL);
	CHECK(num_is(j, "schema_version", "1"));
	CHECK(str_is(j, "flow", "render \"t\""));
	CHECK(str_is(j, "state", "running"));
	CHECK(at(j, "serving")->type == JSON_BOOL && at(j, "serving")->b);
	CHECK(num_is(j, "supervisor_pid", "4242") && num_is(j, "uptime_ns", "1234567890"));
	CHECK(num_is(j, "taken_ns", "10000000000") && null_at(j, "interval_ns"));
	CHECK(num_is(j, "tasks.submitted", "1000") && num_is(j, "tasks.completed", "990"));
	CHECK(num_is(j, "tasks.in_flight", "10") && null_at(j, "tasks.completed_per_s"));
	CHECK(num_is(j, "tasks.by_status.ok", "980") && num_is(j, "tasks.by_status.worker_died", "10"));
	CHECK(num_is(j, "tasks.by_status.other", "0") && at(j, "tasks.by_status")->n == 9);
	CHECK(str_is(j, "steps.0.name", "pa\"rs\\e\nx"));
	/* Two bad bytes, a valid é, \u0001, then the 'z's up to the array's end. */
	char want[64] = "\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9\x01";
	memset(want + strlen(want), 'z', SLUICE_STEP_NAME_MAX - 9);
	CHECK(str_is(j, "steps.1.name", want));
	CHECK(num_is(j, "steps.0.capacity", "64") && num_is(j, "steps.1.queued", "5"));
	CHECK(num_is(j, "steps.0.batch_avg", "3.333") && num_is(j, "steps.0.max_batch", "7"));
	/* 100 tasks in 1024..2047 ns: p50 1024 + 0.5 * 1024, p99 1024 + 0.99 * 1024. */
	CHECK(num_is(j, "steps.0.latency_p50_ns", "1536") && num_is(j, "steps.0.latency_p99_ns", "2038"));
	/* 50 in 0..1, 50 in 8..15: p50 at the top of bucket 0 (2), p99 8 + 49/50 * 8. */
	CHECK(num_is(j, "steps.1.latency_p50_ns", "2") && num_is(j, "steps.1.latency_p99_ns", "16"));
	CHECK(null_at(j, "steps.0.tasks_per_s"));
	CHECK(at(j, "steps.0.batch_hist")->n == SLUICE_HEALTH_BATCH_BUCKETS);
	CHECK(at(j, "steps.0.latency_hist")->n == SLUICE_HEALTH_LATENCY_BUCKETS);
	CHECK(num_is(j, "steps.0.latency_hist.10", "100"));
	CHECK(at(j, "steps.0.workers")->n == 2 && at(j, "steps.1.workers")->n == 1);
	CHECK(num_is(j, "steps.0.workers.1.slot", "1") && num_is(j, "steps.1.workers.0.slot", "2"));
	CHECK(num_is(j, "steps.1.workers.0.index", "0") && num_is(j, "steps.0.workers.1.position", "1"));
	CHECK(num_is(j, "steps.0.workers.1.pid", "101") && str_is(j, "steps.0.workers.1.state", "ready"));
	CHECK(num_is(j, "steps.0.workers.1.uptime_ns", "6000000000"));
	CHECK(num_is(j, "steps.0.workers.1.in_hand", "3") && num_is(j, "steps.0.workers.1.busy_ns", "2500000"));
	CHECK(null_at(j, "steps.0.workers.1.last_exit"));
	CHECK(num_is(j, "steps.1.workers.0.last_exit.pid", "99"));
	CHECK(null_at(j, "steps.1.workers.0.last_exit.code"));
	CHECK(num_is(j, "steps.1.workers.0.last_exit.signal", "9"));
	CHECK(str_is(j, "steps.1.workers.0.last_exit.signal_name", "SIGKILL"));
	CHECK(str_is(j, "steps.1.workers.0.last_exit.kill_reason", "none"));
	CHECK(num_is(j, "steps.1.workers.0.last_exit.ago_ns", "1000000000"));
	CHECK(num_is(j, "steps.0.workers.0.last_exit.code", "3"));
	CHECK(null_at(j, "steps.0.workers.0.last_exit.signal"));
	CHECK(str_is(j, "steps.0.workers.0.last_exit.kill_reason", "hung"));
	CHECK(at(j, "steps.0.workers.0.torn")->type == JSON_BOOL);
	CHECK(at(j, "arena.classes")->n == 2 && num_is(j, "arena.classes.0.in_use", "7"));
	CHECK(num_is(j, "arena.classes.1.block_size", "4096") && num_is(j, "arena.classes.0.high_water", "9"));
	json_free(j);

	/* No capacities, no classes, no uptime: nulls and an empty list. */
	src.capacity = NULL, src.classes = NULL, src.uptime_ns = 0;
	free(text);
	text = render(true, &src, &len);
	j = json_parse(text, len);
	CHECK(j != NULL && null_at(j, "steps.0.capacity") && null_at(j, "uptime_ns"));
	CHECK(at(j, "arena.classes")->n == 0);
	json_free(j);

	/* Truncation: snprintf's contract, every length. */
	src = src_of(&snap, NULL);
	free(text);
	text = render(true, &src, &len);
	char *buf = malloc(len + 1);
	CHECK(buf != NULL);
	for (size_t n = 0; n <= len + 1; n += (n < 64 ? 1 : 97)) {
		memset(buf, '#', len + 1);
		CHECK(sluice_metrics_json(&src, n ? buf : NULL, n) == (int64_t)len);
		if (n > 0) {
			size_t k = n - 1 < len ? n - 1 : len;
			CHECK(buf[k] == '\0' && memcmp(buf, text, k) == 0);
		}
	}
	free(buf);
	free(text);
}

static void check_rates(void)
{
	memcpy(psteps, steps, sizeof(steps));
	memcpy(pworkers, workers, sizeof(workers));
	prev = snap;
	prev.steps = psteps;
	prev.workers = pworkers;
	prev.taken_ns = snap.taken_ns - 2 * UINT64_C(1000000000); /* 2 s earlier */
	psteps[0].tasks = 40;                                     /* 60 since: 30/s */
	prev.completed[SLUICE_TASK_OK] = 580;                     /* 400 since: 200/s */
	sluice_metrics_src_t src = src_of(&snap, &prev);
	size_t len;
	char *text = render(true, &src, &len);
	struct json *j = json_parse(text, len);
	CHECK(j != NULL);
	CHECK(num_is(j, "interval_ns", "2000000000"));
	CHECK(num_is(j, "steps.0.tasks_per_s", "30.000") && num_is(j, "steps.1.tasks_per_s", "0.000"));
	CHECK(num_is(j, "tasks.completed_per_s", "200.000"));
	json_free(j);
	free(text);
	/* Unusable: taken later, or another geometry. */
	prev.taken_ns = snap.taken_ns;
	text = render(true, &src, &len);
	j = json_parse(text, len);
	CHECK(j != NULL && null_at(j, "interval_ns") && null_at(j, "steps.0.tasks_per_s"));
	json_free(j);
	free(text);
	prev.taken_ns = 1;
	prev.nworkers = 2;
	text = render(true, &src, &len);
	j = json_parse(text, len);
	CHECK(j != NULL && null_at(j, "interval_ns"));
	json_free(j);
	free(text);
	/* Prometheus has no rates: the same text with or without prev. */
	prev.nworkers = NWORKERS;
	sluice_metrics_src_t one = src_of(&snap, NULL);
	size_t l1, l2;
	char *a = render(false, &src, &l1), *b = render(false, &one, &l2);
	CHECK(l1 == l2 && strcmp(a, b) == 0);
	free(a);
	free(b);
}

static void check_prometheus(void)
{
	sluice_metrics_src_t src = src_of(&snap, NULL);
	size_t len;
	char *text = render(false, &src, &len);
	CHECK(prom_text_ok(text, len));
	static const char *const want[] = {
		"sluice_flow_state{flow=\"render \\\"t\\\"\"} 2\n",
		"sluice_flow_serving{flow=\"render \\\"t\\\"\"} 1\n",
		"sluice_flow_uptime_seconds{flow=\"render \\\"t\\\"\"} 1.23456789\n",
		"sluice_flow_tasks_completed_total{flow=\"render \\\"t\\\"\",status=\"worker_died\"} 10\n",
		"sluice_step_tasks_total{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 100\n",
		/* bad bytes and the control byte as U+FFFD */
		"step=\"\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9\xef\xbf\xbdzzzzzzzzzzzzzzzzzzzzzzz\"} 5\n",
		"sluice_step_queue_capacity{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 64\n",
		/* buckets: cumulative; le 2^(i+1) - 1 */
		"sluice_step_batch_size_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"1\"} 10\n",
		"sluice_step_batch_size_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"7\"} 30\n",
		"sluice_step_batch_size_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"+Inf\"} 30\n",
		"sluice_step_batch_size_sum{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 100\n",
		"sluice_step_batch_size_count{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 30\n",
		"sluice_step_latency_seconds_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"0.000001023\"} 0\n",
		"sluice_step_latency_seconds_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"0.000002047\"} 100\n",
		"sluice_step_latency_seconds_bucket{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",le=\"18446744073.709551615\"} 100\n",
		"sluice_step_latency_seconds_sum{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 0.00015\n",
		"sluice_step_latency_seconds_count{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\"} 100\n",
		"sluice_worker_busy_seconds{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",worker=\"1\"} 0.0025\n",
		",worker=\"0\"} 9\n", /* the last exit signal of step 1's worker */
		"sluice_worker_last_exit_code{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",worker=\"0\"} 3\n",
		"sluice_arena_blocks_in_use{flow=\"render \\\"t\\\"\",class=\"0\"} 7\n",
		"# TYPE sluice_step_latency_seconds histogram\n",
		"# TYPE sluice_worker_restarts_total counter\n",
	};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL) {
			fprintf(stderr, "FAIL: no %s in:\n%s\n", want[i], text);
			exit(TEST_FAIL);
		}
	/* Worker 1 of step 0 never ended a process: no exit samples. */
	CHECK(strstr(text, "sluice_worker_last_exit_code{flow=\"render \\\"t\\\"\",step=\"pa\\\"rs\\\\e\\nx\",worker=\"1\"}") == NULL);
	/* Each family's HELP and TYPE once, its samples together. */
	CHECK(strstr(strstr(text, "# TYPE sluice_step_tasks_total"), "# TYPE sluice_step_tasks_total") != NULL);
	char promtool[256];
	if (cmd_which("promtool", promtool, sizeof(promtool)) != NULL) {
		char file[] = "/tmp/sluice-render-XXXXXX";
		int fd = mkstemp(file);
		CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len);
		close(fd);
		char *argv[] = {promtool, "check", "metrics", NULL};
		struct cmd_out r = cmd_run_as(argv, file, 0, 60);
		printf("promtool check metrics: %d %s%s", r.status, r.out, r.err);
		CHECK(r.status == 0);
		cmd_out_free(&r);
		unlink(file);
	} else {
		printf("promtool is not installed: its check of this text was left out\n");
	}
	free(text);
}

static void check_serving(void)
{
	char why[256];
	sluice_metrics_src_t src = src_of(&snap, NULL);
	CHECK(sluice_metrics_serving(&src, why, sizeof(why)) && why[0] == '\0');
	snap.state = SLUICE_FLOW_DRAINING;
	steps[0].failed = 1;
	workers[2].state = SLUICE_WORKER_DEAD;
	CHECK(!sluice_metrics_serving(&src, why, sizeof(why)));
	printf("reason: %s\n", why);
	CHECK(strncmp(why, "flow is draining; step 'pa\\\"rs\\\\e\\nx' failed; step '\xef\xbf\xbd", 55) == 0);
	CHECK(strstr(why, "' has no worker ready") != NULL);
	/* Truncated, terminated. */
	CHECK(!sluice_metrics_serving(&src, why, 10) && strlen(why) == 9);
	CHECK(!sluice_metrics_serving(&src, NULL, 0));
	/* A retiring worker still serves. */
	snap.state = SLUICE_FLOW_RUNNING;
	steps[0].failed = 0;
	workers[2].state = SLUICE_WORKER_RETIRING;
	CHECK(sluice_metrics_serving(&src, why, sizeof(why)));
	CHECK(!sluice_metrics_serving(NULL, why, sizeof(why)) && strcmp(why, "no snapshot") == 0);
	make_snapshot();
}

static void check_bad_input(void)
{
	char buf[64];
	sluice_metrics_src_t src = src_of(&snap, NULL);
	CHECK(sluice_metrics_json(NULL, buf, sizeof(buf)) == SLUICE_EINVAL);
	CHECK(sluice_metrics_prometheus(NULL, buf, sizeof(buf)) == SLUICE_EINVAL);
	src.size_of = sizeof(src) - 1;
	CHECK(sluice_metrics_json(&src, buf, sizeof(buf)) == SLUICE_EINVAL);
	src = src_of(NULL, NULL);
	CHECK(sluice_metrics_prometheus(&src, buf, sizeof(buf)) == SLUICE_EINVAL);
	/* Slots outside the worker array: left out, both formats well formed. */
	steps[1].first_worker = UINT32_MAX - 1, steps[1].nslots = 5;
	steps[0].nslots = 7;
	snap.state = 99, workers[0].state = 77, workers[0].last_kill = 1000;
	workers[0].last_signal = -5, workers[1].last_signal = 200;
	workers[1].last_pid = 1;
	src = src_of(&snap, NULL);
	size_t len;
	char *text = render(true, &src, &len);
	struct json *j = json_parse(text, len);
	CHECK(j != NULL && str_is(j, "state", "unknown"));
	CHECK(at(j, "steps.0.workers")->n == 3 && at(j, "steps.1.workers")->n == 0);
	CHECK(str_is(j, "steps.0.workers.0.state", "unknown"));
	CHECK(str_is(j, "steps.0.workers.0.last_exit.kill_reason", "unknown"));
	CHECK(null_at(j, "steps.0.workers.0.last_exit.signal_name"));
	CHECK(null_at(j, "steps.0.workers.1.last_exit.signal_name"));
	json_free(j);
	free(text);
	text = render(false, &src, &len);
	CHECK(prom_text_ok(text, len));
	free(text);
	make_snapshot();
}

static void check_quantile(void)
{
	uint64_t h[64] = {0};
	double v;
	CHECK(!sluice_metrics_quantile(h, 64, 0.5, &v) && v == 0);
	h[5] = 4; /* 32 .. 63 */
	CHECK(sluice_metrics_quantile(h, 64, 0, &v) && v == 32);
	CHECK(sluice_metrics_quantile(h, 64, 0.25, &v) && v == 40);
	CHECK(sluice_metrics_quantile(h, 64, 1, &v) && v == 64);
	CHECK(!sluice_metrics_quantile(h, 64, 1.5, &v) && !sluice_metrics_quantile(h, 64, -0.1, &v));
	CHECK(!sluice_metrics_quantile(NULL, 64, 0.5, &v) && !sluice_metrics_quantile(h, 65, 0.5, &v));
	h[63] = UINT64_MAX;
	CHECK(sluice_metrics_quantile(h, 64, 1, &v) && v > 9e18);
}

int main(void)
{
	make_snapshot();
	check_quantile();
	check_json();
	check_rates();
	check_prometheus();
	check_serving();
	check_bad_input();
	printf("ok\n");
	return TEST_PASS;
}
