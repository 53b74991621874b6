/* The renderers' shared text output: see runtime/render_text.h. Also
 * sluice_metrics_quantile. */
#include <sluice/metrics.h>
#include <sluice/desc.h>
#include <sluice/error.h>

#include "runtime/render_text.h"

#include <string.h>

void sluice__out_init(struct sluice__out *o, char *buf, size_t len)
{
	o->buf = buf;
	o->len = buf != NULL ? len : 0;
	o->pos = 0;
}

int64_t sluice__out_end(struct sluice__out *o)
{
	if (o->len > 0)
		o->buf[o->pos < o->len ? o->pos : o->len - 1] = '\0';
	return o->pos > INT64_MAX ? INT64_MAX : (int64_t)o->pos;
}

void sluice__out_mem(struct sluice__out *o, const char *p, size_t n)
{
	if (o->len > 0 && o->pos < o->len - 1) {
		uint64_t room = o->len - 1 - o->pos;
		memcpy(o->buf + o->pos, p, n < room ? n : room);
	}
	o->pos += n;
}

void sluice__out_str(struct sluice__out *o, const char *s)
{
	sluice__out_mem(o, s, strlen(s));
}

void sluice__out_u64(struct sluice__out *o, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	sluice__out_mem(o, d + i, sizeof(d) - i);
}

void sluice__out_i64(struct sluice__out *o, int64_t v)
{
	if (v < 0) {
		sluice__out_mem(o, "-", 1);
		sluice__out_u64(o, (uint64_t)0 - (uint64_t)v); /* INT64_MIN too */
	} else {
		sluice__out_u64(o, (uint64_t)v);
	}
}

/* v's fraction of `digits` decimals, zero-padded, trailing zeros dropped
 * when trim. */
static void out_frac(struct sluice__out *o, uint64_t frac, unsigned digits, bool trim)
{
	char d[20];
	for (unsigned i = digits; i-- > 0;) {
		d[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	unsigned n = digits;
	while (trim && n > 0 && d[n - 1] == '0')
		n--;
	if (n == 0)
		return;
	sluice__out_mem(o, ".", 1);
	sluice__out_mem(o, d, n);
}

void sluice__out_seconds(struct sluice__out *o, uint64_t ns)
{
	sluice__out_u64(o, ns / 1000000000u);
	out_frac(o, ns % 1000000000u, 9, true);
}

void sluice__out_fixed3(struct sluice__out *o, double v)
{
	uint64_t m;
	if (!(v > 0)) /* negative, zero, NaN */
		m = 0;
	else if (v >= 9.2e15)
		m = UINT64_C(9200000000000000000);
	else
		m = (uint64_t)(v * 1000.0 + 0.5);
	sluice__out_u64(o, m / 1000);
	out_frac(o, m % 1000, 3, false);
}

size_t sluice__utf8_seq(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogate */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* up to U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

void sluice__out_json_str(struct sluice__out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sluice__out_mem(o, e, 2);
			i++;
		} else if (c < 0x20) {
			static const char ctl[5] = "\b\f\n\r\t", brief[5] = "bfnrt";
			const char *k = memchr(ctl, c, sizeof(ctl));
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			if (k != NULL) {
				e[1] = brief[k - ctl];
				sluice__out_mem(o, e, 2);
			} else {
				sluice__out_mem(o, e, 6);
			}
			i++;
		} else {
			size_t k = sluice__utf8_seq(p + i, n - i);
			if (k == 0) {
				sluice__out_mem(o, "\\ufffd", 6);
				i++;
			} else {
				sluice__out_mem(o, s + i, k);
				i += k;
			}
		}
	}
}

void sluice__out_label(struct sluice__out *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sluice__out_mem(o, e, 2);
			i++;
		} else if (c == '\n') {
			sluice__out_mem(o, "\\n", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			sluice__out_mem(o, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
		} else {
			size_t k = sluice__utf8_seq(p + i, n - i);
			if (k == 0) {
				sluice__out_mem(o, "\xef\xbf\xbd", 3);
				i++;
			} else {
				sluice__out_mem(o, s + i, k);
				i += k;
			}
		}
	}
}

size_t sluice__name_len(const char *name, size_t cap)
{
	const char *z = memchr(name, '\0', cap);
	return z != NULL ? (size_t)(z - name) : cap;
}

const char *sluice__flow_state_name(uint32_t state)
{
	static const char *const names[] = {
		[SLUICE_FLOW_CREATED] = "created",     [SLUICE_FLOW_STARTING] = "starting",
		[SLUICE_FLOW_RUNNING] = "running",     [SLUICE_FLOW_START_FAILED] = "start_failed",
		[SLUICE_FLOW_DRAINING] = "draining",   [SLUICE_FLOW_STOPPING] = "stopping",
		[SLUICE_FLOW_STOPPED] = "stopped",
	};
	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

const char *sluice__worker_state_name(uint32_t state)
{
	static const char *const names[] = {
		[SLUICE_WORKER_NONE] = "none",     [SLUICE_WORKER_STARTING] = "starting",
		[SLUICE_WORKER_READY] = "ready",   [SLUICE_WORKER_FAILED] = "failed",
		[SLUICE_WORKER_EXITED] = "exited", [SLUICE_WORKER_DEAD] = "dead",
		[SLUICE_WORKER_RETIRING] = "retiring",
	};
	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

const char *sluice__kill_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[SLUICE_KILL_NONE] = "none",
		[SLUICE_KILL_HUNG] = "hung",
		[SLUICE_KILL_HEARTBEAT] = "heartbeat",
		[SLUICE_KILL_STEP_FAILED] = "step_failed",
		[SLUICE_KILL_STOP] = "stop",
	};
	return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "unknown";
}

void sluice__out_status_key(struct sluice__out *o, unsigned i)
{
	if (i >= SLUICE_HEALTH_NSTATUS - 1) {
		sluice__out_str(o, "other");
		return;
	}
	/* The status's name (include/sluice/desc.h) with '_' for ' ':
	 * "handler_error". */
	const char *name = sluice_task_status_name(i);
	for (const char *c = name; *c != '\0'; c++)
		sluice__out_mem(o, *c == ' ' ? "_" : c, 1);
}

const sluice_worker_health_t *sluice__step_worker(const sluice_flow_snapshot_t *s,
						  const sluice_step_health_t *st, uint32_t k)
{
	uint64_t w = (uint64_t)st->first_worker + k;
	if (k >= st->nslots || s->workers == NULL || w >= s->nworkers)
		return NULL;
	return &s->workers[w];
}

bool sluice__src_ok(const sluice_metrics_src_t *src)
{
	return src != NULL && src->size_of >= sizeof(*src) && src->now != NULL &&
	       (src->now->nsteps == 0 || src->now->steps != NULL);
}

const sluice_flow_snapshot_t *sluice__usable_prev(const sluice_metrics_src_t *src)
{
	const sluice_flow_snapshot_t *p = src->prev, *n = src->now;
	if (p == NULL || p->nsteps != n->nsteps || p->nworkers != n->nworkers ||
	    p->taken_ns >= n->taken_ns || (p->nsteps != 0 && p->steps == NULL))
		return NULL;
	return p;
}

bool sluice_metrics_quantile(const uint64_t *hist, unsigned n, double q, double *out)
{
	*out = 0;
	if (hist == NULL || n == 0 || n > 64 || !(q >= 0 && q <= 1))
		return false;
	/* Sums in double: counters near 2^64 lose precision, never wrap. */
	double total = 0;
	for (unsigned i = 0; i < n; i++)
		total += (double)hist[i];
	if (total == 0)
		return false;
	double rank = q * total, below = 0;
	for (unsigned i = 0; i < n; i++) {
		double c = (double)hist[i];
		if (c == 0 || below + c < rank) {
			below += c;
			continue;
		}
		double lo = i == 0 ? 0 : (double)((uint64_t)1 << i);
		double hi = i == 63 ? 18446744073709551615.0 : (double)((uint64_t)1 << (i + 1));
		double frac = (rank - below) / c;
		*out = lo + (hi - lo) * (frac < 0 ? 0 : frac > 1 ? 1 : frac);
		return true;
	}
	/* rank == total with rounding: the highest non-empty bucket's top. */
	for (unsigned i = n; i-- > 0;)
		if (hist[i] != 0) {
			*out = i == 63 ? 18446744073709551615.0 : (double)((uint64_t)1 << (i + 1));
			return true;
		}
	return false;
}
