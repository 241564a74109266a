/*
 * ctx.c: cancellation contexts (API in sp_ctx.h) on top of the runtime's
 * cancellation scopes (runtime/cancel.h), which do the waking.
 *
 * Model: a context is a scope plus a place in a tree. A live child is
 * linked into its parent's list (the link holds a reference to the child;
 * the child holds one to its parent). Cancelling a context fires its scope
 * (every wait of a fiber bound to it returns the error), then takes its
 * children list, done channel and callbacks under its lock and, outside
 * the lock: closes the channel, cancels each child, runs the callbacks,
 * and unlinks itself from its parent.
 * Deadlines: a context whose own deadline is earlier than its parent's
 * arms a timer on the creating worker's heap; the timer, which runs under
 * the heap lock, only spawns a small fiber that cancels (user callbacks and
 * channel closes must not run under that lock); when that spawn fails the
 * timer retries it every millisecond. Without a worker (created on a
 * foreign thread), the deadline is still enforced lazily: every wait under
 * the context is cut to it (park.c) and fires it, and sp_ctx_err/sp_ctx_done
 * check it.
 * Invariants:
 *   X1  refs counts: the creator's (until release), one per fiber bound by
 *       sp_ctx_enter, one per child (its parent pointer), one for the link
 *       in the parent's list, one held by a pending expiry fiber.
 *   X2  children, done, afters and linked change only under lk; after the
 *       scope fired, nothing is added to them (checked under lk).
 *   X3  The timer is deleted before the context is freed; its fire takes a
 *       reference only while refs > 0 (try_ref), so it never revives one.
 *   X4  sp_ctx_release returns only once no callback of the context is
 *       still to run or running: the canceller that fired the scope takes
 *       the callbacks and marks them running under lk, and clears the mark
 *       under lk when they are done; a release that did not fire the scope
 *       waits for both to clear (a group freed right after a concurrent
 *       cancel of its parent had its callback run on freed memory).
 * Locks: a context's lk, then (after releasing it) its children's and its
 *   parent's, never two at once; scope lock (cancel.h) inside none of them.
 */
#include "sync/sp_ctx.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cancel.h"
#include "runtime/lock.h"
#include "runtime/timer.h"

typedef struct after {
  void (*fn)(void *);
  void *arg;
  struct after *next;
} after_t;

struct sp_ctx {
  sp__cancel_t sc; /* first: fibers bind &sc */
  /* atomic (X1); a line of its own: every enter/leave touches it, while
   * a canceller holds the scope lock beside it */
  uint32_t refs __attribute__((aligned(64)));
  int background;
  struct sp_ctx *parent;
  sp__lock_t lk;                      /* X2 */
  struct sp_ctx *kids, *next, *prev;  /* children; siblings in the parent */
  int linked;                         /* in the parent's list */
  sp_chan_t *done;
  after_t *afters;
  int afters_running; /* X4: a canceller runs the callbacks it took (under lk) */
  sp__timer_t timer;
  int timer_armed;
  sp_runtime_t *rt; /* where the expiry fiber runs */
};

static sp_ctx_t background = {
    .sc = {.deadline = SP_FOREVER},
    .refs = 1,
    .background = 1,
};

sp_ctx_t *sp_ctx_background(void) { return &background; }

static void ref(sp_ctx_t *c) {
  if (!c->background) __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
}

static bool try_ref(sp_ctx_t *c) {
  uint32_t r = __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
  while (r > 0)
    if (__atomic_compare_exchange_n(&c->refs, &r, r + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      return true;
  return false;
}

static void unref(sp_ctx_t *c) {
  while (c && !c->background && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    if (c->timer_armed) sp__timer_del(&c->timer); /* X3 */
    if (c->done) sp_chan_free(c->done);
    sp_ctx_t *parent = c->parent;
    free(c);
    c = parent; /* drop the child's reference to its parent */
  }
}

static int cancel(sp_ctx_t *c, int err);

/* ---- deadlines ------------------------------------------------------------- */

static void *expire_fiber(void *arg) {
  sp_ctx_t *c = arg;
  cancel(c, -ETIMEDOUT);
  unref(c);
  return NULL;
}

#define EXPIRE_RETRY_NS 1000000 /* a failed expiry spawn is retried this often */

/* Timer callback, under the heap lock: hands the work to a fiber. If no
 * fiber can be had (-ENOMEM), the timer fires again a little later (timer.c
 * T4) rather than fire the scope alone, which would leave the children,
 * done channel and callbacks to a cancel that then finds the scope fired
 * and returns early. Meanwhile every wait under c still ends at c's
 * deadline (park.c cuts it) and expires c itself. */
static void timer_fire(sp__timer_t *t) {
  sp_ctx_t *c = t->arg;
  t->period = 0;
  if (sp__cancel_err(&c->sc) || !try_ref(c)) return; /* X3 */
  static const sp_spawn_opts_t opts = {"ctx-deadline", SP_STACK_MIN, 1};
  if (sp_spawn(c->rt, NULL, expire_fiber, c, &opts) < 0) {
    unref(c); /* not the last reference: the creator's is still held or
                 the free path waits for this fire (T3) */
    t->period = EXPIRE_RETRY_NS;
  }
}

/* Scope callback: a wait under c ended at c's deadline. */
static void scope_expire(sp__cancel_t *sc) { cancel((sp_ctx_t *)sc, -ETIMEDOUT); }

/* Scope callback: a fiber returned while bound to c. */
static void scope_unbound(sp__cancel_t *sc) { unref((sp_ctx_t *)sc); }

/* Lazy deadline check (contexts without a timer). */
static void check_deadline(sp_ctx_t *c) {
  if (!c->background && !sp__cancel_err(&c->sc) && c->sc.deadline != SP_FOREVER &&
      sp_now() >= c->sc.deadline)
    cancel(c, -ETIMEDOUT);
}

/* ---- creation and cancellation -------------------------------------------- */

static int make(sp_ctx_t *parent, int64_t deadline, sp_ctx_t **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!parent) parent = &background;
  sp_ctx_t *c = aligned_alloc(64, sizeof *c); /* refs is cache-line aligned */
  if (!c) return -ENOMEM;
  memset(c, 0, sizeof *c);
  c->refs = 1; /* the creator's */
  c->sc.expire = scope_expire;
  c->sc.unbound = scope_unbound;
  int64_t pd = parent->sc.deadline;
  bool own = deadline != SP_FOREVER && (pd == SP_FOREVER || deadline < pd);
  c->sc.deadline = own ? deadline : pd;
  c->parent = parent;
  ref(parent);
  int perr = 0;
  if (!parent->background) {
    sp__lock(&parent->lk);
    perr = sp__cancel_err(&parent->sc);
    if (!perr) { /* X2: link under the parent's lock, unless it fired */
      c->next = parent->kids;
      if (parent->kids) parent->kids->prev = c;
      parent->kids = c;
      c->linked = 1;
      ref(c);
    }
    sp__unlock(&parent->lk);
  }
  *out = c;
  if (perr) {
    cancel(c, perr);
    return 0;
  }
  if (own) {
    if (deadline <= sp_now()) {
      cancel(c, -ETIMEDOUT);
    } else if ((c->rt = sp_runtime_current()) != NULL) {
      c->timer = (sp__timer_t){.when = deadline, .idx = -1, .fire = timer_fire, .arg = c};
      c->timer_armed = sp__cancel_timer_add(&c->timer) == 0;
    }
  }
  return 0;
}

int sp_ctx_with_cancel(sp_ctx_t *parent, sp_ctx_t **out) { return make(parent, SP_FOREVER, out); }

int sp_ctx_with_deadline(sp_ctx_t *parent, int64_t deadline, sp_ctx_t **out) {
  if (deadline < 0 && deadline != SP_FOREVER) return -EINVAL;
  return make(parent, deadline, out);
}

int sp_ctx_with_timeout(sp_ctx_t *parent, int64_t ns, sp_ctx_t **out) {
  if (ns < 0) return -EINVAL;
  return make(parent, sp_deadline_in(ns), out);
}

static int cancel(sp_ctx_t *c, int err) {
  if (!sp__cancel_fire(&c->sc, err)) return -EALREADY; /* waits return now */
  sp__lock(&c->lk);
  sp_ctx_t *kids = c->kids;
  c->kids = NULL;
  for (sp_ctx_t *k = kids; k; k = k->next) k->linked = 0;
  after_t *afters = c->afters;
  c->afters = NULL;
  c->afters_running = afters != NULL; /* X4 */
  sp_chan_t *done = c->done;
  sp__unlock(&c->lk);
  if (c->timer_armed && sp__timer_del(&c->timer)) c->timer_armed = 0; /* fired: 0 */
  if (done) sp_chan_close(done);
  while (kids) {
    sp_ctx_t *k = kids;
    kids = k->next;
    cancel(k, err);
    unref(k); /* the link's reference */
  }
  if (afters) {
    while (afters) {
      after_t *a = afters;
      afters = a->next;
      a->fn(a->arg);
      free(a);
    }
    sp__lock(&c->lk);
    c->afters_running = 0; /* X4 */
    sp__unlock(&c->lk);
  }
  sp_ctx_t *p = c->parent;
  bool unlinked = false;
  if (!p->background) {
    sp__lock(&p->lk);
    if (c->linked) {
      if (c->prev) c->prev->next = c->next;
      else p->kids = c->next;
      if (c->next) c->next->prev = c->prev;
      c->linked = 0;
      unlinked = true;
    }
    sp__unlock(&p->lk);
  }
  if (unlinked) unref(c); /* the link's reference; the caller holds another */
  return 0;
}

int sp_ctx_cancel(sp_ctx_t *c, int cause) {
  if (!c || c->background || cause > 0) return -EINVAL;
  return cancel(c, cause ? cause : -ECANCELED);
}

void sp_ctx_release(sp_ctx_t *c) {
  if (!c || c->background) return;
  if (cancel(c, -ECANCELED) == -EALREADY) {
    /* X4: another thread fired it and may still be about to run, or be
     * running, the callbacks; their arguments often die with the caller's
     * object once this returns. Callbacks must not block: this is short. */
    for (;;) {
      sp__lock(&c->lk);
      bool pending = c->afters != NULL || c->afters_running;
      sp__unlock(&c->lk);
      if (!pending) break;
      if (sp_runtime_current()) sp_yield(); else sched_yield(); /* a fiber, or a thread */
    }
  }
  unref(c);
}

/* ---- queries ---------------------------------------------------------------- */

int sp_ctx_err(const sp_ctx_t *cc) {
  if (!cc) return -EINVAL;
  sp_ctx_t *c = (sp_ctx_t *)cc;
  check_deadline(c);
  return sp__cancel_err(&c->sc);
}

int64_t sp_ctx_deadline(const sp_ctx_t *c) { return c ? c->sc.deadline : SP_FOREVER; }

sp_chan_t *sp_ctx_done(sp_ctx_t *c) {
  if (!c || c->background) return NULL;
  check_deadline(c);
  sp__lock(&c->lk);
  if (!c->done && sp_chan_make(&c->done, 0, 0) == 0 && sp__cancel_err(&c->sc))
    sp_chan_close(c->done); /* X2: cancel already took the (empty) slot */
  sp_chan_t *d = c->done;
  sp__unlock(&c->lk);
  return d;
}

int sp_ctx_after_cancel(sp_ctx_t *c, void (*fn)(void *), void *arg) {
  if (!c || !fn) return -EINVAL;
  if (c->background) return 0; /* never cancelled: never runs */
  after_t *a = malloc(sizeof *a);
  if (!a) return -ENOMEM;
  a->fn = fn;
  a->arg = arg;
  sp__lock(&c->lk);
  bool fired = sp__cancel_err(&c->sc) != 0;
  if (!fired) {
    a->next = c->afters;
    c->afters = a;
  }
  sp__unlock(&c->lk);
  if (fired) {
    fn(arg);
    free(a);
  }
  return 0;
}

/* ---- binding to fibers ---------------------------------------------------- */

sp_ctx_t *sp_ctx_current(void) { return (sp_ctx_t *)sp__cancel_current(); }

sp_ctx_t *sp_ctx_enter(sp_ctx_t *c) {
  if (!sp_runtime_current()) return NULL; /* foreign thread: nothing bound */
  if (c == &background) c = NULL; /* never cancelled: as good as none */
  if (c) {
    check_deadline(c);
    ref(c);
  }
  return (sp_ctx_t *)sp__cancel_bind(c ? &c->sc : NULL);
}

void sp_ctx_leave(sp_ctx_t *prev) {
  if (!sp_runtime_current()) return;
  sp_ctx_t *cur = (sp_ctx_t *)sp__cancel_bind(prev ? &prev->sc : NULL);
  if (cur) unref(cur); /* the binding's reference (X1) */
}

/* ---- timeout scopes ---------------------------------------------------------- */

static sp_ctx_t oom = {
    .sc = {.err = -ENOMEM, .deadline = SP_FOREVER},
    .refs = 1,
    .background = 1, /* static: never freed */
};

sp_ctx_scope_t sp_ctx_scope_enter(int64_t ns) {
  sp_ctx_scope_t s = {.once = 1};
  if (sp_ctx_with_timeout(sp_ctx_current(), ns < 0 ? 0 : ns, &s.ctx) < 0) s.ctx = &oom;
  s.prev = sp_ctx_enter(s.ctx);
  return s;
}

void sp_ctx_scope_exit(sp_ctx_scope_t *s) {
  sp_ctx_leave(s->prev);
  if (s->ctx != &oom) sp_ctx_release(s->ctx);
}
