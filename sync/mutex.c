/*
 * mutex.c: sp_mutex_t, Go's sync.Mutex.
 *
 * Model: a state word (LOCKED, WAITERS, STARVING, WOKEN) for the
 * uncontended paths (one CAS to lock, one to unlock) plus a FIFO wait queue
 * under an internal lock. Normal mode: unlock releases the mutex and wakes
 * the first waiter, unless a woken waiter is already on its way (WOKEN) or
 * the mutex was taken again meanwhile; the woken waiter competes with
 * newcomers (they may barge in, which keeps throughput high), and if it
 * loses it queues again at the front. Lockers spin briefly only when their
 * worker has nothing else to run and another worker is busy (sp__spin_ok).
 * Starvation mode, entered when a waiter has waited over 1 ms: unlock hands
 * ownership straight to the first waiter and newcomers queue at the back;
 * it ends when the queue empties.
 * Invariants:
 *   M1  WAITERS is set (by CAS from the state the waiter observed, under
 *       lk) before a waiter blocks, so the unlock fast path (CAS LOCKED->0)
 *       cannot miss a waiter.
 *   M2  STARVING is set only while LOCKED and cleared when the queue
 *       empties (so an unlocked mutex never turns newcomers away) or when
 *       the waiter handed the mutex had waited less than the threshold (as
 *       Go does, so the mode does not outlive the starvation); it is set
 *       and cleared only under lk.
 *   M3  A handoff (WOKE_OWNER) keeps LOCKED set: ownership moves without a
 *       window in which a barger could take it.
 *   M5  While a debug-mode runtime exists, a fiber of one records itself as
 *       owner when it locks and every unlock clears the record: a second
 *       lock by the owner is refused (-EDEADLK) and an unlock by another
 *       fiber is reported, both naming the fiber (Go allows the latter, so
 *       it still unlocks).
 *   M4  WOKEN is set by the unlock that wakes a waiter to retry and cleared
 *       by that waiter (when it takes the mutex or queues again): at most
 *       one retrying waiter at a time, so unlocks do not wake a crowd.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>
#include <stddef.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

enum { LOCKED = 1, WAITERS = 2, STARVING = 4, WOKEN = 8 };
enum { WOKE_RETRY = 1, WOKE_OWNER = 2 };
#define STARVE_NS 1000000 /* Go's starvationThresholdNs */

typedef struct {
  uint32_t state; /* atomic */
  sp__lock_t lk;
  sp__waitq_t q;
  uint64_t owner; /* atomic; debug mode only: the holding fiber's id (M5) */
} mutex_t;
_Static_assert(sizeof(mutex_t) <= sizeof(sp_mutex_t), "sp_mutex_t too small");

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CAS(p, e, d) \
  __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* Takes the mutex if it is free and not reserved for waiters; else marks
 * WAITERS (M1). A waiter woken to retry clears WOKEN either way (M4).
 * Returns 1 if taken, 0 if the caller must wait. Locks: caller holds lk. */
static int take_or_mark(mutex_t *m, bool starving, bool woken) {
  uint32_t s = LOAD(&m->state);
  uint32_t clear = woken ? WOKEN : 0;
  for (;;) {
    if (!(s & (LOCKED | STARVING))) {
      if (CAS(&m->state, &s, (s | LOCKED) & ~clear)) return 1;
      continue;
    }
    uint32_t ns = (s | WAITERS | (starving && (s & LOCKED) ? STARVING : 0)) & ~clear;
    if (ns == s || CAS(&m->state, &s, ns)) return 0;
  }
}

static int lock_until(mutex_t *m, int64_t deadline, bool tried);

int sp_mutex_lock_until(sp_mutex_t *mm, int64_t deadline) {
  if (!mm) return -EINVAL;
  mutex_t *m = (mutex_t *)mm;
  uint64_t me = sp__debug_self(); /* M5 */
  if (me && __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == me) {
    sp__debugf(NULL, "mutex %p: recursive lock (this fiber already holds it)", (void *)mm);
    return -EDEADLK;
  }
  int rc = lock_until(m, deadline, false);
  if (rc == 0 && me) __atomic_store_n(&m->owner, me, __ATOMIC_RELAXED);
  return rc;
}

/* Takes the mutex if it is free and not reserved for waiters (a
 * newcomer's barging attempt, no lk). Returns whether it did. */
static bool try_barge(mutex_t *m) {
  uint32_t s = LOAD(&m->state);
  return !(s & (LOCKED | STARVING)) && CAS(&m->state, &s, s | LOCKED);
}

/* tried: the caller's fast path already failed its CAS just now. */
__attribute__((noinline)) static int lock_until(mutex_t *m, int64_t deadline, bool tried) {
  uint32_t s = 0;
  if (!tried && CAS(&m->state, &s, LOCKED)) return 0;
  /* one more look right away: critical sections are short, and the holder
   * on another worker is often out already (measured: 27 -> 21 ns a
   * lock+unlock with 8 fibers on 2 workers; more looks, or pauses between
   * them, did worse) */
  if (try_barge(m)) return 0;
  for (int i = 0; i < 4 && sp__spin_ok(); i++) { /* Go: 4 x 30 PAUSE */
    for (int k = 0; k < 30; k++) __builtin_ia32_pause();
    if (try_barge(m)) return 0;
  }
  int64_t since = 0;
  bool front = false; /* true after a wake-up to retry (then WOKEN is ours) */
  for (;;) {
    sp__lock(&m->lk);
    bool starving = since && sp_now() - since > STARVE_NS;
    if (take_or_mark(m, starving, front)) {
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
    int r = sp__waitq_block(&m->q, &w, &m->lk, deadline, front, "mutex lock", m);
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

/* The fast paths are inline in sp_sync.h (one CAS each: state_ is
 * mutex_t.state, LOCKED is 1); these are their out-of-line halves. */
_Static_assert(offsetof(mutex_t, state) == 0 && LOCKED == 1, "sp_sync.h's inline fast paths");

int sp_mutex_lock_slow_(sp_mutex_t *mm) {
  if (!mm || sp__debug_any()) return sp_mutex_lock_until(mm, SP_FOREVER);
  return lock_until((mutex_t *)mm, SP_FOREVER, true); /* its CAS just failed */
}
int sp_mutex_trylock(sp_mutex_t *m) { return sp_mutex_lock_until(m, 0); }

int sp_mutex_unlock_slow_(sp_mutex_t *mm) {
  if (!mm) return -EINVAL;
  mutex_t *m = (mutex_t *)mm;
  uint32_t s = LOAD(&m->state);
  if (sp__debug_any()) { /* M5 */
    uint64_t me = sp__debug_self(), owner = __atomic_load_n(&m->owner, __ATOMIC_RELAXED);
    if (me && owner && owner != me)
      sp__debugf(NULL, "mutex %p: unlocked by a fiber that does not hold it (fiber %llu does)",
                 (void *)mm, (unsigned long long)owner);
    __atomic_store_n(&m->owner, 0, __ATOMIC_RELAXED);
    s = LOCKED;
    if (CAS(&m->state, &s, 0)) return 0;
  }
  for (;;) {
    if (!(s & LOCKED)) {
      sp__debugf(NULL, "mutex %p: unlock of an unlocked mutex", (void *)mm);
      return -EPERM;
    }
    if (s & STARVING) break;
    if ((s & WAITERS) && !(s & WOKEN)) break; /* someone to wake: under lk */
    if (CAS(&m->state, &s, s & ~(uint32_t)LOCKED)) return 0; /* M4: nobody to wake */
  }
  /* STARVING is only set and cleared under lk, so it is stable here */
  sp__lock(&m->lk);
  sp__waiter_t *w = sp__waitq_claim(&m->q, NULL);
  uint32_t clear = sp__waitq_empty(&m->q) ? WAITERS | STARVING : 0;
  if (LOAD(&m->state) & STARVING) {
    if (w) {
      w->ok = WOKE_OWNER; /* M3: hand over, LOCKED stays set */
      /* as Go: starvation ends once a waiter got in within the threshold */
      if (sp_now() - w->since < STARVE_NS) clear |= STARVING;
    } else {
      clear |= LOCKED | STARVING;
    }
  } else {
    clear |= LOCKED;
    if (w) {
      w->ok = WOKE_RETRY;
      __atomic_or_fetch(&m->state, WOKEN, __ATOMIC_ACQ_REL); /* M4 */
    }
  }
  __atomic_and_fetch(&m->state, ~clear, __ATOMIC_ACQ_REL);
  sp__unlock(&m->lk);
  if (w) sp__park_wake(w->parker, 0);
  return 0;
}
