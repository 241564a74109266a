/*
 * once.c: sp_once_t, Go's sync.Once.
 *
 * Model: a state word (0 not run, 1 running, 2 done) read with acquire on
 * the fast path; the caller that moves it 0 -> 1 runs fn, then publishes 2
 * and wakes everyone who waited for it.
 * Invariants:
 *   O1  fn runs at most once; every sp_once that returns 0 happens after
 *       fn returned (release store of 2 / acquire load).
 *   O2  Waiters link only while the state is 1 (checked under lk).
 * Locks: lk (rank SYNC), never across a switch (fn runs unlocked).
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

enum { NOT_RUN, RUNNING, DONE };

typedef struct {
  uint32_t state;
  sp__lock_t lk;
  sp__waitq_t q;
} once_t;
_Static_assert(sizeof(once_t) <= sizeof(sp_once_t), "sp_once_t too small");

int sp_once(sp_once_t *oo, void (*fn)(void *), void *arg) {
  if (!oo || !fn) return -EINVAL;
  once_t *o = (once_t *)oo;
  if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) == DONE) return 0;
  uint32_t s = NOT_RUN;
  if (__atomic_compare_exchange_n(&o->state, &s, RUNNING, false, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE)) {
    fn(arg);
    sp__lock(&o->lk);
    __atomic_store_n(&o->state, DONE, __ATOMIC_RELEASE); /* O1 */
    sp__waiter_t *list = sp__waitq_claim_all(&o->q);
    sp__unlock(&o->lk);
    sp__waitq_wake_all(list);
    return 0;
  }
  sp__lock(&o->lk);
  if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) == DONE) { /* O2 */
    sp__unlock(&o->lk);
    return 0;
  }
  sp__waiter_t w = {0};
  return sp__waitq_block(&o->q, &w, &o->lk, SP_FOREVER, false, "once", oo);
}
