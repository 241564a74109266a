/*
 * server.c: the shared part of the example servers (see server.h).
 */
#include "examples/server.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "runtime/spindle.h"

static const ex_server_t *server;
static sp_mutex_t conns_mu; /* guards conns */
static ex_conn_t conns = {&conns, &conns, -1};
static atomic_int stopping;

/* Puts c on the list of open connections (add) or takes it off. */
static void conn_list(ex_conn_t *c, int add) {
  sp_mutex_lock(&conns_mu);
  if (add) {
    c->next = conns.next;
    c->prev = &conns;
    conns.next->prev = c;
    conns.next = c;
  } else {
    c->prev->next = c->next;
    c->next->prev = c->prev;
  }
  sp_mutex_unlock(&conns_mu);
}

static void *conn_fiber(void *arg) {
  ex_conn_t *c = arg;
  server->serve(c);
  conn_list(c, 0);
  sp_close(c->fd);
  free(c);
  return NULL;
}

/* Accepts until the listener is closed; a detached fiber per connection. */
static void *accept_loop(void *arg) {
  sp_listener_t *l = arg;
  static const sp_spawn_opts_t opts = {"conn", SP_STACK_MIN, 1};
  while (!atomic_load(&stopping)) {
    int fd = sp_listener_accept(l, SP_FOREVER);
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS) {
      fprintf(stderr, "%s: accept: %s; retrying\n", server->name, sp_strerror(fd));
      sp_sleep_for(10 * 1000000); /* as Go does: wait for a connection to close */
      continue;
    }
    if (fd == -ECONNABORTED) continue;
    if (fd < 0) {
      if (!atomic_load(&stopping)) fprintf(stderr, "%s: accept: %s\n", server->name, sp_strerror(fd));
      break;
    }
    ex_conn_t *c = calloc(1, server->conn_size);
    int rc = -ENOMEM;
    if (c) {
      c->fd = fd;
      conn_list(c, 1);
      if ((rc = sp_spawn(NULL, NULL, conn_fiber, c, &opts)) < 0) conn_list(c, 0);
    }
    if (rc < 0) {
      fprintf(stderr, "%s: connection dropped: %s\n", server->name, sp_strerror(rc));
      sp_close(fd);
      free(c);
    }
  }
  return NULL;
}

int ex_int_flag(const char *prog, const char *arg, const char *prefix, long *out) {
  size_t n = strlen(prefix);
  if (strncmp(arg, prefix, n) != 0) return 0;
  char *end;
  errno = 0;
  *out = strtol(arg + n, &end, 10);
  if (errno || end == arg + n || *end || *out < 0) {
    fprintf(stderr, "%s: bad number in '%s'\n", prog, arg);
    exit(2);
  }
  return 1;
}

/* Waits for SIGINT/SIGTERM (blocked in every thread) or the duration. */
static void wait_for_stop(const sigset_t *sigs, long duration) {
  if (duration <= 0) {
    int sig;
    sigwait(sigs, &sig);
    return;
  }
  struct timespec ts = {duration, 0};
  while (sigtimedwait(sigs, NULL, &ts) < 0 && errno == EINTR) {
  }
}

int ex_server_main(const ex_server_t *s, int argc, char **argv) {
  server = s;
  const char *addr = s->default_addr;
  sp_config_t cfg;
  sp_config_init(&cfg);
  long workers = 0, duration = 0, stats = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--addr=", 7) == 0) addr = argv[i] + 7;
    else if (ex_int_flag(s->name, argv[i], "--workers=", &workers)) cfg.workers = (int)workers;
    else if (ex_int_flag(s->name, argv[i], "--duration=", &duration)) continue;
    else if (ex_int_flag(s->name, argv[i], "--stats=", &stats)) continue;
    else {
      fprintf(stderr, "usage: %s [--addr=HOST:PORT] [--workers=N] [--duration=S] [--stats=1]\n",
              argv[0]);
      return 2;
    }
  }
  /* Blocked before the runtime starts, so every worker inherits the mask
   * and the signals wait for sigwait here. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  sp_runtime_t *rt;
  int rc = sp_runtime_create(&rt, &cfg);
  int lfd = rc < 0 ? rc : sp_listen(addr, 0, 0);
  int port = lfd < 0 ? lfd : sp_local_port(lfd);
  sp_listener_t *l = NULL;
  if (port >= 0) port = (rc = sp_listener_open(&l, lfd)) < 0 ? rc : port;
  if (port < 0) {
    fprintf(stderr, "%s: %s: %s\n", s->name, rc < 0 ? "runtime" : addr, sp_strerror(port));
    return 1;
  }
  printf("listening on %d\n", port);
  fflush(stdout);
  sp_fiber_t acceptor;
  rc = sp_spawn(rt, &acceptor, accept_loop, l, NULL);
  if (rc < 0) {
    fprintf(stderr, "%s: spawn: %s\n", s->name, sp_strerror(rc));
    return 1;
  }
  wait_for_stop(&sigs, duration);

  atomic_store(&stopping, 1);
  sp_listener_close(l); /* releases the acceptor (-EBADF) */
  sp_join(acceptor, NULL, SP_FOREVER);
  sp_listener_free(l);
  sp_mutex_lock(&conns_mu);
  for (ex_conn_t *c = conns.next; c != &conns; c = c->next)
    sp_shutdown(c->fd, SHUT_RDWR); /* its fiber sees end of file */
  sp_mutex_unlock(&conns_mu);
  sp_stats_t st;
  if (stats && sp_runtime_stats(rt, &st) == 0)
    fprintf(stderr,
            "%s: switches %llu, parks %llu, steals %llu, worker wake-ups %llu, io %llu, "
            "fibers %llu\n",
            s->name, (unsigned long long)st.switches, (unsigned long long)st.parks,
            (unsigned long long)st.steals, (unsigned long long)st.wakeups,
            (unsigned long long)st.io_completed, (unsigned long long)st.spawned);
  rc = sp_runtime_shutdown(rt, sp_deadline_in(2000000000LL));
  if (rc == 0) rc = sp_runtime_destroy(rt);
  if (rc < 0) fprintf(stderr, "%s: shutdown: %s\n", s->name, sp_strerror(rc));
  return rc < 0;
}
