/*
 * select.c: Go's select over channel cases.
 *
 * Model: one parker for the whole select, one waiter per case.
 *   1. Poll every case once in a random order; the first ready one is
 *      performed (uniform among the ready ones, like Go).
 *   2. Otherwise (deadline permitting) arm: sp__park_begin, then lock each
 *      case's channel in turn and link its waiter. Cases armed earlier may
 *      already fire for us (a waker claims our parker) while later ones are
 *      being armed; that is the point of the claim protocol (park.h): no
 *      select ever locks two channels at once, so other kinds of cases
 *      (timers, I/O, cancellation) can join the same machinery later.
 *      If a channel is ready while we arm it, we claim our own parker
 *      (sp__park_abort) and perform the case; if that claim fails, another
 *      case already fired for us and we go and wait for its wake-up.
 *   3. Park. The waker that claimed us performed its case (copied the
 *      value, set ok) and set parker.winner.
 *   4. Unlink every other waiter (W3) and report the winner.
 * Invariants:
 *   X1  At most one case is performed per call: performing requires
 *       holding the claim on our parker (ours via abort, or a waker's).
 *   X2  A select never matches its own waiters (send and receive on the
 *       same channel in one select): sp__waitq_claim skips them.
 *   X3  If after our own claim the ready case turns out not to be (its
 *       counterparts were stale), nothing was performed and nobody can
 *       claim us: unlink everything and start over.
 * Locks: one channel lock at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "runtime/core.h"
#include "runtime/rand.h"
#include "sync/chan_impl.h"

/* Performs case i if it can. Returns as sp__chan_*_locked. */
static int perform_locked(sp_case_t *cs, int i, const sp__parker_t *self, sp__waiter_t **wake) {
  if (cs[i].op == SP_SEND) return sp__chan_send_locked(cs[i].chan, cs[i].elem, self, wake);
  return sp__chan_recv_locked(cs[i].chan, cs[i].elem, self, wake);
}

/* Records the result of case i and wakes the counterpart we matched. */
static int fired(sp_case_t *cs, int i, int rc, sp__waiter_t *wake) {
  if (wake) sp__park_wake(wake->parker, 0);
  cs[i].result = rc > 0 ? 0 : rc;
  return i;
}

/* Unlinks the waiters of the armed cases (W3). */
static void disarm(sp_case_t *cs, sp__waiter_t *ws, const int *order, int narmed) {
  for (int k = 0; k < narmed; k++) {
    int i = order[k];
    sp_chan_t *c = cs[i].chan;
    if (!c) continue;
    sp__lock(&c->lk); /* W1: linked is only read and written under lk */
    sp__waitq_remove(cs[i].op == SP_SEND ? &c->sendq : &c->recvq, &ws[i]);
    sp__unlock(&c->lk);
  }
}

static void shuffle(int *order, int n) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(sp__rand32() % (uint32_t)(i + 1));
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

int sp_select(sp_case_t *cs, int n, int64_t deadline) {
  if (n < 0 || n > SP_SELECT_MAX || (n > 0 && !cs)) return -EINVAL;
  for (int i = 0; i < n; i++)
    if (cs[i].op != SP_SEND && cs[i].op != SP_RECV) return -EINVAL;
  int order_buf[64], *order = order_buf;
  sp__waiter_t ws_buf[16], *ws = ws_buf;
  if (n > 64 && !(order = malloc(sizeof *order * (size_t)n))) return -ENOMEM;
  if (n > 16 && !(ws = malloc(sizeof *ws * (size_t)n))) {
    if (order != order_buf) free(order);
    return -ENOMEM;
  }
  int ret;
restart:
  shuffle(order, n);
  /* 1. poll */
  for (int k = 0; k < n; k++) {
    int i = order[k];
    sp_chan_t *c = cs[i].chan;
    if (!c) continue;
    sp__waiter_t *wake = NULL;
    sp__lock(&c->lk);
    int rc = perform_locked(cs, i, NULL, &wake);
    sp__unlock(&c->lk);
    if (rc != 0) {
      ret = fired(cs, i, rc, wake);
      goto out;
    }
  }
  if (deadline == 0) {
    ret = -EAGAIN;
    goto out;
  }
  /* 2. arm */
  sp__parker_t p;
  sp__park_begin(&p);
  sp__park_note("select", cs);
  int narmed = 0;
  for (int k = 0; k < n; k++) {
    int i = order[k];
    sp_chan_t *c = cs[i].chan;
    ws[i] = (sp__waiter_t){.parker = &p, .elem = cs[i].elem, .index = i};
    narmed = k + 1;
    if (!c) continue;
    sp__lock(&c->lk);
    if (!sp__chan_ready_locked(c, cs[i].op, &p)) {
      sp__waitq_push(cs[i].op == SP_SEND ? &c->sendq : &c->recvq, &ws[i]);
      sp__unlock(&c->lk);
      continue;
    }
    if (!sp__park_abort(&p)) { /* a case armed earlier fired for us */
      sp__unlock(&c->lk);
      narmed = k; /* ws[i] was not linked */
      break;
    }
    sp__waiter_t *wake = NULL;
    int rc = perform_locked(cs, i, &p, &wake);
    sp__unlock(&c->lk);
    disarm(cs, ws, order, k);
    if (rc != 0) {
      ret = fired(cs, i, rc, wake);
      goto out;
    }
    goto restart; /* X3 */
  }
  /* 3. wait; 4. clean up */
  int r = sp__park_wait(&p, deadline);
  disarm(cs, ws, order, narmed);
  if (r != 0) {
    ret = r;
    goto out;
  }
  sp__waiter_t *win = p.winner;
  cs[win->index].result = win->ok ? 0 : -EPIPE;
  ret = win->index;
out:
  if (order != order_buf) free(order);
  if (ws != ws_buf) free(ws);
  return ret;
}
