/* Processes and the memory they share: a MAP_SHARED memfd mapping that
 * fork()ed children inherit, a futex-based barrier on it, and forking pinned
 * children that the parent waits for with a deadline.
 *
 * Everything here is for the bench harness, not its timed paths: the
 * barrier sleeps in the kernel, so a round's start is not spun for on a
 * 2-core machine. */
#ifndef SLUICE_BENCH_PROC_H
#define SLUICE_BENCH_PROC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A zero-filled MAP_SHARED mapping of a fresh memfd, `len` bytes (rounded up
 * to pages), populated. Children forked afterwards share it. Returns NULL on
 * failure. */
void *bench_shm_map(size_t len);
void bench_shm_unmap(void *p, size_t len);

/* Bare futex calls on a shared (not process-private) 32-bit word. wait
 * returns 0 when woken or when *word != expected (EAGAIN), -EINTR, or
 * another negative errno; wake returns the number woken or a negative errno. */
int bench_futex_wait(_Atomic uint32_t *word, uint32_t expected);
int bench_futex_wake(_Atomic uint32_t *word, int n);

/* A barrier for `n` processes in shared memory. Zero-filled is initialized.
 * Any process may wait; waiters sleep on a futex. Not for timed paths. */
struct bench_barrier {
	_Atomic uint32_t arrived;
	_Atomic uint32_t generation;
};

void bench_barrier_wait(struct bench_barrier *b, uint32_t n);

/* Forks a child that pins itself to `cpu` (-1: no pinning), runs fn(arg)
 * and _exit()s with its return value (0 for success). SIGCHLD is blocked in
 * the parent (see bench_wait_children) and unblocked in the child. Returns
 * the child's pid or a negative errno. */
pid_t bench_spawn(int cpu, int (*fn)(void *), void *arg);

/* Waits for the `n` children in `pids` until `deadline_ns` (bench_now_ns()
 * time). Children still running at the deadline are killed with SIGKILL and
 * reaped. Returns 0 when every child exited 0, else -1 after printing which
 * child failed and how ("name" prefixes the message). */
int bench_wait_children(const char *name, const pid_t *pids, int n, uint64_t deadline_ns);

#endif
