/*
 * chan_buffered_bench.c: throughput of a buffered channel.
 *
 * One producer fiber sends 0..n-1 (int64_t) on a channel of capacity 1024,
 * then closes it; one consumer fiber receives until the channel is closed
 * and checks the count and the sum. The result is the wall time from
 * spawning both to joining both, divided by n: ns per item (name
 * chan_buffered). On one worker the two take turns filling and draining
 * the buffer; with two they usually run on separate workers and share it.
 * Flags: --workers=W (1) --n=N items (2M).
 * Go twin: bench/go/chan_buffered.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define CAP 1024

typedef struct {
  sp_chan_t *ch;
  int64_t n;
  int64_t got, sum; /* written by the consumer */
} run_t;

static void *producer(void *arg) {
  run_t *r = arg;
  for (int64_t i = 0; i < r->n; i++) {
    int rc = sp_chan_send(r->ch, &i, SP_FOREVER);
    if (rc < 0) bu_die("send", rc);
  }
  sp_chan_close(r->ch);
  return NULL;
}

static void *consumer(void *arg) {
  run_t *r = arg;
  int64_t v, got = 0, sum = 0;
  while (sp_chan_recv(r->ch, &v, SP_FOREVER) == 0) {
    got++;
    sum += v;
  }
  r->got = got;
  r->sum = sum;
  return NULL;
}

/* Moves n items through a fresh channel; returns ns per item. */
static double measure(sp_runtime_t *rt, int64_t n) {
  run_t r = {.n = n};
  int rc = sp_chan_make(&r.ch, sizeof(int64_t), CAP);
  if (rc < 0) bu_die("chan_make", rc);
  sp_fiber_t p, c;
  sp_stats_t s0;
  bu_stats_begin(rt, &s0);
  int64_t t0 = bu_now_ns();
  if ((rc = sp_spawn(rt, &c, consumer, &r, NULL)) < 0) bu_die("spawn consumer", rc);
  if ((rc = sp_spawn(rt, &p, producer, &r, NULL)) < 0) bu_die("spawn producer", rc);
  if ((rc = sp_join(p, NULL, SP_FOREVER)) < 0) bu_die("join producer", rc);
  if ((rc = sp_join(c, NULL, SP_FOREVER)) < 0) bu_die("join consumer", rc);
  int64_t elapsed = bu_now_ns() - t0;
  bu_stats_end(rt, &s0);
  if (r.got != n || r.sum != n * (n - 1) / 2) {
    fprintf(stderr, "chan_buffered_bench: got %lld items summing to %lld\n", (long long)r.got,
            (long long)r.sum);
    exit(1);
  }
  sp_chan_free(r.ch);
  return (double)elapsed / (double)n;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 2000000);
  if (workers < 1 || n < 1) {
    fprintf(stderr, "chan_buffered_bench: need --workers>=1 and --n>=1\n");
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  measure(rt, n / 10 + 1); /* warm-up */
  bu_result("chan_buffered", workers, measure(rt, n), "ns/op");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
