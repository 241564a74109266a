/*
 * cancel.h: cancellation scopes, the runtime half of sync/ctx.c's contexts.
 * Shared-internal (runtime, sync, io).
 *
 * Model: a scope has an error (0 while live) and a list of the waits that
 * are blocked under it. A fiber binds one scope (f->cancel, set by
 * sp_ctx_enter); sp__park_wait of a bound fiber registers its parker on the
 * scope for the length of the wait, and cuts the wait's deadline to the
 * scope's. Firing the scope claims every registered parker and wakes it
 * with the scope's error, through the same token CAS as any other waker
 * (park.c), so a cancel races an event or a deadline cleanly: exactly one
 * of them wakes the fiber.
 * A wait that must not simply be woken (an io_uring operation: the kernel
 * still owns the buffer) registers a node with a cancel callback instead;
 * firing calls it, and the callback arranges for the operation to end.
 * Invariants:
 *   C1  A node is on its scope's list only while its waiter is blocked;
 *       both fire and the waiter unlink under the scope lock, and fire
 *       reads a node (and calls its callback) only under the lock, so the
 *       waiter's frame outlives every use of its node.
 *   C2  err goes from 0 to non-zero once, under the lock; a node is never
 *       added to a fired scope (sp__cancel_add returns the error instead).
 *   C3  fire may wake a parker after releasing the lock only if it claimed
 *       it under the lock: a claimed waiter cannot wake by other means, so
 *       its frame (and parker) lives until that wake.
 *   C4  A fire that claimed a node's parker marks the node fired before the
 *       wake and never touches the node again, so the woken waiter skips
 *       the lock in sp__cancel_del (a hundred thousand fibers woken by one
 *       cancel would otherwise all queue on this lock).
 */
#ifndef SP_RUNTIME_CANCEL_H
#define SP_RUNTIME_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/lock.h"
#include "runtime/park.h"
#include "runtime/timer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp__cnode {
  struct sp__cnode *next, *prev;
  sp__parker_t *p;                              /* woken with the error, or */
  void (*cancel)(struct sp__cnode *n, int err); /* called under the lock */
  bool linked;
  bool fired; /* set by the fire that claimed p, before the wake (C4) */
} sp__cnode_t;

typedef struct sp__cancel {
  sp__lock_t lk;
  int err;          /* atomic: 0 live, else the error waits return */
  int64_t deadline; /* the scope's deadline (SP_FOREVER: none); fixed */
  /* called by a wait whose deadline was the scope's, to fire the scope
   * (the owner fires its whole subtree); may be NULL */
  void (*expire)(struct sp__cancel *c);
  /* called when a fiber bound to the scope returns without unbinding (the
   * owner drops the binding's reference); may be NULL */
  void (*unbound)(struct sp__cancel *c);
  sp__cnode_t *head;
} sp__cancel_t;

static inline int sp__cancel_err(sp__cancel_t *c) { return __atomic_load_n(&c->err, __ATOMIC_ACQUIRE); }

/* Registers n (C2): 0, or the scope's error if it has fired (n not added).
 * Runs on: any thread. Locks: c->lk. */
int sp__cancel_add(sp__cancel_t *c, sp__cnode_t *n);
/* Unregisters n if still registered (C1). */
void sp__cancel_del(sp__cancel_t *c, sp__cnode_t *n);
/* Fires c with err (< 0): wakes or calls back every registered node.
 * Returns false if it had fired already (nothing done). */
bool sp__cancel_fire(sp__cancel_t *c, int err);

/* The scope bound to the calling fiber (NULL: none, or a foreign thread),
 * and binding one (returns the previous). Runs on: a fiber. */
sp__cancel_t *sp__cancel_current(void);
sp__cancel_t *sp__cancel_bind(sp__cancel_t *c);

/* Queues t on the calling worker's timer heap (for a scope's deadline).
 * 0, -ENOMEM, -EPERM (not on a worker thread). */
int sp__cancel_timer_add(sp__timer_t *t);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_CANCEL_H */
