/*
 * blocking.c: a bounded pool of helper threads for calls that block
 * (sp_blocking; file I/O on the epoll backend).
 *
 * Model: a fiber puts a job (on its own stack) on the runtime's queue and
 * parks; a helper thread runs it and wakes the fiber through the park
 * machine (a foreign-thread wake). Threads start on demand, up to
 * cfg.io_threads, and exit after IDLE_NS without work.
 * Invariants:
 *   B1  A job is never abandoned: its fiber parks without a deadline, since
 *       fn may write into the fiber's stack until it returns.
 *   B2  fini runs after every fiber finished, so no job is queued; it waits
 *       for every helper thread to exit (they are detached).
 * Locks: pool->lock (a leaf: fn runs without it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "io/poll.h"
#include "io/sp_io.h"

#define IDLE_NS 10000000000LL /* a helper with nothing to do exits after 10 s */

typedef struct job {
  sp_fn_t fn;
  void *arg;
  void *result;
  sp__parker_t p;
  struct job *next;
} job_t;

struct sp__bpool {
  pthread_mutex_t lock;
  pthread_cond_t work; /* jobs queued, or stop */
  pthread_cond_t gone; /* a thread exited */
  job_t *head, *tail;
  int nthreads, nidle, max;
  int stop;
};

static void *helper(void *arg) {
  struct sp__bpool *bp = arg;
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE); /* as on the workers (sched.c) */
  pthread_sigmask(SIG_BLOCK, &pipe, NULL);
  pthread_mutex_lock(&bp->lock);
  for (;;) {
    while (!bp->head && !bp->stop) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += IDLE_NS / 1000000000;
      bp->nidle++;
      int rc = pthread_cond_timedwait(&bp->work, &bp->lock, &ts);
      bp->nidle--;
      if (rc == ETIMEDOUT && !bp->head) goto out;
    }
    if (!bp->head) break; /* stop */
    job_t *j = bp->head;
    bp->head = j->next;
    if (!bp->head) bp->tail = NULL;
    pthread_mutex_unlock(&bp->lock);
    j->result = j->fn(j->arg);
    if (sp__park_claim(&j->p)) sp__park_wake(&j->p, 0); /* j is gone after this */
    pthread_mutex_lock(&bp->lock);
  }
out:
  bp->nthreads--;
  pthread_cond_broadcast(&bp->gone);
  pthread_mutex_unlock(&bp->lock);
  return NULL;
}

static struct sp__bpool *pool_of(struct sp_runtime *rt) {
  struct sp__bpool *bp = __atomic_load_n(&rt->bpool, __ATOMIC_ACQUIRE);
  if (bp) return bp;
  pthread_mutex_lock(&rt->io_lock);
  bp = rt->bpool;
  if (!bp && (bp = calloc(1, sizeof *bp)) != NULL) {
    pthread_mutex_init(&bp->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bp->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&bp->gone, NULL);
    bp->max = rt->cfg.io_threads;
    __atomic_store_n(&rt->bpool, bp, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&rt->io_lock);
  return bp;
}

int sp__blocking_run(struct sp_runtime *rt, sp_fn_t fn, void *arg, void **result) {
  struct sp__bpool *bp = pool_of(rt);
  if (!bp) return -ENOMEM;
  job_t j = {.fn = fn, .arg = arg};
  sp__park_begin(&j.p);
  sp__park_note("blocking call", (const void *)fn);
  pthread_mutex_lock(&bp->lock);
  if (bp->nidle == 0 && bp->nthreads < bp->max) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, helper, bp) == 0) bp->nthreads++;
    pthread_attr_destroy(&attr);
    if (bp->nthreads == 0) { /* none at all: cannot run it */
      pthread_mutex_unlock(&bp->lock);
      sp__park_abort(&j.p);
      return -EAGAIN;
    }
  }
  j.next = NULL;
  if (bp->tail) bp->tail->next = &j;
  else bp->head = &j;
  bp->tail = &j;
  pthread_cond_signal(&bp->work);
  pthread_mutex_unlock(&bp->lock);
  __atomic_fetch_add(&rt->io_inflight, 1, __ATOMIC_RELAXED);
  sp__park_wait_unscoped(&j.p, SP_FOREVER); /* B1: not even a cancellation */
  __atomic_fetch_sub(&rt->io_inflight, 1, __ATOMIC_RELEASE);
  if (result) *result = j.result;
  return 0;
}

int sp_blocking(sp_fn_t fn, void *arg, void **result) {
  if (!fn) return -EINVAL;
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) { /* a foreign thread may block: run it here */
    void *r = fn(arg);
    if (result) *result = r;
    return 0;
  }
  return sp__blocking_run(w->rt, fn, arg, result);
}

/* B2. Called by sp__io_runtime_fini. */
void sp__blocking_fini(struct sp_runtime *rt) {
  struct sp__bpool *bp = rt->bpool;
  if (!bp) return;
  pthread_mutex_lock(&bp->lock);
  bp->stop = 1;
  pthread_cond_broadcast(&bp->work);
  while (bp->nthreads > 0) pthread_cond_wait(&bp->gone, &bp->lock);
  pthread_mutex_unlock(&bp->lock);
  pthread_mutex_destroy(&bp->lock);
  pthread_cond_destroy(&bp->work);
  pthread_cond_destroy(&bp->gone);
  free(bp);
  rt->bpool = NULL;
}
