/*
 * listener.c: sp_listener_t, a listening socket accepted from in a loop,
 * with one multishot accept armed on an io_uring ring instead of one
 * accept operation per connection.
 *
 * Model: the listener owns its fd. The first accept made by a fiber with
 * a ring arms IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT on that
 * worker's ring (W); from then on every connection the kernel accepts is
 * one CQE that W reaps (uring.c U7 calls listener_cqe). A connection
 * goes to the longest waiting accepter, or into the listener's queue when
 * nobody waits. Accepters may run on any worker or thread: they only take
 * the lock. Without a ring (epoll backend, foreign thread) and while
 * nothing is armed, an accept is plain sp_accept.
 * Invariants:
 *   L1  l->armed (W, or NULL) changes only under l->lk: set by the fiber
 *       that prepares the SQE on W (no switch in between, uring.c U2),
 *       cleared by W when it reaps the CQE without IORING_CQE_F_MORE.
 *       While armed, W counts one operation pending (its ring stays the
 *       place it sleeps, so the CQEs come in).
 *   L2  A connection is handed over exactly once: to a waiter whose parker
 *       the producer claimed (then the waiter owns it), else to the queue.
 *       A waiter whose wait ended otherwise (deadline, cancellation)
 *       unlinks itself under the lock, so no fd goes to a waiter that left.
 *   L3  Backpressure: with QUEUE_MAX connections queued, W cancels the
 *       multishot (the kernel's backlog holds the rest, as without it);
 *       the next accepter that finds the queue empty arms it again. When
 *       the multishot ends while fibers wait (kernel's choice, or the
 *       cancel raced a drain), W arms it again at once.
 *   L4  A terminal error (-EMFILE, -ENFILE, -ENOMEM...) goes to every fiber
 *       waiting then, as each of their own accepts would have failed; the
 *       connection stays in the kernel's backlog. With nobody waiting it
 *       is dropped: the next accept arms again and sees the state afresh.
 *   L5  Close: marks l closed, wakes the waiters with -EBADF, shuts the
 *       socket down (which ends the multishot: its last CQE) and waits
 *       until nothing is armed and no accepter is inside (the last one
 *       wakes it after releasing the lock); only then are the queued
 *       connections and the socket closed. Accepts after that return
 *       -EBADF; sp_listener_free releases the memory. Shutting down a Unix
 *       socket does not end a multishot accept on it (checked: Linux
 *       6.18), and only the ring's own worker could cancel it, so Unix
 *       listeners accept one connection per operation.
 *   L6  An accepter that cannot arm (a foreign thread, the epoll backend,
 *       a ring without multishot) waits in the list while a multishot is
 *       armed; otherwise it makes a plain accept on the kernel's backlog,
 *       counted in l->hold_off. No multishot is armed while l->hold_off
 *       > 0: it would take the connections such an accepter sleeps in
 *       poll(2) for (its wake finds the backlog empty). So l->armed and
 *       l->hold_off are never both set. A fiber that could arm but finds
 *       l->hold_off > 0 makes a one-shot ring accept in 10 ms slices, and
 *       arms at the first slice that finds l->hold_off == 0.
 * Capability: multishot accept came with Linux 5.19, SINGLE_ISSUER with
 * 6.0, so a ring set up with SINGLE_ISSUER (uring.c's probe) has it; other
 * rings accept one connection per operation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/poll.h"
#include "io/sp_io.h"
#include "runtime/lock.h"
#include "runtime/waitq.h"

#define QUEUE_MAX 64 /* L3 */
#define SLICE_NS 10000000 /* L6: 10 ms */

struct sp_listener {
  sp__owner_t own; /* uring.c U7: W hands the multishot's CQEs to listener_cqe */
  int fd;
  sp__lock_t lk;
  sp__worker_t *armed; /* L1 */
  bool cancelling;     /* L3: the cancel of the multishot is on its way */
  bool closed;         /* L5 */
  bool tcp;            /* L5: an AF_INET or AF_INET6 socket */
  uint32_t users;      /* accepters inside sp_listener_accept */
  uint32_t hold_off;   /* L6: of them, in a plain accept that cannot arm */
  sp__parker_t *closer;
  sp__waitq_t waiters;    /* parked accepters, FIFO (runtime/waitq.h) */
  int *q;                 /* queued connections: a ring of qcap */
  uint32_t qhead, qlen, qcap;
};

/* ---- the waiters and the queue (under l->lk) ---------------------------- */

/* Gives res to the first waiter that can still take it (L2). */
static bool hand_to_waiter(sp_listener_t *l, int res) {
  sp__waiter_t *w = sp__waitq_claim(&l->waiters, NULL);
  if (!w) return false;
  w->ok = res;
  sp__park_wake_fifo(w->parker, 0);
  return true;
}

static bool queue_push(sp_listener_t *l, int fd) {
  if (l->qlen == l->qcap) {
    uint32_t cap = l->qcap ? 2 * l->qcap : 16;
    int *q = malloc(cap * sizeof *q);
    if (!q) return false;
    for (uint32_t i = 0; i < l->qlen; i++) q[i] = l->q[(l->qhead + i) % l->qcap];
    free(l->q);
    l->q = q;
    l->qhead = 0;
    l->qcap = cap;
  }
  l->q[(l->qhead + l->qlen++) % l->qcap] = fd;
  return true;
}

static int queue_pop(sp_listener_t *l) {
  int fd = l->q[l->qhead];
  l->qhead = (l->qhead + 1) % l->qcap;
  l->qlen--;
  return fd;
}

/* Arms the multishot on w's ring. Runs on: w (a fiber on it, or its sched
 * context), holding l->lk (L1). */
static void arm(sp_listener_t *l, sp__worker_t *w) {
  struct io_uring_sqe *sqe = sp__uring_own_sqe(w);
  io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
  sp__uring_own(w, sqe, &l->own);
  l->armed = w;
  l->cancelling = false;
}

static bool multishot_ok(sp_listener_t *l, sp__worker_t *w) {
  return w && l->tcp && (w->rt->io_ring_flags & IORING_SETUP_SINGLE_ISSUER);
}

/* The last accepter or the multishot's end lets a closer go on (L5): the
 * closer to wake once l->lk is released (the closer may free l at once).
 * Runs on: any, holding l->lk. */
static sp__parker_t *closer_to_release(sp_listener_t *l) {
  sp__parker_t *c = NULL;
  if (l->closed && !l->armed && l->users == 0 && l->closer) {
    c = l->closer;
    l->closer = NULL;
  }
  return c;
}

static void release(sp__parker_t *c) {
  if (c && sp__park_claim(c)) sp__park_wake(c, 0);
}

/* ---- the producer: W's reaper -------------------------------------------- */

static void listener_cqe(sp__worker_t *w, sp__owner_t *o, int res, bool more) {
  sp_listener_t *l = (sp_listener_t *)o;
  sp__lock(&l->lk);
  if (!more) l->armed = NULL;
  if (res >= 0) {
    if (l->closed || (!hand_to_waiter(l, res) && !queue_push(l, res)))
      close(res); /* after close (L5), or no memory for the queue: the peer sees a reset */
    if (more && l->qlen >= QUEUE_MAX && !l->cancelling) { /* L3 */
      sp__uring_cancel_owned(w, &l->own);
      l->cancelling = true;
    }
  } else if (res != -ECANCELED && !l->closed) {
    while (hand_to_waiter(l, res)) { /* L4 */
    }
  }
  if (!l->armed && !l->closed && !sp__waitq_empty(&l->waiters)) arm(l, w); /* L3: fibers wait */
  sp__parker_t *c = closer_to_release(l);
  sp__unlock(&l->lk);
  release(c);
}

/* ---- the API ---------------------------------------------------------------- */

int sp_listener_open(sp_listener_t **out, int fd) {
  if (!out) return -EINVAL;
  *out = NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -EBADF;
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) return -errno;
  if (!listening) return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) return -errno;
  sp_listener_t *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  /* a multishot accept on an O_NONBLOCK file ends with -EAGAIN whenever
   * the backlog is empty; the listener owns fd and waits by itself */
  if (fl & O_NONBLOCK) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  l->own.cqe = listener_cqe;
  l->fd = fd;
  l->tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
  *out = l;
  return 0;
}

int sp_listener_fd(sp_listener_t *l) { return l ? l->fd : -EINVAL; }

/* Waits in l's list until a connection, an error or the deadline. Runs
 * on: any fiber or thread, holding l->lk; holds it again on return. */
static int wait_listed(sp_listener_t *l, int64_t deadline) {
  sp__waiter_t me = {.ok = -EBADF};
  sp__worker_t *w = sp__self();
  struct sp_runtime *rt = w && w->cur ? w->rt : NULL; /* read before the park */
  if (rt) __atomic_fetch_add(&rt->io_inflight, 1, __ATOMIC_RELAXED); /* not stuck */
  int r = sp__waitq_block(&l->waiters, &me, &l->lk, deadline, false, "io accept",
                          (const void *)(intptr_t)l->fd); /* L2; releases l->lk */
  if (rt) __atomic_fetch_sub(&rt->io_inflight, 1, __ATOMIC_RELEASE);
  sp__lock(&l->lk);
  return r == 0 ? me.ok : r;
}

int sp_listener_accept(sp_listener_t *l, int64_t deadline) {
  if (!l) return -EINVAL;
  sp__lock(&l->lk);
  if (l->closed) {
    sp__unlock(&l->lk);
    return -EBADF;
  }
  l->users++;
  int res;
  bool plain = false; /* sp_accept set TCP_NODELAY itself */
  for (;;) {
    plain = false;
    if (l->qlen) {
      res = queue_pop(l);
      break;
    }
    sp__worker_t *w = sp__uring_self();
    bool can_arm = multishot_ok(l, w);
    if (!l->armed && can_arm && l->hold_off == 0) arm(l, w);
    if (l->armed) {
      res = deadline == 0 ? -EAGAIN : wait_listed(l, deadline); /* L2 */
      break;
    }
    /* L6: nothing armed: one plain accept, which parks without the lock.
     * One that cannot arm keeps the multishot off while it waits; one
     * that could (kept off by such) waits in slices, to arm after it */
    int64_t until = deadline;
    if (can_arm && deadline != 0 && (deadline == SP_FOREVER || deadline > sp_now() + SLICE_NS))
      until = sp_now() + SLICE_NS;
    if (!can_arm) l->hold_off++;
    sp__unlock(&l->lk);
    res = sp_accept(l->fd, NULL, NULL, until);
    plain = true;
    sp__lock(&l->lk);
    if (!can_arm) l->hold_off--;
    if (l->closed) {
      if (res >= 0) close(res);
      res = -EBADF;
      break;
    }
    if (res != -ETIMEDOUT || until == deadline) break;
  }
  l->users--;
  bool nodelay = res >= 0 && l->tcp && !plain; /* as sp_accept does */
  sp__parker_t *c = closer_to_release(l);
  sp__unlock(&l->lk); /* from here l may be closed and freed */
  release(c);
  if (nodelay) sp_set_nodelay(res, 1);
  return res;
}

int sp_listener_close(sp_listener_t *l) {
  if (!l) return -EINVAL;
  sp__parker_t me;
  sp__lock(&l->lk);
  if (l->closed) {
    sp__unlock(&l->lk);
    return -EBADF;
  }
  l->closed = true;
  while (hand_to_waiter(l, -EBADF)) {
  }
  bool wait = l->armed || l->users;
  if (wait) {
    sp__park_begin(&me);
    l->closer = &me;
  }
  sp__unlock(&l->lk);
  /* ends the multishot and plain accepts in flight (uring.c, epoll.c) */
  sp__fd_forget_all(l->fd);
  shutdown(l->fd, SHUT_RDWR);
  if (wait) sp__park_wait_unscoped(&me, SP_FOREVER);
  /* nobody else touches the queue now: nothing is armed, nobody accepts */
  while (l->qlen) close(queue_pop(l));
  return close(l->fd) < 0 && errno != EINTR ? -errno : 0;
}

int sp_listener_free(sp_listener_t *l) {
  if (!l) return -EINVAL;
  sp__lock(&l->lk);
  bool closed = l->closed;
  sp__unlock(&l->lk);
  int rc = closed ? 0 : sp_listener_close(l);
  free(l->q);
  free(l);
  return rc;
}
