// backend_test.cc: sp_io_backend says which backend a runtime uses and why:
// io_uring where the kernel allows it, epoll (with a reason naming
// SPINDLE_IO) when SPINDLE_IO=epoll is set, as BUILD does for the _epoll
// twin of every io test. Both backends then really move bytes.
#include <linux/io_uring.h>
#include <sys/eventfd.h>

#include <string>

#include "sync/sp_ctx.h"
#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class BackendTest : public sptest::RtTest {};

bool EpollForced() {
  const char *e = getenv("SPINDLE_IO");
  return e && strcmp(e, "epoll") == 0;
}

// Whether this process may set up an io_uring at all (the raw system call:
// kernel.io_uring_disabled, seccomp and containers can refuse it).
bool KernelAllowsUring(std::string *why) {
  io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) {
    *why = std::string("io_uring_setup: ") + strerror(errno);
    return false;
  }
  close((int)fd);
  return true;
}

TEST_P(BackendTest, ReportsTheBackendAndWhy) {
  std::string refused;
  const bool uring_ok = KernelAllowsUring(&refused);
  char why[256];
  memset(why, 0x7F, sizeof why);
  int b = sp_io_backend(rt_, why, sizeof why);
  ASSERT_TRUE(b == SP_IO_URING || b == SP_IO_EPOLL) << b;
  ASSERT_NE(nullptr, memchr(why, '\0', sizeof why)) << "why is not NUL-terminated";
  EXPECT_GT(strlen(why), 0u) << "no reason given";
  if (EpollForced()) {
    EXPECT_EQ(SP_IO_EPOLL, b) << why;
    EXPECT_NE(nullptr, strstr(why, "SPINDLE_IO")) << "reason: " << why;
  } else if (uring_ok) {
    EXPECT_EQ(SP_IO_URING, b) << "io_uring works here, yet: " << why;
    const char *e = getenv("SPINDLE_IO");
    if (e && strncmp(e, "uring-", 6) == 0) {  // a weaker setup, as older kernels have
      EXPECT_NE(nullptr, strstr(why, e)) << "reason: " << why;
    }
    if (e && strcmp(e, "uring-plain") == 0) {
      EXPECT_NE(nullptr, strstr(why, "no setup flags")) << "reason: " << why;
    }
  } else {
    EXPECT_EQ(SP_IO_EPOLL, b) << why;
    printf("io_uring refused (%s); backend says: %s\n", refused.c_str(), why);
  }
  EXPECT_EQ(b, sp_io_backend(rt_, nullptr, 0)) << "why may be NULL";
}

TEST_P(BackendTest, ShortReasonBufferIsTruncatedNotOverrun) {
  char why[16];
  memset(why, 0x7F, sizeof why);
  int b = sp_io_backend(rt_, why, 4);
  ASSERT_GT(b, 0);
  EXPECT_NE(nullptr, memchr(why, '\0', 4)) << "not terminated within len";
  for (size_t i = 4; i < sizeof why; i++) EXPECT_EQ(0x7F, why[i]) << "wrote past len at " << i;
  EXPECT_EQ(b, sp_io_backend(rt_, why, 1));
  EXPECT_EQ('\0', why[0]);
}

TEST(BackendNoRuntimeTest, NullRuntimeIsEinval) {
  char why[64];
  EXPECT_EQ(-EINVAL, sp_io_backend(nullptr, why, sizeof why));
}

TEST(BackendNoRuntimeTest, EveryRuntimeAgrees) {
  sp_runtime_t *a = sptest::NewRuntime(1), *b = sptest::NewRuntime(3);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(sp_io_backend(a, nullptr, 0), sp_io_backend(b, nullptr, 0));
  EXPECT_EQ(0, sp_runtime_destroy(a));
  EXPECT_EQ(0, sp_runtime_destroy(b));
}

// Whichever backend it is, bytes move: a pipe and a file, from every worker.
TEST_P(BackendTest, BackendMovesBytes) {
  std::string path = TmpPath("backend");
  RunInFiber([&] {
    int p[2];
    ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
    int fd = sp_open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    std::vector<sp_fiber_t> fs(2 * workers());
    std::atomic<int> ok{0};
    for (size_t i = 0; i < fs.size(); i++)
      ASSERT_EQ(0, Spawn(nullptr, &fs[i], [&, i] {
        uint8_t out[512], in[512];
        FillPattern(out, sizeof out, 40 + i, 0);
        ASSERT_EQ(512, sp_pwrite(fd, out, sizeof out, (off_t)(i * 512), SP_FOREVER));
        ASSERT_EQ(512, sp_pread(fd, in, sizeof in, (off_t)(i * 512), SP_FOREVER));
        ASSERT_EQ(0, memcmp(in, out, sizeof out));
        ok++;
      }));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ((int)fs.size(), ok.load());
    ASSERT_EQ(3, sp_write(p[1], "abc", 3, SP_FOREVER));
    char b[4];
    ASSERT_EQ(3, sp_read(p[0], b, sizeof b, SP_FOREVER));
    EXPECT_EQ(0, sp_close(fd));
    close(p[0]);
    close(p[1]);
  });
  unlink(path.c_str());
}

// A worker that sleeps until a timer (another fiber's sp_sleep_for) and is
// woken sooner by a completion, again and again. On 5.10 and older kernels
// liburing makes such a timed wait with a TIMEOUT request of its own, whose
// completion may reach the worker's ring later (uring.c U9); the _plain
// twin waits that way on this kernel too.
TEST_P(BackendTest, TimedSleepsEndedByCompletions) {
  RunInFiber([&] {
    int p[2];
    ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
    std::atomic<bool> done{false};
    sp_fiber_t sleeper;
    ASSERT_EQ(0, Spawn(nullptr, &sleeper, [&] {
      while (!done.load()) sp_sleep_for(20 * kMs);  // a timer is always armed
    }));
    Joined writer([&] {  // a plain thread: each byte is a completion
      for (int i = 0; i < 200; i++) {
        char b = (char)i;
        if (write(p[1], &b, 1) != 1) return;
        usleep(300);
      }
    });
    for (int i = 0; i < 200; i++) {
      char b = 0;
      ASSERT_EQ(1, sp_read(p[0], &b, 1, sp_deadline_in(10 * kSec))) << "byte " << i;
      ASSERT_EQ((char)i, b);
    }
    done = true;
    writer.join();
    ASSERT_EQ(0, sp_join(sleeper, nullptr, SP_FOREVER));
    close(p[0]);
    close(p[1]);
  });
}

SP_INSTANTIATE_WORKERS(BackendTest);

// The opt-in idle spin (io_spin_ns) must see the completions that arrive
// while it spins: 20 round trips with a 3 s spin take well under 10 s (a
// spin blind to its ring ran each of them into the 3 s limit).
TEST(BackendSpinTest, IdleSpinSeesCompletions) {
  sp_runtime_t *rt = sptest::NewRuntime(1, [](sp_config_t &c) { c.io_spin_ns = 3 * kSec; });
  ASSERT_NE(nullptr, rt);
  int sv[2];
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  Joined echo([&] {  // a plain thread answers each byte
    char b;
    while (read(sv[1], &b, 1) == 1 && write(sv[1], &b, 1) == 1) {
    }
  });
  sp_fiber_t f;
  std::atomic<int> done{0};
  int64_t t0 = sp_now();
  ASSERT_EQ(0, Spawn(rt, &f, [&] {
    for (int i = 0; i < 20; i++) {
      char b = (char)i, r = 0;
      if (sp_write(sv[0], &b, 1, sp_deadline_in(30 * kSec)) != 1) return;
      if (sp_read(sv[0], &r, 1, sp_deadline_in(30 * kSec)) != 1 || r != b) return;
      done++;
    }
  }));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(20, done.load());
  EXPECT_LT(sp_now() - t0, 10 * kSec) << "the spin waited out its limit";
  shutdown(sv[0], SHUT_RDWR);
  echo.join();
  close(sv[0]), close(sv[1]);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// More completions at once than the completion queue holds (its 4096
// entries): the kernel keeps the rest on its overflow list and says so in
// the ring's flags. A worker that never runs out of fibers must still bring
// them in: here 6000 fibers wait for one eventfd while another fiber keeps
// yielding, and all of them must wake before it gives up (90 s). A worker
// that only looked for pending task work (TASKRUN_FLAG) left those on the
// overflow list until it went idle (seen with SPINDLE_IO=uring-coop).
TEST(BackendOverflowTest, CompletionsPastTheQueueReachABusyWorker) {
  constexpr int kWaiters = 6000;
  sp_runtime_t *rt = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, rt);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), efd2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  ASSERT_GE(efd2, 0);
  std::atomic<int> started{0}, woke{0}, again{0}, bad{0};
  std::atomic<int64_t> gave_up_after{0};
  std::atomic<int> woke_by_then{0};
  sp_fiber_t ctl;
  ASSERT_EQ(0, Spawn(rt, &ctl, [&] {
    std::vector<sp_fiber_t> ws(kWaiters);
    for (auto &f : ws)
      ASSERT_EQ(0, Spawn(nullptr, &f, [&] {
        started++;
        int rc = sp_poll_fd(efd, POLLIN, sp_deadline_in(60 * kSec));
        if (rc < 0 || !(rc & POLLIN)) bad++;
        woke++;
        // a new operation from each of them while completions may still
        // wait in the overflow: more SQEs than the submission queue holds
        rc = sp_poll_fd(efd2, POLLIN, sp_deadline_in(60 * kSec));
        if (rc < 0 || !(rc & POLLIN)) bad++;
        again++;
      }));
    while (started.load() < kWaiters) sp_sleep_for(kMs);
    sp_sleep_for(100 * kMs);  // the worker idles: every poll is armed
    sp_fiber_t busy;
    ASSERT_EQ(0, Spawn(nullptr, &busy, [&] {
      int64_t t0 = sp_now();
      while (woke.load() < kWaiters) {
        if (sp_now() - t0 > 90 * kSec) {
          woke_by_then = woke.load();
          gave_up_after = sp_now() - t0;
          return;
        }
        sp_yield();
      }
    }));
    uint64_t one = 1;
    ASSERT_EQ((ssize_t)sizeof one, write(efd, &one, sizeof one));
    ASSERT_EQ(0, sp_join(busy, nullptr, SP_FOREVER));
    ASSERT_EQ((ssize_t)sizeof one, write(efd2, &one, sizeof one));
    for (auto &f : ws) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }));
  ASSERT_EQ(0, sp_join(ctl, nullptr, SP_FOREVER));
  EXPECT_EQ(0, gave_up_after.load()) << "only " << woke_by_then.load() << " of " << kWaiters
                                     << " woke while the worker was busy";
  EXPECT_EQ(kWaiters, woke.load());
  EXPECT_EQ(kWaiters, again.load());
  EXPECT_EQ(0, bad.load());
  close(efd);
  close(efd2);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// Cancelling thousands of operations at once: the worker submits one
// ASYNC_CANCEL per operation, so the submission queue fills many times
// over while the completions (two per operation) overflow the completion
// queue. Older (5.x) kernels refuse such a submission with -EBUSY until
// the completion queue has room; SPINDLE_IO=uring-plain (the _plain twin)
// applies that rule here too. Every operation must end with -ECANCELED.
TEST(BackendOverflowTest, CancellingThousandsAtOnce) {
  constexpr int kWaiters = 6000;
  sp_runtime_t *rt = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, rt);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  std::atomic<int> started{0}, cancelled{0}, other{0};
  sp_fiber_t ctl;
  ASSERT_EQ(0, Spawn(rt, &ctl, [&] {
    sp_ctx_t *ctx = nullptr;
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
    std::vector<sp_fiber_t> ws(kWaiters);
    for (auto &f : ws)
      ASSERT_EQ(0, Spawn(nullptr, &f, [&] {
        sp_ctx_t *prev = sp_ctx_enter(ctx);
        started++;
        int rc = sp_poll_fd(efd, POLLIN, SP_FOREVER);
        (rc == -ECANCELED ? cancelled : other)++;
        sp_ctx_leave(prev);
      }));
    while (started.load() < kWaiters) sp_sleep_for(kMs);
    sp_sleep_for(100 * kMs);  // the worker idles: every poll is armed
    EXPECT_EQ(0, sp_ctx_cancel(ctx, 0));
    for (auto &f : ws) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    sp_ctx_release(ctx);
  }));
  ASSERT_EQ(0, sp_join(ctl, nullptr, SP_FOREVER));
  EXPECT_EQ(kWaiters, cancelled.load());
  EXPECT_EQ(0, other.load());
  close(efd);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
