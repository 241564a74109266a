/*
 * dump.c: what every fiber of a runtime is doing, for people: the
 * sp_runtime_dump API and the list shutdown prints when its deadline passes.
 *
 * Model: fiber blocks are never freed before their runtime (fiber.c F4), so
 * the dump walks the block slabs under fpool_lock (which only guards the
 * slab list) and reads each block's id, state and wait note with relaxed
 * atomics. A fiber may change state while it is being printed: the dump is
 * a snapshot per fiber, not of the whole runtime, like Go's SIGQUIT dump.
 * Invariants:
 *   D1  Only reads; never blocks a worker (no worker lock is taken).
 * Locks: fpool_lock (leaf) while walking the slabs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SLAB 64 /* blocks per slab (fiber.c) */

static const char *state_name(uint32_t st) {
  switch (st) {
  case F_RUNNABLE: return "runnable";
  case F_RUNNING: return "running";
  case F_PARKING:
  case F_PARKED: return "parked";
  case F_WOKEN: return "waking";
  case F_DONE: return "finished, not joined";
  default: return "?";
  }
}

static int64_t coarse_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define BACKTRACES_MAX 1000 /* parked fibers whose stacks a dump walks */

/* One line for fiber f (id already read). */
static void dump_fiber(int fd, struct sp_fiber *f, uint64_t id) {
  uint32_t st = sp__fstate(f);
  dprintf(fd, "  fiber %llu \"%s\" %s", (unsigned long long)id, f->name, state_name(st));
  if (st == F_PARKED || st == F_PARKING) {
    const char *what = LOAD(&f->wait_what);
    const void *obj = LOAD(&f->wait_obj);
    int64_t since = LOAD(&f->wait_since);
    if (what && strcmp(what, "join") == 0)
      dprintf(fd, ": join fiber %llu", (unsigned long long)LOAD(&((struct sp_fiber *)obj)->id));
    else if (what && strcmp(what, "sleep") == 0)
      dprintf(fd, ": sleep until %+lld ms", (long long)(((intptr_t)obj - sp_now()) / 1000000));
    else if (what && strncmp(what, "io ", 3) == 0) /* io/: obj is the fd */
      dprintf(fd, ": %s fd %d", what + 3, (int)(intptr_t)obj);
    else if (what)
      dprintf(fd, ": %s %p", what, obj);
    if (what) dprintf(fd, ", for %lld ms", (long long)((coarse_now() - since) / 1000000));
  }
  if (st == F_RUNNING || st == F_PARKED || st == F_PARKING)
    dprintf(fd, " (worker %d)", LOAD(&f->last_worker));
  dprintf(fd, ", spawned at %s:%d\n", f->file ? f->file : "?", f->line);
}

/* Every fiber not finished (or all with DONE ones too). Returns the count.
 * Locks: fpool_lock. */
static int dump_fibers(int fd, struct sp_runtime *rt, bool with_done) {
  int n = 0, traced = 0;
  void *sym = NULL; /* backtrace_linux.c: opened at the first parked fiber */
  SP_MLOCK(&rt->fpool_lock, RANK_POOL);
  for (size_t s = 0; s < rt->nfslabs; s++) {
    struct sp_fiber *slab = rt->fslabs[s];
    for (int i = 0; i < SLAB; i++) {
      uint64_t id = LOAD(&slab[i].id);
      if (!id || (!with_done && sp__fstate(&slab[i]) == F_DONE)) continue;
      dump_fiber(fd, &slab[i], id);
      n++;
      if (sp__fstate(&slab[i]) != F_PARKED) continue;
      if (traced++ == BACKTRACES_MAX) {
        dprintf(fd, "    (no more backtraces: the first %d parked fibers have them)\n", BACKTRACES_MAX);
      } else if (traced <= BACKTRACES_MAX) {
        if (!sym) sym = sp__bt_open();
        sp__bt_fiber(sym, fd, &slab[i]);
      }
    }
  }
  SP_MUNLOCK(&rt->fpool_lock, RANK_POOL);
  sp__bt_close(sym);
  return n;
}

int sp_runtime_dump(sp_runtime_t *rt, int fd) {
  if (!rt || fd < 0) return -EINVAL;
  sp_stats_t st;
  sp_runtime_stats(rt, &st);
  dprintf(fd, "spindle runtime %p: %d workers, %llu fibers live, %llu spawned, %llu stacks "
          "(%llu in use)\n", (void *)rt, rt->nworkers, (unsigned long long)st.live,
          (unsigned long long)st.spawned, (unsigned long long)st.stacks,
          (unsigned long long)st.stacks_used);
  dprintf(fd, "  io: %s; %llu in flight\n", rt->io_why,
          (unsigned long long)LOAD(&rt->io_inflight));
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    struct sp_fiber *cur = LOAD(&w->cur);
    uint32_t ring = LOAD(&w->tail) - LOAD(&w->head);
    dprintf(fd, "  worker %d: %s", i,  LOAD(&w->sleep) ? "asleep" : cur ? "running" : "scheduling");
    if (cur) dprintf(fd, " fiber %llu", (unsigned long long)LOAD(&cur->id));
    dprintf(fd, ", queue %u, runnext %s, lifo %u, inbox %u, next timer %s; switches %llu, "
            "steals %llu, parks %llu, wake-ups %llu, io %llu/%llu\n", ring,
            LOAD(&w->runnext) ? "yes" : "no", LOAD(&w->nlifo), LOAD(&w->inbox_n),
            sp__timer_next(&w->timers) == INT64_MAX ? "none" : "armed",
            (unsigned long long)__atomic_load_n(&w->stats.switches, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->stats.steals, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->stats.parks, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->stats.wakeups, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->stats.io_completed, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->stats.io_submitted, __ATOMIC_RELAXED));
  }
  return dump_fibers(fd, rt, true);
}

void sp__report_live(struct sp_runtime *rt) {
  dprintf(2, "spindle: shutdown deadline passed with %llu fiber(s) still live:\n",
          (unsigned long long)LOAD(&rt->live));
  dump_fibers(2, rt, false);
}

void sp__report_unjoined(struct sp_runtime *rt) {
  SP_MLOCK(&rt->fpool_lock, RANK_POOL);
  for (size_t s = 0; s < rt->nfslabs; s++) {
    struct sp_fiber *slab = rt->fslabs[s];
    for (int i = 0; i < SLAB; i++) {
      struct sp_fiber *f = &slab[i];
      uint64_t id = LOAD(&f->id);
      if (id && sp__fstate(f) == F_DONE && LOAD(&f->joiner) == SP__JOIN_DONE)
        dprintf(2, "spindle: fiber %llu \"%s\" (spawned at %s:%d) finished but was never "
                   "joined or detached (its result and block leaked until now)\n",
                (unsigned long long)id, f->name, f->file ? f->file : "?", f->line);
    }
  }
  SP_MUNLOCK(&rt->fpool_lock, RANK_POOL);
}
