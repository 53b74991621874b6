/* The rings' asymmetric fences (queues/ring.c, top of the file): the
 * membarrier(2) registration they rest on, and the fallback where a
 * sleeper's membarrier call is refused.
 *
 * 1. Opening a ring registers the process for
 *    MEMBARRIER_CMD_GLOBAL_EXPEDITED, and a fork child is registered too
 *    (its wakers skip their fence on the strength of it). Checked with
 *    MEMBARRIER_CMD_GET_REGISTRATIONS where the kernel has it (Linux 6.3+).
 * 2. A child behind a seccomp filter that refuses membarrier (EPERM), as a
 *    sandbox might, consumes in always-sleep mode from the parent, a
 *    registered producer whose wake check is ordered by a compiler barrier
 *    only. The child cannot order that check, so its sleeps are bounded:
 *    with nothing to take for 200 ms it sleeps more than once (one
 *    FUTEX_WAIT until the deadline otherwise), every descriptor arrives in
 *    order (a hang here is a lost wake-up that the bound did not catch),
 *    and its eventfd arming reports SLUICE_RING_ARMED_POLL.
 *
 * usage: test_ring_membarrier [HANDOFFS] (default 20,000; divided by
 * SLUICE_TEST_SLOWDOWN). Skips (77) where the kernel lacks
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED or seccomp filters. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <sluice/arena.h>
#include <sluice/ring.h>
#include "base/atomic.h"

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Not in every <linux/membarrier.h>: Linux 6.3. */
#define CMD_GET_REGISTRATIONS (1 << 9)

enum { R_DATA = 1, R_IDLE = 2, R_CTL = 3 };

struct ctl {
	_Atomic uint32_t child_ready; /* the sandboxed child is past its checks */
};

static sluice_arena_t *arena;

static long membarrier_(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static void *region(uint32_t id, uint64_t *size)
{
	uint64_t off;
	CHECK_OK(sluice_arena_region(arena, id, &off, size));
	void *p = sluice_arena_at(arena, off, *size, 64);
	CHECK(p != NULL);
	return p;
}

static void open_ring(uint32_t id, sluice_ring_t *r)
{
	uint64_t size;
	void *mem = region(id, &size);
	CHECK_OK(sluice_ring_open(r, mem, size));
}

/* 1 registered, 0 not, -1 the kernel cannot tell. */
static int registered(void)
{
	long regs = membarrier_(CMD_GET_REGISTRATIONS);
	if (regs < 0)
		return -1;
	return (regs & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
}

/* Refuses membarrier(2) with EPERM from now on, in this process. */
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

static void spin_ns(uint64_t ns)
{
	uint64_t until = test_now_ns() + ns;
	while (test_now_ns() < until)
		;
}

static void sandboxed_child(struct ctl *c, uint64_t n)
{
	deny_membarrier();
	CHECK(membarrier_(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == -1 && errno == EPERM);

	/* Bounded sleeps on an empty ring. */
	sluice_ring_t idle;
	sluice_ring_stats_t st;
	sluice_desc_t d;
	open_ring(R_IDLE, &idle);
	CHECK_OK(sluice_ring_set_wait(&idle, SLUICE_RING_SLEEP, 0));
	CHECK_RC(sluice_ring_dequeue_spsc(&idle, &d, 200000000ull), SLUICE_ETIMEDOUT);
	sluice_ring_stats(&idle, &st);
	printf("sandboxed consumer, empty ring for 200 ms: %" PRIu64 " FUTEX_WAITs\n",
	       st.futex_waits);
	CHECK(st.futex_waits >= 2);

	/* Arming cannot promise a wake-up. */
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	CHECK_OK(sluice_ring_set_eventfd(&idle, efd));
	CHECK_RC(sluice_ring_arm(&idle), SLUICE_RING_ARMED_POLL);
	sluice_ring_disarm(&idle);
	close(efd);

	/* Every descriptor of a registered producer arrives. */
	sluice_ring_t r;
	open_ring(R_DATA, &r);
	CHECK_OK(sluice_ring_set_wait(&r, SLUICE_RING_SLEEP, 0));
	/* Release: pairs with the parent's acquire before it produces. */
	sl_store_release(&c->child_ready, 1);
	for (uint64_t i = 0; i < n; i++) {
		CHECK(sluice_ring_dequeue_spsc(&r, &d, SLUICE_RING_FOREVER) == 1);
		CHECK(d.task_id == i);
	}
	sluice_ring_stats(&r, &st);
	printf("sandboxed consumer: %" PRIu64 " descriptors, %" PRIu64 " FUTEX_WAITs slept, %" PRIu64
	       " found the word moved\n",
	       n, st.futex_waits, st.futex_eagain);
	CHECK(st.futex_waits > 0);
}

int main(int argc, char **argv)
{
	uint64_t n = test_arg_u64(argc, argv, 1, 20000) / test_slowdown();
	long cmds = membarrier_(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		test_skip("no MEMBARRIER_CMD_GLOBAL_EXPEDITED");
#ifndef NATIVE_AUDIT_ARCH
	test_skip("no seccomp filter for this architecture in the test");
#endif

	sluice_ring_config_t spsc = {.size_of = sizeof(spsc), .kind = SLUICE_RING_SPSC,
				     .capacity = 64};
	int64_t rsz = sluice_ring_mem_size(&spsc);
	CHECK(rsz > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "ring-membarrier", .nregions = 3};
	o.regions[0] = (sluice_region_req_t){.id = R_DATA, .size = (uint64_t)rsz};
	o.regions[1] = (sluice_region_req_t){.id = R_IDLE, .size = (uint64_t)rsz};
	o.regions[2] = (sluice_region_req_t){.id = R_CTL, .size = sizeof(struct ctl)};
	CHECK_OK(sluice_arena_create(&o, &arena));
	for (uint32_t id = R_DATA; id <= R_IDLE; id++) {
		uint64_t size;
		void *mem = region(id, &size);
		CHECK_OK(sluice_ring_format(mem, size, &spsc));
	}
	uint64_t csize;
	struct ctl *c = region(R_CTL, &csize);

	/* 1. Registration, here and in a fork child. */
	int before = registered();
	sluice_ring_t r;
	sluice_ring_producer_t p;
	open_ring(R_DATA, &r);
	int after = registered();
	printf("GET_REGISTRATIONS: before open %d, after %d (-1: kernel cannot tell)\n", before,
	       after);
	CHECK(after != 0);
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(registered() == 0 ? TEST_FAIL : TEST_PASS);
	CHECK(test_wait(pid) == TEST_PASS);

	/* 2. A sandboxed consumer. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sandboxed_child(c, n);
		fflush(stdout);
		_exit(TEST_PASS);
	}
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 1));
	uint64_t until = test_now_ns() + 60000000000ull;
	/* Acquire: pairs with the child's release. */
	while (sl_load_acquire(&c->child_ready) == 0) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
	uint64_t seed = 99;
	for (uint64_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* Now and then a pause, so that the consumer falls asleep. */
		if ((seed >> 33) % 4 == 0)
			spin_ns((seed >> 40) % 30000);
		sluice_desc_t d = {.task_id = i};
		CHECK(sluice_ring_enqueue_spsc(&p, &d, SLUICE_RING_FOREVER) == 1);
	}
	CHECK(test_wait(pid) == TEST_PASS);
	CHECK_OK(sluice_ring_producer_release(&p));
	sluice_arena_destroy(arena);
	printf("ok\n");
	return TEST_PASS;
}
