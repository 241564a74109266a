/*
 * time.c: timers and tickers on channels (API in sp_time.h), on the
 * runtime's per-worker timer heaps (runtime/timer.h; a ticker is a
 * periodic heap timer, T4 there).
 *
 * Model: the heap timer's callback runs under the heap lock; it sends the
 * fire time on the timer's one-slot channel without blocking (a full slot
 * drops the tick), or, for an after-func, spawns the fiber that runs it.
 * Invariants:
 *   M1  A timer is armed on at most one heap; stop is sp__timer_del, which
 *       returns only once a running callback finished (T3), so after stop
 *       nothing more is sent; the drain that follows then leaves the slot
 *       empty for good.
 *   M2  lk serialises stop/reset/free of one timer against each other
 *       (never held by the callback, so no lock order against the heap).
 * Locks: lk, then the heap lock (inside sp__timer_del/add), then the
 *   channel's lock (callback, under the heap lock); never the reverse.
 */
#include "sync/sp_time.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/cancel.h"
#include "runtime/lock.h"
#include "runtime/timer.h"

struct sp_timer {
  sp__timer_t t;
  sp__lock_t lk; /* M2 */
  sp_chan_t *ch; /* NULL for an after-func */
  void (*fn)(void *);
  void *arg;
  sp_runtime_t *rt;
  int ticker;
  int armed; /* under lk: queued by start/reset and not stopped */
};

typedef struct call {
  void (*fn)(void *);
  void *arg;
} call_t;

static void *run_after(void *a) {
  call_t c = *(call_t *)a;
  free(a);
  c.fn(c.arg);
  return NULL;
}

/* Heap callback: under the heap lock (T3). */
static void fire(sp__timer_t *ht) {
  sp_timer_t *t = ht->arg;
  if (t->ch) {
    int64_t now = sp_now();
    sp_chan_send(t->ch, &now, 0); /* -EAGAIN: a tick is unread; drop this one */
    return;
  }
  call_t *c = malloc(sizeof *c);
  if (!c) return;
  c->fn = t->fn;
  c->arg = t->arg;
  static const sp_spawn_opts_t opts = {"after-func", 0, 1};
  if (sp_spawn(t->rt, NULL, run_after, c, &opts) < 0) free(c);
}

static int arm(sp_timer_t *t, int64_t when) {
  if (!sp_runtime_current()) return -EPERM;
  int64_t now = sp_now();
  t->rt = sp_runtime_current();
  t->t = (sp__timer_t){.idx = -1, .fire = fire, .arg = t};
  if (t->ticker) {
    t->t.period = when;
    t->t.when = now > INT64_MAX - when ? INT64_MAX : now + when;
  } else {
    t->t.when = when;
  }
  int rc = sp__cancel_timer_add(&t->t);
  t->armed = rc == 0;
  return rc;
}

static int start(sp_timer_t **out, int64_t when, int ticker, void (*fn)(void *), void *arg) {
  if (!out || (ticker && when <= 0) || (!ticker && when < 0 && when != SP_FOREVER)) return -EINVAL;
  *out = NULL;
  if (!sp_runtime_current()) return -EPERM;
  sp_timer_t *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->ticker = ticker;
  t->fn = fn;
  t->arg = arg;
  int rc = fn ? 0 : sp_chan_make(&t->ch, sizeof(int64_t), 1);
  if (rc == 0 && when != SP_FOREVER) rc = arm(t, when);
  if (rc < 0) {
    if (t->ch) sp_chan_free(t->ch);
    free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int sp_timer_start(sp_timer_t **out, int64_t deadline) { return start(out, deadline, 0, NULL, NULL); }
int sp_ticker_start(sp_timer_t **out, int64_t period) { return start(out, period, 1, NULL, NULL); }

int sp_after_func(sp_timer_t **out, int64_t deadline, void (*fn)(void *), void *arg) {
  if (!fn) return -EINVAL;
  return start(out, deadline, 0, fn, arg);
}

sp_chan_t *sp_timer_chan(sp_timer_t *t) { return t ? t->ch : NULL; }

/* Locks: t->lk held. */
static int stop_locked(sp_timer_t *t) {
  int was = 0;
  if (t->armed) {
    int removed = sp__timer_del(&t->t); /* M1 */
    was = t->ticker ? 1 : removed;
    t->armed = 0;
  }
  if (t->ch) sp_chan_recv(t->ch, NULL, 0); /* drain a stale value */
  return was;
}

int sp_timer_stop(sp_timer_t *t) {
  if (!t) return -EINVAL;
  sp__lock(&t->lk);
  int was = stop_locked(t);
  sp__unlock(&t->lk);
  return was;
}

int sp_timer_reset(sp_timer_t *t, int64_t when) {
  if (!t || (t->ticker && when <= 0) || (!t->ticker && when < 0)) return -EINVAL;
  if (!sp_runtime_current()) return -EPERM;
  sp__lock(&t->lk);
  int was = stop_locked(t);
  int rc = arm(t, when);
  sp__unlock(&t->lk);
  return rc < 0 ? rc : was;
}

int sp_timer_free(sp_timer_t *t) {
  if (!t) return -EINVAL;
  sp__lock(&t->lk);
  stop_locked(t);
  sp__unlock(&t->lk);
  if (t->ch && sp_chan_free(t->ch) < 0) return -EBUSY; /* stopped, still usable */
  free(t);
  return 0;
}
