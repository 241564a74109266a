/*
 * chan_impl.h: the channel object and the locked operations that
 * sp_chan_send/recv and sp_select share (private to sync/).
 */
#ifndef SP_SYNC_CHAN_IMPL_H
#define SP_SYNC_CHAN_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/lock.h"
#include "runtime/track.h"
#include "sync/sp_sync.h"
#include "runtime/waitq.h"

/* The first cache line holds everything an operation writes; the second
 * what it only reads. */
struct sp_chan {
  sp__lock_t lk;
  uint32_t pad_;
  size_t count, sendx, recvx; /* buffer occupancy and ring indices */
  sp__waitq_t sendq, recvq;
  /* --- second cache line --- */
  size_t esz, cap;
  char *buf;
  int closed;
  sp__tracked_t tracked; /* debug mode: reported if never freed */
} __attribute__((aligned(64)));

/* Try to complete a send / receive without waiting, skipping waiters of
 * self. Return 1 (done; *wake, if set, is a claimed waiter to wake after
 * unlocking), 0 (would block), -EPIPE (closed; recv zeroes elem).
 * Locks: caller holds c->lk. */
int sp__chan_send_locked(sp_chan_t *c, const void *elem, const sp__parker_t *self,
                         sp__waiter_t **wake);
int sp__chan_recv_locked(sp_chan_t *c, void *elem, const sp__parker_t *self,
                         sp__waiter_t **wake);

/* Whether op could proceed now (a waiting counterpart may still turn out
 * stale). Locks: caller holds c->lk. */
bool sp__chan_ready_locked(sp_chan_t *c, int op, const sp__parker_t *self);

#endif /* SP_SYNC_CHAN_IMPL_H */
