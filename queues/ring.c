/* Descriptor rings on ck_ring, with futex (or eventfd) sleep and wake.
 *
 * Counters are ck's struct ck_ring (c_head, p_tail, p_head), touched only
 * through ck_pr and moved with ck's protocols; our code indexes slots with
 * the handle's validated mask, never the shared one.
 *
 *   producer, single and bulk: ours, ck's single-producer protocol, plus a
 *     snapshot of c_head in the handle: the producer re-reads the consumers'
 *     line only when its snapshot says the lane is full (Lamport's
 *     optimization, as in DPDK's rte_ring and folly's ProducerConsumerQueue).
 *     ck's enqueue re-reads c_head on every call, a line the consumer has
 *     just written: one more cache-line transfer per round trip. Its own
 *     p_tail it keeps in the handle too, and only stores (docs/RINGS.md has
 *     the measurements). The test hook sits between writing the slots and
 *     the p_tail store.
 *   SPSC consumer, single and bulk: ours, ck's dequeue_sc protocol, plus a
 *     snapshot of p_tail in the handle (re-read when all it showed is taken).
 *   MPMC consumer, single and bulk: ours after ck's dequeue_mc (copy,
 *     then CAS of c_head). ck's typed dequeue re-reads the lane's mask from
 *     shared memory on every call; a scribbled mask would index outside the
 *     lane, so no ck typed operation is used on shared rings any more.
 *
 * The wait/wake protocol (docs/RINGS.md has the table), after ck_ec: a
 * "someone may sleep" flag beside the futex word, cleared by the waker that
 * wakes everyone, never by the sleeper. Its fences are asymmetric, as in
 * liburcu's urcu-memb flavour: the frequent side (every enqueue and dequeue)
 * pays a compiler barrier, the rare side (a thread about to sleep) a
 * membarrier(2) system call:
 *
 *	waker (after publishing or taking)    sleeper
 *	                                        s = seq (acquire)
 *	  counter store (p_tail / c_head)       waiting = 1 (eventfd: armed = 1)
 *	  B: compiler barrier if this           fence seq_cst
 *	     process registered, else           membarrier(GLOBAL_EXPEDITED)
 *	     fence seq_cst                      look at the lanes; if any: leave
 *	  if waiting and xchg(waiting, 0):      FUTEX_WAIT(seq, s, remaining)
 *	      seq++ (release)                   loop: read seq, set waiting again
 *	      FUTEX_WAKE(seq, all)
 *
 * Why no wake-up is lost. Losing one needs both loads to miss: the waker's
 * load of `waiting` misses the sleeper's store, and the sleeper's look
 * misses the waker's counter store (store buffering: each store still in
 * its CPU's buffer while the other side loads). That needs a full barrier
 * between the store and the load on each side:
 *
 *  - A waker in a process that is not registered issues a seq_cst fence;
 *    so does every sleeper. Of two seq_cst fences one is first in C11's
 *    total order, and the load after the other one sees the store before
 *    the first: the sleeper sees the counter, or the waker sees the flag.
 *  - A waker in a registered process (MEMBARRIER_CMD_REGISTER_GLOBAL_
 *    EXPEDITED) issues only a compiler barrier: the compiler keeps its store
 *    before its load, the CPU need not. The sleeper's membarrier(MEMBARRIER_
 *    CMD_GLOBAL_EXPEDITED) makes every running thread of every registered
 *    process execute a full barrier before the call returns (an IPI); a
 *    thread not running passes one when it is scheduled (the kernel fences
 *    around the switch), and the call fences the caller on entry and exit.
 *    So the waker executes a full barrier at some point P of its program,
 *    after the sleeper's `waiting` store is visible and before the
 *    sleeper's look: if P comes before the waker's load of `waiting`, that
 *    load sees the flag (or a later waker's 0, and that waker woke
 *    everyone); if P comes after the load, it comes after the counter store
 *    too, which is then visible to the sleeper's look. Either way one side
 *    sees the other. This is the pairing membarrier(2)'s man page describes
 *    (the fast side's barrier becomes a compiler barrier, the slow side's a
 *    membarrier call) and urcu-memb uses between rcu_read_lock and
 *    synchronize_rcu.
 *  - Registration: a process's wakers skip the fence only after its
 *    registration call has returned (a process-wide flag, stored with
 *    release after the call, loaded with acquire before the flag check). A
 *    sleeper's membarrier that started before the registration took effect
 *    may not reach this process; but then the registration (full barriers
 *    in the kernel) came after the sleeper's `waiting` store was visible,
 *    and the flag's release/acquire orders it before the waker's load of
 *    `waiting`, which sees it. A fork child inherits the registration (the
 *    kernel copies the mm's membarrier state; checked with MEMBARRIER_CMD_
 *    GET_REGISTRATIONS on Linux 6.18), and a pthread_atfork child handler
 *    registers again anyway; exec clears the kernel's state and our flag.
 *  - A process whose registration fails (seccomp, a kernel without
 *    membarrier) keeps the fence: it is the first case.
 *  - A sleeper whose membarrier call fails (a seccomp filter on the sleeper
 *    only) cannot trust registered wakers: it sleeps at most
 *    SLEEP_RECHECK_NS (1 ms) at a time and looks again, so a lost wake-up
 *    costs at most that. sluice_ring_arm returns SLUICE_RING_ARMED_POLL for
 *    the same reason, and its caller waits with that bound.
 *  - ThreadSanitizer does not model membarrier (nor fences, well): with
 *    SLUICE_RING_ASYM_FENCE 0 (the default under TSan) wakers always fence,
 *    and TSan checks the rest. Sleepers issue membarrier in every build, so
 *    processes of different builds can share a ring.
 *  - The price: a membarrier call per sleep, 0.4-0.8 us on the bench VM
 *    while the other vCPU sleeps, 10-17 us while it runs a registered
 *    process (an IPI through the hypervisor). A sleep already follows a
 *    50 us spin (SPIN_SLEEP), and what arrives meanwhile is caught by the
 *    look that follows.
 *
 * Either the sleeper's look sees the counter, or the waker sees the flag
 * and moves seq, which makes a FUTEX_WAIT on the old value return at once
 * or be woken. The sleeper reads seq before it sets the flag (the
 * eventcount's prepare_wait): a waker that clears the flag bumps seq after
 * clearing it, so it bumps it past s. Read after the flag, s could already
 * include the bump of the waker that cleared the flag, when what that waker
 * announced went to another consumer: the sleeper would sleep with the flag
 * cleared and nobody left to wake it (test_ring_stress_2x2 hung this way,
 * one consumer asleep beside a full lane).
 *
 * Why a flag and not a count of sleepers: a process killed while counted
 * would leave the count high for good, and every later publication would
 * pay a FUTEX_WAKE system call. A flag left set by a dead sleeper (or by one
 * that found work on its look and left) costs one wake-up, after which the
 * waker's exchange has cleared it. The price is that a wake-up wakes every
 * sleeper of that side (at most the step's workers), as ck_ec does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>
#include <ck_ring.h>

#include <sluice/error.h>
#include <sluice/ring.h>
#include "base/atomic.h"
#include "base/die.h"
#include "queues/ring_hooks.h"
#include "queues/ring_layout.h"

/* ThreadSanitizer cannot see ck_pr's inline-assembly loads and stores, so
 * it does not know that a p_tail store publishes slots, or that a c_head
 * update frees them. Every slot copy is our own code, and we tell it, at
 * the exact points where the real ordering is established; so the TSan
 * build needs no suppression. */
#if defined(__SANITIZE_THREAD__)
#define SL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SL_TSAN 1
#endif
#endif
#ifdef SL_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_acquire(addr) __tsan_acquire((void *)(addr))
#define tsan_release(addr) __tsan_release((void *)(addr))
#else
#define tsan_acquire(addr) ((void)0)
#define tsan_release(addr) ((void)0)
#endif

#define BUSY_POLL_YIELD_AFTER 64u
/* SPIN_SLEEP: once the spin has lasted SPIN_YIELD_AFTER_NS, sched_yield
 * every SPIN_YIELD_EVERY polls, so that with more runnable processes than
 * CPUs a spinner gives its CPU to the process it waits for. */
#define SPIN_YIELD_AFTER_NS 5000u
#define SPIN_YIELD_EVERY 32u
/* A sleeper whose membarrier call failed looks again after this long. */
#define SLEEP_RECHECK_NS ((uint64_t)SLUICE_RING_ARMED_POLL_MS * 1000000u)

/* 1: wakers in a process registered for membarrier order their counter
 * store before their sleeper check with a compiler barrier only (see the
 * top of the file). 0: they always issue a seq_cst fence, as a process
 * whose registration failed does. ThreadSanitizer does not model
 * membarrier, so TSan builds default to 0 and check the rest of the
 * protocol; -DSLUICE_RING_ASYM_FENCE=0 chooses it in any build. Sleepers
 * issue membarrier and a fence either way. */
#ifndef SLUICE_RING_ASYM_FENCE
#ifdef SL_TSAN
#define SLUICE_RING_ASYM_FENCE 0
#else
#define SLUICE_RING_ASYM_FENCE 1
#endif
#endif

sluice__ring_test_hook_fn sluice__ring_test_hook;

sluice__ring_dequeue_hook_fn sluice__ring_dequeue_test_hook;

void sluice__ring_set_dequeue_test_hook(sluice__ring_dequeue_hook_fn fn)
{
	sluice__ring_dequeue_test_hook = fn;
}

void sluice__ring_set_test_hook(sluice__ring_test_hook_fn fn)
{
	sluice__ring_test_hook = fn;
}

/* ---- small helpers ---------------------------------------------------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline struct sluice_ring_hdr *ring_hdr(const sluice_ring_t *r)
{
	return r->hdr_;
}

static inline struct sluice_ring_lane *lane_at(const sluice_ring_t *r, uint32_t i)
{
	return (struct sluice_ring_lane *)(r->lanes_ + (uint64_t)i * r->lane_stride_);
}

static inline sluice_desc_t *lane_slots(struct sluice_ring_lane *l)
{
	return (sluice_desc_t *)(l + 1);
}

/* Slot contents are written by producers, and read by multi-consumer
 * dequeues, as eight relaxed 64-bit atomics rather than memcpy. ck's
 * multi-consumer protocol copies a slot *before* the CAS that claims it; a
 * consumer whose c_head snapshot went stale may copy a slot while the
 * producer is rewriting it, and discards the copy when its CAS fails.
 * With plain copies that is a data race (undefined in C11, and reported by
 * ThreadSanitizer); with relaxed atomics it is a well-defined stale read,
 * as in a seqlock. On x86-64 these are the same plain moves. Ordering comes
 * from the fences around the counters, not from these accesses. */
static inline void slot_put(sluice_desc_t *slot, const sluice_desc_t *d)
{
	_Atomic uint64_t *dst = (_Atomic uint64_t *)(void *)slot;
	uint64_t w[8];
	memcpy(w, d, sizeof(w));
	for (int i = 0; i < 8; i++)
		sl_store_relaxed(&dst[i], w[i]);
}

static inline void slot_get(sluice_desc_t *out, const sluice_desc_t *slot)
{
	_Atomic uint64_t *src = (_Atomic uint64_t *)(void *)slot;
	uint64_t w[8];
	for (int i = 0; i < 8; i++)
		w[i] = sl_load_relaxed(&src[i]);
	memcpy(out, w, sizeof(w));
}

_Static_assert(sizeof(sluice_desc_t) == 8 * sizeof(uint64_t), "a slot is eight words");

/* FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the word is in a MAP_SHARED
 * mapping and the waker is usually another process. Returns 0 (woken or
 * spurious), -EAGAIN (the word had moved), -ETIMEDOUT or -EINTR. */
static int futex_wait(_Atomic uint32_t *word, uint32_t val, const struct timespec *rel)
{
	int saved = errno;
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, rel, NULL, 0);
	int err = rc == 0 ? 0 : -errno;
	errno = saved;
	return err;
}

static void futex_wake(_Atomic uint32_t *word, int n)
{
	int saved = errno;
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
	errno = saved;
}

/* ---- asymmetric fences (the argument is at the top of the file) ------- */

static long membarrier_call(int cmd)
{
	int saved = errno;
	long rc = syscall(SYS_membarrier, cmd, 0, 0);
	errno = saved;
	return rc;
}

/* This process's registration for MEMBARRIER_CMD_GLOBAL_EXPEDITED:
 * MB_UNKNOWN until the first open or claim tries it. Process-wide (every
 * thread and handle of the process share it); written by ring_register
 * and the fork child handler, read by every waker. */
enum { MB_UNKNOWN = 0, MB_REGISTERED = 1, MB_FAILED = 2 };
static _Atomic int mb_state;
static pthread_once_t mb_atfork_once = PTHREAD_ONCE_INIT;

static void mb_register_now(void)
{
	long rc = membarrier_call(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
	/* Release: the registration (its system call) comes before any
	 * waker that reads MB_REGISTERED skips its fence; pairs with the
	 * acquire load in waker_barrier. */
	sl_store_release(&mb_state, rc == 0 ? MB_REGISTERED : MB_FAILED);
}

/* In the child of a fork (one thread): the kernel copies the parent's
 * registration with its mm, so this returns at once; it is here for a
 * kernel that would not. */
static void mb_atfork_child(void)
{
	if (sl_load_relaxed(&mb_state) == MB_REGISTERED)
		mb_register_now();
}

static void mb_atfork_setup(void)
{
	(void)pthread_atfork(NULL, NULL, mb_atfork_child);
}

/* Called by open and claim: registers the process once. Idempotent; two
 * threads racing both call the kernel, which is harmless. */
static void ring_register(void)
{
	/* Acquire: pairs with mb_register_now's release (another thread's
	 * registration is complete when we see its result). */
	if (__builtin_expect(sl_load_acquire(&mb_state) != MB_UNKNOWN, 1))
		return;
	(void)pthread_once(&mb_atfork_once, mb_atfork_setup);
	mb_register_now();
}

/* The waker's half: after its counter store (p_tail or c_head), before its
 * load of a sleeper flag (`waiting`, `armed`). */
static inline void waker_barrier(void)
{
#if SLUICE_RING_ASYM_FENCE
	/* Acquire: pairs with the release store after the registration. */
	if (__builtin_expect(sl_load_acquire(&mb_state) == MB_REGISTERED, 1)) {
		/* Compiler barrier: the store stays before the load in our
		 * program; pairs with a sleeper's membarrier call, which puts
		 * a full barrier into this thread's program wherever it is. */
		atomic_signal_fence(memory_order_seq_cst);
		return;
	}
#endif
	/* Pairs with the sleeper's seq_cst fence (sleeper_barrier). */
	sl_fence_seq_cst();
}

/* The sleeper's half: after its flag store, before its look at the lanes.
 * Returns true when every waker is ordered, false when the membarrier call
 * failed: a registered waker may then miss the flag, and the caller must
 * look again within SLEEP_RECHECK_NS. 0.4-0.8 us on the bench VM while the
 * other vCPU sleeps, 10-17 us while it runs a registered process. */
static bool sleeper_barrier(void)
{
	/* Pairs with the seq_cst fence of wakers in unregistered processes. */
	sl_fence_seq_cst();
	/* Pairs with the compiler barrier of wakers in registered processes. */
	return membarrier_call(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

/* The slow half of a wake-up, out of line so the fast path stays small.
 * Clears the flag and wakes every sleeper; a waker that finds the flag
 * already cleared by another waker leaves the wake-up to that one. */
__attribute__((noinline, cold)) static void ec_wake(struct sluice_ring_ec *ec,
						     sluice_ring_stats_t *st)
{
	/* acq_rel: of two wakers racing, exactly one sees 1. */
	if (atomic_exchange_explicit(&ec->waiting, 0, memory_order_acq_rel) == 0)
		return;
	/* Release: a sleeper that reads the new seq (acquire, in wait_loop)
	 * also sees what we published before it. */
	sl_fetch_add_acq_rel(&ec->seq, 1);
	futex_wake(&ec->seq, INT_MAX);
	if (st)
		st->futex_wakes++;
}

__attribute__((noinline, cold)) static void efd_wake(struct sluice_ring_ec *ec, int efd,
						      sluice_ring_stats_t *st)
{
	uint32_t armed = 1;
	/* Exactly one waker consumes an arming; acq_rel pairs with the
	 * consumer's arming store and its re-arm. */
	if (!sl_cas_acq_rel(&ec->armed, &armed, 0))
		return;
	int saved = errno;
	uint64_t one = 1;
	ssize_t w;
	do
		w = write(efd, &one, sizeof(one));
	while (w < 0 && errno == EINTR);
	errno = saved;
	if (st)
		st->eventfd_writes++;
}

/* After publishing k descriptors: wake consumers, only if one sleeps. */
static inline void wake_consumers(struct sluice_ring_hdr *h, int efd, sluice_ring_stats_t *st)
{
	/* Orders our p_tail store before the sleeper checks below; pairs with
	 * sleeper_barrier in wait_loop (and sluice_ring_arm) between
	 * registering as a sleeper and looking at the lanes. */
	waker_barrier();
	if (__builtin_expect(sl_load_relaxed(&h->not_empty.waiting) != 0, 0))
		ec_wake(&h->not_empty, st);
	if (__builtin_expect(sl_load_relaxed(&h->not_empty.armed) != 0, 0) && efd >= 0)
		efd_wake(&h->not_empty, efd, st);
}

/* After taking descriptors: wake producers blocked on a full lane, only if
 * one sleeps. All of them: we do not know whose lane we freed; the others
 * look at their lane and sleep again. */
static inline void wake_producers(struct sluice_ring_hdr *h, sluice_ring_stats_t *st)
{
	/* Orders our c_head update before the sleeper check; pairs with
	 * sleeper_barrier in a producer's wait_loop between registering and
	 * looking. */
	waker_barrier();
	if (__builtin_expect(sl_load_relaxed(&h->not_full.waiting) != 0, 0))
		ec_wake(&h->not_full, st);
}

/* ---- layout ------------------------------------------------------------ */

static int check_config(const sluice_ring_config_t *cfg, uint32_t *nlanes)
{
	if (cfg == NULL || cfg->size_of != sizeof(*cfg))
		return SLUICE_EINVAL;
	if (cfg->capacity < SLUICE_RING_MIN_CAPACITY || cfg->capacity > SLUICE_RING_MAX_CAPACITY ||
	    (cfg->capacity & (cfg->capacity - 1)) != 0)
		return SLUICE_EINVAL;
	if (cfg->wait > SLUICE_RING_BUSY_POLL)
		return SLUICE_EINVAL;
	switch (cfg->kind) {
	case SLUICE_RING_SPSC:
		if (cfg->lanes > 1)
			return SLUICE_EINVAL;
		*nlanes = 1;
		break;
	case SLUICE_RING_MPMC:
		if (cfg->lanes < 1 || cfg->lanes > SLUICE_RING_MAX_LANES)
			return SLUICE_EINVAL;
		*nlanes = cfg->lanes;
		break;
	default:
		return SLUICE_EINVAL;
	}
	return 0;
}

static uint64_t lane_stride(uint32_t capacity)
{
	return sizeof(struct sluice_ring_lane) + (uint64_t)capacity * sizeof(sluice_desc_t);
}

int64_t sluice_ring_mem_size(const sluice_ring_config_t *cfg)
{
	uint32_t nlanes;
	int rc = check_config(cfg, &nlanes);
	if (rc)
		return rc;
	/* At most 192 + 4096 * (192 + 2^30): no overflow. */
	return (int64_t)(sizeof(struct sluice_ring_hdr) + nlanes * lane_stride(cfg->capacity));
}

int sluice_ring_format(void *mem, uint64_t size, const sluice_ring_config_t *cfg)
{
	int64_t need = sluice_ring_mem_size(cfg);
	if (need < 0)
		return (int)need;
	if (mem == NULL || ((uintptr_t)mem & (SLUICE_RING_CACHELINE - 1)) != 0)
		return SLUICE_EINVAL;
	if (size < (uint64_t)need)
		return SLUICE_ENOSPC;

	uint32_t nlanes = cfg->kind == SLUICE_RING_SPSC ? 1 : cfg->lanes;
	struct sluice_ring_hdr *h = mem;
	memset(h, 0, sizeof(*h));
	h->magic = SLUICE_RING_MAGIC;
	h->layout_version = SLUICE_RING_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->kind = cfg->kind;
	h->nlanes = nlanes;
	h->capacity = cfg->capacity;
	h->wait = cfg->wait == SLUICE_RING_WAIT_DEFAULT ? SLUICE_RING_SPIN_SLEEP : cfg->wait;
	h->spin_ns = cfg->spin_ns ? cfg->spin_ns : SLUICE_RING_SPIN_NS_DEFAULT;
	h->lane_off = sizeof(*h);
	h->lane_stride = lane_stride(cfg->capacity);
	h->total_size = (uint64_t)need;
	for (uint32_t i = 0; i < nlanes; i++) {
		struct sluice_ring_lane *l =
			(void *)((char *)mem + h->lane_off + (uint64_t)i * h->lane_stride);
		memset(l, 0, sizeof(*l));
		ck_ring_init(&l->ring, cfg->capacity);
		/* Slots are not cleared: nothing reads a slot before a producer
		 * wrote it. */
	}
	/* Nobody maps the ring yet; whoever opens it later gets these stores
	 * through whatever hands them the memory (fork, SCM_RIGHTS + mmap). */
	return 0;
}

int sluice_ring_open(sluice_ring_t *r, void *mem, uint64_t size)
{
	if (r == NULL || mem == NULL || ((uintptr_t)mem & (SLUICE_RING_CACHELINE - 1)) != 0)
		return SLUICE_EINVAL;
	memset(r, 0, sizeof(*r));
	r->efd_ = -1;
	if (size < sizeof(struct sluice_ring_hdr))
		return SLUICE_ETRUNCATED;
	/* Plain reads: format wrote these before the ring was shared, and
	 * nothing writes them again. Each is checked before use. */
	const struct sluice_ring_hdr *h = mem;
	if (h->magic != SLUICE_RING_MAGIC)
		return SLUICE_EBADMAGIC;
	if (h->layout_version != SLUICE_RING_LAYOUT_VERSION)
		return SLUICE_EVERSION;
	uint32_t kind = h->kind, nlanes = h->nlanes, cap = h->capacity, wait = h->wait;
	uint64_t lane_off = h->lane_off, stride = h->lane_stride, total = h->total_size;
	if (h->header_size != sizeof(*h))
		return SLUICE_ECORRUPT;
	if (kind != SLUICE_RING_SPSC && kind != SLUICE_RING_MPMC)
		return SLUICE_ECORRUPT;
	if (cap < SLUICE_RING_MIN_CAPACITY || cap > SLUICE_RING_MAX_CAPACITY || (cap & (cap - 1)))
		return SLUICE_ECORRUPT;
	if (nlanes < 1 || nlanes > SLUICE_RING_MAX_LANES ||
	    (kind == SLUICE_RING_SPSC && nlanes != 1))
		return SLUICE_ECORRUPT;
	if (wait < SLUICE_RING_SPIN_SLEEP || wait > SLUICE_RING_BUSY_POLL)
		return SLUICE_ECORRUPT;
	if (lane_off != sizeof(*h) || stride != lane_stride(cap) ||
	    total != lane_off + nlanes * stride)
		return SLUICE_ECORRUPT;
	/* Bounded above (4096 lanes of 1 GiB): the products cannot wrap. */
	if (total > size)
		return SLUICE_ETRUNCATED;

	r->hdr_ = mem;
	r->lanes_ = (char *)mem + lane_off;
	r->lane_stride_ = stride;
	r->mem_size_ = total;
	r->kind_ = kind;
	r->nlanes_ = nlanes;
	r->capacity_ = cap;
	r->mask_ = cap - 1;
	r->wait_ = wait;
	r->spin_ns_ = h->spin_ns;
	for (uint32_t i = 0; i < nlanes; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		/* ck's single operations read these on every call. */
		if (ck_pr_load_uint(&l->ring.size) != cap || ck_pr_load_uint(&l->ring.mask) != cap - 1) {
			memset(r, 0, sizeof(*r));
			r->efd_ = -1;
			return SLUICE_ECORRUPT;
		}
	}
	/* This process may wake sleepers from now on (a consumer wakes
	 * producers): let its wakers use the asymmetric fence. */
	ring_register();
	return 0;
}

static int check_wait(unsigned wait, uint64_t spin_ns, uint32_t ring_wait, uint64_t ring_spin,
		      uint32_t *out_wait, uint64_t *out_spin)
{
	if (wait > SLUICE_RING_BUSY_POLL)
		return SLUICE_EINVAL;
	/* ring_wait comes from shared memory (checked by open, re-read here). */
	if (ring_wait < SLUICE_RING_SPIN_SLEEP || ring_wait > SLUICE_RING_BUSY_POLL)
		ring_wait = SLUICE_RING_SPIN_SLEEP;
	if (ring_spin == 0)
		ring_spin = SLUICE_RING_SPIN_NS_DEFAULT;
	*out_wait = wait == SLUICE_RING_WAIT_DEFAULT ? ring_wait : wait;
	*out_spin = spin_ns ? spin_ns : (wait == SLUICE_RING_WAIT_DEFAULT ? ring_spin
									 : SLUICE_RING_SPIN_NS_DEFAULT);
	return 0;
}

int sluice_ring_set_wait(sluice_ring_t *r, unsigned wait, uint64_t spin_ns)
{
	const struct sluice_ring_hdr *h = ring_hdr(r);
	if (h == NULL)
		return SLUICE_EINVAL;
	return check_wait(wait, spin_ns, h->wait, h->spin_ns, &r->wait_, &r->spin_ns_);
}

int sluice_ring_producer_set_wait(sluice_ring_producer_t *p, unsigned wait, uint64_t spin_ns)
{
	const struct sluice_ring_hdr *h = p->hdr_;
	if (h == NULL)
		return SLUICE_EINVAL;
	return check_wait(wait, spin_ns, h->wait, h->spin_ns, &p->wait_, &p->spin_ns_);
}

unsigned sluice_ring_kind(const sluice_ring_t *r)
{
	return r->kind_;
}

uint32_t sluice_ring_lanes(const sluice_ring_t *r)
{
	return r->nlanes_;
}

uint32_t sluice_ring_lane_capacity(const sluice_ring_t *r)
{
	return r->mask_;
}

uint64_t sluice_ring_count(const sluice_ring_t *r)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < r->nlanes_; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		unsigned int c = ck_pr_load_uint(&l->ring.c_head);
		/* p_tail read after c_head (ck_ring_size reads them the same
		 * way), so the difference is not negative. */
		ck_pr_fence_load();
		unsigned int p = ck_pr_load_uint(&l->ring.p_tail);
		unsigned int d = p - c;
		/* More than a lane holds: consumers and the producer moved
		 * between our two loads (count it full), or counters someone
		 * scribbled on, p_tail far ahead or behind (nothing there a
		 * consumer can take: count it empty). */
		n += d <= r->mask_ ? d : d - r->mask_ <= r->mask_ + 1 ? r->mask_ : 0;
	}
	return n;
}

void sluice_ring_stats(const sluice_ring_t *r, sluice_ring_stats_t *out)
{
	*out = r->stats_;
}

void sluice_ring_producer_stats(const sluice_ring_producer_t *p, sluice_ring_stats_t *out)
{
	*out = p->stats_;
}

/* ---- lanes -------------------------------------------------------------- */

/* A lane whose counters are impossible (p_tail more than mask ahead of
 * c_head, or behind it: someone scribbled on shared memory) holds nothing
 * a consumer can take: every take from it refuses it (-ECORRUPT), every
 * put fails the same way, for ever. For the lane's one producer of the
 * moment (a claimer, a producer that met -ECORRUPT, a releaser whose owner
 * is gone): starts it over, empty, at the consumers' counter, and stores
 * `producer` (the p_tail the lane should have) otherwise, which mends a
 * scribbled p_tail. Returns the lane's p_tail now. Consumers take only
 * from consistent counters (CAS of c_head), so none moves meanwhile. */
static unsigned int lane_restart(struct sluice_ring_lane *l, unsigned int mask,
				 unsigned int producer)
{
	/* c_head is moved by consumers: ck_pr_load as in ck. */
	unsigned int consumer = ck_pr_load_uint(&l->ring.c_head);
	if (producer - consumer > mask)
		producer = consumer;
	/* Nothing is published by this store (the lane is empty, or holds
	 * what it held): no fence. */
	if (ck_pr_load_uint(&l->ring.p_tail) != producer)
		ck_pr_store_uint(&l->ring.p_tail, producer);
	return producer;
}

int sluice_ring_producer_claim_in(sluice_ring_producer_t *p, const sluice_ring_t *r,
				  uint32_t owner, uint32_t first, uint32_t count)
{
	if (p == NULL || r == NULL || r->hdr_ == NULL || owner == SLUICE_RING_OWNER_NONE ||
	    first >= r->nlanes_ || count == 0 || count > r->nlanes_ - first)
		return SLUICE_EINVAL;
	const uint32_t end = first + count;
	for (uint32_t i = first; i < end; i++)
		if (sl_load_relaxed(&lane_at(r, i)->owner) == owner)
			return SLUICE_EEXIST;
	for (uint32_t i = first; i < end; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		uint32_t expected = SLUICE_RING_OWNER_NONE;
		/* Acquire pairs with the release of the lane's previous owner
		 * (producer_release) or of the supervisor (lane_release), which
		 * came after the previous owner's last p_tail store: we continue
		 * from its p_tail. */
		if (!sl_cas_acq_rel(&l->owner, &expected, owner))
			continue;
		memset(p, 0, sizeof(*p));
		p->hdr_ = r->hdr_;
		p->lane_ = l;
		p->slots_ = lane_slots(l);
		p->kind_ = r->kind_;
		p->mask_ = r->mask_;
		p->owner_ = owner;
		p->lane_index_ = i;
		p->wait_ = r->wait_;
		p->spin_ns_ = r->spin_ns_;
		/* p_tail is ours from now on (the acquire above ordered the
		 * last owner's stores before this load); the enqueues keep it
		 * in the handle and only store it. A first snapshot of c_head:
		 * lane_put_one re-reads it before trusting a full lane. */
		p->p_tail_ = lane_restart(l, r->mask_, ck_pr_load_uint(&l->ring.p_tail));
		p->c_head_ = ck_pr_load_uint(&l->ring.c_head);
		p->efd_ = -1;
		ring_register();
		return 0;
	}
	return SLUICE_EBUSY;
}

int sluice_ring_producer_claim(sluice_ring_producer_t *p, const sluice_ring_t *r, uint32_t owner)
{
	if (r == NULL || r->hdr_ == NULL)
		return SLUICE_EINVAL;
	return sluice_ring_producer_claim_in(p, r, owner, 0, r->nlanes_);
}

int sluice_ring_set_priority(sluice_ring_t *r, uint32_t first_high, uint32_t burst)
{
	if (r == NULL || r->hdr_ == NULL || r->kind_ != SLUICE_RING_MPMC ||
	    first_high == 0 || first_high >= r->nlanes_ || burst == 0)
		return SLUICE_EINVAL;
	r->first_high_ = first_high;
	r->burst_ = burst;
	r->high_run_ = 0;
	r->next_high_ = first_high;
	return 0;
}

int sluice_ring_producer_release(sluice_ring_producer_t *p)
{
	if (p == NULL || p->lane_ == NULL)
		return SLUICE_EINVAL;
	struct sluice_ring_lane *l = p->lane_;
	uint32_t expected = p->owner_;
	/* Release: our p_tail stores come before the next owner's claim
	 * (its acquire CAS). */
	bool ok = sl_cas_acq_rel(&l->owner, &expected, SLUICE_RING_OWNER_NONE);
	memset(p, 0, sizeof(*p));
	p->efd_ = -1;
	return ok ? 0 : SLUICE_ENOTOWNER;
}

static void wake_all(struct sluice_ring_hdr *h, int efd, sluice_ring_stats_t *st)
{
	/* Pairs with sleepers' fences as in wake_consumers. */
	sl_fence_seq_cst();
	if (sl_load_relaxed(&h->not_empty.waiting) != 0)
		ec_wake(&h->not_empty, st);
	if (sl_load_relaxed(&h->not_full.waiting) != 0)
		ec_wake(&h->not_full, st);
	if (efd >= 0 && sl_load_relaxed(&h->not_empty.armed) != 0)
		efd_wake(&h->not_empty, efd, st);
}

void sluice_ring_wake_all(sluice_ring_t *r)
{
	wake_all(ring_hdr(r), r->efd_, &r->stats_);
}

int sluice_ring_lane_release(const sluice_ring_t *r, uint32_t owner)
{
	if (r == NULL || r->hdr_ == NULL || owner == SLUICE_RING_OWNER_NONE)
		return SLUICE_EINVAL;
	int freed = 0;
	for (uint32_t i = 0; i < r->nlanes_; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		uint32_t expected = owner;
		/* Acquire: pairs with the owner's claim; its lane is ours to
		 * mend while it stays owned (no other producer). */
		if (sl_load_acquire(&l->owner) != owner)
			continue;
		(void)lane_restart(l, r->mask_, ck_pr_load_uint(&l->ring.p_tail));
		/* Release: pairs with the next claimer's acquire CAS. The dead
		 * owner's p_tail stores happened before its death, which we
		 * learnt of through the kernel (waitpid, pidfd). */
		if (sl_cas_acq_rel(&l->owner, &expected, SLUICE_RING_OWNER_NONE))
			freed++;
	}
	/* The dead producer may have published and died before waking. */
	if (freed)
		wake_all(ring_hdr(r), -1, NULL);
	return freed;
}

int sluice_ring_producer_reset(sluice_ring_producer_t *p)
{
	if (p == NULL || p->lane_ == NULL)
		return SLUICE_EINVAL;
	struct sluice_ring_lane *l = p->lane_;
	unsigned int was = p->p_tail_;
	p->p_tail_ = lane_restart(l, p->mask_, was);
	p->c_head_ = ck_pr_load_uint(&l->ring.c_head);
	return p->p_tail_ != was;
}

int sluice_ring_mend(sluice_ring_t *r)
{
	if (r == NULL || r->hdr_ == NULL)
		return SLUICE_EINVAL;
	int mended = 0;
	for (uint32_t i = 0; i < r->nlanes_; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		unsigned int c = ck_pr_load_uint(&l->ring.c_head);
		unsigned int p = ck_pr_load_uint(&l->ring.p_tail);
		if (p - c <= r->mask_)
			continue;
		/* We are the only consumer: c_head is ours to store. Nothing
		 * is taken, so nothing to order. */
		ck_pr_store_uint(&l->ring.c_head, p);
		mended++;
	}
	return mended;
}

int64_t sluice_ring_lane_owner(const sluice_ring_t *r, uint32_t lane)
{
	if (lane >= r->nlanes_)
		return SLUICE_EINVAL;
	return sl_load_acquire(&lane_at(r, lane)->owner);
}

/* ---- producer side ------------------------------------------------------ */

/* Re-reads the lane's c_head into the producer's snapshot, for a producer
 * whose snapshot says the lane is full (or is older than p_tail allows).
 * Returns the free slots now (0: really full), or -ECORRUPT when c_head and
 * our p_tail cannot both be right. Out of line: a stream comes here once per
 * lap of the ring at most, a ping-pong never. */
__attribute__((noinline)) static int refresh_c_head(sluice_ring_producer_t *p,
						     struct sluice_ring_lane *l, unsigned int producer)
{
	/* c_head is moved by consumers (store or CAS): ck_pr_load as in ck. */
	unsigned int consumer = ck_pr_load_uint(&l->ring.c_head);
	unsigned int used = producer - consumer;
	if (__builtin_expect(used > p->mask_, 0))
		return SLUICE_ECORRUPT; /* consumers never pass p_tail */
	p->c_head_ = consumer;
	/* Our slot writes (in this call and later ones, which trust the
	 * snapshot) come after the c_head load that said they are free; pairs
	 * with the consumers' release fence before their c_head update (ck's
	 * enqueue_sp relies on the control dependency for this). */
	ck_pr_fence_load_store();
	/* TSan: those slots are free; pairs with the tsan_release a consumer
	 * issues before the c_head update that freed them. */
	tsan_acquire(&l->ring.c_head);
	return (int)(p->mask_ - used); /* one slot stays empty, as in ck */
}

/* One descriptor into the producer's lane: ck's single-producer protocol
 * with the c_head snapshot (the top of the file says why), the test hook
 * between the slot write and the p_tail store that publishes it. */
static inline int lane_put_one(sluice_ring_producer_t *p, const sluice_desc_t *d)
{
	struct sluice_ring_lane *l = p->lane_;
	const unsigned int mask = p->mask_;
	/* p_tail is written only by this lane's producer, us: our copy, not
	 * the lane's line, which the polling consumer keeps pulling over to
	 * its core (a load of it here cost a cache miss, about 60 ns of each
	 * round trip on the bench machine). */
	unsigned int producer = p->p_tail_;
	/* The snapshot is never newer than c_head, so the room it shows is
	 * never more than there is. Full by it (or impossible): look again. */
	if (__builtin_expect(producer - p->c_head_ >= mask, 0)) {
		int room = refresh_c_head(p, l, producer);
		if (room <= 0)
			return room;
	}
	slot_put(&((sluice_desc_t *)p->slots_)[producer & mask], d);
	if (__builtin_expect(sluice__ring_test_hook != NULL, 0))
		sluice__ring_test_hook(p, d, 1);
	/* TSan: the slot is written; pairs with a consumer's tsan_acquire
	 * after its p_tail load. */
	tsan_release(&l->ring.p_tail);
	/* Slot write before the p_tail store that publishes it; pairs with the
	 * consumer's fence_load between its p_tail load and its copy (ck's
	 * commit_sp uses the same fence). */
	ck_pr_fence_store();
	ck_pr_store_uint(&l->ring.p_tail, producer + 1);
	p->p_tail_ = producer + 1;
	return 1;
}

/* Up to n descriptors into the producer's lane with one publication, the
 * same protocol for k slots. */
static inline int lane_put_bulk(sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n)
{
	struct sluice_ring_lane *l = p->lane_;
	sluice_desc_t *slots = p->slots_;
	const unsigned int mask = p->mask_;
	/* p_tail: our copy, as in lane_put_one. */
	unsigned int producer = p->p_tail_;
	unsigned int used = producer - p->c_head_;
	unsigned int k = used < mask ? mask - used : 0;
	/* Less room than asked by the snapshot (or an impossible one): look
	 * again, so that a bulk call moves as many as fit now. */
	if (k < n) {
		int room = refresh_c_head(p, l, producer);
		if (room <= 0)
			return room;
		k = (unsigned int)room;
	}
	if (k > n)
		k = n;
	for (unsigned int i = 0; i < k; i++)
		slot_put(&slots[(producer + i) & mask], &d[i]);
	if (__builtin_expect(sluice__ring_test_hook != NULL, 0))
		sluice__ring_test_hook(p, d, k);
	tsan_release(&l->ring.p_tail);
	/* Slot writes before the p_tail store that publishes them; pairs with
	 * the consumer's fence_load between its p_tail load and its copy (ck's
	 * commit_sp uses the same fence). */
	ck_pr_fence_store();
	ck_pr_store_uint(&l->ring.p_tail, producer + k);
	p->p_tail_ = producer + k;
	return (int)k;
}

/* ---- consumer side ------------------------------------------------------ */

/* Re-reads p_tail into the SPSC consumer's snapshot, for a consumer that
 * has taken everything its snapshot showed (or whose snapshot is stale).
 * Returns the descriptors available (0: empty) or -ECORRUPT. Inline: a
 * polling consumer comes here on every empty poll. */
static inline int refresh_p_tail(sluice_ring_t *r, struct sluice_ring_lane *l,
				 unsigned int consumer)
{
	unsigned int producer = ck_pr_load_uint(&l->ring.p_tail);
	unsigned int avail = producer - consumer;
	if (avail == 0)
		return 0;
	if (__builtin_expect(avail > r->mask_, 0))
		return SLUICE_ECORRUPT; /* the producer never laps c_head */
	r->p_tail_ = producer;
	r->c_head_ = consumer;
	/* Slot reads (in this call and later ones, which trust the snapshot)
	 * after the p_tail load; pairs with the producer's fence_store before
	 * its p_tail store. */
	ck_pr_fence_load();
	/* TSan: what the producer wrote before publishing is ours now; pairs
	 * with its tsan_release before the p_tail store we saw. */
	tsan_acquire(&l->ring.p_tail);
	return (int)avail;
}

/* Up to n descriptors from a lane with one consumer (SPSC), following
 * ck's dequeue_sc on the same counters, with the handle's p_tail snapshot:
 * the producer's line is read only when the snapshot is used up. */
static inline int lane_take_sc(sluice_ring_t *r, struct sluice_ring_lane *l, sluice_desc_t *out,
			       unsigned n)
{
	const unsigned int mask = r->mask_;
	const sluice_desc_t *slots = lane_slots(l);
	/* c_head is ours alone (single consumer). */
	unsigned int consumer = ck_pr_load_uint(&l->ring.c_head);
	unsigned int avail = r->p_tail_ - consumer;
	/* The snapshot holds while c_head is where this handle left it (SPSC
	 * means one consumer at a time, which need not be one handle for
	 * ever). Used up (avail 0), stale or impossible: look at p_tail. */
	if (__builtin_expect(consumer != r->c_head_ || avail - 1 >= mask, 0)) {
		int got = refresh_p_tail(r, l, consumer);
		if (got <= 0)
			return got;
		avail = (unsigned int)got;
	}
	unsigned int k = avail < n ? avail : n;
	unsigned int start = consumer & mask;
	if (k == 1) {
		out[0] = slots[start];
	} else {
		unsigned int first = k <= mask + 1 - start ? k : mask + 1 - start;
		memcpy(out, &slots[start], (size_t)first * sizeof(*out));
		if (k > first)
			memcpy(out + first, &slots[0], (size_t)(k - first) * sizeof(*out));
	}
	tsan_release(&l->ring.c_head);
	/* Slot reads complete before the c_head store that lets the producer
	 * reuse them; pairs with the producer's load_store fence after its
	 * c_head load (refresh_c_head). (ck's dequeue_sc uses fence_store
	 * here; a release fence also orders the reads.) */
	ck_pr_fence_release();
	ck_pr_store_uint(&l->ring.c_head, consumer + k);
	r->c_head_ = consumer + k;
	return (int)k;
}

/* Writes an intent record (see ring.h): relaxed stores, ordered before the
 * take's CAS by the release fence that precedes it. */
static inline void intent_put(sluice_ring_intent_t *in, uint64_t where, uint64_t what)
{
	sl_store_relaxed((_Atomic uint64_t *)(void *)&in->where, where);
	sl_store_relaxed((_Atomic uint64_t *)(void *)&in->what, what);
}

/* Up to n descriptors from a lane that other consumers share, following
 * ck's dequeue_mc: copy, then claim what was copied with one CAS of c_head;
 * a failed CAS means another consumer took them first, and the copy (which
 * may have raced with the producer reusing those slots) is discarded.
 * With an intent record (NULL otherwise: the calls without one compile to
 * the same code as before), each attempt records lane `lane`, position
 * `consumer` and out's place in the caller's buffer (`first`) before its
 * CAS. */
static inline int lane_take_mc(struct sluice_ring_lane *l, const sluice_desc_t *slots,
			       unsigned int mask, sluice_desc_t *out, unsigned n,
			       sluice_ring_intent_t *intent, uint32_t lane, uint32_t first)
{
	unsigned int consumer = ck_pr_load_uint(&l->ring.c_head);
	for (;;) {
		/* Our p_tail snapshot is at least as new as our c_head one;
		 * pairs with nothing in particular: it keeps avail from
		 * being computed from a p_tail older than c_head (ck: "must
		 * represent state relative to our latest consumer snapshot"). */
		ck_pr_fence_load();
		unsigned int producer = ck_pr_load_uint(&l->ring.p_tail);
		unsigned int avail = producer - consumer;
		if (avail == 0)
			return 0;
		if (__builtin_expect(avail > mask, 0)) {
			/* Our c_head snapshot is stale (others took past it and
			 * the producer refilled): copying would only be thrown
			 * away. Take a fresh one. If c_head has not moved, the
			 * pair was consistent and p_tail is out of bounds:
			 * shared memory was scribbled on. */
			unsigned int fresh = ck_pr_load_uint(&l->ring.c_head);
			if (fresh == consumer)
				return SLUICE_ECORRUPT;
			consumer = fresh;
			continue;
		}
		unsigned int k = avail < n ? avail : n;
		/* Slot reads after the p_tail load; pairs with the producer's
		 * fence_store before its p_tail store. */
		ck_pr_fence_load();
		tsan_acquire(&l->ring.p_tail);
		for (unsigned int i = 0; i < k; i++)
			slot_get(&out[i], &slots[(consumer + i) & mask]);
		if (intent != NULL) {
			intent_put(intent, (uint64_t)lane << 32 | consumer,
				   (uint64_t)first << 32 | k);
			if (__builtin_expect(sluice__ring_dequeue_test_hook != NULL, 0))
				sluice__ring_dequeue_test_hook(intent, out, k);
		}
		tsan_release(&l->ring.c_head);
		/* Slot reads (and the intent record) complete before the CAS
		 * that frees them; pairs with the producer's load_store fence
		 * after its c_head load (ck: fence_store_atomic; release is at
		 * least as strong). A recoverer reads the record only after we
		 * are dead. */
		ck_pr_fence_release();
		if (ck_pr_cas_uint_value(&l->ring.c_head, consumer, consumer + k, &consumer))
			return (int)k;
	}
}

static inline int cons_try_spsc(sluice_ring_t *r, sluice_desc_t *out, unsigned n)
{
	struct sluice_ring_lane *l = (struct sluice_ring_lane *)r->lanes_;
	int k = lane_take_sc(r, l, out, n);
	if (k > 0)
		wake_producers(r->hdr_, &r->stats_);
	return k;
}

/* Takes from lanes [lo, hi), starting at *cursor (a fan-in cursor inside
 * the range), into out[0 .. n); returns how many, or a negative code when
 * nothing was taken and a lane was found corrupt. */
static inline int take_range(sluice_ring_t *r, uint32_t lo, uint32_t hi, uint32_t *cursor,
			     sluice_desc_t *out, unsigned n, sluice_ring_intent_t *intent,
			     uint32_t first)
{
	uint32_t i = *cursor >= lo && *cursor < hi ? *cursor : lo;
	unsigned got = 0;
	int err = 0;
	for (uint32_t scanned = lo; scanned < hi && got < n; scanned++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		/* Single or bulk, always our own take with the handle's
		 * validated mask: ck's dequeue re-reads the lane's mask from
		 * shared memory on every call, so a process scribbling on it
		 * after open could make ck copy a slot outside the lane (found
		 * by fuzz_ring_open's scribble mode, docs/FUZZING.md). */
		int k = lane_take_mc(l, lane_slots(l), r->mask_, out + got, n - got, intent, i,
				     first + got);
		if (++i == hi)
			i = lo;
		if (k > 0)
			got += (unsigned)k;
		else if (k < 0)
			err = k;
	}
	*cursor = i;
	return got > 0 ? (int)got : err;
}

/* With priority lanes (sluice_ring_set_priority): the high lanes first,
 * unless `burst` calls in a row took high descriptors and none normal;
 * then the normal lanes first, once. */
static inline int cons_try_mpmc(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
				sluice_ring_intent_t *intent, uint32_t first)
{
	const uint32_t nlanes = r->nlanes_, split = r->first_high_;
	int got;
	if (split == 0) {
		got = take_range(r, 0, nlanes, &r->next_lane_, out, n, intent, first);
	} else {
		bool normal_first = r->high_run_ >= r->burst_;
		uint32_t *c_lo = &r->next_lane_, *c_hi = &r->next_high_;
		int a = normal_first ? take_range(r, 0, split, c_lo, out, n, intent, first)
				     : take_range(r, split, nlanes, c_hi, out, n, intent, first);
		unsigned ga = a > 0 ? (unsigned)a : 0;
		int b = ga >= n ? 0
		        : normal_first ? take_range(r, split, nlanes, c_hi, out + ga, n - ga, intent, first + ga)
				       : take_range(r, 0, split, c_lo, out + ga, n - ga, intent, first + ga);
		unsigned gb = b > 0 ? (unsigned)b : 0;
		unsigned normal = normal_first ? ga : gb, high = normal_first ? gb : ga;
		if (normal > 0)
			r->high_run_ = 0;
		else if (high > 0)
			r->high_run_++;
		got = ga + gb > 0 ? (int)(ga + gb) : (a < 0 ? a : b);
	}
	if (got > 0)
		wake_producers(r->hdr_, &r->stats_);
	return got;
}

/* ---- waiting ------------------------------------------------------------ */

enum try_op { TRY_PUT_SPSC, TRY_PUT_MPMC, TRY_TAKE_SPSC, TRY_TAKE_MPMC, TRY_TAKE_MPMC_INTENT };

/* The handle of a TRY_TAKE_MPMC_INTENT: the ring and where to record. */
struct intent_take {
	sluice_ring_t *r;
	sluice_ring_intent_t *intent;
	uint32_t first;
};

static inline int prod_try(sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n)
{
	int k = n == 1 ? lane_put_one(p, d) : lane_put_bulk(p, d, n);
	if (k > 0)
		wake_consumers(p->hdr_, p->efd_, &p->stats_);
	return k;
}

static int try_op(enum try_op op, void *h, void *buf, unsigned n)
{
	switch (op) {
	case TRY_PUT_SPSC:
	case TRY_PUT_MPMC:
		return prod_try(h, buf, n);
	case TRY_TAKE_SPSC:
		return cons_try_spsc(h, buf, n);
	case TRY_TAKE_MPMC:
		return cons_try_mpmc(h, buf, n, NULL, 0);
	case TRY_TAKE_MPMC_INTENT: {
		struct intent_take *it = h;
		return cons_try_mpmc(it->r, buf, n, it->intent, it->first);
	}
	}
	return SLUICE_EINVAL;
}

static inline void timespec_from_ns(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* The blocking forms' slow path, entered after one try found nothing:
 * spin or poll as the handle's mode says, then sleep on eventcount `ec`
 * (see the protocol at the top of this file). Returns what a try returned
 * (> 0 moved, < 0 an error) or -ETIMEDOUT. EINTR from a signal is absorbed:
 * the loop looks again and goes on until the deadline. */
__attribute__((noinline)) static int wait_loop(enum try_op op, void *h, void *buf, unsigned n,
						uint64_t timeout_ns, struct sluice_ring_ec *ec,
						uint32_t wait, uint64_t spin_ns,
						sluice_ring_stats_t *st)
{
	uint64_t start = now_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + timeout_ns;
	int k;

	if (wait == SLUICE_RING_BUSY_POLL) {
		for (unsigned empty = 1;; empty++) {
			k = try_op(op, h, buf, n);
			if (k != 0)
				return k;
			if (empty % BUSY_POLL_YIELD_AFTER == 0) {
				/* More pollers than cores collapse without this
				 * (BASELINES.md: 0.5 M/s instead of 14.5). */
				sched_yield();
				st->yields++;
				if (now_ns() >= deadline)
					break;
			} else {
				sl_cpu_relax();
			}
		}
		st->timeouts++;
		return SLUICE_ETIMEDOUT;
	}

	if (wait == SLUICE_RING_SPIN_SLEEP && spin_ns > 0) {
		uint64_t spin_end = spin_ns > deadline - start ? deadline : start + spin_ns;
		for (unsigned i = 1;; i++) {
			sl_cpu_relax();
			k = try_op(op, h, buf, n);
			if (k != 0)
				return k;
			if (i % 16 != 0)
				continue;
			uint64_t now = now_ns();
			if (now >= spin_end)
				break;
			/* With more runnable processes than CPUs, the one we
			 * wait for may be off its CPU: give ours up now and
			 * then (BASELINES.md: busy-polling 2x2 collapses from
			 * 14.5 to 0.5 M/s without it). Not in the first
			 * microseconds, where the answer usually comes. */
			if (i % SPIN_YIELD_EVERY == 0 && now - start >= SPIN_YIELD_AFTER_NS) {
				sched_yield();
				st->yields++;
			}
		}
	}

	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			break;
		/* The futex value first, then the flag (an eventcount's
		 * prepare_wait). A waker that clears our flag bumps seq after,
		 * so FUTEX_WAIT(seq) cannot sleep through that wake-up even
		 * when what it announced went to another consumer. (Read after
		 * the flag, a bump by the waker that cleared it could already
		 * be in `seq`: we slept with the flag cleared and nobody left
		 * to wake us.) Acquire: keeps the flag store after this load,
		 * and pairs with the waker's release increment. */
		uint32_t seq = sl_load_acquire(&ec->seq);
		sl_store_relaxed(&ec->waiting, 1);
		/* Registration before the look below; pairs with waker_barrier
		 * between a waker's counter store and its flag load. false: a
		 * registered waker may miss the flag, so sleep a bounded time. */
		bool ordered = sleeper_barrier();
		/* Found work: leave the flag set; the next waker clears it at
		 * the cost of one needless wake-up (see the top of the file). */
		k = try_op(op, h, buf, n);
		if (k != 0)
			return k;
		struct timespec ts, *tsp = NULL;
		if (deadline != UINT64_MAX || !ordered) {
			now = now_ns();
			if (now >= deadline)
				break;
			uint64_t rel = deadline - now;
			if (!ordered && rel > SLEEP_RECHECK_NS)
				rel = SLEEP_RECHECK_NS;
			timespec_from_ns(&ts, rel);
			tsp = &ts;
		}
		int rc = futex_wait(&ec->seq, seq, tsp);
		if (rc == SLUICE_EAGAIN)
			st->futex_eagain++;
		else
			st->futex_waits++;
		k = try_op(op, h, buf, n);
		if (k != 0)
			return k;
	}
	st->timeouts++;
	return SLUICE_ETIMEDOUT;
}

/* ---- public producer calls --------------------------------------------- */

#define CHECK_PRODUCER(p, kind, n)                                              \
	do {                                                                    \
		if (__builtin_expect((p)->kind_ != (kind), 0))                  \
			return SLUICE_EINVAL;                                   \
		if (__builtin_expect((n) == 0, 0))                              \
			return 0;                                               \
	} while (0)

static inline int put_blocking(sluice_ring_producer_t *p, enum try_op op, const sluice_desc_t *d,
			       unsigned n, uint64_t timeout_ns)
{
	int k = prod_try(p, d, n);
	if (__builtin_expect(k != 0, 1))
		return k;
	if (timeout_ns == 0) {
		p->stats_.timeouts++;
		return SLUICE_ETIMEDOUT;
	}
	struct sluice_ring_hdr *h = p->hdr_;
	return wait_loop(op, p, (void *)d, n, timeout_ns, &h->not_full, p->wait_, p->spin_ns_,
			 &p->stats_);
}

int sluice_ring_try_enqueue_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d)
{
	CHECK_PRODUCER(p, SLUICE_RING_SPSC, 1);
	return prod_try(p, d, 1);
}

int sluice_ring_try_enqueue_bulk_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d,
				      unsigned n)
{
	CHECK_PRODUCER(p, SLUICE_RING_SPSC, n);
	return prod_try(p, d, n);
}

int sluice_ring_enqueue_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d,
			     uint64_t timeout_ns)
{
	CHECK_PRODUCER(p, SLUICE_RING_SPSC, 1);
	return put_blocking(p, TRY_PUT_SPSC, d, 1, timeout_ns);
}

int sluice_ring_enqueue_bulk_spsc(sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n,
				  uint64_t timeout_ns)
{
	CHECK_PRODUCER(p, SLUICE_RING_SPSC, n);
	return put_blocking(p, TRY_PUT_SPSC, d, n, timeout_ns);
}

int sluice_ring_try_enqueue_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d)
{
	CHECK_PRODUCER(p, SLUICE_RING_MPMC, 1);
	return prod_try(p, d, 1);
}

int sluice_ring_try_enqueue_bulk_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d,
				      unsigned n)
{
	CHECK_PRODUCER(p, SLUICE_RING_MPMC, n);
	return prod_try(p, d, n);
}

int sluice_ring_enqueue_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d,
			     uint64_t timeout_ns)
{
	CHECK_PRODUCER(p, SLUICE_RING_MPMC, 1);
	return put_blocking(p, TRY_PUT_MPMC, d, 1, timeout_ns);
}

int sluice_ring_enqueue_bulk_mpmc(sluice_ring_producer_t *p, const sluice_desc_t *d, unsigned n,
				  uint64_t timeout_ns)
{
	CHECK_PRODUCER(p, SLUICE_RING_MPMC, n);
	return put_blocking(p, TRY_PUT_MPMC, d, n, timeout_ns);
}

/* ---- public consumer calls --------------------------------------------- */

#define CHECK_CONSUMER(r, kind, n)                                              \
	do {                                                                    \
		if (__builtin_expect((r)->kind_ != (kind), 0))                  \
			return SLUICE_EINVAL;                                   \
		if (__builtin_expect((n) == 0, 0))                              \
			return 0;                                               \
	} while (0)

static inline int take_blocking(sluice_ring_t *r, enum try_op op, sluice_desc_t *out, unsigned n,
				uint64_t timeout_ns)
{
	int k = op == TRY_TAKE_SPSC ? cons_try_spsc(r, out, n) : cons_try_mpmc(r, out, n, NULL, 0);
	if (__builtin_expect(k != 0, 1))
		return k;
	if (timeout_ns == 0) {
		r->stats_.timeouts++;
		return SLUICE_ETIMEDOUT;
	}
	return wait_loop(op, r, out, n, timeout_ns, &ring_hdr(r)->not_empty, r->wait_,
			 r->spin_ns_, &r->stats_);
}

int sluice_ring_try_dequeue_spsc(sluice_ring_t *r, sluice_desc_t *out)
{
	CHECK_CONSUMER(r, SLUICE_RING_SPSC, 1);
	return cons_try_spsc(r, out, 1);
}

int sluice_ring_try_dequeue_bulk_spsc(sluice_ring_t *r, sluice_desc_t *out, unsigned n)
{
	CHECK_CONSUMER(r, SLUICE_RING_SPSC, n);
	return cons_try_spsc(r, out, n);
}

int sluice_ring_dequeue_spsc(sluice_ring_t *r, sluice_desc_t *out, uint64_t timeout_ns)
{
	CHECK_CONSUMER(r, SLUICE_RING_SPSC, 1);
	return take_blocking(r, TRY_TAKE_SPSC, out, 1, timeout_ns);
}

int sluice_ring_dequeue_bulk_spsc(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
				  uint64_t timeout_ns)
{
	CHECK_CONSUMER(r, SLUICE_RING_SPSC, n);
	return take_blocking(r, TRY_TAKE_SPSC, out, n, timeout_ns);
}

int sluice_ring_try_dequeue_mpmc(sluice_ring_t *r, sluice_desc_t *out)
{
	CHECK_CONSUMER(r, SLUICE_RING_MPMC, 1);
	return cons_try_mpmc(r, out, 1, NULL, 0);
}

int sluice_ring_try_dequeue_bulk_mpmc(sluice_ring_t *r, sluice_desc_t *out, unsigned n)
{
	CHECK_CONSUMER(r, SLUICE_RING_MPMC, n);
	return cons_try_mpmc(r, out, n, NULL, 0);
}

int sluice_ring_dequeue_mpmc(sluice_ring_t *r, sluice_desc_t *out, uint64_t timeout_ns)
{
	CHECK_CONSUMER(r, SLUICE_RING_MPMC, 1);
	return take_blocking(r, TRY_TAKE_MPMC, out, 1, timeout_ns);
}

int sluice_ring_dequeue_bulk_mpmc(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
				  uint64_t timeout_ns)
{
	CHECK_CONSUMER(r, SLUICE_RING_MPMC, n);
	return take_blocking(r, TRY_TAKE_MPMC, out, n, timeout_ns);
}

int sluice_ring_dequeue_bulk_mpmc_intent(sluice_ring_t *r, sluice_desc_t *out, unsigned n,
					 uint64_t timeout_ns, sluice_ring_intent_t *intent,
					 uint32_t first)
{
	CHECK_CONSUMER(r, SLUICE_RING_MPMC, n);
	if (intent == NULL)
		return SLUICE_EINVAL;
	int k = cons_try_mpmc(r, out, n, intent, first);
	if (__builtin_expect(k != 0, 1))
		return k;
	if (timeout_ns == 0) {
		r->stats_.timeouts++;
		return SLUICE_ETIMEDOUT;
	}
	struct intent_take it = {.r = r, .intent = intent, .first = first};
	return wait_loop(TRY_TAKE_MPMC_INTENT, &it, out, n, timeout_ns, &ring_hdr(r)->not_empty,
			 r->wait_, r->spin_ns_, &r->stats_);
}

void sluice_ring_intent_clear(sluice_ring_intent_t *intent)
{
	sl_store_relaxed((_Atomic uint64_t *)(void *)&intent->what, 0);
}

uint32_t sluice_ring_intent_taken(const sluice_ring_t *r, const sluice_ring_intent_t *intent)
{
	/* Relaxed: the writer is gone; what it stored reached us through
	 * whatever told us so (waitid, a pidfd). */
	uint64_t where = sl_load_relaxed((_Atomic uint64_t *)(void *)&intent->where);
	uint64_t what = sl_load_relaxed((_Atomic uint64_t *)(void *)&intent->what);
	uint32_t first = (uint32_t)(what >> 32), count = (uint32_t)what;
	uint32_t lane = (uint32_t)(where >> 32), pos = (uint32_t)where;
	if (count == 0 || lane >= r->nlanes_)
		return first;
	struct sluice_ring_lane *l = lane_at(r, lane);
	unsigned int c_head = ck_pr_load_uint(&l->ring.c_head);
	/* Moved past pos (counters wrap: compare the distance): the take
	 * happened, or another consumer's did. */
	if ((int32_t)(c_head - pos) > 0)
		return first + count;
	return first;
}

/* ---- eventfd ------------------------------------------------------------ */

int sluice_ring_set_eventfd(sluice_ring_t *r, int efd)
{
	if (r == NULL || efd < -1)
		return SLUICE_EINVAL;
	r->efd_ = efd;
	return 0;
}

int sluice_ring_producer_set_eventfd(sluice_ring_producer_t *p, int efd)
{
	if (p == NULL || efd < -1)
		return SLUICE_EINVAL;
	p->efd_ = efd;
	return 0;
}

static bool ring_nonempty(const sluice_ring_t *r)
{
	for (uint32_t i = 0; i < r->nlanes_; i++) {
		struct sluice_ring_lane *l = lane_at(r, i);
		unsigned int c = ck_pr_load_uint(&l->ring.c_head);
		unsigned int p = ck_pr_load_uint(&l->ring.p_tail);
		/* Impossible counters (p - c > mask) hold nothing to take. */
		if (p - c - 1 < r->mask_)
			return true;
	}
	return false;
}

int sluice_ring_arm(sluice_ring_t *r)
{
	if (r == NULL || r->hdr_ == NULL || r->efd_ < 0)
		return SLUICE_EINVAL;
	struct sluice_ring_hdr *h = ring_hdr(r);
	sl_store_relaxed(&h->not_empty.armed, 1);
	r->armed_ = true;
	/* Arming before the look at the lanes; pairs with waker_barrier
	 * between a producer's p_tail store and its armed load. */
	bool ordered = sleeper_barrier();
	if (ring_nonempty(r))
		return 1;
	/* A registered producer may have published without seeing the
	 * arming: the caller must look again soon (ring.h). */
	return ordered ? 0 : SLUICE_RING_ARMED_POLL;
}

void sluice_ring_disarm(sluice_ring_t *r)
{
	if (r == NULL || r->hdr_ == NULL || !r->armed_)
		return;
	sl_store_relaxed(&ring_hdr(r)->not_empty.armed, 0);
	r->armed_ = false;
}
