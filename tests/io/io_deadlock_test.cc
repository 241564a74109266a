// io_deadlock_test.cc: deadlock detection (runtime/deadlock.c) and io/: a
// fiber parked in I/O can be woken by the kernel (a peer that is a plain
// thread, not a Spindle waker, writes 200 ms later) or by a helper thread
// (sp_blocking), so a forever join on it must wait, never report
// "all fibers are asleep". Runtimes of their own with SP_DEADLOCK_RETURN,
// not held by the test thread (see tests/runtime/deadlock_test.cc).
#include <sys/socket.h>

#include <tuple>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

enum Kind { kSocketPairRecv, kTcpRecv, kPipeRead, kPollFd, kAccept, kBlocking, kListener };
const char *const kKindNames[] = {"SocketPairRecv", "TcpRecv",  "PipeRead",      "PollFd",
                                  "Accept",         "Blocking", "ListenerAccept"};

struct Ctx {
  int kind;
  int rfd = -1, wfd = -1, listener = -1, port = 0;
  sp_listener_t *l = nullptr;
};

void *Waiter(void *p) {
  auto *c = static_cast<Ctx *>(p);
  char b[8];
  switch (c->kind) {
    case kSocketPairRecv:
    case kTcpRecv:
      return (void *)(intptr_t)sp_recv(c->rfd, b, sizeof b, 0, SP_FOREVER);
    case kPipeRead:
      return (void *)(intptr_t)sp_read(c->rfd, b, sizeof b, SP_FOREVER);
    case kPollFd: {
      int ev = sp_poll_fd(c->rfd, POLLIN, SP_FOREVER);
      return (void *)(intptr_t)(ev < 0 ? ev : (ev & POLLIN) ? 1 : 0);
    }
    case kAccept: {
      int s = sp_accept(c->listener, nullptr, nullptr, SP_FOREVER);
      if (s >= 0) sp_close(s);
      return (void *)(intptr_t)(s >= 0 ? 1 : s);
    }
    case kListener: {
      int s = sp_listener_accept(c->l, SP_FOREVER);
      if (s >= 0) sp_close(s);
      return (void *)(intptr_t)(s >= 0 ? 1 : s);
    }
    default: {
      void *r = nullptr;
      int rc = sp_blocking([](void *) -> void * {
        usleep(200000);
        return (void *)1;
      }, nullptr, &r);
      return rc < 0 ? (void *)(intptr_t)rc : r;
    }
  }
}

class IoDeadlockTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(IoDeadlockTest, FiberParkedInIoIsNotDeadlocked) {
  const int kind = std::get<0>(GetParam()), workers = std::get<1>(GetParam());
  sp_runtime_t *rt =
      sptest::NewRuntime(workers, [](sp_config_t &cfg) { cfg.deadlock = SP_DEADLOCK_RETURN; });
  ASSERT_NE(nullptr, rt);
  Ctx c;
  c.kind = kind;
  int fds[2];
  if (kind == kSocketPairRecv || kind == kPollFd) {
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
    c.rfd = fds[0], c.wfd = fds[1];
  } else if (kind == kPipeRead) {
    ASSERT_EQ(0, pipe2(fds, O_CLOEXEC));
    c.rfd = fds[0], c.wfd = fds[1];
  } else if (kind == kTcpRecv || kind == kAccept || kind == kListener) {
    c.listener = sp_listen("127.0.0.1:0", 16, 0);
    ASSERT_GE(c.listener, 0) << sp_strerror(c.listener);
    c.port = sp_local_port(c.listener);
    if (kind == kTcpRecv) {
      c.wfd = RawConnect(c.port);
      ASSERT_GE(c.wfd, 0);
      c.rfd = sp_accept(c.listener, nullptr, nullptr, sp_deadline_in(5 * kSec));
      ASSERT_GE(c.rfd, 0) << sp_strerror(c.rfd);
    }
    if (kind == kListener) {
      ASSERT_EQ(0, sp_listener_open(&c.l, c.listener));
      c.listener = -1;  // the listener's now
    }
  }
  int late_fd = -1;
  Joined peer([&] {  // a plain thread: the kernel wakes the fiber, not Spindle
    usleep(200000);
    if (kind == kAccept || kind == kListener) {
      late_fd = RawConnect(c.port);
    } else if (kind != kBlocking) {
      EXPECT_EQ(1, write(c.wfd, "x", 1));
    }
  });
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, Waiter, &c, nullptr));
  void *res = nullptr;
  int64_t t0 = sp_now();
  int rc = sp_join(f, &res, SP_FOREVER);
  EXPECT_EQ(0, rc) << "join: " << sp_strerror(rc) << " after " << MsSince(t0) << " ms";
  if (rc != 0) {
    EXPECT_EQ(0, sp_join(f, &res, sp_deadline_in(10 * kSec)));  // let it finish
  }
  EXPECT_EQ(1, (intptr_t)res) << sp_strerror((int)(intptr_t)res);
  peer.join();
  if (c.l) {
    sp_fiber_t closer;  // close where the multishot runs: in the runtime
    ASSERT_EQ(0, sp_spawn(rt, &closer, [](void *l) -> void * {
      return (void *)(intptr_t)sp_listener_free(static_cast<sp_listener_t *>(l));
    }, c.l, nullptr));
    void *fr = (void *)1;
    EXPECT_EQ(0, sp_join(closer, &fr, SP_FOREVER));
    EXPECT_EQ(nullptr, fr);
  }
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  for (int fd : {c.rfd, c.wfd, c.listener, late_fd})
    if (fd >= 0) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Kinds, IoDeadlockTest,
                         ::testing::Combine(::testing::Range(0, 7), ::testing::Values(1, 2)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>> &i) {
                           return std::string(kKindNames[std::get<0>(i.param)]) + "_w" +
                                  std::to_string(std::get<1>(i.param));
                         });

}  // namespace
