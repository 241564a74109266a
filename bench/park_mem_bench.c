/*
 * park_mem_bench.c: resident memory per parked fiber.
 *
 * n fibers park in a join chain: fiber i (1..n) joins fiber i-1, and fiber
 * 0, the gate, sleeps in 1 ms steps until the main thread releases it. A
 * spawner fiber starts them all (its own stack is pooled again before the
 * second reading, so it adds at most one fiber's worth). So
 * every chain fiber is parked in sp_join (the public API has no other
 * primitive that parks until released). The main thread reads the RSS
 * (/proc/self/statm) before spawning and once all n fibers have reached
 * their sp_join and the runtime counted n parks; the result is the growth
 * divided by n, in bytes (name park_mem). Then it opens the gate, the
 * chain unwinds, and the main thread joins the last fiber.
 * The handle array is allocated and touched before the first reading, so
 * it is not counted. Every fiber gets a 16 KiB stack (SP_STACK_MIN).
 * Flags: --workers=W (1) --n=N fibers (1M).
 * Go twin: bench/go/park_mem (goroutines blocked on a channel receive).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

static int ready;   /* atomic: chain fibers about to park */
static int release; /* atomic: set by main to let the gate return */
static uint64_t gate_sleeps; /* atomic: the gate's parks, counted before each */

static void *gate(void *arg) {
  while (!__atomic_load_n(&release, __ATOMIC_ACQUIRE)) {
    __atomic_add_fetch(&gate_sleeps, 1, __ATOMIC_RELEASE);
    sp_sleep_for(1000000);
  }
  return NULL;
}

static void *link_fiber(void *arg) {
  sp_fiber_t prev = *(sp_fiber_t *)arg;
  __atomic_add_fetch(&ready, 1, __ATOMIC_RELEASE);
  int rc = sp_join(prev, NULL, SP_FOREVER);
  if (rc < 0) bu_die("join in chain", rc);
  return NULL;
}

typedef struct {
  sp_fiber_t *h; /* n + 1 handles: the gate, then the chain */
  int64_t n;
} spawner_t;

/* Spawns the gate and the chain from inside the runtime (as the Go twin
 * does from a goroutine); spawning from the main thread would measure
 * futex wake-ups of idle workers instead. */
static void *spawner(void *arg) {
  spawner_t *s = arg;
  sp_spawn_opts_t opts = {.name = "link", .stack_size = SP_STACK_MIN};
  int rc = sp_spawn(NULL, &s->h[0], gate, NULL, &opts);
  if (rc < 0) bu_die("spawn gate", rc);
  for (int64_t i = 1; i <= s->n; i++) {
    rc = sp_spawn(NULL, &s->h[i], link_fiber, &s->h[i - 1], &opts);
    if (rc < 0) bu_die("spawn", rc);
  }
  return NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 1000000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "park_mem_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  int rc;
  sp_fiber_t *h = malloc((size_t)(n + 1) * sizeof *h);
  if (!h) bu_die("malloc", -12);
  memset(h, 0, (size_t)(n + 1) * sizeof *h);

  int64_t rss0 = bu_rss_bytes();
  int64_t t0 = bu_now_ns();
  spawner_t sp = {h, n};
  sp_fiber_t sf;
  rc = sp_spawn(rt, &sf, spawner, &sp, NULL);
  if (rc < 0) bu_die("spawn spawner", rc);
  rc = sp_join(sf, NULL, SP_FOREVER);
  if (rc < 0) bu_die("join spawner", rc);
  while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) < n) sleep_ms(1);
  sp_stats_t st;
  for (;;) { /* the last few may still be between the count and the park */
    sleep_ms(5);
    sp_runtime_stats(rt, &st);
    /* read after the stats: an upper bound of the gate's parks in them */
    uint64_t g = __atomic_load_n(&gate_sleeps, __ATOMIC_ACQUIRE);
    if (st.parks >= (uint64_t)n + g) break;
  }
  int64_t rss1 = bu_rss_bytes();
  int64_t t1 = bu_now_ns();
  fprintf(stderr, "park_mem_bench: %lld fibers parked in %.0f ms; rss %.1f -> %.1f MiB, "
          "stacks mapped %llu\n", (long long)n, (double)(t1 - t0) / 1e6,
          (double)rss0 / 1048576.0, (double)rss1 / 1048576.0, (unsigned long long)st.stacks);
  bu_result("park_mem", workers, (double)(rss1 - rss0) / (double)n, "B/fiber");

  __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
  rc = sp_join(h[n], NULL, SP_FOREVER);
  if (rc < 0) bu_die("join last", rc);
  /* The joiner is woken before the finished fiber leaves the live count,
   * so give the count a moment to drop. */
  for (int i = 0; i < 1000; i++) {
    sp_runtime_stats(rt, &st);
    if (st.live == 0) break;
    sleep_ms(1);
  }
  if (st.live != 0) {
    fprintf(stderr, "park_mem_bench: %llu fibers still live\n", (unsigned long long)st.live);
    return 1;
  }
  fprintf(stderr, "park_mem_bench: released in %.0f ms; rss after release %.1f MiB\n",
          (double)(bu_now_ns() - t1) / 1e6, (double)bu_rss_bytes() / 1048576.0);
  rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  free(h);
  return 0;
}
