/* sluice_metrics_json: a health snapshot as one JSON object. The schema
 * (every field, its type and unit) is docs/INSPECT.md and
 * docs/schema/inspect.schema.json; a field added here goes there too.
 */
#define _GNU_SOURCE
#include <sluice/metrics.h>
#include <sluice/error.h>

#include "runtime/render_text.h"

#include <string.h>

struct json {
	struct sluice__out o;
	bool first; /* no member written yet in the innermost object or array */
};

static void open_(struct json *j, char c)
{
	sluice__out_mem(&j->o, &c, 1);
	j->first = true;
}

static void close_(struct json *j, char c)
{
	sluice__out_mem(&j->o, &c, 1);
	j->first = false;
}

/* `"k":`, after a comma unless it is the object's first member. */
static void key(struct json *j, const char *k)
{
	if (!j->first)
		sluice__out_mem(&j->o, ",", 1);
	j->first = false;
	sluice__out_mem(&j->o, "\"", 1);
	sluice__out_str(&j->o, k);
	sluice__out_mem(&j->o, "\":", 2);
}

static void u64(struct json *j, const char *k, uint64_t v)
{
	key(j, k);
	sluice__out_u64(&j->o, v);
}

static void i64(struct json *j, const char *k, int64_t v)
{
	key(j, k);
	sluice__out_i64(&j->o, v);
}

static void boolean(struct json *j, const char *k, bool v)
{
	key(j, k);
	sluice__out_str(&j->o, v ? "true" : "false");
}

static void null(struct json *j, const char *k)
{
	key(j, k);
	sluice__out_str(&j->o, "null");
}

static void str(struct json *j, const char *k, const char *s, size_t n)
{
	key(j, k);
	sluice__out_mem(&j->o, "\"", 1);
	sluice__out_json_str(&j->o, s, n);
	sluice__out_mem(&j->o, "\"", 1);
}

static void cstr(struct json *j, const char *k, const char *s)
{
	str(j, k, s, strlen(s));
}

static void array_u64(struct json *j, const char *k, const uint64_t *v, unsigned n)
{
	key(j, k);
	sluice__out_mem(&j->o, "[", 1);
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			sluice__out_mem(&j->o, ",", 1);
		sluice__out_u64(&j->o, v[i]);
	}
	sluice__out_mem(&j->o, "]", 1);
}

/* (now - before) per second over interval_ns; null without an interval. */
static void rate(struct json *j, const char *k, uint64_t now, uint64_t before, uint64_t interval_ns)
{
	if (interval_ns == 0) {
		null(j, k);
		return;
	}
	key(j, k);
	double d = now >= before ? (double)(now - before) : 0;
	sluice__out_fixed3(&j->o, d * 1e9 / (double)interval_ns);
}

/* The q-quantile of a latency histogram, rounded to a nanosecond; null
 * when it is empty. */
static void quantile_ns(struct json *j, const char *k, const uint64_t *hist, double q)
{
	double v;
	if (!sluice_metrics_quantile(hist, SLUICE_HEALTH_LATENCY_BUCKETS, q, &v)) {
		null(j, k);
		return;
	}
	key(j, k);
	sluice__out_u64(&j->o, v >= 1.8e19 ? UINT64_MAX : (uint64_t)(v + 0.5));
}

static bool live(uint32_t state)
{
	return state == SLUICE_WORKER_STARTING || state == SLUICE_WORKER_READY ||
	       state == SLUICE_WORKER_RETIRING;
}

static void last_exit(struct json *j, uint64_t taken, const sluice_worker_health_t *w)
{
	if (w->last_pid == 0) {
		null(j, "last_exit");
		return;
	}
	key(j, "last_exit");
	open_(j, '{');
	i64(j, "pid", w->last_pid);
	if (w->last_signal != 0) {
		null(j, "code");
		i64(j, "signal", w->last_signal);
		const char *abbrev = w->last_signal > 0 && w->last_signal < 128
					     ? sigabbrev_np(w->last_signal)
					     : NULL;
		if (abbrev != NULL) {
			char name[24] = "SIG";
			strncat(name, abbrev, sizeof(name) - 4);
			cstr(j, "signal_name", name);
		} else {
			null(j, "signal_name");
		}
	} else {
		i64(j, "code", w->last_exit_code);
		null(j, "signal");
		null(j, "signal_name");
	}
	cstr(j, "kill_reason", sluice__kill_reason_name(w->last_kill));
	if (w->last_death_ns != 0 && w->last_death_ns <= taken)
		u64(j, "ago_ns", taken - w->last_death_ns);
	else
		null(j, "ago_ns");
	close_(j, '}');
}

static void worker(struct json *j, const sluice_flow_snapshot_t *s, const sluice_step_health_t *st,
		   uint32_t k, const sluice_worker_health_t *w)
{
	open_(j, '{');
	u64(j, "slot", (uint64_t)st->first_worker + k);
	u64(j, "index", k);
	if (w->position < st->nprocs)
		u64(j, "position", w->position);
	else
		null(j, "position");
	i64(j, "pid", w->pid);
	cstr(j, "state", sluice__worker_state_name(w->state));
	if (live(w->state) && w->forked_ns != 0 && w->forked_ns <= s->taken_ns)
		u64(j, "uptime_ns", s->taken_ns - w->forked_ns);
	else
		null(j, "uptime_ns");
	u64(j, "in_hand", w->in_hand);
	u64(j, "busy_ns", w->busy_ns);
	u64(j, "tasks", w->tasks);
	u64(j, "batches", w->batches);
	u64(j, "handler_errors", w->handler_errors);
	u64(j, "timeouts", w->timeouts);
	u64(j, "bad_descriptors", w->bad_descriptors);
	u64(j, "max_batch", w->max_batch);
	u64(j, "restarts", w->restarts);
	u64(j, "deaths", w->deaths);
	last_exit(j, s->taken_ns, w);
	boolean(j, "torn", w->torn != 0);
	close_(j, '}');
}

static void step(struct json *j, const sluice_metrics_src_t *src, const sluice_flow_snapshot_t *p,
		 uint32_t i)
{
	const sluice_flow_snapshot_t *s = src->now;
	const sluice_step_health_t *st = &s->steps[i];
	uint64_t interval = p != NULL ? s->taken_ns - p->taken_ns : 0;
	open_(j, '{');
	u64(j, "index", i);
	str(j, "name", st->name, sluice__name_len(st->name, sizeof(st->name)));
	u64(j, "nprocs", st->nprocs);
	u64(j, "batch_size", st->batch_size);
	if (src->capacity != NULL)
		u64(j, "capacity", src->capacity[i]);
	else
		null(j, "capacity");
	u64(j, "queued", st->queued);
	boolean(j, "failed", st->failed != 0);
	u64(j, "workers_live", st->workers_live);
	u64(j, "tasks", st->tasks);
	u64(j, "batches", st->batches);
	rate(j, "tasks_per_s", st->tasks, p != NULL ? p->steps[i].tasks : 0, interval);
	u64(j, "handler_errors", st->handler_errors);
	u64(j, "timeouts", st->timeouts);
	u64(j, "bad_descriptors", st->bad_descriptors);
	u64(j, "deaths", st->deaths);
	u64(j, "restarts", st->restarts);
	u64(j, "recycled", st->recycled);
	u64(j, "hung_kills", st->hung_kills);
	u64(j, "requeued", st->requeued);
	u64(j, "retried", st->retried);
	u64(j, "worker_died", st->worker_died);
	u64(j, "max_batch", st->max_batch);
	key(j, "batch_avg");
	sluice__out_fixed3(&j->o, st->batches != 0 ? (double)st->tasks / (double)st->batches : 0);
	u64(j, "latency_sum_ns", st->latency_sum_ns);
	quantile_ns(j, "latency_p50_ns", st->latency_hist, 0.5);
	quantile_ns(j, "latency_p99_ns", st->latency_hist, 0.99);
	array_u64(j, "batch_hist", st->batch_hist, SLUICE_HEALTH_BATCH_BUCKETS);
	array_u64(j, "latency_hist", st->latency_hist, SLUICE_HEALTH_LATENCY_BUCKETS);
	key(j, "workers");
	open_(j, '[');
	for (uint32_t k = 0; k < st->nslots; k++) {
		const sluice_worker_health_t *w = sluice__step_worker(s, st, k);
		if (w == NULL)
			break;
		if (k > 0)
			sluice__out_mem(&j->o, ",", 1);
		worker(j, s, st, k, w);
	}
	close_(j, ']');
	close_(j, '}');
}

static void tasks(struct json *j, const sluice_flow_snapshot_t *s, const sluice_flow_snapshot_t *p)
{
	uint64_t done = 0, done_before = 0;
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++) {
		done = sluice__sat_add(done, s->completed[k]);
		if (p != NULL)
			done_before = sluice__sat_add(done_before, p->completed[k]);
	}
	key(j, "tasks");
	open_(j, '{');
	u64(j, "submitted", s->submitted);
	u64(j, "completed", done);
	u64(j, "in_flight", s->in_flight);
	u64(j, "lost_completions", s->lost_completions);
	rate(j, "completed_per_s", done, done_before, p != NULL ? s->taken_ns - p->taken_ns : 0);
	key(j, "by_status");
	open_(j, '{');
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++) {
		if (!j->first)
			sluice__out_mem(&j->o, ",", 1);
		j->first = false;
		sluice__out_mem(&j->o, "\"", 1);
		sluice__out_status_key(&j->o, k);
		sluice__out_mem(&j->o, "\":", 2);
		sluice__out_u64(&j->o, s->completed[k]);
	}
	close_(j, '}');
	close_(j, '}');
}

static void arena(struct json *j, const sluice_metrics_src_t *src)
{
	key(j, "arena");
	open_(j, '{');
	key(j, "classes");
	open_(j, '[');
	for (uint32_t c = 0; src->classes != NULL && c < src->nclasses; c++) {
		const sluice_blocks_stats_t *b = &src->classes[c];
		if (c > 0)
			sluice__out_mem(&j->o, ",", 1);
		open_(j, '{');
		u64(j, "class", c);
		u64(j, "block_size", b->block_size);
		u64(j, "blocks", b->capacity);
		u64(j, "in_use", b->in_use);
		u64(j, "high_water", b->high_water);
		close_(j, '}');
	}
	close_(j, ']');
	close_(j, '}');
}

int64_t sluice_metrics_json(const sluice_metrics_src_t *src, char *buf, size_t len)
{
	if (!sluice__src_ok(src))
		return SLUICE_EINVAL;
	const sluice_flow_snapshot_t *s = src->now, *p = sluice__usable_prev(src);
	struct json j;
	sluice__out_init(&j.o, buf, len);
	open_(&j, '{');
	u64(&j, "schema_version", SLUICE_METRICS_SCHEMA_VERSION);
	const char *flow = src->flow != NULL ? src->flow : "";
	str(&j, "flow", flow, strlen(flow));
	cstr(&j, "state", sluice__flow_state_name(s->state));
	boolean(&j, "serving", sluice_metrics_serving(src, NULL, 0));
	i64(&j, "supervisor_pid", s->supervisor_pid);
	if (src->uptime_ns != 0)
		u64(&j, "uptime_ns", src->uptime_ns);
	else
		null(&j, "uptime_ns");
	u64(&j, "taken_ns", s->taken_ns);
	if (p != NULL)
		u64(&j, "interval_ns", s->taken_ns - p->taken_ns);
	else
		null(&j, "interval_ns");
	u64(&j, "torn_records", s->torn);
	tasks(&j, s, p);
	key(&j, "steps");
	open_(&j, '[');
	for (uint32_t i = 0; i < s->nsteps; i++) {
		if (i > 0)
			sluice__out_mem(&j.o, ",", 1);
		step(&j, src, p, i);
	}
	close_(&j, ']');
	arena(&j, src);
	close_(&j, '}');
	sluice__out_mem(&j.o, "\n", 1);
	return sluice__out_end(&j.o);
}
