/*
 * spawn_join_bench.c: cost of sp_spawn of a fiber that returns at once,
 * plus sp_join of it, done one after the other by a driver fiber.
 *
 * Result: ns per spawn+join pair (name spawn_join). The children use the
 * runtime's default stack size (pooled stacks, so the size does not change
 * the cost). With two workers the child may be stolen and run on the
 * other worker while the driver parks in sp_join.
 * Flags: --workers=W (1) --n=N pairs (500k).
 * Go twin: bench/go/spawn_join (go func + sync.WaitGroup).
 */
#include <stdint.h>
#include <stdio.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

typedef struct {
  int64_t n;
  int64_t elapsed; /* ns */
} run_t;

static void *child(void *arg) { return arg; }

static void *driver(void *arg) {
  run_t *r = arg;
  int64_t t0 = bu_now_ns();
  for (int64_t i = 0; i < r->n; i++) {
    sp_fiber_t f;
    int rc = sp_spawn(NULL, &f, child, NULL, NULL);
    if (rc < 0) bu_die("spawn", rc);
    rc = sp_join(f, NULL, SP_FOREVER);
    if (rc < 0) bu_die("join", rc);
  }
  r->elapsed = bu_now_ns() - t0;
  return NULL;
}

static double measure(sp_runtime_t *rt, int64_t n) {
  run_t r = {.n = n};
  bu_run_fiber(rt, driver, &r);
  return (double)r.elapsed / (double)n;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 500000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "spawn_join_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  int rc;
  measure(rt, n / 10 + 1); /* warm-up */
  bu_result("spawn_join", workers, measure(rt, n), "ns/op");
  rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
