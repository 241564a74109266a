/*
 * server.h: what the example servers share (echo_server.c, http_server.c):
 * flags, signals, an accept loop with one small fiber per connection, and a
 * clean stop that ends every open connection. A server supplies only what
 * it does with one connection.
 */
#ifndef EXAMPLES_SERVER_H
#define EXAMPLES_SERVER_H

#include <stddef.h>

/* The first member of a server's connection type. */
typedef struct ex_conn {
  struct ex_conn *prev, *next; /* on the list of open connections */
  int fd;
} ex_conn_t;

typedef struct ex_server {
  const char *name;         /* program name, for messages */
  const char *default_addr; /* when there is no --addr */
  size_t conn_size;         /* sizeof the connection type (ex_conn_t first) */
  /* Serves one connection in its own fiber; the caller closes and frees. */
  void (*serve)(ex_conn_t *c);
} ex_server_t;

/* main() of a server: [--addr=HOST:PORT] [--workers=N] [--duration=S].
 * Prints "listening on PORT" (so --addr=127.0.0.1:0 works) and serves until
 * SIGINT or SIGTERM, or for --duration seconds; then it stops accepting,
 * shuts the open connections down (their fibers see end of file) and
 * returns the exit status. */
int ex_server_main(const ex_server_t *s, int argc, char **argv);

/* If arg is <prefix><integer >= 0>, stores it and returns 1; 0 if arg has
 * another prefix; exits 2, naming prog, on a malformed number. */
int ex_int_flag(const char *prog, const char *arg, const char *prefix, long *out);

#endif /* EXAMPLES_SERVER_H */
