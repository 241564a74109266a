/*
 * poll.h: the I/O backends as the scheduler and io/ops.c see them.
 * Internal: compiled into the runtime library (the scheduler waits in the
 * ring), used by runtime/sched.c, runtime/runtime.c and the io/ sources.
 *
 * Backends:
 *   io_uring  one ring per worker, created on the worker's own thread
 *             (SINGLE_ISSUER|DEFER_TASKRUN where the kernel has them). A
 *             fiber queues its SQE on the ring of the worker it runs on and
 *             parks; that worker submits SQEs in batches (when it runs out
 *             of fibers or every SP__GLOBAL_EVERY ticks) and readies the
 *             fiber when it reaps the CQE. Deadlines are linked timeouts, so
 *             the kernel cancels the operation and the fiber always waits
 *             for the operation's own CQE (uring.c U1).
 *   epoll     one epoll set per runtime, served by a poller thread; fibers
 *             wait for readiness and make the call themselves (epoll.c).
 *             Regular files go to the blocking pool (blocking.c).
 * Choice: made once per runtime at create (backend.c, sp__io_runtime_init):
 * io_uring unless SPINDLE_IO=epoll, io_uring_setup fails, or an opcode is
 * missing; a worker whose own ring cannot be set up uses epoll for its
 * calls.
 */
#ifndef SP_IO_POLL_H
#define SP_IO_POLL_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core.h"
#include "runtime/park.h"

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring_sqe;
struct sp__uring;

/* ---- runtime and worker life (runtime.c, sched.c) ---------------------- */

/* Picks the backend of rt and records why. Runs on: the creating thread. */
void sp__io_runtime_init(struct sp_runtime *rt);
/* Stops the epoll thread and the blocking pool. After the workers stopped. */
void sp__io_runtime_fini(struct sp_runtime *rt);
/* Sets up w's ring (io_uring backend). Runs on: w's thread, before its
 * loop. fini frees it after the thread was joined (any thread). */
void sp__io_worker_init(sp__worker_t *w);
void sp__io_worker_fini(sp__worker_t *w);

/* io_uring_queue_init_params and io_uring_queue_exit, for every ring the
 * runtime makes (the probe's too): under TSan they run under one mutex,
 * so TSan orders a ring's use of its memory before a later ring's use of
 * the same addresses (uring.c U10). Runs on: any thread, outside any fiber. */
struct io_uring;
struct io_uring_params;
int sp__uring_queue_init(unsigned entries, struct io_uring *ring, struct io_uring_params *p);
void sp__uring_queue_exit(struct io_uring *ring);

/* ---- the scheduler's hooks (sched.c) ------------------------------------ */

/* Whether w has io_uring work to look at: SQEs not yet submitted or
 * operations whose completion was not reaped. Runs on: w. */
static inline bool sp__io_pending(const sp__worker_t *w) {
  return w->io_unsubmitted || w->io_pending || __atomic_load_n(&w->io_ncancel, __ATOMIC_ACQUIRE);
}
/* Calls a fiber may serve inline (a page-cache read, a ready socket on
 * the readiness path) before it yields once (ops.c O3); the scheduler
 * renews it whenever it switches to a fiber. */
#define SP__IO_NOWAIT_BUDGET 64

/* Submits w's queued SQEs and readies the fibers whose operations
 * completed, without blocking. Runs on: w, in the sched context. */
void sp__io_poll(sp__worker_t *w);
/* Whether sp__io_poll with nothing queued costs no system call when
 * nothing is new: the kernel flags pending work (TASKRUN_FLAG). Runs on: w. */
bool sp__io_poll_cheap(const sp__worker_t *w);
/* Readies the fibers of the completions already visible on w's ring (a
 * sleep brought them in), without a system call. Runs on: w, sched. */
void sp__io_reap(sp__worker_t *w);
/* Sleeps until sp__io_wake(w), a completion on w's ring, or the deadline
 * (then -ETIMEDOUT). Without a ring: the futex on w->sleep. Completions are
 * left for sp__io_reap, once w has left the idle list. Runs on: w, sched context, in the idle list. */
int sp__io_idle_wait(sp__worker_t *w, int64_t deadline);
/* Wakes w out of sp__io_idle_wait (spurious wake-ups are allowed).
 * Runs on: any thread. */
void sp__io_wake(sp__worker_t *w);

/* ---- operations (ops.c) -------------------------------------------------- */

/* One io_uring operation in flight, on its fiber's stack. */
typedef struct sp__iop {
  sp__parker_t p;
  int32_t res;     /* the CQE's result */
  uint32_t cflags; /* the CQE's flags */
  uint32_t cx;     /* atomic: cancellation state (uring.c U5) */
  bool asked;      /* a cancellation was asked for (by the scope) */
  bool main_done, cancel_done; /* owner only: which CQEs were reaped */
} sp__iop_t;

/* The calling fiber's worker when it has a ring, else NULL (foreign thread,
 * epoll backend, or a worker whose ring failed). Runs on: any thread. */
sp__worker_t *sp__uring_self(void);
/* An SQE on w's ring, with room behind it for the linked timeout that
 * deadline (cut to the fiber's cancellation scope) needs.
 * Runs on: w, in a fiber. Switches: no. */
struct io_uring_sqe *sp__uring_sqe(sp__worker_t *w, int64_t deadline);
/* Finishes sqe (from sp__uring_sqe(w, the same deadline)): links a timeout
 * for the deadline, parks until the CQE, and returns its result:
 * -ETIMEDOUT / -EAGAIN when the deadline cancelled it, the scope's error
 * when the fiber's cancellation scope did. what is a park reason
 * ("io read"); fd is shown by sp_runtime_dump.
 * Runs on: w, in a fiber. Switches: yes. */
int sp__uring_run(sp__worker_t *w, struct io_uring_sqe *sqe, int64_t deadline,
                  const char *what, int fd);

/* Multishot operations owned by an object (uring.c U7). The object
 * embeds an sp__owner_t; own_sqe gives an SQE on w's ring, own() (after
 * the SQE is prepared) tags it with the owner and counts it pending until
 * its last CQE. w's reaper hands every CQE of it to owner->cqe (more:
 * not the last), on w, in its sched context. cancel_owned asks the kernel
 * to end it. Runs on: w (fiber or sched context). */
typedef struct sp__owner sp__owner_t;
struct sp__owner {
  void (*cqe)(sp__worker_t *w, sp__owner_t *o, int res, bool more);
};
struct io_uring_sqe *sp__uring_own_sqe(sp__worker_t *w);
void sp__uring_own(sp__worker_t *w, struct io_uring_sqe *sqe, sp__owner_t *owner);
void sp__uring_cancel_owned(sp__worker_t *w, sp__owner_t *owner);

/* epoll fallback (epoll.c): parks until fd is ready for `events` (POLLIN /
 * POLLOUT) or the deadline; returns the ready events, -ETIMEDOUT, -EAGAIN
 * (deadline 0), -EPERM (fd cannot be polled: a regular file), -EBADF.
 * From a foreign thread: poll(2). Switches: yes. */
int sp__fd_wait(struct sp_runtime *rt, int fd, short events, int64_t deadline, const char *what);
/* Releases fibers waiting on fd in rt's epoll set (before it is closed);
 * _all: in every runtime's. Runs on: any thread. */
void sp__fd_forget(struct sp_runtime *rt, int fd);
void sp__fd_forget_all(int fd);

/* Blocking pool (blocking.c): runs fn(arg) on a helper thread of rt while
 * the calling fiber parks. Returns 0 or -EAGAIN. */
int sp__blocking_run(struct sp_runtime *rt, sp_fn_t fn, void *arg, void **result);

/* Teardown, from sp__io_runtime_fini (uring.c). */
void sp__blocking_fini(struct sp_runtime *rt);
void sp__epoll_fini(struct sp_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif /* SP_IO_POLL_H */
