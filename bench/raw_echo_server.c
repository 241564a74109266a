/*
 * raw_echo_server.c: a reference echo server with no runtime at all, to
 * tell what a server costs from what the kernel costs (bench/RESULTS.md,
 * "Session of 2026-11-26, 17:45-18:50 UTC"). Not a Spindle benchmark and
 * not run by scripts/bench.
 *
 * N threads (argv[1], default 1), each with its own io_uring ring (set up
 * as Spindle's workers set theirs up: SINGLE_ISSUER | DEFER_TASKRUN) and
 * its own SO_REUSEPORT listener on one loopback port, which the kernel
 * splits connections across. Each connection is a recv, then a write of
 * what came (the rest again after a short write), then the next recv, all
 * driven from the thread's completion loop: one io_uring_enter per batch
 * submits the round's SQEs and waits for the next completion. It prints
 * "listening on PORT" like examples/echo_server, so bench/go/echo_client
 * loads either. Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UD_ACCEPT 1ull

typedef struct conn {
  int fd;
  int sending;  /* 0: a recv is in flight; 1: a write */
  unsigned off, len; /* the write: buf[off..len) */
  char buf[4096];
} conn_t;

static int g_port;

static void die(const char *what, int err) {
  fprintf(stderr, "raw_echo_server: %s: %s\n", what, strerror(err));
  exit(1);
}

/* A loopback listener on port (0: any; g_port then holds the one chosen). */
static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  if (s < 0) die("socket", errno);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 512) != 0) die("bind/listen", errno);
  socklen_t l = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &l);
  g_port = ntohs(a.sin_port);
  return s;
}

static struct io_uring_sqe *sqe_of(struct io_uring *r) {
  struct io_uring_sqe *s = io_uring_get_sqe(r);
  if (!s) { /* full: submit what is queued and take one again */
    io_uring_submit(r);
    s = io_uring_get_sqe(r);
  }
  if (!s) die("io_uring_get_sqe", EBUSY);
  return s;
}

static void queue_io(struct io_uring *r, conn_t *c) {
  struct io_uring_sqe *s = sqe_of(r);
  if (c->sending)
    io_uring_prep_write(s, c->fd, c->buf + c->off, c->len - c->off, (uint64_t)-1);
  else
    io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
  io_uring_sqe_set_data(s, c);
}

static void *serve(void *arg) {
  int lfd = (int)(intptr_t)arg;
  struct io_uring r;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  p.cq_entries = 4096;
  int rc = io_uring_queue_init_params(256, &r, &p);
  if (rc < 0) die("io_uring_queue_init_params", -rc);
  struct io_uring_sqe *s = sqe_of(&r);
  io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, UD_ACCEPT);
  for (;;) {
    io_uring_submit_and_wait(&r, 1);
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&r, &cqe) == 0) {
      uint64_t ud = cqe->user_data;
      int res = cqe->res;
      unsigned flags = cqe->flags;
      io_uring_cqe_seen(&r, cqe);
      if (ud == UD_ACCEPT) {
        if (!(flags & IORING_CQE_F_MORE)) { /* the multishot ended: arm it again */
          s = sqe_of(&r);
          io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
          io_uring_sqe_set_data64(s, UD_ACCEPT);
        }
        if (res < 0) continue;
        int one = 1;
        setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) die("calloc", ENOMEM);
        c->fd = res;
        queue_io(&r, c);
        continue;
      }
      conn_t *c = (conn_t *)(uintptr_t)ud;
      if (res <= 0) { /* end of file or an error: the connection is done */
        close(c->fd);
        free(c);
        continue;
      }
      if (!c->sending) {
        c->sending = 1, c->off = 0, c->len = (unsigned)res;
      } else if ((c->off += (unsigned)res) == c->len) {
        c->sending = 0;
      }
      queue_io(&r, c);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  if (n < 1 || n > 256) {
    fprintf(stderr, "usage: %s [THREADS (1-256)]\n", argv[0]);
    return 2;
  }
  int first = listen_on(0);
  for (int i = 1; i < n; i++) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, serve, (void *)(intptr_t)listen_on(g_port));
    if (rc != 0) die("pthread_create", rc);
  }
  printf("listening on %d\n", g_port);
  fflush(stdout);
  serve((void *)(intptr_t)first);
}
