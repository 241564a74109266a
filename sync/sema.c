/*
 * sema.c: sp_sema_t, a weighted semaphore (golang.org/x/sync/semaphore).
 *
 * Model: capacity, units held, and a FIFO of waiters (each with the units
 * it wants) under an internal lock. Acquire succeeds at once only when the
 * units are free AND nobody waits (FIFO: a big request is not overtaken by
 * small ones); release grants waiters from the head while they fit.
 * Invariants:
 *   S1  0 <= cur <= size.
 *   S2  A waiter is granted (cur += weight) by whoever wakes it.
 *   S3  When the head waiter leaves without being granted (deadline), the
 *       ones behind it are re-examined: they may fit now.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

typedef struct {
  int64_t size, cur;
  sp__lock_t lk;
  uint32_t pad_;
  sp__waitq_t q;
} sema_t;
_Static_assert(sizeof(sema_t) <= sizeof(sp_sema_t), "sp_sema_t too small");

int sp_sema_init(sp_sema_t *ss, int64_t size) {
  if (!ss || size < 0) return -EINVAL;
  sema_t *s = (sema_t *)ss;
  *s = (sema_t){.size = size};
  return 0;
}

/* Grants head waiters while they fit (S2); returns them to wake. Stale
 * waiters (their wait already ended) are dropped on the way; their frames
 * are alive until they take lk to unlink themselves (W3). Locks: lk. */
static sp__waiter_t *grant(sema_t *s) {
  sp__waiter_t *list = NULL, *h;
  while ((h = s->q.head) != NULL && s->size - s->cur >= h->weight) {
    sp__waitq_remove(&s->q, h);
    if (!sp__park_claim(h->parker)) continue;
    h->parker->winner = h;
    s->cur += h->weight;
    h->next = list;
    list = h;
  }
  return list;
}

int sp_sema_acquire(sp_sema_t *ss, int64_t n, int64_t deadline) {
  if (!ss || n < 0) return -EINVAL;
  sema_t *s = (sema_t *)ss;
  sp__lock(&s->lk);
  if (n > s->size) {
    sp__unlock(&s->lk);
    return -EINVAL; /* could never be satisfied */
  }
  if (s->size - s->cur >= n && sp__waitq_empty(&s->q)) {
    s->cur += n;
    sp__unlock(&s->lk);
    return 0;
  }
  if (deadline == 0) {
    sp__unlock(&s->lk);
    return -EAGAIN;
  }
  sp__waiter_t w = {.weight = n};
  int r = sp__waitq_block(&s->q, &w, &s->lk, deadline, false, "semaphore acquire", ss);
  if (r == 0) return 0;
  sp__lock(&s->lk); /* S3 */
  sp__waiter_t *list = grant(s);
  sp__unlock(&s->lk);
  sp__waitq_wake_all(list);
  return r;
}

int sp_sema_release(sp_sema_t *ss, int64_t n) {
  if (!ss || n < 0) return -EINVAL;
  sema_t *s = (sema_t *)ss;
  sp__lock(&s->lk);
  if (n > s->cur) {
    sp__unlock(&s->lk);
    sp__debugf(NULL, "semaphore %p: release of %lld units, only %lld held", (void *)ss,
               (long long)n, (long long)s->cur);
    return -EINVAL;
  }
  s->cur -= n;
  sp__waiter_t *list = grant(s);
  sp__unlock(&s->lk);
  sp__waitq_wake_all(list);
  return 0;
}
