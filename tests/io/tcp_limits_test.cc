// tcp_limits_test.cc: sockets at the edges of the process: writing to a
// closed peer (an error code, never a SIGPIPE that kills the process) and
// accept at the fd limit (-EMFILE, then recovery). Both change or risk
// process-wide state, so each runs in a child process (a death test).
#include <signal.h>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

// Writes a byte to a socket whose peer is closed, from a fiber or from this
// (foreign) thread, and exits 0 when the result is -EPIPE.
void WriteToClosedPeer(bool use_send, bool from_fiber) {
  sp_runtime_t *rt = sptest::NewRuntime(1);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) exit(2);
  close(sv[1]);
  struct A {
    int fd;
    bool use_send;
  } a{sv[0], use_send};
  auto once = [](void *p) -> void * {
    auto *a = static_cast<A *>(p);
    return (void *)(intptr_t)(a->use_send ? sp_send(a->fd, "x", 1, 0, sp_deadline_in(kSec))
                                          : sp_write(a->fd, "x", 1, sp_deadline_in(kSec)));
  };
  void *r = nullptr;
  sp_fiber_t f;
  if (!from_fiber)
    r = once(&a);
  else if (sp_spawn(rt, &f, once, &a, nullptr) != 0 || sp_join(f, &r, SP_FOREVER) != 0)
    exit(3);
  fprintf(stderr, "result: %d\n", (int)(intptr_t)r);
  sp_runtime_destroy(rt);
  exit((intptr_t)r == -EPIPE ? 0 : 1);
}

class TcpLimitsDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(TcpLimitsDeathTest, SendFromFiberToClosedPeerIsEpipe) {
  EXPECT_EXIT(WriteToClosedPeer(true, true), ::testing::ExitedWithCode(0), "result: -32");
}

TEST_F(TcpLimitsDeathTest, SendFromForeignThreadToClosedPeerIsEpipe) {
  EXPECT_EXIT(WriteToClosedPeer(true, false), ::testing::ExitedWithCode(0), "result: -32");
}

TEST_F(TcpLimitsDeathTest, WriteFromFiberToClosedPeerIsEpipe) {
  EXPECT_EXIT(WriteToClosedPeer(false, true), ::testing::ExitedWithCode(0), "result: -32");
}

TEST_F(TcpLimitsDeathTest, WriteFromForeignThreadToClosedPeerIsEpipe) {
  EXPECT_EXIT(WriteToClosedPeer(false, false), ::testing::ExitedWithCode(0), "result: -32");
}

// accept at the fd limit gives -EMFILE (the connection stays queued), and
// accepts again once fds are freed. RLIMIT_NOFILE is process-wide, so in a
// child process.
void AcceptAtFdLimit() {
  auto body = [](void *) -> void * {
    int l = sp_listen("127.0.0.1:0", 16, 0);
    if (l < 0) return (void *)"listen";
    std::string addr = Loop4(sp_local_port(l));
    int c0 = sp_dial(addr.c_str(), sp_deadline_in(5 * kSec));  // warm the backend up
    int s0 = sp_accept(l, nullptr, nullptr, sp_deadline_in(5 * kSec));
    if (c0 < 0 || s0 < 0) return (void *)"warm-up connection";
    sp_close(c0), sp_close(s0);
    FdLimit limit(1);  // room for the client only
    if (!limit.ok) return (void *)"setrlimit";
    int c = sp_dial(addr.c_str(), sp_deadline_in(5 * kSec));
    if (c < 0) return (void *)"dial with one fd free";
    int r = sp_accept(l, nullptr, nullptr, sp_deadline_in(2 * kSec));
    fprintf(stderr, "accept with no fd free: %d (%s)\n", r, sp_strerror(r));
    if (r != -EMFILE) return (void *)"accept at the limit did not give -EMFILE";
    limit.Free(4);
    int s = sp_accept(l, nullptr, nullptr, sp_deadline_in(2 * kSec));
    if (s < 0) return (void *)"accept after fds were freed";
    char b = 0;
    if (sp_write(c, "k", 1, SP_FOREVER) != 1 || sp_recv(s, &b, 1, 0, sp_deadline_in(kSec)) != 1 ||
        b != 'k')
      return (void *)"the queued connection did not work";
    sp_close(c), sp_close(s), sp_close(l);
    return nullptr;
  };
  RunChildFiber(body);
}

TEST_F(TcpLimitsDeathTest, AcceptAtFdLimitGivesEmfileThenRecovers) {
  EXPECT_EXIT(AcceptAtFdLimit(), ::testing::ExitedWithCode(0), "result: ok");
}

}  // namespace
