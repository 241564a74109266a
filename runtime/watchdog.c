/*
 * watchdog.c: debug mode's slow-fiber reports (asyncio's slow-callback
 * warning for fibers).
 *
 * Model: with cfg.debug, a thread per runtime wakes every quarter of the
 * threshold and looks at each worker's current fiber and switch counter.
 * A worker that shows the same fiber and the same counter for longer than
 * the threshold is running one fiber without reaching a switch point: a
 * long computation, or a blocking call made on a worker. It is reported
 * once per such stretch, naming the fiber and its spawn site.
 * Invariants:
 *   A1  Only reads workers' state (relaxed atomics): never slows them.
 *   A2  The thread exits promptly when the runtime stops (futex wake).
 * Locks: none.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "runtime/core.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

typedef struct {
  struct sp_fiber *fiber;
  uint64_t switches;
  int64_t since;
  bool reported;
} seen_t;

static void *watch(void *arg) {
  struct sp_runtime *rt = arg;
  int64_t limit = rt->cfg.slow_fiber_ns;
  int64_t period = limit / 4 > 1000000 ? limit / 4 : 1000000;
  seen_t seen[SP__WATCH_MAX] = {{0}};
  int n = rt->nworkers < SP__WATCH_MAX ? rt->nworkers : SP__WATCH_MAX;
  while (!LOAD(&rt->wd_stop)) {
    sp__futex_wait(&rt->wd_stop, 0, sp_deadline_in(period)); /* A2 */
    int64_t now = sp_now();
    for (int i = 0; i < n; i++) {
      sp__worker_t *w = &rt->workers[i];
      struct sp_fiber *f = LOAD(&w->cur);
      uint64_t sw = LOAD(&w->stats.switches);
      seen_t *s = &seen[i];
      if (f != s->fiber || sw != s->switches) {
        *s = (seen_t){f, sw, now, false};
        continue;
      }
      if (f && !s->reported && now - s->since > limit) {
        s->reported = true;
        fprintf(stderr,
                "spindle: fiber %llu \"%s\" (spawned at %s:%d) has run for %lld ms on worker %d "
                "without reaching a switch point (a long computation: yield now and then; or "
                "a blocking system call made on a worker)\n",
                (unsigned long long)LOAD(&f->id), f->name, f->file ? f->file : "?", f->line,
                (long long)((now - s->since) / 1000000), i);
      }
    }
  }
  return NULL;
}

int sp__watchdog_start(struct sp_runtime *rt) {
  if (!rt->cfg.debug) return 0;
  if (rt->cfg.slow_fiber_ns <= 0) rt->cfg.slow_fiber_ns = 100000000; /* 100 ms */
  int rc = pthread_create(&rt->wd_thread, NULL, watch, rt);
  if (rc == 0) rt->wd_running = 1;
  return -rc;
}

void sp__watchdog_stop(struct sp_runtime *rt) {
  if (!rt->wd_running) return;
  __atomic_store_n(&rt->wd_stop, 1, __ATOMIC_RELEASE);
  sp__futex_wake(&rt->wd_stop, 1);
  pthread_join(rt->wd_thread, NULL);
  rt->wd_running = 0;
}
