/* Impossible counters (docs/RINGS.md, docs/SECURITY.md): a lane whose
 * p_tail and c_head someone scribbled on holds nothing a consumer takes
 * (a take from it alone is -ECORRUPT, one over several lanes takes from
 * the others; arm and count see it empty) and is mended by whoever may:
 * its producer (sluice_ring_producer_reset), the next claim, lane_release,
 * or the ring's only consumer (sluice_ring_mend). Consistent lanes are
 * never touched by any of them. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include <sluice/desc.h>
#include <sluice/ring.h>
#include "queues/ring_layout.h"

#define LANES 3
#define CAP 8
static alignas(64) unsigned char mem[1u << 16];

static struct sluice_ring_lane *lane(unsigned i)
{
	const struct sluice_ring_hdr *h = (const void *)mem;
	return (struct sluice_ring_lane *)(mem + h->lane_off + i * h->lane_stride);
}

static unsigned get(_Atomic unsigned *w)
{
	return atomic_load(w);
}

#define C_HEAD(i) ((_Atomic unsigned *)&lane(i)->ring.c_head)
#define P_TAIL(i) ((_Atomic unsigned *)&lane(i)->ring.p_tail)

static bool consistent(unsigned i)
{
	return get(P_TAIL(i)) - get(C_HEAD(i)) <= CAP - 1;
}

static void put(sluice_ring_producer_t *p, uint64_t id)
{
	CHECK_RC(sluice_ring_try_enqueue_mpmc(p, &(sluice_desc_t){.task_id = id}), 1);
}

int main(void)
{
	sluice_ring_config_t c = {.size_of = sizeof(c), .kind = SLUICE_RING_MPMC, .capacity = CAP,
				  .lanes = LANES};
	CHECK_OK(sluice_ring_format(mem, sizeof(mem), &c));
	sluice_ring_t r;
	CHECK_OK(sluice_ring_open(&r, mem, sizeof(mem)));
	sluice_ring_producer_t a, b;
	CHECK_OK(sluice_ring_producer_claim(&a, &r, 1));
	CHECK_OK(sluice_ring_producer_claim(&b, &r, 2));
	CHECK(a.lane_index_ == 0 && b.lane_index_ == 1);
	sluice_desc_t d[16];

	/* Lane 0 impossible (p_tail far ahead), lane 1 holds two: a take
	 * over both gets the two; then, lane 0 alone, -ECORRUPT. */
	put(&b, 10);
	put(&b, 11);
	atomic_store(P_TAIL(0), get(C_HEAD(0)) + 1000);
	CHECK(sluice_ring_count(&r) == 2);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 16), 2);
	CHECK(d[0].task_id == 10 && d[1].task_id == 11);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 16), SLUICE_ECORRUPT);
	CHECK(sluice_ring_count(&r) == 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	CHECK_OK(sluice_ring_set_eventfd(&r, efd));
	int armed = sluice_ring_arm(&r);
	CHECK(armed == 0 || armed == SLUICE_RING_ARMED_POLL); /* not 1: nothing to take */
	sluice_ring_disarm(&r);

	/* Its producer: a put that looks again at c_head (its snapshot says
	 * the lane is full) says -ECORRUPT (p_tail ahead of c_head by more
	 * than a lane); reset starts it over
	 * (and stores its own p_tail back over the scribbled one). */
	for (int i = 0; i < CAP - 1; i++)
		put(&a, (uint64_t)i);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 16), CAP - 1);
	atomic_store(C_HEAD(0), get(P_TAIL(0)) - 100); /* impossible, the other way */
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&a, &d[0]), SLUICE_ECORRUPT);
	CHECK_RC(sluice_ring_try_enqueue_bulk_mpmc(&a, d, 2), SLUICE_ECORRUPT);
	CHECK_RC(sluice_ring_producer_reset(&a), 1);
	CHECK(consistent(0));
	CHECK_RC(sluice_ring_producer_reset(&a), 0); /* nothing wrong now */
	put(&a, 20);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id == 20);
	/* A scribbled p_tail alone: the producer's next put stores its own. */
	unsigned pt = get(P_TAIL(0));
	atomic_store(P_TAIL(0), pt + 500);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), SLUICE_ECORRUPT);
	put(&a, 21);
	CHECK(get(P_TAIL(0)) == pt + 1);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id == 21);

	/* lane_release of a dead owner mends the lanes it frees, and only
	 * those; a claim mends the lane it gets. */
	atomic_store(P_TAIL(0), get(C_HEAD(0)) + 77);
	put(&b, 30); /* lane 1 consistent, holding one */
	unsigned c1 = get(C_HEAD(1)), p1 = get(P_TAIL(1));
	CHECK_RC(sluice_ring_lane_release(&r, 1), 1);
	CHECK(consistent(0) && get(P_TAIL(0)) == get(C_HEAD(0)));
	CHECK(get(C_HEAD(1)) == c1 && get(P_TAIL(1)) == p1);
	atomic_store(C_HEAD(0), get(P_TAIL(0)) + 3000);
	sluice_ring_producer_t x;
	CHECK_OK(sluice_ring_producer_claim(&x, &r, 3));
	CHECK(x.lane_index_ == 0 && consistent(0));
	put(&x, 40);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 16), 2); /* 40, and b's 30 */

	/* The only consumer mends what no producer will: c_head = p_tail on
	 * each impossible lane; a consistent lane keeps what it holds. */
	put(&b, 50);
	atomic_store(C_HEAD(0), get(C_HEAD(0)) + 99999);
	atomic_store(C_HEAD(2), get(P_TAIL(2)) - 12345);
	CHECK_RC(sluice_ring_mend(&r), 2);
	CHECK(consistent(0) && consistent(2));
	CHECK_RC(sluice_ring_mend(&r), 0);
	CHECK(sluice_ring_count(&r) == 1);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 16), 1);
	CHECK(d[0].task_id == 50);
	CHECK_RC(sluice_ring_mend(NULL), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_producer_reset(NULL), SLUICE_EINVAL);
	close(efd);
	printf("ok\n");
	return TEST_PASS;
}
