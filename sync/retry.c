/*
 * retry.c: sp_retry, retry with exponential backoff (sp_retry.h).
 *
 * Model: a loop of named steps: check the context, call op, classify the
 * result, compute the next delay, give up if it would end past the
 * deadline, sleep. All state is the call's own (attempt count, generator),
 * so calls share nothing and need no lock.
 * Invariants:
 *   T1  op is never called while the bound context is cancelled, and a
 *       cancellation during a sleep ends the sleep (sp_sleep_until is a
 *       cancellation point) and the call.
 *   T2  0 <= every delay <= max_delay (when set) and <= DELAY_MAX, so
 *       now + delay never overflows.
 * Sleeping: sp_sleep_until in a fiber; clock_nanosleep (absolute, on the
 *   same CLOCK_MONOTONIC as sp_now) on a foreign thread, where
 *   sp_sleep_until answers -EPERM and no context can be bound.
 * Rejected: sleeping with a relative time (a late wake-up would make every
 *   later deadline check wrong); a process-wide generator (calls would
 *   contend on it, and a seed could not reproduce a run).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <time.h>

#include "sync/patterns_impl.h"
#include "sync/sp_retry.h"

#define DELAY_MAX ((int64_t)1 << 62) /* T2: about 146 years */

void sp_retry_policy_init(sp_retry_policy_t *p) {
  if (!p) return;
  *p = (sp_retry_policy_t){
      .max_attempts = 5,
      .initial_delay = 100000000LL,
      .multiplier = 2.0,
      .max_delay = 10000000000LL,
      .jitter = SP_RETRY_JITTER_FULL,
      .jitter_fraction = 0.5,
      .deadline = SP_FOREVER,
  };
}

/* Whether p is a policy sp_retry accepts (sp_retry.h). */
static bool policy_ok(const sp_retry_policy_t *p) {
  return p->max_attempts >= 0 && p->initial_delay >= 0 && p->max_delay >= 0 &&
         isfinite(p->multiplier) && p->multiplier >= 1.0 &&
         (p->jitter == SP_RETRY_JITTER_NONE || p->jitter == SP_RETRY_JITTER_FULL ||
          p->jitter == SP_RETRY_JITTER_PROPORTIONAL) &&
         p->jitter_fraction >= 0.0 && p->jitter_fraction <= 1.0;
}

/* splitmix64: a fresh, well-mixed stream from any seed (0 included). */
static uint64_t next_random(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(next_random(s) >> 11) * 0x1.0p-53; }

int64_t sp_retry_delay(const sp_retry_policy_t *p, int k, double u) {
  if (!p || k < 1 || !policy_ok(p)) return -EINVAL;
  double cap = p->max_delay ? (double)p->max_delay : (double)DELAY_MAX;
  double base = fmin((double)p->initial_delay * pow(p->multiplier, k - 1), cap);
  double d = base;
  if (p->jitter == SP_RETRY_JITTER_FULL)
    d = base * u;
  else if (p->jitter == SP_RETRY_JITTER_PROPORTIONAL)
    d = base * (1.0 - p->jitter_fraction + 2.0 * p->jitter_fraction * u);
  d = fmin(fmax(d, 0.0), cap); /* T2 */
  return d >= (double)DELAY_MAX ? DELAY_MAX : (int64_t)d;
}

/* Sleeps until t: 0, or the bound context's error (T1). Runs on: a fiber
 * or a foreign thread. Switches: yes. */
static int sleep_until(int64_t t) {
  int r = sp_sleep_until(t);
  if (r != -EPERM) return r;
  struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
  return 0;
}

/* Splits op's result into the error and whether it is permanent. Runs on:
 * the caller. Switches: no (p->permanent should not block). */
static int classify(const sp_retry_policy_t *p, int r, bool *permanent) {
  *permanent = false;
  if (r < 0 && r != INT_MIN && (-r & SP_RETRY_PERMANENT_BIT)) {
    *permanent = true;
    int err = -(-r & ~SP_RETRY_PERMANENT_BIT);
    return err ? err : -EINVAL; /* SP_RETRY_PERMANENT(0) is a misuse */
  }
  if (r < 0 && p->permanent && p->permanent(r, p->arg)) *permanent = true;
  return r;
}

int sp_retry(const sp_retry_policy_t *pp, sp_retry_fn op, void *arg, sp_retry_result_t *res) {
  sp_retry_policy_t p;
  if (pp) p = *pp;
  else sp_retry_policy_init(&p);
  sp_retry_result_t out = {0};
  if (!op || !policy_ok(&p)) return -EINVAL;
  uint64_t rng = p.seed ? p.seed : (uint64_t)sp_now() ^ (uint64_t)(uintptr_t)&rng;
  int r;
  for (;;) {
    int e = pat_ctx_err(); /* T1 */
    if (e) {
      out.stop = SP_RETRY_CANCELED;
      r = e;
      break;
    }
    if (out.attempts == 0 && pat_expired(p.deadline, sp_now())) {
      out.stop = SP_RETRY_DEADLINE;
      r = -ETIMEDOUT;
      break;
    }
    bool permanent;
    r = out.last_err = classify(&p, op(arg, ++out.attempts, p.deadline), &permanent);
    if (r >= 0 || permanent) {
      out.stop = r >= 0 ? SP_RETRY_OK : SP_RETRY_PERMANENT;
      break;
    }
    if ((e = pat_ctx_err()) != 0) { /* op was cut short by it, most likely */
      out.stop = SP_RETRY_CANCELED;
      r = e;
      break;
    }
    if (p.max_attempts && out.attempts >= p.max_attempts) {
      out.stop = SP_RETRY_EXHAUSTED;
      break;
    }
    int64_t delay = sp_retry_delay(&p, out.attempts, uniform(&rng));
    int64_t wake = sp_now() + delay;
    if (pat_expired(p.deadline, wake)) {
      out.stop = SP_RETRY_DEADLINE;
      break;
    }
    if (p.notify) p.notify(out.attempts, r, delay, p.arg);
    if ((e = sleep_until(wake)) < 0) {
      int c = pat_ctx_err();
      out.stop = SP_RETRY_CANCELED;
      r = c ? c : e;
      break;
    }
  }
  if (res) *res = out;
  return r;
}
