/* libFuzzer target: the metrics renderers (include/sluice/metrics.h) on
 * arbitrary health states. The input is a snapshot as raw bytes (the
 * layout below, FUZZ_RENDER_*): counts, flags, a flow name, then the
 * snapshot's header, steps and workers, an earlier snapshot, per-step
 * capacities, per-class block statistics and an uptime, each as the
 * structs' bytes (what is missing reads as zeros). Arrays sit in heap
 * buffers of exactly their size, so ASan sees any read past them.
 *
 * What must hold: no crash, no read or write out of bounds, no undefined
 * behaviour; sluice_metrics_json and _prometheus return the same length
 * whatever the buffer (snprintf's contract) and never write past it;
 * the JSON is one well-formed JSON value (a strict parser, valid UTF-8)
 * ending in '\n'; the Prometheus text is valid UTF-8 made of well-formed
 * HELP, TYPE and sample lines; the serving verdict's reason is valid
 * UTF-8; sluice_metrics_quantile stays within its buckets' range.
 *
 * Layout: byte 0 steps (% 17), byte 1 workers (% 33), byte 2 classes
 * (% 33), byte 3 flags (FUZZ_RENDER_PREV: an earlier snapshot;
 * FUZZ_RENDER_CAPACITY; FUZZ_RENDER_CLASSES; FUZZ_RENDER_PREV_GEOMETRY:
 * the earlier one's counts from its own bytes), byte 4 the name's length
 * (% 65), the name, then the structs in the order above.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include "common/json.h"
#include "common/prom_text.h"

#include <sluice/metrics.h>

struct input {
	const uint8_t *p;
	size_t left;
};

/* n bytes of the input into dst; zeros once it runs out. */
static void take(struct input *in, void *dst, size_t n)
{
	size_t k = n < in->left ? n : in->left;
	memcpy(dst, in->p, k);
	memset((char *)dst + k, 0, n - k);
	in->p += k;
	in->left -= k;
}

static void *array(struct input *in, size_t n, size_t size)
{
	void *a = malloc(n * size + 1); /* +1: malloc(0) */
	FUZZ_CHECK(a != NULL);
	take(in, a, n * size);
	return a;
}

static bool utf8_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = json_utf8_((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* Renders with a buffer of exactly the size it asks for, then again with
 * a short one, and returns the whole text. */
static char *render(bool json, const sluice_metrics_src_t *src, size_t *len)
{
	int64_t n = json ? sluice_metrics_json(src, NULL, 0) : sluice_metrics_prometheus(src, NULL, 0);
	FUZZ_CHECK(n >= 0);
	char *b = malloc((size_t)n + 1);
	FUZZ_CHECK(b != NULL);
	int64_t m = json ? sluice_metrics_json(src, b, (size_t)n + 1)
			 : sluice_metrics_prometheus(src, b, (size_t)n + 1);
	FUZZ_CHECK(m == n && b[n] == '\0');
	size_t short_len = (size_t)n / 3 + 1;
	char *s = malloc(short_len);
	FUZZ_CHECK(s != NULL);
	m = json ? sluice_metrics_json(src, s, short_len) : sluice_metrics_prometheus(src, s, short_len);
	FUZZ_CHECK(m == n && s[short_len - 1] == '\0' && memcmp(s, b, short_len - 1) == 0);
	free(s);
	*len = (size_t)n;
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {.p = data, .left = size};
	uint8_t head[5];
	take(&in, head, sizeof(head));
	uint32_t nsteps = head[0] % (SLUICE_FLOW_MAX_STEPS + 1);
	uint32_t nworkers = head[1] % 33;
	uint32_t nclasses = head[2] % (SLUICE_BLOCKS_MAX_CLASSES + 1);
	uint8_t flags = head[3];
	char name[65];
	size_t nlen = head[4] % 65;
	take(&in, name, nlen);
	name[nlen] = '\0'; /* the caller's name is a C string: it ends at its first NUL */

	sluice_flow_snapshot_t now, prev;
	take(&in, &now, sizeof(now));
	now.nsteps = nsteps;
	now.nworkers = nworkers;
	now.steps = array(&in, nsteps, sizeof(sluice_step_health_t));
	now.workers = array(&in, nworkers, sizeof(sluice_worker_health_t));
	take(&in, &prev, sizeof(prev));
	if (!(flags & FUZZ_RENDER_PREV_GEOMETRY)) {
		prev.nsteps = nsteps;
		prev.nworkers = nworkers;
	}
	/* Arrays of the sizes prev claims, if it claims little enough. */
	prev.nsteps %= SLUICE_FLOW_MAX_STEPS + 1;
	prev.nworkers %= 33;
	prev.steps = array(&in, prev.nsteps, sizeof(sluice_step_health_t));
	prev.workers = array(&in, prev.nworkers, sizeof(sluice_worker_health_t));
	uint32_t *capacity = array(&in, nsteps, sizeof(uint32_t));
	sluice_blocks_stats_t *classes = array(&in, nclasses, sizeof(sluice_blocks_stats_t));
	uint64_t uptime;
	take(&in, &uptime, sizeof(uptime));

	sluice_metrics_src_t src = {
		.size_of = sizeof(src),
		.flow = name,
		.now = &now,
		.prev = (flags & FUZZ_RENDER_PREV) ? &prev : NULL,
		.capacity = (flags & FUZZ_RENDER_CAPACITY) ? capacity : NULL,
		.classes = (flags & FUZZ_RENDER_CLASSES) ? classes : NULL,
		.nclasses = nclasses,
		.uptime_ns = uptime,
	};

	size_t len;
	char *text = render(true, &src, &len);
	FUZZ_CHECK(len > 0 && text[len - 1] == '\n' && memchr(text, '\n', len - 1) == NULL);
	FUZZ_CHECK(utf8_ok(text, len));
	struct json *j = json_parse(text, len);
	FUZZ_CHECK(j != NULL && j->type == JSON_OBJ);
	json_free(j);
	free(text);

	text = render(false, &src, &len);
	FUZZ_CHECK(prom_text_ok(text, len));
	free(text);

	char reason[4096];
	bool serving = sluice_metrics_serving(&src, reason, sizeof(reason));
	size_t rlen = strlen(reason);
	FUZZ_CHECK(serving == (rlen == 0));
	if (rlen + 1 < sizeof(reason))
		FUZZ_CHECK(utf8_ok(reason, rlen));

	for (uint32_t i = 0; i < nsteps; i++) {
		double v;
		if (sluice_metrics_quantile(now.steps[i].latency_hist, SLUICE_HEALTH_LATENCY_BUCKETS,
					    (double)(flags >> 4) / 15.0, &v))
			FUZZ_CHECK(v >= 0 && v <= 18446744073709551616.0);
	}

	free(now.steps);
	free(now.workers);
	free(prev.steps);
	free(prev.workers);
	free(capacity);
	free(classes);
	return 0;
}
