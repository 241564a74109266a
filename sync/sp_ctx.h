/*
 * sp_ctx.h: cancellation contexts (Go's context.Context) and timeout scopes.
 *
 * A context is cancelled explicitly, by its deadline, or when its parent is
 * cancelled; cancelling one cancels its whole subtree. A fiber *enters* a
 * context to bind it: from then on every blocking call the fiber makes
 * (sp_sleep_*, sp_join, channel send/recv, sp_select, mutex/rwmutex/sema/
 * waitgroup/cond waits, and every io call of sp_io.h) returns promptly
 * when the context is cancelled: -ECANCELED, or -ETIMEDOUT when the
 * context's deadline passed (or the code given to sp_ctx_cancel). An io
 * call cancelled this way still waits for the kernel to let go of its
 * buffers (sp_io.h). Calls made while the context is already cancelled
 * fail at once. sp_blocking calls are not interrupted (the C function
 * cannot be); the result of a cancelled call is then its own.
 *
 * Lifetime: contexts are reference counted. Each sp_ctx_with_* result holds
 * one reference, dropped by sp_ctx_release (which also cancels it, like
 * calling Go's cancel func); a fiber that entered a context holds one more
 * until it leaves. sp_ctx_background() is static and never cancelled.
 * All functions: Suspends: no. Runs on: any thread.
 */
#ifndef SP_CTX_H
#define SP_CTX_H

#include <stdint.h>

#include "runtime/sp_runtime.h"
#include "sync/sp_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_ctx sp_ctx_t;

/* The root context: never cancelled, no deadline, no release needed. */
SP_API sp_ctx_t *sp_ctx_background(void);

/* A child of parent (NULL = background) that is cancelled by
 * sp_ctx_cancel/sp_ctx_release or with its parent. 0, -EINVAL, -ENOMEM. */
SP_API int sp_ctx_with_cancel(sp_ctx_t *parent, sp_ctx_t **out);
/* The same, also cancelled with -ETIMEDOUT at deadline (absolute; the
 * parent's deadline applies too when it is earlier). */
SP_API int sp_ctx_with_deadline(sp_ctx_t *parent, int64_t deadline, sp_ctx_t **out);
SP_API int sp_ctx_with_timeout(sp_ctx_t *parent, int64_t ns, sp_ctx_t **out);

/* Cancels ctx and its subtree with cause (0 means -ECANCELED; otherwise a
 * negative code, which blocked calls then return). Returns 0, -EALREADY if
 * it was already cancelled (the first cause stays), -EINVAL. */
SP_API int sp_ctx_cancel(sp_ctx_t *ctx, int cause);
/* Cancels ctx (-ECANCELED) if it is not yet, and drops the creator's
 * reference. Always call it when done with a context from sp_ctx_with_*. */
SP_API void sp_ctx_release(sp_ctx_t *ctx);

/* 0 while ctx is live; once cancelled, its cause (-ECANCELED, -ETIMEDOUT
 * for a deadline, or the code given to sp_ctx_cancel); -EINVAL for NULL. */
SP_API int sp_ctx_err(const sp_ctx_t *ctx);
/* The deadline of ctx (the earliest along its ancestors), or SP_FOREVER. */
SP_API int64_t sp_ctx_deadline(const sp_ctx_t *ctx);
/* A channel (zero-size elements) that is closed when ctx is cancelled:
 * use it as an SP_RECV case in sp_select. Owned by ctx; never free it.
 * NULL for the background context (a nil channel: never ready). */
SP_API sp_chan_t *sp_ctx_done(sp_ctx_t *ctx);
/* Registers fn(arg) to run once ctx is cancelled (at once if it already
 * is), on the cancelling thread, after the subtree is cancelled; fn must
 * not block. Go's context.AfterFunc. 0, -EINVAL, -ENOMEM. */
SP_API int sp_ctx_after_cancel(sp_ctx_t *ctx, void (*fn)(void *arg), void *arg);

/* Binds ctx to the calling fiber (NULL or the background context: none)
 * and returns the context that was bound before, to restore with
 * sp_ctx_leave. Outside a fiber: NULL, and nothing is bound (foreign
 * threads use deadlines). */
SP_API sp_ctx_t *sp_ctx_enter(sp_ctx_t *ctx);
SP_API void sp_ctx_leave(sp_ctx_t *prev);
/* The context bound to the calling fiber, or NULL. */
SP_API sp_ctx_t *sp_ctx_current(void);

/* Timeout scope (asyncio.timeout): runs the block with a child of the
 * current context that expires in ns, then leaves and releases it however
 * the block is left (break, return, goto: a cleanup attribute).
 *     SP_TIMEOUT_SCOPE(250 * 1000000) { ...blocking calls... }
 * Inside, every blocking call gets the scope's deadline and returns
 * -ETIMEDOUT once it passed (-ENOMEM if the scope could not be made). */
typedef struct sp_ctx_scope {
  sp_ctx_t *ctx, *prev;
  int once;
} sp_ctx_scope_t;
SP_API sp_ctx_scope_t sp_ctx_scope_enter(int64_t ns);
SP_API void sp_ctx_scope_exit(sp_ctx_scope_t *s);
#define SP_TIMEOUT_SCOPE(ns)                                                        \
  for (sp_ctx_scope_t sp__scope __attribute__((cleanup(sp_ctx_scope_exit))) = sp_ctx_scope_enter(ns); \
       sp__scope.once; sp__scope.once = 0)

#ifdef __cplusplus
}
#endif
#endif /* SP_CTX_H */
