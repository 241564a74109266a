/*
 * mutex.c: sp_mutex_t, Go's sync.Mutex.
 *
 * Model: a state word (LOCKED, WAITERS, STARVING) for the uncontended
 * paths (one CAS to lock, one to unlock) plus a FIFO wait queue under an
 * internal lock. Normal mode: unlock releases the mutex and wakes the first
 * waiter, which competes with newcomers (they may barge in, which keeps
 * throughput high); a woken waiter that loses queues again at the front.
 * Starvation mode, entered when a waiter has waited over 1 ms: unlock hands
 * ownership straight to the first waiter and newcomers queue at the back;
 * it ends when the queue empties.
 * Invariants:
 *   M1  WAITERS is set (by CAS from the state the waiter observed, under
 *       lk) before a waiter blocks, so the unlock fast path (CAS LOCKED->0)
 *       cannot miss a waiter.
 *   M2  STARVING is set only while LOCKED and cleared when the queue
 *       empties, so an unlocked mutex never turns newcomers away.
 *   M3  A handoff (WOKE_OWNER) keeps LOCKED set: ownership moves without a
 *       window in which a barger could take it.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "sync/waitq.h"

enum { LOCKED = 1, WAITERS = 2, STARVING = 4 };
enum { WOKE_RETRY = 1, WOKE_OWNER = 2 };
#define STARVE_NS 1000000 /* Go's starvationThresholdNs */

typedef struct {
  uint32_t state; /* atomic */
  sp__lock_t lk;
  sp__waitq_t q;
  uint64_t unused_;
} mutex_t;
_Static_assert(sizeof(mutex_t) <= sizeof(sp_mutex_t), "sp_mutex_t too small");

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CAS(p, e, d) \
  __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* Takes the mutex if it is free and not reserved for waiters; else marks
 * WAITERS (M1). Returns 1 if taken, 0 if the caller must wait.
 * Locks: caller holds lk. */
static int take_or_mark(mutex_t *m, bool starving) {
  uint32_t s = LOAD(&m->state);
  for (;;) {
    if (!(s & (LOCKED | STARVING))) {
      if (CAS(&m->state, &s, s | LOCKED)) return 1;
      continue;
    }
    uint32_t ns = s | WAITERS | (starving && (s & LOCKED) ? STARVING : 0);
    if (ns == s || CAS(&m->state, &s, ns)) return 0;
  }
}

int sp_mutex_lock_until(sp_mutex_t *mm, int64_t deadline) {
  if (!mm) return -EINVAL;
  mutex_t *m = (mutex_t *)mm;
  uint32_t s = 0;
  if (CAS(&m->state, &s, LOCKED)) return 0;
  for (int i = 0; i < 40; i++) { /* brief optimistic spin, as Go does */
    __builtin_ia32_pause();
    s = LOAD(&m->state);
    if (!(s & (LOCKED | STARVING)) && CAS(&m->state, &s, s | LOCKED)) return 0;
  }
  int64_t since = 0;
  bool front = false;
  for (;;) {
    sp__lock(&m->lk);
    bool starving = since && sp_now() - since > STARVE_NS;
    if (take_or_mark(m, starving)) {
      sp__unlock(&m->lk);
      return 0;
    }
    if (deadline == 0) {
      if (sp__waitq_empty(&m->q)) __atomic_and_fetch(&m->state, ~(uint32_t)WAITERS, __ATOMIC_ACQ_REL);
      sp__unlock(&m->lk);
      return -EAGAIN;
    }
    if (!since) since = sp_now();
    sp__waiter_t w = {.since = since};
    int r = sp__waitq_block(&m->q, &w, &m->lk, deadline, front);
    if (r != 0) {
      sp__lock(&m->lk);
      if (sp__waitq_empty(&m->q))
        __atomic_and_fetch(&m->state, ~(uint32_t)(WAITERS | STARVING), __ATOMIC_ACQ_REL);
      sp__unlock(&m->lk);
      return r;
    }
    if (w.ok == WOKE_OWNER) return 0; /* M3 */
    front = true;                     /* lost a race after waking: wait first in line */
  }
}

int sp_mutex_lock(sp_mutex_t *m) { return sp_mutex_lock_until(m, SP_FOREVER); }
int sp_mutex_trylock(sp_mutex_t *m) { return sp_mutex_lock_until(m, 0); }

int sp_mutex_unlock(sp_mutex_t *mm) {
  if (!mm) return -EINVAL;
  mutex_t *m = (mutex_t *)mm;
  uint32_t s = LOCKED;
  if (CAS(&m->state, &s, 0)) return 0;
  if (!(s & LOCKED)) {
    sp__debugf(NULL, "mutex %p: unlock of an unlocked mutex", (void *)mm);
    return -EPERM;
  }
  sp__lock(&m->lk);
  sp__waiter_t *w = sp__waitq_claim(&m->q, NULL);
  uint32_t clear = sp__waitq_empty(&m->q) ? WAITERS | STARVING : 0;
  if (w && (LOAD(&m->state) & STARVING)) { /* M3: hand over, stay LOCKED */
    if (clear) __atomic_and_fetch(&m->state, ~clear, __ATOMIC_ACQ_REL);
    w->ok = WOKE_OWNER;
  } else {
    __atomic_and_fetch(&m->state, ~(clear | LOCKED | (w ? 0 : STARVING)), __ATOMIC_ACQ_REL);
    if (w) w->ok = WOKE_RETRY;
  }
  sp__unlock(&m->lk);
  if (w) sp__park_wake(w->parker, 0);
  return 0;
}
