/*
 * park.c: the one park/unpark state machine (usage in park.h).
 *
 * Model: one atomic word per fiber (f->pk, core.h) with two halves.
 *   token  decides WHO wakes a park. sp__park_begin makes it odd (armed) and
 *          remembers the value in the parker; sp__park_claim is a CAS from
 *          that odd value to the next even one. Event, deadline and
 *          cancellation all race through this CAS, so exactly one wins, and
 *          a stale waker (holding an old token) always loses.
 *   state  decides WHEN the woken fiber may be queued: only after it has
 *          fully left its stack. The fiber goes RUNNING -> PARKING when it
 *          arms (one store of both halves); the context resumed after the
 *          parking fiber does PARKING -> PARKED (CAS on the word, retried if
 *          a claim moved the token meanwhile; finding WOKEN: queue it now).
 *          The claim CAS keeps the state half, and the claimer learns from
 *          it which case it is in; its wake then does
 *              claimed PARKED:  -> RUNNABLE with a plain store, and queues
 *                               it (nobody else may write the word now)
 *              claimed PARKING: PARKING -> WOKEN by CAS (the fiber is still
 *                               on its stack: it or the context resumed
 *                               after it queues it, sched.c S2); if the CAS
 *                               finds PARKED, as above.
 * Why no wake-up is lost: the waker's transition and the switch-out's
 * transition are CASes on the same word from PARKING; whichever runs second
 * sees the other's result and takes over the queueing. Why no fiber runs on
 * two threads: queueing happens only from PARKED (after the switch-out
 * finished) or by the switch-out path itself. The common handoff (the
 * waiter parked long ago) costs two atomic RMWs: the claim and the
 * switch-out's CAS.
 * Foreign threads use the same claim protocol on the parker's own word
 * (0 armed, 1 claimed, 2 woken) and sleep on it with a futex.
 * Invariants:
 *   P1  token is odd exactly while a park is armed and unclaimed.
 *   P2  Exactly one sp__park_wake per sp__park_begin that was not aborted.
 *   P3  A fiber is queued only in state RUNNABLE, by exactly one thread.
 *   P4  A fiber bound to a cancellation scope (cancel.h) registers each wait
 *       on it: cancellation is one more waker racing through the token CAS.
 *   P5  WOKEN is the claimer's last write: a fiber that finds itself WOKEN
 *       owns its word again (plain stores).
 *   P6  Solo parks (sp__park_solo: no deadline, no cancellation scope, one
 *       registration whose every claimer holds the lock lk the waiter
 *       registered under) keep lk across the switch-out: the context
 *       resumed next stores PARKED and only then releases lk (same thread,
 *       sched.c S2). A claimer, holding lk, therefore always finds the
 *       fiber PARKED and alone: the claim is a plain store, the wake too.
 *       A handoff through a channel or mutex then costs only the lock's
 *       own atomics. (L1 of lock.h allows this one crossing: the lock is
 *       released by the same thread, right after the jump.)
 * Ordering: the claim CAS is acq_rel, so data the claimer hands over before
 *   sp__park_wake is visible to the woken waiter (via state/queue release).
 * Locks: none here. Deadlines use a timer on the parking worker's heap.
 */
#define _GNU_SOURCE
#include "runtime/park.h"

#include <errno.h>
#include <time.h>

#include "runtime/cancel.h"
#include "runtime/core.h"

enum { T_ARMED = 0, T_CLAIMED = 1, T_WOKEN = 2 }; /* foreign-thread claim word */

void sp__park_begin(sp__parker_t *p) {
  sp__worker_t *w = sp__self();
  p->reason = 0;
  p->winner = NULL;
  p->solo = 0;
  if (!w || !w->cur) {
    p->fiber = NULL;
    __atomic_store_n(&p->token, T_ARMED, __ATOMIC_RELAXED);
    return;
  }
  struct sp_fiber *f = w->cur;
  p->fiber = f;
  uint32_t t = (uint32_t)(__atomic_load_n(&f->pk, __ATOMIC_RELAXED) >> 32) + 1; /* P1: odd */
  p->token = t;
  __atomic_store_n(&f->pk, sp__pk(F_PARKING, t), __ATOMIC_RELEASE);
}

void sp__park_note(const char *what, const void *obj) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return;
  struct sp_fiber *f = w->cur;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* ~ms resolution is plenty */
  __atomic_store_n(&f->wait_since, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, __ATOMIC_RELAXED);
  __atomic_store_n(&f->wait_obj, obj, __ATOMIC_RELAXED);
  __atomic_store_n(&f->wait_what, what, __ATOMIC_RELEASE);
}

bool sp__park_claim(sp__parker_t *p) {
  if (p->solo) { /* P6: we hold the lock the waiter kept until PARKED */
    uint32_t t = p->token;
    uint64_t w = __atomic_load_n(&p->fiber->pk, __ATOMIC_RELAXED);
    if (w != sp__pk(F_PARKED, t))
      sp__panic("park: solo claim of fiber %llu in state %u, token %u (armed %u)",
                (unsigned long long)p->fiber->id, (uint32_t)w, (uint32_t)(w >> 32), t);
    __atomic_store_n(&p->fiber->pk, sp__pk(F_PARKED, t + 1), __ATOMIC_RELAXED);
    p->parked = 1;
    return true;
  }
  if (p->fiber) {
    uint32_t t = p->token;
    uint64_t *pk = &p->fiber->pk;
    uint64_t w = __atomic_load_n(pk, __ATOMIC_RELAXED);
    while ((uint32_t)(w >> 32) == t) { /* armed with our token */
      if (__atomic_compare_exchange_n(pk, &w, sp__pk((uint32_t)w, t + 1), false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED)) {
        p->parked = (uint32_t)w == F_PARKED; /* for wake: is it off its stack? */
        return true;
      }
    }
    return false;
  }
  uint32_t armed = T_ARMED;
  return __atomic_compare_exchange_n(&p->token, &armed, T_CLAIMED, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED);
}

/* Wakes claimed p; a woken fiber is queued at `where` (sched.c). */
static void wake(sp__parker_t *p, int reason, enum sp__where where) {
  p->reason = reason;
  struct sp_fiber *f = p->fiber;
  if (!f) {
    __atomic_store_n(&p->token, T_WOKEN, __ATOMIC_RELEASE);
    /* the thread may return once it sees T_WOKEN; a wake on the dead
     * address is harmless (futex waiters tolerate spurious wake-ups) */
    sp__futex_wake(&p->token, 1);
    return;
  }
  /* p may die as soon as the fiber runs: do not touch it below. */
  uint32_t t = p->token + 1; /* the claimed (even) token */
  if (!p->parked) {
    uint64_t w = sp__pk(F_PARKING, t);
    if (__atomic_compare_exchange_n(&f->pk, &w, sp__pk(F_WOKEN, t), false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      return; /* the switch-out path queues it (P3) */
    if (w != sp__pk(F_PARKED, t))
      sp__panic("park: wake of fiber %llu in state %u", (unsigned long long)f->id, (uint32_t)w);
  }
  /* PARKED and claimed: the switch-out is over and no other waker can win */
  __atomic_store_n(&f->pk, sp__pk(F_RUNNABLE, t), __ATOMIC_RELEASE);
  sp__enqueue(f->rt, f, where);
}

/* An event wakes a fiber into runnext: it runs next, as in Go. */
void sp__park_wake(sp__parker_t *p, int reason) { wake(p, reason, Q_NEXT); }
void sp__park_wake_fifo(sp__parker_t *p, int reason) { wake(p, reason, Q_TAIL); }

bool sp__park_abort(sp__parker_t *p) {
  if (!sp__park_claim(p)) return false;
  if (p->fiber) sp__fset(p->fiber, F_RUNNING); /* PARKING: still on its stack */
  return true;
}

/* Deadline timer: claims the park for -ETIMEDOUT. Runs under the heap lock.
 * Timers firing in one batch queue their fibers FIFO, so sleepers on a
 * worker wake in deadline order (runnext would reverse each batch). */
static void deadline_fire(sp__timer_t *t) {
  sp__parker_t *p = t->arg;
  if (sp__park_claim(p)) wake(p, -ETIMEDOUT, Q_TAIL);
}

static int wait_thread(sp__parker_t *p, int64_t deadline) {
  for (;;) {
    uint32_t v = __atomic_load_n(&p->token, __ATOMIC_ACQUIRE);
    if (v == T_WOKEN) return p->reason;
    int rc = sp__futex_wait(&p->token, v, v == T_CLAIMED ? SP_FOREVER : deadline);
    if (rc == -ETIMEDOUT && sp__park_claim(p)) return -ETIMEDOUT;
  }
}

/* A wait under a cancellation scope (cancel.h): registered on the scope,
 * its deadline cut to the scope's; a wait that ends at the scope's deadline
 * fires the scope (and so its subtree), then reports -ETIMEDOUT. */
static int wait_scoped(sp__parker_t *p, int64_t deadline, sp__cancel_t *c) {
  sp__cnode_t n = {.p = p};
  int err = sp__cancel_add(c, &n);
  if (err) {
    if (sp__park_abort(p)) return err;
    return sp__park_wait_unscoped(p, SP_FOREVER); /* claimed meanwhile: take it */
  }
  bool cut = c->deadline != SP_FOREVER && (deadline == SP_FOREVER || c->deadline < deadline);
  int r = sp__park_wait_unscoped(p, cut ? c->deadline : deadline);
  sp__cancel_del(c, &n);
  if (r == -ETIMEDOUT && cut && c->expire) c->expire(c);
  return r;
}

bool sp__park_solo(sp__parker_t *p, int64_t deadline) {
  p->solo = p->fiber && deadline == SP_FOREVER && !p->fiber->cancel;
  return p->solo;
}

int sp__park_wait_locked(sp__parker_t *p, sp__lock_t *lk) {
  sp__switch_out_unlock(lk);
  return p->reason;
}

int sp__park_wait(sp__parker_t *p, int64_t deadline) {
  if (p->fiber && p->fiber->cancel) return wait_scoped(p, deadline, p->fiber->cancel);
  return sp__park_wait_unscoped(p, deadline);
}

int sp__park_wait_unscoped(sp__parker_t *p, int64_t deadline) {
  if (!p->fiber) return wait_thread(p, deadline);
  bool timed = deadline != SP_FOREVER;
  if (timed && deadline <= sp_now() && sp__park_abort(p)) return -ETIMEDOUT;
  sp__timer_t timer = {.when = deadline, .idx = -1, .fire = deadline_fire, .arg = p};
  if (timed && sp__timer_add(&sp__self()->timers, &timer) < 0 && sp__park_abort(p))
    return -ENOMEM;
  sp__switch_out(ACT_PARK);
  if (timed) sp__timer_del(&timer); /* T3: fire is over before the frame dies */
  return p->reason;
}
