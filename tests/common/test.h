/* What every test includes: CHECK macros that name the failing expression,
 * the exit-code contract (0 pass, 1 fail, 77 skip) and helpers for tests
 * that fork real processes. */
#ifndef SLUICE_TESTS_TEST_H
#define SLUICE_TESTS_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sluice/error.h>

#define TEST_PASS 0
#define TEST_FAIL 1
#define TEST_SKIP 77

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			exit(TEST_FAIL);                                       \
		}                                                              \
	} while (0)

/* Checks that an int-returning call gives exactly `want`. */
#define CHECK_RC(call, want)                                                   \
	do {                                                                   \
		int rc_ = (call);                                              \
		int want_ = (want);                                            \
		if (rc_ != want_) {                                            \
			fprintf(stderr, "FAIL %s:%d: %s returned %d (%s), want %d (%s)\n", \
				__FILE__, __LINE__, #call, rc_, sluice_err_name(rc_), want_, \
				sluice_err_name(want_));                       \
			exit(TEST_FAIL);                                       \
		}                                                              \
	} while (0)

#define CHECK_OK(call) CHECK_RC(call, 0)

static inline void test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(TEST_SKIP);
}

static inline uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sanitizer builds run slower; stress tests scale their work down and
 * their deadlines up by SLUICE_TEST_SLOWDOWN (set by CTest in those
 * builds, default 1). */
static inline unsigned test_slowdown(void)
{
	const char *s = getenv("SLUICE_TEST_SLOWDOWN");
	long v = s ? strtol(s, NULL, 10) : 1;
	return v >= 1 ? (unsigned)v : 1;
}

/* argv[i] as an unsigned count, or `dflt` when absent. */
static inline uint64_t test_arg_u64(int argc, char **argv, int i, uint64_t dflt)
{
	if (i >= argc)
		return dflt;
	char *end;
	unsigned long long v = strtoull(argv[i], &end, 10);
	if (*end != '\0') {
		fprintf(stderr, "bad argument %s\n", argv[i]);
		exit(TEST_FAIL);
	}
	return v;
}

/* Waits for child `pid`; returns its exit status, or 128+signal. */
static inline int test_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

#endif
