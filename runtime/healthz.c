/* sluice_metrics_serving: the verdict behind /healthz (include/sluice/metrics.h). */
#include <sluice/metrics.h>

#include "runtime/render_text.h"

#include <string.h>

/* Appends "; " (unless first) and the reason to o. */
static void because(struct sluice__out *o, bool *first, const char *a, const char *name,
		    size_t name_len, const char *b)
{
	if (!*first)
		sluice__out_str(o, "; ");
	*first = false;
	sluice__out_str(o, a);
	/* A name from the snapshot: printable UTF-8 (escaped as a label). */
	if (name != NULL)
		sluice__out_label(o, name, name_len);
	sluice__out_str(o, b);
}

bool sluice_metrics_serving(const sluice_metrics_src_t *src, char *reason, size_t len)
{
	struct sluice__out o;
	sluice__out_init(&o, reason, len);
	bool first = true;
	if (!sluice__src_ok(src)) {
		because(&o, &first, "no snapshot", NULL, 0, "");
		sluice__out_end(&o);
		return false;
	}
	const sluice_flow_snapshot_t *s = src->now;
	if (s->state != SLUICE_FLOW_RUNNING)
		because(&o, &first, "flow is ", NULL, 0, sluice__flow_state_name(s->state));
	for (uint32_t i = 0; i < s->nsteps; i++) {
		const sluice_step_health_t *st = &s->steps[i];
		size_t n = sluice__name_len(st->name, sizeof(st->name));
		if (st->failed != 0) {
			because(&o, &first, "step '", st->name, n, "' failed");
			continue;
		}
		bool ready = false;
		for (uint32_t k = 0; k < st->nslots && !ready; k++) {
			const sluice_worker_health_t *w = sluice__step_worker(s, st, k);
			if (w == NULL)
				break;
			ready = w->state == SLUICE_WORKER_READY || w->state == SLUICE_WORKER_RETIRING;
		}
		if (!ready)
			because(&o, &first, "step '", st->name, n, "' has no worker ready");
	}
	sluice__out_end(&o);
	return first;
}
