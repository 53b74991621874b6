/* The one atomics vocabulary of sluice: C11 <stdatomic.h>, always with an
 * explicit memory order. Shared fields are declared _Atomic; every call site
 * of an acquire, release or fence carries a comment naming what it pairs
 * with. (ck's rings use ck_pr inside ck; sluice's own code does not.)
 *
 * Lock-freedom across processes: every _Atomic type used in shared memory is
 * asserted always lock-free, so no hidden lock lives in one process. */
#ifndef SLUICE_BASE_ATOMIC_H
#define SLUICE_BASE_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define sl_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define sl_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define sl_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define sl_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define sl_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define sl_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define sl_fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define sl_fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
/* Strong CAS; on failure *expected receives the current value. */
#define sl_cas_acq_rel(p, expected, desired)                                  \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired),   \
						memory_order_acq_rel,          \
						memory_order_acquire)
#define sl_cas_relaxed(p, expected, desired)                                  \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired),   \
						memory_order_relaxed,          \
						memory_order_relaxed)
#define sl_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#define sl_fence_release() atomic_thread_fence(memory_order_release)
#define sl_fence_acquire() atomic_thread_fence(memory_order_acquire)

/* A spin-wait hint for the CPU (pause on x86). */
static inline void sl_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
