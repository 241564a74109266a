/*
 * backtrace_linux.c: symbolized backtraces of fibers for sp_runtime_dump,
 * a parked fiber's included.
 *
 * Model: a parked fiber's registers sit at the top of its stack where
 * jump_fcontext saved them (Boost 1.74, x86-64 SysV: MXCSR/x87 word, r12,
 * r13, r14, r15, rbx, rbp, then the return address). From the saved rbp the
 * walk follows the frame-pointer chain (Spindle builds with
 * -fno-omit-frame-pointer; code without frame pointers ends the walk
 * early). Addresses are symbolized with elfutils' libdwfl: function, offset,
 * and file:line from the DWARF line table.
 * Invariants:
 *   B1  The walk never faults: every word comes through process_vm_readv on
 *       our own pid, which fails with EFAULT instead of a SIGSEGV, and every
 *       frame pointer must lie inside the fiber's stack, above the last one.
 *       (A fiber that resumes meanwhile gives a torn walk, never a crash.)
 *   B2  Not async-signal-safe (libdwfl allocates): dumps run on ordinary
 *       threads (sigquit_linux.c Q2); crash reports do not use this file.
 */
#define _GNU_SOURCE
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/core.h"

#define MAX_FRAMES 32

/* Reads one word at addr without faulting (B1). */
static bool peek(uintptr_t addr, uintptr_t *out) {
  struct iovec local = {out, sizeof *out}, remote = {(void *)addr, sizeof *out};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof *out;
}

#ifdef SP_HAVE_TSAN
/* The saved context is read while its fiber may resume (B1: a torn walk is
 * fine); TSan is told this one read is meant to race. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define RACY_READ(x)                                   \
  ({                                                   \
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);      \
    __typeof__(x) v_ = (x);                            \
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);        \
    v_;                                                \
  })
#else
#define RACY_READ(x) (x)
#endif

/* The return addresses of parked fiber f, innermost first. */
static int frames(struct sp_fiber *f, uintptr_t *pcs, int max) {
  uintptr_t sp = (uintptr_t)RACY_READ(*(void *volatile *)&f->ctx.fctx);
  uintptr_t lo = (uintptr_t)RACY_READ(*(void *volatile *)&f->stack.lo);
  uintptr_t hi = lo + RACY_READ(*(volatile size_t *)&f->stack.size);
  if (sp < lo || sp + 8 * sizeof(uintptr_t) > hi) return 0;
  uintptr_t rbp, pc;
  if (!peek(sp + 6 * sizeof(uintptr_t), &rbp) || !peek(sp + 7 * sizeof(uintptr_t), &pc)) return 0;
  int n = 0;
  pcs[n++] = pc;
  while (n < max && rbp >= sp && rbp + 2 * sizeof(uintptr_t) <= hi && rbp % sizeof(uintptr_t) == 0) {
    uintptr_t next, ret;
    if (!peek(rbp, &next) || !peek(rbp + sizeof(uintptr_t), &ret) || ret == 0) break;
    pcs[n++] = ret;
    if (next <= rbp) break; /* B1: the chain must climb */
    sp = rbp;
    rbp = next;
  }
  return n;
}

static Dwfl *open_dwfl(void) {
  static const Dwfl_Callbacks cb = {
      .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
  };
  Dwfl *d = dwfl_begin(&cb);
  if (!d) return NULL;
  if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0) {
    dwfl_end(d);
    return NULL;
  }
  return d;
}

void *sp__bt_open(void) { return open_dwfl(); }

void sp__bt_close(void *sym) {
  if (sym) dwfl_end(sym);
}

/* Writes the backtrace of parked fiber f to fd, one indented line a frame. */
void sp__bt_fiber(void *sym, int fd, struct sp_fiber *f) {
  uintptr_t pcs[MAX_FRAMES];
  int n = frames(f, pcs, MAX_FRAMES);
  for (int i = 0; i < n; i++) {
    /* a return address points after the call: look up the call itself */
    Dwarf_Addr pc = i == 0 ? pcs[i] : pcs[i] - 1;
    Dwfl_Module *m = sym ? dwfl_addrmodule(sym, pc) : NULL;
    const char *name = m ? dwfl_module_addrname(m, pc) : NULL;
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *l = m ? dwfl_module_getsrc(m, pc) : NULL;
    if (l) file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
    if (file)
      dprintf(fd, "      #%d 0x%lx %s (%s:%d)\n", i, (unsigned long)pcs[i], name ? name : "?", file,
              line);
    else
      dprintf(fd, "      #%d 0x%lx %s\n", i, (unsigned long)pcs[i], name ? name : "?");
  }
}
