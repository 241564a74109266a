// pipe_test.cc: reads and writes on pipes and socket pairs: a read parks
// the fiber (not the worker) until data comes, deadlines (in flight, 0),
// the cancellation guarantee (a timed-out read never writes its buffer
// later, and no byte is lost), sp_poll_fd, and foreign threads that block.
#include <sys/socket.h>

#include <thread>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class PipeTest : public sptest::RtTest {};

struct Pipe {
  int r = -1, w = -1;
  explicit Pipe(int flags = 0) {
    int p[2];
    EXPECT_EQ(0, pipe2(p, O_CLOEXEC | flags));
    r = p[0], w = p[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

// On a 1-worker runtime the writer can run only if the reader parked.
void ReadParksUntilWrite(Pipe &p) {
  int64_t written_at = 0;
  sp_fiber_t wf;
  ASSERT_EQ(0, Spawn(nullptr, &wf, [&] {
    sp_sleep_for(30 * kMs);
    written_at = sp_now();
    EXPECT_EQ(5, sp_write(p.w, "hello", 5, SP_FOREVER));
  }));
  char buf[64] = {0};
  ssize_t n = sp_read(p.r, buf, sizeof buf, SP_FOREVER);
  int64_t read_at = sp_now();
  ASSERT_EQ(0, sp_join(wf, nullptr, SP_FOREVER));
  ASSERT_EQ(5, n) << sp_strerror((int)n);
  EXPECT_EQ(0, memcmp(buf, "hello", 5));
  EXPECT_GE(read_at, written_at) << "read returned before the write";
}

TEST_P(PipeTest, ReadParksUntilWriterWrites) {
  Pipe p;
  RunInFiber([&] { ReadParksUntilWrite(p); });
}

TEST_P(PipeTest, ReadParksUntilWriterWritesNonblockingFd) {
  Pipe p(O_NONBLOCK);
  RunInFiber([&] { ReadParksUntilWrite(p); });
}

TEST_P(PipeTest, DeadlineOnEmptyPipe) {
  Pipe p;
  RunInFiber([&] {
    char buf[16];
    int64_t t0 = sp_now(), dl = sp_deadline_in(50 * kMs);
    EXPECT_EQ(-ETIMEDOUT, sp_read(p.r, buf, sizeof buf, dl));
    EXPECT_GE(sp_now(), dl) << "returned before the deadline";
    EXPECT_LT(MsSince(t0), 2000) << "far too late";
    dl = sp_deadline_in(30 * kMs);
    EXPECT_EQ(-ETIMEDOUT, sp_poll_fd(p.r, POLLIN, dl));
    EXPECT_GE(sp_now(), dl);
    size_t done = 7;
    EXPECT_EQ(-ETIMEDOUT, sp_read_exact(p.r, buf, 4, sp_deadline_in(20 * kMs), &done));
    EXPECT_EQ(0u, done);
  });
}

TEST_P(PipeTest, DeadlineZeroTakesOnlyWhatIsReady) {
  Pipe p;
  RunInFiber([&] {
    char buf[16];
    int64_t t0 = sp_now();
    EXPECT_EQ(-EAGAIN, sp_read(p.r, buf, sizeof buf, 0));
    EXPECT_EQ(-EAGAIN, sp_poll_fd(p.r, POLLIN, 0));
    EXPECT_LT(MsSince(t0), 500) << "deadline 0 must not wait";
    ASSERT_EQ(3, write(p.w, "abc", 3));
    EXPECT_EQ(POLLIN, sp_poll_fd(p.r, POLLIN, 0) & POLLIN);
    EXPECT_EQ(3, sp_read(p.r, buf, sizeof buf, 0));
    EXPECT_EQ(0, memcmp(buf, "abc", 3));
    EXPECT_EQ(-EAGAIN, sp_read(p.r, buf, sizeof buf, 0)) << "drained";
    EXPECT_EQ(4, sp_write(p.w, "wxyz", 4, 0)) << "room in the pipe";
    EXPECT_EQ(4, sp_read(p.r, buf, sizeof buf, 0));
    // fill the pipe: a write with deadline 0 then finds no room
    std::vector<char> big(1 << 16, 'x');
    for (int i = 0; i < 1000; i++) {
      ssize_t r = sp_write(p.w, big.data(), big.size(), 0);
      if (r == -EAGAIN) break;
      ASSERT_GT(r, 0) << sp_strerror((int)r);
    }
    EXPECT_EQ(-EAGAIN, sp_write(p.w, "x", 1, 0)) << "pipe full";
    EXPECT_EQ(-EAGAIN, sp_poll_fd(p.w, POLLOUT, 0));
  });
}

// The cancellation guarantee, once, slowly: after -ETIMEDOUT the buffer is
// not written even when data arrives later, and that data is not lost.
TEST_P(PipeTest, TimedOutReadNeverWritesItsBuffer) {
  Pipe p;
  RunInFiber([&] {
    uint8_t buf[64];
    memset(buf, 0xAB, sizeof buf);
    ASSERT_EQ(-ETIMEDOUT, sp_read(p.r, buf, sizeof buf, sp_deadline_in(20 * kMs)));
    ASSERT_EQ(5, write(p.w, "hello", 5));
    sp_sleep_for(30 * kMs);  // a read still in flight would land now
    for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(0xAB, buf[i]) << "byte " << i;
    char got[16];
    ASSERT_EQ(5, sp_read(p.r, got, sizeof got, sp_deadline_in(5 * kSec))) << "data lost";
    EXPECT_EQ(0, memcmp(got, "hello", 5));
  });
}

// The same guarantee under a race: a foreign thread writes a numbered byte
// stream in small bursts while a fiber reads with very short deadlines.
// Every read either times out with its buffer untouched or reports exactly
// the next bytes; at the end every byte arrived once, in order.
void RaceReadsAgainstDeadlines(int rfd, int wfd, bool use_recv) {
  const long total = sptest::Scaled(6000);
  Joined writer([&] {
    uint64_t x = 88172645463325252ull;
    for (long sent = 0; sent < total;) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint8_t chunk[16];
      long k = std::min<long>(1 + x % 16, total - sent);
      for (long i = 0; i < k; i++) chunk[i] = (uint8_t)((sent + i) % 251);
      ASSERT_EQ(k, write(wfd, chunk, k));
      sent += k;
      usleep((x >> 20) % 200);
    }
  });
  long got = 0, timeouts = 0;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int64_t give_up = sp_deadline_in(20 * kSec); got < total && sp_now() < give_up;) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint8_t buf[32];
    memset(buf, 0xFF, sizeof buf);  // 0xFF never occurs in the stream
    int64_t dl = (x % 8 == 0) ? 0 : sp_deadline_in((int64_t)(x % 300000));
    ssize_t n = use_recv ? sp_recv(rfd, buf, sizeof buf, 0, dl) : sp_read(rfd, buf, sizeof buf, dl);
    if (n == -ETIMEDOUT || n == -EAGAIN) {
      timeouts++;
    } else {
      ASSERT_GT(n, 0) << sp_strerror((int)n);
    }
    long m = n > 0 ? n : 0;
    for (long i = 0; i < m; i++)
      ASSERT_EQ((got + i) % 251, buf[i]) << "stream byte " << got + i << " wrong or lost";
    for (size_t i = m; i < sizeof buf; i++)
      ASSERT_EQ(0xFF, buf[i]) << "buffer written past the reported count " << m;
    got += m;
  }
  ASSERT_EQ(total, got) << "bytes lost";
  writer.join();
  uint8_t extra;
  EXPECT_EQ(-EAGAIN, sp_read(rfd, &extra, 1, 0)) << "more bytes than were written";
  EXPECT_GT(timeouts, 0) << "the deadlines never fired; the race was not exercised";
}

TEST_P(PipeTest, DeadlinesRacingWritesLoseNoBytesPipe) {
  Pipe p;
  RunInFiber([&] { RaceReadsAgainstDeadlines(p.r, p.w, false); });
}

TEST_P(PipeTest, DeadlinesRacingWritesLoseNoBytesSocketPair) {
  int sv[2];
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  RunInFiber([&] { RaceReadsAgainstDeadlines(sv[0], sv[1], true); });
  close(sv[0]);
  close(sv[1]);
}

// sendmsg/recvmsg: two iovecs each way and an fd passed with SCM_RIGHTS.
TEST_P(PipeTest, SendmsgRecvmsgWithFdPassing) {
  int sv[2];
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  Pipe passed;
  RunInFiber([&] {
    char h[] = "head:", b[] = "body";
    iovec out[2] = {{h, 5}, {b, 4}};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = out, m.msg_iovlen = 2, m.msg_control = ctl, m.msg_controllen = sizeof ctl;
    cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed.w, sizeof(int));
    ASSERT_EQ(9, sp_sendmsg(sv[0], &m, 0, sp_deadline_in(5 * kSec)));
    char r1[3], r2[16] = {0};
    iovec in[2] = {{r1, 3}, {r2, sizeof r2}};
    alignas(cmsghdr) char rctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr rm{};
    rm.msg_iov = in, rm.msg_iovlen = 2, rm.msg_control = rctl, rm.msg_controllen = sizeof rctl;
    ASSERT_EQ(9, sp_recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC, sp_deadline_in(5 * kSec)));
    EXPECT_EQ(0, memcmp(r1, "hea", 3));
    EXPECT_EQ(0, memcmp(r2, "d:body", 6));
    cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    ASSERT_NE(nullptr, rc) << "no control message";
    ASSERT_EQ(SCM_RIGHTS, rc->cmsg_type);
    int fd;
    memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    EXPECT_EQ(3, sp_write(fd, "fdx", 3, SP_FOREVER)) << "the passed fd works";
    char got[4];
    EXPECT_EQ(3, sp_read(passed.r, got, sizeof got, sp_deadline_in(5 * kSec)));
    EXPECT_EQ(0, memcmp(got, "fdx", 3));
    close(fd);
  });
  close(sv[0]);
  close(sv[1]);
}

TEST_P(PipeTest, PollFdReadiness) {
  Pipe p;
  RunInFiber([&] {
    EXPECT_EQ(POLLOUT, sp_poll_fd(p.w, POLLOUT, SP_FOREVER) & POLLOUT);
    EXPECT_EQ(-EAGAIN, sp_poll_fd(p.r, POLLIN, 0)) << "nothing to read yet";
    int64_t written_at = 0;
    sp_fiber_t wf;
    ASSERT_EQ(0, Spawn(nullptr, &wf, [&] {
      sp_sleep_for(20 * kMs);
      written_at = sp_now();
      EXPECT_EQ(1, write(p.w, "z", 1));
    }));
    int ev = sp_poll_fd(p.r, POLLIN, sp_deadline_in(5 * kSec));
    int64_t polled_at = sp_now();
    EXPECT_EQ(POLLIN, ev & POLLIN) << sp_strerror(ev);
    ASSERT_EQ(0, sp_join(wf, nullptr, SP_FOREVER));
    EXPECT_GE(polled_at, written_at) << "ready before the write";
    char c;
    EXPECT_EQ(1, sp_read(p.r, &c, 1, 0)) << "poll consumed the byte";
    close(p.w);
    p.w = -1;
    ev = sp_poll_fd(p.r, POLLIN, sp_deadline_in(5 * kSec));
    EXPECT_TRUE(ev > 0 && (ev & POLLHUP)) << "writer closed: " << ev;
    EXPECT_EQ(0, sp_read(p.r, &c, 1, SP_FOREVER)) << "end of file";
  });
}

// Foreign threads block in the same calls while fibers keep running.
TEST_P(PipeTest, ForeignThreadsBlockAndTransfer) {
  Pipe a, b;
  const size_t n = 1 << 20;
  ssize_t small = 0;
  char sbuf[8] = {0};
  Joined reader([&] { small = sp_read(a.r, sbuf, sizeof sbuf, sp_deadline_in(20 * kSec)); });
  Sum sent, got;
  Joined writer([&] {
    std::vector<uint8_t> data(n);
    FillPattern(data.data(), n, 7, 0);
    sent.Add(data.data(), n);
    size_t done = 0;
    EXPECT_EQ(0, sp_write_all(b.w, data.data(), n, sp_deadline_in(20 * kSec), &done));  // > pipe
    EXPECT_EQ(n, done);
  });
  RunInFiber([&] {
    sp_sleep_for(30 * kMs);
    EXPECT_EQ(3, sp_write(a.w, "xyz", 3, SP_FOREVER));
    std::vector<uint8_t> buf(n);
    size_t done = 0;
    EXPECT_EQ(0, sp_read_exact(b.r, buf.data(), n, sp_deadline_in(20 * kSec), &done));
    EXPECT_EQ(n, done);
    EXPECT_EQ(-1, CheckPattern(buf.data(), n, 7, 0));
    got.Add(buf.data(), n);
  });
  reader.join();
  writer.join();
  EXPECT_EQ(3, small);
  EXPECT_EQ(0, memcmp(sbuf, "xyz", 3));
  EXPECT_TRUE(sent == got);
  // a deadline on a foreign thread
  char c;
  int64_t dl = sp_deadline_in(20 * kMs);
  EXPECT_EQ(-ETIMEDOUT, sp_read(a.r, &c, 1, dl));
  EXPECT_GE(sp_now(), dl);
  EXPECT_EQ(-EAGAIN, sp_read(a.r, &c, 1, 0));
}

SP_INSTANTIATE_WORKERS(PipeTest);

}  // namespace
