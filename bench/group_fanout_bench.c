/*
 * group_fanout_bench.c: fan-out and wait through a task group.
 *
 * A driver fiber makes a group (sp_group_init, a child of the background
 * context, no limit unless --limit) and starts n members with
 * sp_group_go; member i does a little work (a splitmix64 of i into slot i
 * of an array) and returns 0. Then it waits (sp_group_wait). The result is
 * the time from sp_group_init to the end of sp_group_wait, in ms (name
 * group_fanout; group_fanout_cold for the first fan-out, with fresh
 * stacks). The slots are checked against a serial computation. The
 * runtime's default stack is SP_STACK_MIN (16 KiB), as in wg_fanin.
 * Flags: --workers=W (1) --n=N members (100k) --limit=L (0: none).
 * Go twin: bench/go/group_fanout (errgroup.WithContext, g.Go, g.Wait).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"
#include "sync/sp_group.h"

static uint64_t *slots; /* n results; member i writes slots[i] only */

static uint64_t mix(uint64_t x) { /* splitmix64 */
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static int task(void *arg) {
  uint64_t *slot = arg;
  *slot = mix((uint64_t)(slot - slots));
  return 0;
}

typedef struct {
  int64_t n;
  int limit;
  int64_t elapsed; /* ns, written by the driver */
} run_t;

static void *driver(void *arg) {
  run_t *r = arg;
  int64_t t0 = bu_now_ns();
  sp_group_t *g;
  int rc = sp_group_init(&g, NULL, r->limit);
  if (rc < 0) bu_die("group_init", rc);
  for (int64_t i = 0; i < r->n; i++)
    if ((rc = sp_group_go(g, task, &slots[i])) < 0) bu_die("group_go", rc);
  if ((rc = sp_group_wait(g, SP_FOREVER)) < 0) bu_die("group_wait", rc);
  r->elapsed = bu_now_ns() - t0;
  if ((rc = sp_group_free(g)) < 0) bu_die("group_free", rc);
  return NULL;
}

/* Fans out n members; returns ms. */
static double measure(sp_runtime_t *rt, int64_t n, int limit) {
  for (int64_t i = 0; i < n; i++) slots[i] = 0;
  run_t r = {.n = n, .limit = limit};
  bu_run_fiber(rt, driver, &r);
  for (int64_t i = 0; i < n; i++)
    if (slots[i] != mix((uint64_t)i)) {
      fprintf(stderr, "group_fanout_bench: slot %lld is wrong\n", (long long)i);
      bu_die("check", -EPROTO);
    }
  return (double)r.elapsed / 1e6;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", "limit", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  int64_t n = bu_flag(argc, argv, "n", 100000);
  int64_t limit = bu_flag(argc, argv, "limit", 0);
  if (workers < 1 || n < 1 || limit < 0 || limit > INT32_MAX) {
    fprintf(stderr, "group_fanout_bench: need --workers>=1, --n>=1 and --limit>=0\n");
    return 2;
  }
  slots = calloc((size_t)n, sizeof *slots);
  if (!slots) bu_die("calloc", -ENOMEM);
  sp_runtime_t *rt = bu_runtime_stack(workers, SP_STACK_MIN);
  bu_result("group_fanout_cold", workers, measure(rt, n, (int)limit), "ms");
  bu_result("group_fanout", workers, measure(rt, n, (int)limit), "ms");
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  free(slots);
  return 0;
}
