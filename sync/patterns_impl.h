/*
 * patterns_impl.h: what the service patterns (sp_breaker.h, sp_ratelimit.h,
 * sp_retry.h, sp_pool.h) share; private to //sync:patterns.
 *
 * Bookkeeping lock: a pthread mutex held for a few loads and stores, never
 * across a switch point (nothing between lock and unlock can suspend), so a
 * worker thread blocks on it at most for that long.
 * Rejected: an sp_mutex_t. Under a cancelled sp_ctx every wait of a bound
 * fiber fails at once, a contended sp_mutex_lock included, and bookkeeping
 * must never be skipped: a breaker's trial result that is not recorded
 * leaves it half-open for ever, a rate-limiter waiter that cannot unlink
 * itself leaves a dangling pointer to its stack in the queue.
 */
#ifndef SP_SYNC_PATTERNS_IMPL_H
#define SP_SYNC_PATTERNS_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "runtime/sp_runtime.h"
#include "sync/sp_ctx.h"

/* The error of the context bound to the calling fiber: 0 when none is
 * bound (or on a foreign thread) or it is live. */
static inline int pat_ctx_err(void) {
  sp_ctx_t *c = sp_ctx_current();
  return c ? sp_ctx_err(c) : 0;
}

/* The earlier of two deadlines (SP_FOREVER, or any negative, is latest). */
static inline int64_t pat_min_deadline(int64_t a, int64_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

/* A deadline that has passed (SP_FOREVER never does). */
static inline int pat_expired(int64_t deadline, int64_t now) {
  return deadline >= 0 && now >= deadline;
}

static inline void pat_lock(pthread_mutex_t *m) {
  if (pthread_mutex_lock(m) != 0) __builtin_trap(); /* only on a corrupt mutex */
}
static inline void pat_unlock(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

#endif /* SP_SYNC_PATTERNS_IMPL_H */
