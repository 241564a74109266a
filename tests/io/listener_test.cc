// listener_test.cc: sp_listener_t (io/listener.c): many accepters and many
// connections with no connection lost or handed out twice, the queue of
// connections nobody waited for (past its cap: backpressure), deadlines
// and cancellation, close while fibers wait, accepting from a foreign
// thread, Unix sockets, and the fd limit (-EMFILE, then recovery).
#include <netinet/tcp.h>
#include <sys/un.h>

#include <mutex>
#include <set>
#include <thread>

#include "sync/sp_ctx.h"
#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class ListenerTest : public sptest::RtTest {};

inline std::string Loop4(int port) { return "127.0.0.1:" + std::to_string(port); }

// Opens a listener on 127.0.0.1:0; port gets its port.
sp_listener_t *OpenLoopback(int *port, int backlog = 512) {
  int fd = sp_listen("127.0.0.1:0", backlog, 0);
  EXPECT_GE(fd, 0) << sp_strerror(fd);
  if (fd < 0) return nullptr;
  *port = sp_local_port(fd);
  sp_listener_t *l = nullptr;
  EXPECT_EQ(0, sp_listener_open(&l, fd));
  return l;
}

// Dials addr, accepts the connection from l and checks a byte crosses it.
void ExpectDialAccept(sp_listener_t *l, const std::string &addr) {
  int c = sp_dial(addr.c_str(), sp_deadline_in(5 * kSec));
  ASSERT_GE(c, 0) << sp_strerror(c);
  int s = sp_listener_accept(l, sp_deadline_in(5 * kSec));
  ASSERT_GE(s, 0) << sp_strerror(s);
  EXPECT_EQ(1, sp_write(c, "x", 1, SP_FOREVER));
  char b = 0;
  EXPECT_EQ(1, sp_recv(s, &b, 1, 0, sp_deadline_in(5 * kSec)));
  EXPECT_EQ('x', b);
  sp_close(c), sp_close(s);
}

TEST_P(ListenerTest, RejectsBadArguments) {
  sp_listener_t *l = nullptr;
  EXPECT_EQ(-EINVAL, sp_listener_open(nullptr, 0));
  EXPECT_EQ(-EBADF, sp_listener_open(&l, -1));
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(-EINVAL, sp_listener_open(&l, s)) << "not listening";
  EXPECT_EQ(nullptr, l);
  close(s);
  EXPECT_EQ(-EINVAL, sp_listener_accept(nullptr, 0));
  EXPECT_EQ(-EINVAL, sp_listener_close(nullptr));
  EXPECT_EQ(-EINVAL, sp_listener_free(nullptr));
  EXPECT_EQ(-EINVAL, sp_listener_fd(nullptr));
}

// 6 accepters, 400 dialers that each send their number: every number
// arrives exactly once, on a CLOEXEC fd with TCP_NODELAY.
TEST_P(ListenerTest, ManyAcceptersGetEveryConnectionOnce) {
  constexpr int kConns = 400, kAccepters = 6;
  RunInFiber([&] {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port);
    ASSERT_NE(nullptr, l);
    std::mutex mu;
    std::vector<int> seen(kConns, 0);
    std::atomic<int> got{0}, bad_opts{0}, errors{0};
    std::vector<sp_fiber_t> acc(kAccepters), dial(kConns);
    for (auto &f : acc)
      ASSERT_EQ(0, Spawn(nullptr, &f, [&] {
        for (;;) {
          int s = sp_listener_accept(l, sp_deadline_in(20 * kSec));
          if (s == -EBADF) return;  // closed at the end
          if (s < 0) {
            errors++;
            return;
          }
          if (!Cloexec(s) || IntOpt(s, IPPROTO_TCP, TCP_NODELAY) <= 0) bad_opts++;
          uint32_t id = 0;
          if (sp_read_exact(s, &id, sizeof id, sp_deadline_in(10 * kSec), nullptr) == 0 &&
              id < (uint32_t)kConns) {
            std::lock_guard<std::mutex> g(mu);
            seen[id]++;
          } else {
            errors++;
          }
          got++;  // before the reply: the dialer is done once it has it
          sp_write(s, "k", 1, sp_deadline_in(10 * kSec));
          sp_close(s);
        }
      }));
    for (int i = 0; i < kConns; i++)
      ASSERT_EQ(0, Spawn(nullptr, &dial[i], [&, i] {
        int c = sp_dial(Loop4(port).c_str(), sp_deadline_in(10 * kSec));
        if (c < 0) {
          errors++;
          return;
        }
        uint32_t id = (uint32_t)i;
        char k = 0;
        if (sp_write_all(c, &id, sizeof id, sp_deadline_in(10 * kSec), nullptr) != 0 ||
            sp_read_exact(c, &k, 1, sp_deadline_in(10 * kSec), nullptr) != 0 || k != 'k')
          errors++;
        sp_close(c);
      }));
    for (auto &f : dial) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(kConns, got.load());
    EXPECT_EQ(0, sp_listener_close(l));  // wakes the accepters with -EBADF
    for (auto &f : acc) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(-EBADF, sp_listener_accept(l, 0)) << "accept after close";
    EXPECT_EQ(-EBADF, sp_listener_close(l)) << "second close";
    EXPECT_EQ(0, sp_listener_free(l));
    EXPECT_EQ(0, errors.load());
    EXPECT_EQ(0, bad_opts.load());
    for (int i = 0; i < kConns; i++) EXPECT_EQ(1, seen[i]) << "connection " << i;
  });
}

// With nobody waiting, connections queue; past the queue's cap (64) the
// kernel's backlog holds them. All 150 are accepted afterwards, each one
// working, and none twice.
TEST_P(ListenerTest, QueuesConnectionsNobodyWaitedFor) {
  constexpr int kConns = 150;
  RunInFiber([&] {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port);
    ASSERT_NE(nullptr, l);
    EXPECT_EQ(-EAGAIN, sp_listener_accept(l, 0)) << "nothing yet; arms the listener";
    std::vector<int> clients;
    for (int i = 0; i < kConns; i++) {
      int c = RawConnect(port);
      ASSERT_GE(c, 0) << strerror(-c);
      uint32_t id = (uint32_t)i;
      ASSERT_EQ((ssize_t)sizeof id, write(c, &id, sizeof id));
      clients.push_back(c);
    }
    sp_sleep_for(50 * kMs);  // the multishot accepts what it can meanwhile
    std::set<uint32_t> ids;
    for (int i = 0; i < kConns; i++) {
      int s = sp_listener_accept(l, sp_deadline_in(5 * kSec));
      ASSERT_GE(s, 0) << "connection " << i << ": " << sp_strerror(s);
      uint32_t id = 0;
      ASSERT_EQ(0, sp_read_exact(s, &id, sizeof id, sp_deadline_in(5 * kSec), nullptr));
      EXPECT_TRUE(ids.insert(id).second) << "connection " << id << " accepted twice";
      sp_close(s);
    }
    EXPECT_EQ((size_t)kConns, ids.size());
    EXPECT_EQ(-EAGAIN, sp_listener_accept(l, 0)) << "no connection left over";
    for (int c : clients) close(c);
    EXPECT_EQ(0, sp_listener_free(l)) << "free closes an open listener";
    EXPECT_EQ(-ECONNREFUSED, RawConnect(port));
  });
}

TEST_P(ListenerTest, DeadlineAndCancellation) {
  RunInFiber([&] {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port);
    ASSERT_NE(nullptr, l);
    int64_t t0 = sp_now();
    EXPECT_EQ(-ETIMEDOUT, sp_listener_accept(l, sp_deadline_in(30 * kMs)));
    EXPECT_GE(sp_now() - t0, 30 * kMs);
    EXPECT_EQ(-EAGAIN, sp_listener_accept(l, 0));
    sp_ctx_t *ctx = nullptr;
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
    sp_fiber_t f;
    std::atomic<int> res{1};
    ASSERT_EQ(0, Spawn(nullptr, &f, [&] {
      sp_ctx_t *prev = sp_ctx_enter(ctx);
      res = sp_listener_accept(l, SP_FOREVER);
      sp_ctx_leave(prev);
    }));
    sp_sleep_for(20 * kMs);
    EXPECT_EQ(0, sp_ctx_cancel(ctx, 0));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(-ECANCELED, res.load());
    sp_ctx_release(ctx);
    // the waits that ended by themselves took nothing: a connection made
    // now goes to the next accept
    ExpectDialAccept(l, Loop4(port));
    EXPECT_EQ(0, sp_listener_close(l));
    EXPECT_EQ(0, sp_listener_free(l));
  });
}

// Close wakes every accepter with -EBADF, closes queued connections (their
// peers see the end) and the socket (the port refuses connections).
TEST_P(ListenerTest, CloseWakesAcceptersAndClosesQueued) {
  RunInFiber([&] {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port);
    ASSERT_NE(nullptr, l);
    EXPECT_EQ(-EAGAIN, sp_listener_accept(l, 0));
    int queued = RawConnect(port);
    ASSERT_GE(queued, 0);
    sp_sleep_for(20 * kMs);
    int s = sp_listener_accept(l, sp_deadline_in(5 * kSec));  // takes the queued one
    ASSERT_GE(s, 0);
    sp_close(s);
    int queued2 = RawConnect(port);  // this one stays queued (or in the backlog)
    ASSERT_GE(queued2, 0);
    sp_sleep_for(20 * kMs);
    EXPECT_EQ(0, sp_listener_close(l));
    EXPECT_EQ(0, sp_listener_free(l));
    char b;
    pollfd p{queued2, POLLIN, 0};
    EXPECT_EQ(1, poll(&p, 1, 5000));
    EXPECT_LE(read(queued2, &b, 1), 0) << "the peer of a queued connection sees its end";
    close(queued), close(queued2);
    EXPECT_EQ(-ECONNREFUSED, RawConnect(port)) << "the socket is closed";
  });
  RunInFiber([&] {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port);
    ASSERT_NE(nullptr, l);
    std::vector<sp_fiber_t> fs(3);
    std::atomic<int> ebadf{0};
    for (auto &f : fs)
      ASSERT_EQ(0, Spawn(nullptr, &f, [&] {
        if (sp_listener_accept(l, sp_deadline_in(20 * kSec)) == -EBADF) ebadf++;
      }));
    sp_sleep_for(30 * kMs);
    EXPECT_EQ(0, sp_listener_close(l));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(3, ebadf.load());
    EXPECT_EQ(0, sp_listener_free(l));
  });
}

// A foreign thread accepts from a listener fibers accept from as well.
TEST_P(ListenerTest, ForeignThreadAccepts) {
  int port = 0;
  sp_listener_t *l = OpenLoopback(&port);
  ASSERT_NE(nullptr, l);
  sp_fiber_t f;
  std::atomic<int> fiber_got{0};
  ASSERT_EQ(0, Spawn(rt_, &f, [&] {
    int s = sp_listener_accept(l, sp_deadline_in(10 * kSec));
    if (s >= 0) fiber_got++, sp_close(s);
  }));
  int c1 = RawConnect(port), c2 = RawConnect(port);
  ASSERT_GE(c1, 0);
  ASSERT_GE(c2, 0);
  int s = sp_listener_accept(l, sp_deadline_in(10 * kSec));
  EXPECT_GE(s, 0) << sp_strerror(s);
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(1, fiber_got.load());
  if (s >= 0) close(s);
  close(c1), close(c2);
  EXPECT_EQ(0, sp_listener_free(l));
}

// A foreign thread already inside a plain accept when a fiber's accept
// could arm the multishot: the multishot must not take the connections the
// thread waits for (its poll(2) wakes, finds the backlog empty, sleeps on).
TEST_P(ListenerTest, ForeignAccepterInsideBeforeTheFiberComes) {
  int port = 0;
  sp_listener_t *l = OpenLoopback(&port);
  ASSERT_NE(nullptr, l);
  std::atomic<int> thread_got{1};
  Joined t([&] { thread_got = sp_listener_accept(l, sp_deadline_in(5 * kSec)); });
  usleep(20 * 1000);  // the thread is in its plain accept
  sp_fiber_t f;
  std::atomic<int> fiber_got{1};
  ASSERT_EQ(0, Spawn(rt_, &f, [&] { fiber_got = sp_listener_accept(l, sp_deadline_in(5 * kSec)); }));
  usleep(20 * 1000);  // the fiber is in its accept too
  int c1 = RawConnect(port), c2 = RawConnect(port);
  ASSERT_GE(c1, 0);
  ASSERT_GE(c2, 0);
  t.join();
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_GE(thread_got.load(), 0) << sp_strerror(thread_got.load());
  EXPECT_GE(fiber_got.load(), 0) << sp_strerror(fiber_got.load());
  if (thread_got >= 0) close(thread_got);
  if (fiber_got >= 0) close(fiber_got);
  close(c1), close(c2);
  EXPECT_EQ(0, sp_listener_free(l));
}

TEST_P(ListenerTest, UnixSocket) {
  std::string dir = ShortDir(), path = "unix:" + dir + "/l.sock";
  RunInFiber([&] {
    int fd = sp_listen(path.c_str(), 16, 0);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    sp_listener_t *l = nullptr;
    ASSERT_EQ(0, sp_listener_open(&l, fd));
    for (int i = 0; i < 3; i++) ExpectDialAccept(l, path);
    sp_fiber_t w;
    std::atomic<int> res{1};
    ASSERT_EQ(0, Spawn(nullptr, &w, [&] { res = sp_listener_accept(l, sp_deadline_in(20 * kSec)); }));
    sp_sleep_for(20 * kMs);
    int64_t t0 = sp_now();
    EXPECT_EQ(0, sp_listener_close(l)) << "ends the multishot on a Unix socket too";
    ASSERT_EQ(0, sp_join(w, nullptr, SP_FOREVER));
    EXPECT_EQ(-EBADF, res.load());
    EXPECT_LT(sp_now() - t0, 5 * kSec);
    EXPECT_EQ(0, sp_listener_free(l));
  });
  unlink((dir + "/l.sock").c_str());  // closing leaves the socket file
  rmdir(dir.c_str());
}

SP_INSTANTIATE_WORKERS(ListenerTest);

// At the fd limit an accepter gets -EMFILE (the connection stays in the
// backlog) and the next accept, with fds free, gets it. (A multishot armed
// before the limit was lowered keeps the old limit: the kernel's choice.) RLIMIT_NOFILE is
// process-wide: in a child process.
void AcceptAtFdLimit() {
  auto body = [](void *) -> void * {
    int port = 0;
    sp_listener_t *l = OpenLoopback(&port, 16);
    if (!l) return (void *)"listen";
    int c0 = sp_dial(Loop4(port).c_str(), sp_deadline_in(5 * kSec));
    // a plain accept: a multishot takes the fd limit as it is when armed
    // (the kernel reads RLIMIT_NOFILE once), so the listener is armed below
    int s0 = sp_accept(sp_listener_fd(l), nullptr, nullptr, sp_deadline_in(5 * kSec));
    if (c0 < 0 || s0 < 0) return (void *)"warm-up connection";
    sp_close(c0), sp_close(s0);
    FdLimit limit(1);  // room for the client only
    if (!limit.ok) return (void *)"setrlimit";
    int c = sp_dial(Loop4(port).c_str(), sp_deadline_in(5 * kSec));
    if (c < 0) return (void *)"dial with one fd free";
    int r = sp_listener_accept(l, sp_deadline_in(2 * kSec));
    fprintf(stderr, "accept with no fd free: %d (%s)\n", r, sp_strerror(r));
    if (r != -EMFILE) return (void *)"accept at the limit did not give -EMFILE";
    limit.Free(4);
    int s = sp_listener_accept(l, sp_deadline_in(2 * kSec));
    if (s < 0) return (void *)"accept after fds were freed";
    char b = 0;
    if (sp_write(c, "k", 1, SP_FOREVER) != 1 || sp_recv(s, &b, 1, 0, sp_deadline_in(kSec)) != 1 ||
        b != 'k')
      return (void *)"the connection from the backlog did not work";
    sp_close(c), sp_close(s);
    if (sp_listener_free(l) != 0) return (void *)"close";
    return nullptr;
  };
  RunChildFiber(body);
}

TEST(ListenerDeathTest, AcceptAtFdLimitGivesEmfileThenRecovers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(AcceptAtFdLimit(), ::testing::ExitedWithCode(0), "result: ok");
}

}  // namespace
