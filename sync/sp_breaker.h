/*
 * sp_breaker.h: a circuit breaker (sony/gobreaker, Polly's CircuitBreaker).
 *
 * States:
 *   CLOSED     calls pass; failure_threshold consecutive failures open it.
 *   OPEN       calls are rejected with -ECONNREFUSED; open_timeout after
 *              it opened, it becomes HALF_OPEN.
 *   HALF_OPEN  up to half_open_max trial calls pass, further callers are
 *              rejected with -EBUSY until the trials are recorded; one
 *              failed trial opens it again (for another open_timeout),
 *              half_open_max successful trials close it.
 * Nothing runs in the background: OPEN becomes HALF_OPEN in the first call
 * (allow, record or state) made at or after the timeout.
 *
 * A call is bracketed by sp_breaker_allow, which hands out a ticket, and
 * sp_breaker_record with that ticket and the call's result. Tickets carry
 * the generation they were issued in (every state change starts a new one):
 * the result of a call allowed in an older generation is ignored
 * (-ESTALE), so a slow call let through while CLOSED can neither close a
 * HALF_OPEN breaker nor use up its trial. Every allowed call must be
 * recorded: a HALF_OPEN trial that is never recorded keeps its slot (record
 * it with a result the classifier ignores if the call was abandoned).
 *
 * Results are classified by config.classify (default: < 0 failure, >= 0
 * success); SP_BREAKER_IGNORE counts for nothing and frees a trial slot
 * (for example -ECANCELED: the caller gave up, which says nothing about the
 * service).
 *
 * Safe from any number of fibers and foreign threads at once; no call
 * suspends. The rejection codes may also be results of the protected call
 * itself: callers that must tell them apart use allow/record, not
 * sp_breaker_call.
 */
#ifndef SP_BREAKER_H
#define SP_BREAKER_H

#include <stdint.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_breaker sp_breaker_t;

enum { SP_BREAKER_CLOSED = 0, SP_BREAKER_OPEN = 1, SP_BREAKER_HALF_OPEN = 2 };
enum { SP_BREAKER_SUCCESS = 0, SP_BREAKER_FAILURE = 1, SP_BREAKER_IGNORE = 2 };

typedef struct sp_breaker_config {
  /* Consecutive failures that open a closed breaker; 0 = 5. */
  int failure_threshold;
  /* How long it stays open before trials are let through (ns); 0 = 1 s. */
  int64_t open_timeout;
  /* Trial calls let through at once while half-open, and successes that
   * close it; 0 = 1. */
  int half_open_max;
  /* Classifies a recorded result: SP_BREAKER_SUCCESS, _FAILURE or _IGNORE.
   * NULL: result < 0 is a failure. Called under the breaker's lock: must
   * not block or call into the breaker. */
  int (*classify)(int result, void *arg);
  /* Called on every state change (from, to), under the breaker's lock, in
   * the order the changes happen, on the thread whose call caused it: must
   * not block or call into the breaker. NULL: none. */
  void (*on_change)(sp_breaker_t *b, int from, int to, void *arg);
  void *arg; /* passed to classify and on_change */
} sp_breaker_config_t;

/* What sp_breaker_allow hands out; pass it to sp_breaker_record. */
typedef struct sp_breaker_ticket {
  uint64_t gen;
  int state; /* the state the call was let through in */
} sp_breaker_ticket_t;

/* Fills *cfg with the defaults (all zero). */
SP_API void sp_breaker_config_init(sp_breaker_config_t *cfg);

/* Makes a closed breaker; cfg may be NULL (defaults). Returns 0, -EINVAL
 * (out NULL, a negative field), -ENOMEM. */
SP_API int sp_breaker_create(sp_breaker_t **out, const sp_breaker_config_t *cfg);
/* Frees b (NULL: nothing). No call may be in progress on it. */
SP_API void sp_breaker_free(sp_breaker_t *b);

/* Asks to make a call. Returns 0 (go ahead; *t filled), -ECONNREFUSED
 * (open), -EBUSY (half-open and every trial slot is taken), -EINVAL. */
SP_API int sp_breaker_allow(sp_breaker_t *b, sp_breaker_ticket_t *t);
/* Records the result of the call *t allowed. Returns 0 (counted or ignored
 * by the classifier), -ESTALE (the state changed since allow: not
 * counted), -EINVAL. */
SP_API int sp_breaker_record(sp_breaker_t *b, const sp_breaker_ticket_t *t, int result);
/* allow, fn(arg), record: fn's result, or allow's rejection code (fn is
 * then not called). Suspends: if fn does. */
SP_API int sp_breaker_call(sp_breaker_t *b, int (*fn)(void *arg), void *arg);

/* The state now (an expired OPEN becomes HALF_OPEN here); -EINVAL. */
SP_API int sp_breaker_state(sp_breaker_t *b);
/* "closed", "open", "half-open" or "?". */
SP_API const char *sp_breaker_state_name(int state);

#ifdef __cplusplus
}
#endif
#endif /* SP_BREAKER_H */
