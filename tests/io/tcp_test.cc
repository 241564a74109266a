// tcp_test.cc: the TCP and Unix-socket helpers (sp_listen, sp_dial,
// sp_accept, sp_local_port) on loopback: every address form, socket
// options the header promises, an echo of 1 MiB per connection over many
// connections with checksums, and many connections open at once.
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tests/io/io_support.h"
#include "tests/support/gate.h"

using namespace iotest;

namespace {

class TcpTest : public sptest::RtTest {};

// Dials addr, accepts on l, and checks bytes flow both ways.
// check_peer: accept's address must equal the dialer's (not for dual-stack
// listeners, which report IPv4 peers as v4-mapped IPv6).
void ExpectConnects(int l, const std::string &addr, bool tcp, bool check_peer = true) {
  int c = sp_dial(addr.c_str(), sp_deadline_in(5 * kSec));
  ASSERT_GE(c, 0) << addr << ": " << sp_strerror(c);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  int s = sp_accept(l, (sockaddr *)&peer, &plen, sp_deadline_in(5 * kSec));
  ASSERT_GE(s, 0) << sp_strerror(s);
  EXPECT_TRUE(Cloexec(c) && Cloexec(s)) << "dialed and accepted fds are CLOEXEC";
  if (tcp) {
    EXPECT_GT(IntOpt(c, IPPROTO_TCP, TCP_NODELAY), 0) << "sp_dial sets TCP_NODELAY";
    EXPECT_EQ(0, sp_set_nodelay(s, 1));
    EXPECT_GT(IntOpt(s, IPPROTO_TCP, TCP_NODELAY), 0);
    EXPECT_EQ(0, sp_set_nodelay(s, 0));
    EXPECT_EQ(0, IntOpt(s, IPPROTO_TCP, TCP_NODELAY));
  }
  if (tcp && check_peer) {
    sockaddr_storage mine{};
    socklen_t mlen = sizeof mine;
    ASSERT_EQ(0, getsockname(c, (sockaddr *)&mine, &mlen));
    EXPECT_EQ(mlen, plen);
    EXPECT_EQ(0, memcmp(&mine, &peer, plen)) << "accept's addr is the dialer's address";
  }
  EXPECT_EQ(4, sp_send(c, "ping", 4, 0, SP_FOREVER));
  char b[8] = {0};
  EXPECT_EQ(0, sp_read_exact(s, b, 4, sp_deadline_in(5 * kSec), nullptr));
  EXPECT_EQ(0, memcmp(b, "ping", 4));
  EXPECT_EQ(4, sp_write(s, "pong", 4, SP_FOREVER));
  EXPECT_EQ(4, sp_recv(c, b, 4, MSG_WAITALL, sp_deadline_in(5 * kSec)));
  EXPECT_EQ(0, memcmp(b, "pong", 4));
  EXPECT_EQ(0, sp_close(c));
  EXPECT_EQ(0, sp_recv(s, b, sizeof b, 0, sp_deadline_in(5 * kSec))) << "peer closed";
  EXPECT_EQ(0, sp_close(s));
}

TEST_P(TcpTest, ListenOnIpv4Loopback) {
  RunInFiber([] {
    int l = sp_listen("127.0.0.1:0", 16, 0);
    ASSERT_GE(l, 0) << sp_strerror(l);
    EXPECT_TRUE(Cloexec(l));
    EXPECT_GT(IntOpt(l, SOL_SOCKET, SO_REUSEADDR), 0) << "TCP listeners get SO_REUSEADDR";
    int port = sp_local_port(l);
    ASSERT_GT(port, 0);
    ExpectConnects(l, Loop4(port), true);
    // a name, resolved through sp_blocking; "localhost" may list ::1 first,
    // where nothing listens: the next address must be tried
    ExpectConnects(l, "localhost:" + std::to_string(port), true);
    EXPECT_EQ(0, sp_close(l));
  });
}

TEST_P(TcpTest, ListenOnIpv6Loopback) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  RunInFiber([] {
    int l = sp_listen("[::1]:0", 16, 0);
    ASSERT_GE(l, 0) << sp_strerror(l);
    int port = sp_local_port(l);
    ASSERT_GT(port, 0);
    ExpectConnects(l, "[::1]:" + std::to_string(port), true);
    EXPECT_EQ(0, sp_close(l));
  });
}

TEST_P(TcpTest, ListenOnAllAddressesForms) {
  RunInFiber([] {
    for (const char *form : {":0", "0"}) {
      int l = sp_listen(form, 16, 0);
      ASSERT_GE(l, 0) << form << ": " << sp_strerror(l);
      int port = sp_local_port(l);
      ASSERT_GT(port, 0) << form;
      ExpectConnects(l, Loop4(port), true, false);
      if (HaveIpv6Loopback()) ExpectConnects(l, "[::1]:" + std::to_string(port), true);
      EXPECT_EQ(0, sp_close(l));
    }
    EXPECT_LT(sp_listen("no-port-here", 16, 0), 0);
    EXPECT_LT(sp_dial("127.0.0.1", sp_deadline_in(kSec)), 0) << "no port";
  });
}

TEST_P(TcpTest, ReusePortFlag) {
  RunInFiber([] {
    int a = sp_listen("127.0.0.1:0", 16, SP_LISTEN_REUSEPORT);
    ASSERT_GE(a, 0) << sp_strerror(a);
    std::string addr = Loop4(sp_local_port(a));
    EXPECT_EQ(-EADDRINUSE, sp_listen(addr.c_str(), 16, 0)) << "without the flag";
    int b = sp_listen(addr.c_str(), 16, SP_LISTEN_REUSEPORT);
    EXPECT_GE(b, 0) << "with it: " << sp_strerror(b);
    EXPECT_EQ(0, sp_close(a));
    if (b >= 0) {
      EXPECT_EQ(0, sp_close(b));
    }
  });
}

TEST_P(TcpTest, UnixSocket) {
  std::string dir = ShortDir(), path = dir + "/s", addr = "unix:" + path;
  RunInFiber([&] {
    int l = sp_listen(addr.c_str(), 16, 0);
    ASSERT_GE(l, 0) << addr << ": " << sp_strerror(l);
    EXPECT_LT(sp_local_port(l), 0) << "no port on a Unix socket";
    ExpectConnects(l, addr, false);
    EXPECT_EQ(0, sp_close(l));
    struct stat st;
    ASSERT_EQ(0, stat(path.c_str(), &st)) << "the socket file stays behind";
    l = sp_listen(addr.c_str(), 16, 0);  // a stale socket file is replaced
    ASSERT_GE(l, 0) << "stale socket file: " << sp_strerror(l);
    ExpectConnects(l, addr, false);
    EXPECT_EQ(0, sp_close(l));
    EXPECT_EQ(-ENOENT, sp_dial(("unix:" + dir + "/missing").c_str(), sp_deadline_in(kSec)));
  });
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// "A stale socket file is replaced": a live listener's is not stale, and
// taking its path would cut the running server off from new clients.
TEST_P(TcpTest, LiveUnixListenerKeepsItsPath) {
  std::string dir = ShortDir(), path = dir + "/live", addr = "unix:" + path;
  RunInFiber([&] {
    int l = sp_listen(addr.c_str(), 16, 0);
    ASSERT_GE(l, 0) << addr << ": " << sp_strerror(l);
    int l2 = sp_listen(addr.c_str(), 16, 0);
    EXPECT_LT(l2, 0) << "a second listener took a live listener's path";
    if (l2 >= 0) {
      EXPECT_EQ(0, sp_close(l2));
    }
    ExpectConnects(l, addr, false);
    EXPECT_EQ(0, sp_close(l));
  });
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// Echo server: one fiber per connection; the sum of what every connection
// received is returned in *sum.
struct EchoServer {
  int l = -1;
  std::atomic<int> open{0}, peak{0}, accepted{0};
  sp_mutex_t mu{};
  Sum sum;

  void Serve(int conns) {
    std::vector<sp_fiber_t> fs(conns);
    for (int i = 0; i < conns; i++) {
      int s = sp_accept(l, nullptr, nullptr, sp_deadline_in(30 * kSec));
      ASSERT_GE(s, 0) << "accept " << i << ": " << sp_strerror(s);
      accepted++;
      int now = ++open;
      for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
      }
      ASSERT_EQ(0, Spawn(nullptr, &fs[i], [this, s] { Echo(s); }));
    }
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }
  void Echo(int s) {
    std::vector<uint8_t> buf(64 * 1024);
    Sum mine;
    for (;;) {
      ssize_t n = sp_recv(s, buf.data(), buf.size(), 0, sp_deadline_in(30 * kSec));
      if (n == 0) break;
      ASSERT_GT(n, 0) << sp_strerror((int)n);
      mine.Add(buf.data(), n);
      size_t done = 0;
      ASSERT_EQ(0, sp_write_all(s, buf.data(), n, sp_deadline_in(30 * kSec), &done));
      ASSERT_EQ((size_t)n, done);
    }
    sp_mutex_lock(&mu);
    sum.Merge(mine);
    sp_mutex_unlock(&mu);
    open--;
    EXPECT_EQ(0, sp_close(s));
  }
};

// A client sends `bytes` of stream `id` in chunks of varying size from one
// fiber while it reads the echo in another, checking every byte.
void EchoClient(const std::string &addr, uint64_t id, size_t bytes, Sum *sent) {
  int c = sp_dial(addr.c_str(), sp_deadline_in(30 * kSec));
  ASSERT_GE(c, 0) << sp_strerror(c);
  sp_fiber_t w;
  ASSERT_EQ(0, Spawn(nullptr, &w, [=] {
    std::vector<uint8_t> buf(100 * 1024);
    uint64_t x = id * 2654435761u + 1;
    for (size_t off = 0; off < bytes;) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t k = std::min<size_t>(1 + x % buf.size(), bytes - off);
      FillPattern(buf.data(), k, id, off);
      ASSERT_EQ(0, sp_write_all(c, buf.data(), k, sp_deadline_in(30 * kSec), nullptr));
      off += k;
    }
    EXPECT_EQ(0, sp_shutdown(c, SHUT_WR));
  }));
  std::vector<uint8_t> buf(64 * 1024);
  size_t got = 0;
  for (;;) {
    ssize_t n = sp_recv(c, buf.data(), buf.size(), 0, sp_deadline_in(30 * kSec));
    if (n == 0) break;
    ASSERT_GT(n, 0) << sp_strerror((int)n);
    ASSERT_EQ(-1, CheckPattern(buf.data(), n, id, got)) << "echo of " << id << " at " << got;
    sent->Add(buf.data(), n);
    got += n;
  }
  EXPECT_EQ(bytes, got);
  ASSERT_EQ(0, sp_join(w, nullptr, SP_FOREVER));
  EXPECT_EQ(0, sp_close(c));
}

TEST_P(TcpTest, EchoOneMebibytePerConnection) {
  const int conns = (int)sptest::Scaled(128);
  const size_t bytes = 1 << 20;
  EchoServer srv;
  std::vector<Sum> sums(conns);
  RunInFiber([&] {
    srv.l = sp_listen("127.0.0.1:0", 0, 0);
    ASSERT_GE(srv.l, 0) << sp_strerror(srv.l);
    std::string addr = Loop4(sp_local_port(srv.l));
    sp_fiber_t server;
    ASSERT_EQ(0, Spawn(nullptr, &server, [&] { srv.Serve(conns); }));
    std::vector<sp_fiber_t> cs(conns);
    for (int i = 0; i < conns; i++)
      ASSERT_EQ(0, Spawn(nullptr, &cs[i], [&, i] { EchoClient(addr, 100 + i, bytes, &sums[i]); }));
    for (auto &f : cs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_join(server, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_close(srv.l));
  });
  Sum total;
  for (auto &s : sums) total.Merge(s);
  EXPECT_EQ((uint64_t)conns * bytes, total.n);
  EXPECT_TRUE(total == srv.sum) << "server received " << srv.sum.n << " bytes, clients "
                                << total.n;
}

// Many connections open at once: each says its number, gets it back, and
// stays open until every one has.
TEST_P(TcpTest, ManyConcurrentConnections) {
  long want = sptest::ScaledLive(1000);
  long fds = RaiseNofile();
  if (2 * want + 200 > fds) want = (fds - 200) / 2;
  ASSERT_GT(want, 10) << "RLIMIT_NOFILE " << fds << " is too low";
  const int conns = (int)want;
  EchoServer srv;
  std::atomic<int> echoed{0};
  sptest::Gate all_open;
  RunInFiber([&] {
    srv.l = sp_listen("127.0.0.1:0", 0, 0);
    ASSERT_GE(srv.l, 0) << sp_strerror(srv.l);
    std::string addr = Loop4(sp_local_port(srv.l));
    sp_fiber_t server;
    ASSERT_EQ(0, Spawn(nullptr, &server, [&] { srv.Serve(conns); }));
    std::vector<sp_fiber_t> cs(conns);
    for (int i = 0; i < conns; i++)
      ASSERT_EQ(0, Spawn(nullptr, &cs[i], [&, i] {
        int c = sp_dial(addr.c_str(), sp_deadline_in(30 * kSec));
        ASSERT_GE(c, 0) << "dial " << i << ": " << sp_strerror(c);
        uint32_t v = 0x5000000 + i, back = 0;
        EXPECT_EQ(4, sp_write(c, &v, 4, SP_FOREVER));
        EXPECT_EQ(0, sp_read_exact(c, &back, 4, sp_deadline_in(30 * kSec), nullptr));
        EXPECT_EQ(v, back);
        if (++echoed == conns) all_open.Open();
        EXPECT_EQ(0, all_open.Wait(sp_deadline_in(60 * kSec)));
        EXPECT_EQ(0, sp_close(c));
      }));
    for (auto &f : cs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_join(server, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_close(srv.l));
  });
  EXPECT_EQ(conns, echoed.load());
  EXPECT_EQ(conns, srv.peak.load()) << "connections were not all open at once";
  EXPECT_EQ((uint64_t)conns * 4, srv.sum.n);
}

// Accepters without a ring (threads; fibers on the epoll backend) accept
// from a blocking listener by setting O_NONBLOCK around each accept4
// (io/ops.c O4). Many at once must leave it blocking, lose no connection
// and never block a thread in accept4.
TEST_P(TcpTest, ConcurrentAcceptersLeaveABlockingListenerBlocking) {
  int l = sp_listen("127.0.0.1:0", 0, 0);
  ASSERT_GE(l, 0) << sp_strerror(l);
  int port = sp_local_port(l);
  ASSERT_EQ(0, fcntl(l, F_SETFL, fcntl(l, F_GETFL) & ~O_NONBLOCK));
  const int kTotal = 400;
  std::atomic<int> accepted{0};
  auto accept_loop = [&] {
    while (accepted.load() < kTotal) {
      int s = sp_accept(l, nullptr, nullptr, sp_deadline_in(50 * kMs));
      if (s >= 0) accepted++, close(s);
      else EXPECT_EQ(-ETIMEDOUT, s) << sp_strerror(s);
    }
  };
  std::vector<sp_fiber_t> fs(3);
  for (auto &f : fs) ASSERT_EQ(0, Spawn(rt_, &f, accept_loop));
  {
    std::vector<Joined> ts;
    for (int i = 0; i < 3; i++) ts.emplace_back(accept_loop);
    for (int i = 0; i < kTotal; i++) {
      int c = RawConnect(port);
      ASSERT_GE(c, 0);
      close(c);
    }
  }
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(kTotal, accepted.load());
  EXPECT_FALSE(fcntl(l, F_GETFL) & O_NONBLOCK) << "the listener was left non-blocking";
  EXPECT_EQ(0, sp_close(l));
}

SP_INSTANTIATE_WORKERS(TcpTest);

}  // namespace
