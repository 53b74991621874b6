/* What the JSON and Prometheus renderers share (internal): an output that
 * counts what it would write and writes what fits, UTF-8 repair and the
 * two escapings, and numbers formatted by hand (no printf of a double: no
 * locale, no NaN). See include/sluice/metrics.h.
 */
#ifndef SLUICE_RUNTIME_RENDER_TEXT_H
#define SLUICE_RUNTIME_RENDER_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/flow.h>
#include <sluice/metrics.h>

/* snprintf's contract: `pos` counts every byte asked for; bytes go to buf
 * while they fit in len - 1; sluice__out_end NUL-terminates. */
struct sluice__out {
	char *buf;
	size_t len;
	uint64_t pos;
};

void sluice__out_init(struct sluice__out *o, char *buf, size_t len);
/* NUL-terminates (when len > 0) and returns pos as the renderers return it. */
int64_t sluice__out_end(struct sluice__out *o);
void sluice__out_mem(struct sluice__out *o, const char *p, size_t n);
void sluice__out_str(struct sluice__out *o, const char *s);
void sluice__out_u64(struct sluice__out *o, uint64_t v);
void sluice__out_i64(struct sluice__out *o, int64_t v);
/* ns as seconds, exactly: "12.000034" (trailing zeros of the fraction
 * dropped, "0" for 0). */
void sluice__out_seconds(struct sluice__out *o, uint64_t ns);
/* A non-negative finite value with three decimals, "12.345"; anything
 * else (negative, NaN, past 2^63 / 1000) as 0 or the largest value. */
void sluice__out_fixed3(struct sluice__out *o, double v);

/* Length of the valid UTF-8 sequence at p (at most n bytes): 1..4, or 0
 * when the bytes there are not one (overlong, surrogate, past U+10FFFF,
 * cut short). */
size_t sluice__utf8_seq(const unsigned char *p, size_t n);
/* s[0..n) as the inside of a JSON string: '"', '\\' and control bytes
 * escaped, invalid UTF-8 as \ufffd. */
void sluice__out_json_str(struct sluice__out *o, const char *s, size_t n);
/* s[0..n) as a Prometheus label value: '\\', '"' and '\n' escaped, other
 * control bytes and invalid UTF-8 as U+FFFD. */
void sluice__out_label(struct sluice__out *o, const char *s, size_t n);

/* A step's name from a snapshot: its bytes up to the first NUL, at most
 * the array's size (the copy may lack a terminator). */
size_t sluice__name_len(const char *name, size_t cap);

/* Saturating sums. */
static inline uint64_t sluice__sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Names for the enums of include/sluice/flow.h ("unknown" out of range). */
const char *sluice__flow_state_name(uint32_t state);
const char *sluice__worker_state_name(uint32_t state);
const char *sluice__kill_reason_name(uint32_t reason);
/* Writes "ok", "handler_error", ... for i < SLUICE_HEALTH_NSTATUS - 1,
 * "other" for the last counter (sluice_flow_snapshot_t.completed[i]). */
void sluice__out_status_key(struct sluice__out *o, unsigned i);

/* Worker slot k of step st, when it lies inside s's worker array; else
 * NULL. */
const sluice_worker_health_t *sluice__step_worker(const sluice_flow_snapshot_t *s,
						  const sluice_step_health_t *st, uint32_t k);

/* src->prev when it may be used for rates with src->now (see metrics.h). */
const sluice_flow_snapshot_t *sluice__usable_prev(const sluice_metrics_src_t *src);

/* Is src usable at all? (non-NULL, size_of, now) */
bool sluice__src_ok(const sluice_metrics_src_t *src);

#endif
