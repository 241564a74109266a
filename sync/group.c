/*
 * group.c: sp_group_t, task groups (Go's errgroup, asyncio.TaskGroup),
 * built only on the public API: sp_spawn, sp_waitgroup_t, sp_sema_t and
 * the cancellation contexts of sp_ctx.h.
 *
 * Model: a group is a context (a child of the parent given at init), a
 * count of the members not yet finished (live) with a WaitGroup to sleep
 * on, an optional semaphore of `limit` slots, and a record of failures. A
 * member is a detached fiber: it enters the group's context, runs fn,
 * leaves it, records a failure, frees its slot and drops live as its last
 * touch of the group. sp_group_wait waits with the caller's context left
 * (shielded), so that it never returns while members run; on its deadline
 * it cancels the group and waits on.
 * Counting: live is one atomic, as Go's WaitGroup is, because a lock per
 * add and per done was the hottest spot of a fan-out on two workers (the
 * spawner and the members on the other worker contend for it). The
 * WaitGroup wg only marks "live > 0": whoever moves live from 0 to 1 adds
 * 1 to wg (a spawner, before it spawns), whoever moves it from 1 to 0
 * calls sp_wg_done (a member, or a spawn that is undone).
 * Invariants:
 *   G1  A member touches the group only until its decrement of live, or,
 *       if that decrement reached 0, until the sp_wg_done that follows:
 *       after that the group may be freed under it.
 *   G2  A member's slot (limit > 0) is held from before its spawn until
 *       after fn returned: at most `limit` fns run at once.
 *   G3  first is set once, by the first failure (a member's negative
 *       result, or the wait deadline); unless the context is cancelled
 *       already (by the parent), the group then cancels it itself
 *       (self_cancelled is set first, under mu, so that the members'
 *       -ECANCELED coming back is not taken for failures).
 *   G4  While live > 0, wg's count is 1 or `users` > 0 (a sp_group_go
 *       waiting for a slot), sp_group_free refuses. A sp_group_go counts
 *       in users from before its slot wait until its member counts in
 *       live, and never touches g after the live_dec of an undone spawn.
 *       (Without a limit it does not suspend before counting in live: a
 *       free on another thread racing it is the caller's bug, as for any
 *       object in use.)
 *   G5  wg's count is the number of 0->1 moves of live whose sp_wg_add is
 *       done, less the 1->0 moves whose sp_wg_done is: at most 1, and
 *       never negative, since a member that moves live to 0 was spawned
 *       after the sp_wg_add of the last 0->1 move (that move counted it, or
 *       a member still running then).
 *   R1  A ring slot is rewritten only once its busy flag was cleared (by
 *       its member after copying it, or by an undone spawn); rings are
 *       freed with the group, after every member cleared its slot.
 * Waiting (wait_idle): wg at 0 and then live at 0 is not enough, as the
 * last member may be between its decrement and its sp_wg_done (the wait
 * may have seen wg at 0 before that member's spawner added 1); reading
 * live as 0 orders that spawner's add before the next sp_wg_wait, which
 * therefore waits for the done. wg at 0 with live > 0 means a spawner is
 * between its increment and its add (no call there suspends): yield and
 * look again.
 * Ordering: live, users and cancelled are seq_cst. A failure is recorded
 * under mu before the member's decrement; the waiter reads it under mu.
 * on_cancel stores cancelled before sp_ctx_cancel returns, and
 * sp_group_go loads it again after its increment, so a wait that
 * cancelled the group and then reads live either sees that member or the
 * member sees the flag.
 * Locks: mu (a pthread mutex) guards first, self_cancelled and the failure
 * list; alloc_mu the shared record cache. Each is held for a few stores,
 * never across a switch or a call into the runtime.
 * Member records: sp_spawn passes one pointer, a member needs (g, fn,
 * arg). Records come from a ring of RING slots per worker of the group's
 * runtime (a fiber of that runtime uses its worker's ring without a lock:
 * nothing can run on that worker between reading the worker's index and
 * taking the slot, as no call in between suspends), plus one ring under
 * alloc_mu for every other caller. A slot is busy from when a spawner
 * fills it until its member has copied it out and cleared busy (R1, a
 * release store: no read-modify-write on the member side); when the next
 * slot is still busy (its member has not started) the record is
 * malloc'd instead. (A malloc per member cost about 15% of a fan-out on
 * two workers: the frees happen on the thief's thread and contend for the
 * spawner's malloc arena; blocks of records with a reference count cost
 * an atomic decrement per member on a line shared by the block's members.)
 * Pacing: a fiber of the group's runtime yields after every YIELD_EVERY
 * members it starts, so that they run while it keeps spawning: a fan-out
 * of 100k short members then keeps a few dozen fibers alive instead of
 * 100k (their stacks stay in cache and in the pool: three times faster on
 * one worker, twenty times on a cold pool).
 * Cancellation seen by sp_group_go: a flag set by a sp_ctx_after_cancel
 * callback, on a cache line that members do not write (sp_ctx_err reads
 * the context's line, which every member's enter and leave write).
 * Layout: what spawners read, live and wg, the spawner-side counters and
 * the failure record sit on separate cache lines.
 * Rejected: joinable members, joined one by one (a handle per member, and
 * a wait that cannot take one deadline for all); a cancellation cause
 * equal to the failure (the siblings' calls would return the sibling's
 * error, not -ECANCELED); bookkeeping with sp_mutex_t (a member's lock
 * would fail with -ECANCELED once the group is cancelled).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sync/sp_ctx.h"
#include "sync/sp_group.h"
#include "sync/sp_sync.h"

#define INLINE_ERRS 8
#define RING 64
#define YIELD_EVERY 16
#define LINE 64

/* A member's record: a ring slot (heap == 0) or malloc'd (heap == 1).
 * One line each, so that a member clearing busy does not disturb the
 * spawner filling the next slot. */
typedef struct {
  _Alignas(LINE) sp_group_t *g;
  sp_group_fn_t fn;
  void *arg;
  atomic_int busy; /* ring slots: filled and not yet copied out (R1) */
  int heap;
} member_t;

/* A worker's ring (or the shared one, under alloc_mu), its next slot, and
 * how many members fibers on that worker started (pacing). */
typedef struct {
  _Alignas(LINE) member_t *ring; /* RING slots, made on first use */
  unsigned next, started;
} cache_t;

struct sp_group {
  /* read by spawners and members; written at init (cancelled: once) */
  sp_ctx_t *ctx;      /* the group's context; owned (released by free) */
  sp_runtime_t *rt;   /* where members run */
  int limit;          /* 0: none */
  int nworkers;       /* of rt: caches has nworkers + 1 entries */
  int64_t deadline;   /* the context's (from its ancestors), or SP_FOREVER */
  cache_t *caches;    /* per worker of rt, then the shared one */
  atomic_int cancelled; /* set by on_cancel once the context is cancelled */

  _Alignas(LINE) atomic_long live;  /* members not yet finished (G1) */
  sp_waitgroup_t wg;                /* 1 while live > 0 (G5) */
  _Alignas(LINE) sp_sema_t slots;   /* limit > 0: a unit per member (G2) */

  _Alignas(LINE) atomic_long users; /* sp_group_go in a slot wait (G4) */
  pthread_mutex_t alloc_mu;         /* the shared cache */

  _Alignas(LINE) pthread_mutex_t mu;
  int first;          /* mu: the first failure (G3), 0 if none */
  int self_cancelled; /* mu: the group cancelled its own context (G3) */
  size_t nerr, cap;   /* mu: failures recorded / stored capacity */
  int *errs;          /* mu: inline_errs or a heap array of cap */
  int inline_errs[INLINE_ERRS];
};

/* Takes a member record from the caller's ring, or from the heap when
 * its next slot is still busy; NULL when out of memory. *pc is the
 * caller's worker cache (NULL for other callers). Runs on: any thread;
 * locks alloc_mu unless on a worker of g->rt. Switches: no (the worker
 * index stays valid throughout). */
static member_t *rec_get(sp_group_t *g, cache_t **pc) {
  int w = sp_runtime_current() == g->rt ? sp_worker_index() : -1;
  bool shared = w < 0 || w >= g->nworkers;
  cache_t *c = &g->caches[shared ? g->nworkers : w];
  *pc = shared ? NULL : c;
  if (shared) pthread_mutex_lock(&g->alloc_mu);
  member_t *m = NULL;
  if (!c->ring && (c->ring = aligned_alloc(LINE, RING * sizeof *c->ring)) != NULL)
    memset(c->ring, 0, RING * sizeof *c->ring);
  if (c->ring) {
    member_t *slot = &c->ring[c->next % RING];
    if (!atomic_load_explicit(&slot->busy, memory_order_acquire)) { /* R1 */
      atomic_store_explicit(&slot->busy, 1, memory_order_relaxed);
      c->next++;
      m = slot;
    }
  }
  if (shared) pthread_mutex_unlock(&g->alloc_mu);
  if (!m && (m = aligned_alloc(LINE, sizeof *m)) != NULL) m->heap = 1; /* one line, aligned */
  return m;
}

/* Gives a record back once it was copied out (R1). Runs on: any thread. */
static void rec_put(member_t *m) {
  if (m->heap) free(m);
  else atomic_store_explicit(&m->busy, 0, memory_order_release); /* pairs with rec_get */
}

/* sp_ctx_after_cancel callback: the context is cancelled. Must not block. */
static void on_cancel(void *arg) {
  atomic_store(&((sp_group_t *)arg)->cancelled, 1); /* pairs with is_cancelled */
}

/* Whether the group's context is cancelled (a deadline inherited from an
 * ancestor without a timer is checked, and so fired, here too). */
static bool is_cancelled(sp_group_t *g) {
  if (atomic_load(&g->cancelled)) return true;
  return g->deadline != SP_FOREVER && sp_now() >= g->deadline && sp_ctx_err(g->ctx) != 0;
}

/* Appends rc to the failure list; a failure that cannot be stored for lack
 * of memory is still counted (it reads as -ENOMEM). Locks: caller holds mu. */
static void push_error(sp_group_t *g, int rc) {
  if (g->nerr == g->cap) { /* full (after a failed growth nerr > cap: no retry) */
    size_t ncap = g->cap * 2;
    int *n = malloc(ncap * sizeof *n);
    if (n) {
      memcpy(n, g->errs, g->cap * sizeof *n);
      if (g->errs != g->inline_errs) free(g->errs);
      g->errs = n;
      g->cap = ncap;
    }
  }
  if (g->nerr < g->cap) g->errs[g->nerr] = rc;
  g->nerr++;
}

/* Records a failure rc < 0 of a member (member = 1) or of the wait's
 * deadline (member = 0); the first one cancels the group (G3) with cause
 * (0: -ECANCELED). Runs on: any thread. Locks: mu, then none while
 * cancelling. Switches: no. */
static void fail(sp_group_t *g, int rc, int member, int cause) {
  int cancel = 0;
  pthread_mutex_lock(&g->mu);
  /* The group's own cancellation coming back from a member: it was
   * cancelled, it did not fail (sp_group_errors). */
  int echo = member && g->self_cancelled && rc == sp_ctx_err(g->ctx);
  if (!echo) {
    if (member) push_error(g, rc);
    if (g->first == 0) {
      g->first = rc;
      /* Already cancelled (by the parent): members report that, and their
       * results are failures like this one. */
      cancel = g->self_cancelled = sp_ctx_err(g->ctx) == 0;
    }
  }
  pthread_mutex_unlock(&g->mu);
  if (cancel) sp_ctx_cancel(g->ctx, cause);
}

/* Counts a member in live (G5). Runs on: any thread. Switches: no. */
static void live_inc(sp_group_t *g) {
  if (atomic_fetch_add(&g->live, 1) == 0) sp_wg_add(&g->wg, 1);
}

/* Counts a member out of live: its last touch of g (G1). */
static void live_dec(sp_group_t *g) {
  if (atomic_fetch_sub(&g->live, 1) == 1) sp_wg_done(&g->wg);
}

/* Lets a spawner between its increment and its sp_wg_add go on. */
static void pause_briefly(void) {
  if (sp_yield() != 0) sched_yield(); /* a foreign thread */
}

/* Waits until live is 0 and no member touches g any more (see the top
 * comment). Returns 0, -ETIMEDOUT, -EAGAIN (deadline 0). Suspends: yes. */
static int wait_idle(sp_group_t *g, int64_t deadline) {
  for (;;) {
    int rc = sp_wg_wait(&g->wg, deadline);
    if (rc < 0) return rc;
    if (atomic_load(&g->live) == 0) return sp_wg_wait(&g->wg, SP_FOREVER); /* at most a done away */
    if (deadline == 0) return -EAGAIN;
    if (deadline != SP_FOREVER && sp_now() >= deadline) return -ETIMEDOUT;
    pause_briefly();
  }
}

/* Cancels the group's context as sp_group_wait does when it returns: later
 * members are refused; nothing is recorded. Locks: mu. Switches: no. */
static void close_group(sp_group_t *g) {
  pthread_mutex_lock(&g->mu);
  g->self_cancelled = 1;
  pthread_mutex_unlock(&g->mu);
  sp_ctx_cancel(g->ctx, 0);
}

/* A member fiber: fn in the group's context, then the bookkeeping, then
 * live_dec as the last touch of g (G1). Runs on: a worker of g->rt. */
static void *member_main(void *arg) {
  member_t *rec = arg;
  sp_group_t *g = rec->g;
  sp_group_fn_t fn = rec->fn;
  void *fn_arg = rec->arg;
  rec_put(rec); /* R1 */
  sp_ctx_t *prev = sp_ctx_enter(g->ctx);
  int rc = fn(fn_arg);
  sp_ctx_leave(prev);
  if (rc < 0) fail(g, rc, 1, 0);
  if (g->limit) sp_sema_release(&g->slots, 1); /* G2 */
  live_dec(g);                                 /* G1: g may be freed now */
  return NULL;
}

/* Frees what init made, for init's failures and for free. */
static void destroy(sp_group_t *g) {
  if (g->ctx) sp_ctx_release(g->ctx);
  if (g->caches) {
    for (int i = 0; i <= g->nworkers; i++) free(g->caches[i].ring);
    free(g->caches);
  }
  pthread_mutex_destroy(&g->alloc_mu);
  pthread_mutex_destroy(&g->mu);
  if (g->errs != g->inline_errs) free(g->errs);
  free(g);
}

int sp_group_init_rt(sp_group_t **out, sp_runtime_t *rt, sp_ctx_t *parent, int limit) {
  if (!out || limit < 0) return -EINVAL;
  *out = NULL;
  if (!rt) rt = sp_runtime_current();
  if (!rt) return -EINVAL; /* a foreign thread must name the runtime */
  if (!parent) parent = sp_ctx_current(); /* NULL still: the background */
  sp_group_t *g = aligned_alloc(LINE, sizeof *g);
  if (!g) return -ENOMEM;
  memset(g, 0, sizeof *g);
  pthread_mutex_init(&g->alloc_mu, NULL);
  pthread_mutex_init(&g->mu, NULL);
  g->errs = g->inline_errs;
  g->cap = INLINE_ERRS;
  g->rt = rt;
  g->limit = limit;
  if (limit) sp_sema_init(&g->slots, limit);
  g->nworkers = sp_runtime_workers(rt);
  size_t csz = (size_t)(g->nworkers + 1) * sizeof(cache_t);
  int rc = -ENOMEM;
  if ((g->caches = aligned_alloc(LINE, csz)) != NULL) {
    memset(g->caches, 0, csz);
    rc = sp_ctx_with_cancel(parent, &g->ctx);
  }
  if (rc == 0) {
    g->deadline = sp_ctx_deadline(g->ctx);
    rc = sp_ctx_after_cancel(g->ctx, on_cancel, g); /* at once if cancelled */
  }
  if (rc < 0) {
    destroy(g);
    return rc;
  }
  *out = g;
  return 0;
}

int sp_group_init(sp_group_t **out, sp_ctx_t *parent, int limit) {
  return sp_group_init_rt(out, NULL, parent, limit);
}

/* Undoes a spawn that did not happen: record, slot, then live_dec, the
 * last touch of g (G4). */
static void undo(sp_group_t *g, member_t *m) {
  rec_put(m);
  if (g->limit) sp_sema_release(&g->slots, 1);
  live_dec(g);
}

int sp_group_go(sp_group_t *g, sp_group_fn_t fn, void *arg) {
  if (!g || !fn) return -EINVAL;
  if (is_cancelled(g)) return -ECANCELED;
  if (g->limit) {
    atomic_fetch_add(&g->users, 1); /* G4: until the member counts in live */
    int rc = sp_sema_acquire(&g->slots, 1, SP_FOREVER); /* the caller's context may end it */
    if (rc < 0) {
      atomic_fetch_sub(&g->users, 1);
      return rc;
    }
  }
  cache_t *c;
  member_t *m = rec_get(g, &c);
  if (!m) {
    if (g->limit) {
      sp_sema_release(&g->slots, 1);
      atomic_fetch_sub(&g->users, 1);
    }
    return -ENOMEM;
  }
  m->g = g;
  m->fn = fn;
  m->arg = arg;
  live_inc(g);
  if (g->limit) atomic_fetch_sub(&g->users, 1); /* live protects g now */
  /* Checked after the increment: a wait that cancelled the group before
   * this point sees the count and waits for this member too. */
  if (is_cancelled(g)) {
    undo(g, m);
    return -ECANCELED;
  }
  static const sp_spawn_opts_t opts = {"group", 0, 1};
  int rc = sp_spawn(g->rt, NULL, member_main, m, &opts);
  if (rc < 0) {
    undo(g, m);
    return rc;
  }
  if (c && ++c->started % YIELD_EVERY == 0) sp_yield(); /* pacing; g is not touched after */
  return 0;
}

int sp_group_wait(sp_group_t *g, int64_t deadline) {
  if (!g) return -EINVAL;
  if (sp_ctx_current() == g->ctx) return -EDEADLK; /* a member waiting for itself */
  sp_ctx_t *prev = sp_ctx_enter(NULL);            /* shielded: see the header */
  int rc = wait_idle(g, deadline);
  if (rc == -ETIMEDOUT || (rc == -EAGAIN && deadline != 0)) {
    fail(g, -ETIMEDOUT, 0, -ETIMEDOUT);
    rc = wait_idle(g, SP_FOREVER);
  }
  if (rc == 0) {
    close_group(g);
    /* A sp_group_go that counted its member before the cancel is waited
     * for too (see sp_group_go); it runs in a cancelled context. */
    rc = wait_idle(g, deadline == 0 ? 0 : SP_FOREVER);
  }
  sp_ctx_leave(prev);
  if (rc < 0) return rc; /* -EAGAIN (deadline 0) */
  pthread_mutex_lock(&g->mu);
  rc = g->first;
  pthread_mutex_unlock(&g->mu);
  return rc;
}

int sp_group_errors(sp_group_t *g, int *out, size_t n) {
  if (!g || (!out && n)) return -EINVAL;
  pthread_mutex_lock(&g->mu);
  size_t total = g->nerr;
  for (size_t i = 0; i < n && i < total; i++) out[i] = i < g->cap ? g->errs[i] : -ENOMEM;
  pthread_mutex_unlock(&g->mu);
  return total > INT32_MAX ? INT32_MAX : (int)total;
}

sp_ctx_t *sp_group_ctx(sp_group_t *g) { return g ? g->ctx : NULL; }

int sp_group_free(sp_group_t *g) {
  if (!g) return -EINVAL;
  /* wg too: the last member may be between its decrement and its done */
  if (atomic_load(&g->users) > 0 || atomic_load(&g->live) > 0 || sp_wg_add(&g->wg, 0) > 0)
    return -EBUSY; /* G4 */
  destroy(g);
  return 0;
}
