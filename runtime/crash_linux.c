/*
 * crash_linux.c: naming the fiber when a worker thread crashes.
 *
 * Model: while any runtime exists, SIGSEGV and SIGBUS run a handler on the
 * worker's alternate signal stack (a fiber that overflowed has no stack
 * left to run it on). If the faulting thread is a worker running a fiber,
 * the handler writes one line: a stack overflow when the address lies in
 * the guard page below the fiber's stack, a crash otherwise, with the
 * fiber's id, name and spawn site. A worker outside any fiber runs the
 * runtime's own code (its scheduler), so a fault there is a Spindle bug:
 * the line names the worker and says so. Then the handler restores the
 * previous disposition and returns, so the fault happens again and the
 * process dies of the original signal (a core dump shows the real frame);
 * a signal that another thread sent (kill, tgkill) does not come back by
 * itself and is raised again. Faults on other threads go straight to the
 * previous disposition.
 * Invariants:
 *   K1  The handler only reads (the worker's current fiber) and writes to
 *       fd 2 with write(2): async-signal-safe, no locks, no allocation.
 *   K2  Handlers are installed once per process while runtimes exist
 *       (reference count under a process-wide mutex: the one piece of
 *       process state, and it never limits how many runtimes there are).
 * Rejected: under ASan/TSan the sanitizers' own reports are better (they
 *   symbolize), and chaining around them is fragile: nothing is installed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/core.h"
#include "runtime/lockrank.h"

#if !defined(SP_HAVE_ASAN) && !defined(SP_HAVE_TSAN)

#define ALT_STACK ((size_t)64 * 1024)
#define PAGE ((uintptr_t)4096)

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed; /* runtimes alive; guarded by install_lock */
static struct sigaction old_segv, old_bus;

/* Appends s to buf at *n (bounded). */
static void put(char *buf, size_t *n, size_t cap, const char *s) {
  while (*s && *n + 1 < cap) buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t *n, size_t cap, uint64_t v, int base) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[v % (uint64_t)base];
    v /= (uint64_t)base;
  } while (v && i < (int)sizeof tmp);
  if (base == 16) put(buf, n, cap, "0x");
  while (i > 0 && *n + 1 < cap) buf[(*n)++] = tmp[--i];
}

static void report(struct sp_fiber *f, int sig, void *addr) {
  char buf[512];
  size_t n = 0;
  uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)f->stack.lo;
  put(buf, &n, sizeof buf, "spindle: fiber ");
  put_num(buf, &n, sizeof buf, f->id, 10);
  put(buf, &n, sizeof buf, " \"");
  put(buf, &n, sizeof buf, f->name);
  put(buf, &n, sizeof buf, "\" (spawned at ");
  put(buf, &n, sizeof buf, f->file ? f->file : "?");
  put(buf, &n, sizeof buf, ":");
  put_num(buf, &n, sizeof buf, (uint64_t)f->line, 10);
  if (lo && a < lo && a >= lo - PAGE) {
    put(buf, &n, sizeof buf, ") overflowed its ");
    put_num(buf, &n, sizeof buf, f->stack.size / 1024, 10);
    put(buf, &n, sizeof buf, " KiB stack");
  } else {
    put(buf, &n, sizeof buf, sig == SIGBUS ? ") crashed: SIGBUS at " : ") crashed: SIGSEGV at ");
    put_num(buf, &n, sizeof buf, a, 16);
  }
  put(buf, &n, sizeof buf, "\n");
  ssize_t rc = write(2, buf, n);
  (void)rc;
}

/* A worker in its scheduler context: the runtime's own code. */
static void report_worker(const sp__worker_t *w, int sig, const siginfo_t *si) {
  char buf[256];
  size_t n = 0;
  put(buf, &n, sizeof buf, "spindle: worker ");
  put_num(buf, &n, sizeof buf, (uint64_t)w->index, 10);
  put(buf, &n, sizeof buf, " crashed outside any fiber, in Spindle's scheduler (a Spindle bug): ");
  put(buf, &n, sizeof buf, sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
  if (si->si_code <= 0) {
    put(buf, &n, sizeof buf, " sent by process ");
    put_num(buf, &n, sizeof buf, (uint64_t)si->si_pid, 10);
  } else {
    put(buf, &n, sizeof buf, " at ");
    put_num(buf, &n, sizeof buf, (uintptr_t)si->si_addr, 16);
  }
  put(buf, &n, sizeof buf, "\n");
  ssize_t rc = write(2, buf, n);
  (void)rc;
}

static void on_fault(int sig, siginfo_t *si, void *uctx) {
  (void)uctx;
  sp__worker_t *w = sp__self();
  struct sp_fiber *f = w ? w->cur : NULL;
  if (f) report(f, sig, si->si_addr);
  else if (w) report_worker(w, sig, si);
  /* K1: back to what was there; returning re-runs the faulting access */
  sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
  if (si->si_code <= 0) raise(sig); /* sent, not a fault: it would not recur */
}

void sp__crash_install(void) {
  SP_MLOCK(&install_lock, RANK_LEAF);
  if (installed++ == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
  }
  SP_MUNLOCK(&install_lock, RANK_LEAF);
}

void sp__crash_uninstall(void) {
  SP_MLOCK(&install_lock, RANK_LEAF);
  if (--installed == 0) {
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
  }
  SP_MUNLOCK(&install_lock, RANK_LEAF);
}

void *sp__altstack_enter(void) {
  void *mem = mmap(NULL, ALT_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return NULL;
  stack_t ss = {.ss_sp = mem, .ss_size = ALT_STACK, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(mem, ALT_STACK);
    return NULL;
  }
  return mem;
}

void sp__altstack_leave(void *mem) {
  if (!mem) return;
  stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  munmap(mem, ALT_STACK);
}

#else /* sanitizer builds: their own fault reports (see Rejected above) */

void sp__crash_install(void) {}
void sp__crash_uninstall(void) {}
void *sp__altstack_enter(void) { return NULL; }
void sp__altstack_leave(void *mem) { (void)mem; }

#endif
