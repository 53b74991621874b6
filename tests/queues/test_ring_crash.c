/* Chaos: a producer SIGKILLed inside the reserve -> publish window of an
 * MPMC ring (issue item 4).
 *
 * Two producers (P0, P1) and two consumers run as processes over one MPMC
 * ring of two lanes in a memfd arena. The test hook parks P0 after it wrote
 * descriptor X into its slot and before it published it; P0 tells the
 * parent through shared memory and the parent SIGKILLs it. P1 keeps
 * enqueuing and the consumers keep dequeuing. The test
 *   - prints how long deliveries stalled around the park and the kill (the
 *     longest gap between two deliveries, in microseconds);
 *   - asserts every descriptor P1 published is delivered exactly once,
 *     every one P0 published before X too, and that X (written, never
 *     published) is never delivered;
 *   - checks that no lane is free while P0's is held by the dead P0, then
 *     releases it with sluice_ring_lane_release; a new producer P2 claims
 *     that very lane, overwrites the half-written slot, and all of its
 *     descriptors get through.
 * For contrast it then shows (printed, not asserted) a raw ck_ring MPMC
 * whose producer dies between reserve and commit: the next producer spins
 * for good.
 *
 * usage: test_ring_crash [P1_MAX] (descriptors P1 may send at most) */
#define _GNU_SOURCE
#include "common/test.h"

#include <sched.h>
#include <sys/mman.h>

#include <ck_ring.h>
#include <sluice/arena.h>
#include <sluice/ring.h>
#include "base/atomic.h"
#include "queues/ring_hooks.h"
#include "queues/ring_layout.h"

#define REGION_RING 1
#define REGION_CTL 2
#define REGION_RAW 3

#define P0_BASE 0ull
#define X_ID 5000ull            /* P0 parks on this one */
#define P2_BASE 100000ull
#define P2_COUNT 20000ull
#define P1_BASE 200000ull
#define MAX_IDS (P1_BASE + 2000000ull)
#define STOP_ID UINT64_MAX
#define OWNER_P0 1u
#define OWNER_P1 2u
#define OWNER_P2 3u
#define OWNER_PARENT 4u

struct ctl {
	_Atomic uint32_t parked;  /* P0: in the window, X written */
	_Atomic uint32_t p1_stop; /* parent -> P1 */
	_Atomic uint32_t raw_a_parked;
	_Atomic uint32_t raw_b_done;
	_Atomic uint64_t park_ns;
	_Atomic uint64_t p1_sent;
	_Atomic uint64_t delivered;
	_Atomic uint64_t dups;
	_Atomic uint64_t bad;
	_Atomic uint64_t x_seen;
	_Atomic uint64_t bitmap[MAX_IDS / 64];
	_Atomic uint64_t deliver_ns[MAX_IDS]; /* when each id was taken */
};

struct raw {
	struct ck_ring ring;
	sluice_desc_t slots[64] __attribute__((aligned(64)));
};

CK_RING_PROTOTYPE(sluice_desc, sluice_desc)

static struct ctl *C;
static void *ring_mem;
static uint64_t ring_size;
static uint64_t p1_max;

static void fill(sluice_desc_t *d, uint64_t id)
{
	memset(d, 0, sizeof(*d));
	d->task_id = id;
	d->user = ~id * 0x9e3779b97f4a7c15ull;
	d->slot = (uint32_t)id;
}

/* P0's hook: park in the window with X written but not published. */
static void park_hook(const sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (d[i].task_id != X_ID)
			continue;
		sl_store_relaxed(&C->park_ns, test_now_ns());
		/* Release: the slot write and park_ns before the parent sees
		 * the flag. */
		sl_store_release(&C->parked, 1);
		for (;;)
			pause();
	}
}

static void producer_p0(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t d;
	sluice__ring_set_test_hook(park_hook);
	CHECK_OK(sluice_ring_open(&r, ring_mem, ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, OWNER_P0));
	for (uint64_t id = P0_BASE;; id++) {
		fill(&d, id);
		CHECK(sluice_ring_enqueue_mpmc(&p, &d, SLUICE_RING_FOREVER) == 1);
		if (id % 16 == 0)
			usleep(100); /* keep P1 company for a while before X */
	}
}

static void producer_p1(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t buf[16];
	CHECK_OK(sluice_ring_open(&r, ring_mem, ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, OWNER_P1));
	uint64_t id = P1_BASE, end = P1_BASE + p1_max;
	/* Steady bursts until told to stop, so deliveries go on across the
	 * park and the kill. */
	while (id < end && !sl_load_acquire(&C->p1_stop)) {
		unsigned n = id % 3 == 0 ? 1 : 16;
		if (n > end - id)
			n = (unsigned)(end - id);
		for (unsigned i = 0; i < n; i++)
			fill(&buf[i], id + i);
		int k = n == 1 ? sluice_ring_enqueue_mpmc(&p, buf, SLUICE_RING_FOREVER)
			       : sluice_ring_enqueue_bulk_mpmc(&p, buf, n, SLUICE_RING_FOREVER);
		CHECK(k >= 1 && (unsigned)k <= n);
		id += (uint64_t)k;
		sl_store_release(&C->p1_sent, id - P1_BASE);
		uint64_t until = test_now_ns() + 20000;
		while (test_now_ns() < until)
			sched_yield();
	}
	CHECK_OK(sluice_ring_producer_release(&p));
}

static void producer_p2(void)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t d;
	CHECK_OK(sluice_ring_open(&r, ring_mem, ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, OWNER_P2));
	for (uint64_t id = P2_BASE; id < P2_BASE + P2_COUNT; id++) {
		fill(&d, id);
		CHECK(sluice_ring_enqueue_mpmc(&p, &d, SLUICE_RING_FOREVER) == 1);
	}
	CHECK_OK(sluice_ring_producer_release(&p));
}

static void consumer(unsigned idx)
{
	sluice_ring_t r;
	sluice_desc_t buf[32];
	CHECK_OK(sluice_ring_open(&r, ring_mem, ring_size));
	for (;;) {
		int k = idx == 0 ? sluice_ring_dequeue_mpmc(&r, buf, SLUICE_RING_FOREVER)
				 : sluice_ring_dequeue_bulk_mpmc(&r, buf, 32, SLUICE_RING_FOREVER);
		CHECK(k >= 1);
		uint64_t now = test_now_ns();
		for (int i = 0; i < k; i++) {
			uint64_t id = buf[i].task_id;
			if (id == STOP_ID)
				return;
			if (id >= MAX_IDS || buf[i].user != ~id * 0x9e3779b97f4a7c15ull) {
				sl_fetch_add_relaxed(&C->bad, 1);
				continue;
			}
			if (id == X_ID)
				sl_fetch_add_relaxed(&C->x_seen, 1);
			uint64_t bit = 1ull << (id % 64);
			if (atomic_fetch_or_explicit(&C->bitmap[id / 64], bit, memory_order_relaxed) & bit)
				sl_fetch_add_relaxed(&C->dups, 1);
			sl_store_relaxed(&C->deliver_ns[id], now);
			sl_fetch_add_relaxed(&C->delivered, 1);
		}
	}
}

static bool delivered(uint64_t id)
{
	return sl_load_relaxed(&C->bitmap[id / 64]) & (1ull << (id % 64));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static pid_t spawn(void (*fn)(void))
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	return pid;
}

static pid_t spawn_consumer(unsigned idx)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		consumer(idx);
		_exit(0);
	}
	return pid;
}

/* Raw ck_ring MPMC, for contrast: producer A dies between reserve and
 * commit; producer B's enqueue then waits for A's commit for good. */
static void raw_ck_demo(struct raw *raw)
{
	ck_ring_init(&raw->ring, 64);
	pid_t a = fork();
	CHECK(a >= 0);
	if (a == 0) {
		unsigned int ticket;
		sluice_desc_t *slot = ck_ring_enqueue_reserve_mpmc_sluice_desc(&raw->ring, raw->slots,
									       &ticket);
		if (slot == NULL)
			_exit(2);
		fill(slot, 1);
		sl_store_release(&C->raw_a_parked, 1);
		for (;;)
			pause();
	}
	while (!sl_load_acquire(&C->raw_a_parked))
		usleep(100);
	kill(a, SIGKILL);
	CHECK(test_wait(a) == 128 + SIGKILL);
	pid_t b = fork();
	CHECK(b >= 0);
	if (b == 0) {
		sluice_desc_t d;
		fill(&d, 2);
		ck_ring_enqueue_mpmc_sluice_desc(&raw->ring, raw->slots, &d);
		sl_store_release(&C->raw_b_done, 1);
		_exit(0);
	}
	usleep(200000);
	bool stuck = !sl_load_acquire(&C->raw_b_done);
	printf("contrast: raw ck_ring MPMC, producer killed between reserve and commit: "
	       "the next producer is %s 200 ms later (p_head %u, p_tail %u)\n",
	       stuck ? "still spinning" : "done", ck_pr_load_uint(&raw->ring.p_head),
	       ck_pr_load_uint(&raw->ring.p_tail));
	kill(b, SIGKILL);
	test_wait(b);
}

int main(int argc, char **argv)
{
	p1_max = test_arg_u64(argc, argv, 1, 1000000);
	CHECK(p1_max <= MAX_IDS - P1_BASE);

	sluice_ring_config_t rc = {.size_of = sizeof(rc), .kind = SLUICE_RING_MPMC,
				   .capacity = 256, .lanes = 2};
	int64_t rsz = sluice_ring_mem_size(&rc);
	CHECK(rsz > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "ring-crash", .nregions = 3};
	o.regions[0] = (sluice_region_req_t){.id = REGION_RING, .size = (uint64_t)rsz};
	o.regions[1] = (sluice_region_req_t){.id = REGION_CTL, .size = sizeof(struct ctl)};
	o.regions[2] = (sluice_region_req_t){.id = REGION_RAW, .size = sizeof(struct raw)};
	sluice_arena_t *arena;
	CHECK_OK(sluice_arena_create(&o, &arena));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(arena, REGION_RING, &off, &size));
	ring_mem = sluice_arena_at(arena, off, size, 64);
	ring_size = size;
	CHECK_OK(sluice_arena_region(arena, REGION_CTL, &off, &size));
	C = sluice_arena_at(arena, off, size, 64);
	CHECK_OK(sluice_arena_region(arena, REGION_RAW, &off, &size));
	struct raw *raw = sluice_arena_at(arena, off, size, 64);
	CHECK(ring_mem && C && raw);
	CHECK_OK(sluice_ring_format(ring_mem, ring_size, &rc));
	sluice_ring_t r;
	CHECK_OK(sluice_ring_open(&r, ring_mem, ring_size));

	pid_t c0 = spawn_consumer(0), c1 = spawn_consumer(1);
	/* P0 takes lane 0, then P1 lane 1. */
	pid_t p0 = spawn(producer_p0);
	while (sluice_ring_lane_owner(&r, 0) != OWNER_P0)
		usleep(100);
	pid_t p1 = spawn(producer_p1);

	/* Wait for P0 to park with X written, unpublished. */
	uint64_t t_wait = test_now_ns();
	while (!sl_load_acquire(&C->parked)) {
		CHECK(test_now_ns() - t_wait < 60ull * 1000000000u);
		usleep(200);
	}
	CHECK(sluice_ring_lane_owner(&r, 0) == OWNER_P0);
	CHECK(sluice_ring_lane_owner(&r, 1) == OWNER_P1);
	const struct sluice_ring_lane *lane0 = (const void *)((char *)ring_mem + sizeof(struct sluice_ring_hdr));
	unsigned int p0_tail = ck_pr_load_uint(&lane0->ring.p_tail);
	const sluice_desc_t *slots0 = (const sluice_desc_t *)(lane0 + 1);
	CHECK(slots0[p0_tail & 255].task_id == X_ID); /* written ... */
	CHECK(p0_tail == X_ID - P0_BASE);             /* ... not published */
	usleep(20000); /* P0 sits in the window; P1 and the consumers go on */
	uint64_t t_kill = test_now_ns();
	kill(p0, SIGKILL);
	CHECK(test_wait(p0) == 128 + SIGKILL);
	usleep(50000);
	uint64_t t_after = test_now_ns();

	/* The dead P0 still holds lane 0: nobody can take it yet. */
	sluice_ring_producer_t q;
	CHECK_RC(sluice_ring_producer_claim(&q, &r, OWNER_PARENT), SLUICE_EBUSY);
	CHECK(sluice_ring_lane_release(&r, OWNER_P0) == 1);
	pid_t p2 = spawn(producer_p2);
	CHECK(test_wait(p2) == 0);
	/* P2 had to take P0's old lane (P1 holds the other) and overwrote the
	 * half-written slot. */
	CHECK(ck_pr_load_uint(&lane0->ring.p_tail) == p0_tail + P2_COUNT);

	sl_store_release(&C->p1_stop, 1);
	CHECK(test_wait(p1) == 0);

	/* Every producer is done; let the consumers empty the ring before
	 * the stop descriptors go in, so that a batch holding a stop holds
	 * nothing else (a consumer returns at its first stop). */
	uint64_t t_drain = test_now_ns();
	while (sluice_ring_count(&r) != 0) {
		CHECK(test_now_ns() - t_drain < 60ull * 1000000000u);
		usleep(1000);
	}
	/* Stop the consumers: one stop descriptor each, more if a bulk
	 * dequeue took two. */
	CHECK_OK(sluice_ring_producer_claim(&q, &r, OWNER_PARENT));
	sluice_desc_t stop;
	fill(&stop, STOP_ID);
	pid_t cons[2] = {c0, c1};
	for (int left = 2; left > 0;) {
		int k = sluice_ring_enqueue_mpmc(&q, &stop, 10000000);
		CHECK(k == 1 || k == SLUICE_ETIMEDOUT);
		usleep(1000);
		for (int i = 0; i < 2; i++) {
			int st;
			if (cons[i] == 0)
				continue;
			pid_t w = waitpid(cons[i], &st, WNOHANG);
			CHECK(w >= 0);
			if (w == 0)
				continue;
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			cons[i] = 0;
			left--;
		}
	}
	CHECK_OK(sluice_ring_producer_release(&q));

	/* Exactly once, nothing lost, X never. */
	uint64_t p1_sent = sl_load_acquire(&C->p1_sent);
	CHECK(sl_load_relaxed(&C->dups) == 0);
	CHECK(sl_load_relaxed(&C->bad) == 0);
	CHECK(sl_load_relaxed(&C->x_seen) == 0);
	CHECK(!delivered(X_ID));
	for (uint64_t id = P0_BASE; id < X_ID; id++)
		CHECK(delivered(id));
	for (uint64_t id = X_ID + 1; id < P2_BASE; id++)
		CHECK(!delivered(id));
	for (uint64_t id = P2_BASE; id < P2_BASE + P2_COUNT; id++)
		CHECK(delivered(id));
	for (uint64_t id = P1_BASE; id < P1_BASE + p1_sent; id++)
		CHECK(delivered(id));
	CHECK(sl_load_relaxed(&C->delivered) == X_ID + P2_COUNT + p1_sent);

	/* The stall: the longest gap between two deliveries from the park to
	 * 50 ms after the kill, next to the longest gap before the park (the
	 * scheduling noise of five processes on this machine's cores). */
	uint64_t park_ns = sl_load_relaxed(&C->park_ns);
	uint64_t *ts = malloc(sizeof(uint64_t) * (p1_sent + X_ID + 2));
	CHECK(ts != NULL);
	size_t nts = 0;
	for (uint64_t id = P0_BASE; id < X_ID; id++)
		ts[nts++] = sl_load_relaxed(&C->deliver_ns[id]);
	for (uint64_t id = P1_BASE; id < P1_BASE + p1_sent; id++) {
		uint64_t t = sl_load_relaxed(&C->deliver_ns[id]);
		if (t <= t_after)
			ts[nts++] = t;
	}
	qsort(ts, nts, sizeof(*ts), cmp_u64);
	uint64_t gap_before = 0, gap = 0, gap_at = 0;
	size_t n_after = 0;
	for (size_t i = 1; i < nts; i++) {
		uint64_t g = ts[i] - ts[i - 1];
		if (ts[i] <= park_ns) {
			if (g > gap_before)
				gap_before = g;
			continue;
		}
		n_after++;
		if (g > gap) {
			gap = g;
			gap_at = ts[i - 1];
		}
	}
	CHECK(n_after >= 2);
	printf("P0 parked in the window with X=%llu written (after %.1f ms of deliveries); killed "
	       "%.1f ms later. %zu deliveries from the park to 50 ms after the kill. P1 sent %" PRIu64
	       ", P2 (P0's lane, after lane_release) sent %llu: all delivered once; X never.\n",
	       (unsigned long long)X_ID, (double)(park_ns - ts[0]) / 1e6,
	       (double)(t_kill - park_ns) / 1e6, n_after, p1_sent, (unsigned long long)P2_COUNT);
	printf("ring stalled for at most %.1f us around the park and the kill (longest gap, at "
	       "%+.1f ms from the kill); longest gap before the park: %.1f us\n",
	       (double)gap / 1e3, ((double)gap_at - (double)t_kill) / 1e6, (double)gap_before / 1e3);
	free(ts);

	raw_ck_demo(raw);
	sluice_arena_destroy(arena);
	return TEST_PASS;
}
