/*
 * sp_retry.h: retry with exponential backoff (cenkalti/backoff,
 * "Exponential Backoff And Jitter" of the AWS architecture blog).
 *
 * sp_retry calls op until it returns >= 0, sleeping between attempts. The
 * k-th sleep (k = 1, 2, ...) is based on
 *     base_k = min(max_delay, initial_delay * multiplier^(k-1))
 * with jitter applied:
 *     SP_RETRY_JITTER_NONE          base_k
 *     SP_RETRY_JITTER_FULL          uniform in [0, base_k]
 *     SP_RETRY_JITTER_PROPORTIONAL  uniform in [base_k * (1 - f), base_k * (1 + f)],
 *                                   f = jitter_fraction, capped at max_delay
 * The random numbers come from a generator of the call's own, seeded with
 * policy.seed (the same seed gives the same delays) or, when it is 0, from
 * the clock.
 *
 * It stops, and returns, at the first of:
 *   - op succeeds: op's result (>= 0);
 *   - op fails with a permanent error (op returned SP_RETRY_PERMANENT(err),
 *     or policy.permanent(err) said so): err;
 *   - max_attempts calls were made: op's last error;
 *   - the next attempt could not start before policy.deadline: op's last
 *     error (no pointless last sleep); -ETIMEDOUT if the deadline passed
 *     before the first attempt;
 *   - the context bound to the calling fiber (sp_ctx.h) is cancelled,
 *     before an attempt, after one, or during a sleep (which ends at once):
 *     the context's error (-ECANCELED, -ETIMEDOUT for its deadline, or the
 *     cancel cause); op's last error is in sp_retry_result_t.last_err.
 *
 * Works from fibers (the sleeps park) and foreign threads (they sleep).
 * The policy is only read, so one policy may serve concurrent calls.
 */
#ifndef SP_RETRY_H
#define SP_RETRY_H

#include <stdint.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SP_RETRY_JITTER_NONE = 0, SP_RETRY_JITTER_FULL = 1, SP_RETRY_JITTER_PROPORTIONAL = 2 };

/* Why sp_retry stopped (sp_retry_result_t.stop). */
enum {
  SP_RETRY_OK = 0,        /* op succeeded */
  SP_RETRY_PERMANENT = 1, /* op failed with a permanent error */
  SP_RETRY_EXHAUSTED = 2, /* max_attempts made */
  SP_RETRY_DEADLINE = 3,  /* no time left for another attempt */
  SP_RETRY_CANCELED = 4   /* the bound context was cancelled */
};

/* What op returns to make err (< 0) permanent: sp_retry stops at once and
 * returns err itself. Encoded as err with bit 20 set in its magnitude, so
 * it stays negative and errno codes (< 4096) do not collide with it. */
#define SP_RETRY_PERMANENT_BIT 0x100000
#define SP_RETRY_PERMANENT(err) (-(-(err) | SP_RETRY_PERMANENT_BIT))

/* The operation: attempt counts from 1; deadline is the policy's, to pass
 * down to the blocking calls op makes. Returns >= 0 on success, else a
 * negative error (or SP_RETRY_PERMANENT(error)). */
typedef int (*sp_retry_fn)(void *arg, int attempt, int64_t deadline);

typedef struct sp_retry_policy {
  int max_attempts;        /* calls of op in all, first included; 0 = no limit */
  int64_t initial_delay;   /* ns: the first sleep's base */
  double multiplier;       /* growth of the base per attempt, >= 1 */
  int64_t max_delay;       /* ns: cap of every sleep; 0 = no cap */
  int jitter;              /* SP_RETRY_JITTER_* */
  double jitter_fraction;  /* PROPORTIONAL: f in [0, 1] */
  int64_t deadline;        /* absolute; SP_FOREVER: none */
  uint64_t seed;           /* 0: seeded from the clock */
  /* Non-zero when err (< 0) is permanent; NULL: only SP_RETRY_PERMANENT. */
  int (*permanent)(int err, void *arg);
  /* Called before each sleep: the attempt that failed, its error, the
   * sleep (ns). NULL: none. May block. */
  void (*notify)(int attempt, int err, int64_t delay, void *arg);
  void *arg; /* passed to permanent and notify */
} sp_retry_policy_t;

/* What happened (sp_retry's out parameter, may be NULL). */
typedef struct sp_retry_result {
  int attempts; /* calls of op made */
  int last_err; /* op's last result (0 if op was never called) */
  int stop;     /* SP_RETRY_OK, _PERMANENT, ... */
} sp_retry_result_t;

/* Defaults: 5 attempts, 100 ms initial delay, multiplier 2, 10 s max delay,
 * full jitter (fraction 0.5 if switched to proportional), no deadline,
 * seeded from the clock, no predicate, no notify. */
SP_API void sp_retry_policy_init(sp_retry_policy_t *p);

/* Runs op(arg, attempt, deadline) under policy p (NULL: the defaults) as
 * described above. Returns op's result (>= 0), op's last or permanent
 * error, the context's error, -ETIMEDOUT (deadline passed before the
 * first attempt), or -EINVAL (op NULL, max_attempts < 0, delays < 0,
 * multiplier < 1 or not finite, unknown jitter, fraction outside [0, 1]).
 * Suspends: yes (between attempts, and in op). */
SP_API int sp_retry(const sp_retry_policy_t *p, sp_retry_fn op, void *arg, sp_retry_result_t *res);

/* The k-th sleep sp_retry would take (k >= 1) for the given uniform random
 * number u in [0, 1): for tests and for callers that run their own loop.
 * -EINVAL for a bad policy or k < 1. */
SP_API int64_t sp_retry_delay(const sp_retry_policy_t *p, int k, double u);

#ifdef __cplusplus
}
#endif
#endif /* SP_RETRY_H */
