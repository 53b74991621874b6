/* MPMC ring under load: producers and consumers (fork()ed processes, or
 * threads with "threads") over one ring in a memfd arena. Every descriptor
 * must arrive exactly once (a bitmap in the arena, set with fetch_or: a bit
 * already set is a duplicate) and intact (a checksum of its other fields in
 * `user`), and a word of plain memory the producer stored before enqueuing
 * it (a stand-in for a payload block) must be visible to the consumer that
 * took it. Producers and consumers mix single, bulk, try and blocking calls
 * and different wait modes, and producers pause now and then, so consumers
 * really fall asleep and are woken.
 *
 * usage: test_ring_stress PRODUCERS CONSUMERS TOTAL [procs|threads] [CAPACITY]
 * TOTAL is divided by SLUICE_TEST_SLOWDOWN. */
#define _GNU_SOURCE
#include "common/test.h"

#include <pthread.h>
#include <sched.h>

#include <sluice/arena.h>
#include <sluice/ring.h>
#include "base/atomic.h"

#define REGION_RING 1
#define REGION_CTL 2
#define DESC_F_STOP 1u
#define STOP_ID UINT64_MAX
#define PARENT_OWNER 0xffff0000u

struct ctl {
	_Atomic uint64_t delivered;
	_Atomic uint64_t dups;
	_Atomic uint64_t bad;
	_Atomic uint32_t consumers_done;
	_Atomic uint32_t _pad;
	_Atomic uint64_t cons_futex_waits;
	_Atomic uint64_t cons_timeouts;
	_Atomic uint64_t prod_futex_waits;
	_Atomic uint64_t prod_futex_wakes;
	_Atomic uint64_t cons_futex_wakes;
	_Atomic uint64_t bulk_calls;
	_Atomic uint64_t bitmap[]; /* one bit per descriptor id */
};

static struct {
	unsigned producers, consumers, capacity;
	uint64_t total;
	bool threads;
	sluice_arena_t *arena;
	void *ring_mem;
	uint64_t ring_size;
	struct ctl *ctl;
	uint64_t *payload; /* plain memory, one word per id: see take() */
} G;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A hash of every field but `user`, where it is stored. */
static uint64_t checksum(const sluice_desc_t *d)
{
	uint64_t w[8], h = 0x1234;
	memcpy(w, d, sizeof(w));
	w[3] = 0;
	for (int i = 0; i < 8; i++)
		h = mix(h ^ w[i]);
	return h;
}

static void fill(sluice_desc_t *d, uint64_t id)
{
	uint64_t a = mix(id), b = mix(a);
	d->task_id = id;
	d->submit_ns = a;
	d->deadline_ns = b;
	d->payload_block = (uint32_t)(a >> 32);
	d->payload_len = (uint32_t)b;
	d->result_block = (uint32_t)(b >> 32);
	d->result_len = (uint32_t)a;
	d->slot = (uint32_t)id;
	d->client = (uint32_t)(id >> 32) ^ 0xc1;
	d->step = (uint16_t)(a >> 7);
	d->flags = 0;
	d->status = (uint16_t)((b >> 9) & 0x7fff);
	d->attempt = (uint8_t)a;
	d->priority = (uint8_t)b;
	d->user = checksum(d);
}

static uint64_t rnd(uint64_t *s)
{
	*s = mix(*s);
	return *s;
}

static const unsigned wait_modes[] = {SLUICE_RING_SPIN_SLEEP, SLUICE_RING_SLEEP,
				      SLUICE_RING_BUSY_POLL};

static void producer(unsigned idx)
{
	sluice_ring_t r;
	sluice_ring_producer_t p;
	sluice_desc_t buf[64];
	uint64_t per = G.total / G.producers;
	uint64_t id = idx * per, end = idx + 1 == G.producers ? G.total : id + per;
	uint64_t seed = 0xabcdef + idx, bulk = 0;

	CHECK_OK(sluice_ring_open(&r, G.ring_mem, G.ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, idx + 1));
	CHECK_OK(sluice_ring_producer_set_wait(&p, wait_modes[idx % 3], 0));
	unsigned spins = 0;
	while (id < end) {
		uint64_t x = rnd(&seed);
		unsigned n = 1 + (unsigned)((x >> 8) % 64);
		if (n > end - id)
			n = (unsigned)(end - id);
		for (unsigned i = 0; i < n; i++) {
			fill(&buf[i], id + i);
			/* A "payload": plain stores before the enqueue. */
			G.payload[id + i] = mix(~(id + i));
		}
		int k;
		switch (x % 4) {
		case 0:
			k = sluice_ring_try_enqueue_mpmc(&p, buf);
			break;
		case 1:
			k = sluice_ring_enqueue_mpmc(&p, buf, SLUICE_RING_FOREVER);
			CHECK(k == 1);
			break;
		case 2:
			k = sluice_ring_try_enqueue_bulk_mpmc(&p, buf, n);
			bulk++;
			break;
		default:
			k = sluice_ring_enqueue_bulk_mpmc(&p, buf, n, 1000000);
			if (k == SLUICE_ETIMEDOUT)
				k = 0;
			bulk++;
			break;
		}
		CHECK(k >= 0 && (unsigned)k <= n);
		id += (uint64_t)k;
		if (k == 0 && ++spins % 64 == 0)
			sched_yield();
		/* Now and then go quiet, so that consumers fall asleep. */
		if ((x >> 40) % 2048 == 0)
			usleep(50 + (unsigned)((x >> 20) % 300));
	}
	sluice_ring_stats_t st;
	sluice_ring_producer_stats(&p, &st);
	sl_fetch_add_relaxed(&G.ctl->prod_futex_waits, st.futex_waits);
	sl_fetch_add_relaxed(&G.ctl->prod_futex_wakes, st.futex_wakes);
	sl_fetch_add_relaxed(&G.ctl->bulk_calls, bulk);
	CHECK_OK(sluice_ring_producer_release(&p));
}

static bool take(const sluice_desc_t *d)
{
	struct ctl *c = G.ctl;
	if (d->flags == DESC_F_STOP && d->task_id == STOP_ID)
		return true;
	uint64_t id = d->task_id;
	if (id >= G.total || d->user != checksum(d)) {
		fprintf(stderr, "bad descriptor: id %" PRIu64 "\n", id);
		sl_fetch_add_relaxed(&c->bad, 1);
		return false;
	}
	/* A plain load of what the producer stored before enqueuing: the
	 * ring's publication must order it (and tell TSan so). */
	if (G.payload[id] != mix(~id)) {
		fprintf(stderr, "payload of %" PRIu64 " not visible\n", id);
		sl_fetch_add_relaxed(&c->bad, 1);
	}
	uint64_t bit = 1ull << (id % 64);
	/* Relaxed: the bitmap is read by the parent only after joining. */
	uint64_t old = atomic_fetch_or_explicit(&c->bitmap[id / 64], bit, memory_order_relaxed);
	if (old & bit) {
		fprintf(stderr, "duplicate descriptor %" PRIu64 "\n", id);
		sl_fetch_add_relaxed(&c->dups, 1);
	}
	sl_fetch_add_relaxed(&c->delivered, 1);
	return false;
}

static void consumer(unsigned idx)
{
	sluice_ring_t r;
	sluice_desc_t buf[64];
	uint64_t seed = 0x777 + idx, bulk = 0;
	bool stop = false;
	unsigned empty = 0;

	CHECK_OK(sluice_ring_open(&r, G.ring_mem, G.ring_size));
	CHECK_OK(sluice_ring_set_wait(&r, wait_modes[(idx + 1) % 3], idx % 2 ? 2000 : 0));
	while (!stop) {
		uint64_t x = rnd(&seed);
		unsigned n = 1 + (unsigned)((x >> 8) % 64);
		uint64_t timeout = (x >> 16) % 2 ? SLUICE_RING_FOREVER : (x >> 24) % 2000000;
		int k;
		switch (x % 4) {
		case 0:
			k = sluice_ring_try_dequeue_mpmc(&r, buf);
			break;
		case 1:
			k = sluice_ring_dequeue_mpmc(&r, buf, timeout);
			break;
		case 2:
			k = sluice_ring_try_dequeue_bulk_mpmc(&r, buf, n);
			bulk++;
			break;
		default:
			k = sluice_ring_dequeue_bulk_mpmc(&r, buf, n, timeout);
			bulk++;
			break;
		}
		if (k == SLUICE_ETIMEDOUT)
			k = 0;
		CHECK(k >= 0 && k <= 64);
		for (int i = 0; i < k; i++)
			stop |= take(&buf[i]);
		if (k == 0 && ++empty % 64 == 0)
			sched_yield();
	}
	sluice_ring_stats_t st;
	sluice_ring_stats(&r, &st);
	sl_fetch_add_relaxed(&G.ctl->cons_futex_waits, st.futex_waits);
	sl_fetch_add_relaxed(&G.ctl->cons_futex_wakes, st.futex_wakes);
	sl_fetch_add_relaxed(&G.ctl->cons_timeouts, st.timeouts);
	sl_fetch_add_relaxed(&G.ctl->bulk_calls, bulk);
	/* Release: our counters and bitmap bits before the parent's check. */
	sl_fetch_add_acq_rel(&G.ctl->consumers_done, 1);
}

static void *producer_thread(void *arg)
{
	producer((unsigned)(uintptr_t)arg);
	return NULL;
}

static void *consumer_thread(void *arg)
{
	consumer((unsigned)(uintptr_t)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	G.producers = (unsigned)test_arg_u64(argc, argv, 1, 2);
	G.consumers = (unsigned)test_arg_u64(argc, argv, 2, 2);
	G.total = test_arg_u64(argc, argv, 3, 1000000) / test_slowdown();
	G.threads = argc > 4 && strcmp(argv[4], "threads") == 0;
	G.capacity = (unsigned)test_arg_u64(argc, argv, 5, 256);
	CHECK(G.producers >= 1 && G.consumers >= 1 && G.total >= G.producers);

	sluice_ring_config_t rc = {.size_of = sizeof(rc), .kind = SLUICE_RING_MPMC,
				   .capacity = G.capacity, .lanes = G.producers + 1};
	int64_t ring_size = sluice_ring_mem_size(&rc);
	CHECK(ring_size > 0);
	uint64_t bitmap_size = (G.total + 63) / 64 * 8;
	uint64_t ctl_size = sizeof(struct ctl) + bitmap_size + G.total * 8;
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "ring-stress", .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = REGION_RING, .size = (uint64_t)ring_size};
	o.regions[1] = (sluice_region_req_t){.id = REGION_CTL, .size = ctl_size};
	CHECK_OK(sluice_arena_create(&o, &G.arena));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(G.arena, REGION_RING, &off, &size));
	G.ring_mem = sluice_arena_at(G.arena, off, size, 64);
	G.ring_size = size;
	CHECK_OK(sluice_ring_format(G.ring_mem, G.ring_size, &rc));
	CHECK_OK(sluice_arena_region(G.arena, REGION_CTL, &off, &size));
	G.ctl = sluice_arena_at(G.arena, off, size, 64);
	CHECK(G.ring_mem != NULL && G.ctl != NULL);
	G.payload = (uint64_t *)((char *)G.ctl + sizeof(struct ctl) + bitmap_size);

	uint64_t t0 = test_now_ns();
	pid_t ppid[64], cpid[64];
	pthread_t pth[64], cth[64];
	CHECK(G.producers <= 64 && G.consumers <= 64);
	for (unsigned i = 0; i < G.consumers; i++) {
		if (G.threads) {
			CHECK(pthread_create(&cth[i], NULL, consumer_thread, (void *)(uintptr_t)i) == 0);
			continue;
		}
		cpid[i] = fork();
		CHECK(cpid[i] >= 0);
		if (cpid[i] == 0) {
			consumer(i);
			_exit(0);
		}
	}
	for (unsigned i = 0; i < G.producers; i++) {
		if (G.threads) {
			CHECK(pthread_create(&pth[i], NULL, producer_thread, (void *)(uintptr_t)i) == 0);
			continue;
		}
		ppid[i] = fork();
		CHECK(ppid[i] >= 0);
		if (ppid[i] == 0) {
			producer(i);
			_exit(0);
		}
	}
	for (unsigned i = 0; i < G.producers; i++) {
		if (G.threads)
			CHECK(pthread_join(pth[i], NULL) == 0);
		else
			CHECK(test_wait(ppid[i]) == 0);
	}

	/* Producers are done: send stop descriptors from a lane of our own
	 * until every consumer has taken one and left (a bulk dequeue may take
	 * several, so count departures, not stops). */
	sluice_ring_t r;
	sluice_ring_producer_t p;
	CHECK_OK(sluice_ring_open(&r, G.ring_mem, G.ring_size));
	CHECK_OK(sluice_ring_producer_claim(&p, &r, PARENT_OWNER));
	sluice_desc_t stop = {.task_id = STOP_ID, .flags = DESC_F_STOP};
	unsigned reaped = 0;
	bool reaped_c[64] = {false};
	while (reaped < G.consumers) {
		int k = sluice_ring_enqueue_mpmc(&p, &stop, 10000000);
		CHECK(k == 1 || k == SLUICE_ETIMEDOUT);
		usleep(500);
		if (G.threads) {
			reaped = sl_load_acquire(&G.ctl->consumers_done);
			continue;
		}
		for (unsigned i = 0; i < G.consumers; i++) {
			int st;
			if (reaped_c[i])
				continue;
			pid_t w = waitpid(cpid[i], &st, WNOHANG);
			CHECK(w >= 0);
			if (w == 0)
				continue;
			reaped_c[i] = true;
			reaped++;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "consumer %u failed (status 0x%x)\n", i, st);
				return TEST_FAIL;
			}
		}
	}
	if (G.threads)
		for (unsigned i = 0; i < G.consumers; i++)
			CHECK(pthread_join(cth[i], NULL) == 0);
	CHECK_OK(sluice_ring_producer_release(&p));
	double secs = (double)(test_now_ns() - t0) / 1e9;

	struct ctl *c = G.ctl;
	uint64_t missing = 0;
	for (uint64_t id = 0; id < G.total; id++)
		if (!(sl_load_relaxed(&c->bitmap[id / 64]) & (1ull << (id % 64))))
			missing++;
	printf("%s %ux%u: %" PRIu64 " descriptors in %.2f s (%.2f M/s); delivered %" PRIu64
	       ", missing %" PRIu64 ", duplicates %" PRIu64 ", bad %" PRIu64 "\n",
	       G.threads ? "threads" : "procs", G.producers, G.consumers, G.total, secs,
	       (double)G.total / secs / 1e6, sl_load_relaxed(&c->delivered), missing,
	       sl_load_relaxed(&c->dups), sl_load_relaxed(&c->bad));
	printf("consumer futex waits %" PRIu64 ", timeouts %" PRIu64 ", wakes of producers %" PRIu64
	       "; producer futex waits %" PRIu64 ", wakes of consumers %" PRIu64
	       "; bulk calls %" PRIu64 "\n",
	       sl_load_relaxed(&c->cons_futex_waits), sl_load_relaxed(&c->cons_timeouts),
	       sl_load_relaxed(&c->cons_futex_wakes), sl_load_relaxed(&c->prod_futex_waits),
	       sl_load_relaxed(&c->prod_futex_wakes), sl_load_relaxed(&c->bulk_calls));
	CHECK(sl_load_relaxed(&c->dups) == 0);
	CHECK(sl_load_relaxed(&c->bad) == 0);
	CHECK(missing == 0);
	CHECK(sl_load_relaxed(&c->delivered) == G.total);
	/* The sleep path was taken, not only the spin: the test is not
	 * vacuous about wake-ups. */
	CHECK(sl_load_relaxed(&c->cons_futex_waits) > 0);
	sluice_arena_destroy(G.arena);
	return TEST_PASS;
}
