/* The intent record of sluice_ring_dequeue_bulk_mpmc_intent, one process:
 * each take is recorded (lane, position, place in the caller's buffer,
 * count) before its CAS, sluice_ring_intent_taken tells how much of the
 * buffer left the ring (all of it after the CASes; not the last take when
 * its CAS was not made), a cleared record names nothing, a bad lane counts
 * only what surely left. The runtime's fault-injection test
 * (tests/runtime/test_flow_recovery.c) kills a real consumer in the
 * window. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdalign.h>

#include <sluice/desc.h>
#include <sluice/ring.h>
#include "queues/ring_hooks.h"

static alignas(64) unsigned char mem[1u << 16];
static sluice_ring_t ring;
static unsigned hook_calls;
static uint32_t hook_taken_before; /* what intent_taken said inside the hook */

static sluice_desc_t mk(uint64_t id)
{
	sluice_desc_t d;
	memset(&d, 0, sizeof(d));
	d.task_id = id;
	d.slot = (uint32_t)id;
	return d;
}

/* Runs between the record and the CAS: the record must already say what
 * is being taken, and the lane's counter must not have moved yet. */
static void hook(const sluice_ring_intent_t *in, const sluice_desc_t *d, unsigned n)
{
	hook_calls++;
	CHECK((uint32_t)in->what == n);
	hook_taken_before = sluice_ring_intent_taken(&ring, in);
}

int main(void)
{
	sluice_ring_config_t c = {.size_of = sizeof(c), .kind = SLUICE_RING_MPMC, .capacity = 8,
				  .lanes = 3};
	CHECK(sluice_ring_mem_size(&c) <= (int64_t)sizeof(mem));
	CHECK_OK(sluice_ring_format(mem, sizeof(mem), &c));
	CHECK_OK(sluice_ring_open(&ring, mem, sizeof(mem)));
	sluice_ring_producer_t p1, p2;
	CHECK_OK(sluice_ring_producer_claim(&p1, &ring, 1)); /* lane 0 */
	CHECK_OK(sluice_ring_producer_claim(&p2, &ring, 2)); /* lane 1 */
	sluice_desc_t d[8];
	for (int i = 0; i < 5; i++)
		d[i] = mk((uint64_t)i);
	CHECK_RC(sluice_ring_try_enqueue_bulk_mpmc(&p1, d, 3), 3);
	CHECK_RC(sluice_ring_try_enqueue_bulk_mpmc(&p2, d + 3, 2), 2);

	sluice_ring_intent_t in;
	memset(&in, 0, sizeof(in));
	CHECK(sluice_ring_intent_taken(&ring, &in) == 0);
	sluice__ring_set_dequeue_test_hook(hook);

	/* 4 into buf[0..4): 3 from lane 0, then 1 from lane 1; one record per
	 * take, the last one stays. */
	sluice_desc_t buf[8];
	CHECK_RC(sluice_ring_dequeue_bulk_mpmc_intent(&ring, buf, 4, 0, &in, 0), 4);
	CHECK(hook_calls == 2);
	CHECK(hook_taken_before == 3); /* inside the 2nd take: lane 1's CAS not made */
	CHECK(in.where == ((uint64_t)1 << 32 | 0)); /* lane 1, at position 0 */
	CHECK(in.what == ((uint64_t)3 << 32 | 1));  /* buf[3], one descriptor */
	CHECK(sluice_ring_intent_taken(&ring, &in) == 4);
	for (int i = 0; i < 4; i++)
		CHECK(buf[i].task_id == (uint64_t)i);

	/* A single descriptor also goes through the record (not ck's single
	 * dequeue), placed after what the caller already holds. */
	CHECK_RC(sluice_ring_dequeue_bulk_mpmc_intent(&ring, buf + 4, 1, 0, &in, 4), 1);
	CHECK(hook_calls == 3 && hook_taken_before == 4);
	CHECK(in.where == ((uint64_t)1 << 32 | 1) && in.what == ((uint64_t)4 << 32 | 1));
	CHECK(sluice_ring_intent_taken(&ring, &in) == 5);
	CHECK(buf[4].task_id == 4);

	/* Empty: a try times out and leaves the record alone. */
	CHECK_RC(sluice_ring_dequeue_bulk_mpmc_intent(&ring, buf + 5, 3, 0, &in, 5), SLUICE_ETIMEDOUT);
	CHECK(sluice_ring_intent_taken(&ring, &in) == 5);

	/* Cleared: nothing. */
	sluice_ring_intent_clear(&in);
	CHECK(sluice_ring_intent_taken(&ring, &in) == 0);

	/* A record whose CAS was not made (the counter is still at its
	 * position): only what came before it. */
	CHECK_RC(sluice_ring_try_enqueue_bulk_mpmc(&p1, d, 2), 2); /* lane 0 at 3..5 */
	in.where = (uint64_t)0 << 32 | 3;
	in.what = (uint64_t)6 << 32 | 2;
	CHECK(sluice_ring_intent_taken(&ring, &in) == 6);
	/* A lane out of range: only what surely left. */
	in.where = (uint64_t)99 << 32 | 3;
	CHECK(sluice_ring_intent_taken(&ring, &in) == 6);
	/* Counters wrap: a position just behind a counter that wrapped past
	 * 2^32 still counts as passed. */
	in.where = (uint64_t)0 << 32 | 0xfffffffeu;
	CHECK(sluice_ring_intent_taken(&ring, &in) == 8);

	CHECK_RC(sluice_ring_dequeue_bulk_mpmc_intent(&ring, buf, 2, 0, NULL, 0),
		 SLUICE_EINVAL);
	printf("ok\n");
	return TEST_PASS;
}
