/*
 * sched.c: the M:N scheduler: worker loops, switching, idling, stealing.
 *
 * Model: each worker thread runs a scheduler loop on its own stack (the
 * "sched" context). A fiber that yields, parks or finishes switches
 * directly to the next fiber of its worker's queue when there is one (one
 * jump), else to the sched context, which checks timers, the inbox, the
 * injection queue and its io_uring completions, steals half of a random
 * victim's run queue, and finally sleeps in its ring (io/poll.h) or on a
 * futex. The context that is resumed completes the switch-out
 * of the one that left (S2), so no fiber is ever visible to other workers
 * while it still runs on its stack.
 *
 * Invariants:
 *   S1  w->cur is the fiber this worker executes, NULL in the sched context.
 *   S2  After every jump, the resumed side calls after_switch(), which
 *       stores the switcher's registers and performs w->prev_action on
 *       w->prev (requeue, PARKING->PARKED, or finish). Until then the
 *       switcher is owned by this worker alone.
 *   S3  Idle protocol (no lost wake-ups): a sleeper registers in the idle
 *       list (nidle++, seq_cst) and then re-checks every queue before its
 *       futex wait; a producer publishes work, issues a seq_cst fence (or
 *       published it by a seq_cst exchange: runnext), and wakes a sleeper
 *       if nidle > 0 (seq_cst load) and no worker is spinning. One of the
 *       two always sees the other. A spinner that finds work while being the
 *       last spinner wakes another, so new work keeps getting looked at.
 *   S4  A woken worker was removed from the idle list and counted as
 *       spinning by its waker; a worker that wakes by timeout removes itself.
 *   S5  Per-worker state is reached through sp__self() (not inlinable)
 *       after every switch point, never through a pointer kept across it:
 *       a fiber may resume on another thread.
 *   S6  Virtual time (cfg.virtual_time): timers hold virtual deadlines; no
 *       worker sleeps until one. The clock moves only in virtual_advance,
 *       by the last worker to go idle, so it never passes while a fiber
 *       could run (with one worker: never; with more, a fiber readied in
 *       the same instant may see the jump).
 *   S7  Seeded mode (cfg.seed): a fiber queued by its own worker goes to a
 *       place (runnext, lifo, ring tail) drawn from the worker's generator,
 *       seeded from cfg.seed alone; steals and spin timing stay
 *       nondeterministic, so only one worker replays exactly. w->tick
 *       counts fibers taken, not looks for work (a worker that slept
 *       before its first fiber took one look more).
 *   S8  A victim's runnext (and a lone spawn in its lifo) is stolen
 *       only in a spin's last round, so a fiber just woken keeps its warm
 *       worker if that worker gets to it soon; every spin ends with such
 *       a round, however long its yields took, so a fiber woken by one
 *       that then computes without yielding still gets run elsewhere.
 *   S9  A fiber spawned on a fresh stack (no fiber has run on it: its
 *       pages are untouched) gets no context at spawn; its ctx.fctx stays
 *       NULL until first_run() makes it, just before the switch to it, on
 *       that stack or on a used one near the top of w's stack cache,
 *       traded for it (arch/stack.c). So fibers queued long before they
 *       run touch few stacks. A queued fiber's fctx is NULL only then:
 *       after_switch stores it before a switched-out fiber can be queued.
 *       Other fibers get their context at spawn, where touching the
 *       stack's top costs nothing.
 * Locks: idle_lock (rank IDLE) may be taken under a timer heap lock (wake
 *   from a timer callback); nothing is taken under idle_lock.
 * Rejected: always switching through the sched context (two jumps per
 *   handoff), a single global run queue (contention), eventcount-style
 *   sleeping on one futex (thundering herd on every wake).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "io/poll.h"
#include "runtime/core.h"
#include "runtime/lockrank.h"
#include "runtime/park.h"
#include "runtime/rand.h"

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)
/* An idle worker looks for work for SPIN_NS before it sleeps, in rounds of
 * one steal attempt per worker and SPIN_PAUSES pauses. The bound is a time,
 * not a round count, since a pause takes ~20 ns on some x86 cores and
 * ~140 cycles on others. 20 us: 50 us (the old 64 rounds on these cores)
 * cost 4-7% more server CPU per request on 8 workers of a 16-core machine
 * and gained nothing on 2 (bench/RESULTS.md, 2026-11-26 15:20 UTC).
 * Each round ends with sched_yield: a no-op on a CPU with nothing else to
 * run, and where the CPUs are oversubscribed (wrk and two workers on two
 * CPUs) it lets the thread that makes the next piece of work run: HTTP on
 * two workers went from 1.20x to 1.63-1.74x Go, echo50's server CPU per
 * request fell ~7% (bench/RESULTS.md, 2026-11-26 17:45 UTC). */
#define SPIN_NS 20000
#define SPIN_PAUSES 32
#define DEADLOCK_CONFIRM_NS 100000000 /* deadlock.c's confirmation interval */

static __thread sp__worker_t *tls_worker;

sp__worker_t *sp__self(void) {
  /* noinline plus an opaque asm: neither gcc nor clang may treat the call
   * as pure or propagate what it returns into callers (clang's IPSCCP
   * would otherwise reuse a TLS address computed before a switch) */
  sp__worker_t *w = tls_worker;
  __asm__ volatile("" : "+r"(w)::"memory");
  return w;
}

static uint32_t fastrand(sp__worker_t *w) {
  uint64_t x = w->rng; /* xorshift64 */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  w->rng = x;
  return (uint32_t)(x >> 32);
}

/* splitmix64's finalizer: spreads a low-entropy seed over all 64 bits
 * (xorshift needs that, or its first outputs are visibly skewed). */
static uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z ? z : 1;
}

uint32_t sp__rand32(void) {
  sp__worker_t *w = sp__self();
  if (w) return fastrand(w);
  static __thread uint64_t state; /* foreign threads: seeded per thread */
  if (!state) state = mix((uint64_t)sp__mono() ^ ((uint64_t)(uintptr_t)&state << 16));
  uint64_t x = state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  state = x;
  return (uint32_t)(x >> 32);
}

bool sp__spin_ok(void) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return false;
  struct sp_runtime *rt = w->rt;
  if (rt->nworkers < 2 || !sp__runq_empty(w)) return false;
  return LOAD(&rt->nidle, RELAXED) + LOAD(&rt->nspinning, RELAXED) < rt->nworkers - 1;
}

/* ---- waking idle workers (S3, S4) ------------------------------------- */

/* Takes v out of the idle list. Locks: caller holds idle_lock. */
static void idle_remove(struct sp_runtime *rt, sp__worker_t *v) {
  for (int i = 0; i < rt->nidle_list; i++)
    if (rt->idle[i] == v->index) {
      rt->idle[i] = rt->idle[--rt->nidle_list];
      break;
    }
  v->in_idle = false;
  __atomic_fetch_sub(&rt->nidle, 1, __ATOMIC_SEQ_CST);
}

/* Wakes v, which the caller just took out of the idle list; v counts as
 * spinning from now on (S4). Locks: caller holds idle_lock; released here. */
static void wake_removed(struct sp_runtime *rt, sp__worker_t *v) {
  __atomic_fetch_add(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
  SP_MUNLOCK(&rt->idle_lock, RANK_IDLE);
  STORE(&v->sleep, 0, RELEASE);
  sp__io_wake(v); /* its ring's eventfd, or the futex */
}

/* Wakes worker v if it sleeps in the idle list. Locks: idle_lock. */
static bool wake_worker(struct sp_runtime *rt, sp__worker_t *v) {
  SP_MLOCK(&rt->idle_lock, RANK_IDLE);
  if (!v->in_idle) {
    SP_MUNLOCK(&rt->idle_lock, RANK_IDLE);
    return false;
  }
  idle_remove(rt, v);
  wake_removed(rt, v);
  return true;
}

/* Wakes one sleeping worker, if any. Locks: idle_lock. */
static void wake_one(struct sp_runtime *rt) {
  SP_MLOCK(&rt->idle_lock, RANK_IDLE);
  if (rt->nidle_list == 0) {
    SP_MUNLOCK(&rt->idle_lock, RANK_IDLE);
    return;
  }
  sp__worker_t *v = &rt->workers[rt->idle[rt->nidle_list - 1]];
  idle_remove(rt, v);
  wake_removed(rt, v);
}

void sp__wake_idle(struct sp_runtime *rt) { wake_one(rt); }

/* Producer side of S3: call after publishing new work. sc_published: the
 * work was published by a seq_cst RMW (runnext's exchange), which already
 * orders it before the load of nidle, so no fence is needed. */
static void wake_if_needed(struct sp_runtime *rt, bool sc_published) {
  if (rt->nworkers == 1) { /* the one worker is us: nobody to wake */
    sp__worker_t *w = sp__self();
    if (w && w->rt == rt) return;
  }
#ifdef SP_HAVE_TSAN /* TSan does not model fences: use an RMW (same order) */
  (void)sc_published;
  if (__atomic_fetch_add(&rt->nidle, 0, __ATOMIC_SEQ_CST) > 0
#else
  if (!sc_published) __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (LOAD(&rt->nidle, SEQ_CST) > 0
#endif
      && LOAD(&rt->nspinning, RELAXED) == 0) wake_one(rt);
}

static void stop_spinning(sp__worker_t *w) {
  if (!w->spinning) return;
  w->spinning = false;
  struct sp_runtime *rt = w->rt;
  if (__atomic_sub_fetch(&rt->nspinning, 1, __ATOMIC_SEQ_CST) == 0 && LOAD(&rt->nidle, RELAXED) > 0)
    wake_one(rt); /* S3: keep someone looking for the rest */
}

/* ---- queueing ---------------------------------------------------------- */

/* Queues f on the current worker, or hands it to the worker it must run on.
 * Runs on: any thread. */
static void enqueue(struct sp_runtime *rt, sp__worker_t *w, struct sp_fiber *f,
                    enum sp__where where) {
  sp__worker_t *target = NULL;
  if (f->pinned >= 0) {
    target = &rt->workers[f->pinned];
  } else if (rt->cfg.migrate && rt->nworkers > 1) {
    int i = f->last_worker < 0 ? 0 : (f->last_worker + 1) % rt->nworkers;
    target = &rt->workers[i];
  }
  if (target) {
    sp__inbox_push(target, f);
    if (target != w) wake_worker(rt, target);
    return;
  }
  bool sc_published = false;
  if (w && w->rt == rt) {
    SP__TRACE(w, where == Q_SPAWN ? TR_SPAWN : TR_WAKE, f->id, NULL);
    if (rt->cfg.seed) where = (enum sp__where)(fastrand(w) % 3); /* S7 */
    if (where == Q_NEXT) {
      struct sp_fiber *old;
      if (rt->nworkers == 1) { /* runq.c Q4: no thief can take it meanwhile */
        old = LOAD(&w->runnext, RELAXED);
        STORE(&w->runnext, f, RELEASE);
      } else {
        old = __atomic_exchange_n(&w->runnext, f, __ATOMIC_SEQ_CST);
        sc_published = true; /* S3's fence: f is visible in runnext */
      }
      if (old) sp__runq_push(w, old);
    } else if (where == Q_SPAWN) {
      sp__lifo_push(w, f);
    } else {
      sp__runq_push(w, f);
    }
  } else {
    sp__inject_push(rt, f, f, 1);
  }
  wake_if_needed(rt, sc_published);
}

void sp__enqueue(struct sp_runtime *rt, struct sp_fiber *f, enum sp__where where) {
  sp__worker_t *w = sp__self();
  if (w && w->rt == rt) {
    enqueue(rt, w, f, where);
    return;
  }
  /* A foreign thread or another runtime's worker: once f is queued it may
   * finish and rt be destroyed while we still touch rt, so destroy waits
   * for ext_wakers to drain (R3). */
  __atomic_fetch_add(&rt->ext_wakers, 1, __ATOMIC_SEQ_CST);
  enqueue(rt, w, f, where);
  __atomic_fetch_sub(&rt->ext_wakers, 1, __ATOMIC_RELEASE);
}


/* Puts a yielding fiber back (not new work: no wake-up needed unless it
 * must go elsewhere). Runs on: w. */
static void requeue(sp__worker_t *w, struct sp_fiber *f) {
  sp__fset(f, F_RUNNABLE);
  if (f->pinned >= 0 || (w->rt->cfg.migrate && w->rt->nworkers > 1) || w->rt->cfg.seed)
    sp__enqueue(w->rt, f, Q_TAIL);
  else
    sp__runq_push(w, f);
}

/* ---- switching (S1, S2) ------------------------------------------------ */

/* Completes the switch-out of w->prev (S2). Runs on: the resumed context. */
static void after_switch(transfer_t t) {
  sp__worker_t *w = sp__self(); /* S5 */
  struct sp_fiber *prev = w->prev;
  if (!prev) {
    w->sched.fctx = t.fctx;
    return;
  }
  w->prev = NULL;
  switch (w->prev_action) {
  case ACT_YIELD:
    prev->ctx.fctx = t.fctx;
    requeue(w, prev);
    break;
  case ACT_PARK: {
    prev->ctx.fctx = t.fctx; /* before PARKED: a waker may resume it then */
    sp__lock_t *lk = w->prev_unlock;
    if (lk) { /* park.c P6: every waker needs lk, so nobody raced us */
      w->prev_unlock = NULL;
      sp__fset(prev, F_PARKED);
      sp__unlock(lk);
      break;
    }
    uint64_t pk = LOAD(&prev->pk, ACQUIRE);
    for (;;) { /* PARKING -> PARKED; a claim may move the token meanwhile */
      uint32_t s = (uint32_t)pk;
      if (s == F_WOKEN) {
        sp__fset(prev, F_RUNNABLE);
        sp__enqueue(w->rt, prev, Q_NEXT);
        break;
      }
      if (s != F_PARKING)
        sp__panic("sched: fiber %llu parked in state %u", (unsigned long long)prev->id, s);
      if (__atomic_compare_exchange_n(&prev->pk, &pk, sp__pk(F_PARKED, (uint32_t)(pk >> 32)),
                                      false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        break;
    }
    break;
  }
  case ACT_EXIT:
    sp__fiber_finish(w, prev);
    break;
  case ACT_NONE:
    sp__panic("sched: switch with no action");
  }
}

static void fiber_entry(transfer_t t);

void sp__fiber_prepare(struct sp_fiber *f) {
  sp__census_paint(f); /* debug mode only; before the context (census.c N1) */
  sp__ctx_make(&f->ctx, f->stack.lo, f->stack.size, fiber_entry);
}

/* Makes the context of a fiber spawned on a fresh stack (S9). Runs on: w.
 * Out of line: take() is on every switch's path. */
__attribute__((noinline)) static void first_run(sp__worker_t *w, struct sp_fiber *f) {
  sp__stack_swap_cached(&w->stacks, &f->stack);
  f->stack.fresh = false; /* arch/stack.c K4: it is run on from now */
  sp__fiber_prepare(f);
}

/* Marks f as running on w. f's context exists (S9). */
static void take(sp__worker_t *w, struct sp_fiber *f) {
  STORE(&w->cur, f, RELEASE); /* thieves, dump and watchdog read it (acquire) */
  w->io_nowait_budget = SP__IO_NOWAIT_BUDGET; /* io/ops.c O3: a fresh turn */
  sp__fset(f, F_RUNNING);
  STORE(&f->last_worker, w->index, RELAXED); /* sp_runtime_dump reads it */
  sp__stat_inc(&w->stats.switches);
  if (SP__TRACING(w)) sp__trace_switch(w, f); /* trace.c: w->prev leaving, then f */
}

/* A fiber to switch to directly, or NULL to go through the sched context
 * (every SP__GLOBAL_EVERY ticks, so timers, inbox and injection queue are
 * looked at). Runs on: w, in a fiber. */
static struct sp_fiber *next_local(sp__worker_t *w) {
  if (++w->tick % SP__GLOBAL_EVERY == 0) return NULL;
  struct sp_fiber *f = LOAD(&w->runnext, RELAXED) ? sp__runq_pop(w) : NULL;
  if (!f) f = sp__lifo_pop(w);
  if (!f) f = sp__runq_pop(w);
  return f;
}

void sp__switch_out(enum sp__action action) { sp__switch_from(sp__self(), action); }

void sp__switch_out_unlock(sp__lock_t *lk) {
  sp__worker_t *w = sp__self();
  w->prev_unlock = lk;
  sp__switch_from(w, ACT_PARK);
}

void sp__switch_from(sp__worker_t *w, enum sp__action action) {
  struct sp_fiber *f = w->cur;
  if (sp__rank_held()) /* lock.h L1, checked in debug builds */
    sp__panic("sched: fiber %llu \"%s\" switches out holding %d runtime lock(s)",
              (unsigned long long)f->id, f->name, sp__rank_held());
  if (action == ACT_PARK) {
    if (!w->prev_unlock && sp__fstate(f) == F_WOKEN) { /* woken before we left */
      sp__fset(f, F_RUNNING); /* the waker is done with us (park.c P5) */
      return;
    }
    sp__stat_inc(&w->stats.parks);
  }
  struct sp_fiber *next = next_local(w);
  if (!next && action == ACT_YIELD && w->tick % SP__GLOBAL_EVERY != 0 && !w->rt->cfg.migrate &&
      f->pinned < 0)
    return; /* nothing else to run here: yielding is a no-op */
  /* S9 on f's stack, while w->cur still names f: a fault there (f's stack
   * overflowing) is reported as f's, not as the worker's */
  if (next && __builtin_expect(!next->ctx.fctx, 0)) first_run(w, next);
  w->prev = f;
  w->prev_action = action;
  STORE(&w->cur, NULL, RELAXED);
  sp__ctx_t *to = &w->sched;
  if (next) {
    take(w, next); /* traces this switch-out too */
    to = &next->ctx;
  } else if (SP__TRACING(w)) {
    sp__trace_switch(w, NULL);
  }
  if (action == ACT_EXIT) sp__ctx_jump_final(to, NULL);
  transfer_t t = sp__ctx_jump(to, NULL);
  after_switch(t);
}


static void fiber_entry(transfer_t t) {
  sp__ctx_entered();
  after_switch(t);
  struct sp_fiber *f = sp__self()->cur;
  sp__fiber_run_body(f);
  sp__switch_out(ACT_EXIT);
  __builtin_unreachable();
}

/* ---- the worker loop --------------------------------------------------- */

static bool work_visible(struct sp_runtime *rt, sp__worker_t *w, int64_t now) {
  if (LOAD(&rt->inject_n, ACQUIRE) || LOAD(&w->inbox_n, ACQUIRE)) return true;
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *v = &rt->workers[i];
    if (!sp__runq_empty(v) && (v == w || rt->nworkers > 1)) return true;
    if (sp__timer_next(&v->timers) <= now) return true;
  }
  return false;
}

static int64_t earliest_timer(struct sp_runtime *rt) {
  int64_t m = INT64_MAX;
  for (int i = 0; i < rt->nworkers; i++) {
    int64_t n = sp__timer_next(&rt->workers[i].timers);
    if (n < m) m = n;
  }
  return m;
}

/* S6: the last worker to go idle, with nothing runnable and no I/O in
 * flight, moves the virtual clock to the earliest timer. Returns whether
 * it did (the caller then runs the timers). Runs on: w, in the idle list. */
static bool virtual_advance(struct sp_runtime *rt) {
  if (LOAD(&rt->nidle, SEQ_CST) != rt->nworkers || LOAD(&rt->io_inflight, ACQUIRE) ||
      LOAD(&rt->inject_n, ACQUIRE))
    return false;
  /* read only now: a worker that went idle after our own look may have
   * armed an earlier timer first (a stale value would skip past it) */
  int64_t next = earliest_timer(rt);
  if (next == INT64_MAX) return false;
  int64_t cur = LOAD(&rt->vnow, ACQUIRE);
  while (cur < next &&
         !__atomic_compare_exchange_n(&rt->vnow, &cur, next, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
  return true;
}

/* Sleeps until woken or the earliest timer (S3, S4). Returns true when it
 * did not sleep because work was visible after registering: the caller must
 * then look for it even if enough others are spinning (else a CPU-bound
 * fiber's queued work could sit while this worker loops). Runs on: w, sched. */
static bool idle(sp__worker_t *w) {
  struct sp_runtime *rt = w->rt;
  /* io/uring.c U3: how it will sleep, fixed before wakers can see it */
  STORE(&w->ring_sleep, w->uring && sp__io_pending(w), RELAXED);
  SP_MLOCK(&rt->idle_lock, RANK_IDLE);
  rt->idle[rt->nidle_list++] = w->index;
  w->in_idle = true;
  STORE(&w->sleep, 1, RELAXED);
  __atomic_fetch_add(&rt->nidle, 1, __ATOMIC_SEQ_CST);
  SP_MUNLOCK(&rt->idle_lock, RANK_IDLE);
  if (w->spinning) {
    w->spinning = false;
    __atomic_fetch_sub(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
  }
  int64_t deadline = earliest_timer(rt);
  bool visible = LOAD(&rt->stop, ACQUIRE) ||
                 work_visible(rt, w, deadline == INT64_MAX ? 0 : sp_now());
  if (rt->cfg.virtual_time) { /* S6: jump the clock, never sleep on it */
    if (!visible && deadline != INT64_MAX) visible = virtual_advance(rt);
    deadline = INT64_MAX;
  }
  if (!visible && deadline == INT64_MAX && sp__deadlock_suspect(rt)) {
    /* deadlock.c: confirm over an interval with no activity at all */
    uint64_t seen = sp__deadlock_activity(rt);
    if (sp__io_idle_wait(w, sp__mono() + DEADLOCK_CONFIRM_NS) == -ETIMEDOUT &&
        sp__deadlock_suspect(rt) && sp__deadlock_activity(rt) == seen)
      sp__deadlock_report(rt);
  } else if (!visible) {
    sp__io_idle_wait(w, deadline == INT64_MAX ? SP_FOREVER : deadline);
  }
  SP_MLOCK(&rt->idle_lock, RANK_IDLE);
  if (w->in_idle) { /* timeout, stop or found work ourselves: leave the list */
    idle_remove(rt, w);
  } else {
    w->spinning = true; /* S4: the waker counted us as spinning */
    sp__stat_inc(&w->stats.wakeups);
  }
  SP_MUNLOCK(&rt->idle_lock, RANK_IDLE);
  sp__io_reap(w); /* completions and wake-ups the sleep brought in */
  return visible;
}

/* Tries to steal from every other worker once, in random order, running
 * their due timers on the way. Runs on: w, sched. */
static struct sp_fiber *steal_round(sp__worker_t *w, int64_t now, bool take_next) {
  struct sp_runtime *rt = w->rt;
  int n = rt->nworkers;
  int start = (int)(fastrand(w) % (uint32_t)n);
  for (int k = 0; k < n; k++) {
    sp__worker_t *v = &rt->workers[(start + k) % n];
    if (v == w) continue;
    if (now) sp__timer_run(&v->timers, now);
    struct sp_fiber *f = sp__runq_pop(w); /* a timer may have readied one */
    if (!f) f = sp__runq_steal(w, v, take_next);
    if (!f) f = sp__lifo_steal(w, v, take_next);
    if (f) {
      sp__stat_inc(&w->stats.steals);
      SP__TRACE(w, TR_STEAL, f->id, NULL);
      return f;
    }
  }
  return NULL;
}

/* Opt-in (cfg.io_spin_ns): polls w's ring for a while before sleeping, so
 * a reply that arrives soon skips a sleep and a wake-up. Runs on: w, sched. */
static struct sp_fiber *io_spin(sp__worker_t *w) {
  struct sp_runtime *rt = w->rt;
  int64_t end = sp__mono() + rt->cfg.io_spin_ns;
  struct sp_fiber *f = NULL;
  while (!f && w->io_pending && !LOAD(&rt->stop, RELAXED)) {
    sp__io_poll(w);
    f = sp__runq_pop(w);
    if (!f) f = sp__inbox_pop(w);
    if (!f && LOAD(&rt->inject_n, RELAXED)) f = sp__inject_pop(rt, w);
    if (!f && sp__mono() >= end) break;
  }
  return f;
}

/* The next fiber for w to run; NULL when the runtime stops. */
static struct sp_fiber *find_runnable(sp__worker_t *w) {
  struct sp_runtime *rt = w->rt;
  bool must_look = false; /* idle() saw work: steal even past the spinner cap */
  for (;;) {
    if (LOAD(&rt->stop, ACQUIRE)) return NULL;
    int64_t now = earliest_timer(rt) != INT64_MAX ? sp_now() : 0;
    if (now) sp__timer_run(&w->timers, now);
    /* a busy worker (fibers queued: the every-61-ticks visit) submits the
     * round's SQEs and reaps here; one about to go idle leaves that to the
     * spin rounds and to the sleep, which submits and waits in one call */
    if (sp__io_pending(w) && !sp__runq_empty(w)) sp__io_poll(w);
    struct sp_fiber *f = NULL;
    if (w->tick % SP__GLOBAL_EVERY == 0) f = sp__inject_pop(rt, w);
    if (!f) f = sp__inbox_pop(w);
    if (!f) f = sp__runq_pop(w); /* ring before lifo here: nothing starves */
    if (!f) f = sp__lifo_pop(w);
    if (!f) f = sp__inject_pop(rt, w);
    if (f) w->tick++; /* S7: not per look, or a sleep would shift the count */
    if (!f && rt->nworkers > 1) {
      int busy = rt->nworkers - LOAD(&rt->nidle, RELAXED);
      if (w->spinning || must_look || 2 * LOAD(&rt->nspinning, RELAXED) < busy) {
        if (!w->spinning) {
          w->spinning = true;
          __atomic_fetch_add(&rt->nspinning, 1, __ATOMIC_SEQ_CST);
        }
        /* spin briefly (~tens of us) before sleeping: work often arrives
         * right away, and a futex sleep/wake pair costs far more */
        int64_t t0 = sp__mono(), elapsed = 0;
        for (int round = 0; !LOAD(&rt->stop, RELAXED); round++) {
          /* S8: a round whose yield (or a preemption) took us past the
           * end is followed by the last one, not by the end of the spin */
          bool last = elapsed >= SPIN_NS - SPIN_NS / 16;
          f = steal_round(w, now, last);
          if (!f) f = sp__inbox_pop(w);
          if (!f) f = sp__inject_pop(rt, w);
          /* its own ring: the SQEs its fibers queued go out at once (a
           * reply is not held back by the spin), and completions are looked
           * at every round where that costs one load (TASKRUN_FLAG), else
           * every eighth (a system call) */
          if (!f && sp__io_pending(w) &&
              (sp__io_poll_cheap(w) || round % 8 == 7 || (round == 0 && w->io_unsubmitted))) {
            sp__io_poll(w);
            f = sp__runq_pop(w);
          }
          if (f || last) break;
          for (int k = 0; k < SPIN_PAUSES; k++) __builtin_ia32_pause();
          /* and gives the CPU to any other thread waiting for it: where
           * the cores are shared (a client, other workers) the spin must
           * not hold back the thread that makes the next piece of work */
          sched_yield();
          elapsed = sp__mono() - t0;
        }
      }
    }
    if (!f && rt->cfg.io_spin_ns > 0 && w->io_pending) f = io_spin(w);
    if (f) {
      stop_spinning(w);
      return f;
    }
    must_look = idle(w);
  }
}

static void *worker_main(void *arg) {
  sp__worker_t *w = arg;
  tls_worker = w;
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE); /* a write to a closed socket fails with -EPIPE */
  pthread_sigmask(SIG_BLOCK, &pipe, NULL);
  void *alt = sp__altstack_enter(); /* fault reports run there (crash_linux.c) */
  sp__ctx_init_thread(&w->sched);
  sp__io_worker_init(w); /* its ring: created on this thread (SINGLE_ISSUER) */
  struct sp_fiber *f;
  while ((f = find_runnable(w)) != NULL) {
    if (!f->ctx.fctx) first_run(w, f); /* S9 */
    take(w, f);
    w->prev = NULL;
    transfer_t t = sp__ctx_jump(&f->ctx, NULL);
    after_switch(t);
  }
  sp__altstack_leave(alt); /* its ring is freed after the join (workers_stop) */
  tls_worker = NULL;
  return NULL;
}

int sp__workers_start(struct sp_runtime *rt) {
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    w->rng = rt->cfg.seed ? mix(rt->cfg.seed + (uint64_t)i) /* S7: replayable */
                          : mix((uint64_t)(i + 1) ^ (uint64_t)(uintptr_t)rt ^ (uint64_t)sp__mono());
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      STORE(&rt->stop, 1, RELEASE);
      for (int j = 0; j < i; j++) {
        STORE(&rt->workers[j].sleep, 0, RELEASE);
        sp__io_wake(&rt->workers[j]);
        pthread_join(rt->workers[j].thread, NULL);
        sp__io_worker_fini(&rt->workers[j]);
      }
      return -rc;
    }
  }
  return 0;
}

void sp__workers_stop(struct sp_runtime *rt) {
  STORE(&rt->stop, 1, RELEASE);
  for (int i = 0; i < rt->nworkers; i++) {
    STORE(&rt->workers[i].sleep, 0, RELEASE);
    sp__io_wake(&rt->workers[i]);
  }
  for (int i = 0; i < rt->nworkers; i++) pthread_join(rt->workers[i].thread, NULL);
  /* only now: until every worker is joined, any of them may still wake
   * another through its ring's eventfd; and a thread of another runtime
   * that readied one of rt's fibers may still be inside sp__enqueue (R3) */
  while (LOAD(&rt->ext_wakers, ACQUIRE)) sched_yield();
  for (int i = 0; i < rt->nworkers; i++) sp__io_worker_fini(&rt->workers[i]);
}
