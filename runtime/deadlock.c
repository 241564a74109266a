/*
 * deadlock.c: "all fibers are asleep - deadlock!" (Go's checkdead), for a
 * runtime whose fibers can never run again.
 *
 * Model: the process is deadlocked when every runtime in it either has no
 * live fibers or has all of them parked (every worker registered idle,
 * every queue empty) with no timer armed (no deadline can wake anyone) and
 * no foreign thread registered as a possible waker (sp_runtime_hold), and
 * some foreign thread waits forever for a runtime (sp_join with
 * SP_FOREVER, or shutdown/destroy without deadline): that thread would
 * otherwise hang. All runtimes count because a fiber of one may wake a
 * fiber of another (a cross-runtime join, a shared channel); they are kept
 * in a process-wide list for this (the only process-wide state besides the
 * crash handler's, and neither limits how many runtimes there are). The last worker to go idle checks, and
 * so does a foreign thread when it starts such a wait. By default the
 * report and a dump go to stderr and the process aborts; with
 * SP_DEADLOCK_RETURN the waiting calls return -EDEADLK instead.
 * Foreign threads that are not waiting and not registered are assumed to be
 * done with the runtime: an embedder whose threads feed fibers (send on a
 * channel, unlock a mutex) must hold the runtime while they may do so.
 * Invariants:
 *   K1  Only a forever-wait of a foreign thread can be reported: fibers'
 *       own forever-waits are part of the condition, not reporters.
 *   K2  Waiters are woken with -EDEADLK through their parker claim, so a
 *       real wake-up racing the report wins cleanly (exactly once), and a
 *       waiter whose claim already went to its waker is never reported.
 * Locks: registry_lock, then dl_lock of each runtime; done_lock after both
 *   are released. None is taken on a fiber switch path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"
#include "runtime/park.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

int sp_runtime_hold(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  __atomic_fetch_add(&rt->holds, 1, __ATOMIC_ACQ_REL);
  return 0;
}

int sp_runtime_release(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  int h = LOAD(&rt->holds);
  do {
    if (h <= 0) return -EINVAL;
  } while (!__atomic_compare_exchange_n(&rt->holds, &h, h - 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE));
  if (h == 1) sp__deadlock_check(rt); /* the last possible waker left */
  return 0;
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sp_runtime *registry; /* every live runtime, guarded by registry_lock */

void sp__deadlock_register(struct sp_runtime *rt) {
  SP_MLOCK(&registry_lock, RANK_REGISTRY);
  rt->registry_next = registry;
  registry = rt;
  SP_MUNLOCK(&registry_lock, RANK_REGISTRY);
}

void sp__deadlock_unregister(struct sp_runtime *rt) {
  SP_MLOCK(&registry_lock, RANK_REGISTRY);
  for (struct sp_runtime **p = &registry; *p; p = &(*p)->registry_next)
    if (*p == rt) {
      *p = rt->registry_next;
      break;
    }
  SP_MUNLOCK(&registry_lock, RANK_REGISTRY);
}

void sp__each_runtime(void (*fn)(struct sp_runtime *rt, void *arg), void *arg) {
  SP_MLOCK(&registry_lock, RANK_REGISTRY);
  for (struct sp_runtime *r = registry; r; r = r->registry_next) fn(r, arg);
  SP_MUNLOCK(&registry_lock, RANK_REGISTRY);
}

static void dump_one(struct sp_runtime *rt, void *fd) { sp_runtime_dump(rt, (int)(intptr_t)fd); }

void sp__dump_all(int fd) { sp__each_runtime(dump_one, (void *)(intptr_t)fd); }

/* Whether nothing can ever run in rt again on its own: no live fiber, or
 * all of them parked with no timer, no hold and no waker inside. */
static bool stuck(struct sp_runtime *rt) {
  if (LOAD(&rt->live) == 0) return true;
  if (LOAD(&rt->holds) > 0 || LOAD(&rt->ext_wakers) > 0) return false;
  if (LOAD(&rt->io_inflight) > 0) return false; /* I/O may complete */
  if (LOAD(&rt->nidle) != rt->nworkers || LOAD(&rt->inject_n)) return false;
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    if (!sp__runq_empty(w) || LOAD(&w->inbox_n) || sp__timer_next(&w->timers) != INT64_MAX)
      return false;
  }
  return true;
}

/* Reports or releases the forever-waiters of rt. A waiter counts only if
 * its parker can still be claimed: one whose wake-up is already under way
 * (its fiber finished, live dropped first) is not stranded (K2).
 * Locks: registry_lock. */
static bool strand(struct sp_runtime *rt) {
  if (LOAD(&rt->live) == 0 || rt->cfg.deadlock == SP_DEADLOCK_OFF) return false;
  SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
  int n = 0;
  for (int i = 0; i < rt->ndl_waiters; i++)
    if (sp__park_claim(rt->dl_waiters[i])) rt->dl_waiters[n++] = rt->dl_waiters[i];
  if (n == 0 && !rt->shutdown_waiting) {
    rt->ndl_waiters = 0; /* all were being woken anyway; they unlist themselves */
    SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
    return false;
  }
  if (rt->cfg.deadlock == SP_DEADLOCK_ABORT) {
    fprintf(stderr, "spindle: all fibers are asleep - deadlock!\n");
    for (struct sp_runtime *r = registry; r; r = r->registry_next) sp_runtime_dump(r, 2);
    abort();
  }
  __atomic_store_n(&rt->deadlocked, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < n; i++) sp__park_wake(rt->dl_waiters[i], -EDEADLK);
  rt->ndl_waiters = 0;
  SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
  return true;
}

/* Whether all runtimes are stuck and rt has someone waiting forever.
 * Cheap when the answer is no (the common case). */
bool sp__deadlock_suspect(struct sp_runtime *rt) {
  /* cheapest and most selective first: it runs on every idle transition */
  if (rt->cfg.deadlock == SP_DEADLOCK_OFF || LOAD(&rt->nidle) != rt->nworkers) return false;
  if (LOAD(&rt->live) == 0 || !stuck(rt)) return false;
  SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
  bool waited = rt->ndl_waiters > 0 || rt->shutdown_waiting;
  SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
  if (!waited) return false;
  SP_MLOCK(&registry_lock, RANK_REGISTRY);
  bool all = true;
  for (struct sp_runtime *r = registry; r && all; r = r->registry_next) all = stuck(r);
  SP_MUNLOCK(&registry_lock, RANK_REGISTRY);
  return all;
}

/* Scheduling activity of rt: changes whenever a fiber runs or is spawned. */
uint64_t sp__deadlock_activity(struct sp_runtime *rt) {
  uint64_t a = LOAD(&rt->spawned_foreign) + LOAD(&rt->live);
  for (int i = 0; i < rt->nworkers; i++)
    a += LOAD(&rt->workers[i].stats.switches) + LOAD(&rt->workers[i].stats.spawned);
  return a;
}

void sp__deadlock_report(struct sp_runtime *rt) {
  (void)rt;
  SP_MLOCK(&registry_lock, RANK_REGISTRY);
  bool all = true;
  for (struct sp_runtime *r = registry; r && all; r = r->registry_next) all = stuck(r);
  struct sp_runtime *released[64];
  int n = 0;
  if (all)
    for (struct sp_runtime *r = registry; r && n < 64; r = r->registry_next)
      if (strand(r)) released[n++] = r;
  SP_MUNLOCK(&registry_lock, RANK_REGISTRY);
  for (int i = 0; i < n; i++) { /* wake a stranded shutdown */
    SP_MLOCK(&released[i]->done_lock, RANK_DONE);
    pthread_cond_broadcast(&released[i]->done_cond);
    SP_MUNLOCK(&released[i]->done_lock, RANK_DONE);
  }
}

void sp__deadlock_check(struct sp_runtime *rt) {
  /* foreign threads do not decide: an idle worker confirms (sched.c) */
  if (sp__deadlock_suspect(rt)) sp__wake_idle(rt);
}

int sp__deadlock_wait_begin(struct sp_runtime *rt, sp__parker_t *p) {
  SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
  if (rt->ndl_waiters == DL_MAX_WAITERS) { /* cannot track more: not reported */
    SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
    return 0;
  }
  rt->dl_waiters[rt->ndl_waiters++] = p;
  SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
  sp__deadlock_check(rt);
  return 1;
}

void sp__deadlock_wait_end(struct sp_runtime *rt, sp__parker_t *p) {
  SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
  for (int i = 0; i < rt->ndl_waiters; i++)
    if (rt->dl_waiters[i] == p) {
      rt->dl_waiters[i] = rt->dl_waiters[--rt->ndl_waiters];
      break;
    }
  SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
}
