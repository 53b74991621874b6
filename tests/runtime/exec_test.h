/* Helpers for the tests of exec'd steps (docs/RUNTIME.md, "Exec'd
 * workers"): the worker program's path, memory shared with exec'd workers,
 * and checks that a worker really is an exec'd process.
 *
 * An exec'd worker inherits no mapping of the test: memory it shares with
 * the test is a memfd left open across exec, whose number the test puts in
 * the environment (SLUICE_TEST_SHARED_FD) before starting the flow; the
 * worker program maps it in on_start (test_exec_shared_attach). Forked
 * workers inherit the mapping itself. */
#ifndef SLUICE_TESTS_RUNTIME_EXEC_TEST_H
#define SLUICE_TESTS_RUNTIME_EXEC_TEST_H

#include "runtime/flow_test.h"

#include <limits.h>
#include <sys/mman.h>

/* The worker program (tests/runtime/flow_exec_worker.c), from CMake. */
#ifndef SLUICE_TEST_EXEC_WORKER
#define SLUICE_TEST_EXEC_WORKER NULL
#endif

#define TEST_SHARED_FD_ENV "SLUICE_TEST_SHARED_FD"

static inline const char *test_exec_worker(void)
{
	const char *p = SLUICE_TEST_EXEC_WORKER;
	if (p == NULL || access(p, X_OK) != 0)
		test_skip("the worker program flow_exec_worker is not built");
	return p;
}

/* Zeroed memory shared with every process started after this call, forked
 * or exec'd: a memfd without close-on-exec, named in the environment. */
static inline void *test_exec_shared(size_t size)
{
	int fd = memfd_create("sluice-test-shared", 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	char num[16];
	snprintf(num, sizeof(num), "%d", fd);
	CHECK(setenv(TEST_SHARED_FD_ENV, num, 1) == 0);
	return p;
}

/* In an exec'd worker: maps what test_exec_shared made (size bytes), or
 * returns NULL. */
static inline void *test_exec_shared_attach(size_t size)
{
	const char *s = getenv(TEST_SHARED_FD_ENV);
	if (s == NULL)
		return NULL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, atoi(s), 0);
	return p == MAP_FAILED ? NULL : p;
}

/* True when process `pid` runs the program at `path` (its /proc/PID/exe). */
static inline bool test_runs_program(pid_t pid, const char *path)
{
	char link[64], exe[PATH_MAX], want[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0 || realpath(path, want) == NULL)
		return false;
	exe[n] = '\0';
	return strcmp(exe, want) == 0;
}

#endif
