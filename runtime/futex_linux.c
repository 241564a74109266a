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

/* Contended path of sp__lock (lock.h): spin a little, then mark the lock
 * contended (2) and sleep until an unlock hands it over. */
void sp__lock_slow(sp__lock_t *l) {
  /* bounded exponential backoff: two cores taking turns on a hot lock
   * (a buffered channel's producer and consumer) hand the line back and
   * forth far less often; 4+8+16+32*9 PAUSEs at most (~7 us on Zen 5) */
  int pauses = 4;
  for (int i = 0; i < 12; i++) {
    uint32_t free_ = 0;
    if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(&l->v, &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return;
    for (int k = 0; k < pauses; k++) __builtin_ia32_pause();
    if (pauses < 32) pauses *= 2;
  }
  while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
    sp__futex_wait(&l->v, 2, SP_FOREVER);
}
