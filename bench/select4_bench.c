/*
 * select4_bench.c: sp_select over 4 receive cases.
 *
 * 4 producer fibers each send 0..n/4-1 (int64_t) on their own unbuffered
 * channel; a consumer fiber runs sp_select over the 4 receive cases n
 * times (rounded down to a multiple of 4). Every select takes one value;
 * usually several producers are blocked in send, so the select picks one
 * of the ready cases at random, and when none is ready it parks on all 4.
 * The result is the consumer's wall time / selects, in ns per select (name
 * select4). Checked: every channel delivered n/4 values, in order.
 * Flags: --workers=W (1) --n=N selects (1M).
 * Go twin: bench/go/select4 (a select statement with 4 cases).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define CHANS 4

typedef struct {
  sp_chan_t *ch[CHANS];
  int64_t per;     /* values per producer */
  int64_t elapsed; /* ns, written by the consumer */
} run_t;

typedef struct {
  sp_chan_t *ch;
  int64_t per;
} prod_t;

static void *producer(void *arg) {
  prod_t *p = arg;
  for (int64_t i = 0; i < p->per; i++) {
    int rc = sp_chan_send(p->ch, &i, SP_FOREVER);
    if (rc < 0) bu_die("send", rc);
  }
  return NULL;
}

static void *consumer(void *arg) {
  run_t *r = arg;
  prod_t args[CHANS];
  sp_fiber_t f[CHANS];
  int64_t v[CHANS], next[CHANS] = {0};
  sp_case_t cs[CHANS];
  for (int i = 0; i < CHANS; i++) {
    args[i] = (prod_t){r->ch[i], r->per};
    cs[i] = (sp_case_t){.op = SP_RECV, .chan = r->ch[i], .elem = &v[i]};
    int rc = sp_spawn(NULL, &f[i], producer, &args[i], NULL);
    if (rc < 0) bu_die("spawn producer", rc);
  }
  int64_t t0 = bu_now_ns();
  for (int64_t k = 0; k < CHANS * r->per; k++) {
    int i = sp_select(cs, CHANS, SP_FOREVER);
    if (i < 0) bu_die("select", i);
    if (cs[i].result != 0 || v[i] != next[i]++) {
      fprintf(stderr, "select4_bench: case %d: result %d, value %lld\n", i, cs[i].result,
              (long long)v[i]);
      exit(1);
    }
  }
  r->elapsed = bu_now_ns() - t0;
  for (int i = 0; i < CHANS; i++) {
    int rc = sp_join(f[i], NULL, SP_FOREVER);
    if (rc < 0) bu_die("join producer", rc);
  }
  return NULL;
}

/* Runs 4 * per selects; returns ns per select. */
static double measure(sp_runtime_t *rt, int64_t per) {
  run_t r = {.per = per};
  int rc;
  for (int i = 0; i < CHANS; i++)
    if ((rc = sp_chan_make(&r.ch[i], sizeof(int64_t), 0)) < 0) bu_die("chan_make", rc);
  sp_fiber_t c;
  if ((rc = sp_spawn(rt, &c, consumer, &r, NULL)) < 0) bu_die("spawn consumer", rc);
  if ((rc = sp_join(c, NULL, SP_FOREVER)) < 0) bu_die("join consumer", rc);
  for (int i = 0; i < CHANS; i++) sp_chan_free(r.ch[i]);
  return (double)r.elapsed / (double)(CHANS * per);
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 1000000);
  if (workers < 1 || n < CHANS) {
    fprintf(stderr, "select4_bench: need --workers>=1 and --n>=%d\n", CHANS);
    return 2;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  measure(rt, n / CHANS / 10 + 1); /* warm-up */
  bu_result("select4", workers, measure(rt, n / CHANS), "ns/op");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
