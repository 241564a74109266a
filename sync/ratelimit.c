/*
 * ratelimit.c: sp_ratelimit_t, a token bucket with a FIFO of waiters.
 *
 * Model: the bucket is one time, empty_at: the bucket holds
 * (now - empty_at) / rate tokens, at most burst (GCRA's virtual time).
 * Taking n tokens moves empty_at forward by cost(n) = ceil(n * 1e9 / rate)
 * ns, so the time at which n tokens will be there is exactly
 * empty_at + cost(n), and a long run grants rate tokens per second however
 * late the waiters wake. Waiters queue in arrival order; only the head may
 * take tokens. It sleeps until empty_at + cost(n) (or its deadline) on a
 * semaphore of its own, then takes them, unlinks itself and signals the
 * new head. The others sleep until signalled (they became head) or their
 * deadline.
 * Invariants:
 *   R1  empty_at >= now - cost(burst) after every clamp (the bucket never
 *       holds more than burst).
 *   R2  Tokens are taken only by the head waiter, or by a caller that found
 *       the queue empty (FIFO; try never overtakes a waiter).
 *   R3  A waiter is linked from entering the queue until it leaves it
 *       under lk; whoever unlinks the head signals the new head, so a head
 *       is never left asleep until its deadline while its tokens are there.
 *   R4  A waiter's semaphore is released only under lk and only while it is
 *       linked (its frame is alive); `signalled` (under lk) keeps it to one
 *       outstanding release.
 * Locks: lk (bookkeeping, patterns_impl.h), never across a switch; a
 *   waiter's semaphore is released under lk (sp_sema_release does not
 *   suspend).
 * Rejected: reservations (x/time/rate's Reserve: take now, sleep until the
 *   debt is paid): a waiter cancelled or timed out could not give its
 *   tokens back once later reservations were computed from them. One
 *   sp_cond for all waiters: broadcasting to find the head is a thundering
 *   herd, and sp_cond needs an sp_mutex (patterns_impl.h).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "sync/patterns_impl.h"
#include "sync/sp_ratelimit.h"
#include "sync/sp_sync.h"

typedef struct waiter {
  struct waiter *next;
  int64_t n;
  sp_sema_t sig; /* size 1, held: a release wakes the waiter (R4) */
  bool signalled;
} waiter_t;

struct sp_ratelimit {
  pthread_mutex_t lk;
  double rate;
  int64_t burst;
  int64_t full_cost; /* cost(burst) */
  /* guarded by lk */
  int64_t empty_at; /* R1 */
  waiter_t *head, *tail;
  int64_t nwait;
};

/* Longest refill accepted (ns): empty_at + cost never overflows. */
#define MAX_COST ((int64_t)50 * 365 * 24 * 3600 * 1000000000LL)

/* Nanoseconds the bucket needs to refill n tokens (rounded up, so n tokens
 * are never granted early). Runs on: any thread. Locks: none. */
static int64_t cost(const sp_ratelimit_t *rl, int64_t n) {
  return (int64_t)ceil((double)n * 1e9 / rl->rate);
}

int sp_ratelimit_create(sp_ratelimit_t **out, double rate, int64_t burst) {
  if (!out || !(rate > 0) || !isfinite(rate) || burst < 1) return -EINVAL;
  if ((double)burst * 1e9 / rate > (double)MAX_COST) return -EINVAL;
  sp_ratelimit_t *rl = calloc(1, sizeof *rl);
  if (!rl) return -ENOMEM;
  pthread_mutex_init(&rl->lk, NULL);
  rl->rate = rate;
  rl->burst = burst;
  rl->full_cost = cost(rl, burst);
  rl->empty_at = sp_now() - rl->full_cost; /* full */
  *out = rl;
  return 0;
}

int sp_ratelimit_free(sp_ratelimit_t *rl) {
  if (!rl) return -EINVAL;
  pat_lock(&rl->lk);
  bool busy = rl->head != NULL;
  pat_unlock(&rl->lk);
  if (busy) return -EBUSY;
  pthread_mutex_destroy(&rl->lk);
  free(rl);
  return 0;
}

/* Takes n tokens if the bucket holds them at now (R1 clamp first).
 * Runs on: any thread. Locks: lk held. Switches: no. */
static bool take(sp_ratelimit_t *rl, int64_t n, int64_t now) {
  if (rl->empty_at < now - rl->full_cost) rl->empty_at = now - rl->full_cost;
  int64_t c = cost(rl, n);
  if (now - rl->empty_at < c) return false;
  rl->empty_at += c;
  return true;
}

/* Wakes w if it sleeps (R4). Runs on: any thread. Locks: lk held.
 * Switches: no. */
static void signal_waiter(waiter_t *w) {
  if (!w || w->signalled) return;
  w->signalled = true;
  sp_sema_release(&w->sig, 1);
}

/* Unlinks w; if it was the head, signals the new one (R3). Runs on: w's
 * owner. Locks: lk held. Switches: no. */
static void leave(sp_ratelimit_t *rl, waiter_t *w) {
  waiter_t **pp = &rl->head, *prev = NULL;
  while (*pp != w) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  bool was_head = rl->head == w;
  *pp = w->next;
  if (rl->tail == w) rl->tail = prev;
  rl->nwait--;
  if (was_head) signal_waiter(rl->head);
}

/* Waits in line until w's tokens are taken (0), its deadline passes
 * (-ETIMEDOUT) or the bound context is cancelled (its error); w is
 * still linked on return (the caller unlinks it). Runs on: w's owner, a
 * fiber or a foreign thread. Locks: lk held on entry and return, dropped
 * while asleep. Switches: yes. */
static int wait_turn(sp_ratelimit_t *rl, waiter_t *w, int64_t deadline) {
  for (;;) {
    int64_t now = sp_now(), until = deadline;
    if (rl->head == w) {
      if (take(rl, w->n, now)) return 0;
      until = pat_min_deadline(rl->empty_at + cost(rl, w->n), deadline);
    }
    if (pat_expired(deadline, now)) return -ETIMEDOUT;
    pat_unlock(&rl->lk);
    int r = sp_sema_acquire(&w->sig, 1, until);
    pat_lock(&rl->lk);
    if (r == 0) {
      w->signalled = false;
    } else if (r == -ETIMEDOUT || r == -EAGAIN) { /* until passed: look again */
      int e = pat_ctx_err(); /* or the context's deadline did */
      if (e) return e;
    } else {
      return r; /* the context was cancelled */
    }
  }
}

int sp_ratelimit_acquire(sp_ratelimit_t *rl, int64_t n, int64_t deadline) {
  if (!rl || n < 0 || n > rl->burst) return -EINVAL;
  int e = pat_ctx_err();
  if (e) return e;
  if (n == 0) return 0;
  pat_lock(&rl->lk);
  if (!rl->head && take(rl, n, sp_now())) {
    pat_unlock(&rl->lk);
    return 0;
  }
  if (deadline == 0) {
    pat_unlock(&rl->lk);
    return -EAGAIN;
  }
  waiter_t w = {.n = n};
  sp_sema_init(&w.sig, 1);
  sp_sema_acquire(&w.sig, 1, 0); /* held: the next acquire waits (R4) */
  if (rl->tail)
    rl->tail->next = &w;
  else
    rl->head = &w;
  rl->tail = &w;
  rl->nwait++;
  int r = wait_turn(rl, &w, deadline);
  leave(rl, &w);
  pat_unlock(&rl->lk);
  return r;
}

int sp_ratelimit_try(sp_ratelimit_t *rl, int64_t n) {
  if (!rl || n < 0 || n > rl->burst) return -EINVAL;
  if (n == 0) return 0;
  pat_lock(&rl->lk);
  int r = !rl->head && take(rl, n, sp_now()) ? 0 : -EAGAIN; /* R2 */
  pat_unlock(&rl->lk);
  return r;
}

int64_t sp_ratelimit_tokens(sp_ratelimit_t *rl) {
  if (!rl) return -EINVAL;
  pat_lock(&rl->lk);
  int64_t have = sp_now() - rl->empty_at;
  pat_unlock(&rl->lk);
  if (have >= rl->full_cost) return rl->burst;
  int64_t t = (int64_t)floor((double)have * rl->rate / 1e9);
  /* never more than take() would grant */
  while (t > 0 && cost(rl, t) > have) t--;
  return t < 0 ? 0 : t;
}

int64_t sp_ratelimit_waiting(sp_ratelimit_t *rl) {
  if (!rl) return -EINVAL;
  pat_lock(&rl->lk);
  int64_t n = rl->nwait;
  pat_unlock(&rl->lk);
  return n;
}
