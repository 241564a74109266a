/*
 * ctx_cancel_bench.c: cancelling many fibers blocked under one context.
 *
 * A driver fiber makes a context (sp_ctx_with_cancel) and starts n fibers
 * with sp_wg_go on one WaitGroup; each enters the context, counts itself
 * and blocks in sp_chan_recv on a channel nobody sends to (a receive that
 * only the cancellation ends). Once all n are parked (their count is n and
 * the runtime counted n parks besides the driver's own sleeps), the driver
 * calls sp_ctx_cancel and waits on the WaitGroup. The result is the time
 * from the sp_ctx_cancel call to the end of sp_wg_wait, in ms (name
 * ctx_cancel): every receive returned -ECANCELED (checked) and every fiber
 * finished. A first round warms the stack pool and is not reported. The
 * runtime's default stack is SP_STACK_MIN (16 KiB), as in wg_fanin.
 * Flags: --workers=W (1) --n=N fibers (100k).
 * Go twin: bench/go/ctx_cancel (n goroutines in a select on a channel
 * nobody sends to and ctx.Done(); cancel(); wg.Wait()).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"
#include "sync/sp_ctx.h"

typedef struct {
  sp_ctx_t *ctx;
  sp_chan_t *never;
  int64_t ready; /* atomic: fibers about to block */
  int64_t wrong; /* atomic: receives that did not return -ECANCELED */
} shared_t;

typedef struct {
  int64_t n;
  int64_t elapsed; /* ns, written by the driver */
} run_t;

static void *blocked(void *arg) {
  shared_t *s = arg;
  sp_ctx_t *prev = sp_ctx_enter(s->ctx);
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_RELEASE);
  int rc = sp_chan_recv(s->never, NULL, SP_FOREVER);
  if (rc != -ECANCELED) __atomic_add_fetch(&s->wrong, 1, __ATOMIC_RELAXED);
  sp_ctx_leave(prev);
  return NULL;
}

/* Parks the driver until all n fibers are parked in their receive: their
 * count reached n, and the runtime counted n parks since parks0 besides
 * the driver's own sleeps. */
static void await_parked(shared_t *s, int64_t n, uint64_t parks0) {
  uint64_t own = 0;
  sp_runtime_t *rt = sp_runtime_current();
  for (;;) {
    own++; /* counted before the sleep: an upper bound once it is read */
    sp_sleep_for(1000000);
    if (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < n) continue;
    sp_stats_t st;
    sp_runtime_stats(rt, &st);
    if (st.parks - parks0 >= (uint64_t)n + own) return;
  }
}

static void *driver(void *arg) {
  run_t *r = arg;
  shared_t s = {0};
  int rc = sp_ctx_with_cancel(NULL, &s.ctx);
  if (rc < 0) bu_die("ctx_with_cancel", rc);
  if ((rc = sp_chan_make(&s.never, 0, 0)) < 0) bu_die("chan_make", rc);
  sp_waitgroup_t wg = {0};
  sp_stats_t st;
  sp_runtime_stats(sp_runtime_current(), &st);
  for (int64_t i = 0; i < r->n; i++)
    if ((rc = sp_wg_go(&wg, NULL, blocked, &s)) < 0) bu_die("wg_go", rc);
  await_parked(&s, r->n, st.parks);

  int64_t t0 = bu_now_ns();
  if ((rc = sp_ctx_cancel(s.ctx, 0)) < 0) bu_die("ctx_cancel", rc);
  if ((rc = sp_wg_wait(&wg, SP_FOREVER)) < 0) bu_die("wg_wait", rc);
  r->elapsed = bu_now_ns() - t0;

  if (s.wrong) {
    fprintf(stderr, "ctx_cancel_bench: %lld receives did not return -ECANCELED\n",
            (long long)s.wrong);
    bu_die("receive result", -EPROTO);
  }
  sp_ctx_release(s.ctx);
  if ((rc = sp_chan_free(s.never)) < 0) bu_die("chan_free", rc);
  return NULL;
}

/* Blocks n fibers, cancels them; returns ms from the cancel to the end. */
static double measure(sp_runtime_t *rt, int64_t n) {
  run_t r = {.n = n};
  bu_run_fiber(rt, driver, &r);
  return (double)r.elapsed / 1e6;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 100000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "ctx_cancel_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime_stack(workers, SP_STACK_MIN);
  double warm = measure(rt, n);
  double ms = measure(rt, n);
  fprintf(stderr, "ctx_cancel_bench: %lld fibers: warm-up %.1f ms, measured %.1f ms (%.0f ns/fiber)\n",
          (long long)n, warm, ms, ms * 1e6 / (double)n);
  bu_result("ctx_cancel", workers, ms, "ms");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
