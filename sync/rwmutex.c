/*
 * rwmutex.c: sp_rwmutex_t, Go's sync.RWMutex.
 *
 * Model: counters and two FIFO queues under one internal lock. Readers
 * enter while no writer holds or waits; a waiting writer blocks new readers
 * (so readers cannot starve writers); when a writer unlocks, the readers
 * that queued meanwhile go first (so writers cannot starve readers), then
 * the next writer.
 * Invariants:
 *   R1  writer == 1 implies readers == 0.
 *   R2  A waiter is granted (counted in readers / writer) by whoever wakes
 *       it, before the wake: woken means entered.
 *   R3  wwait counts linked writer waiters; when it drops to 0 with no
 *       writer holding, queued readers are admitted.
 * Locks: lk (rank SYNC), never across a switch.
 */
#include <errno.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

typedef struct {
  sp__lock_t lk;
  int32_t readers; /* active readers */
  int32_t writer;  /* 1 while write-locked */
  int32_t wwait;   /* writers waiting */
  sp__waitq_t rq, wq;
} rw_t;
_Static_assert(sizeof(rw_t) <= sizeof(sp_rwmutex_t), "sp_rwmutex_t too small");

/* Admits every queued reader; returns them as a list to wake. Locks: lk. */
static sp__waiter_t *admit_readers(rw_t *m) {
  sp__waiter_t *list = sp__waitq_claim_all(&m->rq);
  for (sp__waiter_t *w = list; w; w = w->next) m->readers++; /* R2 */
  return list;
}

/* Admits the next writer if the lock is free. Locks: lk. */
static sp__waiter_t *admit_writer(rw_t *m) {
  if (m->writer || m->readers) return NULL;
  sp__waiter_t *w;
  while ((w = sp__waitq_claim(&m->wq, NULL)) != NULL) {
    m->wwait--;
    m->writer = 1; /* R2 */
    return w;
  }
  return NULL;
}

int sp_rwmutex_rlock_until(sp_rwmutex_t *mm, int64_t deadline) {
  if (!mm) return -EINVAL;
  rw_t *m = (rw_t *)mm;
  sp__lock(&m->lk);
  if (!m->writer && m->wwait == 0) {
    m->readers++;
    sp__unlock(&m->lk);
    return 0;
  }
  if (deadline == 0) {
    sp__unlock(&m->lk);
    return -EAGAIN;
  }
  sp__waiter_t w = {0};
  return sp__waitq_block(&m->rq, &w, &m->lk, deadline, false, "rwmutex rlock", mm);
}

int sp_rwmutex_rlock(sp_rwmutex_t *m) { return sp_rwmutex_rlock_until(m, SP_FOREVER); }

int sp_rwmutex_runlock(sp_rwmutex_t *mm) {
  if (!mm) return -EINVAL;
  rw_t *m = (rw_t *)mm;
  sp__lock(&m->lk);
  if (m->readers == 0) {
    sp__unlock(&m->lk);
    sp__debugf(NULL, "rwmutex %p: runlock without a read lock", (void *)mm);
    return -EPERM;
  }
  m->readers--;
  sp__waiter_t *w = admit_writer(m);
  sp__unlock(&m->lk);
  if (w) sp__park_wake(w->parker, 0);
  return 0;
}

int sp_rwmutex_lock_until(sp_rwmutex_t *mm, int64_t deadline) {
  if (!mm) return -EINVAL;
  rw_t *m = (rw_t *)mm;
  sp__lock(&m->lk);
  if (!m->writer && !m->readers && sp__waitq_empty(&m->wq)) {
    m->writer = 1;
    sp__unlock(&m->lk);
    return 0;
  }
  if (deadline == 0) {
    sp__unlock(&m->lk);
    return -EAGAIN;
  }
  m->wwait++;
  sp__waiter_t w = {0};
  int r = sp__waitq_block(&m->wq, &w, &m->lk, deadline, false, "rwmutex lock", mm);
  if (r == 0) return 0;
  /* gave up: we no longer hold readers back (R3) */
  sp__lock(&m->lk);
  m->wwait--;
  sp__waiter_t *list = m->wwait == 0 && !m->writer ? admit_readers(m) : NULL;
  sp__unlock(&m->lk);
  sp__waitq_wake_all(list);
  return r;
}

int sp_rwmutex_lock(sp_rwmutex_t *m) { return sp_rwmutex_lock_until(m, SP_FOREVER); }

int sp_rwmutex_unlock(sp_rwmutex_t *mm) {
  if (!mm) return -EINVAL;
  rw_t *m = (rw_t *)mm;
  sp__lock(&m->lk);
  if (!m->writer) {
    sp__unlock(&m->lk);
    sp__debugf(NULL, "rwmutex %p: unlock without the write lock", (void *)mm);
    return -EPERM;
  }
  m->writer = 0;
  sp__waiter_t *list = admit_readers(m);
  if (!list) list = admit_writer(m);
  sp__unlock(&m->lk);
  sp__waitq_wake_all(list);
  return 0;
}
