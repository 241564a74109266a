/*
 * showcase.c: what Spindle is for, in three measurements a Go programmer
 * knows. Prints "metric value" lines; scripts/showcase runs it beside its
 * Go twin (examples/go/showcase) and prints both side by side.
 *
 *   skynet    a tree of 1,000,000 fibers (fan-out 10); every fiber spawns
 *             its children, joins them and returns the sum of their ids.
 *   sleepers  1,000,000 fibers asleep at once: memory per sleeping fiber
 *             (a fresh runtime, so no stack is reused from skynet).
 *   switch    2 fibers on a 1-worker runtime handing the CPU back and
 *             forth with yield: nanoseconds per switch.
 *
 * Usage: showcase [--workers=N] [--fibers=N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/spindle.h"

static const sp_spawn_opts_t small = {"skynet", SP_STACK_MIN, 0};

/* One node of the tree: returns the sum of the ids of its leaves. */
static void *skynet(void *arg) {
  uint64_t packed = (uint64_t)(uintptr_t)arg; /* id << 24 | level size */
  uint64_t id = packed >> 24, size = packed & 0xffffff;
  if (size == 1) return (void *)(uintptr_t)id;
  sp_fiber_t kids[10];
  uint64_t step = size / 10;
  for (int i = 0; i < 10; i++) {
    uint64_t child = (id + (uint64_t)i * step) << 24 | step;
    if (sp_spawn(NULL, &kids[i], skynet, (void *)(uintptr_t)child, &small) != 0) abort();
  }
  uint64_t sum = 0;
  for (int i = 0; i < 10; i++) {
    void *r;
    if (sp_join(kids[i], &r, SP_FOREVER) != 0) abort();
    sum += (uint64_t)(uintptr_t)r;
  }
  return (void *)(uintptr_t)sum;
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * sysconf(_SC_PAGESIZE);
}

static void *sleeper(void *arg) {
  sp_sleep_until((int64_t)(intptr_t)arg);
  return NULL;
}

static void *yielder(void *arg) {
  long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; i++) sp_yield();
  return NULL;
}

int main(int argc, char **argv) {
  int workers = 0;
  long fibers = 1000000;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--workers=", 10) == 0) workers = atoi(argv[i] + 10);
    else if (strncmp(argv[i], "--fibers=", 9) == 0) fibers = atol(argv[i] + 9);
    else {
      fprintf(stderr, "usage: %s [--workers=N] [--fibers=N]\n", argv[0]);
      return 2;
    }
  }
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = workers;
  sp_runtime_t *rt;
  int rc = sp_runtime_create(&rt, &cfg);
  if (rc < 0) {
    fprintf(stderr, "showcase: sp_runtime_create: %s\n", sp_strerror(rc));
    return 1;
  }
  printf("workers %d\n", sp_runtime_workers(rt));

  /* skynet: leaves are numbered 0..fibers-1, so the sum is known */
  long leaves = 1;
  while (leaves * 10 <= fibers) leaves *= 10;
  sp_stats_t s0, s1;
  sp_runtime_stats(rt, &s0);
  int64_t t0 = sp_now();
  sp_fiber_t root;
  if (sp_spawn(rt, &root, skynet, (void *)(uintptr_t)(uint64_t)leaves, &small) != 0) return 1;
  void *sum;
  sp_join(root, &sum, SP_FOREVER);
  int64_t t1 = sp_now();
  sp_runtime_stats(rt, &s1);
  if ((uint64_t)(uintptr_t)sum != (uint64_t)leaves * (uint64_t)(leaves - 1) / 2) {
    fprintf(stderr, "showcase: skynet sum is wrong\n");
    return 1;
  }
  printf("skynet_fibers %" PRIu64 "\n", s1.spawned - s0.spawned);
  printf("skynet_ms %.1f\n", (double)(t1 - t0) / 1e6);
  printf("skynet_stacks %" PRIu64 "\n", s1.stacks);

  rc = sp_runtime_destroy(rt);
  if (rc < 0) return 1;

  /* sleepers: all asleep until a common deadline, RSS measured meanwhile */
  long before = rss_bytes();
  if (sp_runtime_create(&rt, &cfg) < 0) return 1;
  int64_t wake = sp_deadline_in(3000000000LL);
  sp_spawn_opts_t det = {"sleeper", SP_STACK_MIN, 1};
  for (long i = 0; i < fibers; i++)
    if (sp_spawn(rt, NULL, sleeper, (void *)(intptr_t)wake, &det) != 0) return 1;
  sp_stats_t st;
  do {
    usleep(20000);
    sp_runtime_stats(rt, &st);
  } while (st.parks < (uint64_t)fibers && sp_now() < wake);
  long during = rss_bytes();
  printf("sleepers %ld\n", fibers);
  printf("bytes_per_sleeping_fiber %.0f\n", (double)(during - before) / (double)fibers);
  rc = sp_runtime_destroy(rt); /* waits for them to wake and finish */
  if (rc < 0) return 1;

  /* switch: two fibers yielding to each other on one worker */
  cfg.workers = 1;
  if (sp_runtime_create(&rt, &cfg) < 0) return 1;
  const long per = 2000000;
  sp_fiber_t ys[2];
  t0 = sp_now();
  for (int i = 0; i < 2; i++) sp_spawn(rt, &ys[i], yielder, (void *)(intptr_t)per, NULL);
  for (int i = 0; i < 2; i++) sp_join(ys[i], NULL, SP_FOREVER);
  t1 = sp_now();
  printf("switch_ns %.1f\n", (double)(t1 - t0) / (double)(2 * per));
  rc = sp_runtime_destroy(rt);
  return rc == 0 ? 0 : 1;
}
