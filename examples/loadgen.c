/*
 * loadgen.c: a closed-loop load generator written with Spindle, for
 * examples/echo_server and examples/http_server (and their Go twins).
 *
 * --conns connections, each driven by one fiber that sends a request and
 * waits for the whole reply before it sends the next. Echo mode: --size
 * bytes with a pattern that changes per request, and the echo must match.
 * --http: a keep-alive "GET /", whose response is read to the end of its
 * Content-Length body (a "Connection: close" response makes the fiber dial
 * again). The run ends after --requests requests in all or --duration
 * seconds, whichever comes first. Each fiber records its latencies; they
 * are merged and sorted at the end. Loopback addresses only.
 *
 * Prints RESULT lines in bench/bench_util.h's format: <name> in requests
 * per second, <name>_p50 and <name>_p99 in microseconds; a summary goes to
 * stderr. Exit status 1 if a request failed. The Go twin of the echo mode
 * is bench/go/echo_client (scripts/bench uses it for both servers).
 *
 * Usage: loadgen --addr=127.0.0.1:PORT [--conns=50] [--size=64] [--http]
 *        [--requests=N] [--duration=S] [--workers=N] [--name=echo]
 *        [--impl=spindle]     (--workers: this runtime's; 0 = every CPU)
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "examples/server.h"
#include "runtime/spindle.h"

#define HTTP_CAP 4096            /* longest HTTP response accepted */
#define GRACE_NS 5000000000LL    /* a reply may take this long after the end */

typedef struct {
  const char *addr, *name, *impl;
  long conns, size, requests, duration, workers;
  int http;
  char get[256]; /* the HTTP request */
  atomic_long issued;
  int64_t stop;        /* no request starts after this time */
  int64_t io_deadline; /* every reply is due by then */
} load_t;

typedef struct {
  load_t *l;
  int fd, err;
  int64_t *lat; /* latencies in ns */
  size_t n, cap;
  char *out, *in; /* echo: --size bytes each; http: in holds HTTP_CAP */
  size_t have;    /* http: response bytes in in[] */
} client_t;

/* One echo: sends size bytes that depend on seq and reads them back. */
static int echo_once(client_t *c, uint64_t seq) {
  size_t size = (size_t)c->l->size;
  for (size_t i = 0; i < size; i++) c->out[i] = (char)(seq + i * 31);
  int rc = sp_write_all(c->fd, c->out, size, c->l->io_deadline, NULL);
  if (rc == 0) rc = sp_read_exact(c->fd, c->in, size, c->l->io_deadline, NULL);
  if (rc == 0 && memcmp(c->in, c->out, size) != 0) rc = -EBADMSG;
  return rc;
}

/* The value of header `name` in the response head h[0, len), or NULL. */
static const char *header(const char *h, size_t len, const char *name) {
  size_t n = strlen(name);
  for (const char *p = memchr(h, '\n', len); p && (size_t)(p + 1 - h) + n < len;
       p = memchr(p + 1, '\n', len - (size_t)(p + 1 - h)))
    if (strncasecmp(p + 1, name, n) == 0 && p[1 + n] == ':') return p + 2 + n;
  return NULL;
}

/* Receives more of the response into c->in; 0, or an error. */
static int more(client_t *c) {
  if (c->have == HTTP_CAP) return -EMSGSIZE;
  ssize_t n = sp_recv(c->fd, c->in + c->have, HTTP_CAP - c->have, 0, c->l->io_deadline);
  if (n <= 0) return n == 0 ? -ENODATA : (int)n;
  c->have += (size_t)n;
  return 0;
}

/* Reads until c->in holds a whole response head; returns its length. */
static int read_head(client_t *c) {
  char *end;
  while (!(end = memmem(c->in, c->have, "\r\n\r\n", 4))) {
    int rc = more(c);
    if (rc < 0) return rc;
  }
  return (int)(end + 4 - c->in);
}

/* One GET; returns 1 if the server closes the connection after it. */
static int http_once(client_t *c) {
  int rc = sp_write_all(c->fd, c->l->get, strlen(c->l->get), c->l->io_deadline, NULL);
  int head = rc < 0 ? rc : read_head(c);
  if (head < 0) return head;
  const char *cl = header(c->in, (size_t)head, "content-length");
  if (strncmp(c->in, "HTTP/1.1 200 ", 13) != 0 || !cl) return -EPROTO;
  size_t need = (size_t)head + strtoul(cl, NULL, 10);
  while (c->have < need)
    if ((rc = more(c)) < 0) return rc;
  const char *conn = header(c->in, (size_t)head, "connection");
  int closes = conn && strncasecmp(conn + strspn(conn, " \t"), "close", 5) == 0;
  memmove(c->in, c->in + need, c->have - need);
  c->have -= need;
  return closes;
}

static void *client(void *arg) {
  client_t *c = arg;
  load_t *l = c->l;
  for (;;) {
    long seq = atomic_fetch_add(&l->issued, 1);
    int64_t t0 = sp_now();
    if ((l->requests > 0 && seq >= l->requests) || t0 >= l->stop) break;
    int rc = l->http ? http_once(c) : echo_once(c, (uint64_t)seq);
    if (rc == 1) { /* the server closed: dial again */
      sp_close(c->fd);
      c->have = 0;
      rc = c->fd = sp_dial(l->addr, l->io_deadline);
    }
    if (rc < 0) {
      c->err = rc;
      break;
    }
    if (c->n == c->cap) {
      c->cap = c->cap ? 2 * c->cap : 4096;
      if (!(c->lat = realloc(c->lat, c->cap * sizeof *c->lat))) abort();
    }
    c->lat[c->n++] = sp_now() - t0;
  }
  return NULL;
}

static int by_value(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void result(load_t *l, const char *suffix, double value, const char *unit) {
  printf("RESULT name=%s%s impl=%s workers=%ld value=%.1f unit=%s\n", l->name, suffix, l->impl,
         l->workers, value, unit);
}

/* Merges, sorts and reports the latencies of cs[0, l->conns). */
static void report(load_t *l, client_t *cs, double secs) {
  size_t total = 0;
  for (long i = 0; i < l->conns; i++) total += cs[i].n;
  int64_t *all = malloc((total ? total : 1) * sizeof *all);
  if (!all) abort();
  for (long i = 0, k = 0; i < l->conns; k += (long)cs[i].n, i++)
    memcpy(all + k, cs[i].lat, cs[i].n * sizeof *all);
  qsort(all, total, sizeof *all, by_value);
  double rps = (double)total / secs;
  double p50 = total ? (double)all[(total - 1) * 50 / 100] / 1e3 : 0;
  double p99 = total ? (double)all[(total - 1) * 99 / 100] / 1e3 : 0;
  result(l, "", rps, "req/s");
  result(l, "_p50", p50, "us");
  result(l, "_p99", p99, "us");
  fprintf(stderr, "loadgen: %ld conns, %zu requests in %.2f s: %.0f req/s, p50 %.1f us, p99 %.1f us\n",
          l->conns, total, secs, rps, p50, p99);
  free(all);
}

/* Dials every connection, runs the clients and reports; returns 0 or 1. */
static void *run(void *arg) {
  load_t *l = arg;
  client_t *cs = calloc((size_t)l->conns, sizeof *cs);
  sp_fiber_t *fs = calloc((size_t)l->conns, sizeof *fs);
  size_t in_size = l->http ? HTTP_CAP : (size_t)l->size;
  int failed = !cs || !fs;
  for (long i = 0; i < l->conns && cs; i++) cs[i].fd = -1;
  for (long i = 0; i < l->conns && !failed; i++) {
    cs[i] = (client_t){.l = l, .out = malloc((size_t)l->size), .in = malloc(in_size)};
    if (!cs[i].out || !cs[i].in) {
      fprintf(stderr, "loadgen: out of memory\n");
      failed = 1;
      break;
    }
    cs[i].fd = sp_dial(l->addr, sp_deadline_in(GRACE_NS));
    if (cs[i].fd < 0) {
      fprintf(stderr, "loadgen: dial %s: %s\n", l->addr, sp_strerror(cs[i].fd));
      failed = 1;
    }
  }
  int64_t t0 = sp_now();
  l->stop = l->duration > 0 ? t0 + l->duration * 1000000000LL : SP_FOREVER;
  l->io_deadline = l->duration > 0 ? l->stop + GRACE_NS : SP_FOREVER;
  static const sp_spawn_opts_t opts = {"client", SP_STACK_MIN, 0};
  long spawned = 0;
  for (int rc = 0; spawned < l->conns && !failed; spawned += rc == 0) {
    rc = sp_spawn(NULL, &fs[spawned], client, &cs[spawned], &opts);
    if (rc < 0) {
      fprintf(stderr, "loadgen: spawn: %s\n", sp_strerror(rc));
      failed = 1; /* the clients started run to their end */
    }
  }
  for (long i = 0; i < spawned; i++) sp_join(fs[i], NULL, SP_FOREVER);
  double secs = (double)(sp_now() - t0) / 1e9;
  for (long i = 0; i < l->conns && cs; i++) {
    if (cs[i].err) fprintf(stderr, "loadgen: connection %ld: %s\n", i, sp_strerror(cs[i].err));
    failed |= cs[i].err != 0;
  }
  if (!failed) report(l, cs, secs);
  for (long i = 0; i < l->conns && cs; i++) {
    if (cs[i].fd >= 0) sp_close(cs[i].fd);
    free(cs[i].lat);
    free(cs[i].out);
    free(cs[i].in);
  }
  free(cs);
  free(fs);
  return (void *)(intptr_t)failed;
}

/* 1 if addr ("host:port", "[v6]:port") names a loopback host. */
static int is_loopback(const char *addr) {
  const char *colon = strrchr(addr, ':');
  size_t n = colon ? (size_t)(colon - addr) : 0;
  char host[64];
  if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') addr++, n -= 2;
  if (n == 0 || n >= sizeof host) return 0;
  memcpy(host, addr, n);
  host[n] = '\0';
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, host, &a4) == 1) return ntohl(a4.s_addr) >> 24 == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return strcmp(host, "localhost") == 0;
}

static int int_flag(const char *arg, const char *prefix, long *out) {
  return ex_int_flag("loadgen", arg, prefix, out);
}

int main(int argc, char **argv) {
  load_t l = {.addr = "127.0.0.1:7000", .impl = "spindle", .conns = 50, .size = 64, .duration = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--addr=", 7) == 0) l.addr = a + 7;
    else if (strncmp(a, "--name=", 7) == 0) l.name = a + 7;
    else if (strncmp(a, "--impl=", 7) == 0) l.impl = a + 7;
    else if (strcmp(a, "--http") == 0) l.http = 1;
    else if (!int_flag(a, "--conns=", &l.conns) && !int_flag(a, "--size=", &l.size) &&
             !int_flag(a, "--requests=", &l.requests) && !int_flag(a, "--duration=", &l.duration) &&
             !int_flag(a, "--workers=", &l.workers)) {
      fprintf(stderr, "usage: %s --addr=127.0.0.1:PORT [--conns=50] [--size=64] [--http] "
              "[--requests=N] [--duration=S] [--workers=N] [--name=NAME] [--impl=IMPL]\n", argv[0]);
      return 2;
    }
  }
  if (!is_loopback(l.addr)) {
    fprintf(stderr, "loadgen: %s is not a loopback address (127.0.0.0/8, ::1, localhost)\n", l.addr);
    return 2;
  }
  if (l.conns < 1 || l.size < 1 || (l.requests == 0 && l.duration == 0)) {
    fprintf(stderr, "loadgen: need --conns>=1, --size>=1 and a bound (--requests or --duration)\n");
    return 2;
  }
  if (!l.name) l.name = l.http ? "http" : "echo";
  snprintf(l.get, sizeof l.get, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", l.addr);
  signal(SIGPIPE, SIG_IGN);

  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = (int)l.workers;
  sp_runtime_t *rt;
  sp_fiber_t f;
  void *failed = (void *)1;
  int rc = sp_runtime_create(&rt, &cfg);
  if (rc == 0) {
    l.workers = sp_runtime_workers(rt);
    if ((rc = sp_spawn(rt, &f, run, &l, NULL)) == 0) rc = sp_join(f, &failed, SP_FOREVER);
    int rc2 = sp_runtime_destroy(rt);
    if (rc == 0) rc = rc2;
  }
  if (rc < 0) fprintf(stderr, "loadgen: runtime: %s\n", sp_strerror(rc));
  return rc < 0 || failed;
}
