/*
 * trace.c: a ring buffer of recent scheduler events per worker, written on
 * demand as Chrome trace-event JSON (opens in Perfetto and chrome://tracing,
 * one track per worker).
 *
 * Model: sp_trace_start allocates one ring of SP__TRACE_CAP events per
 * worker and sets each worker's tracing flag. Hot paths test that flag
 * (one relaxed load when off; a switch has one test covering both the
 * fiber leaving, with its park reason, and the one entering) and, when on,
 * append {time, kind, fiber, detail} to their own worker's ring, keeping
 * the most recent events. sp_trace_write turns the rings into JSON: a
 * "complete" span per fiber run, instant events for the rest.
 * Invariants:
 *   T1  Only a worker writes its own ring; fields are relaxed atomics so a
 *       concurrent sp_trace_write reads torn events at worst, never races.
 *   T2  Rings live until the runtime is destroyed (start/stop toggle only
 *       the flag), so a worker that saw the flag on never writes freed memory.
 * Locks: none on the recording path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/core.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static const char *const kind_name[] = {"run",  "park", "yield", "exit", "spawn",
                                         "wake", "steal", "io submit", "io complete"};

void sp__trace_rec(sp__worker_t *w, int kind, uint64_t fiber, const char *detail) {
  sp__tev_t *ring = __atomic_load_n(&w->trace, __ATOMIC_ACQUIRE);
  if (!ring) return; /* tracing started while this worker was mid-switch */
  uint64_t i = LOAD(&w->trace_n); /* T1: only this worker writes it */
  sp__tev_t *e = &ring[i % SP__TRACE_CAP];
  STORE(&e->ts, sp__mono());
  STORE(&e->kind, (uint32_t)kind);
  STORE(&e->fiber, fiber);
  STORE(&e->detail, detail);
  __atomic_store_n(&w->trace_n, i + 1, __ATOMIC_RELEASE);
}

void sp__trace_switch(sp__worker_t *w, struct sp_fiber *next) {
  struct sp_fiber *prev = w->prev;
  if (prev) {
    enum sp__action a = w->prev_action;
    sp__trace_rec(w, a == ACT_PARK ? TR_PARK : a == ACT_YIELD ? TR_YIELD : TR_EXIT, prev->id,
                  a == ACT_PARK ? prev->wait_what : NULL);
  }
  if (next) sp__trace_rec(w, TR_RUN, next->id, NULL);
}

int sp_trace_start(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    if (LOAD(&w->trace)) continue;
    sp__tev_t *ring = calloc(SP__TRACE_CAP, sizeof *ring);
    if (!ring) return -ENOMEM;
    __atomic_store_n(&w->trace, ring, __ATOMIC_RELEASE); /* T2 */
  }
  for (int i = 0; i < rt->nworkers; i++) __atomic_store_n(&rt->workers[i].tracing, 1, __ATOMIC_RELEASE);
  return 0;
}

int sp_trace_stop(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  for (int i = 0; i < rt->nworkers; i++) __atomic_store_n(&rt->workers[i].tracing, 0, __ATOMIC_RELEASE);
  return 0;
}

/* Writes one worker's events, oldest first. Returns events written. */
static int write_worker(FILE *out, sp__worker_t *w, int64_t t0, bool *first) {
  sp__tev_t *ring = __atomic_load_n(&w->trace, __ATOMIC_ACQUIRE);
  if (!ring) return 0;
  uint64_t n = LOAD(&w->trace_n);
  uint64_t start = n > SP__TRACE_CAP ? n - SP__TRACE_CAP : 0;
  int count = 0;
  for (uint64_t i = start; i < n; i++) {
    sp__tev_t *e = &ring[i % SP__TRACE_CAP];
    uint32_t kind = LOAD(&e->kind);
    if (kind >= sizeof kind_name / sizeof kind_name[0]) continue;
    double ts = (double)(LOAD(&e->ts) - t0) / 1000.0; /* trace-event time is in us */
    const char *detail = LOAD(&e->detail);
    fprintf(out, "%s\n", *first ? "" : ",");
    *first = false;
    if (kind == TR_RUN && i + 1 < n) { /* a span until the worker's next event */
      double end = (double)(LOAD(&ring[(i + 1) % SP__TRACE_CAP].ts) - t0) / 1000.0;
      fprintf(out, "{\"name\":\"fiber %llu\",\"cat\":\"fiber\",\"ph\":\"X\",\"ts\":%.3f,"
                   "\"dur\":%.3f,\"pid\":1,\"tid\":%d}",
              (unsigned long long)LOAD(&e->fiber), ts, end > ts ? end - ts : 0, w->index);
    } else {
      fprintf(out, "{\"name\":\"%s%s%s\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
                   "\"pid\":1,\"tid\":%d,\"args\":{\"fiber\":%llu}}",
              kind_name[kind], detail ? ": " : "", detail ? detail : "", ts, w->index,
              (unsigned long long)LOAD(&e->fiber));
    }
    count++;
  }
  return count;
}

int sp_trace_write(sp_runtime_t *rt, int fd) {
  if (!rt || fd < 0) return -EINVAL;
  int dupfd = dup(fd);
  FILE *out = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
  if (!out) return -errno;
  int64_t t0 = INT64_MAX; /* the oldest event is time zero */
  for (int i = 0; i < rt->nworkers; i++) {
    sp__worker_t *w = &rt->workers[i];
    sp__tev_t *ring = __atomic_load_n(&w->trace, __ATOMIC_ACQUIRE);
    uint64_t n = LOAD(&w->trace_n);
    if (ring && n) {
      int64_t ts = LOAD(&ring[(n > SP__TRACE_CAP ? n - SP__TRACE_CAP : 0) % SP__TRACE_CAP].ts);
      if (ts < t0) t0 = ts;
    }
  }
  if (t0 == INT64_MAX) t0 = sp__mono();
  fprintf(out, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
  bool first = true;
  int count = 0;
  for (int i = 0; i < rt->nworkers; i++) {
    fprintf(out, "%s\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,"
                 "\"args\":{\"name\":\"worker %d\"}}", first ? "" : ",", i, i);
    first = false;
    count += write_worker(out, &rt->workers[i], t0, &first);
  }
  fprintf(out, "\n]}\n");
  int rc = fclose(out) == 0 ? count : -EIO;
  return rc;
}

void sp__trace_free(struct sp_runtime *rt) {
  for (int i = 0; i < rt->nworkers; i++) free(rt->workers[i].trace);
}
