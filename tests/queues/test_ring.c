/* Descriptor rings, one process: layout, format/open validation, SPSC and
 * MPMC order and contents (single and bulk, across the wrap), full and
 * empty try forms, the N-1 capacity rule, timeouts in every wait mode,
 * lane claim and release, and the enqueue test hook's place. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdalign.h>
#include <sys/mman.h>

#include <sluice/desc.h>
#include <sluice/ring.h>
#include "queues/ring_hooks.h"
#include "queues/ring_layout.h"

#define MEM_SIZE (1u << 20)
static alignas(64) unsigned char mem[MEM_SIZE];

static sluice_desc_t mkdesc(uint64_t id)
{
	sluice_desc_t d;
	memset(&d, 0, sizeof(d));
	d.task_id = id;
	d.submit_ns = id * 3 + 1;
	d.deadline_ns = ~id;
	d.user = id ^ 0x5a5a5a5a5a5a5a5aull;
	d.payload_block = (uint32_t)id;
	d.payload_len = (uint32_t)(id >> 3);
	d.result_block = (uint32_t)(id + 7);
	d.result_len = 64;
	d.slot = (uint32_t)(id * 11);
	d.client = 3;
	d.step = (uint16_t)id;
	d.flags = 0x8001;
	d.status = SLUICE_TASK_OK;
	d.attempt = (uint8_t)id;
	d.priority = (uint8_t)(id >> 8);
	return d;
}

static void check_desc(const sluice_desc_t *d, uint64_t id)
{
	sluice_desc_t want = mkdesc(id);
	if (memcmp(d, &want, sizeof(want)) != 0) {
		fprintf(stderr, "descriptor %" PRIu64 " differs (got task_id %" PRIu64 ")\n", id,
			d->task_id);
		exit(TEST_FAIL);
	}
}

static sluice_ring_config_t cfg(uint32_t kind, uint32_t capacity, uint32_t lanes)
{
	return (sluice_ring_config_t){.size_of = sizeof(sluice_ring_config_t), .kind = kind,
				      .capacity = capacity, .lanes = lanes};
}

static void make(sluice_ring_t *r, uint32_t kind, uint32_t capacity, uint32_t lanes)
{
	sluice_ring_config_t c = cfg(kind, capacity, lanes);
	int64_t need = sluice_ring_mem_size(&c);
	CHECK(need > 0 && (uint64_t)need <= MEM_SIZE);
	memset(mem, 0xa5, (size_t)need); /* format must not rely on zeroed memory */
	CHECK_OK(sluice_ring_format(mem, (uint64_t)need, &c));
	CHECK_OK(sluice_ring_open(r, mem, (uint64_t)need));
}

static void test_layout(void)
{
	CHECK(sizeof(sluice_desc_t) == 64);
	CHECK(sizeof(struct sluice_ring_hdr) == 192);
	CHECK(sizeof(struct sluice_ring_lane) == 192);
	CHECK(strcmp(sluice_task_status_name(SLUICE_TASK_OK), "ok") == 0);
	CHECK(strcmp(sluice_task_status_name(SLUICE_TASK_WORKER_DIED), "worker died") == 0);
	CHECK(strcmp(sluice_task_status_name(SLUICE_TASK_STEP_FAILED), "step failed") == 0);
	CHECK(strcmp(sluice_task_status_name(9999), "unknown") == 0);

	sluice_ring_config_t c = cfg(SLUICE_RING_MPMC, 16, 3);
	CHECK(sluice_ring_mem_size(&c) == 192 + 3 * (192 + 16 * 64));
	c = cfg(SLUICE_RING_SPSC, 16, 0);
	CHECK(sluice_ring_mem_size(&c) == 192 + 1 * (192 + 16 * 64));
}

static void test_config_refusals(void)
{
	sluice_ring_config_t c;
	c = cfg(SLUICE_RING_SPSC, 12, 1); /* not a power of two */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_SPSC, 1, 1); /* too small */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_SPSC, 1u << 25, 1); /* too big */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_SPSC, 16, 2); /* SPSC has one lane */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_MPMC, 16, 0); /* MPMC needs lanes */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_MPMC, 16, SLUICE_RING_MAX_LANES + 1);
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(7, 16, 1); /* unknown kind */
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_SPSC, 16, 1);
	c.wait = 9;
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);
	c = cfg(SLUICE_RING_SPSC, 16, 1);
	c.size_of = 8;
	CHECK_RC((int)sluice_ring_mem_size(&c), SLUICE_EINVAL);

	c = cfg(SLUICE_RING_MPMC, 16, 4);
	int64_t need = sluice_ring_mem_size(&c);
	CHECK_RC(sluice_ring_format(mem, (uint64_t)need - 1, &c), SLUICE_ENOSPC);
	CHECK_RC(sluice_ring_format(mem + 8, (uint64_t)need, &c), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_format(NULL, (uint64_t)need, &c), SLUICE_EINVAL);
}

static void test_open_refusals(void)
{
	sluice_ring_t r;
	sluice_ring_config_t c = cfg(SLUICE_RING_MPMC, 16, 4);
	uint64_t need = (uint64_t)sluice_ring_mem_size(&c);
	struct sluice_ring_hdr *h = (void *)mem;
	struct sluice_ring_lane *lane1 = (void *)(mem + h->lane_off + 0);

#define REFORMAT() CHECK_OK(sluice_ring_format(mem, need, &c))
	REFORMAT();
	CHECK_OK(sluice_ring_open(&r, mem, need));
	CHECK(sluice_ring_lanes(&r) == 4 && sluice_ring_kind(&r) == SLUICE_RING_MPMC);
	CHECK_RC(sluice_ring_open(&r, mem, need - 1), SLUICE_ETRUNCATED);
	CHECK_RC(sluice_ring_open(&r, mem, 100), SLUICE_ETRUNCATED);
	CHECK_RC(sluice_ring_open(&r, mem + 64, need), SLUICE_EBADMAGIC);
	CHECK_RC(sluice_ring_open(&r, mem + 1, need), SLUICE_EINVAL);

	h->magic ^= 1;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_EBADMAGIC);
	REFORMAT();
	h->layout_version = 2;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_EVERSION);
	REFORMAT();
	h->capacity = 12; /* not a power of two */
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->capacity = 32; /* a power of two, but the stride says 16 */
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->kind = 0;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->nlanes = 0;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->nlanes = 100000;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	/* More lanes than the memory holds, told consistently: the header's
	 * own arithmetic agrees, the memory does not. */
	h->nlanes = 64;
	h->total_size = h->lane_off + 64 * h->lane_stride;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ETRUNCATED);
	REFORMAT();
	h->total_size += 64; /* disagrees with lanes * stride */
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->header_size = 64;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	h->wait = 77;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	/* A lane whose ck mask was scribbled on: ck reads it on every call. */
	lane1 = (void *)(mem + h->lane_off + 2 * h->lane_stride);
	lane1->ring.mask = 1023;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);
	REFORMAT();
	lane1->ring.size = 8;
	CHECK_RC(sluice_ring_open(&r, mem, need), SLUICE_ECORRUPT);

	/* SPSC with two lanes */
	c = cfg(SLUICE_RING_SPSC, 16, 1);
	need = (uint64_t)sluice_ring_mem_size(&c);
	REFORMAT();
	h->nlanes = 2;
	CHECK_RC(sluice_ring_open(&r, mem, 1 << 16), SLUICE_ECORRUPT);
#undef REFORMAT
}

static void test_spsc_order(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t d, buf[64], in[64];
	make(&r, SLUICE_RING_SPSC, 8, 1);
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 42));
	CHECK(sluice_ring_lane_capacity(&r) == 7);

	/* Empty: try forms return 0, not an error. */
	CHECK_RC(sluice_ring_try_dequeue_spsc(&r, &d), 0);
	CHECK_RC(sluice_ring_try_dequeue_bulk_spsc(&r, buf, 5), 0);

	uint64_t next_in = 0, next_out = 0;
	/* Enough rounds of mixed single and bulk calls to wrap the 32-bit
	 * positions of a small ring many times over. */
	for (int round = 0; round < 2000; round++) {
		unsigned n = 1 + (unsigned)(round % 9);
		for (unsigned i = 0; i < n; i++)
			in[i] = mkdesc(next_in + i);
		int k;
		if (round % 3 == 0) {
			k = 0;
			for (unsigned i = 0; i < n; i++) {
				int one = sluice_ring_try_enqueue_spsc(&p, &in[i]);
				CHECK(one == 0 || one == 1);
				if (one == 0)
					break;
				k++;
			}
		} else {
			k = sluice_ring_try_enqueue_bulk_spsc(&p, in, n);
		}
		CHECK(k >= 0 && (unsigned)k <= n);
		next_in += (uint64_t)k;
		CHECK(sluice_ring_count(&r) == next_in - next_out);
		unsigned m = 1 + (unsigned)((round * 7) % 8);
		if (round % 4 == 1) {
			for (unsigned i = 0; i < m; i++) {
				int one = sluice_ring_try_dequeue_spsc(&r, &d);
				if (one == 0)
					break;
				CHECK(one == 1);
				check_desc(&d, next_out++);
			}
		} else {
			int got = sluice_ring_try_dequeue_bulk_spsc(&r, buf, m);
			CHECK(got >= 0 && (unsigned)got <= m);
			for (int i = 0; i < got; i++)
				check_desc(&buf[i], next_out++);
		}
	}
	/* Full is capacity - 1: 7 fit in 8 slots, the 8th is refused. */
	while (sluice_ring_try_dequeue_spsc(&r, &d) == 1)
		check_desc(&d, next_out++);
	CHECK(next_out == next_in);
	for (unsigned i = 0; i < 7; i++) {
		d = mkdesc(next_in++);
		CHECK_RC(sluice_ring_try_enqueue_spsc(&p, &d), 1);
	}
	d = mkdesc(next_in);
	CHECK_RC(sluice_ring_try_enqueue_spsc(&p, &d), 0);
	CHECK_RC(sluice_ring_try_enqueue_bulk_spsc(&p, &d, 1), 0);
	CHECK(sluice_ring_count(&r) == 7);
	/* A bulk of 10 into an empty lane of 8 slots: 7 go in. */
	CHECK_RC(sluice_ring_try_dequeue_bulk_spsc(&r, buf, 64), 7);
	for (unsigned i = 0; i < 10; i++)
		in[i] = mkdesc(next_in + i);
	CHECK_RC(sluice_ring_try_enqueue_bulk_spsc(&p, in, 10), 7);
	CHECK_RC(sluice_ring_try_dequeue_bulk_spsc(&r, buf, 64), 7);
	for (unsigned i = 0; i < 7; i++)
		check_desc(&buf[i], next_in + i);

	/* Zero-length calls move nothing. */
	CHECK_RC(sluice_ring_try_enqueue_bulk_spsc(&p, in, 0), 0);
	CHECK_RC(sluice_ring_try_dequeue_bulk_spsc(&r, buf, 0), 0);
	/* The wrong kind's calls are refused. */
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&p, in), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, buf), SLUICE_EINVAL);
	CHECK_RC(sluice_ring_dequeue_bulk_mpmc(&r, buf, 3, 0), SLUICE_EINVAL);
	CHECK_OK(sluice_ring_producer_release(&p));
	/* A released handle is refused too. */
	CHECK_RC(sluice_ring_try_enqueue_spsc(&p, in), SLUICE_EINVAL);
}

static void test_mpmc_order(void)
{
	enum { LANES = 3, CAP = 16 };
	sluice_ring_t r;
	sluice_ring_producer_t p[LANES];
	sluice_desc_t buf[64], in[64];
	make(&r, SLUICE_RING_MPMC, CAP, LANES);
	for (unsigned i = 0; i < LANES; i++)
		CHECK_OK(sluice_ring_producer_claim(&p[i], &r, 100 + i));

	/* Producer i sends ids i, i + LANES, ...: each lane's ids rise. */
	uint64_t sent[LANES] = {0}, last[LANES], total_in = 0, total_out = 0;
	for (unsigned i = 0; i < LANES; i++)
		last[i] = UINT64_MAX;
	for (int round = 0; round < 3000; round++) {
		unsigned who = (unsigned)round % LANES;
		unsigned n = 1 + (unsigned)(round % 7);
		for (unsigned j = 0; j < n; j++)
			in[j] = mkdesc((sent[who] + j) * LANES + who);
		int k = n == 1 ? sluice_ring_try_enqueue_mpmc(&p[who], in)
			       : sluice_ring_try_enqueue_bulk_mpmc(&p[who], in, n);
		CHECK(k >= 0 && (unsigned)k <= n);
		sent[who] += (uint64_t)k;
		total_in += (uint64_t)k;
		unsigned m = 1 + (unsigned)((round * 5) % 11);
		int got = m == 1 ? sluice_ring_try_dequeue_mpmc(&r, buf)
				 : sluice_ring_try_dequeue_bulk_mpmc(&r, buf, m);
		CHECK(got >= 0 && (unsigned)got <= m);
		for (int j = 0; j < got; j++) {
			uint64_t id = buf[j].task_id;
			unsigned lane = (unsigned)(id % LANES);
			check_desc(&buf[j], id);
			CHECK(last[lane] == UINT64_MAX ? id == lane : id == last[lane] + LANES);
			last[lane] = id;
		}
		total_out += (uint64_t)got;
		CHECK(sluice_ring_count(&r) == total_in - total_out);
	}
	/* Full: each lane holds CAP - 1, the ring LANES * (CAP - 1). */
	for (unsigned who = 0; who < LANES; who++) {
		for (;;) {
			in[0] = mkdesc(sent[who] * LANES + who);
			int k = sluice_ring_try_enqueue_mpmc(&p[who], in);
			if (k == 0)
				break;
			CHECK(k == 1);
			sent[who]++;
			total_in++;
		}
	}
	CHECK(sluice_ring_count(&r) == LANES * (CAP - 1));
	/* A bulk dequeue drains across lanes, one CAS per lane. */
	for (;;) {
		int got = sluice_ring_try_dequeue_bulk_mpmc(&r, buf, 64);
		CHECK(got >= 0);
		if (got == 0)
			break;
		for (int j = 0; j < got; j++) {
			uint64_t id = buf[j].task_id;
			unsigned lane = (unsigned)(id % LANES);
			CHECK(last[lane] == UINT64_MAX ? id == lane : id == last[lane] + LANES);
			last[lane] = id;
		}
		total_out += (uint64_t)got;
	}
	CHECK(total_out == total_in);
	for (unsigned who = 0; who < LANES; who++)
		CHECK(last[who] == (sent[who] - 1) * LANES + who);

	/* Fairness: one descriptor in each lane; single dequeues rotate. */
	for (unsigned who = 0; who < LANES; who++) {
		in[0] = mkdesc(who);
		CHECK_RC(sluice_ring_try_enqueue_mpmc(&p[who], in), 1);
	}
	unsigned seen = 0;
	for (unsigned j = 0; j < LANES; j++) {
		CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, buf), 1);
		seen |= 1u << buf[0].task_id;
	}
	CHECK(seen == (1u << LANES) - 1);
	for (unsigned i = 0; i < LANES; i++)
		CHECK_OK(sluice_ring_producer_release(&p[i]));
}

static void test_lanes(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p[4], q;
	sluice_desc_t d, buf[8];
	make(&r, SLUICE_RING_MPMC, 8, 3);
	CHECK_RC(sluice_ring_producer_claim(&q, &r, SLUICE_RING_OWNER_NONE), SLUICE_EINVAL);
	CHECK_OK(sluice_ring_producer_claim(&p[0], &r, 10));
	CHECK_RC(sluice_ring_producer_claim(&q, &r, 10), SLUICE_EEXIST);
	CHECK_OK(sluice_ring_producer_claim(&p[1], &r, 11));
	CHECK_OK(sluice_ring_producer_claim(&p[2], &r, 12));
	CHECK_RC(sluice_ring_producer_claim(&p[3], &r, 13), SLUICE_EBUSY);
	CHECK(sluice_ring_lane_owner(&r, 0) == 10 && sluice_ring_lane_owner(&r, 2) == 12);
	CHECK(sluice_ring_lane_owner(&r, 3) == SLUICE_EINVAL);

	/* A voluntary release frees the lane for the next claimer. */
	CHECK_OK(sluice_ring_producer_release(&p[1]));
	CHECK(sluice_ring_lane_owner(&r, 1) == SLUICE_RING_OWNER_NONE);
	CHECK_OK(sluice_ring_producer_claim(&p[3], &r, 13));
	CHECK(sluice_ring_lane_owner(&r, 1) == 13);

	/* Owner 12 publishes 3 and "dies": the supervisor releases its lane.
	 * Its descriptors stay queued for consumers; the next producer
	 * continues in the same lane after them. */
	for (uint64_t i = 0; i < 3; i++) {
		d = mkdesc(1200 + i);
		CHECK_RC(sluice_ring_enqueue_mpmc(&p[2], &d, 0), 1);
	}
	CHECK(sluice_ring_lane_release(&r, 99) == 0);
	CHECK(sluice_ring_lane_release(&r, 12) == 1);
	CHECK(sluice_ring_lane_owner(&r, 2) == SLUICE_RING_OWNER_NONE);
	CHECK_RC(sluice_ring_producer_release(&p[2]), SLUICE_ENOTOWNER);
	CHECK_OK(sluice_ring_producer_claim(&q, &r, 14));
	CHECK(sluice_ring_lane_owner(&r, 2) == 14);
	for (uint64_t i = 0; i < 4; i++) {
		d = mkdesc(1400 + i);
		CHECK_RC(sluice_ring_enqueue_mpmc(&q, &d, 0), 1);
	}
	/* The lane held 3 + 4 = 7 = capacity - 1: full. */
	d = mkdesc(1499);
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&q, &d), 0);
	uint64_t want[] = {1200, 1201, 1202, 1400, 1401, 1402, 1403};
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, buf, 8), 7);
	for (int i = 0; i < 7; i++)
		check_desc(&buf[i], want[i]);
	CHECK_OK(sluice_ring_producer_release(&q));
	CHECK_OK(sluice_ring_producer_release(&p[0]));
	CHECK_OK(sluice_ring_producer_release(&p[3]));
}

static void check_timeout(uint64_t t0, uint64_t timeout_ns)
{
	uint64_t took = test_now_ns() - t0;
	/* Only a lower bound: a loaded machine may take much longer. */
	if (took + 1000000 < timeout_ns) {
		fprintf(stderr, "timed out after %" PRIu64 " ns, asked %" PRIu64 "\n", took,
			timeout_ns);
		exit(TEST_FAIL);
	}
}

static void test_timeouts(void)
{
	const uint64_t T = 20 * 1000 * 1000; /* 20 ms */
	static const unsigned waits[] = {SLUICE_RING_SPIN_SLEEP, SLUICE_RING_SLEEP,
					 SLUICE_RING_BUSY_POLL};
	sluice_desc_t d = mkdesc(1), buf[4];
	for (unsigned w = 0; w < 3; w++) {
		for (unsigned kind = SLUICE_RING_SPSC; kind <= SLUICE_RING_MPMC; kind++) {
			sluice_ring_t r;
			sluice_ring_producer_t p;
			make(&r, kind, 4, 1);
			CHECK_OK(sluice_ring_set_wait(&r, waits[w], 0));
			CHECK_OK(sluice_ring_producer_claim(&p, &r, 1));
			CHECK_OK(sluice_ring_producer_set_wait(&p, waits[w], 0));
			bool spsc = kind == SLUICE_RING_SPSC;

			/* Empty ring: the consumer waits out its timeout. */
			uint64_t t0 = test_now_ns();
			CHECK_RC(spsc ? sluice_ring_dequeue_spsc(&r, buf, T)
				      : sluice_ring_dequeue_mpmc(&r, buf, T),
				 SLUICE_ETIMEDOUT);
			check_timeout(t0, T);
			t0 = test_now_ns();
			CHECK_RC(spsc ? sluice_ring_dequeue_bulk_spsc(&r, buf, 4, T)
				      : sluice_ring_dequeue_bulk_mpmc(&r, buf, 4, T),
				 SLUICE_ETIMEDOUT);
			check_timeout(t0, T);
			/* A zero timeout is a try that says -ETIMEDOUT. */
			CHECK_RC(spsc ? sluice_ring_dequeue_spsc(&r, buf, 0)
				      : sluice_ring_dequeue_mpmc(&r, buf, 0),
				 SLUICE_ETIMEDOUT);

			/* Full ring (3 of 4 slots): the producer waits out its. */
			for (int i = 0; i < 3; i++)
				CHECK_RC(spsc ? sluice_ring_enqueue_spsc(&p, &d, T)
					      : sluice_ring_enqueue_mpmc(&p, &d, T),
					 1);
			t0 = test_now_ns();
			CHECK_RC(spsc ? sluice_ring_enqueue_spsc(&p, &d, T)
				      : sluice_ring_enqueue_mpmc(&p, &d, T),
				 SLUICE_ETIMEDOUT);
			check_timeout(t0, T);
			t0 = test_now_ns();
			CHECK_RC(spsc ? sluice_ring_enqueue_bulk_spsc(&p, buf, 2, T)
				      : sluice_ring_enqueue_bulk_mpmc(&p, buf, 2, T),
				 SLUICE_ETIMEDOUT);
			check_timeout(t0, T);
			/* Blocking forms return what they moved, at least one. */
			CHECK_RC(spsc ? sluice_ring_dequeue_bulk_spsc(&r, buf, 4, T)
				      : sluice_ring_dequeue_bulk_mpmc(&r, buf, 4, T),
				 3);
			sluice_ring_stats_t st;
			sluice_ring_stats(&r, &st);
			CHECK(st.timeouts == 3);
			if (waits[w] == SLUICE_RING_SLEEP)
				CHECK(st.futex_waits >= 2);
			if (waits[w] == SLUICE_RING_BUSY_POLL)
				CHECK(st.futex_waits == 0 && st.yields > 0);
			sluice_ring_producer_stats(&p, &st);
			CHECK(st.timeouts == 2);
			CHECK_OK(sluice_ring_producer_release(&p));
		}
	}
	sluice_ring_t r;
	make(&r, SLUICE_RING_SPSC, 4, 1);
	CHECK_RC(sluice_ring_set_wait(&r, 17, 0), SLUICE_EINVAL);
}

/* The hook runs after the slots are written and before they are published:
 * a consumer sees nothing of the call yet. */
static sluice_ring_t *hook_ring;
static unsigned hook_calls, hook_last_n;

static void hook(const sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n)
{
	sluice_desc_t out;
	hook_calls++;
	hook_last_n = n;
	CHECK(d != NULL && n >= 1);
	CHECK(sluice_ring_count(hook_ring) == 0);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(hook_ring, &out), 0);
	/* The slot already holds the descriptor. */
	const struct sluice_ring_lane *l = p->lane_;
	const sluice_desc_t *slots = (const sluice_desc_t *)(l + 1);
	CHECK(memcmp(&slots[l->ring.p_tail & p->mask_], d, sizeof(*d)) == 0);
}

static void test_hook(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t in[4] = {mkdesc(1), mkdesc(2), mkdesc(3), mkdesc(4)}, buf[4];
	make(&r, SLUICE_RING_MPMC, 8, 1);
	hook_ring = &r;
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 5));
	sluice__ring_set_test_hook(hook);
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&p, &in[0]), 1);
	CHECK(hook_calls == 1 && hook_last_n == 1);
	CHECK_RC(sluice_ring_try_dequeue_mpmc(&r, buf), 1);
	CHECK_RC(sluice_ring_try_enqueue_bulk_mpmc(&p, in, 4), 4);
	CHECK(hook_calls == 2 && hook_last_n == 4);
	sluice__ring_set_test_hook(NULL);
	CHECK_RC(sluice_ring_try_dequeue_bulk_mpmc(&r, buf, 4), 4);
	for (int i = 0; i < 4; i++)
		check_desc(&buf[i], (uint64_t)i + 1);
	CHECK_RC(sluice_ring_try_enqueue_mpmc(&p, &in[0]), 1);
	CHECK(hook_calls == 2);
}

/* A blocking consumer in another process is woken by this one. */
static void test_cross_process_wake(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	/* MAP_SHARED so the child sees the same ring. */
	void *shared = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	sluice_ring_config_t c = cfg(SLUICE_RING_SPSC, 8, 1);
	c.wait = SLUICE_RING_SLEEP;
	CHECK_OK(sluice_ring_format(shared, 1 << 16, &c));
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sluice_ring_t cr;
		sluice_desc_t d;
		if (sluice_ring_open(&cr, shared, 1 << 16) != 0)
			_exit(2);
		for (uint64_t i = 0; i < 100; i++) {
			if (sluice_ring_dequeue_spsc(&cr, &d, SLUICE_RING_FOREVER) != 1)
				_exit(3);
			if (d.task_id != i)
				_exit(4);
		}
		sluice_ring_stats_t st;
		sluice_ring_stats(&cr, &st);
		_exit(st.futex_waits > 0 ? 0 : 5);
	}
	CHECK_OK(sluice_ring_open(&r, shared, 1 << 16));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 1));
	for (uint64_t i = 0; i < 100; i++) {
		sluice_desc_t d = mkdesc(i);
		if (i % 10 == 0)
			usleep(2000); /* let the consumer fall asleep */
		CHECK_RC(sluice_ring_enqueue_spsc(&p, &d, SLUICE_RING_FOREVER), 1);
	}
	CHECK(test_wait(pid) == 0);
	sluice_ring_stats_t st;
	sluice_ring_producer_stats(&p, &st);
	CHECK(st.futex_wakes > 0);
	munmap(shared, 1 << 16);
}

int main(void)
{
	test_layout();
	test_config_refusals();
	test_open_refusals();
	test_spsc_order();
	test_mpmc_order();
	test_lanes();
	test_timeouts();
	test_hook();
	test_cross_process_wake();
	printf("PASS test_ring\n");
	return TEST_PASS;
}
