/*
 * timer.c: per-worker binary min-heaps of deadlines.
 *
 * Model: each worker owns a heap; a fiber that parks with a deadline queues
 * a timer (living in its own stack frame) on the heap of the worker it runs
 * on. The owner runs due timers every scheduling round; idle workers run the
 * due timers of every worker (so a worker stuck in a long-running fiber does
 * not delay others' deadlines) and sleep until the earliest deadline.
 * The owner of a timer must call sp__timer_del before its memory goes away,
 * even when it knows the timer fired.
 * Invariants:
 *   T1  t->idx >= 0 iff t is in t->heap's array at that index.
 *   T2  h->next == a[0]->when (INT64_MAX if empty) whenever h->lock is free.
 *   T3  t->fire runs with the heap lock held, and sp__timer_del takes that
 *       lock: after del returns, fire is finished or will never start, so
 *       the timer's memory (a parked fiber's stack) may be reused.
 *   T4  A periodic timer (period > 0) is queued again by the run that fired
 *       it, under the same lock hold, so del still removes it for good.
 * Ordering: next is stored with release under the lock; lock-free readers
 *   (idle workers computing their sleep) only use it as a hint and take
 *   the lock before firing anything.
 * Locks: heap lock (rank TIMER): fire callbacks may take the runtime's
 *   queue and idle locks under it, never the other way round.
 * Rejected: one global heap (a lock every worker hits), a timer thread (a
 *   hop per wake-up), a wheel (deadlines here are sparse and precise).
 */
#include "runtime/timer.h"
#include "runtime/lockrank.h"

#include <errno.h>
#include <stdlib.h>

static void set_next(sp__timer_heap_t *h) {
  __atomic_store_n(&h->next, h->n ? h->a[0]->when : INT64_MAX, __ATOMIC_RELEASE);
}

static void place(sp__timer_heap_t *h, size_t i, sp__timer_t *t) {
  h->a[i] = t;
  t->idx = (int32_t)i;
}

static void sift_up(sp__timer_heap_t *h, size_t i) {
  sp__timer_t *t = h->a[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (h->a[parent]->when <= t->when) break;
    place(h, i, h->a[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(sp__timer_heap_t *h, size_t i) {
  sp__timer_t *t = h->a[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && h->a[c + 1]->when < h->a[c]->when) c++;
    if (t->when <= h->a[c]->when) break;
    place(h, i, h->a[c]);
    i = c;
  }
  place(h, i, t);
}

/* Removes a[i]. Locks: caller holds h->lock. */
static void remove_at(sp__timer_heap_t *h, size_t i) {
  sp__timer_t *t = h->a[i];
  t->idx = -1; /* t->heap is cleared by the caller (T3) */
  h->n--;
  if (i == h->n) return;
  h->a[i] = h->a[h->n];
  h->a[i]->idx = (int32_t)i;
  sift_down(h, i);
  sift_up(h, (size_t)h->a[i]->idx);
}

void sp__timer_heap_init(sp__timer_heap_t *h) {
  SP_MUTEX_INIT_ADAPTIVE(&h->lock);
  h->a = NULL;
  h->n = h->cap = 0;
  h->next = INT64_MAX;
}

void sp__timer_heap_destroy(sp__timer_heap_t *h) {
  free(h->a);
  pthread_mutex_destroy(&h->lock);
}

/* Inserts t. Locks: h->lock held. */
static int push(sp__timer_heap_t *h, sp__timer_t *t) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    sp__timer_t **a = realloc(h->a, cap * sizeof *a);
    if (!a) return -ENOMEM;
    h->a = a;
    h->cap = cap;
  }
  __atomic_store_n(&t->heap, h, __ATOMIC_RELAXED);
  h->a[h->n] = t;
  t->idx = (int32_t)h->n++;
  sift_up(h, (size_t)t->idx);
  return 0;
}

int sp__timer_add(sp__timer_heap_t *h, sp__timer_t *t) {
  SP_MLOCK(&h->lock, RANK_TIMER);
  int rc = push(h, t);
  set_next(h);
  SP_MUNLOCK(&h->lock, RANK_TIMER);
  return rc;
}

int sp__timer_del(sp__timer_t *t) {
  /* t->heap goes from h to NULL only under h->lock, after fire returned.
   * Non-NULL: take that lock, which waits out a running fire (T3). NULL:
   * never queued, or fire finished and the lock was released. */
  sp__timer_heap_t *h = __atomic_load_n(&t->heap, __ATOMIC_ACQUIRE);
  if (!h) return 0;
  SP_MLOCK(&h->lock, RANK_TIMER);
  int removed = 0;
  if (t->idx >= 0 && __atomic_load_n(&t->heap, __ATOMIC_RELAXED) == h) {
    remove_at(h, (size_t)t->idx);
    set_next(h);
    removed = 1;
  }
  if (__atomic_load_n(&t->heap, __ATOMIC_RELAXED) == h) {
    __atomic_store_n(&t->heap, NULL, __ATOMIC_RELAXED);
  }
  SP_MUNLOCK(&h->lock, RANK_TIMER);
  return removed;
}

int sp__timer_run(sp__timer_heap_t *h, int64_t now) {
  if (sp__timer_next(h) > now) return 0;
  if (SP_MTRYLOCK(&h->lock, RANK_TIMER)) return 0;
  int fired = 0;
  while (h->n > 0 && h->a[0]->when <= now) {
    sp__timer_t *t = h->a[0];
    remove_at(h, 0);
    t->fire(t); /* T3: under the lock */
    fired++;
    if (t->period > 0) { /* T4: the next tick; ticks a late run missed are dropped */
      t->when += t->period;
      if (t->when <= now) t->when = now + t->period;
      if (push(h, t) == 0) continue;
    }
    __atomic_store_n(&t->heap, NULL, __ATOMIC_RELEASE);
  }
  set_next(h);
  SP_MUNLOCK(&h->lock, RANK_TIMER);
  return fired;
}
