/*
 * futex_linux.c: the futex wait/wake pair used by idle workers, by foreign
 * threads blocked on Spindle primitives, and by the contended path of the
 * internal lock (lock.h).
 * Deadlines are absolute CLOCK_MONOTONIC (FUTEX_WAIT_BITSET takes them
 * directly, so a spurious wake-up never stretches the wait).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/core.h"
#include "runtime/lock.h"

/* Waits while *addr == val. Returns 0 (woken or value changed), -ETIMEDOUT.
 * Runs on: any thread. Blocks the thread. */
int sp__futex_wait(uint32_t *addr, uint32_t val, int64_t deadline) {
  struct timespec ts, *tsp = NULL;
  if (deadline != SP_FOREVER) {
    if (deadline < 0) deadline = 0;
    ts.tv_sec = deadline / 1000000000;
    ts.tv_nsec = deadline % 1000000000;
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tsp, NULL,
                    FUTEX_BITSET_MATCH_ANY);
  if (rc == -1 && errno == ETIMEDOUT) return -ETIMEDOUT;
  return 0;
}

void sp__futex_wake(uint32_t *addr, int n) {
  syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

/* Takes l if its held half is clear (keeping the sleeper count, less
 * `leave`). Returns whether it did. */
static int try_take(sp__lock_t *l, uint32_t leave) {
  uint32_t v = __atomic_load_n(&l->v, __ATOMIC_RELAXED);
  while ((v & SP__LOCK_HELD) == 0)
    if (__atomic_compare_exchange_n(&l->v, &v, (v | 1) - leave, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return 1;
  return 0;
}

/* Contended path of sp__lock (lock.h): spin with backoff, then register
 * as a sleeper and sleep until an unlock wakes it. */
void sp__lock_slow(sp__lock_t *l) {
  /* bounded exponential backoff: two cores taking turns on a hot lock
   * (a buffered channel's producer and consumer) hand the line back and
   * forth far less often; 4+8+16+32*9 PAUSEs at most (~7 us on Zen 5) */
  int pauses = 4;
  for (int i = 0; i < 12; i++) {
    if (try_take(l, 0)) return;
    for (int k = 0; k < pauses; k++) __builtin_ia32_pause();
    if (pauses < 32) pauses *= 2;
  }
  __atomic_fetch_add(&l->v, SP__LOCK_SLEEPER, __ATOMIC_SEQ_CST);
  /* lock.h: after membarrier, unlockers' stores are visible or they see us.
   * Should it fail (a forked child whose registration did not carry
   * over), an unlock may miss us: then sleep in short slices, a delay
   * instead of a hang. */
  bool fenced = !sp__lock_asym || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
  for (;;) {
    if (try_take(l, SP__LOCK_SLEEPER)) return; /* and no longer a sleeper */
    uint32_t v = __atomic_load_n(&l->v, __ATOMIC_RELAXED);
    if (v & SP__LOCK_HELD) /* only while the word is still v */
      sp__futex_wait(&l->v, v, fenced ? SP_FOREVER : sp__mono() + 1000000);
  }
}
