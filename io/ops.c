/*
 * ops.c: the I/O operations of sp_io.h, on both backends (model: poll.h).
 *
 * Each operation has three paths:
 *   ring      a fiber on a worker with an io_uring ring: one SQE (plus a
 *             linked timeout for a deadline), park, the CQE's result.
 *   readiness a fiber without a ring (epoll backend): try the call without
 *             blocking; on EAGAIN wait in the epoll set (sp__fd_wait) and
 *             retry. Regular files, which cannot be polled, and calls that
 *             always block (open, fsync, statx) go to the blocking pool.
 *   thread    a foreign thread: the same code as readiness, where the wait
 *             is poll(2) and the pool runs the call inline.
 * Invariants:
 *   O1  No path keeps a worker pointer across a park (sp__uring_self() is
 *       read afresh in each call; a retry loop re-reads it).
 *   O2  A ring result of -EAGAIN (a descriptor in O_NONBLOCK mode) becomes
 *       a readiness wait on the same ring (POLL_ADD) and a retry, so both
 *       blocking and non-blocking descriptors behave the same.
 *   O3  A call served inline on a fiber does not park. The readiness path
 *       always tries the call first; on the ring path a positioned read
 *       (sp_pread) first tries preadv2(RWF_NOWAIT), so data in the page
 *       cache comes back with no ring round trip and no park, and only
 *       what would block goes to the ring. There is no preemption, so
 *       after SP__IO_NOWAIT_BUDGET inline calls in a row the fiber yields
 *       once (the scheduler renews the budget whenever it switches to a
 *       fiber): one reading a cached file in a loop lets the others run.
 *   O4  A blocking listener is accepted from without blocking by setting
 *       O_NONBLOCK around one accept4. The flag belongs to the open file,
 *       shared by every accepter, so the read-set-accept-restore, and
 *       every read of the flag, run under one process-wide mutex (held for
 *       no switch). Without it two accepters could leave the listener
 *       non-blocking for good (a multishot accept on it then ends at once
 *       with -EAGAIN), or one that read the flag mid-toggle take the
 *       listener for non-blocking and block its thread in accept4.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/poll.h"
#include "io/sp_io.h"

/* Longest transfer one call makes (Linux's MAX_RW_COUNT; an SQE's length
 * is 32 bits): longer requests move this much, and the caller loops, as
 * with read(2) itself. */
#define RW_MAX ((size_t)0x7ffff000)
static size_t clamp(size_t len) { return len > RW_MAX ? RW_MAX : len; }

/* ---- the readiness path ------------------------------------------------- */

static struct sp_runtime *self_rt(void) {
  sp__worker_t *w = sp__self();
  return w && w->cur ? w->rt : NULL;
}

/* O3: before a call served inline on a fiber (no-op on a foreign
 * thread): once the budget is spent, the fiber yields. Switches: yes. */
static void inline_turn(void) {
  sp__worker_t *w = sp__self();
  if (!w || !w->cur) return;
  if (w->io_nowait_budget == 0) {
    sp_yield();
    w = sp__self(); /* O1 */
    w->io_nowait_budget = SP__IO_NOWAIT_BUDGET; /* nobody else ran */
  }
  w->io_nowait_budget--;
}

static pthread_mutex_t nonblock_lock = PTHREAD_MUTEX_INITIALIZER; /* O4 */

/* Under the lock: another accepter's O4 toggle must not make a blocking
 * listener look non-blocking (this one would then block in accept4). */
static bool nonblocking(int fd) {
  pthread_mutex_lock(&nonblock_lock);
  int fl = fcntl(fd, F_GETFL);
  pthread_mutex_unlock(&nonblock_lock);
  return fl >= 0 && (fl & O_NONBLOCK);
}

/* Blocking calls run by the pool (or inline on a foreign thread). */
enum { SC_READ, SC_WRITE, SC_PREAD, SC_PWRITE, SC_READV, SC_WRITEV, SC_OPEN, SC_FSYNC, SC_STATX };

typedef struct scall {
  int op, fd, flags;
  void *buf;
  size_t len;
  off_t off;
  const char *path;
  mode_t mode;
  unsigned mask;
  ssize_t res;
} scall_t;

static void *run_scall(void *arg) {
  scall_t *c = arg;
  ssize_t r = -1;
  switch (c->op) {
  case SC_READ: r = read(c->fd, c->buf, c->len); break;
  case SC_WRITE: r = write(c->fd, c->buf, c->len); break;
  case SC_PREAD: r = pread(c->fd, c->buf, c->len, c->off); break;
  case SC_PWRITE: r = pwrite(c->fd, c->buf, c->len, c->off); break;
  case SC_READV: r = readv(c->fd, c->buf, (int)c->len); break;
  case SC_WRITEV: r = writev(c->fd, c->buf, (int)c->len); break;
  case SC_OPEN: r = open(c->path, c->flags, c->mode); break;
  case SC_FSYNC: r = fsync(c->fd); break;
  case SC_STATX: r = statx(c->fd, c->path, c->flags, c->mask, c->buf); break;
  }
  c->res = r < 0 ? -errno : r;
  return NULL;
}

static ssize_t pooled(scall_t *c) {
  struct sp_runtime *rt = self_rt();
  if (!rt) {
    run_scall(c);
    return c->res;
  }
  int rc = sp__blocking_run(rt, run_scall, c, NULL);
  return rc < 0 ? rc : c->res;
}

/* The call of c made without blocking (RWF_NOWAIT: pipes, sockets, and
 * regular files whose data is cached): its result, -EAGAIN (would block)
 * or -EOPNOTSUPP (this file cannot say). A write to a socket goes through
 * sendmsg with MSG_NOSIGNAL, so a closed peer is -EPIPE on any thread. */
static ssize_t nowait_call(scall_t *c) {
  struct iovec one = {c->buf, c->len};
  const struct iovec *iov = &one;
  int n = 1;
  if (c->op == SC_READV || c->op == SC_WRITEV) {
    iov = c->buf;
    n = (int)c->len;
  }
  bool write = c->op == SC_WRITE || c->op == SC_PWRITE || c->op == SC_WRITEV;
  off_t off = c->op == SC_PREAD || c->op == SC_PWRITE ? c->off : -1;
  ssize_t r;
  if (write && off == -1) {
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    r = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0 || errno != ENOTSOCK) return r < 0 ? -errno : r;
  }
  r = write ? pwritev2(c->fd, iov, n, off, RWF_NOWAIT) : preadv2(c->fd, iov, n, off, RWF_NOWAIT);
  return r < 0 ? -errno : r;
}

/* read/write-like calls on any fd (readiness path, O1): try without
 * blocking, wait for readiness, try again. Never a blocking call on a
 * worker: a descriptor that cannot be asked without blocking, or a
 * regular file whose data is not cached, goes to the pool. */
static ssize_t ready_rw(scall_t *c, short events, int64_t deadline, const char *what) {
  for (;;) {
    inline_turn(); /* O3 */
    ssize_t r = nowait_call(c);
    if (r == -EINTR) continue;
    if (r == -EOPNOTSUPP) return pooled(c);
    if (r != -EAGAIN) return r;
    struct sp_runtime *rt = self_rt();
    int w = sp__fd_wait(rt, c->fd, events, deadline, what);
    if (w == -EPERM) return pooled(c); /* a regular file: it reads from disk */
    if (w < 0) return w;
    if (w & POLLNVAL) return -EBADF;
    if (!rt) return pooled(c); /* a foreign thread may block: ready, so call */
  }
}

/* Socket calls that take MSG_DONTWAIT. */
enum { SK_RECV, SK_SEND, SK_RECVMSG, SK_SENDMSG };

static ssize_t ready_sock(int op, int fd, void *buf, size_t len, int flags, int64_t deadline) {
  static const char *const what[] = {"io recv", "io send", "io recvmsg", "io sendmsg"};
  short ev = op == SK_RECV || op == SK_RECVMSG ? POLLIN : POLLOUT;
  for (;;) {
    inline_turn(); /* O3 */
    ssize_t r;
    switch (op) {
    case SK_RECV: r = recv(fd, buf, len, flags | MSG_DONTWAIT); break;
    case SK_SEND: r = send(fd, buf, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL); break;
    case SK_RECVMSG: r = recvmsg(fd, buf, flags | MSG_DONTWAIT); break;
    default: r = sendmsg(fd, buf, flags | MSG_DONTWAIT | MSG_NOSIGNAL); break;
    }
    if (r >= 0) return r;
    if (errno != EAGAIN && errno != EINTR) return -errno;
    if (errno == EINTR) continue;
    int w = sp__fd_wait(self_rt(), fd, ev, deadline, what[op]);
    if (w < 0) return w;
    if (w & POLLNVAL) return -EBADF;
  }
}

/* ---- the ring path -------------------------------------------------------- */

/* O2: waits on w's ring until fd is ready for events. */
static int ring_poll(sp__worker_t *w, int fd, short events, int64_t deadline, const char *what) {
  struct io_uring_sqe *sqe = sp__uring_sqe(w, deadline);
  io_uring_prep_poll_add(sqe, fd, (unsigned)events);
  return sp__uring_run(w, sqe, deadline, what, fd);
}

/* Runs one ring operation prepared by PREP (sqe in scope), retrying after
 * a readiness wait when a non-blocking descriptor says EAGAIN (O2). */
#define RING_OP(w, fd, events, deadline, what, PREP)                        \
  for (;;) {                                                                \
    struct io_uring_sqe *sqe = sp__uring_sqe((w), (deadline));          \
    PREP;                                                                   \
    int r_ = sp__uring_run((w), sqe, (deadline), (what), (fd));             \
    if (r_ != -EAGAIN || (deadline) == 0) return r_;                        \
    (w) = sp__uring_self(); /* O1 */                                        \
    if (!(w)) break;                                                        \
    r_ = ring_poll((w), (fd), (events), (deadline), (what));                \
    if (r_ < 0) return r_;                                                  \
    if (!((w) = sp__uring_self())) break;                                   \
  }

/* ---- files and any fd ------------------------------------------------------ */

ssize_t sp_read(int fd, void *buf, size_t len, int64_t deadline) {
  len = clamp(len);
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLIN, deadline, "io read", io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)-1));
  scall_t c = {.op = SC_READ, .fd = fd, .buf = buf, .len = len};
  return ready_rw(&c, POLLIN, deadline, "io read");
}

ssize_t sp_write(int fd, const void *buf, size_t len, int64_t deadline) {
  len = clamp(len);
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLOUT, deadline, "io write", io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)-1));
  scall_t c = {.op = SC_WRITE, .fd = fd, .buf = (void *)buf, .len = len};
  return ready_rw(&c, POLLOUT, deadline, "io write");
}

/* O3: the read served inline, or -EAGAIN for the ring to do it (would
 * block, or the file cannot say). As on the readiness path, data that is
 * there is returned even in a cancelled scope; only a wait is cut short.
 * Runs on: a fiber. Switches: yes (inline_turn). */
static ssize_t pread_now(int fd, void *buf, size_t len, off_t off) {
  inline_turn();
  struct iovec iov = {buf, len};
  ssize_t r = preadv2(fd, &iov, 1, off, RWF_NOWAIT);
  if (r < 0) return errno == EAGAIN || errno == EOPNOTSUPP || errno == EINTR ? -EAGAIN : -errno;
  return r;
}

ssize_t sp_pread(int fd, void *buf, size_t len, off_t off, int64_t deadline) {
  len = clamp(len);
  if (off < 0) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w && len) {
    ssize_t r = pread_now(fd, buf, len, off);
    w = sp__uring_self(); /* O1: inline_turn may have switched */
    if (r > 0 && (size_t)r < len) { /* partly cached, or the end of the file */
      ssize_t more = sp_pread(fd, (char *)buf + r, len - (size_t)r, off + r, deadline);
      return more > 0 ? r + more : r; /* bytes read are reported */
    }
    if (r != -EAGAIN) return r;
  }
  if (w) RING_OP(w, fd, POLLIN, deadline, "io pread", io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)off));
  scall_t c = {.op = SC_PREAD, .fd = fd, .buf = buf, .len = len, .off = off};
  return ready_rw(&c, POLLIN, deadline, "io pread");
}

ssize_t sp_pwrite(int fd, const void *buf, size_t len, off_t off, int64_t deadline) {
  len = clamp(len);
  if (off < 0) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLOUT, deadline, "io pwrite", io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)off));
  scall_t c = {.op = SC_PWRITE, .fd = fd, .buf = (void *)buf, .len = len, .off = off};
  return ready_rw(&c, POLLOUT, deadline, "io pwrite");
}

ssize_t sp_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline) {
  if (iovcnt < 0 || (iovcnt > 0 && !iov)) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLIN, deadline, "io readv", io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, (uint64_t)-1));
  scall_t c = {.op = SC_READV, .fd = fd, .buf = (void *)iov, .len = (size_t)iovcnt};
  return ready_rw(&c, POLLIN, deadline, "io readv");
}

ssize_t sp_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline) {
  if (iovcnt < 0 || (iovcnt > 0 && !iov)) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLOUT, deadline, "io writev", io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, (uint64_t)-1));
  scall_t c = {.op = SC_WRITEV, .fd = fd, .buf = (void *)iov, .len = (size_t)iovcnt};
  return ready_rw(&c, POLLOUT, deadline, "io writev");
}

int sp_open(const char *path, int flags, mode_t mode) {
  if (!path) return -EINVAL;
  flags |= O_CLOEXEC;
  sp__worker_t *w = sp__uring_self();
  if (w) {
    struct io_uring_sqe *sqe = sp__uring_sqe(w, SP_FOREVER);
    io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode);
    return sp__uring_run(w, sqe, SP_FOREVER, "io open", -1);
  }
  scall_t c = {.op = SC_OPEN, .path = path, .flags = flags, .mode = mode};
  return (int)pooled(&c);
}

int sp_close(int fd) {
  if (fd < 0) return -EBADF;
  /* first the epoll waiters on fd, in any runtime: they return -EBADF
   * without touching fd again; then io_uring operations, which hold the
   * socket open: shutting it down ends them (end of file, -EINVAL) */
  sp__fd_forget_all(fd);
  shutdown(fd, SHUT_RDWR); /* not a socket: ENOTSOCK, and nothing to end */
  /* close(2) itself, not a ring operation: it is quick, and a close must
   * not be cancellable halfway */
  return close(fd) < 0 && errno != EINTR ? -errno : 0; /* EINTR: closed anyway */
}

int sp_fsync(int fd) {
  sp__worker_t *w = sp__uring_self();
  if (w) {
    struct io_uring_sqe *sqe = sp__uring_sqe(w, SP_FOREVER);
    io_uring_prep_fsync(sqe, fd, 0);
    return sp__uring_run(w, sqe, SP_FOREVER, "io fsync", fd);
  }
  scall_t c = {.op = SC_FSYNC, .fd = fd};
  return (int)pooled(&c);
}

int sp_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out) {
  if (!path || !out) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) {
    struct io_uring_sqe *sqe = sp__uring_sqe(w, SP_FOREVER);
    io_uring_prep_statx(sqe, dirfd, path, flags, mask, out);
    return sp__uring_run(w, sqe, SP_FOREVER, "io statx", dirfd);
  }
  scall_t c = {.op = SC_STATX, .fd = dirfd, .path = path, .flags = flags, .mask = mask, .buf = out};
  return (int)pooled(&c);
}

int sp_poll_fd(int fd, short events, int64_t deadline) {
  sp__worker_t *w = sp__uring_self();
  if (w) return ring_poll(w, fd, events, deadline, "io poll");
  int r = sp__fd_wait(self_rt(), fd, events, deadline, "io poll");
  if (r == -EPERM) return events & (POLLIN | POLLOUT); /* regular files are always ready */
  if (r > 0 && (r & POLLNVAL)) return -EBADF;
  return r;
}

/* ---- loops over partial transfers ------------------------------------------ */

int sp_read_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *done) {
  size_t got = 0;
  int rc = 0;
  while (got < len) {
    ssize_t n = sp_read(fd, (char *)buf + got, len - got, deadline);
    if (n == 0) rc = -ENODATA;
    if (n <= 0) {
      if (n < 0) rc = (int)n;
      break;
    }
    got += (size_t)n;
  }
  if (done) *done = got;
  return rc;
}

int sp_write_all(int fd, const void *buf, size_t len, int64_t deadline, size_t *done) {
  size_t put = 0;
  int rc = 0;
  while (put < len) {
    ssize_t n = sp_write(fd, (const char *)buf + put, len - put, deadline);
    if (n < 0) {
      rc = (int)n;
      break;
    }
    if (n == 0) {
      rc = -EIO;
      break;
    }
    put += (size_t)n;
  }
  if (done) *done = put;
  return rc;
}

/* ---- sockets ------------------------------------------------------------------ */

int sp_socket(int domain, int type, int protocol) {
  int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
  return fd < 0 ? -errno : fd;
}

static int accept_any(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline);

int sp_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline) {
  struct sockaddr_storage ss; /* the family tells TCP from Unix sockets */
  socklen_t sslen = sizeof ss;
  if (!addr || !addrlen) {
    addr = (struct sockaddr *)&ss;
    addrlen = &sslen;
  }
  int c = accept_any(fd, addr, addrlen, deadline);
  if (c >= 0 && *addrlen >= sizeof(sa_family_t) &&
      (addr->sa_family == AF_INET || addr->sa_family == AF_INET6))
    sp_set_nodelay(c, 1); /* as Go does for every TCP connection */
  return c;
}

static int accept_any(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline) {
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLIN, deadline, "io accept", io_uring_prep_accept(sqe, fd, addr, addrlen, SOCK_CLOEXEC));
  bool nb = nonblocking(fd);
  for (;;) {
    if (nb) {
      int c = accept4(fd, addr, addrlen, SOCK_CLOEXEC);
      if (c >= 0) return c;
      if (errno != EAGAIN && errno != EINTR) return -errno;
    }
    int r = sp__fd_wait(self_rt(), fd, POLLIN, deadline, "io accept");
    if (r < 0) return r;
    if (r & POLLNVAL) return -EBADF;
    if (!nb) {
      /* a blocking listener: accept only what is there now (O4) */
      pthread_mutex_lock(&nonblock_lock);
      int fl = fcntl(fd, F_GETFL);
      fcntl(fd, F_SETFL, fl | O_NONBLOCK);
      int c = accept4(fd, addr, addrlen, SOCK_CLOEXEC);
      int e = errno;
      fcntl(fd, F_SETFL, fl);
      pthread_mutex_unlock(&nonblock_lock);
      if (c >= 0) {
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
        return c;
      }
      if (e != EAGAIN && e != EINTR) return -e;
    }
  }
}

int sp_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline) {
  if (!addr) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) {
    struct io_uring_sqe *sqe = sp__uring_sqe(w, deadline);
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    return sp__uring_run(w, sqe, deadline, "io connect", fd);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  int rc = connect(fd, addr, addrlen) == 0 ? 0 : -errno;
  if (rc == -EINPROGRESS || rc == -EAGAIN) {
    rc = sp__fd_wait(self_rt(), fd, POLLOUT, deadline, "io connect"); /* 0: -EAGAIN */
    if (rc >= 0) {
      int err = 0;
      socklen_t el = sizeof err;
      rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ? -errno : -err;
    }
  }
  if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl);
  return rc;
}

ssize_t sp_recv(int fd, void *buf, size_t len, int flags, int64_t deadline) {
  len = clamp(len);
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLIN, deadline, "io recv", io_uring_prep_recv(sqe, fd, buf, len, flags));
  return ready_sock(SK_RECV, fd, buf, len, flags, deadline);
}

ssize_t sp_send(int fd, const void *buf, size_t len, int flags, int64_t deadline) {
  len = clamp(len);
  flags |= MSG_NOSIGNAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLOUT, deadline, "io send", io_uring_prep_send(sqe, fd, buf, len, flags));
  return ready_sock(SK_SEND, fd, (void *)buf, len, flags, deadline);
}

ssize_t sp_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline) {
  if (!msg) return -EINVAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLIN, deadline, "io recvmsg", io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags));
  return ready_sock(SK_RECVMSG, fd, msg, 0, flags, deadline);
}

ssize_t sp_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline) {
  if (!msg) return -EINVAL;
  flags |= MSG_NOSIGNAL;
  sp__worker_t *w = sp__uring_self();
  if (w) RING_OP(w, fd, POLLOUT, deadline, "io sendmsg", io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags));
  return ready_sock(SK_SENDMSG, fd, (void *)msg, 0, flags, deadline);
}

int sp_shutdown(int fd, int how) { return shutdown(fd, how) < 0 ? -errno : 0; }
