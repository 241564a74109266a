/*
 * sp_runtime.h: Spindle's public runtime API: runtimes, fibers, time.
 *
 * Conventions (all of Spindle):
 *   - An int result >= 0 is success (0 or a count); < 0 is a negated errno
 *     code. errno is never used to report errors. sp_strerror() names codes.
 *   - Times are absolute CLOCK_MONOTONIC deadlines in nanoseconds (sp_now()).
 *     SP_FOREVER (-1) waits forever; 0 means "try, do not block".
 *   - "Suspends: yes" means the call may park the calling fiber (a foreign
 *     thread blocks instead where noted). After such a call the fiber may run
 *     on another worker thread: never keep a pointer to thread-local state
 *     (including errno's address) across it.
 */
#ifndef SP_RUNTIME_H
#define SP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions (the library builds with hidden visibility). */
#define SP_API __attribute__((visibility("default")))

#define SP_FOREVER ((int64_t)-1)

/* Default fiber stack size (usable bytes, guard page not counted). */
#define SP_STACK_DEFAULT ((size_t)64 * 1024)
/* Smallest and largest stack sizes sp_spawn accepts. */
#define SP_STACK_MIN ((size_t)16 * 1024)
#define SP_STACK_MAX ((size_t)1024 * 1024 * 1024)
/* Longest fiber name kept (longer names are truncated). */
#define SP_NAME_MAX 23
/* Number of fiber-local storage keys per runtime. */
#define SP_KEYS_MAX 32

typedef struct sp_runtime sp_runtime_t;
struct sp_fiber;

/* A handle to a joinable fiber. It stays safe to pass after the fiber was
 * joined: a stale handle gives -ESRCH, never a crash. */
typedef struct {
  struct sp_fiber *p;
  uint64_t id;
} sp_fiber_t;

typedef void *(*sp_fn_t)(void *arg);

/* ---- time -------------------------------------------------------------- */

/* Current CLOCK_MONOTONIC time in ns (in a fiber of a virtual-time
 * runtime: that runtime's virtual clock, see sp_config_t.virtual_time). */
SP_API int64_t sp_now(void);
/* Deadline `ns` nanoseconds from now (saturates; ns < 0 gives SP_FOREVER). */
SP_API int64_t sp_deadline_in(int64_t ns);

/* Text for a Spindle result code (negative errno); never NULL. */
SP_API const char *sp_strerror(int code);

/* ---- runtimes ---------------------------------------------------------- */

typedef struct sp_config {
  /* Worker threads; 0 = $SPINDLE_WORKERS if set, else the CPUs this process
   * may use (affinity mask and cgroup CPU quota). */
  int workers;
  /* Default stack size for sp_spawn without one; 0 = SP_STACK_DEFAULT. */
  size_t stack_size;
  /* Debug mode: misuse is reported on stderr naming the fiber, slow fibers
   * are reported (slow_fiber_ns), and destroy lists fibers that finished
   * but were never joined or detached. Also set by SPINDLE_DEBUG=1. */
  int debug;
  /* Debug option: every resume of a fiber happens on a different worker than
   * the one it last ran on (when workers > 1), to flush out TLS/errno bugs.
   * Also set by SPINDLE_MIGRATE=1. */
  int migrate;
  /* What to do when every fiber is parked and nothing can wake them while
   * a foreign thread waits forever for the runtime (sp_join or shutdown
   * with SP_FOREVER): SP_DEADLOCK_ABORT (default: report "all fibers are
   * asleep - deadlock!" with a dump on stderr and abort), SP_DEADLOCK_RETURN
   * (those calls return -EDEADLK), SP_DEADLOCK_OFF. */
  int deadlock;
  /* Debug mode: a fiber that runs this long without reaching a switch
   * point is reported (name, spawn site, worker); 0 = 100 ms. */
  int64_t slow_fiber_ns;
  /* 1: while this runtime lives, SIGQUIT writes sp_runtime_dump of every
   * runtime to stderr (the process keeps running). Also SPINDLE_SIGQUIT=1. */
  int dump_on_sigquit;
  /* Most helper threads of the blocking pool (sp_blocking, and file I/O on
   * the epoll backend); 0 = 64. */
  int io_threads;
  /* Opt-in: an idle worker with I/O in flight polls its ring this long
   * before it sleeps, which cuts the latency of a quick reply several times
   * at the cost of CPU; 0 = off. Also SPINDLE_IO_SPIN_NS. */
  int64_t io_spin_ns;
  /* Virtual time (Go's testing/synctest): sp_now() in this runtime's fibers
   * reads a clock that starts at the real time and moves only when every
   * worker is idle with no I/O in flight: then it jumps to the earliest
   * timer. A test of a 30 s timeout runs at once, and with workers = 1 it
   * runs the same way every time. Foreign threads keep real time; I/O
   * deadlines count in real time. Also SPINDLE_VIRTUAL_TIME=1. */
  int virtual_time;
  /* Seeded scheduling (testing): where each woken, spawned or yielding
   * fiber is queued is drawn from a generator seeded with this value, so
   * different seeds run different interleavings. With workers = 1 and
   * virtual_time, a seed replays its interleaving exactly: print it when a
   * test fails. 0 = off. Also SPINDLE_SEED=N. */
  uint64_t seed;
} sp_config_t;

enum { SP_DEADLOCK_ABORT = 0, SP_DEADLOCK_RETURN = 1, SP_DEADLOCK_OFF = 2 };

/* Fills *cfg with defaults (all zero). */
SP_API void sp_config_init(sp_config_t *cfg);

/* Starts a runtime with its worker threads. cfg may be NULL.
 * Returns 0, -EINVAL (bad config, out NULL), -ENOMEM, -EAGAIN (threads).
 * Several runtimes may live in one process. Suspends: no. */
SP_API int sp_runtime_create(sp_runtime_t **out, const sp_config_t *cfg);

/* Waits until every fiber of rt has finished or the deadline passes, then
 * stops the workers. Returns 0 when stopped, -ETIMEDOUT if fibers are still
 * live (they are listed on stderr; the runtime keeps running and shutdown
 * may be called again), -EDEADLK when called from a fiber of rt or when,
 * with SP_FOREVER and SP_DEADLOCK_RETURN, the live fibers can never finish
 * (see sp_config_t.deadlock), -EINVAL for NULL. Call it from a thread that
 * is not one of rt's workers. */
SP_API int sp_runtime_shutdown(sp_runtime_t *rt, int64_t deadline);

/* Frees a runtime. If it was not shut down, shuts it down with deadline
 * SP_FOREVER first. Returns 0, -EINVAL (NULL), -EDEADLK (from a fiber of
 * rt), -EBUSY (a shutdown timed out and fibers are still live). */
SP_API int sp_runtime_destroy(sp_runtime_t *rt);

/* The runtime of the calling fiber, or NULL on a foreign thread. */
SP_API sp_runtime_t *sp_runtime_current(void);
/* Number of worker threads of rt (0 for NULL). */
SP_API int sp_runtime_workers(const sp_runtime_t *rt);

/* Counters, summed over workers; read without stopping the runtime. */
typedef struct sp_stats {
  uint64_t spawned;  /* fibers created */
  uint64_t live;     /* fibers not yet finished */
  uint64_t switches; /* context switches into fibers */
  uint64_t steals;   /* fibers moved by work stealing */
  uint64_t parks;    /* fiber parks (blocking waits) */
  uint64_t wakeups;  /* idle worker wake-ups */
  uint64_t io_submitted; /* I/O operations started (io_uring SQEs, epoll waits) */
  uint64_t io_completed; /* ... and finished */
  uint64_t stacks;   /* fiber stacks mapped (in use or pooled) */
  uint64_t stacks_used; /* fiber stacks in use by live fibers */
} sp_stats_t;
SP_API int sp_runtime_stats(const sp_runtime_t *rt, sp_stats_t *out);

/* Writes what rt is doing to fd, for people: per worker what it runs and
 * its queue lengths; per fiber its id, name, state, what it waits on and
 * for how long ("chan recv 0x...", "mutex lock 0x...", "join fiber 9",
 * "sleep until +120 ms"), the worker and the spawn site. Each fiber's line
 * is a consistent snapshot; the runtime keeps running meanwhile. Returns
 * the number of fibers listed, -EINVAL. Suspends: no. */
SP_API int sp_runtime_dump(sp_runtime_t *rt, int fd);

/* A foreign thread that may still wake fibers of rt (send on a channel they
 * receive from, unlock a mutex they wait for, ...) holds rt meanwhile, so
 * that those fibers are not reported as deadlocked. Holds nest. Return 0,
 * -EINVAL (NULL; release without a hold). Suspends: no. */
SP_API int sp_runtime_hold(sp_runtime_t *rt);
SP_API int sp_runtime_release(sp_runtime_t *rt);

/* Live monitor: serves a Unix socket at path; every connection receives
 * sp_runtime_dump's text (workers, counters, fibers) and is closed. The
 * spindle-mon tool (//runtime:spindle-mon) is its client. At most one per
 * runtime; destroy stops it. Return 0, -EINVAL, -EBUSY (already serving),
 * -ENAMETOOLONG, or a socket error. Suspends: no. */
SP_API int sp_monitor_start(sp_runtime_t *rt, const char *path);
SP_API int sp_monitor_stop(sp_runtime_t *rt);

/* Scheduler tracing: start records the last 4096 events of each worker
 * (run, park with its reason, yield, exit, spawn, wake, steal) in ring
 * buffers; stop pauses recording; write emits them as Chrome trace-event
 * JSON (Perfetto, chrome://tracing), one track per worker, and returns the
 * number of events written. Off, tracing costs one load per switch. Return
 * -EINVAL, -ENOMEM (start), -EIO (write). Suspends: no. */
SP_API int sp_trace_start(sp_runtime_t *rt);
SP_API int sp_trace_stop(sp_runtime_t *rt);
SP_API int sp_trace_write(sp_runtime_t *rt, int fd);

/* ---- fibers ------------------------------------------------------------ */

typedef struct sp_spawn_opts {
  const char *name;  /* copied; NULL = "fiber" */
  size_t stack_size; /* 0 = the runtime default */
  int detached;      /* 1: never joined, freed when it returns */
} sp_spawn_opts_t;

/* Starts fn(arg) as a new fiber of rt (NULL = the caller's runtime).
 * out may be NULL only for detached fibers (with opts NULL and out NULL the
 * fiber is detached, which is what sp_go does). Callable from fibers and from
 * foreign threads. Returns 0, -EINVAL (NULL fn, joinable without out, no
 * runtime, stack size out of [SP_STACK_MIN, SP_STACK_MAX]), -ENOMEM (no
 * stack or memory; in debug mode the limit hit is named), -ECANCELED (rt is
 * shutting down). Suspends: no. The macro records the spawn site; it is
 * variadic so that a C++ lambda with commas can be passed as fn. Arguments:
 * sp_spawn(rt, out, fn, arg, opts). */
#define sp_spawn(...) sp_spawn_at(__VA_ARGS__, __FILE__, __LINE__)
SP_API int sp_spawn_at(sp_runtime_t *rt, sp_fiber_t *out, sp_fn_t fn, void *arg,
                const sp_spawn_opts_t *opts, const char *file, int line);

/* Shorthand: a detached fiber with default options in the caller's runtime.
 * Returns as sp_spawn. */
#define sp_go(...) sp_spawn_at(NULL, NULL, __VA_ARGS__, NULL, __FILE__, __LINE__)

/* Waits for f to finish and stores its return value in *result (may be
 * NULL). Works from fibers (parks) and foreign threads (blocks).
 * Returns 0, -ETIMEDOUT (deadline passed; f may be joined again), -EAGAIN
 * (deadline 0 and not finished), -ESRCH (stale handle: already joined, or
 * detached and finished),
 * -EINVAL (detached, joining itself, or another join is waiting on f),
 * -EDEADLK (a foreign thread joining with SP_FOREVER when no fiber can ever
 * run again and the config says SP_DEADLOCK_RETURN; f may be joined again).
 * Suspends: yes. */
SP_API int sp_join(sp_fiber_t f, void **result, int64_t deadline);

/* Makes f detached: it is freed when it returns and cannot be joined.
 * Returns 0, -ESRCH (stale), -EINVAL (already detached or being joined). */
SP_API int sp_detach(sp_fiber_t f);

/* Lets other fibers run; the caller goes to the back of its worker's
 * queue. Returns 0, -EPERM outside a fiber. Suspends: yes. */
SP_API int sp_yield(void);

/* Parks the caller until the deadline. Returns 0, -EPERM outside a fiber
 * (use nanosleep there), -EINVAL for SP_FOREVER. Suspends: yes. */
SP_API int sp_sleep_until(int64_t deadline);
/* sp_sleep_until(sp_deadline_in(ns)). */
SP_API int sp_sleep_for(int64_t ns);

/* The calling fiber's handle ({NULL, 0} on a foreign thread), id (0 on a
 * foreign thread; ids start at 1 and are unique per runtime) and name
 * ("" on a foreign thread). */
SP_API sp_fiber_t sp_self(void);
SP_API uint64_t sp_fiber_id(void);
SP_API const char *sp_fiber_name(void);

/* Pins the calling fiber to the worker it runs on (Go's LockOSThread): it is
 * never stolen or migrated until unpinned. Returns 0, -EPERM outside a
 * fiber. Suspends: no. */
SP_API int sp_pin(void);
SP_API int sp_unpin(void);
/* Index of the worker running the caller, -1 on a foreign thread. */
SP_API int sp_worker_index(void);

/* ---- fiber-local storage ----------------------------------------------- */

typedef int sp_key_t;
/* Allocates a key in rt (NULL = current); dtor(value) runs when a fiber that
 * set a non-NULL value finishes. Returns the key (>= 0), -EINVAL, -EAGAIN
 * (all SP_KEYS_MAX keys taken). */
SP_API int sp_key_create(sp_runtime_t *rt, void (*dtor)(void *));
/* Sets / gets the caller's value for key. set returns 0, -EPERM outside a
 * fiber, -EINVAL bad key, -ENOMEM. get returns NULL when unset. */
SP_API int sp_key_set(sp_key_t key, void *value);
SP_API void *sp_key_get(sp_key_t key);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_H */
