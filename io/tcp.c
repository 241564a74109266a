/*
 * tcp.c: listen and dial by address string ("host:port", "[v6]:port",
 * ":port", "port", "unix:/path"), on top of the operations in ops.c.
 *
 * Name resolution: numeric addresses are parsed inline; names go through
 * getaddrinfo on the blocking pool (sp_blocking), so the worker never
 * blocks. Dial tries each resolved address in turn within one deadline.
 * Listeners are non-blocking descriptors (so the epoll fallback never has
 * to block on accept); accepted and dialled sockets are blocking ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/sp_io.h"

typedef struct resolve {
  char host[256];
  char port[32];
  int passive;
  struct addrinfo *res;
  int rc;
} resolve_t;

static void *do_resolve(void *arg) {
  resolve_t *r = arg;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = r->passive ? AI_PASSIVE : AI_ADDRCONFIG;
  r->rc = getaddrinfo(r->host[0] ? r->host : NULL, r->port, &hints, &r->res);
  return NULL;
}

static int gai_errno(int rc) {
  switch (rc) {
  case 0: return 0;
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
    return -ENOENT;
  case EAI_AGAIN: return -EAGAIN;
  case EAI_MEMORY: return -ENOMEM;
  case EAI_SERVICE: return -EINVAL;
  case EAI_SYSTEM: return -EIO;
  default: return -EINVAL;
  }
}

/* Splits "host:port", "[v6]:port", ":port" or "port" into r. */
static int split(const char *addr, resolve_t *r) {
  const char *colon = strrchr(addr, ':');
  const char *host = addr, *port = colon ? colon + 1 : addr;
  size_t hlen = colon ? (size_t)(colon - addr) : 0;
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    host++;
    hlen -= 2;
  } else if (colon && memchr(addr, ':', hlen)) {
    return -EINVAL; /* a bare IPv6 address needs brackets */
  }
  if (hlen >= sizeof r->host || !*port || strlen(port) >= sizeof r->port) return -EINVAL;
  memcpy(r->host, host, hlen);
  r->host[hlen] = 0;
  strcpy(r->port, port);
  return 0;
}

static int resolve(const char *addr, int passive, struct addrinfo **out) {
  resolve_t r;
  memset(&r, 0, sizeof r);
  int rc = split(addr, &r);
  if (rc < 0) return rc;
  r.passive = passive;
  /* numeric hosts never block: resolve them here */
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  if (r.host[0] || passive) {
    int g = getaddrinfo(r.host[0] ? r.host : NULL, r.port, &hints, &r.res);
    if (g == 0) {
      *out = r.res;
      return 0;
    }
  }
  rc = sp_blocking(do_resolve, &r, NULL);
  if (rc < 0) return rc;
  if (r.rc) return gai_errno(r.rc);
  *out = r.res;
  return 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa->sun_path) return -ENAMETOOLONG;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

/* Whether a live socket is bound to path: /proc/net/unix lists each bound
 * Unix socket with its path last (connecting to find out would queue a
 * connection on a live server). Unknown (no /proc) counts as bound. */
static bool unix_path_bound(const char *path) {
  FILE *f = fopen("/proc/net/unix", "re");
  if (!f) return true;
  char line[512];
  bool bound = false;
  size_t n = strlen(path);
  while (!bound && fgets(line, sizeof line, f)) {
    size_t l = strcspn(line, "\n");
    line[l] = 0;
    bound = l > n && line[l - n - 1] == ' ' && strcmp(line + l - n, path) == 0;
  }
  fclose(f);
  return bound;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, int backlog, int flags) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (sa->sa_family != AF_UNIX) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if ((flags & SP_LISTEN_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
      goto fail;
    if (sa->sa_family == AF_INET6) {
      /* "[::]:port" and ":port" serve IPv4 too; a specific v6 address not */
      int v6only = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
  }
  if (bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) goto fail;
  return fd;
fail:;
  int e = errno;
  close(fd);
  return -e;
}

int sp_listen(const char *addr, int backlog, int flags) {
  if (!addr || (flags & ~SP_LISTEN_REUSEPORT)) return -EINVAL;
  if (strncmp(addr, "unix:", 5) == 0) {
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(addr + 5, &sa, &len);
    if (rc < 0) return rc;
    struct stat st;
    /* a socket file no socket is bound to is stale: replace it; a live one
     * belongs to a running server, and bind(2) says -EADDRINUSE */
    if (stat(sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && !unix_path_bound(sa.sun_path))
      unlink(sa.sun_path);
    return listen_on((struct sockaddr *)&sa, len, backlog, flags);
  }
  struct addrinfo *res;
  int rc = resolve(addr, 1, &res);
  if (rc < 0) return rc;
  /* a wildcard: prefer the IPv6 one (dual stack), else the first */
  struct addrinfo *pick = res;
  if (addr[0] == ':' || strchr(addr, ':') == NULL)
    for (struct addrinfo *a = res; a; a = a->ai_next)
      if (a->ai_family == AF_INET6) pick = a;
  rc = listen_on(pick->ai_addr, pick->ai_addrlen, backlog, flags);
  if (rc == -EAFNOSUPPORT && pick != res) rc = listen_on(res->ai_addr, res->ai_addrlen, backlog, flags);
  freeaddrinfo(res);
  return rc;
}

static int dial_one(const struct sockaddr *sa, socklen_t len, int64_t deadline) {
  int fd = sp_socket(sa->sa_family, SOCK_STREAM, 0);
  if (fd < 0) return fd;
  int rc = sp_connect(fd, sa, len, deadline);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  if (sa->sa_family != AF_UNIX) sp_set_nodelay(fd, 1);
  return fd;
}

int sp_dial(const char *addr, int64_t deadline) {
  if (!addr) return -EINVAL;
  if (strncmp(addr, "unix:", 5) == 0) {
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(addr + 5, &sa, &len);
    return rc < 0 ? rc : dial_one((struct sockaddr *)&sa, len, deadline);
  }
  struct addrinfo *res;
  int rc = resolve(addr, 0, &res);
  if (rc < 0) return rc;
  rc = -ECONNREFUSED;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    rc = dial_one(a->ai_addr, a->ai_addrlen, deadline);
    if (rc >= 0 || rc == -ETIMEDOUT || rc == -EAGAIN) break;
  }
  freeaddrinfo(res);
  return rc;
}

int sp_local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -EAFNOSUPPORT;
}

int sp_set_nodelay(int fd, int on) {
  on = !!on;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0 ? -errno : 0;
}
