/*
 * lockrank.c: the debug-build check of lockrank.h's order (model there).
 */
#include "runtime/lockrank.h"

#include "runtime/core.h"

#ifndef NDEBUG

#define MAX_HELD 8

static __thread int held_rank[MAX_HELD];
static __thread const void *held_lock[MAX_HELD];
static __thread int nheld;

void sp__rank_acquire(int rank, const void *lock) {
  if (nheld > 0 && held_rank[nheld - 1] >= rank)
    sp__panic("lockrank: lock %p (rank %d) taken while holding %p (rank %d): order inverted",
              lock, rank, held_lock[nheld - 1], held_rank[nheld - 1]);
  if (nheld == MAX_HELD) sp__panic("lockrank: more than %d locks held", MAX_HELD);
  held_rank[nheld] = rank;
  held_lock[nheld++] = lock;
}

void sp__rank_release(int rank, const void *lock) {
  for (int i = nheld - 1; i >= 0; i--)
    if (held_lock[i] == lock) {
      for (int k = i; k < nheld - 1; k++) {
        held_lock[k] = held_lock[k + 1];
        held_rank[k] = held_rank[k + 1];
      }
      nheld--;
      return;
    }
  sp__panic("lockrank: release of %p (rank %d), which this thread does not hold", lock, rank);
}

int sp__rank_held(void) { return nheld; }

#endif
