/*
 * sp_time.h: timers and tickers that deliver on channels (Go's time.Timer,
 * time.Ticker, time.AfterFunc), for use in sp_select beside other cases.
 *
 * A timer sends the time it fired (int64_t, sp_now() clock) on its channel,
 * which has room for one value: a tick nobody has read yet makes later
 * ticks be dropped (a slow reader of a ticker sees fewer ticks, never a
 * backlog), as in Go. Stop and reset also drain an unread value, so after
 * them the channel never delivers a stale time (Go 1.23 semantics).
 * Timers run on the runtime's timer heaps: no fiber or thread per timer
 * (an after-func timer starts one fiber when it fires).
 * Create and reset from a fiber (the timer joins that worker's heap:
 * -EPERM elsewhere); stop, free and the channel work from any thread.
 * Suspends: no (all).
 */
#ifndef SP_TIME_H
#define SP_TIME_H

#include <stdint.h>

#include "runtime/sp_runtime.h"
#include "sync/sp_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_timer sp_timer_t;

/* A timer that fires once at deadline (absolute; a past one fires at once).
 * 0, -EINVAL, -ENOMEM, -EPERM (not in a fiber). */
SP_API int sp_timer_start(sp_timer_t **out, int64_t deadline);
/* A ticker: fires every period ns (> 0), first at now + period. */
SP_API int sp_ticker_start(sp_timer_t **out, int64_t period);
/* Runs fn(arg) in a new detached fiber of the calling fiber's runtime at
 * deadline (Go's time.AfterFunc); stop it to cancel. Its channel is NULL. */
SP_API int sp_after_func(sp_timer_t **out, int64_t deadline, void (*fn)(void *arg), void *arg);

/* The channel the fire times arrive on (elements: int64_t). Owned by t. */
SP_API sp_chan_t *sp_timer_chan(sp_timer_t *t);

/* Stops t. Returns 1 if the call stopped it before it fired (a ticker:
 * while it was running), 0 if it had fired or was stopped, -EINVAL. Drains
 * an unread value. After it returns, t does not fire (an after-func that
 * already started keeps running). */
SP_API int sp_timer_stop(sp_timer_t *t);
/* Stops t and starts it again: a timer for deadline, a ticker with period
 * `when` ns from now. Returns what sp_timer_stop would, or -EPERM / -EINVAL. */
SP_API int sp_timer_reset(sp_timer_t *t, int64_t when);

/* Stops and frees t. -EBUSY (not freed) while a fiber or thread is blocked
 * on its channel; -EINVAL for NULL. */
SP_API int sp_timer_free(sp_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif /* SP_TIME_H */
