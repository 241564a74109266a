/*
 * lockmode.c: which unlock protocol the internal lock uses (lock.h L3),
 * decided once per process before main: a plain store where membarrier
 * works, else an atomic RMW. A library of its own (with debugcount.c) so
 * that both runtime builds share one definition.
 */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/context.h" /* SP_HAVE_TSAN */

int sp__lock_asym;

/* L3 of lock.h: decided once, before main and before any lock is used. */
__attribute__((constructor(101))) static void lock_asym_probe(void) {
#if defined(__x86_64__) && !defined(SP_HAVE_TSAN)
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
    sp__lock_asym = 1;
#endif
}

