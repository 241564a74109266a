/*
 * park.h: the park/unpark state machine every blocking primitive uses.
 * Shared-internal (runtime, sync, io). See park.c for the full model.
 *
 * Use, by a waiter (fiber or foreign thread):
 *     sp__parker_t p;
 *     sp__park_begin(&p);             // arm: from here a waker may claim p
 *     ... register &p with the primitive under its lock, unlock ...
 *     int r = sp__park_wait(&p, deadline);   // returns the wake reason
 *     ... if r == -ETIMEDOUT: unregister under the lock (it may be gone) ...
 * If the waiter finds it need not wait after all (while registering), it
 * calls sp__park_abort(&p); when that returns false a waker already claimed
 * p, and sp__park_wait must still be called (it returns promptly).
 *
 * Use, by a waker (holding the primitive's lock or not):
 *     if (sp__park_claim(p)) { ...hand over data...; sp__park_wake(p, 0); }
 *     else { p already woken by someone else (deadline, other case): skip }
 * Exactly one claim succeeds per sp__park_begin, so exactly one wake.
 */
#ifndef SP_RUNTIME_PARK_H
#define SP_RUNTIME_PARK_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sp_fiber;

typedef struct sp__parker {
  struct sp_fiber *fiber; /* the parked fiber; NULL for a foreign thread */
  uint32_t token;         /* fiber: its armed token; thread: claim word */
  uint32_t parked;        /* set by the claim: the fiber was off its stack */
  uint32_t solo;          /* P6: every claimer holds the lock it parks with */
  int reason;             /* written by the claimer before the wake */
  void *winner;           /* optional: which registration won (select) */
} sp__parker_t;

/* Arms p for the calling fiber or thread. Runs on: the waiter. */
void sp__park_begin(sp__parker_t *p);

/* Records why the calling fiber is about to park (what: a static string
 * such as "chan recv"; obj: the object waited on, or NULL), for
 * sp_runtime_dump. Cheap: two stores and a coarse clock read. No-op on a
 * foreign thread. Runs on: the waiter, between begin and wait. */
void sp__park_note(const char *what, const void *obj);

/* Parks until p is claimed and woken, or the deadline passes (then the
 * wait claims itself and returns -ETIMEDOUT), or the fiber's cancellation
 * scope fires (cancel.h: the scope's error). Returns the reason given to
 * sp__park_wake. Runs on: the waiter. Switches: yes (fiber) / blocks. */
int sp__park_wait(sp__parker_t *p, int64_t deadline);
/* The same, but not cut short by the fiber's cancellation scope: for waits
 * that must end only by their own event (an io_uring operation, whose
 * cancellation is arranged separately: io/uring.c). */
int sp__park_wait_unscoped(sp__parker_t *p, int64_t deadline);

/* Whether the armed p may park holding a lock (sp__park_wait_locked): a
 * fiber's wait with no deadline and no cancellation scope. Sets p->solo
 * when it returns true; call it before p is published. */
struct sp__lock;
bool sp__park_solo(sp__parker_t *p, int64_t deadline);
/* Parks a solo p (above) holding lk, which is released once the fiber is
 * off its stack; every claimer of p must take lk first (it then needs no
 * CAS: P6). Returns the wake reason. Runs on: the waiter, holding lk; lk
 * is not held on return. Switches: yes. */
int sp__park_wait_locked(sp__parker_t *p, struct sp__lock *lk);

/* Withdraws an armed p without waiting. Returns true if withdrawn; false if
 * a waker claimed it first (then call sp__park_wait). Runs on: the waiter. */
bool sp__park_abort(sp__parker_t *p);

/* Claims p: true for exactly one caller per arm. Runs on: any thread.
 * Locks: any. Switches: no. */
bool sp__park_claim(sp__parker_t *p);

/* Wakes the claimed p with reason (0 or a negative code). After this call
 * the waker must not touch p (it lives on the waiter's stack).
 * Runs on: any thread. Locks: any (takes only leaf locks). Switches: no. */
void sp__park_wake(sp__parker_t *p, int reason);

/* The same, but a woken fiber goes to the back of the run queue instead of
 * running next: for wakers that ready many fibers in a batch (timers, I/O
 * completions), so they run in the order they were woken. */
void sp__park_wake_fifo(sp__parker_t *p, int reason);

/* In debug mode, the id of the calling fiber (for misuse checks such as
 * a mutex unlocked by a fiber that does not hold it); 0 when the caller is
 * not a fiber of a debug-mode runtime. One relaxed load when no debug-mode
 * runtime exists. Runs on: any thread. */
uint64_t sp__debug_fiber(void);
/* Whether any debug-mode runtime exists (primitives keep owner records):
 * inline, one relaxed load of a process-wide count (runtime.c). */
extern int sp_debug_runtimes_; /* declared SP_API in sync/sp_sync.h too */
static inline bool sp__debug_any(void) { return __atomic_load_n(&sp_debug_runtimes_, __ATOMIC_RELAXED) > 0; }
static inline uint64_t sp__debug_self(void) { return sp__debug_any() ? sp__debug_fiber() : 0; }

/* Whether a primitive should spin briefly before parking (Go's
 * runtime_canSpin): the caller is a fiber, its worker has nothing else to
 * run, and another worker is busy (so the holder may release soon). Spinning
 * otherwise only delays the fibers queued behind the caller.
 * Runs on: any thread. Switches: no. */
bool sp__spin_ok(void);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_PARK_H */
