/* Descriptor rings: bounded lock-free queues of sluice_desc_t (64 bytes) in
 * shared memory, built on ck_ring's counters and protocols, with sleep and wake on
 * a futex word (or an eventfd) when a ring is empty or full.
 *
 * A ring lives in memory the caller provides (a region of an arena, or part
 * of one): sluice_ring_format lays it out once, sluice_ring_open validates
 * it and fills a process-local handle. Shared memory holds only counters
 * and offsets; handles hold this process's pointers.
 *
 * Two kinds:
 *   SPSC  one lane; one producer and one consumer at a time.
 *   MPMC  N lanes (N = most producers at once, fixed at format). A producer
 *         claims a lane (compare-and-swap of the lane's owner word) and is
 *         that lane's single producer; consumers take from every lane. A
 *         producer killed at any instruction can leave at most one written
 *         but unpublished slot in its own lane, which no one ever reads, so
 *         it stalls no one; sluice_ring_lane_release hands its lane to the
 *         next producer. See docs/RINGS.md for the decision and the table of
 *         which operations may run together.
 *
 * Capacity: a lane of `capacity` slots (a power of two) holds at most
 * capacity - 1 descriptors (ck_ring keeps one slot empty to tell full from
 * empty). An MPMC ring holds at most lanes * (capacity - 1), and one
 * producer at most capacity - 1 of them.
 *
 * Return values: the enqueue and dequeue calls return how many descriptors
 * they moved (0 means full or empty for a try form: not an error), or a
 * negative SLUICE_E* code: -ETIMEDOUT from a blocking form whose timeout ran
 * out with nothing moved, -EINVAL for a call on the wrong kind of ring. They
 * never set errno.
 *
 * Waiting (blocking forms): per handle, one of
 *   SLUICE_RING_SPIN_SLEEP  spin `spin_ns` (default 50 us: longer than a
 *                           wake-up costs, see BASELINES.md), then sleep on
 *                           the ring's futex word until woken (default);
 *   SLUICE_RING_SLEEP       sleep at once, no spin;
 *   SLUICE_RING_BUSY_POLL   never sleep; sched_yield after 64 empty polls.
 * Producers wake sleepers only when someone sleeps (the fast path makes no
 * system call and, in a process registered for membarrier(2), issues no
 * fence: see queues/ring.c), once per call however many descriptors it
 * moved. Sleepers sleep without a timeout-poll: an idle ring costs no CPU.
 *
 * Handles: a sluice_ring_t or sluice_ring_producer_t is used by one thread
 * at a time (it keeps a fan-in cursor, snapshots of the other side's
 * counter and counters). Each thread opens its own. The first open or
 * claim in a process registers it for membarrier(2) (one system call, once
 * per process; a fork child inherits it); later ones make no system call.
 */
#ifndef SLUICE_RING_H
#define SLUICE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sluice/desc.h>
#include <sluice/export.h>

enum sluice_ring_kind {
	SLUICE_RING_SPSC = 1,
	SLUICE_RING_MPMC = 2,
};

enum sluice_ring_wait {
	SLUICE_RING_WAIT_DEFAULT = 0, /* handles: the ring's; config: SPIN_SLEEP */
	SLUICE_RING_SPIN_SLEEP = 1,
	SLUICE_RING_SLEEP = 2,
	SLUICE_RING_BUSY_POLL = 3,
};

/* Blocking calls: wait without a deadline. A timeout of 0 makes a blocking
 * call a try that returns -ETIMEDOUT instead of 0. */
#define SLUICE_RING_FOREVER UINT64_MAX
#define SLUICE_RING_SPIN_NS_DEFAULT 50000u
#define SLUICE_RING_MAX_LANES 4096u
#define SLUICE_RING_MIN_CAPACITY 2u
#define SLUICE_RING_MAX_CAPACITY (1u << 24)
/* Owner words: 0 means the lane is free; an owner is any other value. */
#define SLUICE_RING_OWNER_NONE 0u

typedef struct sluice_ring_config {
	size_t size_of;    /* sizeof(sluice_ring_config_t), so the struct can grow */
	uint32_t kind;     /* SLUICE_RING_SPSC or SLUICE_RING_MPMC */
	uint32_t capacity; /* slots per lane: a power of two, 2 .. 2^24 */
	uint32_t lanes;    /* MPMC: most producers at once, 1 .. 4096; SPSC: 0 or 1 */
	uint32_t wait;     /* default enum sluice_ring_wait of handles */
	uint64_t spin_ns;  /* default spin of SPIN_SLEEP; 0: SLUICE_RING_SPIN_NS_DEFAULT */
} sluice_ring_config_t;

/* Per-handle counters, written only by the handle's thread. */
typedef struct sluice_ring_stats {
	uint64_t futex_waits;    /* FUTEX_WAITs that slept (woken, timed out, signal) */
	uint64_t futex_eagain;   /* FUTEX_WAITs that returned at once: the word moved */
	uint64_t futex_wakes;    /* FUTEX_WAKEs issued (only when someone slept) */
	uint64_t eventfd_writes; /* eventfd writes issued (only when a consumer armed) */
	uint64_t yields;         /* sched_yield calls while polling (busy-poll, spin) */
	uint64_t timeouts;       /* blocking calls that returned -ETIMEDOUT */
} sluice_ring_stats_t;

/* Consumer (and owner) handle. Caller-allocated; filled by sluice_ring_open.
 * Fields are private: use the functions below. Nothing to free. */
typedef struct sluice_ring {
	void *hdr_;              /* ring header in this process */
	char *lanes_;            /* lane 0 in this process */
	uint64_t lane_stride_;   /* bytes from one lane to the next */
	uint64_t mem_size_;      /* bytes the ring occupies */
	uint64_t spin_ns_;
	uint32_t kind_;
	uint32_t nlanes_;
	uint32_t capacity_;      /* slots per lane */
	uint32_t mask_;          /* capacity - 1, validated */
	uint32_t wait_;
	uint32_t next_lane_;     /* fan-in cursor: where the next dequeue starts */
	uint32_t first_high_;    /* priority lanes: the first high lane; 0: none */
	uint32_t next_high_;     /* fan-in cursor over the high lanes */
	uint32_t burst_;         /* high-first calls in a row before normal goes first */
	uint32_t high_run_;      /* calls in a row that took high and no normal */
	uint32_t p_tail_;        /* SPSC: last p_tail seen; valid while c_head == c_head_ */
	uint32_t c_head_;        /* SPSC: c_head when p_tail_ was taken or last moved */
	int efd_;                /* eventfd for sluice_ring_arm, or -1 */
	bool armed_;
	sluice_ring_stats_t stats_;
} sluice_ring_t;

/* Producer handle: one claimed lane. Caller-allocated; filled by
 * sluice_ring_producer_claim, emptied by sluice_ring_producer_release. */
typedef struct sluice_ring_producer {
	void *hdr_;
	void *lane_;             /* the claimed lane */
	void *slots_;            /* its slot array */
	uint64_t spin_ns_;
	uint32_t kind_;
	uint32_t mask_;
	uint32_t owner_;
	uint32_t lane_index_;
	uint32_t wait_;
	uint32_t p_tail_;        /* the lane's p_tail: ours alone, kept here, stored to the lane */
	uint32_t c_head_;        /* last c_head seen: re-read only when the lane looks full */
	int efd_;                /* eventfd to write when a consumer armed, or -1 */
	sluice_ring_stats_t stats_;
} sluice_ring_producer_t;

/* ---- layout and handles ------------------------------------------------ */

/* Bytes a ring of configuration `cfg` occupies, or -EINVAL for a bad
 * configuration (unknown kind or wait mode, capacity not a power of two or
 * out of range, lanes out of range, lanes > 1 on SPSC). Pure. */
SLUICE_EXTERN int64_t sluice_ring_mem_size(const sluice_ring_config_t *cfg);

/* Lays out an empty ring at `mem` (64-byte aligned, `size` bytes, at least
 * sluice_ring_mem_size). Every lane is free and empty. Call once, before
 * anyone else opens the ring; nothing may run concurrently with it. No
 * system call. Returns 0, -EINVAL (bad configuration or misaligned mem) or
 * -ENOSPC (size too small). */
SLUICE_EXTERN int sluice_ring_format(void *mem, uint64_t size, const sluice_ring_config_t *cfg);

/* Validates the ring at `mem` and fills `r`: magic (-EBADMAGIC), layout
 * version (-EVERSION), header size, kind, capacity a power of two in range,
 * lane count in range, each lane's ck_ring size and mask agreeing with the
 * header (-ECORRUPT), and everything the header describes lying inside
 * [mem, mem + size) (-ETRUNCATED). -EINVAL for a NULL or misaligned mem.
 * Any process, any thread, concurrently with every ring operation (it reads
 * only fields written once by format). The first open or claim of a process
 * registers it for MEMBARRIER_CMD_GLOBAL_EXPEDITED (one system call; where
 * that fails, the process's calls keep a full fence on their fast path);
 * later ones make no system call. The handle takes the ring's default wait
 * mode and no eventfd. */
SLUICE_EXTERN int sluice_ring_open(sluice_ring_t *r, void *mem, uint64_t size);

/* Sets how this handle's blocking calls wait: `wait` is an enum
 * sluice_ring_wait (DEFAULT: the ring's); `spin_ns` is used by SPIN_SLEEP
 * (0: SLUICE_RING_SPIN_NS_DEFAULT). Returns 0 or -EINVAL. Handle's thread. */
SLUICE_EXTERN int sluice_ring_set_wait(sluice_ring_t *r, unsigned wait, uint64_t spin_ns);
SLUICE_EXTERN int sluice_ring_producer_set_wait(sluice_ring_producer_t *p, unsigned wait,
						uint64_t spin_ns);

SLUICE_EXTERN unsigned sluice_ring_kind(const sluice_ring_t *r);
SLUICE_EXTERN uint32_t sluice_ring_lanes(const sluice_ring_t *r);
/* Descriptors one lane holds when full: capacity - 1. */
SLUICE_EXTERN uint32_t sluice_ring_lane_capacity(const sluice_ring_t *r);

/* Descriptors queued now, summed over the lanes. A snapshot, stale by the
 * time it returns; for metrics. Any thread, concurrently with everything. */
SLUICE_EXTERN uint64_t sluice_ring_count(const sluice_ring_t *r);

/* Per-handle counters. Handle's thread (or after it stopped). */
SLUICE_EXTERN void sluice_ring_stats(const sluice_ring_t *r, sluice_ring_stats_t *out);
SLUICE_EXTERN void sluice_ring_producer_stats(const sluice_ring_producer_t *p,
					      sluice_ring_stats_t *out);

/* ---- lanes --------------------------------------------------------------- */

/* Claims a free lane of the ring `r` opened, for producer `owner` (non-zero;
 * unique among the ring's live producers), by compare-and-swap of the
 * lane's owner word, and fills `p`. The producer keeps the lane until
 * sluice_ring_producer_release, or until it dies and someone calls
 * sluice_ring_lane_release. Any process, any thread, concurrently with
 * everything. No system call, except the first open or claim of a process
 * (see sluice_ring_open). Returns 0; -EBUSY when every lane is taken;
 * -EEXIST when `owner` already holds a lane; -EINVAL for owner 0. */
SLUICE_EXTERN int sluice_ring_producer_claim(sluice_ring_producer_t *p, const sluice_ring_t *r,
					     uint32_t owner);

/* As sluice_ring_producer_claim, but only a lane in [first, first +
 * count), and -EEXIST only when `owner` holds a lane there: a producer may
 * hold one lane of each range (the normal and the high lanes of a ring
 * with priority lanes, sluice_ring_set_priority). -EINVAL for a range
 * outside the ring. */
SLUICE_EXTERN int sluice_ring_producer_claim_in(sluice_ring_producer_t *p, const sluice_ring_t *r,
						uint32_t owner, uint32_t first, uint32_t count);

/* Priority lanes, a convention between the producers and this consumer
 * handle: lanes [0, first_high) carry normal descriptors, lanes
 * [first_high, lanes) high ones (producers claim theirs with
 * sluice_ring_producer_claim_in). The handle's dequeues take from the high
 * lanes first, and fill up from the normal ones; but after `burst` calls
 * in a row that took high descriptors and no normal one, the next call
 * takes from the normal lanes first. So normal descriptors are never
 * starved: while both kinds are queued, at least one call in every
 * burst + 1 of this handle takes normal ones. MPMC only; first_high in
 * 1 .. lanes - 1, burst >= 1. Returns 0 or -EINVAL. Handle's thread; no
 * shared state is touched. */
SLUICE_EXTERN int sluice_ring_set_priority(sluice_ring_t *r, uint32_t first_high, uint32_t burst);

/* Gives the lane back (store-release of the owner word, ordered after every
 * descriptor this producer published, which stay queued for consumers).
 * The producer's thread; `p` is empty afterwards. Returns 0, or -ENOTOWNER
 * if the lane was released under it (by sluice_ring_lane_release). */
SLUICE_EXTERN int sluice_ring_producer_release(sluice_ring_producer_t *p);

/* For a producer whose calls return -ECORRUPT: the lane's counters are
 * impossible (someone scribbled on the consumers' counter in shared
 * memory). Starts the lane over, empty, at the consumers' counter; what was
 * queued on it is lost (consumers refused it anyway). A lane whose
 * counters are consistent is left as it is (its p_tail rewritten from the
 * handle's, should someone have scribbled on it). The producer's thread.
 * Returns 1 when it emptied the lane, 0 when nothing was wrong, -EINVAL.
 * Claims and sluice_ring_lane_release start such a lane over the same
 * way, and the consumer side counts it as empty. */
SLUICE_EXTERN int sluice_ring_producer_reset(sluice_ring_producer_t *p);

/* For the ring's only consumer of the moment (the supervisor taking back
 * a gone client's completion ring): every lane whose counters are
 * impossible is emptied (c_head = p_tail), so that the next consumer can
 * use it. Returns how many lanes it mended, or -EINVAL. */
SLUICE_EXTERN int sluice_ring_mend(sluice_ring_t *r);

/* For the supervisor, after `owner` died (or otherwise stopped producing
 * for good: it must never touch the ring again): frees every lane `owner`
 * holds. Its published descriptors stay for the consumers; a slot it wrote
 * but did not publish is overwritten by the lane's next producer, never
 * read. Any process, concurrently with everything except `owner` itself.
 * Returns the number of lanes freed (0 if it held none). */
SLUICE_EXTERN int sluice_ring_lane_release(const sluice_ring_t *r, uint32_t owner);

/* The owner of lane `lane` (SLUICE_RING_OWNER_NONE when free), or -EINVAL
 * for a lane out of range. A snapshot. */
SLUICE_EXTERN int64_t sluice_ring_lane_owner(const sluice_ring_t *r, uint32_t lane);

/* Wakes every sleeper of the ring, consumers and producers (and writes the
 * handle's eventfd, if it has one and a consumer is armed). For the
 * supervisor after a process of the ring died between publishing (or
 * taking) and waking: the wake-up it owed is made good. Sleepers re-check
 * and sleep again if there is nothing for them. Any process, any thread,
 * concurrently with everything. sluice_ring_lane_release calls it. */
SLUICE_EXTERN void sluice_ring_wake_all(sluice_ring_t *r);

/* ---- producers ------------------------------------------------------------
 * The claiming thread only (one producer per lane). Concurrent with any
 * number of consumers and with the ring's other producers (other lanes).
 * On success the descriptors are published with release semantics (a
 * consumer that gets them sees every byte written before the call), then
 * the publication is ordered before the check for sleeping consumers: by a
 * compiler barrier in a process registered for membarrier(2) (a consumer on
 * its way to sleep issues membarrier, which fences us), by a full fence in
 * one that is not; a wake-up system call is made only when a consumer
 * sleeps or armed an eventfd. The producer re-reads the consumers' counter
 * only when its last snapshot says the lane is full.
 *
 * try forms: enqueue what fits without waiting; return 1 / the count moved
 * (0 when full). Bulk forms move the first k of `d` (k <= n) in order with
 * one publication.
 * blocking forms: wait until at least one fits (or `timeout_ns` passes:
 * -ETIMEDOUT), then enqueue as many as fit, up to n; return the count. */
SLUICE_EXTERN int sluice_ring_try_enqueue_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d);
SLUICE_EXTERN int sluice_ring_try_enqueue_bulk_spsc(sluice_ring_producer_t *p,
						    const sluice_desc_t *d, unsigned n);
SLUICE_EXTERN int sluice_ring_enqueue_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d,
					   uint64_t timeout_ns);
SLUICE_EXTERN int sluice_ring_enqueue_bulk_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d,
						unsigned n, uint64_t timeout_ns);

SLUICE_EXTERN int sluice_ring_try_enqueue_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d);
SLUICE_EXTERN int sluice_ring_try_enqueue_bulk_mpmc(sluice_ring_producer_t *p,
						    const sluice_desc_t *d, unsigned n);
SLUICE_EXTERN int sluice_ring_enqueue_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d,
					   uint64_t timeout_ns);
SLUICE_EXTERN int sluice_ring_enqueue_bulk_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d,
						unsigned n, uint64_t timeout_ns);

/* ---- consumers ------------------------------------------------------------
 * SPSC: one consumer thread at a time, concurrent with the producer.
 * MPMC: any number of consumers, concurrent with each other and with every
 * producer; each lane is taken from with ck's multi-consumer protocol (copy,
 * then compare-and-swap of the lane's consumer counter), starting at a lane
 * that rotates per call for fairness. A bulk dequeue takes up to n from a
 * lane with one compare-and-swap, then moves to the next lane while room is
 * left; descriptors of one lane come out in the order they went in.
 * After taking anything: the same ordering as a producer's (a compiler
 * barrier, or a full fence in an unregistered process), then a wake-up of
 * producers only if one sleeps on a full lane. The SPSC consumer re-reads
 * the producer's counter only when it has taken all its last snapshot
 * showed.
 *
 * try forms: return 1 / the count taken (0 when empty).
 * blocking forms: wait until at least one is there (or -ETIMEDOUT), then
 * take up to n; return the count. */
SLUICE_EXTERN int sluice_ring_try_dequeue_spsc(sluice_ring_t *r, sluice_desc_t *out);
SLUICE_EXTERN int sluice_ring_try_dequeue_bulk_spsc(sluice_ring_t *r, sluice_desc_t *out,
						    unsigned n);
SLUICE_EXTERN int sluice_ring_dequeue_spsc(sluice_ring_t *r, sluice_desc_t *out,
					   uint64_t timeout_ns);
SLUICE_EXTERN int sluice_ring_dequeue_bulk_spsc(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
						uint64_t timeout_ns);

SLUICE_EXTERN int sluice_ring_try_dequeue_mpmc(sluice_ring_t *r, sluice_desc_t *out);
SLUICE_EXTERN int sluice_ring_try_dequeue_bulk_mpmc(sluice_ring_t *r, sluice_desc_t *out,
						    unsigned n);
SLUICE_EXTERN int sluice_ring_dequeue_mpmc(sluice_ring_t *r, sluice_desc_t *out,
					   uint64_t timeout_ns);
SLUICE_EXTERN int sluice_ring_dequeue_bulk_mpmc(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
						uint64_t timeout_ns);

/* ---- eventfd wake-ups for event loops ---------------------------------------
 * A consumer that waits in epoll (libuv, io_uring) instead of a blocking
 * call gives its handle an eventfd; every producer of the ring is given the
 * same eventfd (inherited by fork, or passed with SCM_RIGHTS) through
 * sluice_ring_producer_set_eventfd. One eventfd consumer per ring. The loop:
 *
 *	for (;;) {
 *		while ((k = sluice_ring_try_dequeue_bulk_mpmc(r, buf, 32)) > 0)
 *			handle(buf, k);
 *		int a = sluice_ring_arm(r);
 *		if (a == 1)
 *			continue;           // something arrived: drain again
 *		// efd readable; a bounded wait only after ARMED_POLL (rare)
 *		if (epoll_wait(ep, &ev, 1, a == SLUICE_RING_ARMED_POLL ?
 *			       SLUICE_RING_ARMED_POLL_MS : -1) == 1)
 *			read(efd, &u64, 8); // reset the counter
 *		sluice_ring_disarm(r);
 *	}
 *
 * Arming registers the consumer as a sleeper in shared memory; a producer
 * that publishes and finds it armed disarms it (exchange, so exactly one
 * producer writes per arming) and writes 1 to the eventfd. The handles do
 * not own or close the eventfd. */

/* Gives the handle an eventfd (-1: none). Returns 0 or -EINVAL. */
SLUICE_EXTERN int sluice_ring_set_eventfd(sluice_ring_t *r, int efd);
SLUICE_EXTERN int sluice_ring_producer_set_eventfd(sluice_ring_producer_t *p, int efd);

/* Arms the eventfd wake-up: marks the ring's consumer side armed, a full
 * fence and membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (they pair with a
 * producer's fence or compiler barrier after publishing), then looks at the
 * lanes. Returns 0 when they were empty: the next publication writes the
 * eventfd. Returns 1 when something is queued: the caller should drain (it
 * stays armed; disarm or arm again later). Returns SLUICE_RING_ARMED_POLL
 * (2) when the lanes were empty but the membarrier call failed (a seccomp
 * filter): a producer in a registered process may then publish without
 * noticing the arming, so wait with a timeout of at most
 * SLUICE_RING_ARMED_POLL_MS and drain again (a caller that treats it as 1
 * is correct, and polls). -EINVAL without an eventfd. Consumer's thread.
 * One system call (membarrier, about 0.4 us). */
#define SLUICE_RING_ARMED_POLL 2
#define SLUICE_RING_ARMED_POLL_MS 1
SLUICE_EXTERN int sluice_ring_arm(sluice_ring_t *r);

/* Withdraws the arming if no producer consumed it yet. Consumer's thread. */
SLUICE_EXTERN void sluice_ring_disarm(sluice_ring_t *r);

/* ---- crash-safe consumption: the intent record ------------------------------
 * A consumer that may be killed at any instruction (a worker process) and
 * whose descriptors must not be lost with it takes them with
 * sluice_ring_dequeue_bulk_mpmc_intent into a buffer that outlives it (in
 * shared memory), and gives it an intent record (also in shared memory).
 * Before each compare-and-swap of a lane's consumer counter, the call
 * records in it which lane, at which counter value, and which part of the
 * buffer the CAS is about to take (two relaxed stores to a line the
 * consumer owns; the CAS's release orders them before the take). After the
 * consumer died, sluice_ring_intent_taken tells a recoverer how much of
 * the buffer may have left the ring: everything before the last take
 * surely did; the last take did if the lane's consumer counter moved past
 * the recorded position (or another consumer took those descriptors; a
 * recoverer must tell the two apart by what the descriptors name, e.g. a
 * task table's state words). What did not leave the ring is still there
 * for the ring's other consumers.
 *
 * The record is written only by the consumer, and read by anyone only once
 * the consumer is gone for good (or by the consumer itself). */
typedef struct sluice_ring_intent {
	uint64_t where; /* lane << 32 | the consumer counter value the CAS expects */
	uint64_t what;  /* first << 32 | count: buffer[first .. first + count) */
} sluice_ring_intent_t;

/* As sluice_ring_dequeue_bulk_mpmc (same concurrency, waiting and
 * return values), taking into out = buffer + first (first: how many
 * descriptors the caller already took into `buffer` since it last cleared
 * the record), and recording each take in `intent` before its CAS. Takes
 * of one descriptor also go through the copy-record-CAS path (never ck's
 * single dequeue). On return, buffer[0 .. first + the count returned) left
 * the ring. The consumer's thread. */
SLUICE_EXTERN int sluice_ring_dequeue_bulk_mpmc_intent(sluice_ring_t *r, sluice_desc_t *out,
						       unsigned n, uint64_t timeout_ns,
						       sluice_ring_intent_t *intent, uint32_t first);

/* Forgets every take (count and first 0): the caller has recorded what it
 * took elsewhere. The consumer's thread. One relaxed store. */
SLUICE_EXTERN void sluice_ring_intent_clear(sluice_ring_intent_t *intent);

/* For a recoverer, once the consumer that wrote `intent` is gone for good:
 * the number of descriptors at the start of its buffer that may have left
 * ring `r` (the ring the record is about). Returns 0 for a cleared record;
 * a record naming a lane out of range counts only what surely left. Any
 * process; reads the record and one consumer counter. */
SLUICE_EXTERN uint32_t sluice_ring_intent_taken(const sluice_ring_t *r,
						const sluice_ring_intent_t *intent);

#endif
