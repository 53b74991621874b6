/* libFuzzer target: the input, after FUZZ_OPS_LEN bytes of operations, is
 * the memory of a descriptor ring, copied into a heap buffer of exactly its
 * length (64-byte aligned) so that ASan reports any access past it.
 *
 * sluice_ring_open must refuse or accept without crashing; on success a
 * script of claims, try and zero-timeout enqueues and dequeues (single and
 * bulk, the right kind and the wrong one), lane releases, owner queries,
 * counts and wake-ups never crashes, never touches memory outside the
 * ring, never moves more than asked, and returns only sluice codes (the
 * counters, owner words and eventcounts are the fuzzer's).
 *
 * With SLUICE_FUZZ_SCRIBBLE=1 in the environment the input carries, after
 * the operations, 8 bytes of a post-open patch (a 32-bit offset into the
 * ring and a 32-bit value written there after open succeeded, before the
 * operations): another process scribbling on the ring after it was
 * validated. Off by default: the committed seeds are in the plain format,
 * and see docs/FUZZING.md for what this mode finds today. */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <sluice/blocks.h>
#include <sluice/ring.h>

#define MAX_BULK 32u

struct state {
	sluice_ring_t r;
	sluice_ring_producer_t p;
	bool have_p;
	uint64_t mem_size;
	sluice_desc_t buf[MAX_BULK];
};

static bool is_spsc(const struct state *s)
{
	return sluice_ring_kind(&s->r) == SLUICE_RING_SPSC;
}

static void fill(sluice_desc_t *d, unsigned n, uint32_t tag)
{
	for (unsigned i = 0; i < n; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].task_id = ((uint64_t)tag << 32) | i;
		d[i].payload_block = SLUICE_BLOCK_NONE;
		d[i].result_block = SLUICE_BLOCK_NONE;
	}
}

/* A dequeue took k of n: a count in range or a sluice code. */
static void check_moved(int k, unsigned n)
{
	FUZZ_CHECK_RC(k);
	FUZZ_CHECK(k <= (int)n);
}

static void run_op(struct state *s, uint8_t op)
{
	uint32_t arg = op >> 3;
	unsigned n = arg + 1; /* 1 .. 32 */
	uint32_t owner = 1 + (arg & 3);
	bool spsc = is_spsc(s);
	int k;
	switch (op & 7) {
	case 0: /* one descriptor off the ring */
		k = spsc ? sluice_ring_try_dequeue_spsc(&s->r, s->buf)
			 : sluice_ring_try_dequeue_mpmc(&s->r, s->buf);
		check_moved(k, 1);
		break;
	case 1: /* a bulk dequeue */
		k = spsc ? sluice_ring_try_dequeue_bulk_spsc(&s->r, s->buf, n)
			 : sluice_ring_try_dequeue_bulk_mpmc(&s->r, s->buf, n);
		check_moved(k, n);
		break;
	case 2: /* claim a lane */
		if (s->have_p)
			break;
		k = sluice_ring_producer_claim(&s->p, &s->r, owner);
		FUZZ_CHECK_RC(k);
		FUZZ_CHECK(k == 0 || k == SLUICE_EBUSY || k == SLUICE_EEXIST);
		s->have_p = k == 0;
		if (k == 0)
			FUZZ_CHECK(sluice_ring_lane_owner(&s->r, s->p.lane_index_) == owner);
		break;
	case 3: /* one descriptor on */
		if (!s->have_p)
			break;
		fill(s->buf, 1, arg);
		k = spsc ? sluice_ring_try_enqueue_spsc(&s->p, s->buf)
			 : sluice_ring_try_enqueue_mpmc(&s->p, s->buf);
		check_moved(k, 1);
		break;
	case 4: /* a bulk enqueue */
		if (!s->have_p)
			break;
		fill(s->buf, n, arg);
		k = spsc ? sluice_ring_try_enqueue_bulk_spsc(&s->p, s->buf, n)
			 : sluice_ring_try_enqueue_bulk_mpmc(&s->p, s->buf, n);
		check_moved(k, n);
		break;
	case 5: /* give the lane back, or free a dead producer's */
		if (s->have_p) {
			FUZZ_CHECK(sluice_ring_producer_release(&s->p) == 0);
			s->have_p = false;
		} else {
			k = sluice_ring_lane_release(&s->r, owner);
			FUZZ_CHECK_RC(k);
			FUZZ_CHECK(k <= (int)sluice_ring_lanes(&s->r));
		}
		break;
	case 6: { /* queries, wake-ups, wait modes */
		int64_t o = sluice_ring_lane_owner(&s->r, arg);
		FUZZ_CHECK_RC(o);
		FUZZ_CHECK((o >= 0) == (arg < sluice_ring_lanes(&s->r)));
		FUZZ_CHECK(sluice_ring_count(&s->r) <=
			   (uint64_t)sluice_ring_lanes(&s->r) * sluice_ring_lane_capacity(&s->r));
		sluice_ring_wake_all(&s->r);
		k = sluice_ring_set_wait(&s->r, arg % 5, arg);
		FUZZ_CHECK(k == (arg % 5 <= SLUICE_RING_BUSY_POLL ? 0 : SLUICE_EINVAL));
		break;
	}
	case 7: /* blocking forms that may not block, and the wrong kind */
		k = spsc ? sluice_ring_dequeue_bulk_spsc(&s->r, s->buf, n, 0)
			 : sluice_ring_dequeue_bulk_mpmc(&s->r, s->buf, n, 0);
		check_moved(k, n);
		FUZZ_CHECK(k != 0);
		k = spsc ? sluice_ring_try_dequeue_mpmc(&s->r, s->buf)
			 : sluice_ring_try_dequeue_spsc(&s->r, s->buf);
		FUZZ_CHECK(k == SLUICE_EINVAL);
		if (s->have_p) {
			fill(s->buf, n, arg);
			k = spsc ? sluice_ring_enqueue_bulk_spsc(&s->p, s->buf, n, 0)
				 : sluice_ring_enqueue_bulk_mpmc(&s->p, s->buf, n, 0);
			check_moved(k, n);
			FUZZ_CHECK(k != 0);
			k = spsc ? sluice_ring_try_enqueue_mpmc(&s->p, s->buf)
				 : sluice_ring_try_enqueue_spsc(&s->p, s->buf);
			FUZZ_CHECK(k == SLUICE_EINVAL);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int scribble = -1; /* SLUICE_FUZZ_SCRIBBLE, read once */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (scribble < 0) {
		const char *e = getenv("SLUICE_FUZZ_SCRIBBLE");
		scribble = e != NULL && *e != '\0' && *e != '0';
	}
	uint32_t patch[2] = {0, 0};
	size_t head = FUZZ_OPS_LEN + (scribble ? sizeof(patch) : 0);
	if (size < head)
		return 0;
	const uint8_t *ops = data;
	if (scribble)
		memcpy(patch, data + FUZZ_OPS_LEN, sizeof(patch));
	data += head;
	size -= head;
	void *mem = NULL;
	FUZZ_CHECK(posix_memalign(&mem, 64, size ? size : 1) == 0);
	memcpy(mem, data, size);

	static struct state s;
	memset(&s, 0, sizeof(s));
	int rc = sluice_ring_open(&s.r, mem, size);
	FUZZ_CHECK_RC(rc);
	if (rc == 0) {
		FUZZ_CHECK(s.r.mem_size_ <= size);
		FUZZ_CHECK(sluice_ring_lanes(&s.r) >= 1 &&
			   sluice_ring_lanes(&s.r) <= SLUICE_RING_MAX_LANES);
		FUZZ_CHECK(is_spsc(&s) ? sluice_ring_lanes(&s.r) == 1
				       : sluice_ring_kind(&s.r) == SLUICE_RING_MPMC);
		if (scribble && size >= 4) {
			/* Another process writes a word after open validated. */
			size_t off = (patch[0] % (size - 3)) & ~(size_t)3;
			memcpy((char *)mem + off, &patch[1], sizeof(patch[1]));
		}
		for (uint32_t i = 0; i < FUZZ_OPS_LEN; i++)
			run_op(&s, ops[i]);
		if (s.have_p)
			FUZZ_CHECK_RC(sluice_ring_producer_release(&s.p));
	}
	free(mem);
	return 0;
}
