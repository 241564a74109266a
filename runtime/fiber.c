/*
 * fiber.c: fiber lifecycle: spawn, run, finish, join, detach; yield,
 * sleep, pinning, identity and fiber-local storage.
 *
 * Model: a fiber is a pooled control block plus a pooled stack. The stack
 * is released as soon as the fiber returns (by the context resumed after
 * it, sched.c S2); the block lives on until the fiber is joined, or at once
 * if it was detached. Blocks are never freed before the runtime, so a stale
 * handle is detected by comparing ids.
 * Invariants:
 *   F1  f->joiner moves NULL -> parker (a join waits) -> JOIN_DONE, or
 *       NULL -> JOIN_DONE (finished first), or NULL -> JOIN_DETACHED. The
 *       exiting side swaps in JOIN_DONE; whoever sees the other's mark
 *       second frees the block, so it is freed exactly once.
 *   F2  f->result is written before JOIN_DONE is published (release) and
 *       read after it is observed (acquire).
 *   F3  rt->live counts fibers spawned and not yet finished.
 *   F4  f->id != 0 exactly while the block is in use; handles carry the id.
 *   F5  A joiner whose deadline fired after the finisher took its parker
 *       waits for f->join_handoff before its parker (on its stack) dies:
 *       the finisher may still be reading it. The window is a few
 *       instructions, so the wait is a sched_yield loop.
 * Locks: fpool_lock (leaf) on a cache miss or overflow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cancel.h"
#include "runtime/core.h"
#include "runtime/lockrank.h"
#include "runtime/park.h"
#include "runtime/spawn.h"

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)
#define SLAB 64

/* Reports misuse in debug mode (naming the calling fiber) and returns code. */
#define misuse(rt, code, ...) (sp__debugf((rt), __VA_ARGS__), (code))

/* ---- the block pool ---------------------------------------------------- */

/* Allocates a slab of blocks into the pool. Locks: caller holds fpool_lock. */
static int grow_pool(struct sp_runtime *rt) {
  if (rt->nfslabs == rt->capfslabs) {
    size_t cap = rt->capfslabs ? rt->capfslabs * 2 : 16;
    void **a = realloc(rt->fslabs, cap * sizeof *a);
    if (!a) return -ENOMEM;
    rt->fslabs = a;
    rt->capfslabs = cap;
  }
  struct sp_fiber *slab = aligned_alloc(64, SLAB * sizeof *slab);
  if (!slab) return -ENOMEM;
  memset(slab, 0, SLAB * sizeof *slab);
  rt->fslabs[rt->nfslabs++] = slab;
  for (int i = 0; i < SLAB; i++) {
    slab[i].next = rt->fpool;
    rt->fpool = &slab[i];
  }
  return 0;
}

static struct sp_fiber *block_get(struct sp_runtime *rt, sp__worker_t *w) {
  if (w && w->nfcache > 0) return w->fcache[--w->nfcache];
  SP_MLOCK(&rt->fpool_lock, RANK_POOL);
  struct sp_fiber *f = NULL;
  if (rt->fpool || grow_pool(rt) == 0) {
    f = rt->fpool;
    rt->fpool = f->next;
    while (w && rt->fpool && w->nfcache < SP__FIBER_CACHE / 2) {
      w->fcache[w->nfcache++] = rt->fpool;
      rt->fpool = rt->fpool->next;
    }
  }
  SP_MUNLOCK(&rt->fpool_lock, RANK_POOL);
  return f;
}

static void block_put(struct sp_runtime *rt, struct sp_fiber *f) {
  STORE(&f->id, 0, RELEASE); /* F4 */
  free(f->fls);
  f->fls = NULL;
  sp__worker_t *w = sp__self();
  if (w && w->rt != rt) w = NULL;
  if (w && w->nfcache < SP__FIBER_CACHE) {
    w->fcache[w->nfcache++] = f;
    return;
  }
  /* full cache (fibers spawned elsewhere finish here): move half of it to
   * the pool in one locked batch, not one lock per fiber */
  f->next = NULL;
  struct sp_fiber *tail = f;
  while (w && w->nfcache > SP__FIBER_CACHE / 2) {
    struct sp_fiber *g = w->fcache[--w->nfcache];
    g->next = f;
    f = g;
  }
  SP_MLOCK(&rt->fpool_lock, RANK_POOL);
  tail->next = rt->fpool;
  rt->fpool = f;
  SP_MUNLOCK(&rt->fpool_lock, RANK_POOL);
}

void sp__fiber_pool_destroy(struct sp_runtime *rt) {
  for (size_t i = 0; i < rt->nfslabs; i++) free(rt->fslabs[i]);
  free(rt->fslabs);
  rt->fslabs = NULL;
  rt->nfslabs = rt->capfslabs = 0;
  rt->fpool = NULL;
}

/* ---- spawn ------------------------------------------------------------- */

/* A fresh fiber id, unique in rt; workers take them in batches so spawns
 * on different workers do not contend on one counter. */
static uint64_t new_id(struct sp_runtime *rt, sp__worker_t *w) {
  enum { BATCH = 64 };
  if (!w) return __atomic_fetch_add(&rt->next_id, 1, __ATOMIC_RELAXED) + 1;
  if (w->id_next == w->id_end) {
    w->id_next = __atomic_fetch_add(&rt->next_id, BATCH, __ATOMIC_RELAXED) + 1;
    w->id_end = w->id_next + BATCH;
  }
  return w->id_next++;
}

int sp_spawn_at(sp_runtime_t *rt, sp_fiber_t *out, sp_fn_t fn, void *arg,
                const sp_spawn_opts_t *opts, const char *file, int line) {
  return sp__spawn_hooked(rt, out, fn, arg, opts, NULL, NULL, file, line);
}

/* Makes and queues the fiber, once spawn's arguments are checked. w: the
 * calling worker if it belongs to rt, else NULL. */
static int spawn_checked(sp_runtime_t *rt, sp__worker_t *w, sp_fiber_t *out, sp_fn_t fn, void *arg,
                         const sp_spawn_opts_t *opts, void (*on_exit)(void *), void *exit_arg,
                         const char *file, int line, int detached, size_t size) {
  struct sp_fiber *f = block_get(rt, w);
  if (!f) {
    sp__debugf(rt, "spawn: out of memory for a fiber block");
    return -ENOMEM;
  }
  const char *why = "unknown";
  int rc = sp__stack_alloc(&rt->stacks, w ? &w->stacks : NULL, size, &f->stack, &why);
  if (rc < 0) {
    sp__debugf(rt, "spawn: no stack of %zu bytes: %s", size, why);
    block_put(rt, f);
    return rc;
  }
  f->rt = rt;
  f->fn = fn;
  f->arg = arg;
  f->on_exit = on_exit;
  f->exit_arg = exit_arg;
  f->result = NULL;
  f->joiner = detached ? SP__JOIN_DETACHED : NULL;
  f->join_handoff = 0;
  f->fls = NULL;
  f->cancel = NULL;
  f->pinned = -1;
  f->last_worker = -1;
  f->file = file;
  f->line = line;
  const char *name = opts && opts->name ? opts->name : "fiber";
  strncpy(f->name, name, SP_NAME_MAX);
  f->name[SP_NAME_MAX] = '\0';
  if (f->stack.fresh) { /* sched.c S9: its context is made when it first runs */
    f->ctx.fctx = NULL;
    f->ctx.tsan = NULL;
  } else {
    sp__fiber_prepare(f);
  }
  uint64_t id = new_id(rt, w);
  STORE(&f->id, id, RELEASE);
  sp__fset(f, F_RUNNABLE);
  __atomic_fetch_add(&rt->live, 1, __ATOMIC_RELAXED); /* F3 */
  if (w) sp__stat_inc(&w->stats.spawned);
  else __atomic_fetch_add(&rt->spawned_foreign, 1, __ATOMIC_RELAXED);
  if (out) *out = (sp_fiber_t){f, id};
  sp__enqueue(rt, f, Q_SPAWN); /* newest first on this worker (runq.c) */
  return 0;
}

int sp__spawn_hooked(sp_runtime_t *rt, sp_fiber_t *out, sp_fn_t fn, void *arg,
                     const sp_spawn_opts_t *opts, void (*on_exit)(void *), void *exit_arg,
                     const char *file, int line) {
  sp__worker_t *w = sp__self();
  if (!rt) rt = w ? w->rt : NULL;
  int detached = opts ? opts->detached : !out; /* sp_go: no opts, no handle */
  if (out) *out = (sp_fiber_t){NULL, 0};
  if (!rt || !fn || (!detached && !out)) {
    sp__debugf(rt, "spawn: %s", !rt ? "no runtime (NULL rt outside a fiber)"
                                : !fn ? "NULL function" : "joinable fiber without a handle");
    return -EINVAL;
  }
  size_t size = opts && opts->stack_size ? opts->stack_size : rt->cfg.stack_size;
  if (size < SP_STACK_MIN || size > SP_STACK_MAX) {
    sp__debugf(rt, "spawn: stack size %zu outside [%zu, %zu]", size, SP_STACK_MIN, SP_STACK_MAX);
    return -EINVAL;
  }
  if (w && w->rt != rt) w = NULL; /* caches belong to w's own runtime */
  if (w) return spawn_checked(rt, w, out, fn, arg, opts, on_exit, exit_arg, file, line, detached, size);
  /* R1: a thread not of rt is counted while it spawns, so a shutdown that
   * sets stopping either is seen here or waits for this spawn to end */
  __atomic_fetch_add(&rt->ext_wakers, 1, __ATOMIC_SEQ_CST);
  int rc = LOAD(&rt->stopping, SEQ_CST)
               ? -ECANCELED
               : spawn_checked(rt, NULL, out, fn, arg, opts, on_exit, exit_arg, file, line, detached, size);
  __atomic_fetch_sub(&rt->ext_wakers, 1, __ATOMIC_RELEASE);
  return rc;
}

static void run_fls_dtors(struct sp_fiber *f);

/* Runs the body, the fiber-local destructors and the exit hook.
 * Runs on: f's stack. */
void sp__fiber_run_body(struct sp_fiber *f) {
  void *r = f->fn(f->arg);
  f = sp__self()->cur; /* S5: same block, but re-read after the body */
  f->result = r;
  run_fls_dtors(f);
  f = sp__self()->cur;
  if (f->cancel) { /* it returned inside a context scope: leave it */
    sp__cancel_t *c = f->cancel;
    f->cancel = NULL;
    if (f->rt->cfg.debug)
      sp__debugf(f->rt, "returned without leaving its context (sp_ctx_leave)");
    if (c->unbound) c->unbound(c);
    f = sp__self()->cur;
  }
  if (f->on_exit) f->on_exit(f->exit_arg);
}

/* Runs the fiber-local destructors. Runs on: f's stack. */
static void run_fls_dtors(struct sp_fiber *f) {
  if (!f->fls) return;
  struct sp_runtime *rt = f->rt;
  for (int round = 0; round < 4; round++) { /* dtors may set values again */
    int any = 0;
    for (int k = 0; k < SP_KEYS_MAX; k++) {
      void *v = f->fls[k];
      if (v && rt->key_dtor[k]) {
        f->fls[k] = NULL;
        rt->key_dtor[k](v);
        any = 1;
        f = sp__self()->cur;
      }
    }
    if (!any) break;
  }
}

void sp__fiber_finish(sp__worker_t *w, struct sp_fiber *f) {
  struct sp_runtime *rt = f->rt;
  sp__ctx_release(&f->ctx);
  sp__census_record(f); /* debug mode only; before the stack is reused */
  sp__stack_free(&rt->stacks, &w->stacks, f->stack);
  f->stack = (sp__stack_t){NULL, 0, false};
  sp__fset(f, F_DONE);
  /* F3 before the joiner can run, so a joined fiber is never counted live;
   * live cannot reach 0 while a joining fiber exists (it is live itself). */
  if (__atomic_sub_fetch(&rt->live, 1, __ATOMIC_ACQ_REL) == 0) {
    SP_MLOCK(&rt->done_lock, RANK_DONE);
    pthread_cond_broadcast(&rt->done_cond);
    SP_MUNLOCK(&rt->done_lock, RANK_DONE);
  }
  void *j = __atomic_exchange_n(&f->joiner, SP__JOIN_DONE, __ATOMIC_ACQ_REL); /* F1, F2 */
  if (j == SP__JOIN_DETACHED) {
    block_put(rt, f);
  } else if (j) {
    sp__parker_t *p = j;
    if (sp__park_claim(p))
      sp__park_wake(p, 0); /* f may be collected from here on */
    else
      STORE(&f->join_handoff, 1, RELEASE); /* F5: done with p */
  }
}

/* ---- join and detach --------------------------------------------------- */

static int collect(struct sp_fiber *f, void **result) {
  if (result) *result = f->result;
  block_put(f->rt, f);
  return 0;
}

int sp_join(sp_fiber_t h, void **result, int64_t deadline) {
  struct sp_fiber *f = h.p;
  if (!f || h.id == 0) return misuse(NULL, -EINVAL, "join: empty fiber handle");
  if (LOAD(&f->id, ACQUIRE) != h.id) /* F4 */
    return misuse(NULL, -ESRCH, "join: fiber %llu was already joined (or detached)",
                  (unsigned long long)h.id);
  sp__worker_t *w = sp__self();
  if (w && w->cur == f) return misuse(f->rt, -EINVAL, "join: a fiber cannot join itself");
  void *j = LOAD(&f->joiner, ACQUIRE);
  if (j == SP__JOIN_DONE) return collect(f, result);
  if (j == SP__JOIN_DETACHED)
    return misuse(f->rt, -EINVAL, "join: fiber %llu is detached", (unsigned long long)h.id);
  if (j)
    return misuse(f->rt, -EINVAL, "join: fiber %llu is already being joined",
                  (unsigned long long)h.id);
  if (deadline == 0) return -EAGAIN;

  sp__parker_t p;
  sp__park_begin(&p);
  sp__park_note("join", f);
  void *expect = NULL;
  if (!__atomic_compare_exchange_n(&f->joiner, &expect, &p, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    sp__park_abort(&p); /* nobody else knows p: always succeeds */
    if (expect == SP__JOIN_DONE) return collect(f, result);
    return misuse(f->rt, -EINVAL, "join: fiber %llu is detached or being joined",
                  (unsigned long long)h.id);
  }
  if (LOAD(&f->id, ACQUIRE) != h.id) sp__panic("fiber: block reused during join");
  /* a foreign thread waiting forever may be the one a deadlock strands */
  int tracked = !w && deadline == SP_FOREVER ? sp__deadlock_wait_begin(f->rt, &p) : 0;
  int rc = sp__park_wait(&p, deadline);
  if (tracked) sp__deadlock_wait_end(f->rt, &p);
  if (rc != 0) { /* deadline, deadlock or cancellation */
    expect = &p; /* withdraw; if the fiber finished meanwhile, take it */
    if (__atomic_compare_exchange_n(&f->joiner, &expect, NULL, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      return rc;
    while (!LOAD(&f->join_handoff, ACQUIRE)) sched_yield(); /* F5 */
  }
  return collect(f, result);
}

int sp_detach(sp_fiber_t h) {
  struct sp_fiber *f = h.p;
  if (!f || h.id == 0) return misuse(NULL, -EINVAL, "detach: empty fiber handle");
  if (LOAD(&f->id, ACQUIRE) != h.id)
    return misuse(NULL, -ESRCH, "detach: fiber %llu was already joined (or detached)",
                  (unsigned long long)h.id);
  void *expect = NULL;
  if (__atomic_compare_exchange_n(&f->joiner, &expect, SP__JOIN_DETACHED, false,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return 0;
  if (expect == SP__JOIN_DONE) {
    /* finished first: we free it (F1). Re-check the id: a racing join may
     * have collected it. */
    if (!__atomic_compare_exchange_n(&f->joiner, &expect, SP__JOIN_DETACHED, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return misuse(f->rt, -EINVAL, "detach: fiber %llu raced a join", (unsigned long long)h.id);
    block_put(f->rt, f);
    return 0;
  }
  return misuse(f->rt, -EINVAL, "detach: fiber %llu is %s", (unsigned long long)h.id,
                expect == SP__JOIN_DETACHED ? "already detached" : "being joined");
}

/* ---- the running fiber ------------------------------------------------- */

static struct sp_fiber *current(void) {
  sp__worker_t *w = sp__self();
  return w ? w->cur : NULL;
}

int sp_yield(void) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return misuse(NULL, -EPERM, "sp_yield outside a fiber");
  sp__switch_from(w, ACT_YIELD); /* w is not used after the switch (S5) */
  return 0;
}

int sp_sleep_until(int64_t deadline) {
  if (!current()) return misuse(NULL, -EPERM, "sp_sleep_until outside a fiber (use nanosleep)");
  if (deadline == SP_FOREVER) /* would never return */
    return misuse(NULL, -EINVAL, "sp_sleep_until(SP_FOREVER) would never return");
  sp__parker_t p;
  sp__park_begin(&p);
  sp__park_note("sleep", (const void *)(intptr_t)deadline); /* dump shows the deadline */
  int rc = sp__park_wait(&p, deadline);
  /* -ETIMEDOUT before the deadline: a context's earlier deadline cut it */
  return rc == -ETIMEDOUT && sp_now() >= deadline ? 0 : rc;
}

int sp_sleep_for(int64_t ns) { return sp_sleep_until(sp_deadline_in(ns < 0 ? 0 : ns)); }

sp_fiber_t sp_self(void) {
  struct sp_fiber *f = current();
  return f ? (sp_fiber_t){f, LOAD(&f->id, RELAXED)} : (sp_fiber_t){NULL, 0};
}

uint64_t sp_fiber_id(void) {
  struct sp_fiber *f = current();
  return f ? f->id : 0;
}

const char *sp_fiber_name(void) {
  struct sp_fiber *f = current();
  return f ? f->name : "";
}

int sp_pin(void) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return misuse(NULL, -EPERM, "sp_pin outside a fiber");
  w->cur->pinned = w->index;
  return 0;
}

int sp_unpin(void) {
  struct sp_fiber *f = current();
  if (!f) return misuse(NULL, -EPERM, "sp_unpin outside a fiber");
  f->pinned = -1;
  return 0;
}

int sp_worker_index(void) {
  sp__worker_t *w = sp__self();
  return w ? w->index : -1;
}

/* ---- fiber-local storage ----------------------------------------------- */

int sp_key_create(sp_runtime_t *rt, void (*dtor)(void *)) {
  if (!rt) {
    sp__worker_t *w = sp__self();
    rt = w ? w->rt : NULL;
  }
  if (!rt) return misuse(NULL, -EINVAL, "sp_key_create: no runtime (NULL outside a fiber)");
  int k = __atomic_fetch_add(&rt->nkeys, 1, __ATOMIC_ACQ_REL);
  if (k >= SP_KEYS_MAX) {
    __atomic_fetch_sub(&rt->nkeys, 1, __ATOMIC_ACQ_REL);
    return -EAGAIN;
  }
  rt->key_dtor[k] = dtor;
  return k;
}

int sp_key_set(sp_key_t key, void *value) {
  struct sp_fiber *f = current();
  if (!f) return misuse(NULL, -EPERM, "sp_key_set outside a fiber");
  if (key < 0 || key >= LOAD(&f->rt->nkeys, ACQUIRE))
    return misuse(f->rt, -EINVAL, "sp_key_set: key %d was not created", key);
  if (!f->fls) {
    if (!value) return 0;
    f->fls = calloc(SP_KEYS_MAX, sizeof *f->fls);
    if (!f->fls) return -ENOMEM;
  }
  f->fls[key] = value;
  return 0;
}

void *sp_key_get(sp_key_t key) {
  struct sp_fiber *f = current();
  if (!f || !f->fls || key < 0 || key >= SP_KEYS_MAX) return NULL;
  return f->fls[key];
}
