/*
 * census.c: debug mode's stack census: the deepest stack use per spawn
 * site, printed when the runtime is destroyed, so users can size stacks.
 *
 * Model: in debug mode a fiber's stack is painted with a byte pattern when
 * its context is made (at spawn, or at its first run: sched.c S9); when
 * the fiber finishes, the lowest byte that no longer holds the pattern
 * marks the deepest point its stack reached. Results are
 * kept per spawn site (file, line) in a small table under a lock.
 * Invariants:
 *   N1  Paint happens before the context is prepared on the stack; the scan
 *       happens before the stack goes back to the pool.
 *   N2  Costs only in debug mode (a memset per fiber, a scan at exit).
 * Locks: census_lock (leaf).
 * Rejected: counting resident pages with mincore (pooled stacks keep pages
 *   from earlier fibers, so it over-reports).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"

#ifdef USE_VALGRIND
#include <valgrind/memcheck.h>
#endif

#define PAINT 0xcd

void sp__census_paint(struct sp_fiber *f) {
  if (!f->rt->cfg.debug) return;
  memset(f->stack.lo, PAINT, f->stack.size); /* N1 */
}

/* Bytes of f's stack that were ever used (from the top down). Reads the
 * dead fiber's stack, where ASan may still hold redzone poison of frames
 * that never returned: not instrumented. */
__attribute__((no_sanitize_address)) static size_t used_bytes(const struct sp_fiber *f) {
  const unsigned char *p = f->stack.lo, *end = p + f->stack.size;
#ifdef USE_VALGRIND
  /* memcheck holds a dead stack's frames inaccessible (they lie below
   * where its stack pointer last was); this scan reads them on purpose */
  VALGRIND_MAKE_MEM_DEFINED(f->stack.lo, f->stack.size);
#endif
  const uint64_t pattern = 0x0101010101010101ull * PAINT;
  while (p + 8 <= end && *(const uint64_t *)p == pattern) p += 8;
  while (p < end && *p == PAINT) p++;
  return (size_t)(end - p);
}

void sp__census_record(struct sp_fiber *f) {
  struct sp_runtime *rt = f->rt;
  if (!rt->cfg.debug) return;
  size_t used = used_bytes(f);
  SP_MLOCK(&rt->census_lock, RANK_LEAF);
  unsigned h = ((unsigned)(uintptr_t)f->file * 31u + (unsigned)f->line) % SP__CENSUS_SLOTS;
  for (unsigned k = 0; k < SP__CENSUS_SLOTS; k++) {
    sp__census_t *c = &rt->census[(h + k) % SP__CENSUS_SLOTS];
    if (!c->file || (c->file == f->file && c->line == f->line)) {
      c->file = f->file;
      c->line = f->line;
      c->fibers++;
      if (used > c->deepest) c->deepest = used;
      if (f->stack.size > c->size) c->size = f->stack.size;
      break;
    }
  } /* a full table drops the sample: it is a diagnostic */
  SP_MUNLOCK(&rt->census_lock, RANK_LEAF);
}

void sp__census_print(struct sp_runtime *rt) {
  if (!rt->cfg.debug) return;
  bool any = false;
  SP_MLOCK(&rt->census_lock, RANK_LEAF);
  for (unsigned k = 0; k < SP__CENSUS_SLOTS; k++) {
    sp__census_t *c = &rt->census[k];
    if (!c->file) continue;
    if (!any) fprintf(stderr, "spindle: stack census (deepest use per spawn site):\n");
    any = true;
    fprintf(stderr, "  %s:%d: %llu fiber(s), deepest %.1f KiB of %zu KiB\n", c->file, c->line,
            (unsigned long long)c->fibers, (double)c->deepest / 1024.0, c->size / 1024);
  }
  SP_MUNLOCK(&rt->census_lock, RANK_LEAF);
}
