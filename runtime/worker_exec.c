/* Exec'd workers: the supervisor's side (fork, then exec of the step's
 * worker program) and the program's side (sluice_worker_exec_main: from
 * argv and the arena to the same worker loop a forked worker runs).
 * docs/RUNTIME.md, "Exec'd workers".
 *
 * What crosses the exec: descriptors left open (FD_CLOEXEC cleared in the
 * child only) and named by number in argv, with the worker slot and the
 * supervisor's pid:
 *
 *	PATH --sluice-worker arena=FD,doorbell=FD,slot=W,supervisor=PID clients=FD.FD...
 *
 *   arena       the flow's sealed memfd (read-write): sluice_arena_attach
 *               validates it, sluice__flow_open_arena the flow in it
 *   doorbell    the supervisor's eventfd: READY, FAILED, RETIRING
 *   clients     every client slot's completion eventfd, in slot order: the
 *               completion rings' wake-up for a client asleep in wait or
 *               epoll (exactly max_clients of them)
 *
 * The program marks the eventfds close-on-exec again and closes the
 * memfd once attached (attach keeps a close-on-exec duplicate), so that a
 * handler that runs programs hands none of them on.
 *
 * The names are in the arena (the step's handler_name, the later steps'
 * condition_name), not in argv: the program learns what it is to run from
 * the flow, as a forked worker does.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/worker.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* A worker that could not start: what a worker's failed on_start reports
 * (runtime/worker.c), so the supervisor says it the same way. */
static __attribute__((noreturn, format(printf, 4, 5))) void fail_slot(sluice_flow_t *f, uint32_t w,
									 int rc, const char *fmt, ...)
{
	struct sluice__worker_slot *ws = &f->wslots[w];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ws->message, sizeof(ws->message), fmt, ap);
	va_end(ap);
	sl_store_relaxed(&ws->start_rc, rc);
	/* Release: message and start_rc before the state the supervisor reads
	 * (acquire) when the doorbell rings. */
	sl_store_release(&ws->state, SLUICE__WS_FAILED);
	sluice__notify(f->sup_efd);
	_exit(1);
}

/* ---- the supervisor's side --------------------------------------------------------- */

static int keep_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_SETFD, 0) == 0 ? 0 : -errno;
}

void sluice__worker_exec(sluice_flow_t *f, uint32_t w)
{
	const struct sluice__step *st = &f->steps[sluice__worker_step(f, w)];
	int afd = sluice_arena_fd(f->arena);
	int rc = keep_open(afd);
	if (rc == 0)
		rc = keep_open(f->sup_efd);
	/* Every client slot's completion eventfd: "clients=FD.FD...". */
	char clients[16 + SLUICE__MAX_CLIENTS * 12] = "clients=";
	size_t len = strlen(clients);
	for (uint32_t c = 0; rc == 0 && c < f->nclients; c++) {
		rc = keep_open(f->client_efds[c]);
		len += (size_t)snprintf(clients + len, sizeof(clients) - len, "%s%d", c ? "." : "",
					f->client_efds[c]);
	}
	if (rc != 0)
		fail_slot(f, w, rc, "exec of '%s': descriptors: %s", st->exec_path, sluice_strerror(rc));
	char spec[160];
	snprintf(spec, sizeof(spec), "arena=%d,doorbell=%d,slot=%u,supervisor=%d", afd, f->sup_efd, w,
		 (int)getppid());
	char *argv[] = {st->exec_path, (char *)SLUICE_WORKER_ARG, spec, clients, NULL};
	execv(st->exec_path, argv);
	rc = -errno;
	fail_slot(f, w, rc, "exec of '%s' failed: %s", st->exec_path, strerror(-rc));
}

/* ---- the program's side ----------------------------------------------------------------- */

struct spec {
	int arena, doorbell;
	uint32_t slot;
	pid_t supervisor;
};

/* "arena=3,doorbell=4,...": every key once, every value a decimal number
 * in range. */
static bool parse_spec(const char *s, struct spec *out)
{
	static const char *const keys[] = {"arena", "doorbell", "slot", "supervisor"};
	enum { NKEYS = 4 };
	long long v[NKEYS];
	bool seen[NKEYS] = {false};
	while (*s != '\0') {
		size_t k = 0;
		while (k < NKEYS &&
		       !(strncmp(s, keys[k], strlen(keys[k])) == 0 && s[strlen(keys[k])] == '='))
			k++;
		if (k == NKEYS || seen[k])
			return false;
		s += strlen(keys[k]) + 1;
		char *end;
		errno = 0;
		v[k] = strtoll(s, &end, 10);
		if (end == s || errno != 0 || v[k] < 0 || v[k] > INT_MAX || (*end != ',' && *end != '\0'))
			return false;
		seen[k] = true;
		s = *end == ',' ? end + 1 : end;
	}
	for (size_t k = 0; k < NKEYS; k++)
		if (!seen[k])
			return false;
	out->arena = (int)v[0];
	out->doorbell = (int)v[1];
	out->slot = (uint32_t)v[2];
	out->supervisor = (pid_t)v[3];
	return true;
}

/* "clients=FD.FD...": exactly n descriptors, into efds[0 .. n). */
static bool parse_clients(const char *s, uint32_t n, int *efds)
{
	if (strncmp(s, "clients=", 8) != 0)
		return false;
	s += 8;
	for (uint32_t c = 0; c < n; c++) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (end == s || errno != 0 || v < 0 || v > INT_MAX)
			return false;
		efds[c] = (int)v;
		if (*end != (c + 1 < n ? '.' : '\0'))
			return false;
		s = end + 1;
	}
	return true;
}

static const sluice_handler_entry_t *lookup(const sluice_handler_entry_t *reg, size_t n,
					    const char *name, bool handler)
{
	for (size_t i = 0; reg != NULL && i < n; i++)
		if (reg[i].name != NULL && strcmp(reg[i].name, name) == 0 &&
		    (handler ? reg[i].handler.handle != NULL : reg[i].condition != NULL))
			return &reg[i];
	return NULL;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int sluice_worker_exec_main(int argc, char **argv, const sluice_handler_entry_t *reg, size_t n)
{
	const char *prog = argc > 0 && argv[0] != NULL ? base_name(argv[0]) : "sluice-worker";
	struct spec sp;
	if (argc != 4 || strcmp(argv[1], SLUICE_WORKER_ARG) != 0 || !parse_spec(argv[2], &sp)) {
		fprintf(stderr,
			"%s: a sluice worker program: a flow's supervisor starts it for a step with "
			"exec_path (%s arena=FD,doorbell=FD,slot=N,supervisor=PID "
			"clients=FD.FD...)\n",
			prog, SLUICE_WORKER_ARG);
		return 2;
	}
	/* PR_SET_PDEATHSIG survived the exec (not set-user-ID): set it again
	 * all the same, then make sure the supervisor is still our parent. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != sp.supervisor)
		_exit(0);
	(void)fcntl(sp.doorbell, F_SETFD, FD_CLOEXEC);

	sluice_arena_t *a = NULL;
	int rc = sluice_arena_attach(sp.arena, 0, &a);
	close(sp.arena); /* attach keeps its own close-on-exec duplicate */
	if (rc != 0) {
		fprintf(stderr, "%s: sluice worker slot %u: the arena: %s\n", prog, sp.slot,
			sluice_strerror(rc));
		_exit(1);
	}
	sluice_flow_t *f = NULL;
	char err[256];
	rc = sluice__flow_open_arena(a, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "%s: sluice worker slot %u: the flow: %s (%s)\n", prog, sp.slot, err,
			sluice_err_name(rc));
		_exit(1);
	}
	if (sp.slot >= f->nworkers) {
		fprintf(stderr, "%s: sluice worker slot %u: the flow has %u\n", prog, sp.slot,
			f->nworkers);
		_exit(1);
	}
	f->sup_efd = sp.doorbell;
	if (!parse_clients(argv[3], f->nclients, f->client_efds)) {
		fprintf(stderr, "%s: sluice worker slot %u: '%s': not the flow's %u client eventfds\n",
			prog, sp.slot, argv[3], f->nclients);
		_exit(1);
	}
	for (uint32_t c = 0; c < f->nclients; c++)
		(void)fcntl(f->client_efds[c], F_SETFD, FD_CLOEXEC);
	f->client_efd = -1; /* not a client: it writes every client's */
	f->client = 0;

	/* Our handler, and the conditions of the steps we route tasks to. */
	uint32_t s = sluice__worker_step(f, sp.slot);
	struct sluice__step *st = &f->steps[s];
	if (st->handler_name[0] == '\0')
		fail_slot(f, sp.slot, SLUICE_EINVAL, "step '%s' is not started by exec", st->name);
	const sluice_handler_entry_t *e = lookup(reg, n, st->handler_name, true);
	if (e == NULL)
		fail_slot(f, sp.slot, SLUICE_ENOENT, "handler '%s' is not in %s's registry",
			  st->handler_name, prog);
	st->handler = e->handler;
	for (uint32_t t = s + 1; t < f->nsteps; t++) {
		struct sluice__step *nx = &f->steps[t];
		if (!nx->has_condition)
			continue;
		if (nx->condition_name[0] == '\0')
			fail_slot(f, sp.slot, SLUICE_EINVAL, "step '%s' has a condition but no condition_name",
				  nx->name);
		e = lookup(reg, n, nx->condition_name, false);
		if (e == NULL)
			fail_slot(f, sp.slot, SLUICE_ENOENT,
				  "condition '%s' of step '%s' is not in %s's registry", nx->condition_name,
				  nx->name, prog);
		nx->condition = e->condition;
		nx->condition_arg = e->condition_arg;
	}
	sluice__worker_main(f, sp.slot);
}
