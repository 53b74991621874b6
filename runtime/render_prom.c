/* sluice_metrics_prometheus: a health snapshot in the Prometheus text
 * exposition format 0.0.4. Every family once, with HELP and TYPE, its
 * samples together; labels flow, step, worker, class, status, le. The
 * names, labels and units are listed in docs/INSPECT.md; a family added
 * here goes there too.
 *
 * The two histograms are the snapshot's log2 histograms as they are:
 * bucket i holds values of 2^i .. 2^(i+1) - 1 (integers), so its upper
 * bound, inclusive as `le` is, is 2^(i+1) - 1: tasks for the batch size,
 * nanoseconds (written as seconds, exactly) for the latency. Buckets are
 * cumulative and _count is the +Inf bucket; _sum is the snapshot's
 * (tasks for batch sizes, the latency sum for latencies).
 */
#include <sluice/metrics.h>
#include <sluice/error.h>

#include "runtime/render_text.h"

#include <stddef.h>
#include <string.h>

struct prom {
	struct sluice__out o;
	const char *flow;
	size_t flow_len;
};

static void family(struct prom *P, const char *name, const char *type, const char *help)
{
	sluice__out_str(&P->o, "# HELP ");
	sluice__out_str(&P->o, name);
	sluice__out_mem(&P->o, " ", 1);
	sluice__out_str(&P->o, help);
	sluice__out_str(&P->o, "\n# TYPE ");
	sluice__out_str(&P->o, name);
	sluice__out_mem(&P->o, " ", 1);
	sluice__out_str(&P->o, type);
	sluice__out_mem(&P->o, "\n", 1);
}

/* `name{flow="..."`: the caller adds labels, then ends the sample. */
static void sample(struct prom *P, const char *name, const char *suffix)
{
	sluice__out_str(&P->o, name);
	sluice__out_str(&P->o, suffix);
	sluice__out_str(&P->o, "{flow=\"");
	sluice__out_label(&P->o, P->flow, P->flow_len);
	sluice__out_mem(&P->o, "\"", 1);
}

static void label(struct prom *P, const char *k, const char *v, size_t n)
{
	sluice__out_mem(&P->o, ",", 1);
	sluice__out_str(&P->o, k);
	sluice__out_mem(&P->o, "=\"", 2);
	sluice__out_label(&P->o, v, n);
	sluice__out_mem(&P->o, "\"", 1);
}

static void label_u64(struct prom *P, const char *k, uint64_t v)
{
	sluice__out_mem(&P->o, ",", 1);
	sluice__out_str(&P->o, k);
	sluice__out_mem(&P->o, "=\"", 2);
	sluice__out_u64(&P->o, v);
	sluice__out_mem(&P->o, "\"", 1);
}

static void step_label(struct prom *P, const sluice_step_health_t *st)
{
	label(P, "step", st->name, sluice__name_len(st->name, sizeof(st->name)));
}

static void end_u64(struct prom *P, uint64_t v)
{
	sluice__out_mem(&P->o, "} ", 2);
	sluice__out_u64(&P->o, v);
	sluice__out_mem(&P->o, "\n", 1);
}

static void end_i64(struct prom *P, int64_t v)
{
	sluice__out_mem(&P->o, "} ", 2);
	sluice__out_i64(&P->o, v);
	sluice__out_mem(&P->o, "\n", 1);
}

static void end_seconds(struct prom *P, uint64_t ns)
{
	sluice__out_mem(&P->o, "} ", 2);
	sluice__out_seconds(&P->o, ns);
	sluice__out_mem(&P->o, "\n", 1);
}

/* ---- the flow -------------------------------------------------------------------- */

static void flow_metrics(struct prom *P, const sluice_metrics_src_t *src)
{
	const sluice_flow_snapshot_t *s = src->now;
	family(P, "sluice_flow_state", "gauge",
	       "Flow state: 0 created, 1 starting, 2 running, 3 start failed, 4 draining, "
	       "5 stopping, 6 stopped.");
	sample(P, "sluice_flow_state", "");
	end_u64(P, s->state);
	family(P, "sluice_flow_serving", "gauge",
	       "1 when the flow runs and every step has a ready worker and has not failed "
	       "(/healthz answers 200), else 0.");
	sample(P, "sluice_flow_serving", "");
	end_u64(P, sluice_metrics_serving(src, NULL, 0));
	family(P, "sluice_flow_supervisor_pid", "gauge", "Process id of the flow's supervisor (0 before start).");
	sample(P, "sluice_flow_supervisor_pid", "");
	end_i64(P, s->supervisor_pid);
	if (src->uptime_ns != 0) {
		family(P, "sluice_flow_uptime_seconds", "gauge", "How long the supervisor has run.");
		sample(P, "sluice_flow_uptime_seconds", "");
		end_seconds(P, src->uptime_ns);
	}
	family(P, "sluice_flow_tasks_submitted_total", "counter", "Tasks submitted by every client.");
	sample(P, "sluice_flow_tasks_submitted_total", "");
	end_u64(P, s->submitted);
	family(P, "sluice_flow_tasks_completed_total", "counter",
	       "Tasks handed back to their clients, by status.");
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++) {
		sample(P, "sluice_flow_tasks_completed_total", "");
		sluice__out_str(&P->o, ",status=\"");
		sluice__out_status_key(&P->o, k);
		sluice__out_mem(&P->o, "\"", 1);
		end_u64(P, s->completed[k]);
	}
	family(P, "sluice_flow_tasks_in_flight", "gauge", "Tasks submitted and not yet handed back.");
	sample(P, "sluice_flow_tasks_in_flight", "");
	end_u64(P, s->in_flight);
	family(P, "sluice_flow_completions_lost_total", "counter",
	       "Completions the supervisor could not queue to their client.");
	sample(P, "sluice_flow_completions_lost_total", "");
	end_u64(P, s->lost_completions);
	family(P, "sluice_flow_torn_records", "gauge",
	       "Health records of this snapshot that could not be read consistently.");
	sample(P, "sluice_flow_torn_records", "");
	end_u64(P, s->torn);
}

/* ---- steps ------------------------------------------------------------------------- */

struct field {
	const char *name, *type, *help;
	size_t off;
	unsigned size; /* 4 or 8: an unsigned field of the record */
};

#define STEP_FIELD(f) offsetof(sluice_step_health_t, f), sizeof(((sluice_step_health_t *)0)->f)
static const struct field step_fields[] = {
	{"sluice_step_workers", "gauge", "Worker processes the step runs (nprocs).", STEP_FIELD(nprocs)},
	{"sluice_step_workers_live", "gauge", "Worker processes started and not exited.",
	 STEP_FIELD(workers_live)},
	{"sluice_step_batch_size_limit", "gauge", "Most tasks one handle() call gets (batch_size).",
	 STEP_FIELD(batch_size)},
	{"sluice_step_queue_depth", "gauge", "Tasks queued on the step's ring.", STEP_FIELD(queued)},
	{"sluice_step_failed", "gauge", "1 once the step failed (its workers kept dying).",
	 STEP_FIELD(failed)},
	{"sluice_step_tasks_total", "counter", "Tasks of handle() calls that returned.",
	 STEP_FIELD(tasks)},
	{"sluice_step_batches_total", "counter", "handle() calls that returned.", STEP_FIELD(batches)},
	{"sluice_step_handler_errors_total", "counter", "Tasks the handler failed.",
	 STEP_FIELD(handler_errors)},
	{"sluice_step_timeouts_total", "counter", "Tasks that ended with a timeout at this step.",
	 STEP_FIELD(timeouts)},
	{"sluice_step_bad_descriptors_total", "counter", "Descriptors the step's workers refused.",
	 STEP_FIELD(bad_descriptors)},
	{"sluice_step_worker_deaths_total", "counter", "Worker processes that did not exit cleanly.",
	 STEP_FIELD(deaths)},
	{"sluice_step_worker_restarts_total", "counter", "Workers forked to replace dead ones.",
	 STEP_FIELD(restarts)},
	{"sluice_step_workers_recycled_total", "counter",
	 "Workers replaced after max_tasks_per_worker tasks.", STEP_FIELD(recycled)},
	{"sluice_step_hung_kills_total", "counter",
	 "Workers killed for a task past its timeout and grace, or a missed heartbeat.",
	 STEP_FIELD(hung_kills)},
	{"sluice_step_tasks_requeued_total", "counter",
	 "Tasks a dead worker had taken but not run, queued again.", STEP_FIELD(requeued)},
	{"sluice_step_tasks_retried_total", "counter", "Tasks a dead worker held, run again.",
	 STEP_FIELD(retried)},
	{"sluice_step_tasks_worker_died_total", "counter",
	 "Tasks completed with the status worker died.", STEP_FIELD(worker_died)},
};
#undef STEP_FIELD

static uint64_t field_u64(const void *rec, const struct field *f)
{
	const char *p = (const char *)rec + f->off;
	if (f->size == 4) {
		uint32_t v;
		memcpy(&v, p, sizeof(v));
		return v;
	}
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* One log2 histogram of a step: cumulative buckets with le = 2^(i+1) - 1
 * (seconds when ns), +Inf, _sum, _count. */
static void histogram(struct prom *P, const char *name, const sluice_step_health_t *st,
		      const uint64_t *hist, unsigned n, bool ns, uint64_t sum)
{
	uint64_t cum = 0;
	for (unsigned i = 0; i <= n; i++) {
		sample(P, name, "_bucket");
		step_label(P, st);
		sluice__out_str(&P->o, ",le=\"");
		if (i == n) {
			sluice__out_str(&P->o, "+Inf");
		} else {
			cum = sluice__sat_add(cum, hist[i]);
			uint64_t top = i == 63 ? UINT64_MAX : ((uint64_t)1 << (i + 1)) - 1;
			if (ns)
				sluice__out_seconds(&P->o, top);
			else
				sluice__out_u64(&P->o, top);
		}
		sluice__out_mem(&P->o, "\"", 1);
		end_u64(P, cum);
	}
	sample(P, name, "_sum");
	step_label(P, st);
	if (ns)
		end_seconds(P, sum);
	else
		end_u64(P, sum);
	sample(P, name, "_count");
	step_label(P, st);
	end_u64(P, cum);
}

static void step_metrics(struct prom *P, const sluice_metrics_src_t *src)
{
	const sluice_flow_snapshot_t *s = src->now;
	if (s->nsteps == 0)
		return;
	for (size_t k = 0; k < sizeof(step_fields) / sizeof(step_fields[0]); k++) {
		const struct field *f = &step_fields[k];
		family(P, f->name, f->type, f->help);
		for (uint32_t i = 0; i < s->nsteps; i++) {
			sample(P, f->name, "");
			step_label(P, &s->steps[i]);
			end_u64(P, field_u64(&s->steps[i], f));
		}
	}
	if (src->capacity != NULL) {
		family(P, "sluice_step_queue_capacity", "gauge",
		       "Slots of the step's ring per producer lane (capacity).");
		for (uint32_t i = 0; i < s->nsteps; i++) {
			sample(P, "sluice_step_queue_capacity", "");
			step_label(P, &s->steps[i]);
			end_u64(P, src->capacity[i]);
		}
	}
	family(P, "sluice_step_batch_size", "histogram", "Tasks per handle() call.");
	for (uint32_t i = 0; i < s->nsteps; i++)
		histogram(P, "sluice_step_batch_size", &s->steps[i], s->steps[i].batch_hist,
			  SLUICE_HEALTH_BATCH_BUCKETS, false, s->steps[i].tasks);
	family(P, "sluice_step_latency_seconds", "histogram",
	       "Time from a task's queueing at the step to the return of its handle() call.");
	for (uint32_t i = 0; i < s->nsteps; i++)
		histogram(P, "sluice_step_latency_seconds", &s->steps[i], s->steps[i].latency_hist,
			  SLUICE_HEALTH_LATENCY_BUCKETS, true, s->steps[i].latency_sum_ns);
}

/* ---- workers ----------------------------------------------------------------------- */

enum wkind { W_PID, W_STATE, W_TASKS, W_BATCHES, W_IN_HAND, W_BUSY, W_RESTARTS, W_DEATHS,
	     W_EXIT_CODE, W_EXIT_SIGNAL };

static const struct {
	const char *name, *type, *help;
} worker_families[] = {
	[W_PID] = {"sluice_worker_pid", "gauge", "Process id of the slot's latest process (0: none yet)."},
	[W_STATE] = {"sluice_worker_state", "gauge",
		     "Worker state: 0 none, 1 starting, 2 ready, 3 failed, 4 exited, 5 dead, 6 retiring."},
	[W_TASKS] = {"sluice_worker_tasks_total", "counter",
		     "Tasks of handle() calls that returned, over the slot's processes."},
	[W_BATCHES] = {"sluice_worker_batches_total", "counter",
		       "handle() calls that returned, over the slot's processes."},
	[W_IN_HAND] = {"sluice_worker_tasks_in_hand", "gauge", "Tasks of the handle() call in hand."},
	[W_BUSY] = {"sluice_worker_busy_seconds", "gauge",
		    "Age of the handle() call in hand (0: none)."},
	[W_RESTARTS] = {"sluice_worker_restarts_total", "counter",
			"Processes forked into the slot to replace a dead one."},
	[W_DEATHS] = {"sluice_worker_deaths_total", "counter",
		      "Processes of the slot that did not exit cleanly."},
	[W_EXIT_CODE] = {"sluice_worker_last_exit_code", "gauge",
			 "Exit code of the slot's last ended process (-1: a signal ended it)."},
	[W_EXIT_SIGNAL] = {"sluice_worker_last_exit_signal", "gauge",
			   "Signal that ended the slot's last ended process (0: it exited)."},
};

static void worker_metrics(struct prom *P, const sluice_flow_snapshot_t *s)
{
	if (s->nworkers == 0 || s->workers == NULL)
		return;
	for (unsigned m = 0; m < sizeof(worker_families) / sizeof(worker_families[0]); m++) {
		family(P, worker_families[m].name, worker_families[m].type, worker_families[m].help);
		for (uint32_t i = 0; i < s->nsteps; i++) {
			const sluice_step_health_t *st = &s->steps[i];
			for (uint32_t k = 0; k < st->nslots; k++) {
				const sluice_worker_health_t *w = sluice__step_worker(s, st, k);
				if (w == NULL)
					break;
				bool exit_rec = m == W_EXIT_CODE || m == W_EXIT_SIGNAL;
				if (exit_rec && w->last_pid == 0)
					continue; /* no process ended yet */
				sample(P, worker_families[m].name, "");
				step_label(P, st);
				label_u64(P, "worker", k);
				switch ((enum wkind)m) {
				case W_PID: end_i64(P, w->pid); break;
				case W_STATE: end_u64(P, w->state); break;
				case W_TASKS: end_u64(P, w->tasks); break;
				case W_BATCHES: end_u64(P, w->batches); break;
				case W_IN_HAND: end_u64(P, w->in_hand); break;
				case W_BUSY: end_seconds(P, w->busy_ns); break;
				case W_RESTARTS: end_u64(P, w->restarts); break;
				case W_DEATHS: end_u64(P, w->deaths); break;
				case W_EXIT_CODE: end_i64(P, w->last_exit_code); break;
				case W_EXIT_SIGNAL: end_i64(P, w->last_signal); break;
				}
			}
		}
	}
}

/* ---- the arena ---------------------------------------------------------------------- */

static void arena_metrics(struct prom *P, const sluice_metrics_src_t *src)
{
	if (src->classes == NULL || src->nclasses == 0)
		return;
	static const struct {
		const char *name, *help;
	} fams[] = {
		{"sluice_arena_block_size_bytes", "Size of each block of the class."},
		{"sluice_arena_blocks", "Blocks in the class."},
		{"sluice_arena_blocks_in_use", "Blocks of the class allocated or held in caches."},
		{"sluice_arena_blocks_high_water", "Most blocks of the class ever in use at once."},
	};
	for (unsigned m = 0; m < sizeof(fams) / sizeof(fams[0]); m++) {
		family(P, fams[m].name, "gauge", fams[m].help);
		for (uint32_t c = 0; c < src->nclasses; c++) {
			const sluice_blocks_stats_t *b = &src->classes[c];
			sample(P, fams[m].name, "");
			label_u64(P, "class", c);
			end_u64(P, m == 0 ? b->block_size
				  : m == 1 ? b->capacity
				  : m == 2 ? b->in_use
					   : b->high_water);
		}
	}
}

int64_t sluice_metrics_prometheus(const sluice_metrics_src_t *src, char *buf, size_t len)
{
	if (!sluice__src_ok(src))
		return SLUICE_EINVAL;
	struct prom P;
	sluice__out_init(&P.o, buf, len);
	P.flow = src->flow != NULL ? src->flow : "";
	P.flow_len = strlen(P.flow);
	flow_metrics(&P, src);
	step_metrics(&P, src);
	worker_metrics(&P, src->now);
	arena_metrics(&P, src);
	return sluice__out_end(&P.o);
}
