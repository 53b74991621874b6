/* eventfd wake-ups: a consumer that waits in epoll, not in a blocking
 * call, is woken by a producer in another process and drains the ring.
 *
 * The child producer inherits the eventfd by fork and gives it to its
 * producer handle; it sends bursts of descriptors with pauses between, so
 * the parent's loop (drain, arm, epoll_wait, read, disarm) goes to sleep in
 * epoll before most bursts. A lost wake-up shows as an epoll_wait that
 * times out while descriptors are queued: the test fails on it. */
#define _GNU_SOURCE
#include "common/test.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <sluice/ring.h>

#define BURSTS 60
#define MEM (1u << 16)

static unsigned burst_len(unsigned b)
{
	return 1 + (b * 7) % 13;
}

static void producer(void *mem, int efd)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t buf[16];
	CHECK_OK(sluice_ring_open(&r, mem, MEM));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 7));
	CHECK_OK(sluice_ring_producer_set_eventfd(&p, efd));
	uint64_t id = 0;
	for (unsigned b = 0; b < BURSTS; b++) {
		usleep(2000); /* the consumer drains and falls asleep in epoll */
		unsigned n = burst_len(b);
		for (unsigned i = 0; i < n; i++) {
			memset(&buf[i], 0, sizeof(buf[i]));
			buf[i].task_id = id + i;
		}
		unsigned done = 0;
		while (done < n) {
			int k = b % 2 ? sluice_ring_enqueue_bulk_mpmc(&p, buf + done, n - done,
								      SLUICE_RING_FOREVER)
				      : sluice_ring_enqueue_mpmc(&p, buf + done, SLUICE_RING_FOREVER);
			CHECK(k >= 1);
			done += (unsigned)k;
		}
		id += n;
	}
	sluice_ring_stats_t st;
	sluice_ring_producer_stats(&p, &st);
	/* The producer wrote the eventfd (at most once per call: a bulk call
	 * writes once however many it moved), and no futex was involved. */
	if (st.eventfd_writes < BURSTS / 2 || st.eventfd_writes > id || st.futex_wakes != 0) {
		fprintf(stderr, "producer: %" PRIu64 " eventfd writes, %" PRIu64
			" futex wakes for %" PRIu64 " descriptors\n",
			st.eventfd_writes, st.futex_wakes, id);
		exit(TEST_FAIL);
	}
	CHECK_OK(sluice_ring_producer_release(&p));
}

int main(void)
{
	void *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	sluice_ring_config_t c = {.size_of = sizeof(c), .kind = SLUICE_RING_MPMC, .capacity = 16,
				  .lanes = 2};
	CHECK_OK(sluice_ring_format(mem, MEM, &c));
	sluice_ring_t r;
	CHECK_OK(sluice_ring_open(&r, mem, MEM));
	CHECK_RC(sluice_ring_arm(&r), SLUICE_EINVAL); /* no eventfd yet */

	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(efd >= 0);
	CHECK_OK(sluice_ring_set_eventfd(&r, efd));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);

	/* Armed on an empty ring, nothing is ready. */
	CHECK_RC(sluice_ring_arm(&r), 0);
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0);
	sluice_ring_disarm(&r);

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		producer(mem, efd);
		_exit(0);
	}

	uint64_t total = 0, next = 0, wakeups = 0, arm_busy = 0;
	for (unsigned b = 0; b < BURSTS; b++)
		total += burst_len(b);
	sluice_desc_t buf[8];
	while (next < total) {
		int k;
		while ((k = sluice_ring_try_dequeue_bulk_mpmc(&r, buf, 8)) > 0)
			for (int i = 0; i < k; i++)
				CHECK(buf[i].task_id == next++);
		CHECK(k == 0);
		if (next == total)
			break;
		int armed = sluice_ring_arm(&r);
		CHECK(armed == 0 || armed == 1);
		if (armed == 1) {
			arm_busy++; /* arrived between the drain and the arming */
			continue;
		}
		/* A lost wake-up leaves us here with descriptors queued. */
		int n = epoll_wait(ep, &ev, 1, 10000);
		if (n != 1) {
			fprintf(stderr, "epoll_wait returned %d with %" PRIu64 " of %" PRIu64
				" taken, %" PRIu64 " queued\n",
				n, next, total, sluice_ring_count(&r));
			return TEST_FAIL;
		}
		uint64_t cnt;
		CHECK(read(efd, &cnt, sizeof(cnt)) == sizeof(cnt) && cnt >= 1);
		sluice_ring_disarm(&r);
		wakeups++;
	}
	CHECK(test_wait(pid) == 0);
	printf("%" PRIu64 " descriptors in %d bursts; woken through epoll %" PRIu64
	       " times; found work when arming %" PRIu64 " times\n",
	       total, BURSTS, wakeups, arm_busy);
	/* The consumer really waited in epoll for most bursts. */
	CHECK(wakeups >= BURSTS / 2);
	sluice_ring_t r2;
	CHECK_OK(sluice_ring_open(&r2, mem, MEM));
	CHECK(sluice_ring_count(&r2) == 0);
	close(ep);
	close(efd);
	munmap(mem, MEM);
	return TEST_PASS;
}
