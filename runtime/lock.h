/*
 * lock.h: the internal lock of Spindle's primitives (channels, mutexes,
 * wait queues). Shared-internal (runtime, sync, io).
 *
 * Model: a three-state futex mutex (0 free, 1 locked, 2 locked with
 * sleepers): uncontended lock and unlock are one atomic each; a contended
 * locker spins briefly, then sleeps on the futex (it blocks the worker
 * thread, which is fine because critical sections are a few dozen
 * instructions and never switch).
 * Invariants:
 *   L1  Never held across a fiber switch (park, yield): a lock taken on one
 *       thread must be released on the same thread. Primitives collect
 *       waiters under the lock and wake them after unlocking, or wake under
 *       it (sp__park_wake takes only leaf locks and never switches). The
 *       one exception is a solo park (park.c P6): the lock is released by
 *       the same thread right after the jump, in the context resumed next.
 *   L2  All-zero is a valid, unlocked lock (primitives are zero-initialised).
 * Ordering: lock is acquire, unlock is release; TSan sees both.
 * Rejected: pthread_mutex_t (larger, not all-zero-initialisable portably,
 *   and no cheaper); a pure spinlock (a preempted holder makes every other
 *   worker burn its time slice).
 */
#ifndef SP_RUNTIME_LOCK_H
#define SP_RUNTIME_LOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp__lock {
  uint32_t v; /* 0 free, 1 locked, 2 locked and someone may sleep on it */
} sp__lock_t;

void sp__lock_slow(sp__lock_t *l);
void sp__futex_wake(uint32_t *addr, int n);

/* Runs on: any thread. Switches: no (may block the thread briefly). */
static inline void sp__lock(sp__lock_t *l) {
  uint32_t free_ = 0;
  if (__atomic_compare_exchange_n(&l->v, &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  sp__lock_slow(l);
}

static inline void sp__unlock(sp__lock_t *l) {
  if (__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2) sp__futex_wake(&l->v, 1);
}

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_LOCK_H */
