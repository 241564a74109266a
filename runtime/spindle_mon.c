/*
 * spindle_mon.c: the command-line client of the live monitor
 * (sp_monitor_start): prints a running process's workers, counters and
 * fibers, once or every N seconds, like a tiny top for fibers.
 *
 * Usage: spindle-mon SOCKET [--watch=SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Connects, copies everything the monitor sends to stdout. 0 on success. */
static int show(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    fprintf(stderr, "spindle-mon: socket path too long\n");
    return 1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("spindle-mon: connect");
    if (fd >= 0) close(fd);
    return 1;
  }
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  close(fd);
  fflush(stdout);
  return n < 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && strncmp(argv[2], "--watch=", 8) != 0)) {
    fprintf(stderr, "usage: %s SOCKET [--watch=SECONDS]\n", argv[0]);
    return 2;
  }
  int every = argc == 3 ? atoi(argv[2] + 8) : 0;
  if (!every) return show(argv[1]);
  for (;;) {
    printf("\033[H\033[2J"); /* clear the screen, like top */
    if (show(argv[1])) return 1;
    sleep((unsigned)every);
  }
}
