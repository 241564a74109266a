/*
 * monitor_linux.c: a live monitor for a running process, aiomonitor-style:
 * a Unix socket that answers each connection with the runtime's dump and
 * counters (runtime/spindle_mon.c is the command-line client).
 *
 * Model: sp_monitor_start binds a Unix stream socket and starts a thread
 * that accepts connections one at a time; for each it writes
 * sp_runtime_dump (per-worker state and counters, every fiber with what it
 * waits on) and closes it. Read-only: a client cannot change anything.
 * sp_monitor_stop (or destroy) shuts the socket down, joins the thread and
 * removes the socket file.
 * Invariants:
 *   O1  The monitor never blocks a worker: it only reads (dump.c D1).
 *   O2  One monitor per runtime.
 * Locks: none of its own; the dump takes fpool_lock briefly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/core.h"

static void *serve(void *arg) {
  struct sp_runtime *rt = arg;
  for (;;) {
    int c = accept4(rt->mon_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return NULL; /* the socket was shut down: stop */
    }
    sp_runtime_dump(rt, c); /* O1 */
    close(c);
  }
}

int sp_monitor_start(sp_runtime_t *rt, const char *path) {
  if (!rt || !path) return -EINVAL;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return -ENAMETOOLONG;
  if (rt->mon_fd >= 0) return -EBUSY; /* O2 */
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  unlink(path); /* a stale socket from an earlier run */
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 8) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  rt->mon_fd = fd;
  snprintf(rt->mon_path, sizeof rt->mon_path, "%s", path);
  int rc = pthread_create(&rt->mon_thread, NULL, serve, rt);
  if (rc != 0) {
    close(fd);
    unlink(path);
    rt->mon_fd = -1;
    return -rc;
  }
  return 0;
}

int sp_monitor_stop(sp_runtime_t *rt) {
  if (!rt) return -EINVAL;
  if (rt->mon_fd < 0) return 0;
  shutdown(rt->mon_fd, SHUT_RDWR); /* accept fails: the thread returns */
  pthread_join(rt->mon_thread, NULL);
  close(rt->mon_fd);
  unlink(rt->mon_path);
  rt->mon_fd = -1;
  return 0;
}
