/*
 * backend.c: which I/O backend a runtime uses, and why (model: poll.h).
 *
 * Choice: once per process, io_uring is probed (probe): the best setup
 * flags the kernel accepts, from the list below, and every opcode the
 * operations need. Each runtime then takes io_uring with those flags, or
 * epoll when SPINDLE_IO=epoll forces it or the probe failed, and keeps a
 * line saying why (sp_io_backend; printed in debug mode).
 * Invariants:
 *   B1  The probe runs once per process (pthread_once) and never changes:
 *       every runtime and every worker's ring uses the same flags, so call
 *       sites test rt->io_ring_flags alone.
 *   B2  SPINDLE_IO=uring-coop or uring-plain start the probe lower down:
 *       the setups of older kernels, run on this one by the tests.
 *       uring-plain also sets rt->io_old_rules: submit and wait as on
 *       5.x kernels (uring.c U8, U9).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/poll.h"
#include "io/sp_io.h"

/* Best first; an older kernel refuses the newer flags with EINVAL (B2:
 * the tests can start lower down). */
static const struct {
  unsigned flags;
  const char *name;
  const char *force; /* the SPINDLE_IO value that starts here */
} setups[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG", NULL},
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN", NULL},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "COOP_TASKRUN|TASKRUN_FLAG",
     "uring-coop"},
    {0, "no setup flags", "uring-plain"},
};

/* Opcodes the operations need; without one of them: the fallback. */
static const struct {
  int op;
  const char *name;
} needed[] = {
    {IORING_OP_READ, "READ"},          {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_READV, "READV"},        {IORING_OP_WRITEV, "WRITEV"},
    {IORING_OP_RECV, "RECV"},          {IORING_OP_SEND, "SEND"},
    {IORING_OP_RECVMSG, "RECVMSG"},    {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_ACCEPT, "ACCEPT"},      {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_OPENAT, "OPENAT"},      {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_FSYNC, "FSYNC"},        {IORING_OP_STATX, "STATX"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},  {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
};

static const char *errname(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOSYS: return "ENOSYS";
  case EINVAL: return "EINVAL";
  case ENOMEM: return "ENOMEM";
  case EMFILE: return "EMFILE";
  case EACCES: return "EACCES";
  default: return "error";
  }
}

/* What the kernel offers, probed once per process (the issue's "probe once
 * at start-up"): rc 0 with the setup flags, or < 0; why says it in words. */
static struct {
  pthread_once_t once;
  int rc;
  unsigned flags;
  bool old_rules; /* SPINDLE_IO=uring-plain: submit and wait as 5.x kernels do (uring.c U8, U9) */
  char why[sizeof ((struct sp_runtime *)0)->io_why];
} probed = {.once = PTHREAD_ONCE_INIT};

static void probe(void) {
  int err = 0;
  size_t first = 0;
  const char *env = getenv("SPINDLE_IO");
  for (size_t i = 0; env && i < sizeof setups / sizeof setups[0]; i++)
    if (setups[i].force && strcmp(env, setups[i].force) == 0) first = i;
  for (size_t i = first; i < sizeof setups / sizeof setups[0]; i++) {
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = setups[i].flags;
    err = sp__uring_queue_init(8, &ring, &p); /* uring.c U10 */
    if (err == -EINVAL && setups[i].flags) continue; /* an older kernel: fewer flags */
    if (err < 0) break;
    struct io_uring_probe *pr = io_uring_get_probe_ring(&ring);
    const char *missing = pr ? NULL : "PROBE";
    for (size_t k = 0; pr && !missing && k < sizeof needed / sizeof needed[0]; k++)
      if (!io_uring_opcode_supported(pr, needed[k].op)) missing = needed[k].name;
    if (pr) io_uring_free_probe(pr);
    sp__uring_queue_exit(&ring);
    if (missing) {
      snprintf(probed.why, sizeof probed.why, "io_uring lacks IORING_OP_%s", missing);
      probed.rc = -ENOSYS;
      return;
    }
    probed.flags = setups[i].flags;
    probed.old_rules = first && setups[i].flags == 0;
    snprintf(probed.why, sizeof probed.why, "io_uring (%s%s%s)", setups[i].name,
             first ? ", forced by SPINDLE_IO=" : "", first ? env : "");
    probed.rc = 0;
    return;
  }
  char disabled[16] = "";
  FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (f) {
    if (!fgets(disabled, sizeof disabled, f)) disabled[0] = 0;
    disabled[strcspn(disabled, "\n")] = 0;
    fclose(f);
  }
  if (disabled[0])
    snprintf(probed.why, sizeof probed.why, "io_uring_setup: %s (kernel.io_uring_disabled=%s)",
             errname(-err), disabled);
  else
    snprintf(probed.why, sizeof probed.why, "io_uring_setup: %s", errname(-err));
  probed.rc = err;
}

void sp__io_runtime_init(struct sp_runtime *rt) {
  pthread_mutex_init(&rt->io_lock, NULL);
  const char *env = getenv("SPINDLE_IO");
  if (env && strcmp(env, "epoll") == 0) {
    rt->io_kind = SP_IO_EPOLL;
    snprintf(rt->io_why, sizeof rt->io_why, "epoll (forced by SPINDLE_IO=epoll)");
  } else {
    pthread_once(&probed.once, probe);
    rt->io_kind = probed.rc == 0 ? SP_IO_URING : SP_IO_EPOLL;
    rt->io_ring_flags = probed.flags;
    rt->io_old_rules = probed.old_rules;
    memcpy(rt->io_why, probed.why, sizeof rt->io_why); /* the same size */
    if (probed.rc) {
      size_t n = strlen(rt->io_why);
      snprintf(rt->io_why + n, sizeof rt->io_why - n, "; using epoll");
    }
  }
  if (rt->cfg.debug) fprintf(stderr, "spindle: io backend: %s\n", rt->io_why);
}

void sp__io_runtime_fini(struct sp_runtime *rt) {
  sp__epoll_fini(rt);
  sp__blocking_fini(rt);
  pthread_mutex_destroy(&rt->io_lock);
}

int sp_io_backend(sp_runtime_t *rt, char *why, size_t len) {
  if (!rt) return -EINVAL;
  if (why && len) snprintf(why, len, "%s", rt->io_why);
  return rt->io_kind;
}
