/*
 * pool.c: sp_pool_t, a bounded worker pool (sp_pool.h).
 *
 * Model: a buffered channel of jobs and N detached worker fibers counted by
 * a WaitGroup. Each worker receives jobs until the channel is closed and
 * drained (sp_chan_recv's -EPIPE), runs fn and on_done, and finally calls
 * sp_wg_done. The channel does all the queueing: FIFO, back-pressure on
 * full, each value received exactly once, close waking blocked submitters
 * with -EPIPE.
 * Invariants:
 *   L1  A job sent on the channel runs exactly once: the channel hands each
 *       value to one receiver, and a worker leaves its loop only on -EPIPE,
 *       which a closed channel returns only once its buffer is empty.
 *   L2  sp_wg_done is a worker's last access to the pool, so wait's 0 means
 *       nothing of the pool is used any more (free is safe).
 *   L3  Workers run jobs with no context bound: a worker whose recv were
 *       cut short by a context a job left bound would exit with jobs
 *       still queued, and they would never run.
 * Locks: none of its own (the channel's and the WaitGroup's).
 * Rejected: a results channel filled by the pool (the user's channel would
 *   have to be made with exactly sizeof(result) elements, which the pool
 *   cannot check); on_done can send on any channel.
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/patterns_impl.h"
#include "sync/sp_ctx.h"
#include "sync/sp_pool.h"
#include "sync/sp_sync.h"

typedef struct {
  sp_pool_fn fn;
  void *arg;
} job_t;

struct sp_pool {
  sp_chan_t *jobs;
  sp_waitgroup_t wg; /* counts live workers (L2) */
  void (*on_done)(void *arg, int result, void *ud);
  void *ud;
};

void sp_pool_config_init(sp_pool_config_t *cfg) {
  if (cfg) *cfg = (sp_pool_config_t){.queue = 64};
}

/* Runs jobs until the channel is closed and drained (L1). A context that
 * a job (or on_done) left bound is unbound (L3). Runs on: a worker fiber.
 * Switches: yes. */
static void *worker(void *arg) {
  sp_pool_t *p = arg;
  job_t j;
  while (sp_chan_recv(p->jobs, &j, SP_FOREVER) == 0) {
    int r = j.fn(j.arg);
    if (p->on_done) p->on_done(j.arg, r, p->ud);
    if (sp_ctx_current()) sp_ctx_leave(NULL); /* L3 */
  }
  sp_wg_done(&p->wg); /* L2: last access */
  return NULL;
}

/* Waits for every worker to exit, cancellation or not: the caller frees
 * the pool next. Runs on: a fiber or a foreign thread. Switches: yes. */
static void join_workers(sp_pool_t *p) {
  sp_ctx_t *prev = sp_ctx_enter(NULL); /* not cut short by a context */
  sp_wg_wait(&p->wg, SP_FOREVER);
  sp_ctx_leave(prev);
}

int sp_pool_create(sp_pool_t **out, const sp_pool_config_t *cfg) {
  sp_pool_config_t c;
  if (cfg) c = *cfg;
  else sp_pool_config_init(&c);
  if (!out || c.workers < 0) return -EINVAL;
  sp_runtime_t *rt = c.rt ? c.rt : sp_runtime_current();
  if (!rt) return -EINVAL;
  int n = c.workers ? c.workers : sp_runtime_workers(rt);
  sp_pool_t *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  int r = sp_chan_make(&p->jobs, sizeof(job_t), c.queue);
  if (r < 0) {
    free(p);
    return r;
  }
  p->on_done = c.on_done;
  p->ud = c.ud;
  sp_spawn_opts_t o = {.name = c.name ? c.name : "pool", .stack_size = c.stack_size, .detached = 1};
  for (int i = 0; i < n; i++) {
    sp_wg_add(&p->wg, 1);
    if ((r = sp_spawn(rt, NULL, worker, p, &o)) < 0) {
      sp_wg_done(&p->wg);
      sp_chan_close(p->jobs); /* the ones started exit at once */
      join_workers(p);
      sp_chan_free(p->jobs);
      free(p);
      return r;
    }
  }
  *out = p;
  return 0;
}

int sp_pool_submit(sp_pool_t *p, sp_pool_fn fn, void *arg, int64_t deadline) {
  if (!p || !fn) return -EINVAL;
  int e = pat_ctx_err(); /* fail at once, even with room in the queue */
  if (e) return e;
  job_t j = {fn, arg};
  return sp_chan_send(p->jobs, &j, deadline);
}

int sp_pool_close(sp_pool_t *p) { return p ? sp_chan_close(p->jobs) : -EINVAL; }

int sp_pool_wait(sp_pool_t *p, int64_t deadline) {
  if (!p) return -EINVAL;
  return sp_wg_wait(&p->wg, deadline);
}

int sp_pool_shutdown(sp_pool_t *p, int64_t deadline) {
  if (!p) return -EINVAL;
  sp_chan_close(p->jobs); /* -EPIPE: closed already, fine */
  return sp_wg_wait(&p->wg, deadline);
}

int sp_pool_free(sp_pool_t *p) {
  if (!p) return -EINVAL;
  if (sp_wg_wait(&p->wg, 0) != 0) return -EBUSY;
  if (sp_chan_free(p->jobs) < 0) return -EBUSY;
  free(p);
  return 0;
}

int64_t sp_pool_pending(sp_pool_t *p) { return p ? (int64_t)sp_chan_len(p->jobs) : -EINVAL; }
