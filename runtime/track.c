/*
 * track.c: debug mode's record of objects to free (model in track.h).
 */
#include "runtime/track.h"

#include <stdio.h>

#include "runtime/core.h"
#include "runtime/lock.h"
#include "runtime/park.h"

void sp__track(sp__tracked_t *t, const char *what, const char *file, int line) {
  t->rt = NULL;
  if (!sp__debug_any()) return;
  sp__worker_t *w = sp__self();
  if (!w || !w->cur || !w->rt->cfg.debug) return;
  struct sp_runtime *rt = w->rt;
  t->what = what;
  t->file = file;
  t->line = line;
  t->fiber = w->cur->id;
  sp__lock(&rt->tracked_lk);
  t->prev = NULL;
  t->next = rt->tracked;
  if (rt->tracked) rt->tracked->prev = t;
  rt->tracked = t;
  t->rt = rt;
  sp__unlock(&rt->tracked_lk);
}

void sp__untrack(sp__tracked_t *t) {
  struct sp_runtime *rt = __atomic_load_n(&t->rt, __ATOMIC_ACQUIRE);
  if (!rt) return;
  sp__lock(&rt->tracked_lk);
  if (t->rt == rt) {
    if (t->prev) t->prev->next = t->next;
    else rt->tracked = t->next;
    if (t->next) t->next->prev = t->prev;
    t->rt = NULL;
  }
  sp__unlock(&rt->tracked_lk);
}

void sp__report_tracked(struct sp_runtime *rt) {
  sp__lock(&rt->tracked_lk);
  for (sp__tracked_t *t = rt->tracked; t; t = t->next) {
    dprintf(2, "spindle: %s %p made by fiber %llu at %s:%d was never freed\n", t->what, (void *)t,
            (unsigned long long)t->fiber, t->file ? t->file : "?", t->line);
    __atomic_store_n(&t->rt, NULL, __ATOMIC_RELEASE);
  }
  rt->tracked = NULL;
  sp__unlock(&rt->tracked_lk);
}
