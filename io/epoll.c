/*
 * epoll.c: the fallback readiness poller: one epoll set per runtime, served
 * by one poller thread; fibers wait on fds here and then make the system
 * call themselves (io/ops.c), so no buffer is touched after a call returns.
 *
 * Model: a descriptor record per fd number (two-level table, never freed
 * while the runtime lives) holds the list of waiters, each a parker on its
 * fiber's stack with the events it wants. Every wait re-arms the fd with
 * EPOLLONESHOT for the union of its waiters' events (MOD, or ADD the first
 * time), so a closed and reused fd number never leaves stale state behind.
 * Invariants:
 *   E1  A waiter is on its descriptor's list only while its fiber is parked
 *       in sp__fd_wait; whoever takes it off (poller or the timed-out fiber)
 *       does so under the descriptor lock, and the fiber takes itself off
 *       before it returns, so the poller never touches a dead waiter.
 *   E2  The poller claims a waiter before waking it; a waiter whose deadline
 *       won the claim is only unlinked.
 * Locks: tab_lock (table growth), then one descriptor lock at a time; waking
 *   under a descriptor lock takes only the scheduler's leaf locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/poll.h"
#include "io/sp_io.h"

#define CHUNK 1024
#define NCHUNKS 1024 /* fds up to 1M */

typedef struct waiter {
  sp__parker_t p;
  short events, revents;
  struct waiter *next;
} waiter_t;

typedef struct pdesc {
  pthread_mutex_t lock;
  int fd;
  waiter_t *waiters;
} pdesc_t;

/* epoll sets alive in the process: sp_close skips the search of every
 * runtime while there are none (the io_uring backend's common case). */
static int nepoll;

struct sp__epoll {
  int epfd;
  int stopfd; /* eventfd: tells the poller thread to exit */
  pthread_t thread;
  pthread_mutex_t tab_lock;
  pdesc_t *chunks[NCHUNKS]; /* atomic pointers */
};

static void *poller(void *arg);

static struct sp__epoll *epoll_of(struct sp_runtime *rt) {
  struct sp__epoll *ep = __atomic_load_n(&rt->epoll, __ATOMIC_ACQUIRE);
  if (ep) return ep;
  pthread_mutex_lock(&rt->io_lock);
  ep = rt->epoll;
  if (!ep && (ep = calloc(1, sizeof *ep)) != NULL) {
    pthread_mutex_init(&ep->tab_lock, NULL);
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    ep->stopfd = eventfd(0, EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep->epfd < 0 || ep->stopfd < 0 || epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->stopfd, &ev) < 0 ||
        pthread_create(&ep->thread, NULL, poller, ep) != 0) {
      if (ep->epfd >= 0) close(ep->epfd);
      if (ep->stopfd >= 0) close(ep->stopfd);
      pthread_mutex_destroy(&ep->tab_lock);
      free(ep);
      ep = NULL;
    } else {
      __atomic_fetch_add(&nepoll, 1, __ATOMIC_RELEASE);
      __atomic_store_n(&rt->epoll, ep, __ATOMIC_RELEASE);
    }
  }
  pthread_mutex_unlock(&rt->io_lock);
  return ep;
}

static pdesc_t *desc(struct sp__epoll *ep, int fd, bool create) {
  if (fd < 0 || fd >= CHUNK * NCHUNKS) return NULL;
  pdesc_t *c = __atomic_load_n(&ep->chunks[fd / CHUNK], __ATOMIC_ACQUIRE);
  if (!c && create) {
    pthread_mutex_lock(&ep->tab_lock);
    c = ep->chunks[fd / CHUNK];
    if (!c && (c = calloc(CHUNK, sizeof *c)) != NULL) {
      for (int i = 0; i < CHUNK; i++) {
        pthread_mutex_init(&c[i].lock, NULL);
        c[i].fd = fd / CHUNK * CHUNK + i;
      }
      __atomic_store_n(&ep->chunks[fd / CHUNK], c, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ep->tab_lock);
  }
  return c ? &c[fd % CHUNK] : NULL;
}

/* Arms fd for its waiters' events. Locks: d->lock held. */
static int arm(struct sp__epoll *ep, pdesc_t *d, int fd) {
  uint32_t evs = 0;
  for (waiter_t *w = d->waiters; w; w = w->next) evs |= (uint32_t)w->events;
  if (!evs) return 0;
  struct epoll_event ev = {.events = evs | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = d};
  if (epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
  if (errno == ENOENT && epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
  return -errno;
}

static void unlink_waiter(pdesc_t *d, waiter_t *me) {
  for (waiter_t **pp = &d->waiters; *pp; pp = &(*pp)->next)
    if (*pp == me) {
      *pp = me->next;
      return;
    }
}

static void *poller(void *arg) {
  struct sp__epoll *ep = arg;
  struct epoll_event evs[128];
  for (;;) {
    int n = epoll_wait(ep->epfd, evs, 128, -1);
    for (int i = 0; i < n; i++) {
      pdesc_t *d = evs[i].data.ptr;
      if (!d) return NULL; /* stopfd */
      short got = (short)evs[i].events;
      if (got & EPOLLRDHUP) got |= POLLIN;
      pthread_mutex_lock(&d->lock);
      waiter_t **pp = &d->waiters;
      while (*pp) {
        waiter_t *w = *pp;
        short hit = got & (w->events | POLLERR | POLLHUP);
        if (!hit) {
          pp = &w->next;
          continue;
        }
        *pp = w->next; /* E1 */
        if (sp__park_claim(&w->p)) { /* E2 */
          w->revents = hit; /* (no trace event: the poller is no worker) */
          sp__park_wake(&w->p, 0);
        }
      }
      if (d->waiters) arm(ep, d, d->fd);
      pthread_mutex_unlock(&d->lock);
    }
  }
}

static int wait_thread(int fd, short events, int64_t deadline) {
  if (fd < 0) return -EBADF; /* poll(2) would ignore it and wait */
  for (;;) {
    int ms = -1;
    if (deadline == 0) {
      ms = 0;
    } else if (deadline != SP_FOREVER) {
      int64_t rel = deadline - sp_now();
      if (rel <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
      ms = (int)((rel + 999999) / 1000000);
    }
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, ms);
    if (n > 0) return p.revents & POLLNVAL ? -EBADF : p.revents;
    if (n == 0 && deadline == 0) return -EAGAIN;
    if (n < 0 && errno != EINTR) return -errno;
  }
}

int sp__fd_wait(struct sp_runtime *rt, int fd, short events, int64_t deadline, const char *what) {
  sp__worker_t *self = sp__self();
  if (!self || !self->cur || deadline == 0) /* a try never blocks in poll(2) */
    return wait_thread(fd, events, deadline);
  if (fd < 0) return -EBADF;
  struct sp__epoll *ep = epoll_of(rt);
  pdesc_t *d = ep ? desc(ep, fd, true) : NULL;
  if (!d) return fd < 0 ? -EBADF : -ENOMEM;
  waiter_t me = {.events = events};
  sp__park_begin(&me.p);
  sp__park_note(what, (const void *)(intptr_t)fd);
  pthread_mutex_lock(&d->lock);
  me.next = d->waiters;
  d->waiters = &me;
  int rc = arm(ep, d, fd);
  if (rc < 0) {
    unlink_waiter(d, &me);
    pthread_mutex_unlock(&d->lock);
    if (!sp__park_abort(&me.p)) sp__park_wait_unscoped(&me.p, SP_FOREVER);
    return rc;
  }
  pthread_mutex_unlock(&d->lock);
  __atomic_fetch_add(&rt->io_inflight, 1, __ATOMIC_RELAXED);
  sp__stat_inc(&self->stats.io_submitted);
  SP__TRACE(self, TR_IO_SUBMIT, me.p.fiber->id, what);
  int r = sp__park_wait(&me.p, deadline);
  sp__stat_inc(&sp__self()->stats.io_completed); /* maybe another worker now */
  __atomic_fetch_sub(&rt->io_inflight, 1, __ATOMIC_RELEASE);
  if (r < 0) { /* deadline or cancellation: maybe still listed */
    pthread_mutex_lock(&d->lock);
    unlink_waiter(d, &me); /* E1 */
    pthread_mutex_unlock(&d->lock);
    return r;
  }
  return me.revents;
}

void sp__fd_forget(struct sp_runtime *rt, int fd) {
  struct sp__epoll *ep = rt ? __atomic_load_n(&rt->epoll, __ATOMIC_ACQUIRE) : NULL;
  pdesc_t *d = ep ? desc(ep, fd, false) : NULL;
  if (!d) return;
  pthread_mutex_lock(&d->lock);
  epoll_ctl(ep->epfd, EPOLL_CTL_DEL, fd, NULL);
  while (d->waiters) {
    waiter_t *w = d->waiters;
    d->waiters = w->next;
    if (sp__park_claim(&w->p)) {
      w->revents = POLLNVAL;
      sp__park_wake(&w->p, 0);
    }
  }
  pthread_mutex_unlock(&d->lock);
}

static void forget_in(struct sp_runtime *rt, void *fd) {
  if (__atomic_load_n(&rt->epoll, __ATOMIC_ACQUIRE)) sp__fd_forget(rt, (int)(intptr_t)fd);
}

void sp__fd_forget_all(int fd) {
  if (__atomic_load_n(&nepoll, __ATOMIC_ACQUIRE))
    sp__each_runtime(forget_in, (void *)(intptr_t)fd);
}

void sp__epoll_fini(struct sp_runtime *rt) {
  struct sp__epoll *ep = rt->epoll;
  if (!ep) return;
  uint64_t one = 1;
  if (write(ep->stopfd, &one, sizeof one) != sizeof one) abort();
  pthread_join(ep->thread, NULL);
  close(ep->stopfd);
  close(ep->epfd);
  for (int c = 0; c < NCHUNKS; c++)
    if (ep->chunks[c]) {
      for (int i = 0; i < CHUNK; i++) pthread_mutex_destroy(&ep->chunks[c][i].lock);
      free(ep->chunks[c]);
    }
  pthread_mutex_destroy(&ep->tab_lock);
  free(ep);
  rt->epoll = NULL;
  __atomic_fetch_sub(&nepoll, 1, __ATOMIC_RELEASE);
}
