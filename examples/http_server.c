/*
 * http_server.c: a small HTTP/1.1 server in Spindle: one fiber per
 * connection, keep-alive and pipelining, every request answered with
 * "Hello, World!\n".
 *
 * A connection fiber reads into a buffer and answers every complete request
 * in it (pipelined requests get their responses in one write); a head split
 * across reads waits for the rest. Bodies (Content-Length) are skipped.
 * "Connection: close", and HTTP/1.0 without "Connection: keep-alive", close
 * the connection after the response. Malformed requests get 400 (also 431,
 * 501 and 505, see examples/http_parse.h) and the connection is closed;
 * other connections are not affected.
 *
 * Prints "listening on PORT" and serves until SIGINT or SIGTERM, or for
 * --duration seconds. Go twin: examples/go/http_server (net/http);
 * scripts/bench --only=http loads both with wrk.
 *
 * Usage: http_server [--addr=127.0.0.1:8080] [--workers=N] [--duration=S]
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "examples/http_parse.h"
#include "runtime/spindle.h"

#define IN_CAP 8192   /* longest request head accepted */
#define OUT_CAP 16384 /* responses are flushed when this fills */
#define RESP_MAX 256  /* longest response written */

typedef struct conn {
  struct conn *prev, *next; /* on the list of open connections */
  int fd;
  size_t have, out_len; /* bytes in in[] and out[] */
  int64_t skip;         /* body bytes still to discard */
  char in[IN_CAP], out[OUT_CAP];
} conn_t;

static sp_mutex_t conns_mu; /* guards conns */
static conn_t conns = {.prev = &conns, .next = &conns};
static atomic_int stopping;

/* Puts c on the list of open connections (add) or takes it off. */
static void conn_list(conn_t *c, int add) {
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

/* Appends a response to c->out: the greeting for 200, else the reason.
 * conn is "" or a Connection header line. */
static void respond(conn_t *c, int status, const char *conn, int head_only) {
  const char *reason = status == 200   ? "OK"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 501 ? "Not Implemented"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Bad Request";
  char body[64];
  int len = snprintf(body, sizeof body, "%s\n", status == 200 ? "Hello, World!" : reason);
  c->out_len += (size_t)snprintf(c->out + c->out_len, OUT_CAP - c->out_len,
                                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: %d\r\n%s\r\n%s",
                                 status, reason, len, conn, head_only ? "" : body);
}

static int flush(conn_t *c) {
  int rc = sp_write_all(c->fd, c->out, c->out_len, SP_FOREVER, NULL);
  c->out_len = 0;
  return rc;
}

/* Answers the complete requests in c->in and keeps a partial one for the
 * next read. Returns 1 to read on, 0 to close after the flush, or the error
 * of a flush. */
static int handle(conn_t *c) {
  size_t pos = 0;
  int keep = 1;
  while (keep == 1 && pos < c->have) {
    size_t avail = c->have - pos;
    if (c->skip > 0) {
      size_t k = avail < (uint64_t)c->skip ? avail : (size_t)c->skip;
      pos += k;
      c->skip -= (int64_t)k;
      continue;
    }
    int rc = c->out_len + RESP_MAX > OUT_CAP ? flush(c) : 0;
    if (rc < 0) return rc;
    http_req_t req;
    int r = http_parse_request(c->in + pos, avail, &req);
    if (r == 0 && avail < IN_CAP) break; /* wait for the rest of the head */
    if (r <= 0) {
      respond(c, r == 0 ? 431 : -r, "Connection: close\r\n", 0);
      return 0;
    }
    pos += (size_t)r;
    c->skip = req.content_length;
    keep = req.keep_alive;
    const char *conn = !keep ? "Connection: close\r\n"
                       : req.minor == 0 ? "Connection: keep-alive\r\n" : "";
    respond(c, 200, conn, req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0);
  }
  memmove(c->in, c->in + pos, c->have - pos);
  c->have -= pos;
  return keep;
}

/* Closes our side first and reads what the client still sends (up to a
 * second), so that unread input does not make the kernel reset the
 * connection before the client has read our last response (RFC 9112 9.6). */
static void linger(conn_t *c) {
  sp_shutdown(c->fd, SHUT_WR);
  int64_t deadline = sp_deadline_in(1000000000);
  while (sp_recv(c->fd, c->in, IN_CAP, 0, deadline) > 0) {
  }
}

static void *serve(void *arg) {
  conn_t *c = arg;
  int rc = 0, keep = 1;
  while (rc >= 0 && keep == 1) {
    ssize_t n = sp_recv(c->fd, c->in + c->have, IN_CAP - c->have, 0, SP_FOREVER);
    if (n <= 0) {
      rc = (int)n; /* 0: the client closed */
      break;
    }
    c->have += (size_t)n;
    keep = handle(c);
    rc = keep < 0 ? keep : flush(c);
  }
  if (rc < 0 && rc != -ECONNRESET && rc != -EPIPE)
    fprintf(stderr, "http_server: connection: %s\n", sp_strerror(rc));
  conn_list(c, 0);
  if (rc >= 0 && keep == 0) linger(c);
  sp_close(c->fd);
  free(c);
  return NULL;
}

/* Accepts until the listener is closed; a detached fiber per connection. */
static void *accept_loop(void *arg) {
  int lfd = (int)(intptr_t)arg;
  static const sp_spawn_opts_t opts = {"http conn", SP_STACK_MIN, 1};
  while (!atomic_load(&stopping)) {
    int fd = sp_accept(lfd, NULL, NULL, SP_FOREVER);
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS) {
      fprintf(stderr, "http_server: accept: %s; retrying\n", sp_strerror(fd));
      sp_sleep_for(10 * 1000000); /* as Go does: wait for a connection to close */
      continue;
    }
    if (fd == -ECONNABORTED) continue;
    if (fd < 0) {
      if (!atomic_load(&stopping)) fprintf(stderr, "http_server: accept: %s\n", sp_strerror(fd));
      break;
    }
    conn_t *c = calloc(1, sizeof *c);
    int rc = -ENOMEM;
    if (c) {
      c->fd = fd;
      conn_list(c, 1);
      if ((rc = sp_spawn(NULL, NULL, serve, c, &opts)) < 0) conn_list(c, 0);
    }
    if (rc < 0) {
      fprintf(stderr, "http_server: connection dropped: %s\n", sp_strerror(rc));
      sp_close(fd);
      free(c);
    }
  }
  return NULL;
}

/* If arg is <prefix><integer >= 0>, stores the integer and returns 1;
 * exits 2 on a malformed one. */
static int int_flag(const char *arg, const char *prefix, long *out) {
  size_t n = strlen(prefix);
  if (strncmp(arg, prefix, n) != 0) return 0;
  char *end;
  errno = 0;
  *out = strtol(arg + n, &end, 10);
  if (errno || end == arg + n || *end || *out < 0) {
    fprintf(stderr, "http_server: bad number in '%s'\n", arg);
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

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:8080";
  sp_config_t cfg;
  sp_config_init(&cfg);
  long workers = 0, duration = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--addr=", 7) == 0) addr = argv[i] + 7;
    else if (int_flag(argv[i], "--workers=", &workers)) cfg.workers = (int)workers;
    else if (int_flag(argv[i], "--duration=", &duration)) continue;
    else {
      fprintf(stderr, "usage: %s [--addr=HOST:PORT] [--workers=N] [--duration=S]\n", argv[0]);
      return 2;
    }
  }
  /* Blocked before the runtime starts, so every worker inherits the mask
   * and the signals wait for sigwait in main. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN); /* a client that went away is an error code */

  sp_runtime_t *rt;
  int rc = sp_runtime_create(&rt, &cfg);
  int lfd = rc < 0 ? rc : sp_listen(addr, 0, 0);
  int port = lfd < 0 ? lfd : sp_local_port(lfd);
  if (port < 0) {
    fprintf(stderr, "http_server: %s: %s\n", rc < 0 ? "runtime" : addr, sp_strerror(port));
    return 1;
  }
  printf("listening on %d\n", port);
  fflush(stdout);
  sp_fiber_t acceptor;
  rc = sp_spawn(rt, &acceptor, accept_loop, (void *)(intptr_t)lfd, NULL);
  if (rc < 0) {
    fprintf(stderr, "http_server: spawn: %s\n", sp_strerror(rc));
    return 1;
  }
  wait_for_stop(&sigs, duration);

  atomic_store(&stopping, 1);
  sp_close(lfd); /* releases the acceptor */
  sp_join(acceptor, NULL, SP_FOREVER);
  sp_mutex_lock(&conns_mu);
  for (conn_t *c = conns.next; c != &conns; c = c->next)
    sp_shutdown(c->fd, SHUT_RDWR); /* its fiber sees end of file */
  sp_mutex_unlock(&conns_mu);
  rc = sp_runtime_shutdown(rt, sp_deadline_in(2000000000LL));
  if (rc == 0) rc = sp_runtime_destroy(rt);
  if (rc < 0) fprintf(stderr, "http_server: shutdown: %s\n", sp_strerror(rc));
  return rc < 0;
}
