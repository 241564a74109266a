/*
 * wg_fanin_bench.c: fan-in through an sp_waitgroup_t.
 *
 * A driver fiber starts n fibers with sp_wg_go (Go's wg.Go: add 1, spawn
 * a detached fiber that calls done when its body returns; the body does
 * nothing) on one zero-initialised WaitGroup, then waits on it. The result
 * is the time from the first sp_wg_go to the end of sp_wg_wait, in ms (name
 * wg_fanin). The runtime's default stack is SP_STACK_MIN (16 KiB): on one
 * worker the driver does not yield while spawning, so all n fibers exist
 * at once (as do Go's n goroutines, with 2 KiB stacks).
 * Flags: --workers=W (1) --n=N fibers (100k).
 * Go twin: bench/go/wg_fanin (wg.Add(1) + go func() { wg.Done() }()).
 */
#include <stdint.h>
#include <stdio.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

typedef struct {
  int64_t n;
  int64_t elapsed; /* ns, written by the driver */
} run_t;

static void *nothing(void *arg) { return arg; }

static void *driver(void *arg) {
  run_t *r = arg;
  sp_waitgroup_t wg = {0};
  int64_t t0 = bu_now_ns();
  for (int64_t i = 0; i < r->n; i++) {
    int rc = sp_wg_go(&wg, NULL, nothing, NULL);
    if (rc < 0) bu_die("wg_go", rc);
  }
  int rc = sp_wg_wait(&wg, SP_FOREVER);
  if (rc < 0) bu_die("wg_wait", rc);
  r->elapsed = bu_now_ns() - t0;
  return NULL;
}

/* Fans in n fibers; returns ms. */
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
    fprintf(stderr, "wg_fanin_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime_stack(workers, SP_STACK_MIN);
  bu_result("wg_fanin_cold", workers, measure(rt, n), "ms");
  bu_result("wg_fanin", workers, measure(rt, n), "ms");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
