/*
 * cancel.c: cancellation scopes (model and invariants in cancel.h).
 */
#include "runtime/cancel.h"

#include <errno.h>

#include "runtime/core.h"

int sp__cancel_add(sp__cancel_t *c, sp__cnode_t *n) {
  sp__lock(&c->lk);
  int err = c->err;
  if (!err) {
    n->prev = NULL;
    n->next = c->head;
    if (c->head) c->head->prev = n;
    c->head = n;
    n->linked = true;
  }
  sp__unlock(&c->lk);
  return err;
}

static void unlink_node(sp__cancel_t *c, sp__cnode_t *n) {
  if (n->prev) n->prev->next = n->next;
  else c->head = n->next;
  if (n->next) n->next->prev = n->prev;
  n->next = n->prev = NULL;
  n->linked = false;
}

void sp__cancel_del(sp__cancel_t *c, sp__cnode_t *n) {
  if (n->fired) return; /* C4: unlinked, and the fire is done with n */
  sp__lock(&c->lk);
  if (n->linked) unlink_node(c, n);
  sp__unlock(&c->lk);
}

#define FIRE_BATCH 64

bool sp__cancel_fire(sp__cancel_t *c, int err) {
  sp__lock(&c->lk);
  if (c->err) {
    sp__unlock(&c->lk);
    return false;
  }
  __atomic_store_n(&c->err, err, __ATOMIC_RELEASE); /* C2: the list only shrinks now */
  for (;;) {
    /* C3: claim a batch under the lock, wake it after: waking (queueing)
     * is the costly part, and woken fibers unregister under this lock */
    sp__parker_t *claimed[FIRE_BATCH];
    int n = 0;
    while (c->head && n < FIRE_BATCH) {
      sp__cnode_t *node = c->head;
      unlink_node(c, node);
      if (node->cancel) node->cancel(node, err); /* C1: done with it under the lock */
      else if (sp__park_claim(node->p)) {
        node->fired = true; /* C4: the waiter reads it only after our wake */
        claimed[n++] = node->p;
      }
    }
    bool more = c->head != NULL;
    sp__unlock(&c->lk);
    for (int i = 0; i < n; i++) sp__park_wake_fifo(claimed[i], err);
    if (!more) return true;
    sp__lock(&c->lk);
  }
}

sp__cancel_t *sp__cancel_current(void) {
  sp__worker_t *w = sp__self();
  return w && w->cur ? w->cur->cancel : NULL;
}

sp__cancel_t *sp__cancel_bind(sp__cancel_t *c) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return NULL;
  sp__cancel_t *prev = w->cur->cancel;
  w->cur->cancel = c;
  return prev;
}

int sp__cancel_timer_add(sp__timer_t *t) {
  sp__worker_t *w = sp__self();
  if (!w) return -EPERM;
  return sp__timer_add(&w->timers, t);
}
