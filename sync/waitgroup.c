/*
 * waitgroup.c: sp_waitgroup_t, Go's sync.WaitGroup (plus wg.Go).
 *
 * Model: an atomic counter and a FIFO of waiters under an internal lock.
 * An add is one CAS (fibers of several workers adding and finishing do not
 * queue on the lock); the add that brings the counter to zero takes the
 * lock and wakes every waiter; the group can then be reused.
 * Invariants:
 *   G1  The counter never goes negative: such an add is refused whole.
 *   G2  A waiter links itself only under the lock and after seeing the
 *       counter > 0 there; the add that reaches zero always takes the lock
 *       after its CAS, so it finds every waiter that saw the old value.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "runtime/spawn.h"
#include "sync/sp_sync.h"
#include "sync/waitq.h"

typedef struct {
  int64_t count;
  sp__lock_t lk;
  uint32_t pad_;
  sp__waitq_t q;
} wg_t;
_Static_assert(sizeof(wg_t) <= sizeof(sp_waitgroup_t), "sp_waitgroup_t too small");

int64_t sp_wg_add(sp_waitgroup_t *g, int64_t delta) {
  if (!g) return -EINVAL;
  wg_t *wg = (wg_t *)g;
  int64_t old = __atomic_load_n(&wg->count, __ATOMIC_RELAXED), v;
  do {
    v = old + delta;
    if (v < 0) { /* G1 */
      sp__debugf(NULL, "waitgroup %p: counter would go negative (%lld)", (void *)g, (long long)v);
      return -EINVAL;
    }
  } while (!__atomic_compare_exchange_n(&wg->count, &old, v, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED));
  if (v != 0 || delta == 0) return v;
  sp__lock(&wg->lk); /* G2 */
  sp__waiter_t *list = sp__waitq_claim_all(&wg->q);
  sp__unlock(&wg->lk);
  sp__waitq_wake_all(list);
  return 0;
}

int64_t sp_wg_done(sp_waitgroup_t *g) { return sp_wg_add(g, -1); }

int sp_wg_wait(sp_waitgroup_t *g, int64_t deadline) {
  if (!g) return -EINVAL;
  wg_t *wg = (wg_t *)g;
  if (__atomic_load_n(&wg->count, __ATOMIC_ACQUIRE) == 0) return 0;
  sp__lock(&wg->lk);
  if (__atomic_load_n(&wg->count, __ATOMIC_ACQUIRE) == 0) {
    sp__unlock(&wg->lk);
    return 0;
  }
  if (deadline == 0) {
    sp__unlock(&wg->lk);
    return -EAGAIN;
  }
  sp__waiter_t w = {0};
  return sp__waitq_block(&wg->q, &w, &wg->lk, deadline, false, "waitgroup wait", g); /* G2 */
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
