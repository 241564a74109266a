// io_support.h: helpers for the io/ tests: temp paths, a byte pattern keyed
// by (stream, offset) so a reader can check any byte it receives, a
// position-sensitive streaming checksum, fibers from std::function, and
// small socket helpers built on plain system calls (the side of a test that
// is not under test).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "io/sp_io.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

namespace iotest {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSec = 1000000000;

inline std::string TmpDir() {
  const char *d = getenv("TEST_TMPDIR");
  return d && *d ? d : "/tmp";
}

// A fresh path under TmpDir().
inline std::string TmpPath(const char *tag) {
  static std::atomic<int> n{0};
  return TmpDir() + "/" + tag + "." + std::to_string(getpid()) + "." + std::to_string(n++);
}

// A fresh directory short enough for sockaddr_un (TEST_TMPDIR may be long).
inline std::string ShortDir() {
  std::string base = TmpDir().size() < 60 ? TmpDir() : "/tmp";
  std::string t = base + "/spio.XXXXXX";
  if (!mkdtemp(&t[0])) return "/tmp";
  return t;
}

// Random bytes, fixed for the process; stream s at offset o is
// kTable[(o + s * 7919) % size]: distinct streams and shifted data differ.
inline const std::vector<uint8_t> &PatternTable() {
  static const std::vector<uint8_t> t = [] {
    std::vector<uint8_t> v((1 << 20) + 4093);
    uint64_t x = 0x5eed;
    for (auto &b : v) {
      x += 0x9E3779B97F4A7C15ull;
      uint64_t z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      b = (uint8_t)(z ^ (z >> 31));
    }
    return v;
  }();
  return t;
}

// Fills buf with bytes [off, off+len) of stream s.
inline void FillPattern(void *buf, size_t len, uint64_t s, uint64_t off) {
  const auto &t = PatternTable();
  uint8_t *p = static_cast<uint8_t *>(buf);
  size_t i = (off + s * 7919) % t.size();
  while (len > 0) {
    size_t k = std::min(len, t.size() - i);
    memcpy(p, &t[i], k);
    p += k, len -= k, i = 0;
  }
}

// Offset (relative to buf) of the first byte that is not stream s at off,
// or -1 when all len bytes are.
inline long CheckPattern(const void *buf, size_t len, uint64_t s, uint64_t off) {
  const auto &t = PatternTable();
  const uint8_t *p = static_cast<const uint8_t *>(buf);
  size_t i = (off + s * 7919) % t.size(), done = 0;
  while (done < len) {
    size_t k = std::min(len - done, t.size() - i);
    if (memcmp(p + done, &t[i], k) != 0)
      for (size_t j = 0; j < k; j++)
        if (p[done + j] != t[i + j]) return (long)(done + j);
    done += k, i = 0;
  }
  return -1;
}

// Streaming checksum: byte count, byte sum and position-weighted sum, so
// lost, extra, changed and reordered bytes all show. Sums of Sums combine
// connections (order-free).
struct Sum {
  uint64_t n = 0, a = 0, w = 0;
  void Add(const void *buf, size_t len) {
    const uint8_t *p = static_cast<const uint8_t *>(buf);
    for (size_t i = 0; i < len; i++) a += p[i], w += (n + i + 1) * p[i];
    n += len;
  }
  void Merge(const Sum &o) { n += o.n, a += o.a, w += o.w; }
  bool operator==(const Sum &o) const { return n == o.n && a == o.a && w == o.w; }
};

inline double MsSince(int64_t t0) { return (double)(sp_now() - t0) / kMs; }

// Starts fn as a fiber of rt (NULL: the caller's runtime).
inline int Spawn(sp_runtime_t *rt, sp_fiber_t *out, std::function<void()> fn) {
  auto *p = new std::function<void()>(std::move(fn));
  int rc = sp_spawn(rt, out, [](void *a) -> void * {
    auto *f = static_cast<std::function<void()> *>(a);
    (*f)();
    delete f;
    return nullptr;
  }, p, nullptr);
  if (rc != 0) delete p;
  return rc;
}

// A thread joined on every way out of a test body (a failed ASSERT too).
struct Joined : std::thread {
  using std::thread::thread;
  Joined() = default;
  Joined(Joined &&) = default;
  Joined &operator=(Joined &&) = default;
  ~Joined() {
    if (joinable()) join();
  }
};

// Runs fn on a detached thread and waits up to sec seconds: false if it has
// not returned by then (the thread is left behind, so fn must own what it
// uses). Turns a call that hangs forever into a test failure.
inline bool FinishesWithin(double sec, std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  std::thread([fn, done] {
    fn();
    done->set_value();
  }).detach();
  return fut.wait_for(std::chrono::duration<double>(sec)) == std::future_status::ready;
}

// Joins f with a deadline of sec seconds; if it is not done, reports what,
// runs rescue (which must make f finish) and joins it for good. Returns
// whether f finished in time.
inline bool JoinOrRescue(sp_fiber_t f, double sec, const char *what,
                         std::function<void()> rescue) {
  int rc = sp_join(f, nullptr, sp_deadline_in((int64_t)(sec * kSec)));
  if (rc == 0) return true;
  ADD_FAILURE() << what << " (not done after " << sec << " s: " << sp_strerror(rc) << ")";
  rescue();
  EXPECT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  return false;
}

inline long Tid() { return (long)syscall(SYS_gettid); }

// For a death test's child: runs body (which returns NULL, or what failed
// as a string) as a fiber of a new 1-worker runtime, prints "result: ok"
// or "result: <what failed>" to stderr and exits 0 or 1.
[[noreturn]] inline void RunChildFiber(void *(*body)(void *)) {
  sp_runtime_t *rt = sptest::NewRuntime(1);
  sp_fiber_t f;
  void *err = (void *)"spawn";
  if (rt && sp_spawn(rt, &f, body, nullptr, nullptr) == 0) sp_join(f, &err, SP_FOREVER);
  fprintf(stderr, "result: %s\n", err ? (const char *)err : "ok");
  if (rt) sp_runtime_destroy(rt);
  exit(err ? 1 : 0);
}

// Lowers RLIMIT_NOFILE and fills the fd table with copies of /dev/null up
// to it, so that `room` more fds can be opened; Free(n) closes n more of
// them. The destructor restores the limit and closes the copies. The
// limit is process-wide: use it in a child process (a death test).
struct FdLimit {
  rlimit old{};
  std::vector<int> fill;
  bool ok = false;
  explicit FdLimit(int room) {
    getrlimit(RLIMIT_NOFILE, &old);
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0) return;
    fill.push_back(probe);
    rlimit low = old;
    low.rlim_cur = (rlim_t)probe + 16;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return;
    for (int f; (f = dup(probe)) >= 0;) fill.push_back(f);
    Free(room);
    ok = true;
  }
  void Free(int n) {
    for (; n > 0 && !fill.empty(); n--) close(fill.back()), fill.pop_back();
  }
  ~FdLimit() {
    setrlimit(RLIMIT_NOFILE, &old);
    Free((int)fill.size());
  }
};

inline int IntOpt(int fd, int level, int opt) {
  int v = -1;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, opt, &v, &l) == 0 ? v : -errno;
}

inline bool Cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// True when ::1 can be bound (IPv6 loopback configured).
inline bool HaveIpv6Loopback() {
  int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(s, (sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

// A plain (not Spindle) blocking TCP connection to 127.0.0.1:port; -errno.
inline int RawConnect(int port, int rcvbuf = 0) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (rcvbuf) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

// A plain listener on 127.0.0.1 (backlog 1) that never accepts, its queue
// filled by plain connects: Linux then drops further SYNs, so a connect to
// it cannot complete. ok is false if the queue never filled.
struct FullListener {
  int l = -1, port = 0;
  bool ok = false;
  std::vector<int> fillers;
  FullListener() {
    l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (sockaddr *)&a, &al) != 0)
      return;
    port = ntohs(a.sin_port);
    for (int i = 0; i < 16 && !ok; i++) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (s < 0) return;
      fillers.push_back(s);
      if (connect(s, (sockaddr *)&a, sizeof a) == 0) continue;
      pollfd p = {s, POLLOUT, 0};
      ok = poll(&p, 1, 300) == 0;  // no SYN-ACK within 300 ms: full
    }
  }
  ~FullListener() {
    for (int s : fillers) close(s);
    if (l >= 0) close(l);
  }
};

inline std::string Loop4(int port) { return "127.0.0.1:" + std::to_string(port); }

// Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit.
inline long RaiseNofile() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)r.rlim_cur;
}

}  // namespace iotest
