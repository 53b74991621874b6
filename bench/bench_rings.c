/* The ring benchmark: sluice's descriptor rings against their baselines,
 * measured in one run between real processes, one pinned to each CPU,
 * sharing memfd mappings, moving 64-byte descriptors. The baselines: raw
 * ck_ring (the ceiling), a bare futex hand-off (the floor for sleeping
 * transports), pipes, Unix stream and seqpacket sockets, POSIX message
 * queues, and a mutex + condvar queue in shared memory.
 *
 * For each transport:
 *   - throughput: one producer streams descriptors to one consumer for a
 *     fixed time per round; descriptors/s, median of rounds with min/max;
 *   - round trip: a client sends a request and waits for the reply on a
 *     second channel; every round trip is timed into a histogram
 *     (p50/p90/p99/p99.9/max), warm-ups excluded;
 *   - MPMC 2x2 (transports that allow several producers and consumers):
 *     2 producers and 2 consumers, 4 processes on 2 CPUs, throughput;
 *   - idle (sluice transports and a busy-poll reference): a consumer waits
 *     for a descriptor, and a client waits for its reply, for N seconds;
 *     the CPU time each burns, as % of a core.
 * It then reports the ratios the ring goals are stated in, each computed
 * from figures of this run. Goals are informational: the exit code is 0
 * unless something actually failed (a child crashed, a descriptor was lost
 * or reordered, a system call failed, a test hung).
 *
 * Rounds are outermost: round 1 of every transport, then round 2 of every
 * transport, and so on; each test round forks fresh processes, which warm
 * up before the measured phase.
 *
 * A transport is a small table of functions over a one-way channel (setup in
 * the parent before fork; open, send, recv in the children; teardown in the
 * parent), so adding one is a struct and four functions. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ck_ring.h>
#include <sluice/arena.h>
#include <sluice/desc.h>
#include <sluice/ring.h>

#include "base/atomic.h"
#include "bench/common/clock.h"
#include "bench/common/cpu.h"
#include "bench/common/hist.h"
#include "bench/common/json.h"
#include "bench/common/metrics.h"
#include "bench/common/proc.h"
#include "bench/common/table.h"

/* ------------------------------------------------------------------ */
/* What moves: sluice's 64-byte task descriptor, for every transport, so
 * each one copies the same bytes. The harness uses three of its fields:
 * task_id (a per-producer sequence number, from 0, strictly increasing),
 * flags (DESC_DATA or DESC_STOP) and client (the producer's index). */

enum { DESC_DATA = 0, DESC_STOP = 1 };

/* ------------------------------------------------------------------ */
/* Configuration. */

#define MAX_ROUNDS 64
#define MAX_PROCS 4

enum {
	TEST_TPUT = 1u << 0,
	TEST_RTT = 1u << 1,
	TEST_MPMC = 1u << 2,
	TEST_IDLE = 1u << 3,
	TEST_ALL = 0xf,
};

struct cfg {
	unsigned rounds;     /* rounds of every test */
	uint64_t round_ns;   /* measured time of one round */
	uint64_t warmup_ns;  /* warm-up before it, same processes, not reported */
	uint64_t idle_ns;    /* idle test length */
	uint64_t spin_ns;    /* spin before sleeping, spin-then-sleep modes */
	unsigned ring_size;  /* ring slots (power of two) */
	unsigned tests;      /* TEST_* */
	const char *only;    /* comma-separated transport names, or NULL */
	const char *json;    /* output path, or NULL */
	const char *metrics; /* figures file for sluice-bench, or NULL */
	bool quick;
	bool markdown;
	bool verbose;        /* print every round's figures */
	char command[512];   /* the command line, for the report */
	/* Noise: what else ran on the machine during the rounds, as % of all
	 * its CPUs (busy time not ours), and the hypervisor's steal. */
	double others_pct, steal_pct;
	int cpu[2];          /* the two CPUs used */
};

/* ------------------------------------------------------------------ */
/* Transports. */

enum role { ROLE_PRODUCER, ROLE_CONSUMER };

enum {
	CAP_MULTI = 1u << 0, /* several producers and consumers on one channel */
	CAP_IDLE = 1u << 1,  /* run the idle test */
};

struct transport {
	const char *name;
	const char *what;  /* one line for the report */
	unsigned caps;     /* CAP_* */
	long arg;          /* the variant: spin ns, wait mode, ring kind */
	/* Parent, before fork: makes one one-way channel for `nprod`
	 * producers and `ncons` consumers. Returns 0 and the channel in *out,
	 * or a negative code. */
	int (*setup)(const struct transport *t, const struct cfg *c, unsigned nprod,
		     unsigned ncons, void **out);
	/* Child (or parent, in the idle test), after fork, before its first
	 * send/recv: takes a role on the channel. May be NULL. */
	int (*open)(void *ch, enum role role, unsigned idx);
	/* Blocks until `d` is sent / a descriptor is received. 0 or negative. */
	int (*send)(void *ch, const sluice_desc_t *d);
	int (*recv)(void *ch, sluice_desc_t *d);
	/* Parent, after every child exited. */
	void (*teardown)(void *ch);
};

/* --- raw ck_ring, busy-poll: the ceiling ---------------------------- */

CK_RING_PROTOTYPE(bdesc, sluice_desc)

struct ckr_shm {
	ck_ring_t ring;
	char pad[CK_MD_CACHELINE * 3 - sizeof(ck_ring_t)];
	sluice_desc_t buf[];
};

struct ckr_chan {
	struct ckr_shm *shm;
	size_t len;
};

static int ckr_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		     unsigned ncons, void **out)
{
	struct ckr_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->len = sizeof(struct ckr_shm) + (size_t)c->ring_size * sizeof(sluice_desc_t);
	ch->shm = bench_shm_map(ch->len);
	if (!ch->shm) {
		free(ch);
		return -ENOMEM;
	}
	ck_ring_init(&ch->shm->ring, c->ring_size);
	*out = ch;
	return 0;
}

static void ckr_teardown(void *p)
{
	struct ckr_chan *ch = p;
	bench_shm_unmap(ch->shm, ch->len);
	free(ch);
}

static int ckr_send_spsc(void *p, const sluice_desc_t *d)
{
	struct ckr_chan *ch = p;
	while (!ck_ring_enqueue_spsc_bdesc(&ch->shm->ring, ch->shm->buf, (sluice_desc_t *)d))
		sl_cpu_relax();
	return 0;
}

static int ckr_recv_spsc(void *p, sluice_desc_t *d)
{
	struct ckr_chan *ch = p;
	while (!ck_ring_dequeue_spsc_bdesc(&ch->shm->ring, ch->shm->buf, d))
		sl_cpu_relax();
	return 0;
}

static int ckr_send_mpmc(void *p, const sluice_desc_t *d)
{
	struct ckr_chan *ch = p;
	while (!ck_ring_enqueue_mpmc_bdesc(&ch->shm->ring, ch->shm->buf, (sluice_desc_t *)d))
		sl_cpu_relax();
	return 0;
}

static int ckr_recv_mpmc(void *p, sluice_desc_t *d)
{
	struct ckr_chan *ch = p;
	while (!ck_ring_dequeue_mpmc_bdesc(&ch->shm->ring, ch->shm->buf, d))
		sl_cpu_relax();
	return 0;
}

/* --- kernel transports: pipe, Unix sockets --------------------------- */

struct fd_chan {
	int fd[2]; /* [0] read end, [1] write end */
};

static int fd_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		    unsigned ncons, void **out)
{
	struct fd_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	int rc = t->arg == 0 ? pipe2(ch->fd, O_CLOEXEC)
			     : socketpair(AF_UNIX, (int)t->arg | SOCK_CLOEXEC, 0, ch->fd);
	if (rc != 0) {
		rc = -errno;
		free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

static void fd_teardown(void *p)
{
	struct fd_chan *ch = p;
	close(ch->fd[0]);
	close(ch->fd[1]);
	free(ch);
}

/* One write per descriptor; a short write (never seen for 64 bytes on a
 * pipe or a Unix socket) is completed. */
static int fd_send(void *p, const sluice_desc_t *d)
{
	struct fd_chan *ch = p;
	const char *b = (const char *)d;
	size_t done = 0;
	while (done < sizeof(*d)) {
		ssize_t n = write(ch->fd[1], b + done, sizeof(*d) - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int fd_recv(void *p, sluice_desc_t *d)
{
	struct fd_chan *ch = p;
	char *b = (char *)d;
	size_t done = 0;
	while (done < sizeof(*d)) {
		ssize_t n = read(ch->fd[0], b + done, sizeof(*d) - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		done += (size_t)n;
	}
	return 0;
}

/* --- POSIX message queue --------------------------------------------- */

struct mq_chan {
	mqd_t q;
};

static int mq_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		    unsigned ncons, void **out)
{
	static unsigned serial;
	char name[64];
	snprintf(name, sizeof(name), "/sluice-bench-%d-%u", (int)getpid(), serial++);
	/* 64 messages deep if allowed (root may exceed fs.mqueue.msg_max),
	 * else the system's limit. */
	long depths[] = {64, 10};
	mqd_t q = (mqd_t)-1;
	for (unsigned i = 0; i < 2 && q == (mqd_t)-1; i++) {
		struct mq_attr a = {.mq_maxmsg = depths[i], .mq_msgsize = sizeof(sluice_desc_t)};
		q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (q == (mqd_t)-1 && errno != EINVAL)
			return -errno;
	}
	if (q == (mqd_t)-1)
		return -errno;
	mq_unlink(name); /* the descriptor, inherited by fork, keeps it */
	struct mq_chan *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		mq_close(q);
		return -ENOMEM;
	}
	ch->q = q;
	*out = ch;
	return 0;
}

static void mq_teardown(void *p)
{
	struct mq_chan *ch = p;
	mq_close(ch->q);
	free(ch);
}

static int mq_send_(void *p, const sluice_desc_t *d)
{
	struct mq_chan *ch = p;
	while (mq_send(ch->q, (const char *)d, sizeof(*d), 0) != 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int mq_recv_(void *p, sluice_desc_t *d)
{
	struct mq_chan *ch = p;
	for (;;) {
		ssize_t n = mq_receive(ch->q, (char *)d, sizeof(*d), NULL);
		if (n == (ssize_t)sizeof(*d))
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno != EINTR)
			return -errno;
	}
}

/* --- mutex + condvar queue in shared memory ---------------------------
 *
 * What a programmer without lock-free rings would write: a bounded circular
 * buffer of descriptors guarded by one process-shared pthread mutex, with a
 * condition variable for "not empty" and one for "not full". A sender
 * waits while the buffer is full, copies the descriptor in and signals
 * "not empty"; a receiver mirrors it. glibc's pthread_cond_signal makes no
 * system call when nobody waits. Any number of producers and consumers. */

struct mc_shm {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	uint64_t head; /* next slot to read; under lock */
	uint64_t tail; /* next slot to write; under lock */
	sluice_desc_t buf[];
};

struct mc_chan {
	struct mc_shm *shm;
	size_t len;
	uint64_t cap;
};

static int mc_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		    unsigned ncons, void **out)
{
	struct mc_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->cap = c->ring_size;
	ch->len = sizeof(struct mc_shm) + (size_t)ch->cap * sizeof(sluice_desc_t);
	ch->shm = bench_shm_map(ch->len);
	if (!ch->shm) {
		free(ch);
		return -ENOMEM;
	}
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	int rc = pthread_mutexattr_init(&ma);
	if (rc == 0)
		rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutex_init(&ch->shm->lock, &ma);
	if (rc == 0)
		rc = pthread_condattr_init(&ca);
	if (rc == 0)
		rc = pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_cond_init(&ch->shm->not_empty, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&ch->shm->not_full, &ca);
	if (rc != 0) {
		bench_shm_unmap(ch->shm, ch->len);
		free(ch);
		return -rc;
	}
	*out = ch;
	return 0;
}

static void mc_teardown(void *p)
{
	struct mc_chan *ch = p;
	bench_shm_unmap(ch->shm, ch->len);
	free(ch);
}

static int mc_send(void *p, const sluice_desc_t *d)
{
	struct mc_chan *ch = p;
	struct mc_shm *s = ch->shm;
	int rc = pthread_mutex_lock(&s->lock);
	while (rc == 0 && s->tail - s->head == ch->cap)
		rc = pthread_cond_wait(&s->not_full, &s->lock);
	if (rc != 0) {
		pthread_mutex_unlock(&s->lock);
		return -rc;
	}
	s->buf[s->tail % ch->cap] = *d;
	s->tail++;
	pthread_cond_signal(&s->not_empty);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int mc_recv(void *p, sluice_desc_t *d)
{
	struct mc_chan *ch = p;
	struct mc_shm *s = ch->shm;
	int rc = pthread_mutex_lock(&s->lock);
	while (rc == 0 && s->tail == s->head)
		rc = pthread_cond_wait(&s->not_empty, &s->lock);
	if (rc != 0) {
		pthread_mutex_unlock(&s->lock);
		return -rc;
	}
	*d = s->buf[s->head % ch->cap];
	s->head++;
	pthread_cond_signal(&s->not_full);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* --- bare futex hand-off: the floor for sleeping transports ----------
 *
 * No ring: one descriptor slot and two counters, each a futex word with
 * one waiter. The producer waits until the consumer has taken the previous
 * descriptor (acked == sent), writes the slot and bumps `full`; the consumer
 * waits for `full` to move, copies the slot and bumps `acked`. A waiter
 * spins for arg ns (0: not at all), then announces itself in `sleeping`
 * and sleeps; a publisher wakes only when the flag is set. Only the waiter
 * writes its flag: it sets it before each sleep and clears it once it has
 * seen the word move. (A waker that cleared the flag could do so late, after
 * the waiter had set it again for its next sleep, and that sleep's wake-up
 * would be lost: an early version of this code hung that way.) */

/* Waits until *w != old: spins for up to spin_ns first, reading the clock
 * every 32 polls, then returns false (still unchanged) or true. */
static bool spin_until_changed(_Atomic uint32_t *w, uint32_t old, uint64_t spin_ns)
{
	if (spin_ns == 0)
		return false;
	uint64_t deadline = 0;
	for (unsigned i = 1;; i++) {
		/* Acquire: pairs with the release in fx_publish(). */
		if (sl_load_acquire(w) != old)
			return true;
		sl_cpu_relax();
		if ((i & 31) == 0) {
			uint64_t now = bench_now_ns();
			if (deadline == 0)
				deadline = now + spin_ns;
			else if (now >= deadline)
				return false;
		}
	}
}

struct fx_word {
	_Atomic uint32_t seq;
	_Atomic uint32_t sleeping;
	char pad[56];
};

struct fx_shm {
	struct fx_word full;  /* descriptors published; the consumer waits on it */
	struct fx_word acked; /* descriptors taken; the producer waits on it */
	sluice_desc_t slot;
};

struct fx_chan {
	struct fx_shm *shm;
	uint64_t spin_ns;
	uint32_t mine; /* process-local: descriptors this side has handled */
};

static int fx_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		    unsigned ncons, void **out)
{
	struct fx_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->shm = bench_shm_map(sizeof(struct fx_shm));
	if (!ch->shm) {
		free(ch);
		return -ENOMEM;
	}
	ch->spin_ns = t->arg < 0 ? c->spin_ns : (uint64_t)t->arg;
	*out = ch;
	return 0;
}

static void fx_teardown(void *p)
{
	struct fx_chan *ch = p;
	bench_shm_unmap(ch->shm, sizeof(struct fx_shm));
	free(ch);
}

/* Waits until w->seq != old. */
static int fx_wait(struct fx_word *w, uint32_t old, uint64_t spin_ns)
{
	if (spin_until_changed(&w->seq, old, spin_ns))
		return 0;
	sl_store_relaxed(&w->sleeping, 1);
	for (;;) {
		/* Full fence between announcing the sleep and re-reading seq;
		 * pairs with the fence in fx_publish() between its store of seq
		 * and its load of `sleeping` (Dekker: one of the two sees the
		 * other's store, so no wake-up is lost). */
		sl_fence_seq_cst();
		/* Acquire: pairs with the release in fx_publish(). */
		if (sl_load_acquire(&w->seq) != old)
			break;
		int rc = bench_futex_wait(&w->seq, old);
		if (rc != 0 && rc != -EINTR) {
			sl_store_relaxed(&w->sleeping, 0);
			return rc;
		}
	}
	sl_store_relaxed(&w->sleeping, 0);
	return 0;
}

static void fx_publish(struct fx_word *w, uint32_t v)
{
	/* Release: the slot (or the slot's emptiness) before the counter;
	 * pairs with the acquire loads in fx_wait(). */
	sl_store_release(&w->seq, v);
	/* Pairs with the fence in fx_wait(). */
	sl_fence_seq_cst();
	if (sl_load_relaxed(&w->sleeping))
		bench_futex_wake(&w->seq, 1);
}

static int fx_send(void *p, const sluice_desc_t *d)
{
	struct fx_chan *ch = p;
	/* Acquire: pairs with the consumer's release of acked, so its copy
	 * of the slot is done before the slot is overwritten. */
	if (sl_load_acquire(&ch->shm->acked.seq) != ch->mine) {
		int rc = fx_wait(&ch->shm->acked, ch->mine - 1, ch->spin_ns);
		if (rc != 0)
			return rc;
	}
	ch->shm->slot = *d;
	fx_publish(&ch->shm->full, ++ch->mine);
	return 0;
}

static int fx_recv(void *p, sluice_desc_t *d)
{
	struct fx_chan *ch = p;
	int rc = fx_wait(&ch->shm->full, ch->mine, ch->spin_ns);
	if (rc != 0)
		return rc;
	*d = ch->shm->slot;
	fx_publish(&ch->shm->acked, ++ch->mine);
	return 0;
}

/* --- sluice's rings ---------------------------------------------------- */

/* The transports the goals are computed from. */
#define GOAL_BUSY_SPSC "sluice-spsc-busy"
#define GOAL_SPIN "sluice-spsc-spin"
#define GOAL_SLEEP "sluice-spsc-sleep"
#define GOAL_MPMC "sluice-mpmc-spin"
#define GOAL_IDLE "sluice-spsc-spin"

/* Each channel is a ring in an arena of its own (sluice_arena_create: a
 * sealed memfd, inherited by the children through fork). A producer claims
 * a lane with its pid as owner. Blocking calls wait without a deadline, in
 * the handle's wait mode (the transport's arg) with cfg.spin_ns of spin. */

#define SL_REGION 1u
#define SL_ARG(kind, wait) ((long)(kind) * 16 + (wait))

struct sl_chan {
	sluice_arena_t *arena;
	void *mem;
	uint64_t size;
	unsigned wait;
	uint64_t spin_ns;
	sluice_ring_t r;          /* process-local, filled by open */
	sluice_ring_producer_t p; /* process-local, filled by open (producer) */
};

static int sl_setup(const struct transport *t, const struct cfg *c, unsigned nprod,
		    unsigned ncons, void **out)
{
	unsigned kind = (unsigned)(t->arg / 16);
	sluice_ring_config_t rc = {.size_of = sizeof(rc), .kind = kind,
				   .capacity = c->ring_size,
				   .lanes = kind == SLUICE_RING_MPMC ? nprod : 1,
				   .wait = (uint32_t)(t->arg % 16), .spin_ns = c->spin_ns};
	int64_t size = sluice_ring_mem_size(&rc);
	if (size < 0)
		return (int)size;
	struct sl_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "bench-ring", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = SL_REGION, .size = (uint64_t)size};
	int err = sluice_arena_create(&o, &ch->arena);
	uint64_t off = 0;
	if (err == 0)
		err = sluice_arena_region(ch->arena, SL_REGION, &off, &ch->size);
	if (err == 0) {
		ch->mem = (char *)sluice_arena_base(ch->arena) + off;
		err = sluice_ring_format(ch->mem, ch->size, &rc);
	}
	if (err != 0) {
		sluice_arena_destroy(ch->arena);
		free(ch);
		return err;
	}
	ch->wait = rc.wait;
	ch->spin_ns = c->spin_ns;
	*out = ch;
	return 0;
}

static int sl_open(void *p, enum role role, unsigned idx)
{
	struct sl_chan *ch = p;
	int err = sluice_ring_open(&ch->r, ch->mem, ch->size);
	if (err == 0)
		err = sluice_ring_set_wait(&ch->r, ch->wait, ch->spin_ns);
	if (err == 0 && role == ROLE_PRODUCER)
		err = sluice_ring_producer_claim(&ch->p, &ch->r, (uint32_t)getpid());
	if (err == 0 && role == ROLE_PRODUCER)
		err = sluice_ring_producer_set_wait(&ch->p, ch->wait, ch->spin_ns);
	return err;
}

static void sl_teardown(void *p)
{
	struct sl_chan *ch = p;
	sluice_arena_destroy(ch->arena);
	free(ch);
}

/* A blocking call moved `rc` descriptors: one, or a negative code. */
static int sl_one(int rc)
{
	return rc == 1 ? 0 : rc < 0 ? rc : -EIO;
}

static int sl_send_spsc(void *p, const sluice_desc_t *d)
{
	struct sl_chan *ch = p;
	return sl_one(sluice_ring_enqueue_spsc(&ch->p, d, SLUICE_RING_FOREVER));
}

static int sl_recv_spsc(void *p, sluice_desc_t *d)
{
	struct sl_chan *ch = p;
	return sl_one(sluice_ring_dequeue_spsc(&ch->r, d, SLUICE_RING_FOREVER));
}

static int sl_send_mpmc(void *p, const sluice_desc_t *d)
{
	struct sl_chan *ch = p;
	return sl_one(sluice_ring_enqueue_mpmc(&ch->p, d, SLUICE_RING_FOREVER));
}

static int sl_recv_mpmc(void *p, sluice_desc_t *d)
{
	struct sl_chan *ch = p;
	return sl_one(sluice_ring_dequeue_mpmc(&ch->r, d, SLUICE_RING_FOREVER));
}

#define SL_SPSC(name, what, caps, wait)                                        \
	{name, what, caps, SL_ARG(SLUICE_RING_SPSC, wait), sl_setup, sl_open,   \
	 sl_send_spsc, sl_recv_spsc, sl_teardown}
#define SL_MPMC(name, what, caps, wait)                                        \
	{name, what, CAP_MULTI | (caps), SL_ARG(SLUICE_RING_MPMC, wait), sl_setup, \
	 sl_open, sl_send_mpmc, sl_recv_mpmc, sl_teardown}

/* --- the list, in the order of a round ------------------------------- */

#define SPIN_DEFAULT (-1) /* fx: use cfg.spin_ns */

/* Each sluice ring next to the baseline it is compared with, so the two run
 * close together in time. */
static const struct transport transports[] = {
	{"ck-spsc", "raw ck_ring SPSC, busy-poll (the ceiling)", CAP_IDLE, 0,
	 ckr_setup, NULL, ckr_send_spsc, ckr_recv_spsc, ckr_teardown},
	SL_SPSC("sluice-spsc-busy", "sluice SPSC ring, busy-poll", CAP_IDLE,
		SLUICE_RING_BUSY_POLL),
	{"ck-mpmc", "raw ck_ring MPMC, busy-poll", CAP_MULTI, 0,
	 ckr_setup, NULL, ckr_send_mpmc, ckr_recv_mpmc, ckr_teardown},
	SL_MPMC("sluice-mpmc-busy", "sluice MPMC ring, busy-poll", 0, SLUICE_RING_BUSY_POLL),
	{"futex-spin", "bare futex hand-off, spin then sleep", 0, SPIN_DEFAULT,
	 fx_setup, NULL, fx_send, fx_recv, fx_teardown},
	SL_SPSC("sluice-spsc-spin", "sluice SPSC ring, spin then sleep", CAP_IDLE,
		SLUICE_RING_SPIN_SLEEP),
	SL_MPMC("sluice-mpmc-spin", "sluice MPMC ring, spin then sleep", 0,
		SLUICE_RING_SPIN_SLEEP),
	{"futex-sleep", "bare futex hand-off, always sleep", 0, 0,
	 fx_setup, NULL, fx_send, fx_recv, fx_teardown},
	SL_SPSC("sluice-spsc-sleep", "sluice SPSC ring, always sleep", CAP_IDLE,
		SLUICE_RING_SLEEP),
	SL_MPMC("sluice-mpmc-sleep", "sluice MPMC ring, always sleep", 0, SLUICE_RING_SLEEP),
	{"pipe", "pipe, one write per descriptor", 0, 0,
	 fd_setup, NULL, fd_send, fd_recv, fd_teardown},
	{"unix-stream", "socketpair AF_UNIX SOCK_STREAM", 0, SOCK_STREAM,
	 fd_setup, NULL, fd_send, fd_recv, fd_teardown},
	{"unix-seqpacket", "socketpair AF_UNIX SOCK_SEQPACKET", 0, SOCK_SEQPACKET,
	 fd_setup, NULL, fd_send, fd_recv, fd_teardown},
	{"posix-mq", "POSIX message queue", 0, 0,
	 mq_setup, NULL, mq_send_, mq_recv_, mq_teardown},
	{"mutex-condvar", "mutex + condvar queue in shared memory", CAP_MULTI, 0,
	 mc_setup, NULL, mc_send, mc_recv, mc_teardown},
};

#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))
#define MAX_TRANSPORTS NTRANSPORTS

static const struct transport *all[MAX_TRANSPORTS];
static unsigned nall;

/* ------------------------------------------------------------------ */
/* Results. */

struct result {
	const struct transport *t;
	int failed;
	bool has_tput, has_rtt, has_mpmc, has_idle;
	double tput[MAX_ROUNDS]; /* descriptors/s per measured round */
	double tput_med, tput_min, tput_max;
	struct bench_hist hist;  /* round trips of every measured round */
	struct bench_pct rtt;    /* its summary */
	uint64_t rtt_p50[MAX_ROUNDS]; /* per round */
	uint64_t rtt_round_p50_min, rtt_round_p50_max;
	double mpmc[MAX_ROUNDS];
	double mpmc_med, mpmc_min, mpmc_max;
	double idle_cons_pct, idle_client_pct; /* % of a core */
	double idle_s;
};

static struct result results[MAX_TRANSPORTS];

/* Each test round forks its processes afresh; they run a warm-up phase
 * (PHASE_WARMUP, not reported) and then the measured one. */
enum { PHASE_WARMUP, PHASE_MEASURED, NPHASES };

/* Shared by the processes of one round: the barrier and what each reports. */
struct ctl {
	struct bench_barrier bar;
	char pad0[64 - sizeof(struct bench_barrier)];
	uint64_t t0[MAX_PROCS][NPHASES];
	uint64_t t1[MAX_PROCS][NPHASES];
	uint64_t count[MAX_PROCS][NPHASES];
	uint64_t cpu_ns[MAX_PROCS];
	uint64_t wall_ns[MAX_PROCS];
	struct bench_hist hist; /* round trips of the measured phase */
};

/* What one child process is given (a copy, through fork). */
struct job {
	const struct transport *t;
	const struct cfg *cfg;
	struct ctl *ctl;
	void *ch[2];     /* [0] forward channel, [1] reply channel */
	unsigned idx;    /* this process's producer or consumer index */
	unsigned nprod;  /* producers (= consumers) */
};

static int fail(const struct job *j, const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", j->t->name, what, rc < 0 ? strerror(-rc) : "error");
	return 1;
}

static uint64_t cpu_time_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_role(const struct job *j, void *ch, enum role r, unsigned idx)
{
	return j->t->open ? j->t->open(ch, r, idx) : 0;
}

/* --- throughput (1x1 and MPMC 2x2) ---------------------------------- */

static uint64_t phase_len(const struct cfg *c, unsigned ph)
{
	return ph == PHASE_WARMUP ? c->warmup_ns : c->round_ns;
}

static int tput_producer(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[0], ROLE_PRODUCER, j->idx);
	if (rc != 0)
		return fail(j, "open producer", rc);
	sluice_desc_t d = {.client = j->idx};
	uint64_t seq = 0;
	for (unsigned ph = 0; ph < NPHASES; ph++) {
		bench_barrier_wait(&j->ctl->bar, 2 * j->nprod);
		uint64_t t0 = bench_now_ns(), end = t0 + phase_len(j->cfg, ph), n = 0;
		j->ctl->t0[j->idx][ph] = t0;
		d.flags = DESC_DATA;
		for (;;) {
			d.task_id = seq++;
			rc = j->t->send(j->ch[0], &d);
			if (rc != 0)
				return fail(j, "send", rc);
			if ((++n & 255) == 0 && bench_now_ns() >= end)
				break;
		}
		j->ctl->count[j->idx][ph] = n;
		/* One stop per producer, as many as consumers: each consumer
		 * leaves the round on the first stop it takes. */
		d.flags = DESC_STOP;
		rc = j->t->send(j->ch[0], &d);
		if (rc != 0)
			return fail(j, "send stop", rc);
		bench_barrier_wait(&j->ctl->bar, 2 * j->nprod);
	}
	return 0;
}

static int tput_consumer(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[0], ROLE_CONSUMER, j->idx);
	if (rc != 0)
		return fail(j, "open consumer", rc);
	uint64_t next[MAX_PROCS] = {0}; /* lowest seq still allowed per producer */
	unsigned slot = j->nprod + j->idx;
	for (unsigned ph = 0; ph < NPHASES; ph++) {
		bench_barrier_wait(&j->ctl->bar, 2 * j->nprod);
		uint64_t n = 0;
		sluice_desc_t d;
		for (;;) {
			rc = j->t->recv(j->ch[0], &d);
			if (rc != 0)
				return fail(j, "recv", rc);
			if (d.client >= j->nprod) {
				fprintf(stderr, "%s: descriptor from unknown producer %u\n",
					j->t->name, d.client);
				return 1;
			}
			if (d.flags == DESC_STOP)
				break;
			/* Each consumer sees every producer's descriptors in
			 * that producer's order: rings are FIFO. */
			if (d.task_id < next[d.client]) {
				fprintf(stderr, "%s: producer %u's seq %" PRIu64 " after %" PRIu64 "\n",
					j->t->name, d.client, d.task_id, next[d.client] - 1);
				return 1;
			}
			next[d.client] = d.task_id + 1;
			n++;
		}
		j->ctl->t1[slot][ph] = bench_now_ns();
		j->ctl->count[slot][ph] = n;
		bench_barrier_wait(&j->ctl->bar, 2 * j->nprod);
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void med_min_max(const double *v, unsigned n, double *med, double *mn, double *mx)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, n * sizeof(double));
	qsort(s, n, sizeof(double), cmp_double);
	*mn = s[0];
	*mx = s[n - 1];
	*med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* When a round's children are given up on as hung. */
static uint64_t round_deadline(const struct cfg *c)
{
	return bench_now_ns() + 10 * (c->warmup_ns + c->round_ns) + 30 * 1000000000ull;
}

/* One round of a stream: `nprod` producers and as many consumers, producer
 * i on cpu[i % 2], consumer i on the other one (1x1: producer on cpu[0],
 * consumer on cpu[1]; 2x2: each CPU runs one producer and one consumer).
 * Sets *rate to the measured phase's descriptors/s. */
static int run_stream(const struct transport *t, const struct cfg *c, unsigned nprod,
		      double *rate)
{
	struct ctl *ctl = bench_shm_map(sizeof(*ctl));
	if (!ctl)
		return -1;
	void *ch = NULL;
	int rc = t->setup(t, c, nprod, nprod, &ch);
	if (rc != 0) {
		fprintf(stderr, "%s: setup: %s\n", t->name, strerror(-rc));
		bench_shm_unmap(ctl, sizeof(*ctl));
		return -1;
	}
	struct job jobs[MAX_PROCS];
	pid_t pids[MAX_PROCS];
	unsigned n = 0;
	int err = 0;
	for (unsigned i = 0; i < nprod; i++) {
		for (unsigned k = 0; k < 2; k++) {
			jobs[n] = (struct job){.t = t, .cfg = c, .ctl = ctl, .ch = {ch, NULL},
					       .idx = i, .nprod = nprod};
			pids[n] = bench_spawn(c->cpu[(i + k) % 2], k == 0 ? tput_producer : tput_consumer,
					      &jobs[n]);
			if (pids[n] < 0) {
				fprintf(stderr, "%s: fork: %s\n", t->name, strerror((int)-pids[n]));
				err = -1;
				break;
			}
			n++;
		}
		if (err)
			break;
	}
	if (err) {
		for (unsigned i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		bench_wait_children(t->name, pids, (int)n, 0);
	} else {
		err = bench_wait_children(t->name, pids, (int)n, round_deadline(c));
	}
	for (unsigned ph = 0; err == 0 && ph < NPHASES; ph++) {
		uint64_t start = UINT64_MAX, end = 0, sent = 0, got = 0;
		for (unsigned p = 0; p < nprod; p++) {
			if (ctl->t0[p][ph] < start)
				start = ctl->t0[p][ph];
			sent += ctl->count[p][ph];
			if (ctl->t1[nprod + p][ph] > end)
				end = ctl->t1[nprod + p][ph];
			got += ctl->count[nprod + p][ph];
		}
		if (sent != got) {
			fprintf(stderr, "%s: %" PRIu64 " sent, %" PRIu64 " received\n", t->name,
				sent, got);
			err = -1;
		}
		if (ph == PHASE_MEASURED)
			*rate = end > start ? (double)got * 1e9 / (double)(end - start) : 0;
	}
	t->teardown(ch);
	bench_shm_unmap(ctl, sizeof(*ctl));
	return err;
}

/* --- round trip ------------------------------------------------------ */

static int rtt_client(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[0], ROLE_PRODUCER, 0);
	if (rc == 0)
		rc = open_role(j, j->ch[1], ROLE_CONSUMER, 0);
	if (rc != 0)
		return fail(j, "open client", rc);
	/* The warm-up's samples go to a scratch histogram. */
	static struct bench_hist scratch;
	sluice_desc_t d = {.flags = DESC_DATA}, back;
	uint64_t seq = 0;
	bench_hist_init(&j->ctl->hist);
	for (unsigned ph = 0; ph < NPHASES; ph++) {
		struct bench_hist *h = ph == PHASE_MEASURED ? &j->ctl->hist : &scratch;
		bench_hist_init(h);
		uint64_t prev = bench_now_ns(), end = prev + phase_len(j->cfg, ph);
		for (;;) {
			d.task_id = seq;
			rc = j->t->send(j->ch[0], &d);
			if (rc != 0)
				return fail(j, "send request", rc);
			rc = j->t->recv(j->ch[1], &back);
			if (rc != 0)
				return fail(j, "recv reply", rc);
			if (back.task_id != seq || back.flags != DESC_DATA) {
				fprintf(stderr, "%s: reply %" PRIu64 " to request %" PRIu64 "\n",
					j->t->name, back.task_id, seq);
				return 1;
			}
			seq++;
			/* One clock read per round trip: the interval since the
			 * previous read covers send, recv and this bookkeeping. */
			uint64_t now = bench_now_ns();
			bench_hist_record(h, now - prev);
			prev = now;
			if (now >= end)
				break;
		}
	}
	d.flags = DESC_STOP;
	rc = j->t->send(j->ch[0], &d);
	return rc != 0 ? fail(j, "send stop", rc) : 0;
}

static int rtt_server(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[0], ROLE_CONSUMER, 0);
	if (rc == 0)
		rc = open_role(j, j->ch[1], ROLE_PRODUCER, 0);
	if (rc != 0)
		return fail(j, "open server", rc);
	sluice_desc_t d;
	for (;;) {
		rc = j->t->recv(j->ch[0], &d);
		if (rc != 0)
			return fail(j, "recv request", rc);
		if (d.flags == DESC_STOP)
			return 0;
		rc = j->t->send(j->ch[1], &d);
		if (rc != 0)
			return fail(j, "send reply", rc);
	}
}

/* Two channels, two processes; `children` are the two roles, run on
 * cpu[0] and cpu[1]. Shared by the round-trip and idle tests. */
static int run_pair(const struct transport *t, const struct cfg *c, struct ctl *ctl,
		    int (*a)(void *), int (*b)(void *), int (*parent)(struct job *),
		    uint64_t deadline)
{
	void *ch[2] = {NULL, NULL};
	for (unsigned i = 0; i < 2; i++) {
		int rc = t->setup(t, c, 1, 1, &ch[i]);
		if (rc != 0) {
			fprintf(stderr, "%s: setup: %s\n", t->name, strerror(-rc));
			if (i == 1)
				t->teardown(ch[0]);
			return -1;
		}
	}
	struct job job = {.t = t, .cfg = c, .ctl = ctl, .ch = {ch[0], ch[1]}, .nprod = 1};
	pid_t pids[2];
	int err = 0;
	pids[0] = bench_spawn(c->cpu[0], a, &job);
	pids[1] = pids[0] < 0 ? -1 : bench_spawn(c->cpu[1], b, &job);
	if (pids[0] < 0 || pids[1] < 0) {
		fprintf(stderr, "%s: fork failed\n", t->name);
		if (pids[0] > 0) {
			kill(pids[0], SIGKILL);
			bench_wait_children(t->name, pids, 1, 0);
		}
		err = -1;
	} else {
		if (parent && parent(&job) != 0)
			err = -1;
		if (bench_wait_children(t->name, pids, 2, deadline) != 0)
			err = -1;
	}
	t->teardown(ch[0]);
	t->teardown(ch[1]);
	return err;
}

/* One round of ping-pong: merges its round trips into res->hist and keeps
 * the round's median in *p50. */
static int run_rtt(const struct transport *t, const struct cfg *c, struct result *res,
		   uint64_t *p50)
{
	struct ctl *ctl = bench_shm_map(sizeof(*ctl));
	if (!ctl)
		return -1;
	int err = run_pair(t, c, ctl, rtt_client, rtt_server, NULL, round_deadline(c));
	if (err == 0) {
		bench_hist_merge(&res->hist, &ctl->hist);
		*p50 = bench_hist_quantile(&ctl->hist, 0.5);
	}
	bench_shm_unmap(ctl, sizeof(*ctl));
	return err;
}

/* --- idle ------------------------------------------------------------
 *
 * Three processes: the parent is the producer of channel 0; a worker
 * (cpu[0]) consumes channel 0 and produces channel 1; a client (cpu[1])
 * consumes channel 1, as a client waits for its results. Both children
 * wait at once for idle_ns; then the parent sends one descriptor, which
 * wakes the worker, whose reply wakes the client. Each child reports the
 * CPU time it used from the start of its wait to its wake-up. */

static int idle_worker(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[0], ROLE_CONSUMER, 0);
	if (rc == 0)
		rc = open_role(j, j->ch[1], ROLE_PRODUCER, 0);
	if (rc != 0)
		return fail(j, "open worker", rc);
	bench_barrier_wait(&j->ctl->bar, 3);
	uint64_t c0 = cpu_time_ns(), w0 = bench_now_ns();
	sluice_desc_t d;
	rc = j->t->recv(j->ch[0], &d);
	uint64_t c1 = cpu_time_ns(), w1 = bench_now_ns();
	if (rc != 0)
		return fail(j, "recv", rc);
	j->ctl->cpu_ns[0] = c1 - c0;
	j->ctl->wall_ns[0] = w1 - w0;
	rc = j->t->send(j->ch[1], &d);
	return rc != 0 ? fail(j, "send", rc) : 0;
}

static int idle_client(void *arg)
{
	const struct job *j = arg;
	int rc = open_role(j, j->ch[1], ROLE_CONSUMER, 0);
	if (rc != 0)
		return fail(j, "open client", rc);
	bench_barrier_wait(&j->ctl->bar, 3);
	uint64_t c0 = cpu_time_ns(), w0 = bench_now_ns();
	sluice_desc_t d;
	rc = j->t->recv(j->ch[1], &d);
	uint64_t c1 = cpu_time_ns(), w1 = bench_now_ns();
	if (rc != 0)
		return fail(j, "recv", rc);
	j->ctl->cpu_ns[1] = c1 - c0;
	j->ctl->wall_ns[1] = w1 - w0;
	return 0;
}

static int idle_parent(struct job *j)
{
	int rc = open_role(j, j->ch[0], ROLE_PRODUCER, 0);
	bench_barrier_wait(&j->ctl->bar, 3);
	if (rc != 0)
		return fail(j, "open driver", rc); /* the children time out */
	bench_sleep_ns(j->cfg->idle_ns);
	sluice_desc_t d = {.flags = DESC_DATA};
	rc = j->t->send(j->ch[0], &d);
	return rc != 0 ? fail(j, "send", rc) : 0;
}

static int run_idle(const struct transport *t, const struct cfg *c, struct result *res)
{
	struct ctl *ctl = bench_shm_map(sizeof(*ctl));
	if (!ctl)
		return -1;
	uint64_t deadline = bench_now_ns() + c->idle_ns + 30 * 1000000000ull;
	int err = run_pair(t, c, ctl, idle_worker, idle_client, idle_parent, deadline);
	if (err == 0) {
		res->idle_cons_pct = 100.0 * (double)ctl->cpu_ns[0] / (double)ctl->wall_ns[0];
		res->idle_client_pct = 100.0 * (double)ctl->cpu_ns[1] / (double)ctl->wall_ns[1];
		res->idle_s = (double)ctl->wall_ns[0] / 1e9;
	}
	bench_shm_unmap(ctl, sizeof(*ctl));
	return err;
}

/* ------------------------------------------------------------------ */
/* Driving, reporting. */

static bool selected(const struct cfg *c, const char *name)
{
	if (!c->only)
		return true;
	size_t len = strlen(name);
	for (const char *p = c->only; *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && strncmp(p, name, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static struct result *find(const char *name)
{
	for (unsigned i = 0; i < nall; i++)
		if (results[i].t && strcmp(results[i].t->name, name) == 0)
			return &results[i];
	return NULL;
}

/* One round of every test of transport res->t; the result of round `r`. */
static void run_round(const struct cfg *c, struct result *res, unsigned r)
{
	const struct transport *t = res->t;
	if (res->failed)
		return;
	if (c->tests & TEST_TPUT) {
		if (run_stream(t, c, 1, &res->tput[r]) != 0)
			res->failed = 1;
		else if (c->verbose)
			printf("  %-18s %.2f M/s\n", t->name, res->tput[r] / 1e6);
	}
	if (!res->failed && (c->tests & TEST_RTT)) {
		if (run_rtt(t, c, res, &res->rtt_p50[r]) != 0)
			res->failed = 1;
		else if (c->verbose)
			printf("  %-18s round trip p50 %" PRIu64 " ns\n", t->name, res->rtt_p50[r]);
	}
	if (!res->failed && (c->tests & TEST_MPMC) && (t->caps & CAP_MULTI)) {
		if (run_stream(t, c, 2, &res->mpmc[r]) != 0)
			res->failed = 1;
		else if (c->verbose)
			printf("  %-18s 2x2 %.2f M/s\n", t->name, res->mpmc[r] / 1e6);
	}
	if (res->failed)
		printf("  %s FAILED in round %u; skipped from now on\n", t->name, r + 1);
}

/* After the last round: medians and extremes. */
static void summarize(const struct cfg *c, struct result *res)
{
	if (res->failed)
		return;
	const struct transport *t = res->t;
	if (c->tests & TEST_TPUT) {
		res->has_tput = true;
		med_min_max(res->tput, c->rounds, &res->tput_med, &res->tput_min, &res->tput_max);
	}
	if (c->tests & TEST_RTT) {
		res->has_rtt = true;
		bench_hist_summary(&res->hist, &res->rtt);
		res->rtt_round_p50_min = UINT64_MAX;
		res->rtt_round_p50_max = 0;
		for (unsigned r = 0; r < c->rounds; r++) {
			if (res->rtt_p50[r] < res->rtt_round_p50_min)
				res->rtt_round_p50_min = res->rtt_p50[r];
			if (res->rtt_p50[r] > res->rtt_round_p50_max)
				res->rtt_round_p50_max = res->rtt_p50[r];
		}
	}
	if ((c->tests & TEST_MPMC) && (t->caps & CAP_MULTI)) {
		res->has_mpmc = true;
		med_min_max(res->mpmc, c->rounds, &res->mpmc_med, &res->mpmc_min, &res->mpmc_max);
	}
}

/* A goal: value (from this run) op target. */
struct goal {
	const char *name;
	const char *how;    /* how the value is computed */
	double value;       /* NAN when a figure is missing */
	double target;
	bool at_most;       /* value <= target, else value >= target */
	const char *unit;
	bool info;          /* no target: a ratio that helps read the others */
};

#define NGOALS 9
static struct goal goals[NGOALS];

static double ratio(double a, double b)
{
	return (a > 0 && b > 0) ? a / b : __builtin_nan("");
}

static double tput_of(const char *name)
{
	struct result *r = find(name);
	return r && r->has_tput ? r->tput_med : 0;
}

static double rtt_of(const char *name)
{
	struct result *r = find(name);
	return r && r->has_rtt ? (double)r->rtt.p50 : 0;
}

static void compute_goals(void)
{
	struct result *mp = find(GOAL_MPMC);
	struct result *idle = find(GOAL_IDLE);
	double idle_worst = __builtin_nan("");
	if (idle && idle->has_idle)
		idle_worst = idle->idle_cons_pct > idle->idle_client_pct ? idle->idle_cons_pct
									 : idle->idle_client_pct;
	goals[0] = (struct goal){"busy-poll throughput vs raw ck SPSC",
				 GOAL_BUSY_SPSC " / ck-spsc, median M/s",
				 ratio(tput_of(GOAL_BUSY_SPSC), tput_of("ck-spsc")),
				 0.90, false, "x", false};
	goals[1] = (struct goal){"busy-poll round trip vs raw ck SPSC",
				 GOAL_BUSY_SPSC " / ck-spsc, p50",
				 ratio(rtt_of(GOAL_BUSY_SPSC), rtt_of("ck-spsc")),
				 1.25, true, "x", false};
	goals[2] = (struct goal){"spin-then-sleep round trip vs bare futex",
				 GOAL_SPIN " / futex-spin, p50",
				 ratio(rtt_of(GOAL_SPIN), rtt_of("futex-spin")), 1.25,
				 true, "x", false};
	goals[3] = (struct goal){"always-sleep round trip vs bare futex",
				 GOAL_SLEEP " / futex-sleep, p50",
				 ratio(rtt_of(GOAL_SLEEP), rtt_of("futex-sleep")), 1.10,
				 true, "x", false};
	goals[4] = (struct goal){"MPMC 2 producers x 2 consumers on 2 CPUs",
				 GOAL_MPMC ", median M/s",
				 mp && mp->has_mpmc ? mp->mpmc_med / 1e6 : __builtin_nan(""), 10.0,
				 false, "M/s", false};
	goals[5] = (struct goal){"idle flow CPU (worker and client waiting)",
				 GOAL_IDLE ", worse of the two, % of a core",
				 idle_worst, 1.0, true, "%", false};
	goals[6] = (struct goal){"(info) MPMC busy-poll throughput vs raw ck MPMC",
				 "sluice-mpmc-busy / ck-mpmc, median M/s",
				 ratio(tput_of("sluice-mpmc-busy"), tput_of("ck-mpmc")), 0, false, "x",
				 true};
	goals[7] = (struct goal){"(info) spin-then-sleep round trip vs raw ck SPSC",
				 GOAL_SPIN " / ck-spsc, p50",
				 ratio(rtt_of(GOAL_SPIN), rtt_of("ck-spsc")), 0, true, "x", true};
	goals[8] = (struct goal){"(info) raw ck SPSC round trip vs bare futex hand-off",
				 "ck-spsc / futex-spin, p50",
				 ratio(rtt_of("ck-spsc"), rtt_of("futex-spin")), 0, true, "x", true};
}

static const char *verdict(const struct goal *g)
{
	if (g->value != g->value)
		return "n/a";
	if (g->info)
		return "info";
	return (g->at_most ? g->value <= g->target : g->value >= g->target) ? "PASS" : "MISS";
}

static void fmt_rate(char *b, size_t n, bool has, double v)
{
	if (has)
		snprintf(b, n, "%.2f", v / 1e6);
	else
		snprintf(b, n, "-");
}

static void fmt_ns(char *b, size_t n, bool has, uint64_t v)
{
	if (has)
		snprintf(b, n, "%" PRIu64, v);
	else
		snprintf(b, n, "-");
}

static void print_tables(const struct cfg *c)
{
	void (*print)(const struct bench_table *, FILE *) =
		c->markdown ? bench_table_print_markdown : bench_table_print;
	static const char *const h1[] = {"transport", "M/s median", "min", "max", "RTT p50 ns",
					 "p90", "p99", "p99.9", "max"};
	struct bench_table *t = bench_table_new(9, h1);
	for (unsigned i = 0; t && i < nall; i++) {
		struct result *r = &results[i];
		if (!r->t || (!r->has_tput && !r->has_rtt && !r->failed))
			continue;
		char v[9][32];
		snprintf(v[0], 32, "%s%s", r->t->name, r->failed ? " (FAILED)" : "");
		fmt_rate(v[1], 32, r->has_tput, r->tput_med);
		fmt_rate(v[2], 32, r->has_tput, r->tput_min);
		fmt_rate(v[3], 32, r->has_tput, r->tput_max);
		fmt_ns(v[4], 32, r->has_rtt, r->rtt.p50);
		fmt_ns(v[5], 32, r->has_rtt, r->rtt.p90);
		fmt_ns(v[6], 32, r->has_rtt, r->rtt.p99);
		fmt_ns(v[7], 32, r->has_rtt, r->rtt.p999);
		fmt_ns(v[8], 32, r->has_rtt, r->rtt.max);
		const char *cells[9];
		for (int k = 0; k < 9; k++)
			cells[k] = v[k];
		bench_table_row(t, cells);
	}
	printf("\nThroughput (one-way stream, M descriptors/s, median of %u rounds) and round "
	       "trip (ns):\n\n", c->rounds);
	if (t)
		print(t, stdout);
	bench_table_free(t);

	static const char *const h2[] = {"transport", "2x2 M/s median", "min", "max"};
	t = bench_table_new(4, h2);
	unsigned rows = 0;
	for (unsigned i = 0; t && i < nall; i++) {
		struct result *r = &results[i];
		if (!r->t || !r->has_mpmc)
			continue;
		char v[4][32];
		snprintf(v[0], 32, "%s", r->t->name);
		fmt_rate(v[1], 32, true, r->mpmc_med);
		fmt_rate(v[2], 32, true, r->mpmc_min);
		fmt_rate(v[3], 32, true, r->mpmc_max);
		const char *cells[4] = {v[0], v[1], v[2], v[3]};
		bench_table_row(t, cells);
		rows++;
	}
	if (t && rows) {
		printf("\nMPMC, 2 producers and 2 consumers (4 processes on 2 CPUs):\n\n");
		print(t, stdout);
	}
	bench_table_free(t);

	static const char *const h3[] = {"transport", "idle s", "worker % core",
					 "client % core"};
	t = bench_table_new(4, h3);
	rows = 0;
	for (unsigned i = 0; t && i < nall; i++) {
		struct result *r = &results[i];
		if (!r->t || !r->has_idle)
			continue;
		char v[4][32];
		snprintf(v[0], 32, "%s", r->t->name);
		snprintf(v[1], 32, "%.1f", r->idle_s);
		snprintf(v[2], 32, "%.3f", r->idle_cons_pct);
		snprintf(v[3], 32, "%.3f", r->idle_client_pct);
		const char *cells[4] = {v[0], v[1], v[2], v[3]};
		bench_table_row(t, cells);
		rows++;
	}
	if (t && rows) {
		printf("\nIdle cost (CPU time while waiting, %% of one core):\n\n");
		print(t, stdout);
	}
	bench_table_free(t);

	static const char *const h4[] = {"goal", "measured", "target", "result"};
	t = bench_table_new(4, h4);
	for (unsigned i = 0; t && i < NGOALS; i++) {
		const struct goal *g = &goals[i];
		char v[4][128];
		snprintf(v[0], 128, "%s (%s)", g->name, g->how);
		if (g->value == g->value)
			snprintf(v[1], 128, "%.3g %s", g->value, g->unit);
		else
			snprintf(v[1], 128, "-");
		if (g->info)
			snprintf(v[2], 128, "-");
		else
			snprintf(v[2], 128, "%s %.3g %s", g->at_most ? "<=" : ">=", g->target,
				 g->unit);
		snprintf(v[3], 128, "%s", verdict(g));
		const char *cells[4] = {v[0], v[1], v[2], v[3]};
		bench_table_row(t, cells);
	}
	printf("\nGoals (informational; ratios within this run):\n\n");
	if (t)
		print(t, stdout);
	bench_table_free(t);
}

static int write_json(const struct cfg *c)
{
	FILE *f = fopen(c->json, "w");
	if (!f) {
		fprintf(stderr, "%s: %s\n", c->json, strerror(errno));
		return -1;
	}
	struct bench_json j;
	bench_json_init(&j, f);
	char model[256], kernel[128];
	int ncpus;
	bench_machine(model, sizeof(model), &ncpus, kernel, sizeof(kernel));
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "bench", "rings");
	bench_json_obj_begin(&j, "machine");
	bench_json_str(&j, "cpu_model", model);
	bench_json_u64(&j, "nproc", (uint64_t)ncpus);
	bench_json_str(&j, "kernel", kernel);
	bench_json_u64(&j, "cpu_a", (uint64_t)c->cpu[0]);
	bench_json_u64(&j, "cpu_b", (uint64_t)c->cpu[1]);
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "config");
	bench_json_str(&j, "command", c->command);
	bench_json_bool(&j, "quick", c->quick);
	bench_json_u64(&j, "rounds", c->rounds);
	bench_json_num(&j, "round_ms", (double)c->round_ns / 1e6);
	bench_json_num(&j, "warmup_ms", (double)c->warmup_ns / 1e6);
	bench_json_num(&j, "idle_s", (double)c->idle_ns / 1e9);
	bench_json_num(&j, "spin_us", (double)c->spin_ns / 1e3);
	bench_json_u64(&j, "ring_size", c->ring_size);
	bench_json_u64(&j, "descriptor_bytes", sizeof(sluice_desc_t));
	bench_json_obj_end(&j);
	bench_json_obj_begin(&j, "noise");
	bench_json_num(&j, "others_pct_of_machine", c->others_pct);
	bench_json_num(&j, "steal_pct_of_machine", c->steal_pct);
	bench_json_obj_end(&j);
	bench_json_arr_begin(&j, "transports");
	for (unsigned i = 0; i < nall; i++) {
		struct result *r = &results[i];
		if (!r->t || (!r->has_tput && !r->has_rtt && !r->has_mpmc && !r->has_idle &&
			      !r->failed))
			continue;
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "name", r->t->name);
		bench_json_str(&j, "what", r->t->what);
		bench_json_bool(&j, "failed", r->failed);
		if (r->has_tput) {
			bench_json_obj_begin(&j, "throughput");
			bench_json_num(&j, "median_per_s", r->tput_med);
			bench_json_num(&j, "min_per_s", r->tput_min);
			bench_json_num(&j, "max_per_s", r->tput_max);
			bench_json_arr_begin(&j, "rounds_per_s");
			for (unsigned k = 0; k < c->rounds; k++)
				bench_json_num(&j, NULL, r->tput[k]);
			bench_json_arr_end(&j);
			bench_json_obj_end(&j);
		}
		if (r->has_rtt) {
			bench_json_obj_begin(&j, "round_trip_ns");
			bench_json_u64(&j, "samples", r->rtt.count);
			bench_json_u64(&j, "min", r->rtt.min);
			bench_json_u64(&j, "p50", r->rtt.p50);
			bench_json_u64(&j, "p90", r->rtt.p90);
			bench_json_u64(&j, "p99", r->rtt.p99);
			bench_json_u64(&j, "p99_9", r->rtt.p999);
			bench_json_u64(&j, "max", r->rtt.max);
			bench_json_num(&j, "mean", r->rtt.mean);
			bench_json_u64(&j, "round_p50_min", r->rtt_round_p50_min);
			bench_json_u64(&j, "round_p50_max", r->rtt_round_p50_max);
			bench_json_obj_end(&j);
		}
		if (r->has_mpmc) {
			bench_json_obj_begin(&j, "mpmc_2x2");
			bench_json_num(&j, "median_per_s", r->mpmc_med);
			bench_json_num(&j, "min_per_s", r->mpmc_min);
			bench_json_num(&j, "max_per_s", r->mpmc_max);
			bench_json_arr_begin(&j, "rounds_per_s");
			for (unsigned k = 0; k < c->rounds; k++)
				bench_json_num(&j, NULL, r->mpmc[k]);
			bench_json_arr_end(&j);
			bench_json_obj_end(&j);
		}
		if (r->has_idle) {
			bench_json_obj_begin(&j, "idle");
			bench_json_num(&j, "seconds", r->idle_s);
			bench_json_num(&j, "worker_pct_core", r->idle_cons_pct);
			bench_json_num(&j, "client_pct_core", r->idle_client_pct);
			bench_json_obj_end(&j);
		}
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_arr_begin(&j, "goals");
	for (unsigned i = 0; i < NGOALS; i++) {
		const struct goal *g = &goals[i];
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "goal", g->name);
		bench_json_str(&j, "how", g->how);
		bench_json_num(&j, "value", g->value);
		if (g->info) {
			bench_json_null(&j, "op");
			bench_json_null(&j, "target");
		} else {
			bench_json_str(&j, "op", g->at_most ? "<=" : ">=");
			bench_json_num(&j, "target", g->target);
		}
		bench_json_str(&j, "unit", g->unit);
		bench_json_str(&j, "result", verdict(g));
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	int rc = ferror(f) ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		fprintf(stderr, "%s: write failed\n", c->json);
	return rc;
}

/* The figures sluice-bench compares (bench/common/metrics.h), and the
 * round trips' CDFs. */
static void write_metrics(void)
{
	for (unsigned i = 0; i < nall; i++) {
		const struct result *r = &results[i];
		if (!r->t || r->failed)
			continue;
		const char *n = r->t->name;
		if (r->has_tput) {
			bench_metric(r->tput_med, "/s", "rings.%s.tput_median", n);
			bench_metric(r->tput_min, "/s", "rings.%s.tput_min", n);
			bench_metric(r->tput_max, "/s", "rings.%s.tput_max", n);
		}
		if (r->has_rtt) {
			bench_metric((double)r->rtt.p50, "ns", "rings.%s.rtt_p50", n);
			bench_metric((double)r->rtt.p90, "ns", "rings.%s.rtt_p90", n);
			bench_metric((double)r->rtt.p99, "ns", "rings.%s.rtt_p99", n);
			bench_metric((double)r->rtt.p999, "ns", "rings.%s.rtt_p999", n);
			bench_metric((double)r->rtt.max, "ns", "rings.%s.rtt_max", n);
			char name[64];
			snprintf(name, sizeof(name), "rings_rtt_%s", n);
			bench_plot_cdf(name, r->t->what, &r->hist);
		}
		if (r->has_mpmc) {
			bench_metric(r->mpmc_med, "/s", "rings.%s.mpmc_median", n);
			bench_metric(r->mpmc_min, "/s", "rings.%s.mpmc_min", n);
			bench_metric(r->mpmc_max, "/s", "rings.%s.mpmc_max", n);
		}
		if (r->has_idle) {
			bench_metric(r->idle_cons_pct, "%", "rings.%s.idle_worker_pct", n);
			bench_metric(r->idle_client_pct, "%", "rings.%s.idle_client_pct", n);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_rings [options]\n"
		"  --quick             short run (under ~30 s)\n"
		"  --only NAME[,NAME]  run only these transports (see --list)\n"
		"  --tests LIST        tput,rtt,mpmc,idle (default: all)\n"
		"  --rounds N          rounds per test (default 7; quick 3)\n"
		"  --round-ms MS       measured time of a round (default 300; quick 60)\n"
		"  --warmup-ms MS      warm-up at the start of each round (default 100; quick 30)\n"
		"  --idle-s S          idle test length (default 5; quick 1)\n"
		"  --spin-us US        spin before sleeping, spin-then-sleep modes (default 50)\n"
		"  --ring-size N       ring slots, a power of two (default 1024)\n"
		"  --json FILE         write the results as JSON\n"
		"  --metrics FILE      write the figures for sluice-bench (key, value, unit)\n"
		"  --plot-dir DIR      write the round trips' CDFs there, for gnuplot\n"
		"  --markdown          print the tables as Markdown\n"
		"  --list              list the transports\n"
		"  --verbose           print each round's figures\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int parse_tests(const char *s, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"tput", TEST_TPUT}, {"rtt", TEST_RTT}, {"mpmc", TEST_MPMC}, {"idle", TEST_IDLE}};
	unsigned bits = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		unsigned k;
		for (k = 0; k < 4; k++)
			if (strlen(names[k].name) == n && strncmp(s, names[k].name, n) == 0)
				break;
		if (k == 4)
			return -1;
		bits |= names[k].bit;
		s += n;
		if (*s == ',')
			s++;
	}
	*out = bits;
	return bits ? 0 : -1;
}

int main(int argc, char **argv)
{
	enum { O_QUICK = 256, O_ONLY, O_TESTS, O_ROUNDS, O_ROUND_MS, O_WARMUP_MS, O_IDLE_S,
	       O_SPIN_US, O_RING, O_JSON, O_METRICS, O_PLOT_DIR, O_MD, O_LIST, O_VERBOSE,
	       O_HELP };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"only", required_argument, NULL, O_ONLY},
		{"tests", required_argument, NULL, O_TESTS},
		{"rounds", required_argument, NULL, O_ROUNDS},
		{"round-ms", required_argument, NULL, O_ROUND_MS},
		{"warmup-ms", required_argument, NULL, O_WARMUP_MS},
		{"idle-s", required_argument, NULL, O_IDLE_S},
		{"spin-us", required_argument, NULL, O_SPIN_US},
		{"ring-size", required_argument, NULL, O_RING},
		{"json", required_argument, NULL, O_JSON},
		{"metrics", required_argument, NULL, O_METRICS},
		{"plot-dir", required_argument, NULL, O_PLOT_DIR},
		{"markdown", no_argument, NULL, O_MD},
		{"list", no_argument, NULL, O_LIST},
		{"verbose", no_argument, NULL, O_VERBOSE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	struct cfg c = {.tests = TEST_ALL, .ring_size = 1024, .spin_ns = 50000};
	uint64_t rounds = 0, round_ms = 0, warmup_ms = 0, idle_s = 0, v;
	bool list = false;
	int o;
	for (unsigned i = 0; i < NTRANSPORTS; i++)
		all[nall++] = &transports[i];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_QUICK: c.quick = true; break;
		case O_ONLY: c.only = optarg; break;
		case O_TESTS:
			if (parse_tests(optarg, &c.tests) != 0)
				goto bad;
			break;
		case O_ROUNDS:
			if (parse_u64(optarg, &rounds) != 0 || rounds < 1 || rounds > MAX_ROUNDS)
				goto bad;
			break;
		case O_ROUND_MS:
			if (parse_u64(optarg, &round_ms) != 0 || round_ms < 1)
				goto bad;
			break;
		case O_WARMUP_MS:
			if (parse_u64(optarg, &warmup_ms) != 0 || warmup_ms < 1)
				goto bad;
			break;
		case O_IDLE_S:
			if (parse_u64(optarg, &idle_s) != 0 || idle_s < 1)
				goto bad;
			break;
		case O_SPIN_US:
			if (parse_u64(optarg, &v) != 0 || v > 10000000)
				goto bad;
			c.spin_ns = v * 1000;
			break;
		case O_RING:
			if (parse_u64(optarg, &v) != 0 || v < 4 || v > (1u << 24) || (v & (v - 1)))
				goto bad;
			c.ring_size = (unsigned)v;
			break;
		case O_JSON: c.json = optarg; break;
		case O_METRICS: c.metrics = optarg; break;
		case O_PLOT_DIR: bench_plot_dir(optarg); break;
		case O_MD: c.markdown = true; break;
		case O_LIST: list = true; break;
		case O_VERBOSE: c.verbose = true; break;
		case O_HELP: usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	for (int i = 0, len = 0; i < argc && len < (int)sizeof(c.command); i++)
		len += snprintf(c.command + len, sizeof(c.command) - (size_t)len, "%s%s",
				i ? " " : "", argv[i]);
	if (list) {
		for (unsigned i = 0; i < nall; i++)
			printf("%-18s %s\n", all[i]->name, all[i]->what);
		return 0;
	}
	c.rounds = rounds ? (unsigned)rounds : (c.quick ? 3 : 7);
	c.round_ns = (round_ms ? round_ms : (c.quick ? 60 : 300)) * 1000000ull;
	c.warmup_ns = (warmup_ms ? warmup_ms : (c.quick ? 30 : 100)) * 1000000ull;
	c.idle_ns = (idle_s ? idle_s : (c.quick ? 1 : 5)) * 1000000000ull;

	if (c.only) {
		for (const char *p = c.only; *p;) {
			size_t n = strcspn(p, ",");
			bool known = false;
			for (unsigned i = 0; i < nall; i++)
				known |= strlen(all[i]->name) == n && strncmp(all[i]->name, p, n) == 0;
			if (!known) {
				fprintf(stderr, "unknown transport '%.*s' (see --list)\n", (int)n, p);
				return 2;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}

	int cpus[BENCH_MAX_CPUS];
	int ncpu = bench_cpus_allowed(cpus, BENCH_MAX_CPUS);
	if (ncpu < 2) {
		fprintf(stderr, "bench_rings needs 2 CPUs, this process may use %d\n", ncpu);
		return 1;
	}
	c.cpu[0] = cpus[0];
	c.cpu[1] = cpus[1];

	char model[256], kernel[128];
	int nproc;
	bench_machine(model, sizeof(model), &nproc, kernel, sizeof(kernel));
	printf("%s\n", c.command);
	printf("bench_rings: %s, %d CPUs (using %d and %d), Linux %s\n", model, nproc, c.cpu[0],
	       c.cpu[1], kernel);
	printf("%u rounds of %.0f ms, each after a %.0f ms warm-up; idle %.0f s, spin %.0f us, "
	       "ring %u slots, 64-byte descriptors\n\n",
	       c.rounds, (double)c.round_ns / 1e6, (double)c.warmup_ns / 1e6,
	       (double)c.idle_ns / 1e9, (double)c.spin_ns / 1e3, c.ring_size);

	/* Rounds outermost: every transport gets a round in turn, so a change
	 * in the machine's state during the run (the host moving the vCPUs,
	 * another job) is shared between the figures a ratio compares. Odd
	 * rounds run the list backwards, cancelling a steady drift. */
	unsigned nsel = 0;
	for (unsigned i = 0; i < nall; i++) {
		if (!selected(&c, all[i]->name))
			continue;
		results[i].t = all[i];
		bench_hist_init(&results[i].hist);
		nsel++;
	}
	uint64_t busy0 = 0, steal0 = 0, own0 = bench_own_cpu_ns(), wall0 = bench_now_ns();
	bool have_stat = bench_machine_cpu(&busy0, &steal0) == 0;
	for (unsigned r = 0; r < c.rounds && nsel; r++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned k = 0; k < nall; k++) {
			unsigned i = r % 2 ? nall - 1 - k : k;
			if (results[i].t)
				run_round(&c, &results[i], r);
		}
		printf("round %u/%u done in %.1f s\n", r + 1, c.rounds,
		       (double)(bench_now_ns() - t0) / 1e9);
		fflush(stdout);
	}
	uint64_t busy1, steal1;
	if (have_stat && bench_machine_cpu(&busy1, &steal1) == 0) {
		double all_ns = (double)(bench_now_ns() - wall0) * nproc;
		double others = (double)(busy1 - busy0) - (double)(bench_own_cpu_ns() - own0);
		c.others_pct = others > 0 ? 100.0 * others / all_ns : 0;
		c.steal_pct = 100.0 * (double)(steal1 - steal0) / all_ns;
		printf("during the rounds, other processes used %.1f%% of the machine's CPU time, "
		       "and the hypervisor stole %.1f%%\n", c.others_pct, c.steal_pct);
	}
	int failed = 0;
	for (unsigned i = 0; i < nall; i++) {
		if (!results[i].t)
			continue;
		summarize(&c, &results[i]);
		if (!results[i].failed && (c.tests & TEST_IDLE) && (all[i]->caps & CAP_IDLE)) {
			printf("idle %.0f s: %s ...", (double)c.idle_ns / 1e9, all[i]->name);
			fflush(stdout);
			if (run_idle(all[i], &c, &results[i]) == 0) {
				results[i].has_idle = true;
				printf(" worker %.3f%%, client %.3f%% of a core\n",
				       results[i].idle_cons_pct, results[i].idle_client_pct);
			} else {
				results[i].failed = 1;
				printf(" FAILED\n");
			}
		}
		failed |= results[i].failed;
	}
	compute_goals();
	print_tables(&c);
	if (c.json && write_json(&c) != 0)
		failed = 1;
	if (c.metrics) {
		if (bench_metrics_open(c.metrics) != 0) {
			fprintf(stderr, "%s: %s\n", c.metrics, strerror(errno));
			failed = 1;
		}
		write_metrics();
		if (bench_metrics_close() != 0)
			failed = 1;
	}
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
