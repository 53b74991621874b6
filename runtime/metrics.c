/* The collector behind the metrics endpoint and sluice-inspect: see
 * runtime/metrics.h. */
#define _GNU_SOURCE
#include <sluice/metrics.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/metrics.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sluice__metrics_init(struct sluice__metrics *m, const sluice_flow_t *f)
{
	memset(m, 0, sizeof(*m));
	m->f = f;
	int rc = sluice_flow_snapshot_create(f, &m->now);
	if (rc == 0)
		rc = sluice_flow_snapshot_create(f, &m->prev);
	if (rc != 0) {
		sluice__metrics_fini(m);
		return rc;
	}
	for (uint32_t i = 0; i < f->nsteps && i < SLUICE_FLOW_MAX_STEPS; i++)
		m->capacity[i] = f->steps[i].capacity;
	return 0;
}

void sluice__metrics_fini(struct sluice__metrics *m)
{
	sluice_flow_snapshot_destroy(m->now);
	sluice_flow_snapshot_destroy(m->prev);
	m->now = m->prev = NULL;
}

int sluice__metrics_take(struct sluice__metrics *m)
{
	sluice_flow_snapshot_t *t = m->prev;
	m->prev = m->now;
	m->now = t;
	m->have_prev = m->src.now != NULL; /* a take happened before */
	int rc = sluice_flow_snapshot_take(m->f, m->now);
	if (rc != 0)
		return rc;
	uint32_t n = 0;
	while (n < SLUICE_BLOCKS_MAX_CLASSES && sluice_blocks_stats(&m->f->blocks, n, &m->classes[n]) == 0)
		n++;
	m->src = (sluice_metrics_src_t){
		.size_of = sizeof(m->src),
		.flow = m->f->name,
		.now = m->now,
		.prev = m->have_prev ? m->prev : NULL,
		.capacity = m->capacity,
		.classes = m->classes,
		.nclasses = n,
	};
	if (m->now->supervisor_pid > 0 && m->now->state != SLUICE_FLOW_STOPPED &&
	    m->now->state != SLUICE_FLOW_START_FAILED)
		m->src.uptime_ns = sluice__proc_uptime_ns(m->now->supervisor_pid);
	return 0;
}

char *sluice__metrics_render(const sluice_metrics_src_t *src, enum sluice__metrics_format fmt,
			     size_t *len)
{
	size_t cap = 64 * 1024;
	for (;;) {
		char *buf = malloc(cap);
		if (buf == NULL)
			return NULL;
		int64_t n = fmt == SLUICE__METRICS_JSON ? sluice_metrics_json(src, buf, cap)
							: sluice_metrics_prometheus(src, buf, cap);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if ((uint64_t)n < cap) {
			*len = (size_t)n;
			return buf;
		}
		free(buf);
		cap = (size_t)n + 1;
	}
}

/* Reads a small /proc file into buf (NUL-terminated). */
static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* "123.45" as nanoseconds, by hand (strtod would follow LC_NUMERIC). */
static uint64_t parse_seconds(const char *s)
{
	uint64_t sec = 0, frac = 0, scale = 1000000000u;
	for (; *s >= '0' && *s <= '9'; s++)
		sec = sec * 10 + (uint64_t)(*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && scale > 1; s++) {
			scale /= 10;
			frac += (uint64_t)(*s - '0') * scale;
		}
	return sec * 1000000000u + frac;
}

uint64_t sluice__proc_uptime_ns(int64_t pid)
{
	char path[64], buf[1024], up[128];
	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	if (pid <= 0 || !read_small(path, buf, sizeof(buf)) || !read_small("/proc/uptime", up, sizeof(up)))
		return 0;
	/* Field 22, starttime (clock ticks after boot), is the 20th after
	 * the command name's closing parenthesis. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return 0;
	unsigned long long ticks = strtoull(p + 1, NULL, 10);
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		return 0;
	uint64_t started = (uint64_t)ticks / (uint64_t)hz * 1000000000u +
			   (uint64_t)ticks % (uint64_t)hz * (1000000000u / (uint64_t)hz);
	uint64_t now = parse_seconds(up);
	return now > started ? now - started : 1; /* less than a tick: still known */
}
