/*
 * chan.c: channels with Go's semantics.
 *
 * Model: as Go's hchan. A ring buffer of cap elements plus two wait queues
 * (blocked senders, blocked receivers), all under one internal lock. A
 * value goes straight from a sender to a waiting receiver (or the other
 * way) when one waits; otherwise through the buffer; otherwise the caller
 * blocks on the matching queue. close wakes every waiter.
 * Invariants:
 *   H1  Receivers wait only while the buffer is empty; senders only while it
 *       is full (cap 0: always "full"). So at most one queue is non-empty,
 *       not counting waiters whose wait already ended (stale, skipped).
 *   H2  The party that claims a waiter (sp__waitq_claim) copies the value
 *       and sets ok (1: value moved, 0: closed) before waking it (W2).
 *   H3  Once closed, nothing is ever added to the buffer or the queues.
 * Locks: c->lk (rank CHAN). Wakes happen after unlocking, except in select
 *   where a claimed waiter is woken right after its channel is unlocked.
 * Rejected: a lock-free buffer (Go's own channels lock too; the handoff to a
 *   parked waiter needs the lock anyway).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core.h"
#include "sync/chan_impl.h"

int(sp_chan_make)(sp_chan_t **out, size_t elem_size, size_t cap) {
  return sp_chan_make_at(out, elem_size, cap, NULL, 0);
}

int sp_chan_make_at(sp_chan_t **out, size_t elem_size, size_t cap, const char *file, int line) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (elem_size && cap > SIZE_MAX / elem_size) return -EINVAL;
  sp_chan_t *c = aligned_alloc(64, sizeof *c);
  if (!c) return -ENOMEM;
  memset(c, 0, sizeof *c);
  if (elem_size && cap) {
    c->buf = malloc(elem_size * cap);
    if (!c->buf) {
      free(c);
      return -ENOMEM;
    }
  }
  c->esz = elem_size;
  c->cap = cap;
  sp__track(&c->tracked, "channel", file, line);
  *out = c;
  return 0;
}

int sp_chan_free(sp_chan_t *c) {
  if (!c) return -EINVAL;
  sp__lock(&c->lk);
  bool busy = !sp__waitq_empty(&c->sendq) || !sp__waitq_empty(&c->recvq);
  sp__unlock(&c->lk);
  if (busy) {
    sp__debugf(NULL, "chan %p: free refused, fibers or threads are blocked on it", (void *)c);
    return -EBUSY;
  }
  sp__untrack(&c->tracked);
  free(c->buf);
  free(c);
  return 0;
}

static void *slot(sp_chan_t *c, size_t i) { return c->buf + i * c->esz; }

static void copy(sp_chan_t *c, void *dst, const void *src) {
  if (dst && c->esz) memcpy(dst, src, c->esz);
}

static void zero(sp_chan_t *c, void *dst) {
  if (dst && c->esz) memset(dst, 0, c->esz);
}

int sp__chan_send_locked(sp_chan_t *c, const void *elem, const sp__parker_t *self,
                         sp__waiter_t **wake) {
  if (c->closed) return -EPIPE;
  sp__waiter_t *r = sp__waitq_claim(&c->recvq, self);
  if (r) { /* H1: the buffer is empty, hand over directly */
    copy(c, r->elem, elem);
    r->ok = 1;
    *wake = r;
    return 1;
  }
  if (c->count < c->cap) {
    copy(c, slot(c, c->sendx), elem);
    if (++c->sendx == c->cap) c->sendx = 0;
    c->count++;
    return 1;
  }
  return 0;
}

int sp__chan_recv_locked(sp_chan_t *c, void *elem, const sp__parker_t *self,
                         sp__waiter_t **wake) {
  sp__waiter_t *s = sp__waitq_claim(&c->sendq, self);
  if (s) {
    if (c->cap == 0) {
      copy(c, elem, s->elem);
    } else { /* H1: buffer full: take its head, the sender's value goes last */
      copy(c, elem, slot(c, c->recvx));
      copy(c, slot(c, c->recvx), s->elem);
      if (++c->recvx == c->cap) c->recvx = 0;
      c->sendx = c->recvx;
    }
    s->ok = 1;
    *wake = s;
    return 1;
  }
  if (c->count > 0) {
    copy(c, elem, slot(c, c->recvx));
    if (++c->recvx == c->cap) c->recvx = 0;
    c->count--;
    return 1;
  }
  if (c->closed) {
    zero(c, elem);
    return -EPIPE;
  }
  return 0;
}

bool sp__chan_ready_locked(sp_chan_t *c, int op, const sp__parker_t *self) {
  if (op == SP_SEND)
    return c->closed || c->count < c->cap || sp__waitq_has_other(&c->recvq, self);
  return c->closed || c->count > 0 || sp__waitq_has_other(&c->sendq, self);
}

/* One blocking operation: try, else wait on the matching queue. */
static int chan_op(sp_chan_t *c, int op, void *elem, int64_t deadline) {
  if (!c) return -EINVAL;
  sp__waiter_t *wake = NULL;
  sp__lock(&c->lk);
  int rc = op == SP_SEND ? sp__chan_send_locked(c, elem, NULL, &wake)
                         : sp__chan_recv_locked(c, elem, NULL, &wake);
  if (rc != 0) {
    sp__unlock(&c->lk);
    if (wake) sp__park_wake(wake->parker, 0);
    if (rc == -EPIPE && op == SP_SEND)
      sp__debugf(NULL, "chan %p: send on a closed channel", (void *)c);
    return rc > 0 ? 0 : rc;
  }
  if (deadline == 0) {
    sp__unlock(&c->lk);
    return -EAGAIN;
  }
  sp__waiter_t w = {.elem = elem, .ok = 0};
  rc = sp__waitq_block(op == SP_SEND ? &c->sendq : &c->recvq, &w, &c->lk, deadline, false,
                       op == SP_SEND ? "chan send" : "chan recv", c);
  if (rc != 0) return rc;
  if (w.ok) return 0;
  if (op == SP_RECV) zero(c, elem); /* closed while we waited */
  return -EPIPE;
}

int sp_chan_send(sp_chan_t *c, const void *elem, int64_t deadline) {
  return chan_op(c, SP_SEND, (void *)elem, deadline);
}

int sp_chan_recv(sp_chan_t *c, void *elem, int64_t deadline) {
  return chan_op(c, SP_RECV, elem, deadline);
}

int sp_chan_close(sp_chan_t *c) {
  if (!c) return -EINVAL;
  sp__lock(&c->lk);
  if (c->closed) {
    sp__unlock(&c->lk);
    sp__debugf(NULL, "chan %p: close of a closed channel", (void *)c);
    return -EPIPE;
  }
  c->closed = 1; /* H3 */
  /* claim every waiter, tell it the channel closed, wake after unlocking */
  sp__waiter_t *recv = sp__waitq_claim_all(&c->recvq), *send = sp__waitq_claim_all(&c->sendq);
  for (sp__waiter_t *w = recv; w; w = w->next) {
    zero(c, w->elem);
    w->ok = 0;
  }
  for (sp__waiter_t *w = send; w; w = w->next) w->ok = 0;
  sp__unlock(&c->lk);
  sp__waitq_wake_all(recv);
  sp__waitq_wake_all(send);
  return 0;
}

size_t sp_chan_len(sp_chan_t *c) {
  if (!c) return 0;
  sp__lock(&c->lk);
  size_t n = c->count;
  sp__unlock(&c->lk);
  return n;
}

size_t sp_chan_cap(const sp_chan_t *c) { return c ? c->cap : 0; }
