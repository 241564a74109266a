/*
 * context.h: the context-switch contract, over Boost.Context's fcontext.
 *
 * Model: a context is a stack plus the registers saved on it by
 * jump_fcontext. sp__ctx_make() prepares a fresh context whose first switch
 * calls entry(t); sp__ctx_jump() saves the caller on its own stack and
 * resumes `to`. The resumed side receives {the caller's saved fctx, data} and
 * is responsible for storing the caller's fctx (the switch itself keeps no
 * table of contexts).
 *
 * What a switch saves (Boost 1.74, x86_64 SysV): rbx, rbp, r12-r15, rsp,
 * the return address, MXCSR and the x87 control word. It does NOT save:
 * rax, rcx, rdx, rsi, rdi, r8-r11 and xmm0-15 (caller-saved by the ABI),
 * the x87 status/tag words, the direction flag (always clear at calls),
 * signal masks, errno or any thread-local (they belong to the thread, and a
 * fiber may resume on another thread), and the fs base (TLS pointer).
 *
 * Floating point: MXCSR (SSE rounding mode, exception masks and sticky
 * exception flags) and the x87 control word are per context: a fiber's
 * fesetround() follows it and does not leak into other fibers. The x87
 * status word is NOT switched, so x87 exception flags (glibc raises
 * feraiseexcept() through x87 on x86_64) belong to the thread:
 * fetestexcept() in a fiber may see flags raised by other fibers that ran
 * on the same worker, and may lose its own when it migrates. Do not rely on
 * fenv exception flags across a switch point (clear, compute, test with no
 * blocking call in between).
 * Cost: when the two contexts' MXCSR differ (any inexact SSE operation sets
 * the sticky PE flag), the ldmxcsr in each switch may be slow on some
 * CPUs; the project's brief quotes ~72 ns instead of ~5 ns on an earlier
 * machine. bench/switch_bench.c measures both cases: on the AMD EPYC
 * (Zen 5) VM of bench/RESULTS.md, 4.3 ns either way. Where the penalty
 * exists, a FP-heavy fiber that blocks often can avoid it with
 * feclearexcept(FE_ALL_EXCEPT) before blocking; the runtime does not clear
 * flags for it, because that would destroy fenv state the fiber may want.
 * Invariants:
 *   C1  A context is resumed at most once per switch-out (never twice).
 *   C2  The stack of a context that finished is not touched by the switch
 *       that leaves it (sp__ctx_jump_final), so the resumed side may free it.
 *   C3  Sanitizers are told about every switch: ASan through
 *       __sanitizer_{start,finish}_switch_fiber, TSan through
 *       __tsan_switch_to_fiber, valgrind through stack registration
 *       (arch/stack.c, under -DUSE_VALGRIND).
 */
#ifndef SP_ARCH_CONTEXT_H
#define SP_ARCH_CONTEXT_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_HAVE_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SP_HAVE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SP_HAVE_ASAN)
#define SP_HAVE_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SP_HAVE_TSAN)
#define SP_HAVE_TSAN 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Boost.Context's fcontext ABI, declared with C prototypes (libboost_context
 * exports these symbols unmangled). */
typedef void *fcontext_t;
typedef struct {
  fcontext_t fctx;
  void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

/* One execution context: a fiber's, or a worker thread's native stack. */
typedef struct sp__ctx {
  fcontext_t fctx;    /* saved registers while switched out; NULL while running */
  void *stack_lo;     /* lowest usable address (for ASan) */
  size_t stack_size;  /* usable bytes (for ASan) */
  void *tsan;         /* TSan fiber handle (NULL when not under TSan) */
} sp__ctx_t;

/* Prepares c to run entry(t) on [lo, lo+size) at its first resume.
 * Runs on: any thread. Switches: no. */
void sp__ctx_make(sp__ctx_t *c, void *lo, size_t size, void (*entry)(transfer_t));

/* Binds c to the calling thread's own stack (the worker's scheduler loop).
 * Runs on: the thread itself. Switches: no. */
void sp__ctx_init_thread(sp__ctx_t *c);

/* Releases sanitizer state of a context that finished (C2), from another
 * context. Runs on: any thread. Switches: no. */
void sp__ctx_release(sp__ctx_t *c);

/* Saves the caller and resumes `to`, passing data; returns when something
 * switches back, with the switcher's saved fctx and its data.
 * Runs on: a context of this thread. Switches: yes.
 * Inline without sanitizers: it is on every switch's path. */
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
transfer_t sp__ctx_jump(sp__ctx_t *to, void *data);
#else
static inline transfer_t sp__ctx_jump(sp__ctx_t *to, void *data) {
  fcontext_t target = to->fctx;
  to->fctx = NULL; /* C1 */
  return jump_fcontext(target, data);
}
#endif

/* As sp__ctx_jump, for a context that will never be resumed (C2).
 * Runs on: a finishing fiber. Switches: yes, never returns. */
__attribute__((noreturn)) void sp__ctx_jump_final(sp__ctx_t *to, void *data);

/* First call in every context entry function (tells ASan the switch ended).
 * Runs on: the new context. Switches: no. */
void sp__ctx_entered(void);

#ifdef __cplusplus
}
#endif
#endif /* SP_ARCH_CONTEXT_H */
