/* Priority lanes (sluice_ring_set_priority, sluice_ring_producer_claim_in):
 * high descriptors are taken first, a bulk take fills up from the normal
 * lanes, and after `burst` high-only takes in a row the next take serves
 * the normal lanes first, so normal descriptors are never starved. Also
 * the claim ranges and the calls' refusals. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdalign.h>

#include <sluice/desc.h>
#include <sluice/ring.h>

#define LANES 6 /* lanes 0..2 normal, 3..5 high */
#define SPLIT 3
#define CAP 256
static alignas(64) unsigned char mem[1u << 20];

int main(void)
{
	sluice_ring_config_t c = {.size_of = sizeof(c), .kind = SLUICE_RING_MPMC, .capacity = CAP,
				  .lanes = LANES};
	CHECK(sluice_ring_mem_size(&c) <= (int64_t)sizeof(mem));
	CHECK_OK(sluice_ring_format(mem, sizeof(mem), &c));
	sluice_ring_t r;
	CHECK_OK(sluice_ring_open(&r, mem, sizeof(mem)));

	/* Refusals. */
	CHECK_RC(sluice_ring_set_priority(&r, 0, 4), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_set_priority(&r, LANES, 4), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_set_priority(&r, SPLIT, 0), SLUICE_EINVAL);
	sluice_ring_producer_t lo, hi, x;
	CHECK_RC(sluice_ring_producer_claim_in(&lo, &r, 7, SPLIT, LANES), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_producer_claim_in(&lo, &r, 7, 0, 0), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_producer_claim_in(&lo, &r, 7, LANES, 1), SLUICE_EINVAL);

	/* One producer holds one lane of each range. */
	CHECK_OK(sluice_ring_producer_claim_in(&lo, &r, 7, 0, SPLIT));
	CHECK_OK(sluice_ring_producer_claim_in(&hi, &r, 7, SPLIT, LANES - SPLIT));
	CHECK_RC(sluice_ring_producer_claim_in(&x, &r, 7, 0, SPLIT), SLUICE_EEXIST);
	CHECK_RC(sluice_ring_producer_claim(&x, &r, 7), SLUICE_EEXIST);
	CHECK(sluice_ring_lane_owner(&r, 0) == 7);
	CHECK(sluice_ring_lane_owner(&r, SPLIT) == 7);

	/* Without priority the consumer takes in lane order: normal first. */
	for (uint64_t i = 0; i < 10; i++)
		CHECK_RC(sluice_ring_try_enqueue_mpmc(&lo, &(sluice_desc_t){.task_id = i}), 1);
	for (uint64_t i = 0; i < 10; i++)
		CHECK_RC(sluice_ring_try_enqueue_mpmc(&hi, &(sluice_desc_t){.task_id = 100 + i, .priority = 1}), 1);
	sluice_desc_t d[32];
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id == 0);

	/* With priority, burst 4: HHHH N HHHH N HH then the normal rest. */
	CHECK_OK(sluice_ring_set_priority(&r, SPLIT, 4));
	const char *want = "HHHHNHHHHNHHNNNNNNN";
	for (size_t i = 0; want[i]; i++) {
		CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
		bool high = d[0].task_id >= 100;
		if (high != (want[i] == 'H')) {
			fprintf(stderr, "take %zu: got %s (task %" PRIu64 "), want %c\n", i,
				high ? "high" : "normal", d[0].task_id, want[i]);
			return TEST_FAIL;
		}
	}
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 0);

	/* Order within a level is kept; a bulk take fills from normal after
	 * high, and counts as a take that served normal. */
	for (uint64_t i = 0; i < 5; i++)
		CHECK_RC(sluice_ring_try_enqueue_mpmc(&lo, &(sluice_desc_t){.task_id = i}), 1);
	for (uint64_t i = 0; i < 3; i++)
		CHECK_RC(sluice_ring_try_enqueue_mpmc(&hi, &(sluice_desc_t){.task_id = 100 + i}), 1);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 6), 6);
	for (uint64_t i = 0; i < 3; i++)
		CHECK(d[i].task_id == 100 + i);
	for (uint64_t i = 0; i < 3; i++)
		CHECK(d[3 + i].task_id == i);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, d, 6), 2);
	CHECK(d[0].task_id == 3 && d[1].task_id == 4);

	/* High descriptors from several producers' lanes all go first. */
	sluice_ring_producer_t hi2;
	CHECK_OK(sluice_ring_producer_claim_in(&hi2, &r, 8, SPLIT, LANES - SPLIT));
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&lo, &(sluice_desc_t){.task_id = 1}), 1);
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&hi, &(sluice_desc_t){.task_id = 101}), 1);
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&hi2, &(sluice_desc_t){.task_id = 102}), 1);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id >= 100);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id >= 100);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, &d[0]), 1);
	CHECK(d[0].task_id == 1);

	/* Releasing the owner frees both of its lanes. */
	CHECK_RC(sluice_ring_lane_release(&r, 7), 2);
	CHECK(sluice_ring_lane_owner(&r, 0) == SLUICE_RING_OWNER_NONE);
	printf("ok\n");
	return TEST_PASS;
}
