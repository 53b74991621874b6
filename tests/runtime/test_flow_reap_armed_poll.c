/* sluice_flow_reap where the client may not call membarrier(2): its arming
 * of the completion eventfd cannot promise a wake-up
 * (SLUICE_RING_ARMED_POLL, include/sluice/ring.h), and reap honours the
 * ring's contract: it waits up to SLUICE_RING_ARMED_POLL_MS for the
 * eventfd, looks again, and leaves the eventfd readable.
 *
 * A child behind a seccomp filter that refuses membarrier (EPERM) makes a
 * 1-step flow (its supervisor and worker inherit the filter) whose handler
 * takes 20 ms a task, and drives it with an event loop that sleeps in
 * poll(2) on sluice_flow_eventfd without a timeout of its own and calls
 * reap whenever it is readable. Every task comes back with its result (a
 * completion slept through would hang the loop: it fails after 30 s), and
 * the loop does not spin: a reap that returns nothing has waited about a
 * millisecond, so there are at most as many of them as milliseconds passed
 * (plus one per task), where a reap that only asked to be called again
 * made one per loop turn. sluice_task_wait, which bounds its sleep the same
 * way, also gets its task.
 *
 * usage: test_flow_reap_armed_poll [TASKS] (default 20). Skips (77) where
 * the kernel lacks MEMBARRIER_CMD_GLOBAL_EXPEDITED or seccomp filters. */
#include "runtime/flow_test.h"

#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define HANDLE_US 20000u

static int h_slow(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		usleep(HANDLE_US);
		if (!test_result_u64(&items[i], test_payload_u64(&items[i]) + 7))
			sluice_item_fail(&items[i], "no block");
	}
	return 0;
}

/* Refuses membarrier(2) with EPERM from now on, in this process and its
 * children (as test_ring_membarrier does). */
static void deny_membarrier(void)
{
#ifdef NATIVE_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
#endif
}

static void sandboxed_child(unsigned ntasks)
{
	deny_membarrier();
	CHECK(syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == -1 &&
	      errno == EPERM);

	sluice_step_t step = test_step("slow", h_slow, 1, 1);
	sluice_flow_t *f = test_flow("armed-poll", &step, 1, 64);
	test_start(f);
	int efd = sluice_flow_eventfd(f);
	CHECK(efd >= 0);
	/* The case under test: the client's arming reports ARMED_POLL. */
	CHECK_RC(sluice_ring_arm(&f->comp), SLUICE_RING_ARMED_POLL);
	sluice_ring_disarm(&f->comp);

	/* sluice_task_wait. */
	sluice_task_t *t = test_task_u64(f, 1000);
	CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
	test_wait_task(f, t);
	CHECK(t->status == SLUICE_TASK_OK && test_task_result_u64(t) == 1007);
	CHECK_OK(sluice_task_release(f, t));

	/* An event loop on the eventfd. */
	sluice_task_t *ts[64];
	CHECK(ntasks <= 64);
	for (unsigned i = 0; i < ntasks; i++)
		ts[i] = test_task_u64(f, i);
	uint64_t t0 = test_now_ns();
	CHECK_RC(sluice_task_submit_many(f, ts, ntasks, 10 * SEC), (int)ntasks);
	unsigned got = 0, reaps = 0, empty = 0;
	uint64_t sum = 0;
	while (got < ntasks) {
		struct pollfd p = {.fd = efd, .events = POLLIN};
		int n = poll(&p, 1, 30000);
		if (n == 0) {
			fprintf(stderr, "FAIL: %u of %u tasks back, the eventfd quiet for 30 s\n", got,
				ntasks);
			exit(TEST_FAIL);
		}
		CHECK(n == 1);
		sluice_task_t *out[8];
		int k = sluice_flow_reap(f, out, 8);
		CHECK(k >= 0);
		reaps++;
		empty += k == 0;
		for (int i = 0; i < k; i++) {
			CHECK(out[i]->status == SLUICE_TASK_OK);
			sum += test_task_result_u64(out[i]);
			CHECK_OK(sluice_task_release(f, out[i]));
		}
		got += (unsigned)k;
	}
	uint64_t ms = (test_now_ns() - t0) / MSEC;
	printf("%u tasks of %u ms in %llu ms: %u reaps, %u of them empty\n", ntasks,
	       HANDLE_US / 1000, (unsigned long long)ms, reaps, empty);
	CHECK(sum == (uint64_t)ntasks * (ntasks - 1) / 2 + 7u * ntasks);
	/* Each empty reap waited ~1 ms on a quiet eventfd (poll(2) sleeps at
	 * least its timeout): this bound is not about speed. */
	CHECK(empty <= ms + ntasks + 2);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	sluice_flow_destroy(f);
}

int main(int argc, char **argv)
{
	unsigned ntasks = (unsigned)test_arg_u64(argc, argv, 1, 20);
	if (ntasks == 0 || ntasks > 64)
		ntasks = 20;
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		test_skip("no MEMBARRIER_CMD_GLOBAL_EXPEDITED");
#ifndef NATIVE_AUDIT_ARCH
	test_skip("no seccomp filter for this architecture in the test");
#endif
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sandboxed_child(ntasks);
		fflush(stdout);
		_exit(TEST_PASS);
	}
	int rc = test_wait(pid);
	if (rc != TEST_PASS) {
		fprintf(stderr, "FAIL: the sandboxed client exited with %d\n", rc);
		return TEST_FAIL;
	}
	printf("PASS\n");
	return TEST_PASS;
}
