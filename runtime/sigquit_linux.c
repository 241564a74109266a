/*
 * sigquit_linux.c: SIGQUIT dumps every runtime, like a Go program does.
 *
 * Model: opt-in (cfg.dump_on_sigquit or SPINDLE_SIGQUIT=1). The handler
 * only writes to an eventfd; a dump thread waits on it and writes
 * sp_runtime_dump of every live runtime to stderr. The process keeps
 * running (unlike Go, which exits: an embedded scheduler must not kill its
 * host). The thread and handler exist while at least one runtime asked for
 * them (a reference count); the previous disposition is restored after.
 * Invariants:
 *   Q1  The handler is async-signal-safe: one write(2) to the eventfd.
 *   Q2  Dumps run on the dump thread, never in the handler.
 * Locks: sigquit_lock (process-wide, leaf) guards the reference count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"

#define STOP ((uint64_t)1 << 40) /* eventfd value that ends the thread */

static pthread_mutex_t sigquit_lock = PTHREAD_MUTEX_INITIALIZER;
static int users;     /* guarded by sigquit_lock */
static int efd = -1;  /* written by the handler */
static pthread_t dumper;
static struct sigaction old_quit;

static void on_quit(int sig) {
  (void)sig;
  int saved = errno; /* Q1 */
  uint64_t one = 1;
  ssize_t rc = write(efd, &one, sizeof one);
  (void)rc;
  errno = saved;
}

static void *dump_loop(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t v;
    if (read(efd, &v, sizeof v) != sizeof v) {
      if (errno == EINTR) continue;
      return NULL;
    }
    if (v >= STOP) return NULL;
    dprintf(2, "spindle: SIGQUIT: dump of every runtime\n");
    sp__dump_all(2); /* Q2 */
  }
}

int sp__sigquit_enable(void) {
  SP_MLOCK(&sigquit_lock, RANK_LEAF);
  int rc = 0;
  if (users == 0) {
    efd = eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
      rc = -errno;
    } else if ((rc = -pthread_create(&dumper, NULL, dump_loop, NULL)) != 0) {
      close(efd);
      efd = -1;
    } else {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_quit;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGQUIT, &sa, &old_quit);
    }
  }
  if (rc == 0) users++;
  SP_MUNLOCK(&sigquit_lock, RANK_LEAF);
  return rc;
}

void sp__sigquit_disable(void) {
  SP_MLOCK(&sigquit_lock, RANK_LEAF);
  if (--users == 0) {
    sigaction(SIGQUIT, &old_quit, NULL);
    uint64_t stop = STOP;
    ssize_t rc = write(efd, &stop, sizeof stop);
    (void)rc;
    pthread_join(dumper, NULL);
    close(efd);
    efd = -1;
  }
  SP_MUNLOCK(&sigquit_lock, RANK_LEAF);
}
