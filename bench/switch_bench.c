/*
 * switch_bench.c: the raw context switch of arch/context.h, no scheduler.
 *
 * The main thread's context and one coroutine context ping-pong with
 * sp__ctx_jump; each side stores the fctx it receives into the other
 * side's sp__ctx_t (the contract leaves that to the resumed side). The
 * result is wall time divided by the number of switches (two per round
 * trip), in ns:
 *   switch              both contexts have the same MXCSR.
 *   switch_mxcsr_flag   the coroutine raised FE_INEXACT once, so its MXCSR
 *                       has the sticky PE flag and the main context's not:
 *                       every switch loads a different MXCSR.
 *   switch_mxcsr_round  the coroutine runs with FE_UPWARD rounding.
 * The bench checks that the two MXCSR values differ and that the main
 * context's MXCSR is untouched afterwards (MXCSR is per context; the x87
 * status word is not, see context.h).
 * Flags: --n=N round trips (5M). --workers is accepted and only echoed.
 * No Go twin: Go has no user-visible context switch.
 */
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "arch/context.h"
#include "bench/bench_util.h"

#define STACK_SIZE ((size_t)64 * 1024)

enum mode { SAME, FLAG, ROUND };

static sp__ctx_t main_ctx, co_ctx;
static enum mode co_mode;
static volatile double sink = 1.0; /* keeps the FP operation below */
static unsigned co_mxcsr;          /* the coroutine's MXCSR, for the log */

/* MXCSR of the caller (0 where there is none). */
static unsigned read_mxcsr(void) {
#if defined(__x86_64__)
  return __builtin_ia32_stmxcsr();
#else
  return 0;
#endif
}

/* The coroutine: sets up its FP state, then bounces back until told to
 * stop (data != NULL). */
static void co_entry(transfer_t t) {
  sp__ctx_entered();
  main_ctx.fctx = t.fctx;
  if (co_mode == FLAG) {
    /* An SSE division sets MXCSR.PE. Not feraiseexcept(FE_INEXACT): glibc
     * raises it with an x87 instruction, and the x87 status word is not
     * per context (context.h). */
    sink = sink / 3.0;
  } else if (co_mode == ROUND) {
    fesetround(FE_UPWARD);
  }
  co_mxcsr = read_mxcsr();
  for (;;) {
    transfer_t r = sp__ctx_jump(&main_ctx, NULL);
    main_ctx.fctx = r.fctx;
    if (r.data) break;
  }
  sp__ctx_jump_final(&main_ctx, NULL);
}

/* Runs n round trips against a fresh coroutine in mode m; returns the
 * elapsed ns. Integer only: an FP operation here could set a flag in the
 * main context (and the compiler may move FP math across the check). */
__attribute__((noinline)) static int64_t measure(enum mode m, int64_t n, void *stack) {
  feclearexcept(FE_ALL_EXCEPT);
  co_mode = m;
  co_mxcsr = 0;
  sp__ctx_make(&co_ctx, stack, STACK_SIZE, co_entry);
  transfer_t r = sp__ctx_jump(&co_ctx, NULL); /* first entry: set FP state */
  co_ctx.fctx = r.fctx;
  unsigned main_mxcsr = read_mxcsr();
  int64_t t0 = bu_now_ns();
  for (int64_t i = 0; i < n; i++) {
    r = sp__ctx_jump(&co_ctx, NULL);
    co_ctx.fctx = r.fctx;
  }
  int64_t t1 = bu_now_ns();
  sp__ctx_jump(&co_ctx, (void *)1); /* let it finish */
  sp__ctx_release(&co_ctx);
  unsigned now_mxcsr = read_mxcsr();
  if (now_mxcsr != main_mxcsr || fegetround() != FE_TONEAREST) {
    fprintf(stderr, "switch_bench: the coroutine's FP state leaked into main: MXCSR %#x -> %#x\n",
            main_mxcsr, now_mxcsr);
    exit(1);
  }
  if (m != SAME && co_mxcsr == main_mxcsr) {
    fprintf(stderr, "switch_bench: the coroutine's MXCSR does not differ (%#x)\n", co_mxcsr);
    exit(1);
  }
  if (m != SAME)
    fprintf(stderr, "switch_bench: MXCSR main %#x, coroutine %#x\n", main_mxcsr, co_mxcsr);
  return t1 - t0;
}

static void report(const char *name, int workers, int64_t ns, int64_t n) {
  bu_result(name, workers, (double)ns / (2.0 * (double)n), "ns/switch");
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 5000000);
  if (n < 1) {
    fprintf(stderr, "switch_bench: need --n>=1\n");
    return 2;
  }
  void *stack = aligned_alloc(4096, STACK_SIZE);
  if (!stack) bu_die("aligned_alloc", -12);
  sp__ctx_init_thread(&main_ctx);
  fesetround(FE_TONEAREST);

  measure(SAME, n / 10 + 1, stack); /* warm-up */
  int64_t same = measure(SAME, n, stack);
  int64_t flag = measure(FLAG, n, stack);
  int64_t round = measure(ROUND, n, stack);
  report("switch", workers, same, n);
  report("switch_mxcsr_flag", workers, flag, n);
  report("switch_mxcsr_round", workers, round, n);
  free(stack);
  return 0;
}
