/*
 * runq.c: run queues: per-worker ring and lifo, injection queue, inbox.
 *
 * Model: each worker has a bounded ring of SP_RUNQ_CAP fibers. The owner
 * pushes at the tail and pops at the head (FIFO); any worker may steal about
 * half from the head. When the ring is full, the owner moves half of it to
 * the runtime's injection queue (a locked FIFO that also takes spawns from
 * foreign threads), which every worker checks every SP__GLOBAL_EVERY ticks
 * so nothing starves. The inbox is a locked FIFO per worker for fibers that
 * must run on that worker (pinned, or forced migration); it is never stolen
 * from. The lifo holds the newest SP__LIFO_CAP fibers spawned on the worker;
 * the owner runs the newest first (a parent that spawns children and joins
 * them runs the tree depth first, with few stacks live and hot in cache),
 * evicting the oldest to the ring when full; thieves take its oldest half.
 * Because the owner prefers the lifo, the scheduler pass (every
 * SP__GLOBAL_EVERY ticks) takes from the ring first so it cannot starve.
 * Invariants:
 *   Q1  Only the owner writes tail; head moves only by CAS.
 *   Q2  A fiber is on at most one queue, and only while RUNNABLE.
 *   Q3  tail - head <= SP_RUNQ_CAP at all times.
 *   Q4  A runtime with one worker has no thieves: its owner moves head and
 *       runnext with plain (atomic) stores, no CAS. Only the owner writes
 *       them then (foreign threads and other runtimes go through the
 *       injection queue).
 * Ordering: push stores the slot then tail with release; stealers load tail
 *   with acquire before reading slots, then CAS head (acq_rel) to claim
 *   them. Slots are accessed with relaxed atomics because a stealer may read
 *   a slot the owner is concurrently overwriting; the CAS on head discards
 *   such a read.
 * Locks: inject_lock and inbox_lock are leaves (rank QUEUE); lifo_lock is a
 *   spinlock held for a few pointer moves only (owner and thieves).
 * Rejected: a mutex per ring (steals would serialize with the owner), an
 *   unbounded lock-free deque (ABA and reclamation costs for no gain).
 */
#include <stddef.h>
#include <string.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)
#define MASK (SP_RUNQ_CAP - 1)

_Static_assert((SP_RUNQ_CAP & MASK) == 0, "SP_RUNQ_CAP must be a power of two");

bool sp__runq_empty(const sp__worker_t *w) {
  /* runnext seq_cst: sched.c S3 (a runnext push publishes by a seq_cst
   * exchange and skips the producer's fence) */
  return LOAD(&w->head, ACQUIRE) == LOAD(&w->tail, ACQUIRE) && !LOAD(&w->runnext, SEQ_CST) &&
         !LOAD(&w->nlifo, ACQUIRE);
}

static void lifo_lock(sp__worker_t *w) {
  while (__atomic_exchange_n(&w->lifo_lock, 1, __ATOMIC_ACQUIRE))
    while (LOAD(&w->lifo_lock, RELAXED)) __builtin_ia32_pause();
}

static void lifo_unlock(sp__worker_t *w) { STORE(&w->lifo_lock, 0, RELEASE); }

void sp__lifo_push(sp__worker_t *w, struct sp_fiber *f) {
  struct sp_fiber *evict = NULL;
  lifo_lock(w);
  uint32_t n = w->nlifo;
  if (n == SP__LIFO_CAP) { /* full: the oldest goes to the ring */
    evict = w->lifo[0];
    memmove(&w->lifo[0], &w->lifo[1], (SP__LIFO_CAP - 1) * sizeof w->lifo[0]);
    n--;
  }
  w->lifo[n] = f;
  STORE(&w->nlifo, n + 1, RELEASE);
  lifo_unlock(w);
  if (evict) sp__runq_push(w, evict);
}

struct sp_fiber *sp__lifo_pop(sp__worker_t *w) {
  if (!LOAD(&w->nlifo, ACQUIRE)) return NULL;
  struct sp_fiber *f = NULL;
  lifo_lock(w);
  uint32_t n = w->nlifo;
  if (n) {
    f = w->lifo[n - 1];
    STORE(&w->nlifo, n - 1, RELEASE);
  }
  lifo_unlock(w);
  return f;
}

/* Takes the oldest half of victim's lifo: one to run, the rest into w's
 * ring. A lone spawn is treated like runnext (grab): taken only with
 * take_last, and not from a worker about to run it (a parent that spawns
 * one child and joins it runs the child next; stealing it would split the
 * pair across cores, as Go avoids for its runnext, where Go puts spawns).
 * Runs on: thief (w), whose ring has room (it is stealing). */
struct sp_fiber *sp__lifo_steal(sp__worker_t *w, sp__worker_t *victim, bool take_last) {
  uint32_t have = LOAD(&victim->nlifo, ACQUIRE);
  if (!have) return NULL;
  if (have == 1) {
    if (!take_last) return NULL;
    if (LOAD(&victim->cur, RELAXED)) {
      for (int i = 0; i < 200 && LOAD(&victim->nlifo, ACQUIRE) == 1; i++)
        __builtin_ia32_pause(); /* a few microseconds */
    }
  }
  struct sp_fiber *got[SP__LIFO_CAP];
  uint32_t k = 0;
  lifo_lock(victim);
  uint32_t n = victim->nlifo;
  k = n - n / 2;
  memcpy(got, victim->lifo, k * sizeof got[0]);
  memmove(&victim->lifo[0], &victim->lifo[k], (n - k) * sizeof got[0]);
  STORE(&victim->nlifo, n - k, RELEASE);
  lifo_unlock(victim);
  for (uint32_t i = 1; i < k; i++) sp__runq_push(w, got[i]);
  return k ? got[0] : NULL;
}

/* Moves half the ring plus f to the injection queue. Returns false if a
 * stealer raced us (then the ring has room again). Runs on: owner. */
static bool push_overflow(sp__worker_t *w, struct sp_fiber *f, uint32_t h, uint32_t t) {
  uint32_t n = (t - h) / 2;
  struct sp_fiber *batch[SP_RUNQ_CAP / 2 + 1];
  for (uint32_t i = 0; i < n; i++) batch[i] = LOAD(&w->buf[(h + i) & MASK], RELAXED);
  if (!__atomic_compare_exchange_n(&w->head, &h, h + n, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_RELAXED))
    return false;
  batch[n] = f;
  for (uint32_t i = 0; i < n; i++) batch[i]->next = batch[i + 1];
  f->next = NULL;
  sp__inject_push(w->rt, batch[0], f, n + 1);
  return true;
}

void sp__runq_push(sp__worker_t *w, struct sp_fiber *f) {
  for (;;) {
    uint32_t h = LOAD(&w->head, ACQUIRE);
    uint32_t t = w->tail; /* Q1: only we write it */
    if (t - h < SP_RUNQ_CAP) {
      STORE(&w->buf[t & MASK], f, RELAXED);
      STORE(&w->tail, t + 1, RELEASE);
      return;
    }
    if (push_overflow(w, f, h, t)) return;
  }
}

struct sp_fiber *sp__runq_pop(sp__worker_t *w) {
  struct sp_fiber *f = LOAD(&w->runnext, RELAXED);
  if (w->rt->nworkers == 1) { /* Q4: no thieves, so no CAS */
    if (f) {
      STORE(&w->runnext, NULL, RELAXED);
      return f;
    }
    uint32_t h = LOAD(&w->head, RELAXED);
    if (h == w->tail) return NULL;
    f = LOAD(&w->buf[h & MASK], RELAXED);
    STORE(&w->head, h + 1, RELEASE);
    return f;
  }
  if (f && __atomic_compare_exchange_n(&w->runnext, &f, NULL, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED))
    return f;
  for (;;) {
    uint32_t h = LOAD(&w->head, ACQUIRE);
    uint32_t t = w->tail;
    if (h == t) return NULL;
    f = LOAD(&w->buf[h & MASK], RELAXED);
    if (__atomic_compare_exchange_n(&w->head, &h, h + 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
      return f;
  }
}

/* Copies about half of victim's ring into w's ring (not yet published);
 * with take_next, takes victim's runnext when its ring is empty. Returns
 * the count, 0 if nothing to take. Runs on: thief (w). */
static uint32_t grab(sp__worker_t *w, sp__worker_t *victim, bool take_next) {
  for (;;) {
    uint32_t h = LOAD(&victim->head, ACQUIRE);
    uint32_t t = LOAD(&victim->tail, ACQUIRE);
    uint32_t n = t - h;
    n -= n / 2;
    if (n == 0) {
      /* runnext last of all, and not from a worker about to run it: the
       * fiber that readied it usually blocks next (a channel handoff), and
       * stealing it would split the pair across cores (Go does the same) */
      struct sp_fiber *f = LOAD(&victim->runnext, ACQUIRE);
      if (!f || !take_next) return 0;
      if (LOAD(&victim->cur, RELAXED)) {
        for (int i = 0; i < 200 && LOAD(&victim->runnext, ACQUIRE) == f; i++)
          __builtin_ia32_pause(); /* a few microseconds */
      }
      if (!__atomic_compare_exchange_n(&victim->runnext, &f, NULL, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED))
        return 0;
      STORE(&w->buf[w->tail & MASK], f, RELAXED);
      return 1;
    }
    if (n > SP_RUNQ_CAP / 2) continue; /* inconsistent h/t read: retry */
    for (uint32_t i = 0; i < n; i++)
      STORE(&w->buf[(w->tail + i) & MASK], LOAD(&victim->buf[(h + i) & MASK], RELAXED), RELAXED);
    if (__atomic_compare_exchange_n(&victim->head, &h, h + n, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
      return n;
  }
}

struct sp_fiber *sp__runq_steal(sp__worker_t *w, sp__worker_t *victim, bool take_next) {
  uint32_t n = grab(w, victim, take_next);
  if (n == 0) return NULL;
  n--;
  uint32_t t = w->tail;
  struct sp_fiber *f = LOAD(&w->buf[(t + n) & MASK], RELAXED);
  if (n) STORE(&w->tail, t + n, RELEASE);
  return f;
}

void sp__inject_push(struct sp_runtime *rt, struct sp_fiber *head, struct sp_fiber *tail,
                     uint32_t n) {
  tail->next = NULL;
  SP_MLOCK(&rt->inject_lock, RANK_QUEUE);
  if (rt->inject_tail)
    rt->inject_tail->next = head;
  else
    rt->inject_head = head;
  rt->inject_tail = tail;
  STORE(&rt->inject_n, rt->inject_n + n, RELEASE);
  SP_MUNLOCK(&rt->inject_lock, RANK_QUEUE);
}

struct sp_fiber *sp__inject_pop(struct sp_runtime *rt, sp__worker_t *w) {
  if (LOAD(&rt->inject_n, ACQUIRE) == 0) return NULL;
  SP_MLOCK(&rt->inject_lock, RANK_QUEUE);
  uint32_t n = rt->inject_n;
  if (n == 0) {
    SP_MUNLOCK(&rt->inject_lock, RANK_QUEUE);
    return NULL;
  }
  /* take a fair share: one to run plus some for later, at most half the
   * room left in our ring (more would overflow straight back here) */
  uint32_t room = SP_RUNQ_CAP - (w->tail - LOAD(&w->head, ACQUIRE));
  uint32_t take = n / (uint32_t)rt->nworkers + 1;
  if (take > n) take = n;
  if (take > room / 2 + 1) take = room / 2 + 1;
  struct sp_fiber *f = rt->inject_head, *last = f;
  for (uint32_t i = 1; i < take; i++) last = last->next;
  rt->inject_head = last->next;
  if (!rt->inject_head) rt->inject_tail = NULL;
  STORE(&rt->inject_n, n - take, RELEASE);
  SP_MUNLOCK(&rt->inject_lock, RANK_QUEUE);
  /* push outside the lock: an overflowing push takes inject_lock itself */
  for (struct sp_fiber *g = f != last ? f->next : NULL; g;) {
    struct sp_fiber *next = g == last ? NULL : g->next;
    sp__runq_push(w, g);
    g = next;
  }
  return f;
}

void sp__inbox_push(sp__worker_t *w, struct sp_fiber *f) {
  f->next = NULL;
  SP_MLOCK(&w->inbox_lock, RANK_QUEUE);
  if (w->inbox_tail)
    w->inbox_tail->next = f;
  else
    w->inbox_head = f;
  w->inbox_tail = f;
  STORE(&w->inbox_n, w->inbox_n + 1, RELEASE);
  SP_MUNLOCK(&w->inbox_lock, RANK_QUEUE);
}

struct sp_fiber *sp__inbox_pop(sp__worker_t *w) {
  if (LOAD(&w->inbox_n, ACQUIRE) == 0) return NULL;
  SP_MLOCK(&w->inbox_lock, RANK_QUEUE);
  struct sp_fiber *f = w->inbox_head;
  if (f) {
    w->inbox_head = f->next;
    if (!w->inbox_head) w->inbox_tail = NULL;
    STORE(&w->inbox_n, w->inbox_n - 1, RELEASE);
  }
  SP_MUNLOCK(&w->inbox_lock, RANK_QUEUE);
  return f;
}
