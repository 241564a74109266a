/*
 * sp_io.h: Spindle's I/O API: files, sockets and TCP helpers in blocking
 * style, plus a pool for blocking C calls.
 *
 * Called from a fiber, each operation parks the fiber (never the worker)
 * until it completes; io_uring does the work on the worker's own ring, or,
 * where io_uring is refused, epoll (sockets, pipes) and a thread pool
 * (files) do, with the same semantics. Called from a foreign thread, the
 * same functions block the thread.
 *
 * Conventions (as in sp_runtime.h): results >= 0 are success (a byte count,
 * an fd, 0), < 0 a negated errno code; errno is never used. Deadlines are
 * absolute (sp_now() clock). SP_FOREVER waits forever; 0 takes only what is
 * ready now and returns -EAGAIN otherwise; a deadline that passes while the
 * operation is in flight cancels it and returns -ETIMEDOUT.
 * Cancellation guarantee: when a call returns, the kernel is done with its
 * buffers (a cancelled io_uring operation is waited for), and bytes that
 * were transferred are reported, never dropped.
 * All functions: Suspends: yes (a fiber parks; a foreign thread blocks),
 * except where noted. One call moves at most 0x7ffff000 bytes (Linux's
 * limit for read(2)); sp_read_exact/sp_write_all loop past it.
 */
#ifndef SP_IO_H
#define SP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "runtime/sp_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;

/* ---- backend ----------------------------------------------------------- */

enum { SP_IO_URING = 1, SP_IO_EPOLL = 2 };

/* Which backend rt uses (SP_IO_URING or SP_IO_EPOLL) and, in why (may be
 * NULL), a line saying why, e.g. "io_uring_setup: EPERM
 * (kernel.io_uring_disabled=2)" or "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)".
 * SPINDLE_IO=epoll forces the fallback; SPINDLE_IO=uring-coop or
 * uring-plain make io_uring start from the setup flags of older kernels
 * (COOP_TASKRUN, or none; uring-plain also submits and waits as on older
 * 5.x kernels), for tests. -EINVAL for NULL rt. Suspends: no. */
SP_API int sp_io_backend(sp_runtime_t *rt, char *why, size_t len);

/* ---- files and any fd --------------------------------------------------- */

SP_API ssize_t sp_read(int fd, void *buf, size_t len, int64_t deadline);
SP_API ssize_t sp_write(int fd, const void *buf, size_t len, int64_t deadline);
SP_API ssize_t sp_pread(int fd, void *buf, size_t len, off_t off, int64_t deadline);
SP_API ssize_t sp_pwrite(int fd, const void *buf, size_t len, off_t off, int64_t deadline);
SP_API ssize_t sp_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
SP_API ssize_t sp_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
/* open(2) relative to the current directory; returns the fd. */
SP_API int sp_open(const char *path, int flags, mode_t mode);
/* Closes fd. Fibers blocked on fd in sp_recv/sp_read/sp_accept/... are
 * released first, as closing a connection in Go unblocks its readers:
 * they return end of file (0) or an error (-EBADF, -EINVAL for accept).
 * A socket is shut down for that, so dup'ed copies of it see the
 * connection end too (close those with close(2)). */
SP_API int sp_close(int fd);
SP_API int sp_fsync(int fd);
/* statx(2); returns 0. */
SP_API int sp_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out);

/* Loops over partial transfers until len bytes moved. Returns 0 when all
 * were, else the error (-ENODATA: end of file first, for read_exact); *done
 * (may be NULL) is always the number of bytes moved. */
SP_API int sp_read_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *done);
SP_API int sp_write_all(int fd, const void *buf, size_t len, int64_t deadline, size_t *done);

/* Waits until fd is ready for events (POLLIN, POLLOUT, ...); returns the
 * ready events (POLLERR/POLLHUP included when they occur). */
SP_API int sp_poll_fd(int fd, short events, int64_t deadline);

/* Readiness as a channel, for sp_select beside channels, timers and
 * sp_ctx_done: a watch sends the ready events of fd (an int, as sp_poll_fd
 * returns them) on its channel each time a receiver takes them and fd is
 * ready for `events` (level-triggered: it waits for readiness again after
 * each value). Like any readiness report it can be stale by the time it is
 * received (the watch looked before the previous value was acted on): make
 * the call with deadline 0 and treat -EAGAIN as "not yet". A wait error
 * (-EBADF...) is sent once as a negative value,
 * and the channel is then closed. Create from a fiber (-EPERM elsewhere);
 * a small fiber serves each watch until sp_watch_free, which stops it and
 * frees the channel (from any thread). */
typedef struct sp_chan sp_chan_t; /* sync/sp_sync.h */
typedef struct sp_watch sp_watch_t;
SP_API int sp_watch_fd(sp_watch_t **out, int fd, short events);
SP_API sp_chan_t *sp_watch_chan(sp_watch_t *w);
SP_API int sp_watch_free(sp_watch_t *w);

/* ---- sockets ------------------------------------------------------------ */

/* socket(2), always SOCK_CLOEXEC; returns the fd. Suspends: no. */
SP_API int sp_socket(int domain, int type, int protocol);
/* accept(2), SOCK_CLOEXEC; addr and addrlen may be NULL. TCP connections
 * get TCP_NODELAY, as in Go. Returns the fd. */
SP_API int sp_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline);
SP_API int sp_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline);
SP_API ssize_t sp_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
SP_API ssize_t sp_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
SP_API ssize_t sp_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline);
SP_API ssize_t sp_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline);
/* shutdown(2). Suspends: no. */
SP_API int sp_shutdown(int fd, int how);

/* ---- listeners: accepting in a loop -------------------------------------- */

/* A listening socket that fibers accept from, as Go's net.Listener. For
 * TCP on io_uring (Linux 6.0 and later) one multishot accept stays armed on the
 * ring of the worker that first accepted, instead of one operation per
 * connection; connections nobody waits for queue up (at most 64, then the
 * kernel's backlog holds the rest). Elsewhere each accept is sp_accept. */
typedef struct sp_listener sp_listener_t;

/* Takes over the listening socket fd (it is closed by sp_listener_close;
 * O_NONBLOCK is cleared). -EBADF, -ENOTSOCK, -EINVAL (not listening),
 * -ENOMEM.
 * Suspends: no. */
SP_API int sp_listener_open(sp_listener_t **out, int fd);
/* The next connection, as sp_accept returns it (SOCK_CLOEXEC, TCP_NODELAY
 * on TCP; the peer's address: getpeername). Any number of fibers and
 * threads may accept at once; connections go to them in arrival order.
 * -ETIMEDOUT / -EAGAIN (deadline 0) with nothing accepted, -EMFILE or
 * -ENFILE at the fd limit (the connection waits in the backlog: back off
 * and call again), -EBADF once the listener is closing, or the fiber's
 * cancellation scope's error. */
SP_API int sp_listener_accept(sp_listener_t *l, int64_t deadline);
/* The listening fd (for sp_local_port, socket options). */
SP_API int sp_listener_fd(sp_listener_t *l);
/* Stops accepting, as Go's Listener.Close: wakes every accepter with
 * -EBADF, waits until none is inside, closes the connections accepted but
 * not taken and the socket. Later accepts return -EBADF; a second close
 * -EBADF. Call it before the runtime that accepted on l is destroyed.
 * Suspends: yes (briefly, while the kernel ends the multishot). */
SP_API int sp_listener_close(sp_listener_t *l);
/* Closes l if it is open, then frees it; no fiber or thread may use l
 * after this (as sp_chan_free). */
SP_API int sp_listener_free(sp_listener_t *l);

/* ---- TCP and Unix-socket helpers ---------------------------------------- */

/* Flags for sp_listen. SO_REUSEADDR is always set on TCP listeners. */
enum { SP_LISTEN_REUSEPORT = 1 };

/* Listens on addr: "host:port", "[v6addr]:port", ":port" (every IPv4 and
 * IPv6 address), "port" alone, or "unix:/path" (a stale socket file is
 * replaced; one a server listens on gives -EADDRINUSE). Host names are resolved through sp_blocking. backlog <= 0
 * means SOMAXCONN. Returns the listening fd. */
SP_API int sp_listen(const char *addr, int backlog, int flags);
/* Connects to addr (forms as for sp_listen; "unix:/path"), trying each
 * resolved address in turn until one answers or the deadline passes.
 * TCP connections get TCP_NODELAY (as Go does). Returns the fd;
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ENOENT (name not found)... */
SP_API int sp_dial(const char *addr, int64_t deadline);
/* The local port of a bound socket (for listeners on port 0), or < 0. */
SP_API int sp_local_port(int fd);
/* Sets or clears TCP_NODELAY (sp_accept and sp_dial set it). Suspends: no. */
SP_API int sp_set_nodelay(int fd, int on);

/* ---- blocking calls ------------------------------------------------------ */

/* Runs fn(arg) on the runtime's bounded pool of helper threads while the
 * calling fiber waits; the worker keeps running other fibers. For calls
 * with no asynchronous form (getaddrinfo, a library that blocks). *result
 * (may be NULL) receives fn's return value. Returns 0, or -EAGAIN when no
 * helper thread could be started. From a foreign thread fn runs inline.
 * fn must not call Spindle functions that suspend. */
SP_API int sp_blocking(sp_fn_t fn, void *arg, void **result);

#ifdef __cplusplus
}
#endif
#endif /* SP_IO_H */
