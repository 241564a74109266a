/*
 * futex_linux.c: the futex wait/wake pair used by idle workers and by
 * foreign threads blocked on Spindle primitives.
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
