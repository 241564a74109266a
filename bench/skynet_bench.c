/*
 * skynet_bench.c: the "skynet" fan-out benchmark on fibers.
 *
 * A tree of fibers with fan-out 10 and n leaves (n a power of 10): each
 * inner node spawns its 10 children, joins them in order and returns the
 * sum of their results; leaf i returns i. The result travels through
 * sp_join's void* (an intptr_t). The root is spawned and joined from the
 * main thread; the time from that spawn to the end of that join is the
 * result, in ms (name skynet). The sum is checked against n(n-1)/2.
 * Every fiber gets a 16 KiB stack (SP_STACK_MIN): the tree is 7 levels
 * deep with small frames.
 * Flags: --workers=W (1) --n=N leaves (1M).
 * Go twin: bench/go/skynet (goroutines and channels).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define FANOUT 10

typedef struct {
  int64_t num;  /* first leaf number under this node */
  int64_t size; /* leaves under this node */
} node_t;

static void *skynet(void *arg) {
  node_t me = *(node_t *)arg; /* the parent's array dies when it returns */
  if (me.size == 1) return (void *)(intptr_t)me.num;
  node_t kids[FANOUT];
  sp_fiber_t f[FANOUT];
  sp_spawn_opts_t opts = {.name = "skynet", .stack_size = SP_STACK_MIN};
  int64_t sub = me.size / FANOUT;
  for (int i = 0; i < FANOUT; i++) {
    kids[i] = (node_t){me.num + i * sub, sub};
    int rc = sp_spawn(NULL, &f[i], skynet, &kids[i], &opts);
    if (rc < 0) bu_die("spawn", rc);
  }
  int64_t sum = 0;
  for (int i = 0; i < FANOUT; i++) {
    void *r;
    int rc = sp_join(f[i], &r, SP_FOREVER);
    if (rc < 0) bu_die("join", rc);
    sum += (intptr_t)r;
  }
  return (void *)(intptr_t)sum;
}

/* Runs one tree of n leaves; returns ms. */
static double measure(sp_runtime_t *rt, int64_t n) {
  node_t root = {0, n};
  sp_spawn_opts_t opts = {.name = "skynet", .stack_size = SP_STACK_MIN};
  int64_t t0 = bu_now_ns();
  sp_fiber_t f;
  int rc = sp_spawn(rt, &f, skynet, &root, &opts);
  if (rc < 0) bu_die("spawn root", rc);
  void *r;
  rc = sp_join(f, &r, SP_FOREVER);
  if (rc < 0) bu_die("join root", rc);
  double ms = (double)(bu_now_ns() - t0) / 1e6;
  int64_t want = n * (n - 1) / 2;
  if ((int64_t)(intptr_t)r != want) {
    fprintf(stderr, "skynet_bench: wrong sum %lld, want %lld\n", (long long)(intptr_t)r,
            (long long)want);
    exit(1);
  }
  return ms;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 1000000);
  int64_t p = 1;
  while (p < n) p *= FANOUT;
  if (workers < 1 || n < 1 || p != n) {
    fprintf(stderr, "skynet_bench: need --workers>=1 and --n a power of %d\n", FANOUT);
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  int rc;
  bu_result("skynet", workers, measure(rt, n), "ms");
  rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
