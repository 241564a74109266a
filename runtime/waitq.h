/*
 * waitq.h: FIFO queues of waiters, the one structure every primitive in
 * sync/ blocks on, and io/listener.c's accepters (shared-internal).
 *
 * Model: a waiter lives on the blocked fiber's (or thread's) stack and is
 * linked into a primitive's queue under that primitive's lock. It points
 * at a parker (runtime/park.h); a select links one waiter per case, all
 * pointing at the same parker. A waker pops waiters and claims their
 * parker; a failed claim means that waiter already ended (deadline, or
 * another case of its select fired), and it is simply dropped.
 * Invariants:
 *   W1  w->linked is true exactly while w is in a queue; both change only
 *       under the owning primitive's lock.
 *   W2  Whoever claims w->parker sets w->parker->winner = w and the
 *       waiter's result fields, then wakes it, and never touches w after.
 *   W3  A waiter whose wait ended without being claimed by the primitive
 *       (deadline) unlinks itself under the lock before its stack frame
 *       dies (the queue must not keep a dangling pointer).
 */
#ifndef SP_RUNTIME_WAITQ_H
#define SP_RUNTIME_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/park.h"

typedef struct sp__waiter {
  struct sp__waiter *next, *prev;
  sp__parker_t *parker;
  void *elem;     /* channels: where the value comes from or goes to */
  int index;      /* select: the case this waiter belongs to */
  int ok;         /* set by the claimer: what happened (primitive-specific) */
  int64_t since;  /* when it first queued (mutex starvation) */
  int64_t weight; /* semaphore units */
  bool linked;
} sp__waiter_t;

typedef struct sp__waitq {
  sp__waiter_t *head, *tail;
} sp__waitq_t;

static inline bool sp__waitq_empty(const sp__waitq_t *q) { return q->head == NULL; }

static inline void sp__waitq_push(sp__waitq_t *q, sp__waiter_t *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
  w->linked = true;
}

static inline void sp__waitq_push_front(sp__waitq_t *q, sp__waiter_t *w) {
  w->prev = NULL;
  w->next = q->head;
  if (q->head)
    q->head->prev = w;
  else
    q->tail = w;
  q->head = w;
  w->linked = true;
}

static inline void sp__waitq_remove(sp__waitq_t *q, sp__waiter_t *w) {
  if (!w->linked) return;
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->next = w->prev = NULL;
  w->linked = false;
}

/* Pops waiters until one whose parker it can claim, skipping (and leaving
 * in place) waiters of `self` (a select never matches its own cases).
 * Returns the claimed waiter, unlinked, or NULL. Locks: caller holds the
 * queue's lock. */
static inline sp__waiter_t *sp__waitq_claim(sp__waitq_t *q, const sp__parker_t *self) {
  sp__waiter_t *w = q->head;
  while (w) {
    sp__waiter_t *next = w->next;
    if (w->parker != self) {
      sp__waitq_remove(q, w);
      if (sp__park_claim(w->parker)) {
        w->parker->winner = w;
        return w;
      }
    }
    w = next;
  }
  return NULL;
}

/* Claims every waiter of q (dropping stale ones). Returns them as a list
 * linked by next, oldest first, to wake after unlocking with
 * sp__waitq_wake_all. Locks: caller holds the queue's lock. */
static inline sp__waiter_t *sp__waitq_claim_all(sp__waitq_t *q) {
  sp__waiter_t *head = NULL, **tail = &head, *w;
  while ((w = sp__waitq_claim(q, NULL)) != NULL) {
    *tail = w;
    tail = &w->next;
  }
  *tail = NULL;
  return head;
}

/* Wakes a list of claimed waiters with reason 0. Reads each next pointer
 * before the wake: a woken waiter's frame may be gone at once (W2).
 * Locks: none needed (call it after unlocking). */
static inline void sp__waitq_wake_all(sp__waiter_t *list) {
  while (list) {
    sp__waiter_t *w = list;
    list = w->next;
    sp__park_wake(w->parker, 0);
  }
}

/* True if q holds a waiter that is not self's (it may still turn out to be
 * stale when claimed). */
static inline bool sp__waitq_has_other(const sp__waitq_t *q, const sp__parker_t *self) {
  for (const sp__waiter_t *w = q->head; w; w = w->next)
    if (w->parker != self) return true;
  return false;
}

/* Blocks the caller (fiber or thread) on q: links w (at the front if
 * `front`), notes why (what, obj: see sp__park_note), releases lk, waits. Returns the park result: 0 when a claimer
 * woke it (read w->ok), -ETIMEDOUT or -ENOMEM when it gave up, in which
 * case w was unlinked again under lk (W3) and lk is NOT held on return
 * either way. Locks: caller holds lk on entry. Switches: yes. */
struct sp__lock;
int sp__waitq_block(sp__waitq_t *q, sp__waiter_t *w, struct sp__lock *lk, int64_t deadline,
                    bool front, const char *what, const void *obj);

#endif /* SP_RUNTIME_WAITQ_H */
