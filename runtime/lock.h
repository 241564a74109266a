/*
 * lock.h: the internal lock of Spindle's primitives (channels, mutexes,
 * wait queues). Shared-internal (runtime, sync, io).
 *
 * Model: a futex mutex in one 32-bit word: the low half is 1 while the
 * lock is held, the high half counts sleepers. Lock is one CAS. A
 * contended locker spins with backoff, then registers as a sleeper and
 * sleeps on the futex (it blocks the worker thread, which is fine because
 * critical sections are a few dozen instructions and never switch).
 * Unlock, where the kernel has membarrier (L3), is a plain 16-bit store of
 * the low half and a load of the high half: no atomic RMW. The sleeper
 * pays instead: after registering it runs membarrier(), which makes every
 * running thread of the process execute a full barrier, so an unlocker
 * either had its store visible before the sleeper looks at the word, or
 * loads the sleeper's registration after it and wakes it (the asymmetric
 * Dekker of liburcu and the kernel's own qspinlock unlock, a byte store).
 * Without membarrier (or under TSan, which does not model it) unlock is an
 * atomic fetch_and, as usual.
 * Invariants:
 *   L1  Never held across a fiber switch (park, yield): a lock taken on one
 *       thread must be released on the same thread. Primitives collect
 *       waiters under the lock and wake them after unlocking, or wake under
 *       it (sp__park_wake takes only leaf locks and never switches). The
 *       one exception is a solo park (park.c P6): the lock is released by
 *       the same thread right after the jump, in the context resumed next.
 *   L2  All-zero is a valid, unlocked lock (primitives are zero-initialised).
 *   L3  sp__lock_asym is fixed before main (a constructor registers with
 *       membarrier) and never changes, so lockers and unlockers always
 *       agree on the protocol.
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
  uint32_t v; /* low half: 1 while held; high half: sleepers */
} sp__lock_t;

#define SP__LOCK_HELD 0xffffu
#define SP__LOCK_SLEEPER 0x10000u

void sp__lock_slow(sp__lock_t *l);
void sp__futex_wake(uint32_t *addr, int n);
extern int sp__lock_asym; /* L3: unlock by plain store (membarrier works) */

/* Runs on: any thread. Switches: no (may block the thread briefly). */
static inline void sp__lock(sp__lock_t *l) {
  uint32_t free_ = 0;
  if (__atomic_compare_exchange_n(&l->v, &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  sp__lock_slow(l);
}

static inline void sp__unlock(sp__lock_t *l) {
#if defined(__x86_64__) && !defined(SP_HAVE_TSAN)
  if (__builtin_expect(sp__lock_asym, 1)) {
    /* little endian: the low half is the first 16 bits; x86 keeps the
     * store before later stores, and membarrier covers store -> load */
    uint16_t *half = (uint16_t *)&l->v;
    __atomic_store_n(&half[0], 0, __ATOMIC_RELEASE);
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the compiler keeps store, then load */
    if (__atomic_load_n(&half[1], __ATOMIC_RELAXED)) sp__futex_wake(&l->v, 1);
    return;
  }
#endif
  if (__atomic_fetch_and(&l->v, ~SP__LOCK_HELD, __ATOMIC_RELEASE) >= SP__LOCK_SLEEPER)
    sp__futex_wake(&l->v, 1);
}

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_LOCK_H */
