/*
 * track.h: debug mode's record of objects that must be freed before their
 * runtime goes away (channels), reported at destroy with where they were
 * made. Shared-internal (runtime, sync).
 *
 * Model: an object embeds an sp__tracked_t. Made by a fiber of a debug-mode
 * runtime, it is linked into that runtime's list (under the list's lock);
 * freeing unlinks it. sp_runtime_destroy reports whatever is still listed
 * and detaches it (rt = NULL), so a later free touches no dead runtime.
 * Elsewhere (no debug mode, foreign thread) tracking costs one check.
 */
#ifndef SP_RUNTIME_TRACK_H
#define SP_RUNTIME_TRACK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sp_runtime;

typedef struct sp__tracked {
  struct sp__tracked *next, *prev;
  struct sp_runtime *rt; /* NULL: not tracked */
  const char *what;      /* "channel" */
  const char *file;      /* where it was made (may be NULL) */
  int line;
  uint64_t fiber;        /* the fiber that made it */
} sp__tracked_t;

/* Tracks t if the caller is a fiber of a debug-mode runtime. Runs on: any. */
void sp__track(sp__tracked_t *t, const char *what, const char *file, int line);
void sp__untrack(sp__tracked_t *t);
/* destroy (runtime.c): reports and detaches everything still tracked. */
void sp__report_tracked(struct sp_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_TRACK_H */
