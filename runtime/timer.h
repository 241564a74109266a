/*
 * timer.h: per-worker timer heaps (deadlines of parked fibers and, later,
 * channel timers). See timer.c for the model.
 */
#ifndef SP_RUNTIME_TIMER_H
#define SP_RUNTIME_TIMER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sp__timer_heap;

typedef struct sp__timer {
  int64_t when;                 /* absolute monotonic ns */
  int32_t idx;                  /* position in the heap; -1 when not queued */
  struct sp__timer_heap *heap;  /* heap holding it (atomic); NULL when none */
  void (*fire)(struct sp__timer *t); /* runs under the heap lock (T3) */
  void *arg;
  int64_t period;               /* > 0: fires again every period ns (T4) */
} sp__timer_t;

typedef struct sp__timer_heap {
  pthread_mutex_t lock;
  sp__timer_t **a;
  size_t n, cap;
  int64_t next; /* atomic mirror of a[0]->when, INT64_MAX when empty */
} sp__timer_heap_t;

void sp__timer_heap_init(sp__timer_heap_t *h);
void sp__timer_heap_destroy(sp__timer_heap_t *h);

/* Queues t (t->when, t->fire set) on h. Returns 0 or -ENOMEM.
 * Runs on: any thread. Locks: h->lock. Switches: no. */
int sp__timer_add(sp__timer_heap_t *h, sp__timer_t *t);

/* Removes t if still queued; when it returns, t->fire is not running and
 * will not run (T3). Returns 1 if removed, 0 if it had fired or was never
 * queued. Runs on: any thread. Locks: t's heap lock. Switches: no. */
int sp__timer_del(sp__timer_t *t);

/* Fires every timer of h due at `now`. Returns how many fired.
 * Runs on: any thread. Locks: h->lock (skipped if busy). Switches: no. */
int sp__timer_run(sp__timer_heap_t *h, int64_t now);

/* Earliest deadline in h, INT64_MAX when empty. Lock-free. */
static inline int64_t sp__timer_next(const sp__timer_heap_t *h) {
  return __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
}

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_TIMER_H */
