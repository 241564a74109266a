/*
 * fileread_bench.c: random 4 KiB reads from a file in the page cache.
 *
 * A --mib MiB file is written in $TMPDIR (or /tmp; unlinked at once, so
 * nothing is left behind) and read once from start to end, so that it sits
 * in the page cache. Then --fibers fibers read 4 KiB blocks at random
 * block-aligned offsets with sp_pread, --n reads in all, each checking the
 * block number written at the start of its block. Results: reads per
 * second of wall time (name fileread) and reads per CPU-second of the
 * process (fileread_cpu: user + system time, getrusage).
 * Flags: --workers=W (1) --n=N reads (200k) --fibers=F (64) --mib=M (64).
 * Go twin: bench/go/fileread (goroutines, (*os.File).ReadAt).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "runtime/spindle.h"

#define BLOCK 4096
#define CHUNK (1 << 20) /* setup writes and reads 1 MiB at a time */

typedef struct {
  int fd;
  int64_t blocks, n, fibers;
} run_t;

typedef struct {
  run_t *r;
  int64_t reads;
  uint64_t seed;
} reader_t;

/* xorshift64*: the same sequence as the Go twin's. */
static uint64_t next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dULL;
}

static void *reader(void *arg) {
  reader_t *rd = arg;
  char buf[BLOCK];
  for (int64_t i = 0; i < rd->reads; i++) {
    int64_t b = (int64_t)(next(&rd->seed) % (uint64_t)rd->r->blocks);
    ssize_t n = sp_pread(rd->r->fd, buf, BLOCK, (off_t)(b * BLOCK), SP_FOREVER);
    if (n != BLOCK) bu_die("pread", n < 0 ? (int)n : -EIO);
    int64_t got;
    memcpy(&got, buf, sizeof got);
    if (got != b) bu_die("pread: wrong block", -EIO);
  }
  return NULL;
}

/* Writes the file (each block starts with its number) and reads it once. */
static void *setup(void *arg) {
  run_t *r = arg;
  char *chunk = malloc(CHUNK);
  if (!chunk) bu_die("malloc", -ENOMEM);
  for (int64_t off = 0; off < r->blocks * BLOCK; off += CHUNK) {
    for (int64_t b = 0; b < CHUNK / BLOCK; b++) {
      int64_t id = off / BLOCK + b;
      memset(chunk + b * BLOCK, (int)(id & 0xff), BLOCK);
      memcpy(chunk + b * BLOCK, &id, sizeof id);
    }
    int rc = sp_write_all(r->fd, chunk, CHUNK, SP_FOREVER, NULL);
    if (rc < 0) bu_die("write", rc);
  }
  for (int64_t off = 0; off < r->blocks * BLOCK; off += CHUNK) {
    ssize_t n = sp_pread(r->fd, chunk, CHUNK, (off_t)off, SP_FOREVER);
    if (n != CHUNK) bu_die("warm-up read", n < 0 ? (int)n : -EIO);
  }
  free(chunk);
  return NULL;
}

static void *driver(void *arg) {
  run_t *r = arg;
  reader_t *rds = calloc((size_t)r->fibers, sizeof *rds);
  sp_fiber_t *fs = calloc((size_t)r->fibers, sizeof *fs);
  if (!rds || !fs) bu_die("calloc", -ENOMEM);
  for (int64_t i = 0; i < r->fibers; i++) {
    rds[i] = (reader_t){r, r->n / r->fibers + (i < r->n % r->fibers), (uint64_t)i + 1};
    int rc = sp_spawn(NULL, &fs[i], reader, &rds[i], NULL);
    if (rc < 0) bu_die("spawn reader", rc);
  }
  for (int64_t i = 0; i < r->fibers; i++) {
    int rc = sp_join(fs[i], NULL, SP_FOREVER);
    if (rc < 0) bu_die("join reader", rc);
  }
  free(rds);
  free(fs);
  return NULL;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"workers", "n", "fibers", "mib", NULL};
  bu_check_flags(argc, argv, flags);
  int workers = (int)bu_flag(argc, argv, "workers", 1);
  run_t r = {.n = bu_flag(argc, argv, "n", 200000), .fibers = bu_flag(argc, argv, "fibers", 64)};
  r.blocks = bu_flag(argc, argv, "mib", 64) * (CHUNK / BLOCK);
  if (workers < 1 || r.n < 1 || r.fibers < 1 || r.blocks < 1) {
    fprintf(stderr, "fileread_bench: need --workers, --n, --fibers and --mib >= 1\n");
    return 2;
  }
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char path[4096];
  snprintf(path, sizeof path, "%s/fileread_bench.XXXXXX", dir);
  if ((r.fd = mkstemp(path)) < 0 || unlink(path) < 0) {
    fprintf(stderr, "fileread_bench: %s: %s\n", path, strerror(errno));
    return 1;
  }
  sp_runtime_t *rt = bu_runtime(workers);
  bu_run_fiber(rt, setup, &r);
  run_t warm = r;
  warm.n = r.n / 10 + 1;
  bu_run_fiber(rt, driver, &warm);
  double c0 = cpu_seconds();
  int64_t t0 = bu_now_ns();
  bu_run_fiber(rt, driver, &r);
  double secs = (double)(bu_now_ns() - t0) / 1e9, cpu = cpu_seconds() - c0;
  bu_result("fileread", workers, (double)r.n / secs, "reads/s");
  bu_result("fileread_cpu", workers, cpu > 0 ? (double)r.n / cpu : 0, "reads/cpu-s");
  fprintf(stderr, "fileread_bench: %lld reads of %d B by %lld fibers in %.3f s (%.0f MB/s), %.3f CPU-s\n",
          (long long)r.n, BLOCK, (long long)r.fibers, secs, (double)r.n * BLOCK / secs / 1e6, cpu);
  close(r.fd);
  int rc = sp_runtime_destroy(rt);
  if (rc < 0) bu_die("runtime_destroy", rc);
  return 0;
}
