/*
 * context.c: context switch with sanitizer annotations (see context.h).
 *
 * Model: thin wrappers around jump_fcontext. Every switch is bracketed by
 * the sanitizer fiber API (invariant C3 of context.h):
 *   ASan  start_switch_fiber(&fake, target stack) before the jump and
 *         finish_switch_fiber(fake) after it; NULL instead of &fake on the
 *         final switch so ASan frees the fake stack of the dead fiber.
 *   TSan  __tsan_switch_to_fiber(target, 0) immediately before the jump; the
 *         0 flag makes each switch a happens-before edge, which matches a
 *         cooperative scheduler handing state from one fiber to the next.
 * Without these, TSan's shadow call stack overflows after ~10^4-10^6 fibers
 * that never return, and ASan misreports C++ exceptions inside fibers
 * (../shared/BUILD-NOTES.md §4).
 * Rejected: hand-written switch assembly (the design card fixes fcontext).
 */
#define _GNU_SOURCE
#include "arch/context.h"

#include <pthread.h>
#include <stdint.h>

#ifdef SP_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SP_HAVE_TSAN
#include <sanitizer/tsan_interface.h>
#endif

void sp__ctx_make(sp__ctx_t *c, void *lo, size_t size, void (*entry)(transfer_t)) {
  c->stack_lo = lo;
  c->stack_size = size;
  c->fctx = make_fcontext((char *)lo + size, size, entry);
#ifdef SP_HAVE_TSAN
  c->tsan = __tsan_create_fiber(0);
#else
  c->tsan = NULL;
#endif
}

void sp__ctx_init_thread(sp__ctx_t *c) {
  c->fctx = NULL;
  c->stack_lo = NULL;
  c->stack_size = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void *lo;
    size_t sz;
    if (pthread_attr_getstack(&attr, &lo, &sz) == 0) {
      c->stack_lo = lo;
      c->stack_size = sz;
    }
    pthread_attr_destroy(&attr);
  }
#ifdef SP_HAVE_TSAN
  c->tsan = __tsan_get_current_fiber();
#else
  c->tsan = NULL;
#endif
}

void sp__ctx_release(sp__ctx_t *c) {
#ifdef SP_HAVE_TSAN
  if (c->tsan) __tsan_destroy_fiber(c->tsan);
#endif
  c->tsan = NULL;
  c->fctx = NULL;
}

#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN) /* else inline in context.h */
transfer_t sp__ctx_jump(sp__ctx_t *to, void *data) {
  fcontext_t target = to->fctx;
  to->fctx = NULL; /* C1: a context is resumed once per switch-out */
#ifdef SP_HAVE_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(&fake, to->stack_lo, to->stack_size);
#endif
#ifdef SP_HAVE_TSAN
  __tsan_switch_to_fiber(to->tsan, 0);
#endif
  transfer_t t = jump_fcontext(target, data);
#ifdef SP_HAVE_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  return t;
}
#endif

void sp__ctx_jump_final(sp__ctx_t *to, void *data) {
  fcontext_t target = to->fctx;
  to->fctx = NULL;
#ifdef SP_HAVE_ASAN
  __sanitizer_start_switch_fiber(NULL, to->stack_lo, to->stack_size);
#endif
#ifdef SP_HAVE_TSAN
  __tsan_switch_to_fiber(to->tsan, 0);
#endif
  jump_fcontext(target, data);
  __builtin_unreachable();
}

void sp__ctx_entered(void) {
#ifdef SP_HAVE_ASAN
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}
