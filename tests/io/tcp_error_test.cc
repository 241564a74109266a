// tcp_error_test.cc: sockets when things go wrong: refused and timed-out
// dials, connect and accept deadlines, a peer that resets mid-request, a
// peer that never reads (write_all's partial count), and sp_close releasing
// a fiber blocked on the socket. (tcp_limits_test.cc: SIGPIPE, EMFILE.)
#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class TcpErrorTest : public sptest::RtTest {};

TEST_P(TcpErrorTest, DialClosedPortIsRefused) {
  RunInFiber([] {
    int l = sp_listen("127.0.0.1:0", 16, 0);
    ASSERT_GE(l, 0) << sp_strerror(l);
    int port = sp_local_port(l);
    std::string addr = Loop4(port);
    ASSERT_EQ(0, sp_close(l));
    EXPECT_EQ(-ECONNREFUSED, sp_dial(addr.c_str(), sp_deadline_in(5 * kSec)));
    int s = sp_socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(s, 0) << sp_strerror(s);
    EXPECT_TRUE(Cloexec(s)) << "sp_socket is always SOCK_CLOEXEC";
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(-ECONNREFUSED, sp_connect(s, (sockaddr *)&a, sizeof a, sp_deadline_in(5 * kSec)));
    EXPECT_EQ(0, sp_close(s));
  });
}

// A dial to a listener whose queue is full (SYNs dropped) times out.
TEST_P(TcpErrorTest, DialTimesOutOnFullBacklog) {
  FullListener fl;
  if (!fl.ok) GTEST_SKIP() << "the listener's queue never filled; a dial would not time out";
  RunInFiber([&] {
    int64_t t0 = sp_now(), dl = sp_deadline_in(100 * kMs);
    int r = sp_dial(Loop4(fl.port).c_str(), dl);
    EXPECT_EQ(-ETIMEDOUT, r) << sp_strerror(r);
    EXPECT_GE(sp_now(), dl) << "returned before the deadline";
    EXPECT_LT(MsSince(t0), 3000);
    if (r >= 0) sp_close(r);
  });
  int64_t dl = sp_deadline_in(50 * kMs);  // and from a foreign thread
  EXPECT_EQ(-ETIMEDOUT, sp_dial(Loop4(fl.port).c_str(), dl));
  EXPECT_GE(sp_now(), dl);
}

// Deadline 0 never waits: a connect that cannot complete now is -EAGAIN.
TEST_P(TcpErrorTest, ConnectWithDeadlineZeroDoesNotWait) {
  FullListener fl;
  if (!fl.ok) GTEST_SKIP() << "the listener's queue never filled";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)fl.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = 1;
  double took = 0;
  sp_fiber_t f;
  ASSERT_EQ(0, Spawn(rt_, &f, [&] {
    int s = sp_socket(AF_INET, SOCK_STREAM, 0);
    int64_t t0 = sp_now();
    rc = sp_connect(s, (sockaddr *)&a, sizeof a, 0);
    took = MsSince(t0);
    close(s);
  }));
  JoinOrRescue(f, 3, "sp_connect with deadline 0 is still waiting", [&] {
    for (int i = 0; i < 2; i++) close(accept(fl.l, nullptr, nullptr));  // room: it completes
  });
  EXPECT_EQ(-EAGAIN, rc) << sp_strerror(rc);
  EXPECT_LT(took, 500);
  FullListener fl2;  // and a foreign thread (fl has room now if rescued)
  ASSERT_TRUE(fl2.ok);
  a.sin_port = htons((uint16_t)fl2.port);
  auto res = std::make_shared<std::atomic<int>>(1);
  bool finished = FinishesWithin(3, [a, res] {
    int s = sp_socket(AF_INET, SOCK_STREAM, 0);
    *res = sp_connect(s, (sockaddr *)&a, sizeof a, 0);
    close(s);
  });
  EXPECT_TRUE(finished) << "sp_connect with deadline 0 hangs on a foreign thread";
  if (finished) {
    EXPECT_EQ(-EAGAIN, res->load()) << sp_strerror(res->load());
  }
}

TEST_P(TcpErrorTest, AcceptDeadline) {
  RunInFiber([] {
    int l = sp_listen("127.0.0.1:0", 16, 0);
    ASSERT_GE(l, 0) << sp_strerror(l);
    int64_t t0 = sp_now(), dl = sp_deadline_in(50 * kMs);
    EXPECT_EQ(-ETIMEDOUT, sp_accept(l, nullptr, nullptr, dl));
    EXPECT_GE(sp_now(), dl);
    EXPECT_LT(MsSince(t0), 2000);
    EXPECT_EQ(-EAGAIN, sp_accept(l, nullptr, nullptr, 0));
    int c = RawConnect(sp_local_port(l));  // completes from the backlog
    ASSERT_GE(c, 0) << sp_strerror(c);
    pollfd p = {l, POLLIN, 0};  // the server side may queue it just after
    ASSERT_EQ(1, poll(&p, 1, 5000)) << "the connection never reached the backlog";
    int s = sp_accept(l, nullptr, nullptr, 0);
    EXPECT_GE(s, 0) << "a queued connection with deadline 0: " << sp_strerror(s);
    if (s >= 0) {
      EXPECT_EQ(0, sp_close(s));
    }
    close(c);
    EXPECT_EQ(0, sp_close(l));
  });
}

// The peer sends part of a request and resets (SO_LINGER 0): the server
// gets the bytes that arrived, then -ECONNRESET or end of file.
TEST_P(TcpErrorTest, PeerResetMidRequest) {
  RunInFiber([] {
    int l = sp_listen("127.0.0.1:0", 16, 0);
    ASSERT_GE(l, 0) << sp_strerror(l);
    int port = sp_local_port(l);
    sp_fiber_t peer;
    ASSERT_EQ(0, Spawn(nullptr, &peer, [port] {
      int c = sp_dial(Loop4(port).c_str(), sp_deadline_in(5 * kSec));
      ASSERT_GE(c, 0) << sp_strerror(c);
      char part[100];
      FillPattern(part, sizeof part, 21, 0);
      ASSERT_EQ(0, sp_write_all(c, part, sizeof part, SP_FOREVER, nullptr));
      sp_sleep_for(20 * kMs);
      linger lg = {1, 0};
      ASSERT_EQ(0, setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
      close(c);  // RST
    }));
    int s = sp_accept(l, nullptr, nullptr, sp_deadline_in(5 * kSec));
    ASSERT_GE(s, 0) << sp_strerror(s);
    char req[1000];
    size_t done = 0;
    int r = sp_read_exact(s, req, sizeof req, sp_deadline_in(5 * kSec), &done);
    EXPECT_TRUE(r == -ECONNRESET || r == -ENODATA) << sp_strerror(r);
    EXPECT_EQ(100u, done) << "bytes before the reset are reported";
    EXPECT_EQ(-1, CheckPattern(req, done, 21, 0));
    ssize_t n = sp_recv(s, req, sizeof req, 0, sp_deadline_in(5 * kSec));
    EXPECT_TRUE(n == 0 || n == -ECONNRESET) << sp_strerror((int)n);
    ASSERT_EQ(0, sp_join(peer, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_close(s));
    EXPECT_EQ(0, sp_close(l));
  });
}

// A client that never reads: write_all with a deadline stops with
// -ETIMEDOUT and *done is exactly what the client then receives.
TEST_P(TcpErrorTest, WriteAllDeadlineReportsPartialCount) {
  int l = sp_listen("127.0.0.1:0", 16, 0);
  ASSERT_GE(l, 0) << sp_strerror(l);
  int c = RawConnect(sp_local_port(l), 16 * 1024);
  ASSERT_GE(c, 0) << sp_strerror(c);
  const size_t len = 16 << 20;
  std::vector<uint8_t> big(len);
  FillPattern(big.data(), len, 31, 0);
  int rc = 1;
  size_t done = 0;
  int64_t dl = 0, ret_at = 0;
  sp_fiber_t srv;
  ASSERT_EQ(0, Spawn(rt_, &srv, [&] {
    int s = sp_accept(l, nullptr, nullptr, sp_deadline_in(5 * kSec));
    ASSERT_GE(s, 0) << sp_strerror(s);
    int sz = 16 * 1024;
    EXPECT_EQ(0, setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    dl = sp_deadline_in(100 * kMs);
    rc = sp_write_all(s, big.data(), len, dl, &done);
    ret_at = sp_now();
    EXPECT_EQ(0, sp_close(s));
  }));
  size_t got = 0;
  auto drain = [&](bool check) {  // plain reads up to end of file
    std::vector<uint8_t> buf(64 * 1024);
    for (ssize_t n; (n = read(c, buf.data(), buf.size())) > 0; got += n) {
      if (check) {
        ASSERT_EQ(-1, CheckPattern(buf.data(), n, 31, got)) << "at " << got;
      }
    }
  };
  if (JoinOrRescue(srv, 5, "write_all blocked its worker in write(2) past the deadline",
                   [&] { drain(false); })) {
    EXPECT_EQ(-ETIMEDOUT, rc) << sp_strerror(rc);
    EXPECT_GE(ret_at, dl);
    EXPECT_LT((double)(ret_at - dl) / kMs, 3000);
    EXPECT_GT(done, 0u) << "the first bytes fit in the socket buffers";
    EXPECT_LT(done, len);
    drain(true);
    EXPECT_EQ(done, got) << "*done differs from the bytes the peer received";
  }
  close(c);
  close(l);
}

// Waits for a fiber that sp_close should have released; on failure,
// unblocks it with `rescue` so the test ends.
void ExpectReleased(sp_fiber_t f, int64_t closed_at, const int64_t *ret_at, const char *what,
                    std::function<void()> rescue) {
  int rc = sp_join(f, nullptr, sp_deadline_in(3 * kSec));
  if (rc == -ETIMEDOUT) {
    ADD_FAILURE() << what << " still blocked 3 s after sp_close";
    rescue();
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    return;
  }
  ASSERT_EQ(0, rc);
  EXPECT_LT((double)(*ret_at - closed_at) / kMs, 1000) << what << " released late";
}

// A fiber blocked in sp_recv, sp_read or sp_accept on a socket is released
// when the socket is sp_closed, by another fiber or by a foreign thread.
TEST_P(TcpErrorTest, CloseReleasesBlockedRecvReadAndAccept) {
  static const char *const kOps[] = {"sp_recv", "sp_read", "sp_accept"};
  RunInFiber([] {
    for (int op = 0; op < 3; op++)
      for (int foreign = 0; foreign < 2; foreign++) {
        std::string what = std::string(kOps[op]) + (foreign ? " (closed by a foreign thread)"
                                                             : " (closed by a fiber)");
        int l = sp_listen("127.0.0.1:0", 16, 0);
        ASSERT_GE(l, 0) << sp_strerror(l);
        int port = sp_local_port(l), c = -1, s = l;
        if (op != 2) {
          c = sp_dial(Loop4(port).c_str(), sp_deadline_in(5 * kSec));
          ASSERT_GE(c, 0) << sp_strerror(c);
          s = sp_accept(l, nullptr, nullptr, sp_deadline_in(5 * kSec));
          ASSERT_GE(s, 0) << sp_strerror(s);
        }
        ssize_t ret = 1;
        int64_t ret_at = 0;
        sp_fiber_t r;
        ASSERT_EQ(0, Spawn(nullptr, &r, [&, s, op] {
          char b[16];
          ret = op == 0   ? sp_recv(s, b, sizeof b, 0, SP_FOREVER)
                : op == 1 ? sp_read(s, b, sizeof b, SP_FOREVER)
                          : sp_accept(s, nullptr, nullptr, SP_FOREVER);
          ret_at = sp_now();
        }));
        sp_sleep_for(30 * kMs);  // r is blocked now
        int64_t closed_at = sp_now();
        int cl = -1;
        if (foreign)
          Joined([&] { cl = sp_close(s); }).join();
        else
          cl = sp_close(s);
        EXPECT_EQ(0, cl) << what;
        ExpectReleased(r, closed_at, &ret_at, what.c_str(), [&] {
          // epoll: the waiter is still filed under the fd number, and a
          // fiber's sp_close releases it; io_uring: the operation keeps
          // the socket open, and traffic completes it
          sp_fiber_t k;
          EXPECT_EQ(0, Spawn(nullptr, &k, [s] { sp_close(s); }));
          EXPECT_EQ(0, sp_join(k, nullptr, SP_FOREVER));
          if (c >= 0) {
            close(c);
            c = -1;
          } else {
            close(RawConnect(port));
          }
        });
        if (op == 2) {
          EXPECT_LT(ret, 0) << what << ": accept on a closed listener succeeded";
        } else {
          EXPECT_LE(ret, 0) << what << ": a closed socket returned data";
        }
        if (c >= 0) close(c);
        if (op != 2) {
          EXPECT_EQ(0, sp_close(l));
        }
      }
  });
}

SP_INSTANTIATE_WORKERS(TcpErrorTest);

}  // namespace
