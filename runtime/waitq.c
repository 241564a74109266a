/*
 * waitq.c: blocking on a wait queue (model and invariants in waitq.h).
 */
#include "runtime/waitq.h"

#include "runtime/lock.h"

int sp__waitq_block(sp__waitq_t *q, sp__waiter_t *w, sp__lock_t *lk, int64_t deadline,
                    bool front, const char *what, const void *obj) {
  sp__parker_t p;
  sp__park_begin(&p); /* armed before anyone can see w */
  sp__park_note(what, obj);
  w->parker = &p;
  bool solo = sp__park_solo(&p, deadline); /* before anyone can see w */
  if (front)
    sp__waitq_push_front(q, w);
  else
    sp__waitq_push(q, w);
  int r;
  if (solo) {
    r = sp__park_wait_locked(&p, lk); /* park.c P6: lk released after the switch */
  } else {
    sp__unlock(lk); /* L1: never held across the switch */
    r = sp__park_wait(&p, deadline);
  }
  if (r != 0) { /* nobody claimed us: we may still be linked (W3) */
    sp__lock(lk);
    sp__waitq_remove(q, w);
    sp__unlock(lk);
  }
  return r;
}
