/*
 * gdb_target.c: a program for tests/gdb/gdb_test.sh: two fibers park in
 * known functions, then the process aborts so gdb can look at them.
 */
#include <stdlib.h>
#include <unistd.h>

#include "runtime/spindle.h"

static sp_chan_t *ch;

__attribute__((noinline)) static int wait_for_work(void) {
  int v;
  return sp_chan_recv(ch, &v, SP_FOREVER);
}

static void *worker_fiber(void *arg) {
  (void)arg;
  return (void *)(intptr_t)wait_for_work();
}

__attribute__((noinline)) static void nap(void) { sp_sleep_for(60000000000LL); }

static void *sleeper(void *arg) {
  (void)arg;
  nap();
  return NULL;
}

int main(void) {
  sp_runtime_t *rt;
  if (sp_runtime_create(&rt, NULL) != 0 || sp_chan_make(&ch, sizeof(int), 0) != 0) return 1;
  sp_fiber_t a, b;
  sp_spawn_opts_t oa = {"waiter", 0, 0}, ob = {"sleeper", 0, 0};
  sp_spawn(rt, &a, worker_fiber, NULL, &oa);
  sp_spawn(rt, &b, sleeper, NULL, &ob);
  usleep(100000); /* both park */
  abort();        /* gdb stops here */
}
