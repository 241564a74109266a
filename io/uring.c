/*
 * uring.c: the io_uring backend: one ring per worker (model in poll.h).
 *
 * Invariants:
 *   U1  Every operation a fiber submits is waited for through its own CQE:
 *       a deadline is an IORING_OP_LINK_TIMEOUT linked behind it (absolute,
 *       CLOCK_MONOTONIC like sp_now), so the kernel cancels the operation
 *       and the CQE still arrives. The fiber parks with no deadline of its
 *       own; when it resumes, the kernel is done with its buffers.
 *   U2  Only the owning worker thread touches its ring (SINGLE_ISSUER):
 *       fibers prepare SQEs on the worker they run on, without a switch
 *       between sp__uring_sqe and parking; the worker submits and reaps in
 *       its sched context. A fiber that resumes elsewhere after the CQE is
 *       fine: the result travelled in its sp__iop_t.
 *   U3  A worker with operations in flight sleeps in its ring; wakers write
 *       its eventfd, which always has one READ armed on the ring (UD_WAKE),
 *       so a wake that comes before the wait makes the wait return at once.
 *       A worker with nothing in flight sleeps on its futex (a futex wake
 *       is cheaper than an eventfd round trip through the ring). The choice
 *       (w->ring_sleep) is made before the worker enters the idle list, so
 *       a waker, who takes it out of that list under the same lock, sees
 *       it (sched.c idle).
 *   U4  w->io_pending counts submitted operations whose CQE is not reaped;
 *       rt->io_inflight counts fibers parked in I/O (deadlock.c: not stuck).
 *   U5  Cancellation by the fiber's scope (runtime/cancel.h), from any
 *       thread: the scope's callback moves op->cx NONE -> ASKED and queues
 *       a request on the op's worker; that worker (the ring's owner)
 *       submits IORING_OP_ASYNC_CANCEL (ASKED -> SUBMITTED), or wakes the
 *       fiber if the CQE came first. The fiber is woken only when every CQE
 *       aimed at its op was reaped (main, and the cancel's if submitted),
 *       so neither the kernel nor the request list holds its frame after
 *       it returns. A result that is not -ECANCELED is returned as is:
 *       bytes moved before the cancellation are reported.
 *   U6  With DEFER_TASKRUN a finished operation is only task work queued
 *       on the ring until its owner enters the kernel. TASKRUN_FLAG (where
 *       the kernel has it) makes the kernel set IORING_SQ_TASKRUN in the SQ
 *       flags meanwhile, so a worker sees without a system call whether an
 *       enter would bring anything: polls and spinning workers enter only
 *       then, or when IORING_SQ_CQ_OVERFLOW says completions that did not
 *       fit the CQ wait on the kernel's overflow list (an enter moves them
 *       in). Without TASKRUN_FLAG they enter and find out.
 *   U7  A multishot operation belongs to an object, not a fiber (io/
 *       listener.c): its user data is the object's sp__owner_t |
 *       UD_OWNER_BIT, and reap hands each of its CQEs to the object's
 *       handler on the ring's worker. It counts as one pending operation
 *       (U4) until the CQE without IORING_CQE_F_MORE, so the worker keeps
 *       sleeping in its ring while the kernel may still post to it.
 *   U8  An operation is never dropped for want of an SQE. A full SQ is
 *       submitted; where the kernel takes nothing (older, 5.x kernels
 *       answer -EBUSY while completions on the overflow list do not fit
 *       the CQ; any kernel may lack memory) the CQEs in the CQ are moved
 *       to the ring's held list, unhandled, which gives the kernel room,
 *       and the submission is tried again. Handlers run only in reap,
 *       which takes held CQEs first, then the CQ's one at a time, each
 *       leaving the CQ before its handler runs: a handler whose SQE needs
 *       room can hold the rest without reaping any twice.
 *   U9  On kernels without IORING_FEAT_EXT_ARG (5.10 and older) liburing
 *       waits with a deadline by queueing a TIMEOUT SQE of its own, user
 *       data LIBURING_UDATA_TIMEOUT; its CQE may come after liburing's
 *       wait returned, and reap drops it. SPINDLE_IO=uring-plain hides
 *       the feature from liburing, so this path runs on newer kernels too.
 *   U10 (TSan) liburing maps a ring's memory and unmaps it with raw system
 *       calls, so TSan keeps the old ring's accesses on those addresses
 *       and calls a new ring's thread writing there a race. Under TSan
 *       every io_uring_queue_init and io_uring_queue_exit (the probe's
 *       ring too) runs under one mutex (sp__uring_queue_init and
 *       sp__uring_queue_exit). A map that returns an address happened
 *       after the unmap that freed it, so in a later critical section,
 *       which TSan orders after the old ring's last use. (An acquire
 *       before the map and a release after the unmap did not: a mapper
 *       could acquire, another thread unmap and release, and the map then
 *       return the freed address, with nothing ordering the two.)
 * Rejected: one ring per runtime (a lock on every submission), a reaper
 * thread (a thread hop per completion), waking fibers by MSG_RING (foreign
 * threads have no ring to send from).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "io/poll.h"
#include "runtime/cancel.h"
#include "io/sp_io.h"

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)

#define RING_ENTRIES 256
#define CQ_ENTRIES 4096
#define UD_WAKE 1ull   /* the eventfd read (U3) */
#define UD_IGNORE 2ull /* linked timeouts: their CQEs carry nothing we need */
#define UD_CANCEL_BIT 1ull /* op | 1: the ASYNC_CANCEL aimed at op (U5) */
#define UD_OWNER_BIT 2ull  /* owner | 2: a multishot owned by an object (U7) */

enum { CX_NONE, CX_ASKED, CX_SUBMITTED, CX_DONE }; /* sp__iop_t.cx (U5) */

struct sp__uring {
  struct io_uring ring;
  int efd;
  uint64_t ebuf; /* the eventfd READ's target */
  bool old_rules; /* submit and wait as older (5.x) kernels do (U8, U9) */
  /* CQEs moved out of the CQ to make room (U8), reaped before the CQ's:
   * held[hhead..nheld) */
  struct held { uint64_t ud; int32_t res; uint32_t flags; } *held;
  unsigned hhead, nheld, capheld;
};

#ifdef SP_HAVE_TSAN
#include <pthread.h>
static pthread_mutex_t ring_maps = PTHREAD_MUTEX_INITIALIZER; /* U10 */
#define MAPS_LOCK() pthread_mutex_lock(&ring_maps)
#define MAPS_UNLOCK() pthread_mutex_unlock(&ring_maps)
#else
#define MAPS_LOCK() ((void)0)
#define MAPS_UNLOCK() ((void)0)
#endif

int sp__uring_queue_init(unsigned entries, struct io_uring *ring, struct io_uring_params *p) {
  MAPS_LOCK(); /* U10 */
  int rc = io_uring_queue_init_params(entries, ring, p);
  MAPS_UNLOCK();
  return rc;
}

void sp__uring_queue_exit(struct io_uring *ring) {
  MAPS_LOCK(); /* U10 */
  io_uring_queue_exit(ring);
  MAPS_UNLOCK();
}

/* The CQE `ahead` places past the CQ's head, copied. Runs on: w. */
static struct held cq_entry(struct sp__uring *u, unsigned ahead) {
  struct io_uring_cqe *cqe = &u->ring.cq.cqes[(*u->ring.cq.khead + ahead) & *u->ring.cq.kring_mask];
  return (struct held){cqe->user_data, cqe->res, cqe->flags};
}

/* Whether completions wait to be reaped: in the CQ or held (U8). */
static bool cqes_visible(struct sp__uring *u) {
  return u->hhead < u->nheld || io_uring_cq_ready(&u->ring);
}

/* ---- a worker's ring ----------------------------------------------------- */

/* U8: submits u's SQ for sqe_room. Older (5.x) kernels first move
 * completions from their overflow list into the CQ, and refuse with -EBUSY,
 * taking no SQE, while some do not fit; u->old_rules acts so on a newer
 * kernel. (The other submissions, in poll and sleep, need no room: after a
 * refusal they reap, which makes room, and the next one goes through.) */
static int submit(struct sp__uring *u) {
  if (u->old_rules && (LOAD(u->ring.sq.kflags, ACQUIRE) & IORING_SQ_CQ_OVERFLOW)) {
    io_uring_get_events(&u->ring); /* the flush */
    if (LOAD(u->ring.sq.kflags, ACQUIRE) & IORING_SQ_CQ_OVERFLOW) return -EBUSY;
  }
  return io_uring_submit(&u->ring);
}

/* U8: moves the CQEs in u's CQ to u->held, so the kernel has room for
 * what waits on its overflow list; their handlers run later, in reap (the
 * caller may hold a lock a handler takes). Returns how many it moved. */
static unsigned hold_cqes(struct sp__uring *u) {
  unsigned n = io_uring_cq_ready(&u->ring);
  if (u->hhead > 0) { /* drop what reap took already */
    memmove(u->held, u->held + u->hhead, (u->nheld - u->hhead) * sizeof *u->held);
    u->nheld -= u->hhead;
    u->hhead = 0;
  }
  if (u->nheld + n > u->capheld) {
    unsigned cap = 2 * (u->nheld + n) < 64 ? 64 : 2 * (u->nheld + n);
    struct held *h = realloc(u->held, cap * sizeof *h);
    if (h) {
      u->held = h;
      u->capheld = cap;
    }
    if (u->nheld + n > u->capheld) n = u->capheld - u->nheld; /* no memory: what fits */
  }
  for (unsigned i = 0; i < n; i++) u->held[u->nheld++] = cq_entry(u, i);
  io_uring_cq_advance(&u->ring, n);
  return n;
}

/* An SQE on w's ring with room for `need` consecutive entries: a full SQ
 * is submitted first, which consumes it. Where the kernel takes nothing
 * (U8: -EBUSY, or no memory for requests) the CQ is emptied into u->held
 * and the submission tried again; failing that, after a pause. It never
 * gives up: an operation is not dropped. Runs on: w. */
static struct io_uring_sqe *sqe_room(sp__worker_t *w, struct sp__uring *u, unsigned need) {
  for (unsigned tries = 0; io_uring_sq_space_left(&u->ring) < need; tries++) {
    if (submit(u) >= 0) w->io_unsubmitted = 0;
    if (io_uring_sq_space_left(&u->ring) >= need || hold_cqes(u)) continue;
    if (tries < 16) {
      sched_yield();
    } else {
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, NULL);
    }
  }
  return io_uring_get_sqe(&u->ring);
}

static void arm_wake(sp__worker_t *w, struct sp__uring *u) {
  struct io_uring_sqe *sqe = sqe_room(w, u, 1);
  io_uring_prep_read(sqe, u->efd, &u->ebuf, sizeof u->ebuf, 0);
  io_uring_sqe_set_data64(sqe, UD_WAKE);
}

void sp__io_worker_init(sp__worker_t *w) {
  struct sp_runtime *rt = w->rt;
  if (rt->io_kind != SP_IO_URING) return;
  struct sp__uring *u = calloc(1, sizeof *u);
  if (!u) goto fail;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = rt->io_ring_flags | IORING_SETUP_CQSIZE;
  p.cq_entries = CQ_ENTRIES;
  int rc = sp__uring_queue_init(RING_ENTRIES, &u->ring, &p);
  if (rc < 0) goto fail;
  u->old_rules = rt->io_old_rules;
  if (u->old_rules) u->ring.features &= ~IORING_FEAT_EXT_ARG; /* U9: wait as on 5.10 */
  u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (u->efd < 0) {
    sp__uring_queue_exit(&u->ring);
    goto fail;
  }
  io_uring_register_ring_fd(&u->ring); /* optional: saves an fd lookup per enter */
  arm_wake(w, u);
  STORE(&w->uring, u, RELEASE);
  return;
fail:
  free(u);
  fprintf(stderr, "spindle: worker %d: no io_uring ring; its I/O uses epoll\n", w->index);
}

void sp__io_worker_fini(sp__worker_t *w) {
  struct sp__uring *u = LOAD(&w->uring, ACQUIRE);
  if (!u) return;
  STORE(&w->uring, NULL, RELEASE);
  sp__uring_queue_exit(&u->ring);
  close(u->efd);
  free(u->held);
  free(u);
}

/* The oldest completion not yet reaped: held ones first (U8), then the
 * CQ's. Each leaves the CQ before its handler runs, so a handler that
 * makes sqe_room hold the rest sees only those. */
static bool next_cqe(struct sp__uring *u, struct held *c) {
  if (u->hhead < u->nheld) {
    *c = u->held[u->hhead++];
    if (u->hhead == u->nheld) u->hhead = u->nheld = 0;
    return true;
  }
  if (!io_uring_cq_ready(&u->ring)) return false;
  *c = cq_entry(u, 0);
  io_uring_cq_advance(&u->ring, 1);
  return true;
}

/* Readies the fibers of every completion visible on w's ring (held ones
 * included). Runs on: w. */
static void reap(sp__worker_t *w, struct sp__uring *u) {
  struct held c;
  unsigned done = 0, ended = 0;
  while (next_cqe(u, &c)) {
    uint64_t ud = c.ud;
    if (ud == LIBURING_UDATA_TIMEOUT) continue; /* U9: liburing's own wait timeout */
    if (ud == UD_WAKE) {
      arm_wake(w, u); /* submitted by the next submit or sleep, whichever first */
    } else if (ud == UD_IGNORE) {
    } else if (ud & UD_OWNER_BIT) { /* U7: a multishot's CQE, for its owner */
      bool more = c.flags & IORING_CQE_F_MORE;
      if (!more) ended++;
      sp__owner_t *o = (sp__owner_t *)(uintptr_t)(ud & ~UD_OWNER_BIT);
      o->cqe(w, o, c.res, more);
    } else if (ud & UD_CANCEL_BIT) { /* U5: the cancel's own CQE */
      sp__iop_t *op = (sp__iop_t *)(uintptr_t)(ud & ~UD_CANCEL_BIT);
      op->cancel_done = true;
      if (op->main_done && sp__park_claim(&op->p)) sp__park_wake_fifo(&op->p, 0);
    } else {
      sp__iop_t *op = (sp__iop_t *)(uintptr_t)ud;
      op->res = c.res;
      op->cflags = c.flags;
      op->main_done = true;
      done++;
      if (SP__TRACING(w)) sp__trace_rec(w, TR_IO_DONE, op->p.fiber->id, NULL);
      uint32_t none = CX_NONE; /* U5: a cancellation in progress wakes it */
      if (__atomic_compare_exchange_n(&op->cx, &none, CX_DONE, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE) ||
          (none == CX_SUBMITTED && op->cancel_done)) {
        if (sp__park_claim(&op->p)) sp__park_wake_fifo(&op->p, 0);
      }
    }
  }
  if (ended) STORE(&w->io_pending, w->io_pending - ended, RELAXED);
  if (done) {
    STORE(&w->io_pending, w->io_pending - done, RELAXED);
    __atomic_fetch_sub(&w->rt->io_inflight, done, __ATOMIC_RELEASE);
    STORE(&w->stats.io_completed, w->stats.io_completed + done, RELAXED);
  }
}

bool sp__io_poll_cheap(const sp__worker_t *w) {
  return w->uring && (w->rt->io_ring_flags & IORING_SETUP_TASKRUN_FLAG); /* U6 */
}

/* U6: whether entering w's ring may bring completions in (those already
 * visible are the caller's to check). Without TASKRUN_FLAG the kernel
 * cannot say: yes, unless w slept in it (and so entered it) this very
 * scheduling round. */
static bool ring_has_work(sp__worker_t *w, struct sp__uring *u) {
  if (!sp__io_poll_cheap(w)) return w->io_slept_tick != w->tick;
  return LOAD(u->ring.sq.kflags, ACQUIRE) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

void sp__io_reap(sp__worker_t *w) {
  struct sp__uring *u = w->uring;
  if (u && cqes_visible(u)) reap(w, u);
}

static void serve_cancels(sp__worker_t *w, struct sp__uring *u);

void sp__io_poll(sp__worker_t *w) {
  struct sp__uring *u = w->uring;
  if (!u) return;
  if (__atomic_load_n(&w->io_ncancel, __ATOMIC_ACQUIRE)) serve_cancels(w, u);
  /* completions a sleep already brought in need no system call */
  if (!w->io_unsubmitted && cqes_visible(u)) {
    reap(w, u);
    return;
  }
  if (!w->io_unsubmitted && (!w->io_pending || !ring_has_work(w, u))) return; /* U6 */
  w->io_unsubmitted = 0;
  io_uring_submit_and_get_events(&u->ring); /* DEFER_TASKRUN: runs task work */
  reap(w, u);
}

int sp__io_idle_wait(sp__worker_t *w, int64_t deadline) {
  struct sp__uring *u = w->uring;
  if (u && __atomic_load_n(&w->io_ncancel, __ATOMIC_ACQUIRE)) {
    serve_cancels(w, u); /* U5: may ready a fiber, then do not sleep */
    if (!sp__runq_empty(w)) return 0;
  }
  if (!u || !LOAD(&w->ring_sleep, RELAXED)) /* U3: nothing in flight: the futex */
    return sp__futex_wait(&w->sleep, 1, deadline);
  struct __kernel_timespec ts, *tsp = NULL;
  if (deadline != SP_FOREVER) {
    int64_t rel = deadline - sp__mono(); /* a real deadline, even in virtual time */
    if (rel <= 0) return -ETIMEDOUT;
    ts.tv_sec = rel / 1000000000;
    ts.tv_nsec = rel % 1000000000;
    tsp = &ts;
  }
  if (cqes_visible(u)) return 0;
  w->io_unsubmitted = 0;
  w->io_slept_tick = w->tick;
  struct io_uring_cqe *cqe;
  int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
  return rc == -ETIME ? -ETIMEDOUT : 0;
}

void sp__io_wake(sp__worker_t *w) {
  struct sp__uring *u = LOAD(&w->uring, ACQUIRE);
  if (u && LOAD(&w->ring_sleep, RELAXED)) {
    uint64_t one = 1;
    ssize_t r = write(u->efd, &one, sizeof one); /* EAGAIN: already pending */
    (void)r;
  } else {
    sp__futex_wake(&w->sleep, 1);
  }
}

/* ---- operations (U1, U2) -------------------------------------------------- */

sp__worker_t *sp__uring_self(void) {
  sp__worker_t *w = sp__self();
  return w && w->cur && w->uring ? w : NULL;
}

/* The deadline an operation really has: its own, cut to the fiber's
 * cancellation scope's (cancel.h). */
static int64_t effective(sp__worker_t *w, int64_t deadline, sp__cancel_t **scope) {
  sp__cancel_t *c = w->cur->cancel;
  *scope = c;
  if (c && c->deadline != SP_FOREVER && (deadline == SP_FOREVER || c->deadline < deadline))
    return c->deadline;
  return deadline;
}

struct io_uring_sqe *sp__uring_sqe(sp__worker_t *w, int64_t deadline) {
  struct sp__uring *u = w->uring;
  sp__cancel_t *c;
  return sqe_room(w, u, effective(w, deadline, &c) == SP_FOREVER ? 1 : 2);
}

struct io_uring_sqe *sp__uring_own_sqe(sp__worker_t *w) { return sqe_room(w, w->uring, 1); }

void sp__uring_own(sp__worker_t *w, struct io_uring_sqe *sqe, sp__owner_t *owner) {
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)owner | UD_OWNER_BIT);
  w->io_unsubmitted++;
  STORE(&w->io_pending, w->io_pending + 1, RELAXED); /* U7: until its last CQE */
}

void sp__uring_cancel_owned(sp__worker_t *w, sp__owner_t *owner) {
  struct io_uring_sqe *sqe = sqe_room(w, w->uring, 1);
  io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)owner | UD_OWNER_BIT, 0);
  io_uring_sqe_set_data64(sqe, UD_IGNORE);
  w->io_unsubmitted++;
}

/* ---- cancellation of an operation in flight (U5) -------------------------- */

/* A cancellation request for op, queued on the worker whose ring has it. */
typedef struct iocancel {
  sp__cnode_t n; /* first: the scope calls back with &n */
  sp__iop_t *op;
  sp__worker_t *w;
  struct iocancel *next;
} iocancel_t;

/* Scope callback (any thread, under the scope lock): asks op's worker to
 * submit IORING_OP_ASYNC_CANCEL for it. */
static void io_cancel(sp__cnode_t *n, int err) {
  (void)err;
  iocancel_t *ic = (iocancel_t *)n;
  uint32_t none = CX_NONE;
  if (!__atomic_compare_exchange_n(&ic->op->cx, &none, CX_ASKED, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return; /* its CQE was reaped already: it is returning anyway */
  ic->op->asked = true;
  sp__worker_t *w = ic->w;
  sp__lock(&w->io_cancel_lk);
  ic->next = w->io_cancels;
  w->io_cancels = ic;
  __atomic_store_n(&w->io_ncancel, 1, __ATOMIC_RELEASE);
  sp__unlock(&w->io_cancel_lk);
  sp__io_wake(w); /* a sleeping worker must see it */
}
/* Runs on w (sched context): submits the cancellations asked for its ops. */
static void serve_cancels(sp__worker_t *w, struct sp__uring *u) {
  sp__lock(&w->io_cancel_lk);
  iocancel_t *ic = w->io_cancels;
  w->io_cancels = NULL;
  __atomic_store_n(&w->io_ncancel, 0, __ATOMIC_RELAXED);
  sp__unlock(&w->io_cancel_lk);
  while (ic) {
    iocancel_t *next = ic->next; /* ic may die once its fiber is woken */
    sp__iop_t *op = ic->op;
    if (op->main_done) { /* its CQE came meanwhile: no cancel needed */
      op->cx = CX_DONE;
      if (sp__park_claim(&op->p)) sp__park_wake_fifo(&op->p, 0);
    } else {
      struct io_uring_sqe *sqe = sqe_room(w, u, 1);
      io_uring_prep_cancel(sqe, op, 0);
      io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | UD_CANCEL_BIT);
      op->cx = CX_SUBMITTED;
      w->io_unsubmitted++;
    }
    ic = next;
  }
}

int sp__uring_run(sp__worker_t *w, struct io_uring_sqe *sqe, int64_t deadline,
                  const char *what, int fd) {
  struct sp__uring *u = w->uring;
  sp__cancel_t *scope;
  int64_t eff = effective(w, deadline, &scope);
  sp__iop_t op = {.cx = CX_NONE};
  iocancel_t ic = {.n = {.cancel = io_cancel}, .op = &op, .w = w};
  struct __kernel_timespec ts;
  if (scope) {
    int err = sp__cancel_add(scope, &ic.n);
    if (err) { /* cancelled before it started: give the SQE back as a no-op */
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, UD_IGNORE);
      w->io_unsubmitted++;
      return err;
    }
  }
  io_uring_sqe_set_data(sqe, &op);
  if (eff != SP_FOREVER) {
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *t = io_uring_get_sqe(&u->ring); /* reserved by sp__uring_sqe */
    int64_t kdl = eff; /* the kernel's clock is real: translate virtual time */
    if (w->rt->cfg.virtual_time && eff > 0) kdl = sp__mono() + (eff - sp_now());
    if (kdl < 0) kdl = 0;
    ts.tv_sec = kdl / 1000000000;
    ts.tv_nsec = kdl % 1000000000;
    io_uring_prep_link_timeout(t, &ts, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(t, UD_IGNORE);
    w->io_unsubmitted++;
  }
  w->io_unsubmitted++;
  STORE(&w->io_pending, w->io_pending + 1, RELAXED);
  sp__stat_inc(&w->stats.io_submitted);
  __atomic_fetch_add(&w->rt->io_inflight, 1, __ATOMIC_RELAXED);
  sp__park_begin(&op.p);
  sp__park_note(what, (const void *)(intptr_t)fd);
  SP__TRACE(w, TR_IO_SUBMIT, op.p.fiber->id, what);
  sp__park_wait_unscoped(&op.p, SP_FOREVER); /* U1: the CQE always comes */
  int res = op.res;
  if (scope) sp__cancel_del(scope, &ic.n);
  if (res != -ECANCELED) return res; /* bytes moved are reported (U5) */
  if (op.asked) return sp__cancel_err(scope);
  if (eff == SP_FOREVER) return res;
  if (deadline == 0) return -EAGAIN;
  if (eff != deadline && scope && scope->expire) scope->expire(scope); /* the scope's deadline */
  return -ETIMEDOUT;
}
