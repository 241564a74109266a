/*
 * waitgroup.c: sp_waitgroup_t, Go's sync.WaitGroup (plus wg.Go).
 *
 * Model: an atomic counter and a FIFO of waiters under an internal lock.
 * An add is one CAS (fibers of several workers adding and finishing do not
 * queue on the lock); the add that brings the counter to zero takes the
 * lock and wakes every waiter; the group can then be reused.
 * Invariants:
 *   G1  The counter never goes negative: such an add is refused whole.
 *   G2  A waiter, under the lock, sets WAITERS in the counter word while
 *       the count is > 0 and then links itself; the add that brings the
 *       count to zero clears WAITERS in the same CAS and, if it was set,
 *       takes the lock and wakes every linked waiter (the lock orders it
 *       after any link in progress).
 *   G3  The group may be freed as soon as a wait returns 0 (as in Go). An
 *       add that finds no WAITERS never touches it after its CAS. One that
 *       does (a waiter may also have given up, leaving WAITERS behind) sets
 *       WAKING in the same CAS and clears it as its very last access, after
 *       claiming the waiters and before waking them; a wait returns 0 only
 *       once it saw the count at zero with WAKING clear.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>
#include <sched.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "runtime/spawn.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

typedef struct {
  int64_t count;
  sp__lock_t lk;
  uint32_t pad_;
  sp__waitq_t q;
} wg_t;
_Static_assert(sizeof(wg_t) <= sizeof(sp_waitgroup_t), "sp_waitgroup_t too small");

#define WAITERS ((int64_t)1 << 62) /* in count: a waiter may be linked (G2) */
#define WAKING ((int64_t)1 << 61)  /* in count: an add is still waking (G3) */
#define COUNT(v) ((v) & (WAKING - 1))

int64_t sp_wg_add(sp_waitgroup_t *g, int64_t delta) {
  if (!g) return -EINVAL;
  wg_t *wg = (wg_t *)g;
  int64_t old = __atomic_load_n(&wg->count, __ATOMIC_RELAXED), v;
  do {
    int64_t c = COUNT(old) + delta;
    if (c < 0 || c >= WAKING) { /* G1 */
      sp__debugf(NULL, "waitgroup %p: counter would go %s (%lld)", (void *)g,
                 c < 0 ? "negative" : "out of range", (long long)c);
      return -EINVAL;
    }
    if (c == 0 && delta != 0 && (old & WAITERS))
      v = WAKING; /* G2, G3: we wake them */
    else
      v = (old & (WAITERS | WAKING)) | c;
  } while (!__atomic_compare_exchange_n(&wg->count, &old, v, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED));
  if (COUNT(v) != 0 || delta == 0 || !(old & WAITERS)) return COUNT(v); /* G3 */
  sp__lock(&wg->lk);
  sp__waiter_t *list = sp__waitq_claim_all(&wg->q);
  sp__unlock(&wg->lk);
  __atomic_fetch_and(&wg->count, ~WAKING, __ATOMIC_RELEASE); /* G3: the last access */
  sp__waitq_wake_all(list);
  return 0;
}

int64_t sp_wg_done(sp_waitgroup_t *g) { return sp_wg_add(g, -1); }

/* Returns 0 once the count is zero and no add is still waking (G3). */
static int settled(wg_t *wg) {
  for (int i = 0; __atomic_load_n(&wg->count, __ATOMIC_ACQUIRE) & WAKING; i++) {
    if (i < 64) __builtin_ia32_pause();
    else if (sp_yield() != 0) sched_yield(); /* the adder was preempted */
  }
  return 0;
}

int sp_wg_wait(sp_waitgroup_t *g, int64_t deadline) {
  if (!g) return -EINVAL;
  wg_t *wg = (wg_t *)g;
  int64_t v = __atomic_load_n(&wg->count, __ATOMIC_ACQUIRE);
  if (COUNT(v) == 0) return v & WAKING ? settled(wg) : 0;
  if (deadline == 0) return -EAGAIN;
  sp__lock(&wg->lk);
  v = __atomic_load_n(&wg->count, __ATOMIC_ACQUIRE);
  while (COUNT(v) != 0 && !(v & WAITERS) &&
         !__atomic_compare_exchange_n(&wg->count, &v, v | WAITERS, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE)) {
  }
  if (COUNT(v) == 0) { /* reached zero meanwhile */
    sp__unlock(&wg->lk);
    return settled(wg);
  }
  sp__waiter_t w = {0};
  int r = sp__waitq_block(&wg->q, &w, &wg->lk, deadline, false, "waitgroup wait", g); /* G2 */
  return r == 0 ? settled(wg) : r;
}

static void go_done(void *wg) { sp_wg_done(wg); }

int sp_wg_go(sp_waitgroup_t *wg, sp_runtime_t *rt, sp_fn_t fn, void *arg) {
  if (!wg || !fn) return -EINVAL;
  int64_t rc = sp_wg_add(wg, 1);
  if (rc < 0) return (int)rc;
  sp_spawn_opts_t o = {"wg.go", 0, 1};
  int r = sp__spawn_hooked(rt, NULL, fn, arg, &o, go_done, wg, __FILE__, __LINE__);
  if (r < 0) sp_wg_add(wg, -1);
  return r;
}
