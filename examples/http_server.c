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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "examples/http_parse.h"
#include "examples/server.h"
#include "runtime/spindle.h"

#define IN_CAP 8192   /* longest request head accepted */
#define OUT_CAP 16384 /* responses are flushed when this fills */
#define RESP_MAX 256  /* longest response written */

typedef struct conn {
  ex_conn_t base;       /* first: examples/server.h */
  size_t have, out_len; /* bytes in in[] and out[] */
  int64_t skip;         /* body bytes still to discard */
  char in[IN_CAP], out[OUT_CAP];
} conn_t;

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
  int rc = sp_write_all(c->base.fd, c->out, c->out_len, SP_FOREVER, NULL);
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
  sp_shutdown(c->base.fd, SHUT_WR);
  int64_t deadline = sp_deadline_in(1000000000);
  while (sp_recv(c->base.fd, c->in, IN_CAP, 0, deadline) > 0) {
  }
}

static void serve(ex_conn_t *base) {
  conn_t *c = (conn_t *)base;
  int rc = 0, keep = 1;
  while (rc >= 0 && keep == 1) {
    ssize_t n = sp_recv(c->base.fd, c->in + c->have, IN_CAP - c->have, 0, SP_FOREVER);
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
  if (rc >= 0 && keep == 0) linger(c);
}

int main(int argc, char **argv) {
  static const ex_server_t s = {"http_server", "127.0.0.1:8080", sizeof(conn_t), serve};
  return ex_server_main(&s, argc, argv);
}
