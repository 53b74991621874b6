#define _GNU_SOURCE
#include "bench/common/proc.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/atomic.h"
#include "bench/common/clock.h"
#include "bench/common/cpu.h"

void *bench_shm_map(size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	len = (len + (size_t)pg - 1) & ~((size_t)pg - 1);
	int fd = memfd_create("sluice-bench", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)len) == 0)
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

void bench_shm_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

int bench_futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, NULL, NULL, 0);
	if (rc == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

int bench_futex_wake(_Atomic uint32_t *word, int n)
{
	long rc = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
	return rc >= 0 ? (int)rc : -errno;
}

void bench_barrier_wait(struct bench_barrier *b, uint32_t n)
{
	/* Acquire: pairs with the last arriver's release of generation, so
	 * each process sees what the others wrote before arriving. */
	uint32_t gen = sl_load_acquire(&b->generation);
	if (sl_fetch_add_acq_rel(&b->arrived, 1) + 1 == n) {
		sl_store_relaxed(&b->arrived, 0);
		/* Release: pairs with the acquire loads below and above. */
		sl_store_release(&b->generation, gen + 1);
		bench_futex_wake(&b->generation, INT32_MAX);
		return;
	}
	/* Acquire: pairs with the last arriver's release of generation. */
	while (sl_load_acquire(&b->generation) == gen)
		bench_futex_wait(&b->generation, gen);
}

pid_t bench_spawn(int cpu, int (*fn)(void *), void *arg)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	if (cpu >= 0) {
		int rc = bench_pin_cpu(cpu);
		if (rc != 0) {
			fprintf(stderr, "pin to cpu %d: %s\n", cpu, strerror(-rc));
			_exit(2);
		}
	}
	int rc = fn(arg);
	fflush(NULL);
	_exit(rc == 0 ? 0 : 1);
}

int bench_wait_children(const char *name, const pid_t *pids, int n, uint64_t deadline_ns)
{
	int done[64] = {0};
	int left = n, failed = 0;
	if (n < 0 || n > 64)
		return -1;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			int st;
			pid_t r = waitpid(pids[i], &st, WNOHANG);
			if (r == 0)
				continue;
			done[i] = 1;
			left--;
			if (r < 0) {
				fprintf(stderr, "%s: waitpid %d: %s\n", name, (int)pids[i], strerror(errno));
				failed = 1;
			} else if (WIFSIGNALED(st)) {
				fprintf(stderr, "%s: child %d killed by signal %d\n", name, i, WTERMSIG(st));
				failed = 1;
			} else if (WEXITSTATUS(st) != 0) {
				fprintf(stderr, "%s: child %d exited %d\n", name, i, WEXITSTATUS(st));
				failed = 1;
			}
		}
		if (left == 0)
			break;
		uint64_t now = bench_now_ns();
		if (now >= deadline_ns) {
			fprintf(stderr, "%s: timed out; killing %d child(ren)\n", name, left);
			for (int i = 0; i < n; i++)
				if (!done[i])
					kill(pids[i], SIGKILL);
			for (int i = 0; i < n; i++)
				if (!done[i])
					waitpid(pids[i], NULL, 0);
			return -1;
		}
		/* Sleep until a child changes state or the deadline passes;
		 * SIGCHLD stays blocked, so none is lost between the waitpid
		 * calls above and this wait. */
		uint64_t left_ns = deadline_ns - now;
		struct timespec ts = {.tv_sec = (time_t)(left_ns / 1000000000u),
				      .tv_nsec = (long)(left_ns % 1000000000u)};
		sigtimedwait(&chld, NULL, &ts);
	}
	return failed ? -1 : 0;
}
