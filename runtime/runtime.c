/*
 * runtime.c: runtime objects: configuration, create, shutdown, destroy,
 * statistics; plus time, error text and panics.
 *
 * Model: everything a runtime needs hangs off its sp_runtime; there is no
 * process-global state (the only thread-local is the current worker, in
 * sched.c), so several runtimes may run side by side and be created and
 * destroyed repeatedly.
 * Invariants:
 *   R1  Once stopping is set, spawns are refused (-ECANCELED) except from
 *       fibers of the runtime itself (they may still need helpers to
 *       finish), so live can only reach 0 and stay there. A spawn from
 *       outside is counted in ext_wakers around its check of stopping
 *       (seq_cst on both sides), and shutdown waits for that count to
 *       drain after setting stopping: a spawn that raced it has either
 *       been refused or counted in live by then.
 *   R2  Workers are stopped only when live == 0; destroy frees pools only
 *       after the workers are joined.
 *   R3  Destroy frees rt only when no thread outside rt is inside
 *       sp__enqueue(rt) (a fiber of another runtime, or a foreign thread,
 *       waking one of rt's fibers may still be touching rt after that
 *       fiber ran to completion).
 * Locks: done_lock guards the wait for live == 0 (a foreign thread's
 *   condition variable; never taken on a worker except to signal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/poll.h"
#include "runtime/core.h"
#include "runtime/park.h"
#include "runtime/track.h"
#include "runtime/lockrank.h"

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)

int64_t sp_now(void) {
  if (__builtin_expect(__atomic_load_n(&sp__nvirtual, __ATOMIC_RELAXED) > 0, 0)) {
    sp__worker_t *w = sp__self();
    if (w && w->rt->cfg.virtual_time) return __atomic_load_n(&w->rt->vnow, __ATOMIC_ACQUIRE);
  }
  return sp__mono();
}

int64_t sp_deadline_in(int64_t ns) {
  if (ns < 0) return SP_FOREVER;
  int64_t now = sp_now();
  return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

const char *sp_strerror(int code) {
  switch (code) {
  case 0: return "success";
  case -ETIMEDOUT: return "deadline passed";
  case -EAGAIN: return "would block";
  case -ECANCELED: return "canceled (context cancelled, or runtime shutting down)";
  case -EPIPE: return "channel closed";
  case -ESRCH: return "no such fiber (handle already joined)";
  case -EDEADLK: return "would deadlock";
  case -EPERM: return "not allowed here (needs a fiber)";
  default: break;
  }
  if (code < 0) {
    static __thread char buf[64]; /* strerror_r into a per-thread buffer */
    return strerror_r(-code, buf, sizeof buf);
  }
  return "not an error code";
}

void sp__panic(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("spindle: panic: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

static bool debug_on(struct sp_runtime *rt) {
  if (rt) return rt->cfg.debug;
  const char *v = getenv("SPINDLE_DEBUG"); /* no runtime known: the env decides */
  return v && atoi(v) > 0;
}

void sp__debugf(struct sp_runtime *rt, const char *fmt, ...) {
  if (!rt) {
    sp__worker_t *w = sp__self();
    rt = w ? w->rt : NULL;
  }
  if (!debug_on(rt)) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sp__worker_t *w = sp__self();
  if (w && w->cur)
    fprintf(stderr, "spindle: fiber %llu \"%s\" (spawned at %s:%d): %s\n",
            (unsigned long long)w->cur->id, w->cur->name, w->cur->file, w->cur->line, msg);
  else
    fprintf(stderr, "spindle: thread (not a fiber): %s\n", msg);
}

/* sp_debug_runtimes_ (debugcount.c) counts debug-mode runtimes alive: primitives
 * are not tied to a runtime, so their misuse checks ask it first. */

uint64_t sp__debug_fiber(void) {
  sp__worker_t *w = sp__self();
  return w && w->cur && w->rt->cfg.debug ? w->cur->id : 0;
}

void sp_config_init(sp_config_t *cfg) {
  if (cfg) memset(cfg, 0, sizeof *cfg);
}

static int env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long n = strtol(v, &end, 10);
  return *end || n < 0 || n > 4096 ? -1 : (int)n;
}

/* Resolves defaults and environment overrides into rt->cfg. */
static int resolve_config(sp_config_t *c, const sp_config_t *in) {
  if (in) *c = *in;
  else sp_config_init(c);
  if (c->workers < 0 || c->workers > 4096) return -EINVAL;
  if (c->workers == 0) {
    int n = env_int("SPINDLE_WORKERS", 0);
    if (n < 0) return -EINVAL;
    c->workers = n ? n : sp__cpu_count();
  }
  if (c->stack_size == 0) c->stack_size = SP_STACK_DEFAULT;
  if (c->stack_size < SP_STACK_MIN || c->stack_size > SP_STACK_MAX) return -EINVAL;
  if (c->deadlock < SP_DEADLOCK_ABORT || c->deadlock > SP_DEADLOCK_OFF) return -EINVAL;
  if (c->io_threads < 0 || c->io_spin_ns < 0) return -EINVAL;
  if (c->io_threads == 0) c->io_threads = 64;
  const char *spin = getenv("SPINDLE_IO_SPIN_NS");
  if (spin && *spin) c->io_spin_ns = strtoll(spin, NULL, 10);
  if (env_int("SPINDLE_DEBUG", 0) > 0) c->debug = 1;
  if (env_int("SPINDLE_MIGRATE", 0) > 0) c->migrate = 1;
  if (env_int("SPINDLE_SIGQUIT", 0) > 0) c->dump_on_sigquit = 1;
  if (env_int("SPINDLE_VIRTUAL_TIME", 0) > 0) c->virtual_time = 1;
  const char *seed = getenv("SPINDLE_SEED");
  if (seed && *seed) c->seed = strtoull(seed, NULL, 0);
  return 0;
}

static void free_runtime(struct sp_runtime *rt) {
  sp__io_runtime_fini(rt); /* the workers are stopped */
  sp__trace_free(rt);
  while (LOAD(&rt->ext_wakers, ACQUIRE)) sched_yield(); /* R3: a few instructions */
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    sp__stack_cache_drain(&rt->stacks, &w->stacks);
    sp__timer_heap_destroy(&w->timers);
    pthread_mutex_destroy(&w->inbox_lock);
  }
  sp__stack_pool_destroy(&rt->stacks);
  sp__fiber_pool_destroy(rt);
  pthread_mutex_destroy(&rt->inject_lock);
  pthread_mutex_destroy(&rt->idle_lock);
  pthread_mutex_destroy(&rt->fpool_lock);
  pthread_mutex_destroy(&rt->done_lock);
  pthread_mutex_destroy(&rt->dl_lock);
  pthread_mutex_destroy(&rt->census_lock);
  pthread_cond_destroy(&rt->done_cond);
  free(rt->idle);
  free(rt->workers);
  free(rt);
}

int sp_runtime_create(sp_runtime_t **out, const sp_config_t *cfg) {
  if (!out) return -EINVAL;
  *out = NULL;
  struct sp_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) return -ENOMEM;
  rt->mon_fd = -1;
  int rc = resolve_config(&rt->cfg, cfg);
  if (rc < 0) {
    free(rt);
    return rc;
  }
  rt->nworkers = rt->cfg.workers;
  rt->workers = aligned_alloc(64, sizeof(sp__worker_t) * (size_t)rt->nworkers);
  rt->idle = calloc((size_t)rt->nworkers, sizeof *rt->idle);
  if (!rt->workers || !rt->idle) {
    free(rt->workers);
    free(rt->idle);
    free(rt);
    return -ENOMEM;
  }
  memset(rt->workers, 0, sizeof(sp__worker_t) * (size_t)rt->nworkers);
  SP_MUTEX_INIT_ADAPTIVE(&rt->inject_lock);
  SP_MUTEX_INIT_ADAPTIVE(&rt->idle_lock);
  SP_MUTEX_INIT_ADAPTIVE(&rt->fpool_lock);
  pthread_mutex_init(&rt->done_lock, NULL);
  pthread_mutex_init(&rt->dl_lock, NULL);
  pthread_mutex_init(&rt->census_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&rt->done_cond, &ca);
  pthread_condattr_destroy(&ca);
  sp__stack_pool_init(&rt->stacks);
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    w->rt = rt;
    w->index = i;
    SP_MUTEX_INIT_ADAPTIVE(&w->inbox_lock);
    sp__timer_heap_init(&w->timers);
  }
  rt->vnow = sp__mono();
  sp__io_runtime_init(rt);
  sp__crash_install();
  sp__deadlock_register(rt);
  rc = sp__workers_start(rt);
  if (rc < 0) {
    sp__deadlock_unregister(rt);
    sp__crash_uninstall();
    free_runtime(rt);
    return rc;
  }
  if (rt->cfg.dump_on_sigquit && sp__sigquit_enable() < 0) rt->cfg.dump_on_sigquit = 0;
  if (rt->cfg.debug) __atomic_fetch_add(&sp_debug_runtimes_, 1, __ATOMIC_RELAXED);
  if (rt->cfg.virtual_time) __atomic_fetch_add(&sp__nvirtual, 1, __ATOMIC_RELAXED);
  if (sp__watchdog_start(rt) < 0) /* debug only; a report less, not an error */
    fprintf(stderr, "spindle: debug mode: could not start the slow-fiber watchdog\n");
  *out = rt;
  return 0;
}

static bool on_own_worker(struct sp_runtime *rt) {
  sp__worker_t *w = sp__self();
  return w && w->rt == rt;
}

int sp_runtime_shutdown(sp_runtime_t *rt, int64_t deadline) {
  if (!rt) return -EINVAL;
  if (on_own_worker(rt)) {
    sp__debugf(rt, "sp_runtime_shutdown called from a fiber of that runtime");
    return -EDEADLK;
  }
  if (rt->stopped) return 0;
  STORE(&rt->stopping, 1, SEQ_CST); /* R1 */
  /* a foreign spawn that missed the store is counted in ext_wakers (fiber.c):
   * let it finish, so live counts its fiber before we wait for live == 0 */
  while (LOAD(&rt->ext_wakers, SEQ_CST)) sched_yield();
  bool forever = deadline == SP_FOREVER;
  if (forever) { /* deadlock.c: a forever-wait that a deadlock would strand */
    SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
    rt->shutdown_waiting = 1;
    SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
    sp__deadlock_check(rt);
  }
  SP_MLOCK(&rt->done_lock, RANK_DONE);
  int rc = 0;
  while (LOAD(&rt->live, ACQUIRE) != 0 && rc == 0) {
    if (forever) {
      if (LOAD(&rt->deadlocked, ACQUIRE))
        rc = -EDEADLK;
      else
        pthread_cond_wait(&rt->done_cond, &rt->done_lock);
    } else {
      struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
      if (deadline <= 0 || pthread_cond_timedwait(&rt->done_cond, &rt->done_lock, &ts) == ETIMEDOUT)
        rc = LOAD(&rt->live, ACQUIRE) ? -ETIMEDOUT : 0;
    }
  }
  SP_MUNLOCK(&rt->done_lock, RANK_DONE);
  if (forever) {
    SP_MLOCK(&rt->dl_lock, RANK_DEADLOCK);
    rt->shutdown_waiting = 0;
    SP_MUNLOCK(&rt->dl_lock, RANK_DEADLOCK);
  }
  if (rc == -EDEADLK) {
    __atomic_store_n(&rt->deadlocked, 0, __ATOMIC_RELEASE); /* may be retried */
    return rc;
  }
  if (rc < 0) {
    sp__report_live(rt);
    return rc;
  }
  sp__watchdog_stop(rt);
  sp__workers_stop(rt); /* R2 */
  rt->stopped = 1;
  return 0;
}

int sp_runtime_destroy(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  if (on_own_worker(rt)) {
    sp__debugf(rt, "sp_runtime_destroy called from a fiber of that runtime");
    return -EDEADLK;
  }
  if (!rt->stopped) {
    if (LOAD(&rt->stopping, ACQUIRE) && LOAD(&rt->live, ACQUIRE)) return -EBUSY;
    int rc = sp_runtime_shutdown(rt, SP_FOREVER);
    if (rc < 0) return rc;
  }
  sp_monitor_stop(rt);
  if (rt->cfg.debug) {
    sp__report_unjoined(rt);
    sp__report_tracked(rt);
    sp__census_print(rt);
  }
  if (rt->cfg.dump_on_sigquit) sp__sigquit_disable();
  if (rt->cfg.debug) __atomic_fetch_sub(&sp_debug_runtimes_, 1, __ATOMIC_RELAXED);
  if (rt->cfg.virtual_time) __atomic_fetch_sub(&sp__nvirtual, 1, __ATOMIC_RELAXED);
  sp__deadlock_unregister(rt);
  free_runtime(rt);
  sp__crash_uninstall();
  return 0;
}

sp_runtime_t *sp_runtime_current(void) {
  sp__worker_t *w = sp__self();
  return w ? w->rt : NULL;
}

int sp_runtime_workers(const sp_runtime_t *rt) { return rt ? rt->nworkers : 0; }

int sp_runtime_stats(const sp_runtime_t *rt, sp_stats_t *out) {
  if (!rt || !out) return -EINVAL;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < rt->nworkers; i++) {
    const sp__stats_w_t *s = &rt->workers[i].stats;
    out->spawned += LOAD(&s->spawned, RELAXED);
    out->switches += LOAD(&s->switches, RELAXED);
    out->steals += LOAD(&s->steals, RELAXED);
    out->parks += LOAD(&s->parks, RELAXED);
    out->wakeups += LOAD(&s->wakeups, RELAXED);
    out->io_submitted += LOAD(&s->io_submitted, RELAXED);
    out->io_completed += LOAD(&s->io_completed, RELAXED);
  }
  out->spawned += LOAD(&rt->spawned_foreign, RELAXED);
  out->live = LOAD(&rt->live, RELAXED);
  out->stacks = LOAD(&rt->stacks.mapped, RELAXED);
  int64_t used = LOAD(&rt->stacks.in_use, RELAXED);
  for (int i = 0; i < rt->nworkers; i++) used += LOAD(&rt->workers[i].stacks.used, RELAXED);
  out->stacks_used = used < 0 ? 0 : (uint64_t)used; /* a snapshot while stacks move */
  return 0;
}
