/* sluice-inspect: looks at running flows, read-only (docs/INSPECT.md).
 *
 *   sluice-inspect                      lists the flows this user can see
 *   sluice-inspect NAME                 shows flow NAME live, like top (q quits)
 *   sluice-inspect NAME --json          one snapshot as JSON, then exits
 *   sluice-inspect NAME --prometheus    one snapshot in the Prometheus text format
 *   sluice-inspect --arena PATH ...     the flow whose arena descriptor is PATH
 *                                       (/proc/PID/fd/N), instead of a NAME
 *   -i, --interval SECONDS              the live view's refresh (default 1)
 *   -n, --count N                       the live view draws N frames, then exits
 *
 * Exit codes: 0 ok, 1 another failure (not a flow, a corrupt arena), 2 usage,
 * 3 no such flow, 4 not allowed; each failure is one line on stderr. The
 * live view exits 0 on q, 128 + the signal on SIGINT, SIGTERM or SIGHUP,
 * with the terminal restored.
 *
 * It opens the arena's descriptor O_RDONLY and maps it read-only
 * (SLUICE_ARENA_RDONLY): it cannot write a byte of the flow. It takes no
 * lock and sends nothing: the flow never waits for it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sluice/arena.h>
#include <sluice/error.h>
#include <sluice/flow.h>
#include <sluice/metrics.h>

#include "runtime/control.h"
#include "runtime/flow_internal.h"
#include "runtime/metrics.h"
#include "runtime/render_text.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_NO_FLOW 3
#define EXIT_DENIED 4


static const char *prog = "sluice-inspect";

static __attribute__((noreturn, format(printf, 2, 3))) void die(int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static __attribute__((noreturn)) void usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "%s: %s\n", prog, why);
	fprintf(stderr,
		"usage: sluice-inspect [NAME | --arena PATH] [--json | --prometheus]\n"
		"                      [-i|--interval SECONDS] [-n|--count N]\n");
	exit(EXIT_USAGE);
}

/* ---- finding flows ----------------------------------------------------------------
 *
 * A running flow with a name (and without SLUICE_FLOW_UNLISTED) listens on
 * its control socket, <dir>/NAME.sock (docs/ATTACH.md): the directory is
 * this user's ($XDG_RUNTIME_DIR/sluice, else /tmp/sluice-<euid>). Listing
 * reads that directory; looking at one attaches by name read-only, so the
 * supervisor checks our credentials and hands over a descriptor opened
 * O_RDONLY. Unlisted flows can be looked at only with --arena.
 */

/* Attaches to flow `name` read-only. On failure returns an exit code and
 * says why in why. */
static int attach_flow(const char *name, sluice_flow_t **out, char *why, size_t whylen)
{
	int rc = sluice_flow_attach(name, SLUICE_ATTACH_READ_ONLY, 5000000000ull, out, why, whylen);
	if (rc == 0)
		return 0;
	if (rc == SLUICE_ENOENT)
		return EXIT_NO_FLOW;
	if (rc == SLUICE_EACCES || rc == SLUICE_EPERM)
		return EXIT_DENIED;
	return EXIT_ERROR;
}

/* ---- opening one ------------------------------------------------------------------- */

/* Opens the flow behind the arena descriptor `path`, read-only. On
 * failure returns an exit code and says why in why (unless quiet). */
static int open_flow(const char *path, sluice_flow_t **out, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(e));
		if (e == EACCES || e == EPERM)
			return EXIT_DENIED;
		return e == ENOENT ? EXIT_NO_FLOW : EXIT_ERROR;
	}
	sluice_arena_t *a;
	int rc = sluice_arena_attach(fd, SLUICE_ARENA_RDONLY, &a);
	close(fd);
	if (rc != 0) {
		snprintf(why, whylen, "%s: not a flow's arena: %s (%s)", path, sluice_strerror(rc),
			 sluice_err_name(rc));
		return rc == SLUICE_EACCES || rc == SLUICE_EPERM ? EXIT_DENIED : EXIT_ERROR;
	}
	char err[256];
	rc = sluice__flow_open_arena(a, out, err, sizeof(err));
	if (rc != 0) {
		sluice_arena_destroy(a);
		snprintf(why, whylen, "%s: not a flow's arena: %s (%s)", path, err, sluice_err_name(rc));
		return EXIT_ERROR;
	}
	return 0;
}

/* The supervisor's pid as the arena says (an opened handle started
 * nothing: sluice_flow_supervisor_pid knows only its own). */
static long long sup_pid(const sluice_flow_t *f)
{
	/* Relaxed: a single word, a snapshot. */
	return sl_load_relaxed(&f->hdr->sup_pid);
}

/* The flow called `name`: exits 3 when there is none, 4 when we may not
 * look at it. */
static sluice_flow_t *open_by_name(const char *name)
{
	char why[512] = "";
	sluice_flow_t *f = NULL;
	int code = attach_flow(name, &f, why, sizeof(why));
	if (code == 0)
		return f;
	if (code == EXIT_NO_FLOW)
		die(code, "no such flow: '%s'", name);
	if (code == EXIT_DENIED)
		die(code, "not allowed: %s", why);
	die(code, "%s", why);
}

/* ---- text helpers -------------------------------------------------------------------- */

/* A name from the arena, for a terminal: printable ASCII only. */
static void safe_name(char *dst, size_t len, const char *src, size_t srclen)
{
	size_t i = 0;
	for (; i + 1 < len && i < srclen && src[i] != '\0'; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	dst[i] = '\0';
}

/* A duration: "850ns", "12.3us", "4.5ms", "1.20s", "3m05s", "2h03m", "4d01h". */
static void fmt_dur(char *b, size_t len, uint64_t ns)
{
	uint64_t s = ns / 1000000000u;
	if (ns < 1000)
		snprintf(b, len, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(b, len, "%llu.%lluus", (unsigned long long)(ns / 1000),
			 (unsigned long long)(ns % 1000 / 100));
	else if (ns < 1000000000)
		snprintf(b, len, "%llu.%llums", (unsigned long long)(ns / 1000000),
			 (unsigned long long)(ns % 1000000 / 100000));
	else if (s < 60)
		snprintf(b, len, "%llu.%02llus", (unsigned long long)s,
			 (unsigned long long)(ns % 1000000000 / 10000000));
	else if (s < 3600)
		snprintf(b, len, "%llum%02llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(b, len, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(b, len, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
}

static void fmt_bytes(char *b, size_t len, uint64_t v)
{
	static const char units[] = "BKMGTP";
	unsigned u = 0;
	while (v >= 1024 && v % 1024 == 0 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(b, len, "%llu%c", (unsigned long long)v, units[u]);
}

/* "SIGKILL 12s ago", "exit 3 5m ago", "-" */
static void fmt_exit(char *b, size_t len, const sluice_worker_health_t *w, uint64_t taken)
{
	if (w->last_pid == 0) {
		snprintf(b, len, "-");
		return;
	}
	char how[32], ago[24] = "";
	const char *abbrev = w->last_signal > 0 && w->last_signal < 128 ? sigabbrev_np(w->last_signal)
								       : NULL;
	if (abbrev != NULL)
		snprintf(how, sizeof(how), "SIG%s", abbrev);
	else if (w->last_signal != 0)
		snprintf(how, sizeof(how), "signal %d", w->last_signal);
	else
		snprintf(how, sizeof(how), "exit %d", w->last_exit_code);
	if (w->last_death_ns != 0 && w->last_death_ns <= taken) {
		char d[16];
		fmt_dur(d, sizeof(d), taken - w->last_death_ns);
		snprintf(ago, sizeof(ago), " %s ago", d);
	}
	static const char *const why[] = {"", " (hung)", " (heartbeat)", " (step failed)", " (stop)"};
	snprintf(b, len, "%s%s%s", how, w->last_kill < 5 ? why[w->last_kill] : "", ago);
}

/* ---- list, json, prometheus ---------------------------------------------------------- */

static int list_flows(void)
{
	char dir[PATH_MAX], why[512];
	int rc = sluice__ctl_dir(dir, sizeof(dir), false, why, sizeof(why));
	printf("%-24s %10s %9s %5s  %-12s\n", "NAME", "SUPERVISOR", "UPTIME", "STEPS", "STATE");
	if (rc == SLUICE_ENOENT)
		return 0; /* no flow ever listened here */
	if (rc != 0)
		die(rc == SLUICE_EACCES ? EXIT_DENIED : EXIT_ERROR, "%s", why);
	DIR *d = opendir(dir);
	if (d == NULL)
		die(EXIT_ERROR, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".sock") != 0)
			continue;
		char name[SLUICE__CTL_NAME_MAX + 1];
		if (len - 5 >= sizeof(name))
			continue;
		memcpy(name, e->d_name, len - 5);
		name[len - 5] = '\0';
		sluice_flow_t *f;
		if (attach_flow(name, &f, why, sizeof(why)) != 0)
			continue; /* a stale socket of a supervisor gone, or not ours */
		/* Relaxed: single words, a snapshot. */
		uint32_t state = sl_load_relaxed(&f->hdr->state);
		long long sup = sup_pid(f);
		char shown[25], up[16] = "-";
		safe_name(shown, sizeof(shown), f->name, sizeof(f->name));
		uint64_t ns = state != SLUICE_FLOW_STOPPED ? sluice__proc_uptime_ns(sup) : 0;
		if (ns != 0)
			fmt_dur(up, sizeof(up), ns);
		printf("%-24s %10lld %9s %5u  %-12s\n", shown, sup, up, f->nsteps, sluice__flow_state_name(state));
		sluice_flow_destroy(f);
	}
	closedir(d);
	return 0;
}

static int print_once(sluice_flow_t *f, enum sluice__metrics_format fmt)
{
	struct sluice__metrics m;
	if (sluice__metrics_init(&m, f) != 0 || sluice__metrics_take(&m) != 0)
		die(EXIT_ERROR, "no snapshot of flow '%s'", f->name);
	size_t len;
	char *text = sluice__metrics_render(&m.src, fmt, &len);
	if (text == NULL)
		die(EXIT_ERROR, "out of memory");
	bool ok = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
	free(text);
	sluice__metrics_fini(&m);
	if (!ok)
		die(EXIT_ERROR, "stdout: %s", strerror(errno));
	return 0;
}

/* ---- the live view --------------------------------------------------------------------- */

static volatile sig_atomic_t got_signal, resized;
static struct termios saved_tty;
static bool tty_raw, screen_on;
static bool keys = true; /* stdin may still give keys (false once it is at its end) */

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		resized = 1;
	else
		got_signal = sig;
}

static void restore_terminal(void)
{
	if (screen_on) {
		/* Cursor back, the normal screen back. */
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		screen_on = false;
	}
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_raw = false;
	}
}

static void setup_terminal(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	atexit(restore_terminal);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios t = saved_tty;
		/* Keys one at a time, not echoed; ^C still raises SIGINT. */
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
			tty_raw = true;
	}
	if (isatty(STDOUT_FILENO)) {
		/* The alternate screen (as top does), cursor hidden. */
		fputs("\033[?1049h\033[?25l", stdout);
		screen_on = true;
	}
}

struct screen {
	char *buf;
	size_t len, cap;
	int rows, cols, row;
};

/* One line of the frame, cut at the terminal's width; nothing past its
 * last row. */
static __attribute__((format(printf, 2, 3))) void line(struct screen *sc, const char *fmt, ...)
{
	if (sc->row >= sc->rows)
		return;
	char l[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l, sizeof(l), fmt, ap);
	va_end(ap);
	size_t n = strnlen(l, (size_t)sc->cols);
	size_t need = sc->len + n + 8;
	if (need > sc->cap) {
		sc->cap = need * 2;
		sc->buf = realloc(sc->buf, sc->cap);
		if (sc->buf == NULL)
			die(EXIT_ERROR, "out of memory");
	}
	memcpy(sc->buf + sc->len, l, n);
	sc->len += n;
	/* Clear the rest of the row; the last row gets no newline (no scroll). */
	const char *tail = sc->row + 1 < sc->rows ? "\033[K\r\n" : "\033[K";
	memcpy(sc->buf + sc->len, tail, strlen(tail));
	sc->len += strlen(tail);
	sc->row++;
}

static void term_size(int *rows, int *cols)
{
	struct winsize ws;
	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col > 512 ? 512 : ws.ws_col;
	}
}

/* p50 and p99 of step i: over the last interval when tasks ran in it,
 * else since the start. */
static void step_latency(const sluice_flow_snapshot_t *s, const sluice_flow_snapshot_t *p,
			 uint32_t i, char *p50, char *p99, size_t len)
{
	uint64_t h[SLUICE_HEALTH_LATENCY_BUCKETS];
	const uint64_t *use = s->steps[i].latency_hist;
	if (p != NULL && s->steps[i].tasks > p->steps[i].tasks) {
		for (unsigned k = 0; k < SLUICE_HEALTH_LATENCY_BUCKETS; k++) {
			uint64_t a = s->steps[i].latency_hist[k], b = p->steps[i].latency_hist[k];
			h[k] = a > b ? a - b : 0;
		}
		use = h;
	}
	double v;
	snprintf(p50, len, "-");
	snprintf(p99, len, "-");
	if (sluice_metrics_quantile(use, SLUICE_HEALTH_LATENCY_BUCKETS, 0.5, &v))
		fmt_dur(p50, len, (uint64_t)v);
	if (sluice_metrics_quantile(use, SLUICE_HEALTH_LATENCY_BUCKETS, 0.99, &v))
		fmt_dur(p99, len, (uint64_t)v);
}

static void draw(struct screen *sc, const sluice_flow_t *f, const struct sluice__metrics *m,
		 double interval)
{
	const sluice_metrics_src_t *src = &m->src;
	const sluice_flow_snapshot_t *s = src->now;
	const sluice_flow_snapshot_t *p = src->prev;
	double dt = p != NULL && s->taken_ns > p->taken_ns ? (double)(s->taken_ns - p->taken_ns) / 1e9 : 0;
	char name[40], up[16] = "-", clock[16];
	safe_name(name, sizeof(name), f->name, sizeof(f->name));
	if (src->uptime_ns != 0)
		fmt_dur(up, sizeof(up), src->uptime_ns);
	time_t t = time(NULL);
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&t));
	sc->len = 0;
	sc->row = 0;
	line(sc, "flow %s  %s  supervisor %lld  up %s  %s", name, sluice__flow_state_name(s->state),
	     (long long)s->supervisor_pid, up, clock);
	uint64_t done = 0, done_before = 0;
	for (unsigned k = 0; k < SLUICE_HEALTH_NSTATUS; k++) {
		done += s->completed[k];
		done_before += p != NULL ? p->completed[k] : 0;
	}
	char rate[24] = "-";
	if (dt > 0)
		snprintf(rate, sizeof(rate), "%.1f/s", done >= done_before ? (double)(done - done_before) / dt : 0.0);
	line(sc, "tasks: submitted %llu  done %llu (%s)  in flight %llu  not ok %llu  lost %llu",
	     (unsigned long long)s->submitted, (unsigned long long)done, rate,
	     (unsigned long long)s->in_flight, (unsigned long long)(done - s->completed[SLUICE_TASK_OK]),
	     (unsigned long long)s->lost_completions);
	line(sc, "%s", "");

	int fixed = 9; /* the lines around the two tables */
	int avail = sc->rows - fixed > 2 ? sc->rows - fixed : 2;
	int nsw = (int)s->nworkers;
	int srows = (int)s->nsteps;
	if (srows > avail - (nsw < avail / 2 ? nsw : avail / 2))
		srows = avail - (nsw < avail / 2 ? nsw : avail / 2);
	if (srows < 1)
		srows = 1;
	int wrows = avail - srows;

	line(sc, "%-16s %11s %5s %9s %9s %8s %8s %s", "STEP", "QUEUE", "LIVE", "TASKS/S", "BATCH",
	     "P50", "P99", "FAILED");
	for (uint32_t i = 0; i < s->nsteps; i++) {
		if ((int)i == srows - 1 && (int)s->nsteps > srows) {
			line(sc, "... %u more steps", s->nsteps - i);
			break;
		}
		const sluice_step_health_t *st = &s->steps[i];
		char sn[17], q[16], live[12], tps[16] = "-", batch[16], p50[16], p99[16];
		safe_name(sn, sizeof(sn), st->name, sizeof(st->name));
		snprintf(q, sizeof(q), "%llu/%u", (unsigned long long)st->queued, src->capacity[i]);
		snprintf(live, sizeof(live), "%u/%u", st->workers_live, st->nprocs);
		uint64_t dtasks = p != NULL && st->tasks > p->steps[i].tasks ? st->tasks - p->steps[i].tasks : 0;
		uint64_t dbatch = p != NULL && st->batches > p->steps[i].batches ? st->batches - p->steps[i].batches : 0;
		if (dt > 0)
			snprintf(tps, sizeof(tps), "%.1f", (double)dtasks / dt);
		if (dbatch > 0)
			snprintf(batch, sizeof(batch), "%.1f/%u", (double)dtasks / (double)dbatch, st->max_batch);
		else if (st->batches > 0)
			snprintf(batch, sizeof(batch), "%.1f/%u", (double)st->tasks / (double)st->batches,
				 st->max_batch);
		else
			snprintf(batch, sizeof(batch), "-");
		step_latency(s, p, i, p50, p99, sizeof(p50));
		line(sc, "%-16s %11s %5s %9s %9s %8s %8s %s", sn, q, live, tps, batch, p50, p99,
		     st->failed ? "FAILED" : "-");
	}
	line(sc, "%s", "");
	line(sc, "%-16s %2s %7s %-8s %9s %7s %4s  %s", "STEP", "W", "PID", "STATE", "TASKS", "BUSY",
	     "RST", "LAST EXIT");
	int shown = 0;
	for (uint32_t i = 0; i < s->nsteps; i++) {
		const sluice_step_health_t *st = &s->steps[i];
		char sn[17];
		safe_name(sn, sizeof(sn), st->name, sizeof(st->name));
		for (uint32_t k = 0; k < st->nslots; k++) {
			uint32_t w = st->first_worker + k;
			if (w >= s->nworkers)
				break;
			const sluice_worker_health_t *wh = &s->workers[w];
			if (shown == wrows - 1 && shown + 1 < nsw) {
				line(sc, "... %d more workers", nsw - shown);
				shown = nsw;
			}
			if (shown >= wrows)
				continue;
			shown++;
			char busy[16] = "-", ex[48];
			if (wh->busy_ns != 0)
				fmt_dur(busy, sizeof(busy), wh->busy_ns);
			fmt_exit(ex, sizeof(ex), wh, s->taken_ns);
			char pid[16] = "-";
			if (wh->pid != 0)
				snprintf(pid, sizeof(pid), "%lld", (long long)wh->pid);
			const char *ws[] = {"none", "starting", "ready", "failed", "exited", "dead", "retiring"};
			line(sc, "%-16s %2u %7s %-8s %9llu %7s %4u  %s", sn, k, pid,
			     wh->state < 7 ? ws[wh->state] : "unknown", (unsigned long long)wh->tasks,
			     busy, wh->restarts, ex);
		}
	}
	while (sc->row < sc->rows - 3)
		line(sc, "%s", "");
	char arena[1024] = "arena:";
	size_t al = strlen(arena);
	for (uint32_t c = 0; c < src->nclasses && al + 40 < sizeof(arena); c++) {
		char sz[16];
		fmt_bytes(sz, sizeof(sz), src->classes[c].block_size);
		al += (size_t)snprintf(arena + al, sizeof(arena) - al, "  %s %u/%u", sz,
				       src->classes[c].in_use, src->classes[c].capacity);
	}
	line(sc, "%s", "");
	line(sc, "%s", arena);
	line(sc, "q quit  refresh %.1fs  read-only%s", interval, s->torn ? "  (torn records)" : "");
}

static int live_view(sluice_flow_t *f, double interval, long count)
{
	struct sluice__metrics m;
	if (sluice__metrics_init(&m, f) != 0)
		die(EXIT_ERROR, "out of memory");
	setup_terminal();
	struct screen sc = {0};
	int code = 0;
	for (long frame = 0; count <= 0 || frame < count; frame++) {
		if (sluice__metrics_take(&m) != 0)
			die(EXIT_ERROR, "no snapshot of flow '%s'", f->name);
		term_size(&sc.rows, &sc.cols);
		draw(&sc, f, &m, interval);
		if (screen_on)
			fputs("\033[H", stdout);
		fwrite(sc.buf, 1, sc.len, stdout);
		fputs(screen_on ? "\033[J" : "\n\n", stdout);
		fflush(stdout);
		if (count > 0 && frame + 1 >= count)
			break;
		/* Wait for the interval, a key, or a signal. */
		uint64_t until = sluice__now_ns() + (uint64_t)(interval * 1e9);
		bool quit = false;
		for (;;) {
			if (got_signal) {
				code = 128 + got_signal;
				quit = true;
				break;
			}
			if (resized) {
				resized = 0;
				break;
			}
			uint64_t now = sluice__now_ns();
			if (now >= until)
				break;
			struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
			int ms = (int)((until - now) / 1000000) + 1;
			int n = poll(&pfd, keys ? 1 : 0, ms);
			if (n > 0) {
				char c;
				ssize_t r = read(STDIN_FILENO, &c, 1);
				if (r == 1 && (c == 'q' || c == 'Q')) {
					quit = true;
					break;
				}
				if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
					keys = false; /* stdin at its end: no keys; sleep the rest */
			}
		}
		if (quit)
			break;
	}
	restore_terminal();
	free(sc.buf);
	sluice__metrics_fini(&m);
	return code;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *name = NULL, *arena = NULL;
	enum { LIVE, JSON, PROM } mode = LIVE;
	double interval = 1.0;
	long count = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: sluice-inspect [NAME | --arena PATH] [--json | --prometheus]\n"
			       "                      [-i|--interval SECONDS] [-n|--count N]\n"
			       "Without NAME: lists the flows. See docs/INSPECT.md.\n");
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			mode = JSON;
		} else if (strcmp(a, "--prometheus") == 0) {
			mode = PROM;
		} else if (strcmp(a, "--arena") == 0) {
			if (++i >= argc)
				usage("--arena needs a path");
			arena = argv[i];
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "--interval") == 0) {
			char *end;
			if (++i >= argc)
				usage("--interval needs seconds");
			interval = strtod(argv[i], &end);
			if (*end != '\0' || !(interval >= 0.05 && interval <= 3600))
				usage("--interval: seconds from 0.05 to 3600");
		} else if (strcmp(a, "-n") == 0 || strcmp(a, "--count") == 0) {
			char *end;
			if (++i >= argc)
				usage("--count needs a number");
			count = strtol(argv[i], &end, 10);
			if (*end != '\0' || count < 1)
				usage("--count: a positive number");
		} else if (a[0] == '-') {
			fprintf(stderr, "%s: unknown option %s\n", prog, a);
			usage(NULL);
		} else if (name == NULL) {
			name = a;
		} else {
			usage("one flow at a time");
		}
	}
	if (name != NULL && arena != NULL)
		usage("NAME or --arena, not both");
	if (name == NULL && arena == NULL) {
		if (mode != LIVE)
			usage("--json and --prometheus need a flow: NAME or --arena PATH");
		return list_flows();
	}
	sluice_flow_t *f;
	if (arena != NULL) {
		char why[512];
		int rc = open_flow(arena, &f, why, sizeof(why));
		if (rc == EXIT_DENIED)
			die(rc, "not allowed: %s", why);
		if (rc == EXIT_NO_FLOW)
			die(rc, "no such flow: %s", why);
		if (rc != 0)
			die(rc, "%s", why);
	} else {
		f = open_by_name(name);
	}
	int code = mode == JSON   ? print_once(f, SLUICE__METRICS_JSON)
		   : mode == PROM ? print_once(f, SLUICE__METRICS_PROMETHEUS)
				  : live_view(f, interval, count);
	sluice_flow_destroy(f);
	return code;
}
