/*
 * breaker.c: sp_breaker_t, a circuit breaker (sp_breaker.h).
 *
 * Model: a state machine under one bookkeeping lock (patterns_impl.h).
 * Every transition bumps gen and resets the counters of the state entered;
 * allow stamps its ticket with gen, and record counts a result only when
 * the ticket's gen is still current. OPEN ends lazily: whoever takes the
 * lock at or after reopen_at moves it to HALF_OPEN.
 * Invariants:
 *   B1  failures counts consecutive failures of CLOSED-generation calls;
 *       failures < failure_threshold while CLOSED.
 *   B2  While HALF_OPEN, 0 <= successes <= trials <= half_open_max: trials
 *       is the slots handed out in this generation (minus ignored ones),
 *       successes the trials that succeeded.
 *   B3  A ticket counts at most once: record of a current-generation
 *       ticket either ends the generation (a transition) or adjusts the
 *       counters of the state that issued it.
 * Locks: lk, held for a few stores and for the user's on_change/classify
 *   callbacks (which must not block); never across a switch.
 * Rejected: an atomic state word without a lock (the half-open slot count
 *   and the generation must change together with the state, and on_change
 *   must see transitions in order).
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/patterns_impl.h"
#include "sync/sp_breaker.h"

struct sp_breaker {
  pthread_mutex_t lk;
  int threshold;
  int64_t open_timeout;
  int half_open_max;
  int (*classify)(int result, void *arg);
  void (*on_change)(sp_breaker_t *b, int from, int to, void *arg);
  void *arg;
  /* guarded by lk */
  int state;
  uint64_t gen;
  int failures;      /* B1 */
  int trials;        /* B2 */
  int successes;     /* B2 */
  int64_t reopen_at; /* OPEN: when it becomes HALF_OPEN */
};

void sp_breaker_config_init(sp_breaker_config_t *cfg) {
  if (cfg) *cfg = (sp_breaker_config_t){0};
}

int sp_breaker_create(sp_breaker_t **out, const sp_breaker_config_t *cfg) {
  if (!out) return -EINVAL;
  sp_breaker_config_t c = {0};
  if (cfg) c = *cfg;
  if (c.failure_threshold < 0 || c.open_timeout < 0 || c.half_open_max < 0) return -EINVAL;
  sp_breaker_t *b = calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  pthread_mutex_init(&b->lk, NULL);
  b->threshold = c.failure_threshold ? c.failure_threshold : 5;
  b->open_timeout = c.open_timeout ? c.open_timeout : 1000000000LL;
  b->half_open_max = c.half_open_max ? c.half_open_max : 1;
  b->classify = c.classify;
  b->on_change = c.on_change;
  b->arg = c.arg;
  b->state = SP_BREAKER_CLOSED;
  b->gen = 1;
  *out = b;
  return 0;
}

void sp_breaker_free(sp_breaker_t *b) {
  if (!b) return;
  pthread_mutex_destroy(&b->lk);
  free(b);
}

/* Enters state `to`: a new generation with fresh counters, then tells the
 * user. Runs on: any thread. Locks: lk held. Switches: no. */
static void transition(sp_breaker_t *b, int to, int64_t now) {
  int from = b->state;
  b->state = to;
  b->gen++;
  b->failures = b->trials = b->successes = 0;
  if (to == SP_BREAKER_OPEN) /* saturating: a huge timeout means open for ever */
    b->reopen_at = b->open_timeout > INT64_MAX - now ? INT64_MAX : now + b->open_timeout;
  if (b->on_change) b->on_change(b, from, to, b->arg);
}

/* Ends an expired OPEN. Runs on: any thread. Locks: lk held. Switches: no. */
static void settle(sp_breaker_t *b, int64_t now) {
  if (b->state == SP_BREAKER_OPEN && now >= b->reopen_at) transition(b, SP_BREAKER_HALF_OPEN, now);
}

int sp_breaker_allow(sp_breaker_t *b, sp_breaker_ticket_t *t) {
  if (!b || !t) return -EINVAL;
  int r = 0;
  pat_lock(&b->lk);
  settle(b, sp_now());
  switch (b->state) {
  case SP_BREAKER_OPEN:
    r = -ECONNREFUSED;
    break;
  case SP_BREAKER_HALF_OPEN:
    if (b->trials < b->half_open_max)
      b->trials++;
    else
      r = -EBUSY;
    break;
  default:
    break;
  }
  if (r == 0) *t = (sp_breaker_ticket_t){.gen = b->gen, .state = b->state};
  pat_unlock(&b->lk);
  return r;
}

/* Counts one current-generation result (B3). Runs on: any thread.
 * Locks: lk held. Switches: no. */
static void count(sp_breaker_t *b, int kind, int64_t now) {
  if (b->state == SP_BREAKER_CLOSED) {
    if (kind == SP_BREAKER_SUCCESS) {
      b->failures = 0;
    } else if (kind == SP_BREAKER_FAILURE && ++b->failures >= b->threshold) {
      transition(b, SP_BREAKER_OPEN, now);
    }
    return;
  }
  /* HALF_OPEN (tickets are never issued while OPEN) */
  if (kind == SP_BREAKER_IGNORE) {
    b->trials--;
  } else if (kind == SP_BREAKER_FAILURE) {
    transition(b, SP_BREAKER_OPEN, now);
  } else if (++b->successes >= b->half_open_max) {
    transition(b, SP_BREAKER_CLOSED, now);
  }
}

int sp_breaker_record(sp_breaker_t *b, const sp_breaker_ticket_t *t, int result) {
  if (!b || !t) return -EINVAL;
  pat_lock(&b->lk);
  int64_t now = sp_now();
  settle(b, now);
  if (t->gen != b->gen) {
    pat_unlock(&b->lk);
    return -ESTALE;
  }
  int kind = b->classify ? b->classify(result, b->arg)
                         : (result < 0 ? SP_BREAKER_FAILURE : SP_BREAKER_SUCCESS);
  if (kind != SP_BREAKER_SUCCESS && kind != SP_BREAKER_IGNORE) kind = SP_BREAKER_FAILURE;
  count(b, kind, now);
  pat_unlock(&b->lk);
  return 0;
}

int sp_breaker_call(sp_breaker_t *b, int (*fn)(void *arg), void *arg) {
  if (!fn) return -EINVAL;
  sp_breaker_ticket_t t;
  int r = sp_breaker_allow(b, &t);
  if (r < 0) return r;
  r = fn(arg);
  sp_breaker_record(b, &t, r);
  return r;
}

int sp_breaker_state(sp_breaker_t *b) {
  if (!b) return -EINVAL;
  pat_lock(&b->lk);
  settle(b, sp_now());
  int s = b->state;
  pat_unlock(&b->lk);
  return s;
}

const char *sp_breaker_state_name(int state) {
  switch (state) {
  case SP_BREAKER_CLOSED: return "closed";
  case SP_BREAKER_OPEN: return "open";
  case SP_BREAKER_HALF_OPEN: return "half-open";
  default: return "?";
  }
}
