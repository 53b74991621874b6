/* Running a command from a test: its stdout and stderr captured apart (in
 * memfds, so a big output never blocks it), optionally as another user,
 * with a time limit. */
#ifndef SLUICE_TESTS_TOOLS_RUN_CMD_H
#define SLUICE_TESTS_TOOLS_RUN_CMD_H

#define _GNU_SOURCE
#include "common/test.h"

#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>

struct cmd_out {
	char *out, *err;     /* NUL-terminated; the caller frees them (cmd_out_free) */
	size_t out_len, err_len;
	int status;          /* exit code, or 128 + signal */
};

static inline void cmd_out_free(struct cmd_out *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static inline char *cmd_slurp_(int fd, size_t *len)
{
	off_t n = lseek(fd, 0, SEEK_END);
	CHECK(n >= 0);
	char *b = malloc((size_t)n + 1);
	CHECK(b != NULL);
	CHECK(pread(fd, b, (size_t)n, 0) == n);
	b[n] = '\0';
	*len = (size_t)n;
	close(fd);
	return b;
}

/* Runs argv (argv[0] a path) with stdin from `in` (NULL: /dev/null), as
 * uid/gid `as` when as > 0, killed after `secs` seconds. */
static inline struct cmd_out cmd_run_as(char *const argv[], const char *in, long as, unsigned secs)
{
	int ofd = memfd_create("cmd-out", MFD_CLOEXEC), efd = memfd_create("cmd-err", MFD_CLOEXEC);
	CHECK(ofd >= 0 && efd >= 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int ifd = open(in != NULL ? in : "/dev/null", O_RDONLY);
		if (ifd < 0 || dup2(ifd, 0) < 0 || dup2(ofd, 1) < 0 || dup2(efd, 2) < 0)
			_exit(126);
		if (as > 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)as) != 0 || setuid((uid_t)as) != 0))
			_exit(125);
		alarm(secs);
		execv(argv[0], argv);
		_exit(127);
	}
	struct cmd_out r;
	r.status = test_wait(pid);
	r.out = cmd_slurp_(ofd, &r.out_len);
	r.err = cmd_slurp_(efd, &r.err_len);
	return r;
}

static inline struct cmd_out cmd_run(char *const argv[])
{
	return cmd_run_as(argv, NULL, 0, 60 * test_slowdown());
}

/* Number of lines of s (a last line without '\n' counts). */
static inline unsigned cmd_lines(const char *s)
{
	unsigned n = 0;
	for (const char *p = s; *p; p++)
		n += *p == '\n';
	return n + (s[0] != '\0' && s[strlen(s) - 1] != '\n');
}

/* The path of `prog` on PATH, or NULL. */
static inline const char *cmd_which(const char *prog, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *c = strchr(path, ':');
		size_t n = c != NULL ? (size_t)(c - path) : strlen(path);
		snprintf(buf, len, "%.*s/%s", (int)n, path, prog);
		if (n > 0 && access(buf, X_OK) == 0)
			return buf;
		path += n + (c != NULL);
	}
	return NULL;
}

#endif
