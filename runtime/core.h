/*
 * core.h: the runtime's internal types, shared by the files of runtime/.
 *
 * Objects and owners:
 *   sp_runtime   one per sp_runtime_create; owns workers, the injection
 *                queue, the idle list, the stack pool and the fiber pool.
 *   sp__worker   one per worker thread; its fields are written only by its
 *                own thread unless marked (shared: ...).
 *   sp_fiber     pooled control block; lives until the runtime is destroyed,
 *                so a stale handle can be detected by id (F4 in fiber.c).
 *
 * Fiber states (f->state, atomic; the transitions are in sched.c and park.c):
 *   RUNNABLE  on exactly one queue (runq, runnext, lifo, inbox, injection),
 *             or handed directly to a worker that is about to run it.
 *   RUNNING   a worker is executing it.
 *   PARKING   it armed a park and may still be running on its stack.
 *   WOKEN     woken while PARKING; whoever finishes its switch-out queues it.
 *   PARKED    switched out and waiting; the waker queues it.
 *   DONE      returned; stack released; waiting to be joined or freed.
 */
#ifndef SP_RUNTIME_CORE_H
#define SP_RUNTIME_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "arch/context.h"
#include "arch/stack.h"
#include "runtime/lock.h"
#include "runtime/sp_runtime.h"
#include "runtime/timer.h"

#ifndef SP_RUNQ_CAP
#define SP_RUNQ_CAP 256 /* power of two; tests build with 4 */
#endif
#define SP__FIBER_CACHE 64 /* free fiber blocks a worker keeps */
#define SP__LIFO_CAP 16    /* newest spawns a worker runs first (runq.c) */
#define SP__GLOBAL_EVERY 61 /* ticks between injection-queue checks */
#define DL_MAX_WAITERS 64    /* foreign threads tracked in forever-joins */
#define SP__WATCH_MAX 256    /* workers the debug watchdog looks at */
#define SP__CENSUS_SLOTS 256 /* spawn sites the debug stack census tracks */

#define SP__TRACE_CAP 4096   /* scheduler events kept per worker (trace.c) */

typedef struct sp__tev {
  int64_t ts;         /* all fields relaxed atomics (trace.c T1) */
  uint32_t kind;      /* TR_* */
  uint64_t fiber;
  const char *detail; /* static text (a park reason) or NULL */
} sp__tev_t;

enum { TR_RUN, TR_PARK, TR_YIELD, TR_EXIT, TR_SPAWN, TR_WAKE, TR_STEAL, TR_IO_SUBMIT, TR_IO_DONE };

typedef struct sp__census {
  const char *file; /* spawn site; NULL while the slot is free */
  int line;
  uint64_t fibers;
  size_t deepest, size;
} sp__census_t;

enum sp__fstate { F_RUNNABLE = 1, F_RUNNING, F_PARKING, F_WOKEN, F_PARKED, F_DONE };

/* The park word f->pk holds the fiber's state (enum sp__fstate, low 32
 * bits) and its park token (high 32 bits; odd = armed, park.c P1) in one
 * atomic, so a claim sees whether the fiber is already off its stack. Only
 * 64-bit atomic operations touch it. sp__fset is for transitions no claim
 * can race with (the token is even then: nothing is armed). */
static inline uint64_t sp__pk(uint32_t state, uint32_t token) {
  return (uint64_t)token << 32 | state;
}
static inline uint32_t sp__fstate(const struct sp_fiber *f);
static inline void sp__fset(struct sp_fiber *f, uint32_t state);

/* Values of f->joiner besides a parker pointer. */
#define SP__JOIN_DONE ((void *)1)
#define SP__JOIN_DETACHED ((void *)2)

struct sp_fiber {
  sp__ctx_t ctx;
  struct sp_fiber *next;   /* link on one queue (guarded by that queue) */
  uint64_t pk;             /* atomic park word: state | token << 32 (below) */
  uint64_t id;             /* atomic; 0 while in the free pool */
  struct sp_runtime *rt;
  sp_fn_t fn;
  void *arg;
  void *result;
  void (*on_exit)(void *); /* spawn.h hook, run on the fiber after fn */
  void *exit_arg;
  void *joiner;            /* atomic: NULL, sp__parker_t*, JOIN_DONE, JOIN_DETACHED */
  uint32_t join_handoff;   /* atomic: finisher is done with the joiner's parker */
  sp__stack_t stack;
  void **fls;              /* SP_KEYS_MAX values, allocated on first set */
  int pinned;              /* worker index while pinned, else -1 */
  int last_worker;         /* worker it last ran on */
  struct sp__cancel *cancel; /* bound cancellation scope (cancel.h), or NULL */
  const char *wait_what;   /* atomic: why it parked last (park.h note) */
  const void *wait_obj;    /* atomic: what it waits on */
  int64_t wait_since;      /* atomic: when (coarse monotonic ns) */
  const char *file;        /* spawn site */
  int line;
  char name[SP_NAME_MAX + 1];
};

static inline uint32_t sp__fstate(const struct sp_fiber *f) {
  return (uint32_t)__atomic_load_n(&f->pk, __ATOMIC_ACQUIRE);
}
static inline void sp__fset(struct sp_fiber *f, uint32_t state) {
  uint64_t w = __atomic_load_n(&f->pk, __ATOMIC_RELAXED);
  __atomic_store_n(&f->pk, sp__pk(state, (uint32_t)(w >> 32)), __ATOMIC_RELEASE);
}

/* What the context resumed next must do with the one that switched out. */
enum sp__action { ACT_NONE, ACT_YIELD, ACT_PARK, ACT_EXIT };

typedef struct sp__stats_w {
  uint64_t spawned, switches, steals, parks, wakeups;
  uint64_t io_submitted, io_completed; /* I/O operations (both backends) */
} sp__stats_w_t;

typedef struct sp__worker {
  struct sp_runtime *rt;
  int index;
  pthread_t thread;
  sp__ctx_t sched;            /* the worker thread's own stack (scheduler loop) */
  struct sp_fiber *cur;       /* fiber running now; NULL in the scheduler */
  struct sp_fiber *prev;      /* switched out, action pending (sched.c S2) */
  enum sp__action prev_action;
  struct sp__lock *prev_unlock; /* ACT_PARK: a lock to release after it (park.c P6) */
  uint32_t tick;
  uint64_t rng;
  bool spinning;

  /* run queue (runq.c); head/tail/buf/runnext shared with stealers */
  uint32_t head __attribute__((aligned(64)));
  uint32_t tail __attribute__((aligned(64)));
  struct sp_fiber *runnext;
  struct sp_fiber *buf[SP_RUNQ_CAP];

  /* lifo: the newest spawns, run newest first (shared: lifo_lock) */
  uint32_t lifo_lock __attribute__((aligned(64)));
  uint32_t nlifo; /* atomic mirror for lock-free emptiness checks */
  struct sp_fiber *lifo[SP__LIFO_CAP];

  /* inbox: pinned and migrated fibers pushed by others (shared: inbox_lock) */
  pthread_mutex_t inbox_lock __attribute__((aligned(64)));
  struct sp_fiber *inbox_head, *inbox_tail;
  uint32_t inbox_n; /* atomic mirror for lock-free emptiness checks */

  /* sleeping (shared: the idle list under rt->idle_lock) */
  uint32_t sleep;  /* futex word: 1 asleep in the idle list, 0 awake */
  bool in_idle;    /* guarded by rt->idle_lock */

  sp__timer_heap_t timers; /* shared: its own lock */
  sp__stack_cache_t stacks;
  struct sp_fiber *fcache[SP__FIBER_CACHE];
  int nfcache;
  uint64_t id_next, id_end; /* fiber ids reserved by this worker (fiber.c) */
  int tracing;               /* atomic: record scheduler events (trace.c) */
  sp__tev_t *trace;          /* event ring (trace.c), NULL until traced */
  uint64_t trace_n;          /* events ever recorded; atomic for readers */
  sp__stats_w_t stats; /* written by the owner, read relaxed by anyone */

  /* io_uring backend (io/uring.c): the ring, NULL without one (atomic:
   * wakers read it); SQEs queued but not submitted; operations submitted
   * whose CQE was not reaped. Counters: owner writes, others read relaxed. */
  struct sp__uring *uring;
  uint32_t io_unsubmitted;
  uint32_t io_pending;
  uint32_t io_slept_tick; /* w->tick when it last slept in its ring */
  uint32_t io_nowait_budget; /* reads left to serve inline (io/ops.c O3) */
  uint32_t ring_sleep; /* atomic: it sleeps in its ring, not on the futex (U3) */
  /* cancellations of this ring's operations asked by other threads
   * (io/uring.c U5): a list under io_cancel_lk, and an atomic flag */
  sp__lock_t io_cancel_lk;
  struct iocancel *io_cancels;
  uint32_t io_ncancel;
} sp__worker_t;

struct sp_runtime {
  sp_config_t cfg;
  int nworkers;
  sp__worker_t *workers;

  /* injection queue: spawns from foreign threads and runq overflow */
  pthread_mutex_t inject_lock;
  struct sp_fiber *inject_head, *inject_tail;
  uint32_t inject_n; /* atomic mirror */

  /* idle workers (sched.c S4) */
  pthread_mutex_t idle_lock;
  int *idle;        /* stack of sleeping worker indices */
  int nidle_list;   /* guarded by idle_lock */
  int nidle;        /* atomic mirror */
  int nspinning;    /* atomic */

  /* lifetime */
  uint64_t live;     /* atomic: fibers not DONE */
  uint64_t next_id;  /* atomic */
  uint64_t spawned_foreign; /* atomic: spawns from foreign threads */
  int stopping;      /* atomic: shutdown begun; spawn refused */
  int stop;          /* atomic: workers exit their loops */
  int stopped;       /* workers joined */
  pthread_mutex_t done_lock;
  pthread_cond_t done_cond; /* signalled when live drops to 0 */
  int ext_wakers;    /* atomic: threads not of rt inside sp__enqueue(rt) or spawning (R1, R3) */

  /* pools */
  sp__stack_pool_t stacks;
  pthread_mutex_t fpool_lock;
  struct sp_fiber *fpool;   /* free fiber blocks (linked by next) */
  void **fslabs;            /* every slab, for teardown */
  size_t nfslabs, capfslabs;

  /* deadlock detection (deadlock.c) */
  int holds;                  /* atomic: sp_runtime_hold count */
  int deadlocked;             /* atomic: reported with SP_DEADLOCK_RETURN */
  pthread_mutex_t dl_lock;
  struct sp__parker *dl_waiters[DL_MAX_WAITERS]; /* foreign forever-joins */
  int ndl_waiters;            /* guarded by dl_lock */
  int shutdown_waiting;       /* guarded by dl_lock: a shutdown waits forever */
  struct sp_runtime *registry_next; /* deadlock.c's list of runtimes */

  /* debug-mode slow-fiber watchdog (watchdog.c) */
  pthread_t wd_thread;
  uint32_t wd_stop; /* atomic futex word */
  int wd_running;


  /* live monitor (monitor_linux.c): listening socket, -1 when off */
  int mon_fd;
  pthread_t mon_thread;
  char mon_path[108];

  /* debug-mode stack census (census.c) */
  pthread_mutex_t census_lock;
  sp__census_t census[SP__CENSUS_SLOTS];

  /* I/O (io/): backend chosen at create and why; the epoll fallback and
   * the blocking pool, started on first use under io_lock */
  int io_kind;          /* SP_IO_URING or SP_IO_EPOLL */
  unsigned io_ring_flags; /* setup flags every worker's ring uses */
  bool io_old_rules;      /* submit and wait as on 5.x kernels (io/uring.c U8, U9) */
  char io_why[160];
  pthread_mutex_t io_lock;
  struct sp__epoll *epoll;
  struct sp__bpool *bpool;
  uint64_t io_inflight; /* atomic: fibers parked in I/O or blocking calls */

  int64_t vnow; /* atomic: the virtual clock (cfg.virtual_time; sched.c S6) */

  /* debug mode: objects made by its fibers and not yet freed (track.h) */
  sp__lock_t tracked_lk;
  struct sp__tracked *tracked;

  /* fiber-local storage keys */
  int nkeys; /* atomic */
  void (*key_dtor[SP_KEYS_MAX])(void *);
};

/* The real CLOCK_MONOTONIC time in ns, whatever sp_now() says (virtual
 * time): for the runtime's own timing (spinning, watchdog, kernel waits). */
static inline int64_t sp__mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
extern int sp__nvirtual; /* debugcount.c: virtual-time runtimes alive */

/* ---- worker access (sched.c) ----------------------------------------- */

/* The worker running the caller, or NULL on a foreign thread. Not
 * inlinable: call it again after every switch point (errno/TLS rule). */
sp__worker_t *sp__self(void) __attribute__((noinline));

/* Switches the current fiber out with action; returns when it is resumed.
 * Runs on: a fiber. Switches: yes. */
void sp__switch_out(enum sp__action action);
/* The same, for a caller that just read w = sp__self() (saves a call). */
void sp__switch_from(sp__worker_t *w, enum sp__action action);
/* Parks the current fiber (ACT_PARK) holding lk, which the context resumed
 * next releases once the fiber is PARKED (park.c P6). Switches: yes. */
void sp__switch_out_unlock(struct sp__lock *lk);

/* Where sp__enqueue puts a RUNNABLE fiber on the current worker. */
enum sp__where {
  Q_TAIL,  /* back of the ring: yields, overflow (fair, FIFO) */
  Q_NEXT,  /* runnext: a woken fiber runs next, inheriting the time slice */
  Q_SPAWN, /* lifo: a new fiber; newest first, so spawn-then-join trees run
            * depth first with few live stacks */
};
/* Queues a RUNNABLE fiber. Runs on: any thread. */
void sp__enqueue(struct sp_runtime *rt, struct sp_fiber *f, enum sp__where where);

/* Makes f's context on f->stack, to run the fiber body (sched.c S9). */
void sp__fiber_prepare(struct sp_fiber *f);
void sp__fiber_run_body(struct sp_fiber *f);

/* Starts and stops the worker threads (sched.c). */
int sp__workers_start(struct sp_runtime *rt);
void sp__workers_stop(struct sp_runtime *rt);

/* ---- run queues (runq.c) ---------------------------------------------- */
void sp__runq_push(sp__worker_t *w, struct sp_fiber *f);
struct sp_fiber *sp__runq_pop(sp__worker_t *w);
struct sp_fiber *sp__runq_steal(sp__worker_t *w, sp__worker_t *victim, bool take_next);
bool sp__runq_empty(const sp__worker_t *w);
void sp__lifo_push(sp__worker_t *w, struct sp_fiber *f);
struct sp_fiber *sp__lifo_pop(sp__worker_t *w);
struct sp_fiber *sp__lifo_steal(sp__worker_t *w, sp__worker_t *victim, bool take_last);
void sp__inject_push(struct sp_runtime *rt, struct sp_fiber *head, struct sp_fiber *tail, uint32_t n);
struct sp_fiber *sp__inject_pop(struct sp_runtime *rt, sp__worker_t *w);
void sp__inbox_push(sp__worker_t *w, struct sp_fiber *f);
struct sp_fiber *sp__inbox_pop(sp__worker_t *w);

/* ---- fibers (fiber.c) ------------------------------------------------- */
/* Called by the context resumed after a fiber returned: releases its
 * stack, publishes DONE, wakes the joiner. Runs on: any worker. */
void sp__fiber_finish(sp__worker_t *w, struct sp_fiber *f);
void sp__fiber_pool_destroy(struct sp_runtime *rt);

/* ---- misc -------------------------------------------------------------- */
__attribute__((noreturn, format(printf, 1, 2))) void sp__panic(const char *fmt, ...);
/* Debug-mode report naming the calling fiber: "spindle: fiber 7 "x": ...". */
__attribute__((format(printf, 2, 3))) void sp__debugf(struct sp_runtime *rt, const char *fmt, ...);
int sp__cpu_count(void);
/* deadlock.c: reports rt if it can never run again (the model there). */
struct sp__parker;
void sp__deadlock_check(struct sp_runtime *rt);   /* any thread: maybe wake a worker */
bool sp__deadlock_suspect(struct sp_runtime *rt);
uint64_t sp__deadlock_activity(struct sp_runtime *rt);
void sp__deadlock_report(struct sp_runtime *rt);  /* an idle worker, once confirmed */
void sp__wake_idle(struct sp_runtime *rt);        /* sched.c: wake one sleeping worker */
void sp__dump_all(int fd);                        /* deadlock.c: dump every runtime */
/* deadlock.c: calls fn on every live runtime, under the registry lock. */
void sp__each_runtime(void (*fn)(struct sp_runtime *rt, void *arg), void *arg);
/* sigquit_linux.c: SIGQUIT dumps every runtime (opt-in, reference counted). */
int sp__sigquit_enable(void);
void sp__sigquit_disable(void);
void sp__deadlock_register(struct sp_runtime *rt);
void sp__deadlock_unregister(struct sp_runtime *rt);
int sp__deadlock_wait_begin(struct sp_runtime *rt, struct sp__parker *p);
void sp__deadlock_wait_end(struct sp_runtime *rt, struct sp__parker *p);
/* dump.c: lists the fibers still live on stderr (shutdown deadline), and
 * in debug mode the fibers that finished but were never joined (destroy). */
void sp__report_live(struct sp_runtime *rt);
void sp__report_unjoined(struct sp_runtime *rt);
/* trace.c: records an event on w's ring; call only if w->tracing. */
void sp__trace_rec(sp__worker_t *w, int kind, uint64_t fiber, const char *detail);
void sp__trace_free(struct sp_runtime *rt);
/* Records a switch on w: w->prev leaving (w->prev_action) and next (may be
 * NULL: back to the scheduler) entering. Call only if w->tracing. */
void sp__trace_switch(sp__worker_t *w, struct sp_fiber *next);
#ifdef SP_NO_TRACE /* compiled out: for measuring what tracing costs */
#define SP__TRACING(w) 0
#define SP__TRACE(w, kind, fiber, detail) ((void)0)
#else
#define SP__TRACING(w) __builtin_expect(__atomic_load_n(&(w)->tracing, __ATOMIC_RELAXED), 0)
#define SP__TRACE(w, kind, fiber, detail)                                  \
  do {                                                                      \
    if (__builtin_expect(__atomic_load_n(&(w)->tracing, __ATOMIC_RELAXED), 0)) \
      sp__trace_rec((w), (kind), (fiber), (detail));                        \
  } while (0)
#endif
/* backtrace_linux.c: symbolized backtraces of parked fibers (dumps only:
 * not async-signal-safe). open returns a symbolizer (NULL: addresses only). */
void *sp__bt_open(void);
void sp__bt_close(void *sym);
void sp__bt_fiber(void *sym, int fd, struct sp_fiber *f);
/* census.c: debug mode's deepest stack use per spawn site. */
void sp__census_paint(struct sp_fiber *f);
void sp__census_record(struct sp_fiber *f);
void sp__census_print(struct sp_runtime *rt);
/* watchdog.c: debug mode's slow-fiber reports. */
int sp__watchdog_start(struct sp_runtime *rt);
void sp__watchdog_stop(struct sp_runtime *rt);
/* crash_linux.c: fault reports naming the fiber (K1, K2 there). */
void sp__crash_install(void);
void sp__crash_uninstall(void);
void *sp__altstack_enter(void); /* on a worker thread; returns a token */
void sp__altstack_leave(void *token);
int sp__futex_wait(uint32_t *addr, uint32_t val, int64_t deadline);
void sp__futex_wake(uint32_t *addr, int n);

static inline void sp__stat_inc(uint64_t *c) {
  __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

#endif /* SP_RUNTIME_CORE_H */
