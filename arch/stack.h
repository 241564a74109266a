/*
 * stack.h: fiber stacks: mmap'd, guard page below, pooled for reuse.
 * See stack.c for the model and invariants.
 */
#ifndef SP_ARCH_STACK_H
#define SP_ARCH_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pooled size classes: 16 KiB << k for k in [0, SP__STACK_CLASSES). Larger
 * stacks get a mapping of their own and are unmapped on free. */
#define SP__STACK_CLASSES 8
#ifndef SP__STACK_CACHE
#define SP__STACK_CACHE 16 /* stacks per class a worker keeps without locking */
#endif

typedef struct sp__stack {
  void *lo;    /* lowest usable address; the guard page is just below */
  size_t size; /* usable bytes */
  bool fresh;  /* no fiber has run on it yet: its pages may be untouched */
} sp__stack_t;

struct sp__stack_chunk;

/* How guard pages are made: probed on first use (MADV_GUARD_INSTALL where
 * the kernel has it, else mprotect). */
enum sp__guard_mode { SP__GUARD_UNPROBED, SP__GUARD_MADVISE, SP__GUARD_MPROTECT };

/* Per-runtime pool. Fields are protected by lock unless noted. */
typedef struct sp__stack_pool {
  pthread_mutex_t lock;
  struct sp__stack_chunk *chunks;              /* every mapping, for teardown */
  void **free[SP__STACK_CLASSES];  /* free slots per class: lo | 1 while fresh (stack.c K4) */
  size_t nfree[SP__STACK_CLASSES], capfree[SP__STACK_CLASSES];
  struct sp__stack_chunk *carve[SP__STACK_CLASSES]; /* chunk being carved */
  size_t next_chunk_slots[SP__STACK_CLASSES];
  int guard_mode;          /* atomic: enum sp__guard_mode; tests may preset MPROTECT */
  uint64_t mapped;    /* stacks carved or mapped, in use or free */
  int64_t in_use;     /* atomic: stacks handed out and not yet freed, less
                         what the caches count (a cache's `used`) */
} sp__stack_pool_t;

/* A worker's private cache in front of the pool (owner thread only). */
typedef struct sp__stack_cache {
  void *slot[SP__STACK_CLASSES][SP__STACK_CACHE]; /* lo | 1 while fresh (stack.c K4) */
  int n[SP__STACK_CLASSES];
  /* atomic, written by the owner only: stacks allocated minus stacks freed
   * through this cache (negative when others allocated what it freed);
   * in use = pool in_use + the sum over caches, without a counter that
   * every worker's spawn and exit would bounce between cores */
  int64_t used;
} sp__stack_cache_t;

void sp__stack_pool_init(sp__stack_pool_t *p);
/* Unmaps everything. Stacks still in use become invalid. */
void sp__stack_pool_destroy(sp__stack_pool_t *p);

/* Gets a stack of at least `size` usable bytes. cache may be NULL (foreign
 * threads). Returns 0 or -ENOMEM; on -ENOMEM, *why names the limit hit.
 * Runs on: any thread. Locks: pool lock on a cache miss. Switches: no. */
int sp__stack_alloc(sp__stack_pool_t *p, sp__stack_cache_t *cache, size_t size,
                    sp__stack_t *out, const char **why);

/* Returns a stack (not in use by any context) to the cache or the pool.
 * Runs on: any thread. Locks: pool lock when the cache is full. Switches: no. */
void sp__stack_free(sp__stack_pool_t *p, sp__stack_cache_t *cache, sp__stack_t s);

/* Trades *s, a fresh stack (s->fresh: no fiber has run on it), for the
 * used stack nearest the top of the cache's stack of the same class,
 * looking a few entries down (the one freed last: resident, and likely in
 * the CPU's caches), and puts *s there in its place, still marked fresh.
 * No-op when *s is not fresh or has no class, or no used stack is that
 * near the top. Lets a fiber spawned long before it first runs use a warm
 * stack: a spawner that queues 100k fibers on one worker before any runs
 * then touches a few stacks' pages, not 100k.
 * Runs on: the cache's owner. Locks: none. Switches: no. */
void sp__stack_swap_cached(sp__stack_cache_t *cache, sp__stack_t *s);

/* Moves every cached stack back to the pool (worker exit). */
void sp__stack_cache_drain(sp__stack_pool_t *p, sp__stack_cache_t *cache);

#ifdef __cplusplus
}
#endif
#endif /* SP_ARCH_STACK_H */
