/*
 * stack.c: fiber stacks: mmap'd, guard page below, pooled per size class.
 *
 * Model: stacks come in power-of-two size classes (16 KiB .. 2 MiB). Each
 * class carves slots out of large chunks: one mmap(MAP_NORESERVE) holding n
 * slots of [guard page | usable bytes], n doubling per chunk up to 4096. The
 * guard page of a slot is installed when the slot is first carved, with
 * madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which leaves the chunk one
 * memory map entry. On older kernels it falls back to mprotect(PROT_NONE),
 * which costs two map entries per slot, so vm.max_map_count (65530 by
 * default) caps live stacks near 32k there; hitting it is an -ENOMEM that
 * names the sysctl. Stacks larger than the largest class get a mapping of
 * their own.
 * Freed stacks go to the freeing worker's cache (SP__STACK_CACHE per class,
 * no lock), overflowing half of it to the pool's free array (pool lock).
 * Pages a fiber touched stay resident while pooled: reuse is then free of
 * page faults, which is what spawn-heavy programs want. A fiber gets its
 * stack when spawned (so spawning is where -ENOMEM is reported). If no
 * fiber has run on that stack yet (a fresh slot: its pages were never
 * touched), the fiber trades it, when it first runs, for the used stack
 * nearest the top of the running worker's cache, looking SWAP_DEPTH
 * entries down (sp__stack_swap_cached): the cache is LIFO, so fibers
 * queued long before they run reuse the few resident, recently used
 * stacks instead of touching fresh ones.
 *
 * Invariants:
 *   K1  A slot is either carved-and-in-use, in exactly one cache or free
 *       array, or not yet carved. A slot reserved for carving whose guard
 *       then fails is never handed out (its pages stay untouched).
 *   K2  Every carved slot has its guard page installed before first use.
 *   K3  A stack entering a cache or free array has no ASan poison left
 *       (stale redzones would give false reports on reuse; BUILD-NOTES P14).
 *   K4  Bit 0 of a cache or free-array entry is set exactly when no fiber
 *       has run on that stack (a carved slot traded away at a first run);
 *       sp__stack_t.fresh carries the mark while the stack is handed out,
 *       and sp__stack_free clears it (the stack was run on).
 *   K5  A full cache sends its fresh stacks to the pool first (untouched,
 *       so nothing is lost by moving them) and keeps the stack
 *       being freed, which a trade is about to want. A cache full of used
 *       stacks sends that one and its newer half instead, keeping the
 *       older half: programs that free many stacks in the order they got
 *       them then get them back in runs of ascending addresses. Waking
 *       100k fibers so placed took 60-63 ms, against 75-80 ms when the
 *       stacks came back in exact reverse order (ctx_cancel, one worker;
 *       bench/RESULTS.md).
 * Locks: pool.lock (leaf; no other lock is taken under it, and no guard
 * is installed under it: a worker that frees stacks would wait on the
 * madvise of one that carves).
 * Rejected: one mmap per stack (one map entry per stack plus a syscall per
 * spawn); returning pooled pages with MADV_DONTNEED on every free (a
 * syscall per fiber exit; the pool is freed at runtime destroy instead).
 */
#define _GNU_SOURCE
#include "arch/stack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/context.h"

#ifdef SP_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef USE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; Debian 12's headers lack it */
#endif

#define PAGE ((size_t)4096)
#define CLASS_MIN ((size_t)16 * 1024)
#define CHUNK_SLOTS_MIN 8
#define CHUNK_SLOTS_MAX 4096
#define SWAP_DEPTH 4 /* cache entries a trade looks at, from the top */


struct sp__stack_chunk {
  struct sp__stack_chunk *next;
  char *base;
  size_t len, stride, nslots, carved;
};

static int class_of(size_t size) {
  size_t c = CLASS_MIN;
  for (int k = 0; k < SP__STACK_CLASSES; k++, c <<= 1)
    if (size <= c) return k;
  return -1;
}

static size_t class_size(int k) { return CLASS_MIN << k; }

/* A cache or free-array entry is a stack's lo, with bit 0 set while no
 * fiber has run on the stack (K4). */
static void *tag_fresh(void *lo) { return (void *)((uintptr_t)lo | 1); }
static bool is_fresh(void *e) { return ((uintptr_t)e & 1) != 0; }
static void *untag(void *e) { return (void *)((uintptr_t)e & ~(uintptr_t)1); }

/* Hands out entry e (K4: its mark becomes s->fresh). */
static void hand_out(sp__stack_t *s, void *e) {
  s->lo = untag(e);
  s->fresh = is_fresh(e);
}

void sp__stack_pool_init(sp__stack_pool_t *p) {
  memset(p, 0, sizeof *p);
  pthread_mutexattr_t a; /* adaptive: workers allocating and freeing collide */
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&p->lock, &a);
  pthread_mutexattr_destroy(&a);
  for (int k = 0; k < SP__STACK_CLASSES; k++) p->next_chunk_slots[k] = CHUNK_SLOTS_MIN;
}

void sp__stack_pool_destroy(sp__stack_pool_t *p) {
  struct sp__stack_chunk *c = p->chunks;
  while (c) {
    struct sp__stack_chunk *next = c->next;
    UNPOISON(c->base, c->len);
    munmap(c->base, c->len);
    free(c);
    c = next;
  }
  for (int k = 0; k < SP__STACK_CLASSES; k++) free(p->free[k]);
  pthread_mutex_destroy(&p->lock);
  memset(p, 0, sizeof *p);
}

/* Installs the guard page at g (K2); the first call probes the mechanism
 * (threads probing at once agree: the kernel answers them alike).
 * Runs on: any thread. Locks: none (a syscall; kept out of pool.lock, which
 * a worker freeing stacks would otherwise wait on). Switches: no. */
static int install_guard(sp__stack_pool_t *p, char *g, const char **why) {
  int mode = __atomic_load_n(&p->guard_mode, __ATOMIC_RELAXED);
  if (mode != SP__GUARD_MPROTECT) {
    int un = SP__GUARD_UNPROBED;
    if (madvise(g, PAGE, MADV_GUARD_INSTALL) == 0) {
      if (mode == SP__GUARD_UNPROBED)
        __atomic_compare_exchange_n(&p->guard_mode, &un, SP__GUARD_MADVISE, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
      return 0;
    }
    /* only a refusal (a kernel before 6.13: EINVAL; a seccomp filter:
     * EPERM or ENOSYS) moves an unprobed pool to mprotect; a failure where
     * madvise works (another thread may have just found it does) is one */
    int e = errno;
    bool refused = e == EINVAL || e == EPERM || e == ENOSYS;
    bool fallback = mode == SP__GUARD_UNPROBED && refused;
    if (fallback && !__atomic_compare_exchange_n(&p->guard_mode, &un, SP__GUARD_MPROTECT, false,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      fallback = un == SP__GUARD_MPROTECT; /* another thread's probe decided */
    if (!fallback) {
      *why = "madvise(MADV_GUARD_INSTALL) failed";
      return -ENOMEM;
    }
  }
  if (mprotect(g, PAGE, PROT_NONE) == 0) return 0;
  *why = "mprotect of a guard page failed: memory map entries exhausted "
         "(vm.max_map_count; kernels >= 6.13 avoid this with MADV_GUARD_INSTALL)";
  return -ENOMEM;
}

/* Maps a new chunk for class k. Locks: caller holds pool.lock. */
static struct sp__stack_chunk *new_chunk(sp__stack_pool_t *p, int k, const char **why) {
  size_t stride = class_size(k) + PAGE;
  size_t n = p->next_chunk_slots[k];
  struct sp__stack_chunk *c = malloc(sizeof *c);
  if (!c) {
    *why = "malloc of a stack chunk header failed";
    return NULL;
  }
  void *base = MAP_FAILED;
  while (n >= 1) { /* shrink the request if the address space is tight */
    base = mmap(NULL, n * stride, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base != MAP_FAILED) break;
    n /= 2;
  }
  if (base == MAP_FAILED) {
    free(c);
    *why = errno == ENOMEM ? "mmap of fiber stacks failed: address space, "
                             "RLIMIT_AS or vm.max_map_count exhausted"
                           : "mmap of fiber stacks failed";
    return NULL;
  }
  c->base = base;
  c->len = n * stride;
  c->stride = stride;
  c->nslots = n;
  c->carved = 0;
  c->next = p->chunks;
  p->chunks = c;
  if (p->next_chunk_slots[k] < CHUNK_SLOTS_MAX) p->next_chunk_slots[k] *= 2;
  return c;
}

/* Reserves a fresh slot of class k; its guard is not installed yet.
 * Locks: caller holds pool.lock. */
static int reserve(sp__stack_pool_t *p, int k, char **slot, const char **why) {
  struct sp__stack_chunk *c = p->carve[k];
  if (!c || c->carved == c->nslots) {
    c = new_chunk(p, k, why);
    if (!c) return -ENOMEM;
    p->carve[k] = c;
  }
  *slot = c->base + c->carved++ * c->stride;
  return 0;
}

/* Makes a reserved slot usable: its guard page (K2, outside pool.lock). A
 * slot whose guard fails stays reserved and is never handed out (K1).
 * Locks: none. */
static int carve(sp__stack_pool_t *p, int k, char *slot, void **lo, const char **why) {
  int rc = install_guard(p, slot, why);
  if (rc < 0) return rc;
  *lo = slot + PAGE;
#ifdef USE_VALGRIND
  VALGRIND_STACK_REGISTER(*lo, (char *)*lo + class_size(k));
#else
  (void)k;
#endif
  __atomic_fetch_add(&p->mapped, 1, __ATOMIC_RELAXED);
  return 0;
}

static int alloc_large(sp__stack_pool_t *p, size_t size, sp__stack_t *out, const char **why) {
  size = (size + PAGE - 1) & ~(PAGE - 1);
  char *base = mmap(NULL, size + PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    *why = "mmap of a large fiber stack failed";
    return -ENOMEM;
  }
  int rc = install_guard(p, base, why);
  if (rc < 0) {
    munmap(base, size + PAGE);
    return rc;
  }
  out->lo = base + PAGE;
  out->size = size;
  __atomic_fetch_add(&p->mapped, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Counts a stack handed out (+1) or back (-1): in the caller's cache when
 * it has one (no shared cache line), else in the pool. */
static void count(sp__stack_pool_t *p, sp__stack_cache_t *cache, int64_t d) {
  if (cache)
    __atomic_store_n(&cache->used, __atomic_load_n(&cache->used, __ATOMIC_RELAXED) + d,
                     __ATOMIC_RELAXED);
  else
    __atomic_fetch_add(&p->in_use, d, __ATOMIC_RELAXED);
}

int sp__stack_alloc(sp__stack_pool_t *p, sp__stack_cache_t *cache, size_t size,
                    sp__stack_t *out, const char **why) {
  int k = class_of(size);
  int rc = 0;
  out->fresh = true;
  if (k < 0) {
    rc = alloc_large(p, size, out, why);
  } else if (cache && cache->n[k] > 0) {
    hand_out(out, cache->slot[k][--cache->n[k]]);
    out->size = class_size(k);
  } else {
    char *slot = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nfree[k] > 0) {
      hand_out(out, p->free[k][--p->nfree[k]]);
      /* refill the cache by half while we hold the lock */
      while (cache && p->nfree[k] > 0 && cache->n[k] < SP__STACK_CACHE / 2)
        cache->slot[k][cache->n[k]++] = p->free[k][--p->nfree[k]];
    } else {
      rc = reserve(p, k, &slot, why);
    }
    pthread_mutex_unlock(&p->lock);
    if (slot) rc = carve(p, k, slot, &out->lo, why);
    out->size = class_size(k);
  }
  if (rc == 0) count(p, cache, 1);
  return rc;
}

/* Appends lo to the free array of class k. Locks: caller holds pool.lock. */
static void push_free(sp__stack_pool_t *p, int k, void *lo) {
  if (p->nfree[k] == p->capfree[k]) {
    size_t cap = p->capfree[k] ? p->capfree[k] * 2 : 64;
    void **a = realloc(p->free[k], cap * sizeof *a);
    if (!a) return; /* keep the slot carved but unused: memory, not safety */
    p->free[k] = a;
    p->capfree[k] = cap;
  }
  p->free[k][p->nfree[k]++] = lo;
}

void sp__stack_free(sp__stack_pool_t *p, sp__stack_cache_t *cache, sp__stack_t s) {
  UNPOISON(s.lo, s.size); /* K3 */
  count(p, cache, -1);
  int k = class_of(s.size);
  if (k < 0 || class_size(k) != s.size) {
#ifdef USE_VALGRIND
    /* large stacks are not registered with valgrind */
#endif
    munmap((char *)s.lo - PAGE, s.size + PAGE);
    __atomic_fetch_sub(&p->mapped, 1, __ATOMIC_RELAXED);
    return;
  }
  if (cache && cache->n[k] < SP__STACK_CACHE) {
    cache->slot[k][cache->n[k]++] = s.lo;
    return;
  }
  pthread_mutex_lock(&p->lock);
  if (!cache) {
    push_free(p, k, s.lo);
  } else { /* full: K5 */
    void **c = cache->slot[k];
    int m = 0;
    for (int i = 0; i < cache->n[k]; i++) {
      if (is_fresh(c[i]))
        push_free(p, k, c[i]);
      else
        c[m++] = c[i];
    }
    if (m <= SP__STACK_CACHE / 2) {
      c[m++] = s.lo;
    } else {
      push_free(p, k, s.lo);
      while (m > SP__STACK_CACHE / 2) push_free(p, k, c[--m]);
    }
    cache->n[k] = m;
  }
  pthread_mutex_unlock(&p->lock);
}

void sp__stack_swap_cached(sp__stack_cache_t *cache, sp__stack_t *s) {
  int k = class_of(s->size);
  if (!s->fresh || k < 0 || class_size(k) != s->size) return;
  /* the used stack nearest the top: a trade just before may have left a
   * fresh one on top, above the stack freed last */
  void **c = cache->slot[k];
  int i = cache->n[k] - 1, low = i - SWAP_DEPTH;
  while (i >= 0 && i > low && is_fresh(c[i])) i--;
  if (i < 0 || i == low) return;
  void *used = c[i];
  c[i] = tag_fresh(s->lo); /* K1: the slot moves from the caller to the cache; K3, K4 */
  s->lo = used;
  s->fresh = false;
}

void sp__stack_cache_drain(sp__stack_pool_t *p, sp__stack_cache_t *cache) {
  __atomic_fetch_add(&p->in_use, __atomic_load_n(&cache->used, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  __atomic_store_n(&cache->used, 0, __ATOMIC_RELAXED);
  pthread_mutex_lock(&p->lock);
  for (int k = 0; k < SP__STACK_CLASSES; k++)
    while (cache->n[k] > 0) push_free(p, k, cache->slot[k][--cache->n[k]]);
  pthread_mutex_unlock(&p->lock);
}
