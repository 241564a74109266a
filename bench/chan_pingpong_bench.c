/*
 * chan_pingpong_bench.c: round trip over unbuffered channels.
 *
 * A driver fiber and an echo fiber share two unbuffered channels of
 * int64_t, one each way: the driver sends i on ping and receives it back on
 * pong, n times; the echo fiber receives on ping and sends on pong until
 * ping is closed. The result is wall time / n, in ns per round trip (name
 * chan_pingpong): two handoffs and, on one worker, two switches. With two
 * workers the echo fiber may be stolen, and then every handoff wakes a
 * fiber on the other worker.
 * Flags: --workers=W (1) --n=N round trips (500k).
 * Go twin: bench/go/chan_pingpong.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

typedef struct {
  sp_chan_t *ping, *pong;
  int64_t n;
  int64_t elapsed; /* ns, written by the driver */
} run_t;

static void *echo(void *arg) {
  run_t *r = arg;
  int64_t v;
  while (sp_chan_recv(r->ping, &v, SP_FOREVER) == 0) {
    int rc = sp_chan_send(r->pong, &v, SP_FOREVER);
    if (rc < 0) bu_die("send pong", rc);
  }
  return NULL;
}

static void *driver(void *arg) {
  run_t *r = arg;
  sp_fiber_t e;
  int rc = sp_spawn(NULL, &e, echo, r, NULL);
  if (rc < 0) bu_die("spawn echo", rc);
  int64_t t0 = bu_now_ns();
  for (int64_t i = 0; i < r->n; i++) {
    int64_t v = i;
    if ((rc = sp_chan_send(r->ping, &v, SP_FOREVER)) < 0) bu_die("send ping", rc);
    if ((rc = sp_chan_recv(r->pong, &v, SP_FOREVER)) < 0) bu_die("recv pong", rc);
    if (v != i) {
      fprintf(stderr, "chan_pingpong_bench: got %lld back, want %lld\n", (long long)v,
              (long long)i);
      exit(1);
    }
  }
  r->elapsed = bu_now_ns() - t0;
  sp_chan_close(r->ping);
  if ((rc = sp_join(e, NULL, SP_FOREVER)) < 0) bu_die("join echo", rc);
  return NULL;
}

/* Runs n round trips; returns ns per round trip. */
static double measure(sp_runtime_t *rt, int64_t n) {
  run_t r = {.n = n};
  int rc;
  if ((rc = sp_chan_make(&r.ping, sizeof(int64_t), 0)) < 0) bu_die("chan_make", rc);
  if ((rc = sp_chan_make(&r.pong, sizeof(int64_t), 0)) < 0) bu_die("chan_make", rc);
  bu_run_fiber(rt, driver, &r);
  sp_chan_free(r.ping);
  sp_chan_free(r.pong);
  return (double)r.elapsed / (double)n;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 500000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "chan_pingpong_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  measure(rt, n / 10 + 1); /* warm-up */
  bu_result("chan_pingpong", workers, measure(rt, n), "ns/op");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
