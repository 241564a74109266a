/*
 * mutex_contended_bench.c: sp_mutex_t under contention.
 *
 * 8 fibers each lock one sp_mutex_t (static, zero-initialised), increment
 * a shared counter and unlock, n times. The result is the wall time from
 * spawning them to joining them, divided by the 8n lock+unlock pairs: ns
 * per op (name mutex_contended). The counter must end at 8n. On one worker
 * fibers are not preempted, so each runs its loop without meeting the
 * others (Go's GOMAXPROCS=1 preempts every 10 ms, which is rare too); with
 * two workers the lock is contended for real.
 * Flags: --workers=W (1) --n=N ops per fiber (250k).
 * Go twin: bench/go/mutex_contended (sync.Mutex).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define FIBERS 8

static sp_mutex_t mu;
static int64_t counter; /* protected by mu */

static void *worker(void *arg) {
  int64_t n = *(int64_t *)arg;
  for (int64_t i = 0; i < n; i++) {
    int rc = sp_mutex_lock(&mu);
    if (rc < 0) bu_die("lock", rc);
    counter++;
    if ((rc = sp_mutex_unlock(&mu)) < 0) bu_die("unlock", rc);
  }
  return NULL;
}

/* Runs FIBERS fibers of n ops each; returns ns per lock+unlock. */
static double measure(sp_runtime_t *rt, int64_t n) {
  sp_fiber_t f[FIBERS];
  counter = 0;
  sp_stats_t s0;
  bu_stats_begin(rt, &s0);
  int64_t t0 = bu_now_ns();
  for (int i = 0; i < FIBERS; i++) {
    int rc = sp_spawn(rt, &f[i], worker, &n, NULL);
    if (rc < 0) bu_die("spawn", rc);
  }
  for (int i = 0; i < FIBERS; i++) {
    int rc = sp_join(f[i], NULL, SP_FOREVER);
    if (rc < 0) bu_die("join", rc);
  }
  int64_t elapsed = bu_now_ns() - t0;
  bu_stats_end(rt, &s0);
  if (counter != FIBERS * n) {
    fprintf(stderr, "mutex_contended_bench: counter %lld, want %lld\n", (long long)counter,
            (long long)(FIBERS * n));
    exit(1);
  }
  return (double)elapsed / (double)(FIBERS * n);
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 250000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "mutex_contended_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  measure(rt, n / 10 + 1); /* warm-up */
  bu_result("mutex_contended", workers, measure(rt, n), "ns/op");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
