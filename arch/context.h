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
 * machine. bench/switch_bench.c measures the cases: on the AMD EPYC
 * (Zen 5) VM of bench/RESULTS.md a differing PE flag costs nothing (4.3 ns
 * either way), but a differing rounding mode (fesetround in one fiber)
 * costs ~60 ns a switch, because loading a changed rounding mode waits for
 * the pipeline to drain. Where the penalty exists, a FP-heavy fiber that
 * blocks often can avoid it with feclearexcept(FE_ALL_EXCEPT), or by
 * restoring the rounding mode, before blocking; the runtime does not do it
 * for the fiber, because that would destroy fenv state it may want.
 * Invariants:
 *   C1  A context is resumed at most once per switch-out (never twice).
 *   C2  The stack of a context that finished is not touched by the switch
 *       that leaves it (sp__ctx_jump_final), so the resumed side may free it.
 *   C3  Sanitizers are told about every switch: ASan through
 *       __sanitizer_{start,finish}_switch_fiber, TSan through
 *       __tsan_switch_to_fiber, valgrind through stack registration
 *       (arch/stack.c, under -DUSE_VALGRIND).
 *   C4  A switch neither pushes nor pops the CPU's return-stack predictor
 *       (x86_64 without sanitizers: jump_fcontext is entered by push+jmp,
 *       see sp__ctx_jump), so returns after a switch are predicted.
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
#elif defined(__x86_64__) && !defined(SP_CTX_PLAIN_CALL)
/* Enters jump_fcontext without a call (C4): push the resume address, jump.
 * jump_fcontext resumes the other side with `jmp *r8`, never `ret`, so a
 * `call` here would leave one stale entry on the CPU's return-stack
 * predictor per switch, and every later `ret` of the resumed fiber would
 * be mispredicted (two per yield, about a third of its cost). Entered this
 * way, a switch pushes nothing and pops nothing, and the predictor stays
 * in step with the stacks. The 128 bytes skipped first are the SysV red
 * zone, which the push and jump_fcontext's save area would overwrite.
 * Clobbers: every register the call ABI lets a callee change (the resumed
 * side continues with whatever the switcher left in them). */
static inline transfer_t sp__ctx_jump(sp__ctx_t *to, void *data) {
  fcontext_t target = to->fctx;
  to->fctx = NULL; /* C1 */
  register void *rdi __asm__("rdi") = target;
  register void *rsi __asm__("rsi") = data;
  register void *rax __asm__("rax");
  register void *rdx __asm__("rdx");
  __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                   "lea 1f(%%rip), %%rax\n\t"
                   "push %%rax\n\t"
                   "jmp jump_fcontext@PLT\n"
                   "1:\n\t"
                   "lea 128(%%rsp), %%rsp"
                   : "=r"(rax), "=r"(rdx), "+r"(rdi), "+r"(rsi)
                   :
                   : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2",
                     "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                     "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)",
                     "st(4)", "st(5)", "st(6)", "st(7)"
#ifdef __AVX512F__
                     , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
                     "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
                     "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#endif
  );
  return (transfer_t){rax, rdx};
}
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
