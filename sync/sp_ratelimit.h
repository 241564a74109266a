/*
 * sp_ratelimit.h: a token-bucket rate limiter (golang.org/x/time/rate).
 *
 * The bucket holds up to burst tokens, starts full, and refills at rate
 * tokens per second (fractional rates such as 0.5 work; times are kept to
 * the nanosecond). A request for n tokens is granted once the bucket holds
 * n; the tokens are then taken.
 *
 * Fairness: waiters are served first come, first served, a large request
 * is not overtaken by small ones, and sp_ratelimit_try never takes tokens
 * while anyone waits. A waiter does not poll: the first in line sleeps
 * until the exact time its tokens will be there, the others until they are
 * first in line or their deadline passes.
 *
 * Works from fibers (they park) and foreign threads (they block), from any
 * number at once. A fiber bound to a context (sp_ctx.h) returns the
 * context's error (-ECANCELED, -ETIMEDOUT, or the cancel cause) as soon as
 * it is cancelled, and at once if it already is.
 */
#ifndef SP_RATELIMIT_H
#define SP_RATELIMIT_H

#include <stdint.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_ratelimit sp_ratelimit_t;

/* Makes a full bucket of burst tokens refilled at rate tokens per second.
 * Returns 0, -EINVAL (out NULL, rate not > 0 or not finite, burst < 1, or
 * burst tokens would take over 50 years to refill), -ENOMEM. */
SP_API int sp_ratelimit_create(sp_ratelimit_t **out, double rate, int64_t burst);
/* Frees rl. Returns 0, -EBUSY (someone waits: not freed), -EINVAL. */
SP_API int sp_ratelimit_free(sp_ratelimit_t *rl);

/* Takes n tokens, waiting in line until they are there or the deadline
 * passes. Returns 0, -ETIMEDOUT (deadline passed first: nothing taken),
 * -EAGAIN (deadline 0 and they are not there now), -EINVAL (NULL, n < 0,
 * n > burst: could never succeed), or the bound context's error (nothing
 * taken). n == 0 succeeds at once. Suspends: yes. */
SP_API int sp_ratelimit_acquire(sp_ratelimit_t *rl, int64_t n, int64_t deadline);
/* Takes n tokens if they are there now and nobody waits. Returns 0,
 * -EAGAIN, -EINVAL. Suspends: no. */
SP_API int sp_ratelimit_try(sp_ratelimit_t *rl, int64_t n);

/* Whole tokens in the bucket now (waiters not subtracted); -EINVAL. */
SP_API int64_t sp_ratelimit_tokens(sp_ratelimit_t *rl);
/* Fibers and threads waiting in acquire now; -EINVAL. */
SP_API int64_t sp_ratelimit_waiting(sp_ratelimit_t *rl);

#ifdef __cplusplus
}
#endif
#endif /* SP_RATELIMIT_H */
