/*
 * echo_server.c: a TCP echo server in Spindle, in Go's style: an accept
 * loop fiber and one small fiber per connection, written as plain
 * blocking code (each call parks only its fiber); the accept loop, flags
 * and the clean stop are in examples/server.c, shared with http_server.c.
 *
 * Prints "listening on PORT" (so --addr=127.0.0.1:0 works) and serves until
 * SIGINT or SIGTERM, or for --duration seconds; then it stops accepting,
 * shuts down the open connections (their fibers see end of file) and exits.
 * Go twin: examples/go/echo_server. scripts/bench --only=echo50,echo1 loads
 * both with bench/go/echo_client.
 *
 * Usage: echo_server [--addr=127.0.0.1:7000] [--workers=N] [--duration=S]
 */
#include <errno.h>
#include <stdio.h>

#include "examples/server.h"
#include "runtime/spindle.h"

#define BUF 4096

typedef struct conn {
  ex_conn_t base; /* first: examples/server.h */
  char buf[BUF];
} conn_t;

/* Echoes until end of file or an error. */
static void serve(ex_conn_t *base) {
  conn_t *c = (conn_t *)base;
  for (;;) {
    ssize_t n = sp_recv(base->fd, c->buf, BUF, 0, SP_FOREVER);
    int rc = n > 0 ? sp_write_all(base->fd, c->buf, (size_t)n, SP_FOREVER, NULL) : (int)n;
    if (rc < 0 && rc != -ECONNRESET && rc != -EPIPE)
      fprintf(stderr, "echo_server: connection: %s\n", sp_strerror(rc));
    if (n <= 0 || rc < 0) return;
  }
}

int main(int argc, char **argv) {
  static const ex_server_t s = {"echo_server", "127.0.0.1:7000", sizeof(conn_t), serve};
  return ex_server_main(&s, argc, argv);
}
