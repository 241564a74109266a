/*
 * bench_util.c: flag parsing, clocks, RSS and result lines for the C
 * benchmarks (see bench_util.h).
 */
#define _GNU_SOURCE
#include "bench/bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/spindle.h"

/* Returns the value part of arg if it is --<name>=<value>, else NULL. */
static const char *match(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=')
    return NULL;
  return arg + 3 + n;
}

void bu_check_flags(int argc, char **argv, const char *const *known) {
  for (int i = 1; i < argc; i++) {
    int ok = 0;
    for (const char *const *k = known; *k && !ok; k++) ok = match(argv[i], *k) != NULL;
    if (ok) continue;
    fprintf(stderr, "%s: unknown argument '%s'; flags:", argv[0], argv[i]);
    for (const char *const *k = known; *k; k++) fprintf(stderr, " --%s=N", *k);
    fputc('\n', stderr);
    exit(2);
  }
}

int64_t bu_flag(int argc, char **argv, const char *name, int64_t def) {
  int64_t v = def;
  for (int i = 1; i < argc; i++) {
    const char *s = match(argv[i], name);
    if (!s) continue;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end == 'k' && end[1] == '\0') {
      x *= 1000;
      end++;
    } else if (*end == 'M' && end[1] == '\0') {
      x *= 1000000;
      end++;
    }
    if (errno || end == s || *end != '\0') {
      fprintf(stderr, "%s: bad number in '%s'\n", argv[0], argv[i]);
      exit(2);
    }
    v = x;
  }
  return v;
}

int64_t bu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bu_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = -1;
  if (fscanf(f, "%lld %lld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (int64_t)sysconf(_SC_PAGESIZE);
}

void bu_result(const char *name, int workers, double value, const char *unit) {
  printf("RESULT name=%s impl=spindle workers=%d value=%.1f unit=%s\n", name, workers, value,
         unit);
  fflush(stdout);
}

void bu_die(const char *what, int rc) {
  fprintf(stderr, "bench: %s: %s (%d)\n", what, sp_strerror(rc), rc);
  exit(1);
}

struct sp_runtime *bu_runtime(int workers) { return bu_runtime_stack(workers, 0); }

struct sp_runtime *bu_runtime_stack(int workers, size_t stack_size) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = workers;
  cfg.stack_size = stack_size;
  sp_runtime_t *rt;
  int rc = sp_runtime_create(&rt, &cfg);
  if (rc < 0) bu_die("runtime_create", rc);
  return rt;
}

static int stats_wanted(void) {
  const char *want = getenv("BU_STATS");
  return want && *want == '1';
}

void bu_stats_begin(struct sp_runtime *rt, sp_stats_t *s0) {
  if (stats_wanted()) sp_runtime_stats(rt, s0);
}

void bu_stats_end(struct sp_runtime *rt, const sp_stats_t *s0) {
  sp_stats_t s1;
  if (!stats_wanted() || sp_runtime_stats(rt, &s1) < 0) return;
  fprintf(stderr,
          "bench: run: switches %llu, parks %llu, steals %llu, worker wake-ups %llu, "
          "spawned %llu, stacks mapped %llu\n",
          (unsigned long long)(s1.switches - s0->switches), (unsigned long long)(s1.parks - s0->parks),
          (unsigned long long)(s1.steals - s0->steals), (unsigned long long)(s1.wakeups - s0->wakeups),
          (unsigned long long)(s1.spawned - s0->spawned), (unsigned long long)s1.stacks);
}

void bu_run_fiber(struct sp_runtime *rt, void *(*fn)(void *), void *arg) {
  sp_stats_t s0;
  bu_stats_begin(rt, &s0);
  sp_fiber_t d;
  int rc = sp_spawn(rt, &d, fn, arg, NULL);
  if (rc < 0) bu_die("spawn driver", rc);
  if ((rc = sp_join(d, NULL, SP_FOREVER)) < 0) bu_die("join driver", rc);
  bu_stats_end(rt, &s0);
}
