/*
 * sp_group.h: task groups (Go's errgroup, Python's asyncio.TaskGroup):
 * structured concurrency on top of fibers and cancellation contexts.
 *
 * A group owns a context, a child of the parent given at init. Each
 * sp_group_go starts fn(arg) as a new fiber that runs with the group's
 * context entered (sp_ctx.h), so its blocking calls return -ECANCELED
 * once the group is cancelled. fn returns 0 (or any value >= 0) for
 * success, a negative errno code for failure. The first failure cancels
 * the group's context (-ECANCELED: the other members' blocked calls
 * return); it is what sp_group_wait returns, and every failure is kept
 * (sp_group_errors, like an ExceptionGroup).
 *
 *     sp_group_t *g;
 *     sp_group_init(&g, NULL, 8);          // child of the current context,
 *     for (...) sp_group_go(g, fetch, u);  // at most 8 running at once
 *     int rc = sp_group_wait(g, sp_deadline_in(2 * SEC));
 *     sp_group_free(g);
 *
 * Structured: no member outlives the group's scope. sp_group_wait returns
 * only once every member has returned, also when its deadline passes (it
 * then cancels the group and keeps waiting for the members to finish), and
 * sp_group_free refuses while members run. A member that ignores the
 * cancellation (a CPU loop, an sp_blocking call) holds sp_group_wait up
 * for as long as it runs.
 *
 * Runtime: members run in the group's runtime, which is fixed at init:
 * the one given to sp_group_init_rt, else the runtime of the fiber that
 * calls sp_group_init (from a foreign thread, use sp_group_init_rt).
 * sp_group_go and sp_group_wait may then be called from any fiber of any
 * runtime and from foreign threads (which block instead of parking).
 *
 * Errors: all results are negative errno codes; misuse (NULL, a negative
 * limit, a free while members run, a member waiting on its own group, a
 * sp_group_go after the wait) is an error code, never a crash. (A group
 * used after sp_group_free is freed memory, as for any object.)
 */
#ifndef SP_GROUP_H
#define SP_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/sp_runtime.h"
#include "sync/sp_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_group sp_group_t;

/* A member's body: >= 0 success, < 0 a negative errno code (failure). */
typedef int (*sp_group_fn_t)(void *arg);

/* Makes a group whose context is a child of parent (NULL: the context the
 * calling fiber has entered, else the background; pass
 * sp_ctx_background() to detach from the caller's). limit is the most
 * members whose fn runs at once (0: no limit; errgroup's SetLimit).
 * Members run in the calling fiber's runtime. Returns 0, -EINVAL (g NULL,
 * limit < 0, or called from a foreign thread), -ENOMEM. Suspends: no. */
SP_API int sp_group_init(sp_group_t **g, sp_ctx_t *parent, int limit);

/* The same, with members in runtime rt (NULL: as sp_group_init); the way
 * to make a group on a foreign thread. Returns as sp_group_init. */
SP_API int sp_group_init_rt(sp_group_t **g, sp_runtime_t *rt, sp_ctx_t *parent, int limit);

/* Starts fn(arg) as a detached fiber of the group's runtime, with the
 * group's context entered. With a limit, waits first until fewer than
 * limit members run (a member finishing frees its slot). Returns 0,
 * -ECANCELED (the group's context is cancelled: by a failure, by its
 * parent, or because sp_group_wait returned), the code of the caller's own
 * context if that is cancelled while the caller waits for a slot
 * (-ECANCELED, -ETIMEDOUT, ...), -EINVAL (NULL), -ENOMEM, or what
 * sp_spawn returns; after an error fn is not run. Members may start more
 * members. Suspends: yes: while waiting for a slot, and a fiber of the
 * group's runtime yields after every 16 members it starts, so that they
 * run while it keeps spawning (a fan-out does not keep them all alive at
 * once; Go's `go` does not yield, a fiber here does). */
SP_API int sp_group_go(sp_group_t *g, sp_group_fn_t fn, void *arg);

/* Waits until every member has returned, then cancels the group's context
 * (as errgroup's Wait does: later sp_group_go calls fail) and returns the
 * group's first failure, or 0 when there was none. If the deadline passes
 * first, the group is cancelled with -ETIMEDOUT (its members' blocked calls
 * return -ETIMEDOUT) and the call still waits for every member to return,
 * however long that takes; it then returns -ETIMEDOUT unless a member had
 * failed before the deadline (that failure is returned). Deadline 0 never
 * blocks: -EAGAIN while members run, and nothing is cancelled. The wait
 * itself is not interrupted by the caller's context: cancelling the
 * group's parent reaches the members, and so ends the wait. May be called
 * again (same result at once). Returns the first failure, 0, -ETIMEDOUT,
 * -EAGAIN, -EINVAL (NULL), -EDEADLK (called from a member of g, which
 * would wait for itself). Suspends: yes. */
SP_API int sp_group_wait(sp_group_t *g, int64_t deadline);

/* Copies up to n of the failures recorded so far, in the order members
 * returned them, to out (may be NULL when n is 0) and returns how many
 * there are (may exceed n), or -EINVAL. The first is what sp_group_wait
 * returns, unless its deadline passed first. Not recorded: a member that returns the group's own
 * cancellation code after the group cancelled itself (a sibling failed,
 * or the wait deadline passed): it was cancelled, it did not fail (as an
 * ExceptionGroup leaves out CancelledError). A cancellation that comes
 * from the parent context is recorded like any failure. Suspends: no. */
SP_API int sp_group_errors(sp_group_t *g, int *out, size_t n);

/* The group's context: members may make nested groups with it as parent
 * (as sp_group_init(&inner, NULL, ...) in a member does), so that
 * cancelling the outer group cancels downward. Owned by the group; valid
 * until sp_group_free; NULL for NULL. Suspends: no. */
SP_API sp_ctx_t *sp_group_ctx(sp_group_t *g);

/* Frees the group (its context is cancelled and released). Returns 0,
 * -EINVAL (NULL), -EBUSY (members are still running, or a sp_group_go is
 * under way: nothing was freed; sp_group_wait first). A group need not
 * have been waited for if it has no members. Suspends: no. */
SP_API int sp_group_free(sp_group_t *g);

#ifdef __cplusplus
}
#endif
#endif /* SP_GROUP_H */
