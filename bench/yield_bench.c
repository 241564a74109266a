/*
 * yield_bench.c: cost of sp_yield().
 *
 * K fibers each call sp_yield() n times; the result is wall time divided by
 * the total number of yields (K * n), in ns. A driver fiber spawns the K
 * fibers on its own worker, waits until all of them are running, then
 * opens a start flag and joins them, so spawning is not timed.
 *   yield_1f  one fiber: with nothing else runnable on its worker Spindle's
 *             yield returns at once (no switch), so this is the fast path.
 *   yield_2f  two fibers: on one worker every yield is a switch to the
 *             other fiber (ping-pong). With two workers the fibers may run
 *             on different workers, and then each yield is again a no-op.
 * Flags: --workers=W (1) --n=N yields per fiber (2M) --fibers=K (0: both
 * 1 and 2).
 * Go twin: bench/go/yield (runtime.Gosched()).
 */
#include <stdint.h>
#include <stdio.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define MAX_FIBERS 64

typedef struct {
  int64_t n;        /* yields per fiber */
  int k;            /* fibers */
  int ready;        /* atomic: fibers that reached the start line */
  int start;        /* atomic: set by the driver to start yielding */
  int64_t elapsed;  /* ns, written by the driver */
} run_t;

static void *yielder(void *arg) {
  run_t *r = arg;
  __atomic_add_fetch(&r->ready, 1, __ATOMIC_ACQ_REL);
  while (!__atomic_load_n(&r->start, __ATOMIC_ACQUIRE)) sp_yield();
  for (int64_t i = 0; i < r->n; i++) sp_yield();
  return NULL;
}

static void *driver(void *arg) {
  run_t *r = arg;
  sp_fiber_t f[MAX_FIBERS];
  for (int i = 0; i < r->k; i++) {
    int rc = sp_spawn(NULL, &f[i], yielder, r, NULL);
    if (rc < 0) bu_die("spawn", rc);
  }
  while (__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) < r->k) sp_yield();
  int64_t t0 = bu_now_ns();
  __atomic_store_n(&r->start, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < r->k; i++) {
    int rc = sp_join(f[i], NULL, SP_FOREVER);
    if (rc < 0) bu_die("join", rc);
  }
  r->elapsed = bu_now_ns() - t0;
  return NULL;
}

/* Runs one measurement with k fibers; returns ns per yield. */
static double measure(sp_runtime_t *rt, int k, int64_t n) {
  run_t r = {.n = n, .k = k};
  bu_run_fiber(rt, driver, &r);
  return (double)r.elapsed / ((double)k * (double)n);
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", "fibers", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 2000000);
  int fibers = (int)bu_flag(argc, argv, "fibers", 0);
  if (workers < 1 || n < 1 || fibers < 0 || fibers > MAX_FIBERS) {
    fprintf(stderr, "yield_bench: need --workers>=1, --n>=1, 0<=--fibers<=%d\n", MAX_FIBERS);
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  int rc;

  measure(rt, 2, n / 20 + 1); /* warm-up: stacks, blocks, caches */
  for (int k = 1; k <= 2; k++) {
    if (fibers && k != fibers) continue;
    char name[32];
    snprintf(name, sizeof name, "yield_%df", k);
    bu_result(name, workers, measure(rt, k, n), "ns/op");
  }
  if (fibers > 2) {
    char name[32];
    snprintf(name, sizeof name, "yield_%df", fibers);
    bu_result(name, workers, measure(rt, fibers, n), "ns/op");
  }
  rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
