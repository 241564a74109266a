/*
 * pipeline.c: a worker pool in Go's style, with channels, select and a
 * WaitGroup. Prints "metric value" lines; scripts/showcase runs it beside
 * its Go twin (examples/go/pipeline) and prints both side by side.
 *
 *   generator  one fiber sends job ids 0..jobs-1 on `jobs`, then closes it.
 *   workers    a pool of fibers (sp_wg_go) receive jobs until `jobs` is
 *              closed, hash each id (a few dozen rounds of a 64-bit mixer)
 *              and send {id, hash} on `results`.
 *   closer     waits on the WaitGroup, then closes `results`.
 *   collector  sums the hashes (the checksum, the same in Go), with
 *              sp_select over `results` and `done`, and a deadline: if no
 *              result arrives for 1 s it reports a timeout. `done` is closed
 *              by a watchdog once the whole run exceeds its budget (Go's
 *              ctx.Done()); neither fires in a healthy run.
 *
 * Usage: pipeline [--workers=N] [--jobs=N] [--pool=W]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/spindle.h"

#define ROUNDS 48                    /* CPU work per job */
#define QUEUE 128                    /* capacity of both channels */
#define IDLE_NS 1000000000LL         /* collector: max wait for one result */
#define BUDGET_NS 60000000000LL      /* watchdog: max time for the whole run */

typedef struct {
  uint64_t id, hash;
} result_t;

typedef struct {
  sp_chan_t *jobs, *results, *done, *stop;
  sp_waitgroup_t wg;
  int64_t njobs;
  int pool;
} pipe_t;

/* The job: murmur3's 64-bit finaliser, ROUNDS times. */
static uint64_t work(uint64_t x) {
  for (int i = 0; i < ROUNDS; i++) {
    x += 0x9e3779b97f4a7c15ULL;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
  }
  return x;
}

static void *generator(void *arg) {
  pipe_t *p = arg;
  for (uint64_t i = 0; i < (uint64_t)p->njobs; i++)
    if (sp_chan_send(p->jobs, &i, SP_FOREVER) != 0) break;
  sp_chan_close(p->jobs);
  return NULL;
}

static void *worker(void *arg) {
  pipe_t *p = arg;
  uint64_t id;
  while (sp_chan_recv(p->jobs, &id, SP_FOREVER) == 0) {
    result_t r = {id, work(id)};
    if (sp_chan_send(p->results, &r, SP_FOREVER) != 0) break;
  }
  return NULL;
}

static void *closer(void *arg) {
  pipe_t *p = arg;
  sp_wg_wait(&p->wg, SP_FOREVER);
  sp_chan_close(p->results);
  return NULL;
}

/* Closes done if stop is not closed within the budget. */
static void *watchdog(void *arg) {
  pipe_t *p = arg;
  if (sp_chan_recv(p->stop, NULL, sp_deadline_in(BUDGET_NS)) == -ETIMEDOUT) sp_chan_close(p->done);
  return NULL;
}

/* Starts the stages and collects; returns 0, or 1 on a timeout or cancel. */
static void *run(void *arg) {
  pipe_t *p = arg;
  int64_t t0 = sp_now();
  if (sp_go(watchdog, p) != 0 || sp_go(generator, p) != 0) abort();
  for (int i = 0; i < p->pool; i++)
    if (sp_wg_go(&p->wg, NULL, worker, p) != 0) abort();
  if (sp_go(closer, p) != 0) abort();

  result_t r;
  sp_case_t cs[2] = {{.op = SP_RECV, .chan = p->results, .elem = &r},
                     {.op = SP_RECV, .chan = p->done}};
  uint64_t sum = 0;
  int64_t items = 0;
  const char *status = "ok";
  for (;;) {
    int i = sp_select(cs, 2, sp_deadline_in(IDLE_NS));
    if (i == 0 && cs[0].result == 0) {
      sum += r.hash;
      items++;
      continue;
    }
    if (i == -ETIMEDOUT) status = "timeout: no result for 1 s";
    else if (i == 1) status = "cancelled: over the time budget";
    break; /* else results was closed: every worker finished */
  }
  int64_t t1 = sp_now();
  sp_chan_close(p->stop);
  printf("pipeline_pool %d\n", p->pool);
  printf("pipeline_items %" PRId64 "\n", items);
  printf("pipeline_ms %.1f\n", (double)(t1 - t0) / 1e6);
  printf("items_per_sec %.0f\n", (double)items / ((double)(t1 - t0) / 1e9));
  printf("pipeline_checksum 0x%016" PRIx64 "\n", sum);
  printf("pipeline_status %s\n", status);
  return (void *)(intptr_t)(strcmp(status, "ok") != 0 || items != p->njobs);
}

int main(int argc, char **argv) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  pipe_t p = {.njobs = 1000000, .pool = 8};
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--workers=", 10) == 0) cfg.workers = atoi(argv[i] + 10);
    else if (strncmp(argv[i], "--jobs=", 7) == 0) p.njobs = atoll(argv[i] + 7);
    else if (strncmp(argv[i], "--pool=", 7) == 0) p.pool = atoi(argv[i] + 7);
    else {
      fprintf(stderr, "usage: %s [--workers=N] [--jobs=N] [--pool=W]\n", argv[0]);
      return 2;
    }
  }
  if (p.njobs < 0 || p.pool < 1) {
    fprintf(stderr, "pipeline: need --jobs>=0 and --pool>=1\n");
    return 2;
  }
  sp_runtime_t *rt;
  int rc = sp_runtime_create(&rt, &cfg);
  if (rc < 0) {
    fprintf(stderr, "pipeline: sp_runtime_create: %s\n", sp_strerror(rc));
    return 1;
  }
  if (sp_chan_make(&p.jobs, sizeof(uint64_t), QUEUE) < 0 ||
      sp_chan_make(&p.results, sizeof(result_t), QUEUE) < 0 ||
      sp_chan_make(&p.done, 0, 0) < 0 || sp_chan_make(&p.stop, 0, 0) < 0)
    return 1;
  printf("workers %d\n", sp_runtime_workers(rt));
  sp_fiber_t f;
  void *failed;
  if (sp_spawn(rt, &f, run, &p, NULL) < 0 || sp_join(f, &failed, SP_FOREVER) < 0) return 1;
  if (failed) return 1; /* fibers may still be blocked: no clean shutdown */
  rc = sp_runtime_destroy(rt);
  sp_chan_free(p.jobs);
  sp_chan_free(p.results);
  sp_chan_free(p.done);
  sp_chan_free(p.stop);
  return rc == 0 ? 0 : 1;
}
