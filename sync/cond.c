/*
 * cond.c: sp_cond_t, Go's sync.Cond over an sp_mutex_t.
 *
 * Model: a FIFO of waiters under an internal lock. wait links the caller
 * (armed) before it unlocks the mutex, so a signal sent between the unlock
 * and the park is not lost; signal/broadcast wake the oldest / all.
 * Invariants:
 *   V1  A waiter is linked before the mutex is released.
 *   V2  The mutex is held again when sp_cond_wait returns, whatever the
 *       result (as with pthread_cond_timedwait).
 * Locks: lk (rank SYNC, taken before the user's mutex is released, never
 *   across a switch).
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/cancel.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

typedef struct {
  sp__lock_t lk;
  uint32_t pad_;
  sp__waitq_t q;
} cond_t;
_Static_assert(sizeof(cond_t) <= sizeof(sp_cond_t), "sp_cond_t too small");

int sp_cond_wait(sp_cond_t *cc, sp_mutex_t *m, int64_t deadline) {
  if (!cc || !m) return -EINVAL;
  cond_t *c = (cond_t *)cc;
  sp__parker_t p;
  sp__waiter_t w = {0};
  sp__park_begin(&p);
  sp__park_note("cond wait", cc);
  w.parker = &p;
  sp__lock(&c->lk);
  sp__waitq_push(&c->q, &w); /* V1 */
  sp__unlock(&c->lk);
  int r = sp_mutex_unlock(m);
  if (r < 0) { /* not locked: undo */
    sp__lock(&c->lk);
    sp__waitq_remove(&c->q, &w);
    sp__unlock(&c->lk);
    if (!sp__park_abort(&p)) sp__park_wait_unscoped(&p, SP_FOREVER); /* a signal raced us */
    return r;
  }
  r = sp__park_wait(&p, deadline);
  if (r != 0) {
    sp__lock(&c->lk);
    sp__waitq_remove(&c->q, &w);
    sp__unlock(&c->lk);
  }
  /* V2: the mutex is held again on return, even when the fiber's context
   * was cancelled meanwhile (a cancelled relock would return unlocked) */
  sp__cancel_t *scope = sp__cancel_bind(NULL);
  sp_mutex_lock(m);
  sp__cancel_bind(scope);
  return r;
}

static int wake(sp_cond_t *cc, bool all) {
  if (!cc) return -EINVAL;
  cond_t *c = (cond_t *)cc;
  sp__lock(&c->lk);
  sp__waiter_t *list = all ? sp__waitq_claim_all(&c->q) : sp__waitq_claim(&c->q, NULL);
  sp__unlock(&c->lk);
  int n = 0;
  for (sp__waiter_t *w = list; w; w = w->next) n++; /* before any wake (W2) */
  sp__waitq_wake_all(list);
  return n;
}

int sp_cond_signal(sp_cond_t *c) { return wake(c, false); }
int sp_cond_broadcast(sp_cond_t *c) { return wake(c, true); }
