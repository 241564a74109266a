/*
 * spawn.h: spawning with an exit hook, for primitives built on fibers
 * (sp_wg_go; task groups later). Shared-internal.
 */
#ifndef SP_RUNTIME_SPAWN_H
#define SP_RUNTIME_SPAWN_H

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* As sp_spawn_at; in addition on_exit(exit_arg) runs on the fiber, after
 * fn returned and its fiber-local destructors ran (on_exit may be NULL).
 * Returns as sp_spawn_at; on error on_exit does not run. */
int sp__spawn_hooked(sp_runtime_t *rt, sp_fiber_t *out, sp_fn_t fn, void *arg,
                     const sp_spawn_opts_t *opts, void (*on_exit)(void *), void *exit_arg,
                     const char *file, int line);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_SPAWN_H */
