/*
 * hello.c: a user program outside Bazel. install_test.sh compiles it with
 * plain cc against an installed Spindle:
 *   cc hello.c $(pkg-config --cflags --libs spindle)
 * A runtime with two workers runs a few fibers that sleep and yield; main
 * joins them and checks what they did. Exits 0 only if everything is right.
 */
#include <spindle.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { NFIBERS = 6, ROUNDS = 6 };

#define SLEEP_NS ((int64_t)2 * 1000 * 1000) /* 2 ms */

struct job {
  int rounds;       /* rounds completed */
  int err;          /* first error from sp_sleep_for / sp_yield */
  uint64_t id;      /* sp_fiber_id() */
  int64_t slept_ns; /* time spent in the sleeping rounds */
  char name[SP_NAME_MAX + 1];
};

static int failures;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      fprintf(stderr, "hello: FAIL %s: ", #cond); \
      fprintf(stderr, __VA_ARGS__);               \
      fputc('\n', stderr);                        \
      failures++;                                 \
    }                                             \
  } while (0)

/* Even rounds sleep, odd rounds yield. Returns its argument. */
static void *work(void *arg) {
  struct job *j = arg;
  j->id = sp_fiber_id();
  snprintf(j->name, sizeof j->name, "%s", sp_fiber_name());
  for (int r = 0; r < ROUNDS; r++) {
    int rc;
    if (r % 2 == 0) {
      int64_t t0 = sp_now();
      rc = sp_sleep_for(SLEEP_NS);
      j->slept_ns += sp_now() - t0;
    } else {
      rc = sp_yield();
    }
    if (rc != 0) {
      j->err = rc;
      break;
    }
    j->rounds++;
  }
  return j;
}

int main(void) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = 2;

  sp_runtime_t *rt = NULL;
  int rc = sp_runtime_create(&rt, &cfg);
  if (rc != 0) {
    fprintf(stderr, "hello: sp_runtime_create: %s\n", sp_strerror(rc));
    return 1;
  }
  CHECK(sp_runtime_workers(rt) == 2, "workers = %d", sp_runtime_workers(rt));
  /* main is a foreign thread: no fiber, no yielding. */
  CHECK(sp_yield() == -EPERM, "sp_yield outside a fiber");
  CHECK(sp_runtime_current() == NULL, "sp_runtime_current on a foreign thread");

  struct job jobs[NFIBERS];
  sp_fiber_t fibers[NFIBERS];
  memset(jobs, 0, sizeof jobs);
  for (int i = 0; i < NFIBERS; i++) {
    sp_spawn_opts_t opts = {.name = "hello"};
    rc = sp_spawn(rt, &fibers[i], work, &jobs[i], &opts);
    CHECK(rc == 0, "sp_spawn %d: %s", i, sp_strerror(rc));
    if (rc != 0) return 1;
  }

  for (int i = 0; i < NFIBERS; i++) {
    void *result = NULL;
    rc = sp_join(fibers[i], &result, sp_deadline_in((int64_t)10 * 1000000000));
    CHECK(rc == 0, "sp_join %d: %s", i, sp_strerror(rc));
    CHECK(result == &jobs[i], "fiber %d returned %p", i, result);
    CHECK(jobs[i].err == 0, "fiber %d: %s", i, sp_strerror(jobs[i].err));
    CHECK(jobs[i].rounds == ROUNDS, "fiber %d ran %d rounds", i, jobs[i].rounds);
    CHECK(jobs[i].slept_ns >= (ROUNDS + 1) / 2 * SLEEP_NS, "fiber %d slept %lld ns", i,
          (long long)jobs[i].slept_ns);
    CHECK(strcmp(jobs[i].name, "hello") == 0, "fiber %d name '%s'", i, jobs[i].name);
    CHECK(jobs[i].id != 0, "fiber %d id 0", i);
    for (int k = 0; k < i; k++)
      CHECK(jobs[k].id != jobs[i].id, "fibers %d and %d share id %llu", k, i,
            (unsigned long long)jobs[i].id);
    /* A joined handle is stale, not a crash. */
    CHECK(sp_join(fibers[i], NULL, 0) == -ESRCH, "second join of fiber %d", i);
  }

  rc = sp_runtime_shutdown(rt, sp_deadline_in((int64_t)10 * 1000000000));
  CHECK(rc == 0, "sp_runtime_shutdown: %s", sp_strerror(rc));
  /* After shutdown (a fiber counts as live a moment after its joiner wakes). */
  sp_stats_t st;
  CHECK(sp_runtime_stats(rt, &st) == 0, "sp_runtime_stats");
  CHECK(st.spawned == NFIBERS, "spawned %llu", (unsigned long long)st.spawned);
  CHECK(st.live == 0, "live %llu", (unsigned long long)st.live);
  rc = sp_runtime_destroy(rt);
  CHECK(rc == 0, "sp_runtime_destroy: %s", sp_strerror(rc));

  if (failures) {
    fprintf(stderr, "hello: %d check(s) failed\n", failures);
    return 1;
  }
  printf("hello: %d fibers x %d rounds ok\n", NFIBERS, ROUNDS);
  return 0;
}
