/*
 * lockrank.h: the order in which the runtime's OS locks may be taken, as
 * data, checked in debug builds (!NDEBUG, e.g. every test build).
 *
 * A thread may take a lock only if its rank is greater than the rank of
 * every lock it already holds; a fiber may never switch out while its
 * thread holds one (park.c, sched.c: invariant L1 of lock.h). Both are
 * checked with a per-thread list of held ranks and end in sp__panic naming
 * the lock. Release builds compile the checks away.
 * Order (outermost first) and why:
 *   REGISTRY  process list of runtimes; deadlock reports walk it and wake
 *   DEADLOCK  a runtime's forever-waiters (woken under it: queue, idle)
 *   TIMER     a worker's timer heap (timers fire under it: queue, idle)
 *   QUEUE     injection queue, a worker's inbox
 *   IDLE      the idle-worker list
 *   DONE      shutdown's wait for live == 0
 *   POOL      fiber blocks and stacks (dumps read blocks under it)
 *   LEAF      everything that takes nothing else (census, install counts)
 * The sync/ primitives' own locks (lock.h) are not ranked: they never nest
 * and nothing is taken under them.
 */
#ifndef SP_RUNTIME_LOCKRANK_H
#define SP_RUNTIME_LOCKRANK_H

#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sp__rank {
  RANK_REGISTRY = 1,
  RANK_DEADLOCK,
  RANK_TIMER,
  RANK_QUEUE,
  RANK_IDLE,
  RANK_DONE,
  RANK_POOL,
  RANK_LEAF,
};

/* Initializes m as glibc's adaptive mutex: under contention it spins a
 * little before sleeping in the kernel, which suits the runtime's short
 * critical sections (a default mutex sleeps at once, and two workers that
 * collide on a queue or pool lock then pay a futex round trip each time).
 * The caller's file defines _GNU_SOURCE. */
#define SP_MUTEX_INIT_ADAPTIVE(m)                                 \
  do {                                                            \
    pthread_mutexattr_t a_;                                       \
    pthread_mutexattr_init(&a_);                                  \
    pthread_mutexattr_settype(&a_, PTHREAD_MUTEX_ADAPTIVE_NP);    \
    pthread_mutex_init((m), &a_);                                 \
    pthread_mutexattr_destroy(&a_);                               \
  } while (0)

#ifndef NDEBUG
void sp__rank_acquire(int rank, const void *lock);
void sp__rank_release(int rank, const void *lock);
/* Number of ranked locks the calling thread holds. */
int sp__rank_held(void);
#define SP_MLOCK(m, r) (pthread_mutex_lock(m), sp__rank_acquire((r), (m)))
#define SP_MTRYLOCK(m, r) (pthread_mutex_trylock(m) == 0 ? (sp__rank_acquire((r), (m)), 0) : 1)
#define SP_MUNLOCK(m, r) (sp__rank_release((r), (m)), pthread_mutex_unlock(m))
#else
#define sp__rank_held() 0
#define SP_MLOCK(m, r) pthread_mutex_lock(m)
#define SP_MTRYLOCK(m, r) (pthread_mutex_trylock(m) != 0)
#define SP_MUNLOCK(m, r) pthread_mutex_unlock(m)
#endif

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_LOCKRANK_H */
