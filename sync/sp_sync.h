/*
 * sp_sync.h: Spindle's public synchronisation API: channels and select
 * (Go semantics), Mutex, RWMutex, Cond, WaitGroup, Once, Semaphore.
 *
 * Every blocking call works from fibers (the fiber parks, its worker runs
 * others) and from foreign threads (the thread blocks on a futex). Where Go
 * panics, these return an error code. Deadlines are absolute monotonic ns:
 * SP_FOREVER waits forever, 0 tries without blocking (-EAGAIN when it would
 * block). Waiters are served first come, first served.
 * Embeddable primitives (sp_mutex_t, ...) are ready to use when zeroed
 * (`sp_mutex_t m = {0};` or static storage), like Go's zero values; they
 * need no destroy, but must not be freed or moved while anyone waits.
 */
#ifndef SP_SYNC_H
#define SP_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- channels ------------------------------------------------------------ */

typedef struct sp_chan sp_chan_t;

/* Makes a channel of elements of elem_size bytes (0: a signal channel) with
 * a buffer of cap elements (0: unbuffered, a send completes only when a
 * receiver took the value). Returns 0, -EINVAL (out NULL, sizes overflow),
 * -ENOMEM. */
SP_API int sp_chan_make(sp_chan_t **out, size_t elem_size, size_t cap);
/* The same, recording where (debug mode reports channels never freed when
 * their runtime is destroyed, with this site). The macro passes the site. */
SP_API int sp_chan_make_at(sp_chan_t **out, size_t elem_size, size_t cap, const char *file,
                           int line);
#define sp_chan_make(out, elem_size, cap) sp_chan_make_at((out), (elem_size), (cap), __FILE__, __LINE__)

/* Frees ch. Returns 0, -EINVAL (NULL), -EBUSY (fibers or threads are
 * blocked on it: it is not freed). */
SP_API int sp_chan_free(sp_chan_t *ch);

/* Sends elem_size bytes from elem. Returns 0, -EPIPE (closed, also while
 * waiting: the value was not delivered), -ETIMEDOUT, -EAGAIN (deadline 0
 * and it would block), -EINVAL (NULL). Suspends: yes. */
SP_API int sp_chan_send(sp_chan_t *ch, const void *elem, int64_t deadline);

/* Receives into elem (may be NULL to discard). Buffered values are still
 * delivered after close; then it returns -EPIPE with elem zeroed (Go's
 * zero value, ok=false). Returns 0, -EPIPE, -ETIMEDOUT, -EAGAIN, -EINVAL.
 * Suspends: yes. */
SP_API int sp_chan_recv(sp_chan_t *ch, void *elem, int64_t deadline);

/* Closes ch: every blocked receiver gets -EPIPE once the buffer is drained,
 * every blocked sender -EPIPE. Returns 0, -EPIPE (already closed; in debug
 * mode the calling fiber is named), -EINVAL. Suspends: no. */
SP_API int sp_chan_close(sp_chan_t *ch);

/* Buffered elements now / buffer capacity (0 for NULL). */
SP_API size_t sp_chan_len(sp_chan_t *ch);
SP_API size_t sp_chan_cap(const sp_chan_t *ch);

/* ---- select --------------------------------------------------------------- */

enum { SP_SEND = 1, SP_RECV = 2 };

/* One case of sp_select. A case with chan == NULL never fires (Go's nil
 * channel: the way to disable a case). Reserved fields must be zero. */
typedef struct sp_case {
  int op;          /* SP_SEND or SP_RECV */
  sp_chan_t *chan; /* NULL: never ready */
  void *elem;      /* SP_SEND: the value; SP_RECV: where it goes (NULL: drop) */
  int result;      /* out, for the case that fired: 0, or -EPIPE (closed:
                    * recv got the zero value / send was refused) */
  int reserved_;
} sp_case_t;

/* Waits until one of n cases can proceed, performs it and returns its
 * index. When several are ready, one is chosen uniformly at random.
 * Returns the index (>= 0), -EAGAIN (deadline 0 and none ready: Go's
 * default), -ETIMEDOUT, -EINVAL (bad case, n < 0 or > SP_SELECT_MAX).
 * With no usable case and SP_FOREVER it never returns, as in Go.
 * Suspends: yes. */
#define SP_SELECT_MAX 1024
SP_API int sp_select(sp_case_t *cases, int n, int64_t deadline);

/* ---- Mutex ---------------------------------------------------------------- */

/* Go's sync.Mutex: not reentrant; a waiter that has waited over 1 ms puts
 * the mutex in starvation mode (ownership is handed to waiters in order).
 * Zero-initialised = unlocked. state_ is the lock word, read only by the
 * inline fast paths below (as Go inlines Lock's and Unlock's). */
typedef union sp_mutex {
  uint64_t opaque_[4];
  uint32_t state_;
} sp_mutex_t;

/* Returns 0, -ETIMEDOUT, -EAGAIN (deadline 0), -EINVAL. Suspends: yes. */
SP_API int sp_mutex_lock_until(sp_mutex_t *m, int64_t deadline);
SP_API int sp_mutex_trylock(sp_mutex_t *m); /* = lock_until(m, 0) */
/* Not for users: the out-of-line halves of sp_mutex_lock/unlock, and the
 * count of debug-mode runtimes (which keep owner records: no fast path). */
SP_API int sp_mutex_lock_slow_(sp_mutex_t *m);
SP_API int sp_mutex_unlock_slow_(sp_mutex_t *m);
SP_API extern int sp_debug_runtimes_;

/* = sp_mutex_lock_until(m, SP_FOREVER); an uncontended lock is one CAS,
 * inline. Suspends: yes. */
static inline int sp_mutex_lock(sp_mutex_t *m) {
  uint32_t free_ = 0;
  if (m && __atomic_load_n(&sp_debug_runtimes_, __ATOMIC_RELAXED) == 0 &&
      __atomic_compare_exchange_n(&m->state_, &free_, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return 0;
  return sp_mutex_lock_slow_(m);
}

/* Returns 0, -EPERM (not locked; in debug mode the fiber is named), -EINVAL.
 * An unlock nobody waits for is one CAS, inline. Suspends: no. */
static inline int sp_mutex_unlock(sp_mutex_t *m) {
  uint32_t held = 1;
  if (m && __atomic_load_n(&sp_debug_runtimes_, __ATOMIC_RELAXED) == 0 &&
      __atomic_compare_exchange_n(&m->state_, &held, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return 0;
  return sp_mutex_unlock_slow_(m);
}

/* ---- RWMutex -------------------------------------------------------------- */

/* Go's sync.RWMutex: many readers or one writer; once a writer waits, new
 * readers wait too, so a stream of readers cannot starve writers. */
typedef struct sp_rwmutex {
  uint64_t opaque_[6];
} sp_rwmutex_t;

SP_API int sp_rwmutex_rlock_until(sp_rwmutex_t *m, int64_t deadline);
SP_API int sp_rwmutex_rlock(sp_rwmutex_t *m);
SP_API int sp_rwmutex_runlock(sp_rwmutex_t *m); /* -EPERM when not read-locked */
SP_API int sp_rwmutex_lock_until(sp_rwmutex_t *m, int64_t deadline);
SP_API int sp_rwmutex_lock(sp_rwmutex_t *m);
SP_API int sp_rwmutex_unlock(sp_rwmutex_t *m); /* -EPERM when not write-locked */

/* ---- Cond ----------------------------------------------------------------- */

typedef struct sp_cond {
  uint64_t opaque_[3];
} sp_cond_t;

/* Unlocks m, waits for a signal (or the deadline), relocks m (always, also
 * on -ETIMEDOUT). Returns 0, -ETIMEDOUT, -EPERM (m not locked), -EINVAL.
 * Suspends: yes. */
SP_API int sp_cond_wait(sp_cond_t *c, sp_mutex_t *m, int64_t deadline);
/* Wake one / every waiter. Return how many were woken, or -EINVAL. */
SP_API int sp_cond_signal(sp_cond_t *c);
SP_API int sp_cond_broadcast(sp_cond_t *c);

/* ---- WaitGroup ------------------------------------------------------------ */

typedef struct sp_waitgroup {
  uint64_t opaque_[4];
} sp_waitgroup_t;

/* Adds delta to the counter; at zero every waiter wakes. Returns the new
 * counter (>= 0), -EINVAL (it would go negative: nothing changed; NULL). */
SP_API int64_t sp_wg_add(sp_waitgroup_t *wg, int64_t delta);
SP_API int64_t sp_wg_done(sp_waitgroup_t *wg); /* sp_wg_add(wg, -1) */
/* Waits until the counter is zero. Returns 0, -ETIMEDOUT, -EAGAIN (deadline
 * 0), -EINVAL. Suspends: yes. */
SP_API int sp_wg_wait(sp_waitgroup_t *wg, int64_t deadline);
/* Go's wg.Go: adds 1 and spawns fn(arg) as a detached fiber of rt (NULL:
 * the caller's) that calls done when fn returns. Returns as sp_spawn. */
SP_API int sp_wg_go(sp_waitgroup_t *wg, sp_runtime_t *rt, sp_fn_t fn, void *arg);

/* ---- Once ----------------------------------------------------------------- */

typedef struct sp_once {
  uint64_t opaque_[3];
} sp_once_t;

/* Runs fn(arg) exactly once per sp_once_t; concurrent callers wait until
 * it has returned. Returns 0, -EINVAL. Suspends: yes (while another runs
 * fn). */
SP_API int sp_once(sp_once_t *o, void (*fn)(void *), void *arg);

/* ---- Semaphore ------------------------------------------------------------ */

/* A weighted semaphore (golang.org/x/sync/semaphore): FIFO, so a large
 * request is not starved by small ones. */
typedef struct sp_sema {
  uint64_t opaque_[5];
} sp_sema_t;

/* Sets the capacity (before any use). Returns 0, -EINVAL (size < 0). */
SP_API int sp_sema_init(sp_sema_t *s, int64_t size);
/* Acquires n units. Returns 0, -ETIMEDOUT, -EAGAIN (deadline 0), -EINVAL
 * (n < 0 or n > size: could never succeed). Suspends: yes. */
SP_API int sp_sema_acquire(sp_sema_t *s, int64_t n, int64_t deadline);
/* Releases n units. Returns 0, -EINVAL (more than held: nothing changed). */
SP_API int sp_sema_release(sp_sema_t *s, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* SP_SYNC_H */
