/*
 * sp_pool.h: a bounded worker pool fed by a channel.
 *
 * N worker fibers take jobs (fn, arg) from a channel buffering up to
 * `queue` jobs, in submission order, and run each exactly once. Submitting
 * to a full queue waits (with a deadline) for room: the pool pushes back
 * on its producers instead of growing. Closing stops submissions; the jobs
 * already queued still run, then the workers exit; sp_pool_wait waits for
 * that.
 *
 * Results: fn returns an int (>= 0 or a negative error); the pool hands
 * it, with the job's arg, to config.on_done on the worker fiber right after
 * fn returns. on_done may block (send the result on a channel of yours, say;
 * the worker takes no new job meanwhile) and may submit (but not to a full
 * queue it is the only consumer of). Without on_done results are dropped.
 *
 * Submit, close and wait work from fibers and foreign threads, from any
 * number at once. A fiber bound to a context (sp_ctx.h) gets the context's
 * error from a submit or wait as soon as it is cancelled (the job is then
 * not queued). Workers run with no context bound; a job binds its own, and
 * should leave it before returning (a binding still there when fn and
 * on_done have returned is undone, so later jobs do not run under it).
 */
#ifndef SP_POOL_H
#define SP_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_pool sp_pool_t;

typedef int (*sp_pool_fn)(void *arg);

typedef struct sp_pool_config {
  /* Where the workers run; NULL: the calling fiber's runtime. */
  sp_runtime_t *rt;
  /* Worker fibers; 0 = the runtime's worker threads. */
  int workers;
  /* Jobs buffered; 0: unbuffered (a submit waits until a worker takes the
   * job). sp_pool_config_init sets 64. */
  size_t queue;
  /* Called with each job's arg and fn's result, on the worker. NULL: none. */
  void (*on_done)(void *arg, int result, void *ud);
  void *ud;
  /* Name of the worker fibers (copied); NULL = "pool". */
  const char *name;
  /* Stack size of the worker fibers; 0 = the runtime's default. */
  size_t stack_size;
} sp_pool_config_t;

/* Defaults: the caller's runtime, one worker per worker thread, a queue of
 * 64, no on_done. */
SP_API void sp_pool_config_init(sp_pool_config_t *cfg);

/* Starts the workers. cfg may be NULL (defaults). Returns 0, -EINVAL (out
 * NULL, workers < 0, no runtime), -ENOMEM, or sp_spawn's error (nothing is
 * left running then). Suspends: only on failure (waits for the workers
 * already started to exit). */
SP_API int sp_pool_create(sp_pool_t **out, const sp_pool_config_t *cfg);

/* Queues fn(arg). Returns 0, -EPIPE (closed, also while waiting for room:
 * not queued), -ETIMEDOUT, -EAGAIN (deadline 0 and the queue is full),
 * -EINVAL (NULL), or the bound context's error. Suspends: yes. */
SP_API int sp_pool_submit(sp_pool_t *p, sp_pool_fn fn, void *arg, int64_t deadline);

/* Stops submissions; queued jobs still run. Returns 0, -EPIPE (already
 * closed), -EINVAL. Suspends: no. */
SP_API int sp_pool_close(sp_pool_t *p);

/* Waits until the pool is closed, every queued job has run (on_done
 * included) and the workers have exited. Returns 0, -ETIMEDOUT, -EAGAIN
 * (deadline 0), -EINVAL, or the bound context's error. Never returns 0
 * before sp_pool_close. Suspends: yes. */
SP_API int sp_pool_wait(sp_pool_t *p, int64_t deadline);

/* sp_pool_close (if not yet), then sp_pool_wait. */
SP_API int sp_pool_shutdown(sp_pool_t *p, int64_t deadline);

/* Frees a pool whose wait returned 0. Returns 0, -EBUSY (workers still
 * running: not freed), -EINVAL. No other call may be in progress on p. */
SP_API int sp_pool_free(sp_pool_t *p);

/* Jobs queued and not yet taken by a worker; -EINVAL. */
SP_API int64_t sp_pool_pending(sp_pool_t *p);

#ifdef __cplusplus
}
#endif
#endif /* SP_POOL_H */
