/* Chaos: a consumer SIGKILLed while asleep on an empty ring costs the
 * producers one needless wake-up, not one per call for ever.
 *
 * A child process blocks in sluice_ring_dequeue_spsc (sleep mode) on an
 * empty ring; once it has registered as a sleeper and sits in FUTEX_WAIT,
 * the parent SIGKILLs it. The parent then enqueues descriptors one call at
 * a time with no consumer left: exactly one of those calls may issue a
 * FUTEX_WAKE (it clears the dead sleeper's flag). A new consumer then
 * drains every descriptor. */
#define _GNU_SOURCE
#include "common/test.h"

#include <sluice/arena.h>
#include <sluice/ring.h>
#include "base/atomic.h"
#include "queues/ring_layout.h"

#define CALLS 200u

/* The kernel's word for where `pid` sleeps, e.g. "futex_wait_queue". */
static bool in_futex_wait(pid_t pid)
{
	char path[64], buf[128] = "";
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "futex") != NULL;
}

int main(void)
{
	sluice_ring_config_t cfg = {.size_of = sizeof(cfg), .kind = SLUICE_RING_SPSC,
				    .capacity = 256, .wait = SLUICE_RING_SLEEP};
	int64_t need = sluice_ring_mem_size(&cfg);
	CHECK(need > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "dead-sleeper", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = 1, .size = (uint64_t)need};
	sluice_arena_t *a;
	CHECK_OK(sluice_arena_create(&o, &a));
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(a, 1, &off, &size));
	void *mem = sluice_arena_at(a, off, size, 64);
	CHECK_OK(sluice_ring_format(mem, size, &cfg));
	sluice_ring_t r;
	CHECK_OK(sluice_ring_open(&r, mem, size));
	struct sluice_ring_hdr *h = mem;

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sluice_desc_t d;
		sluice_ring_dequeue_spsc(&r, &d, SLUICE_RING_FOREVER);
		_exit(3); /* never reached: nothing is ever enqueued before the kill */
	}
	uint64_t until = test_now_ns() + 10000000000ull;
	while (!(sl_load_relaxed(&h->not_empty.waiting) == 1 && in_futex_wait(pid))) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(test_wait(pid) == 128 + SIGKILL);
	/* The dead sleeper's registration is still there. */
	CHECK(sl_load_relaxed(&h->not_empty.waiting) == 1);

	sluice_ring_producer_t p;
	CHECK_OK(sluice_ring_producer_claim(&p, &r, 1));
	for (unsigned i = 0; i < CALLS; i++) {
		sluice_desc_t d = {.task_id = i, .user = i * 7};
		CHECK(sluice_ring_try_enqueue_spsc(&p, &d) == 1);
	}
	sluice_ring_stats_t st;
	sluice_ring_producer_stats(&p, &st);
	printf("%u enqueue calls after the sleeper died: %llu FUTEX_WAKE\n", CALLS,
	       (unsigned long long)st.futex_wakes);
	CHECK(st.futex_wakes == 1);
	CHECK(sl_load_relaxed(&h->not_empty.waiting) == 0);

	/* A new consumer gets every descriptor, in order. */
	for (unsigned i = 0; i < CALLS; i++) {
		sluice_desc_t d;
		CHECK(sluice_ring_dequeue_spsc(&r, &d, 1000000000ull) == 1);
		CHECK(d.task_id == i && d.user == i * 7);
	}
	sluice_arena_destroy(a);
	printf("ok\n");
	return TEST_PASS;
}
