// blocking_fd_test.cc: descriptors in blocking mode (as pipe(2) and
// socketpair(2) make them, and as sp_accept and sp_dial return sockets)
// still park only the calling fiber and honour deadlines: a worker thread
// never sits in a read(2) or write(2) that can block. Each test unblocks
// what a stuck worker waits for, so a failure is reported, not a hang.
#include <sys/socket.h>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class BlockingFdTest : public sptest::RtTest {};

// Two fibers wait for a byte each and one byte comes: the loser must stay
// parked, not block its worker in read(2); a probe fiber must still run.
TEST_P(BlockingFdTest, CompetingReadersDoNotBlockTheWorker) {
  for (int sockets = 0; sockets < 2; sockets++) {
    int fds[2];
    ASSERT_EQ(0, sockets ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                         : pipe2(fds, O_CLOEXEC));
    std::atomic<int> got{0};
    sp_fiber_t r[2];
    uint64_t p0 = Parks();
    for (auto &f : r)
      ASSERT_EQ(0, Spawn(rt_, &f, [&] {
        char c;
        if (sp_read(fds[0], &c, 1, sp_deadline_in(20 * kSec)) == 1) got++;
      }));
    AwaitParks(p0 + 2);
    ASSERT_EQ(1, write(fds[1], "a", 1));
    usleep(50000);  // one reader takes it
    sp_fiber_t probe;
    ASSERT_EQ(0, Spawn(rt_, &probe, [] {}));
    bool rescued = !JoinOrRescue(probe, 3, sockets ? "socket: a worker is stuck in read(2)"
                                                   : "pipe: a worker is stuck in read(2)",
                                 [&] { EXPECT_EQ(1, write(fds[1], "b", 1)); });
    if (!rescued) {
      EXPECT_EQ(1, write(fds[1], "b", 1));
    }
    for (auto &f : r) EXPECT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(2, got.load());
    close(fds[0]);
    close(fds[1]);
  }
}

// A write larger than the pipe, with the reader a fiber of the same
// runtime: the writer parks when the pipe is full, the reader drains it.
TEST_P(BlockingFdTest, LargeWriteParksUntilAFiberDrains) {
  int p[2];
  ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
  const size_t n = 1 << 20;
  std::vector<uint8_t> out(n), in(n);
  FillPattern(out.data(), n, 50, 0);
  sp_fiber_t w, r;
  ASSERT_EQ(0, Spawn(rt_, &w, [&] {
    EXPECT_EQ(0, sp_write_all(p[1], out.data(), n, sp_deadline_in(20 * kSec), nullptr));
  }));
  ASSERT_EQ(0, Spawn(rt_, &r, [&] {
    size_t done = 0;
    EXPECT_EQ(0, sp_read_exact(p[0], in.data(), n, sp_deadline_in(20 * kSec), &done));
    EXPECT_EQ(n, done);
  }));
  if (!JoinOrRescue(r, 5, "the reader never ran: the writer's worker is stuck in write(2)", [&] {
        // drain until the writer is done, then end of file for the reader
        ASSERT_EQ(0, fcntl(p[0], F_SETFL, O_NONBLOCK));
        std::vector<uint8_t> sink(1 << 16);
        while (sp_join(w, nullptr, 0) != 0)
          if (read(p[0], sink.data(), sink.size()) <= 0) usleep(1000);
        close(p[1]);
        p[1] = -1;
      })) {
    close(p[0]);
    return;
  }
  ASSERT_EQ(0, sp_join(w, nullptr, SP_FOREVER));
  EXPECT_EQ(-1, CheckPattern(in.data(), n, 50, 0));
  close(p[0]);
  close(p[1]);
}

// write_all with a deadline into a blocking pipe that has one page of
// room: -ETIMEDOUT, and *done is exactly the number of bytes that went in.
TEST_P(BlockingFdTest, WriteAllDeadlineOnFullPipeCountsExactly) {
  int p[2];
  ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
  ASSERT_EQ(0, fcntl(p[1], F_SETFL, O_NONBLOCK));
  std::vector<uint8_t> fill(1 << 16, 0xFF);
  size_t filled = 0;
  for (ssize_t m; (m = write(p[1], fill.data(), fill.size())) > 0;) filled += m;
  ASSERT_EQ(0, fcntl(p[1], F_SETFL, 0));  // blocking again
  uint8_t page[4096];
  ASSERT_EQ(4096, read(p[0], page, sizeof page));  // room for one page
  filled -= 4096;
  const size_t n = 1 << 20;
  std::vector<uint8_t> out(n);
  FillPattern(out.data(), n, 52, 0);
  int rc = 1;
  size_t done = 0;
  int64_t dl = 0, ret_at = 0;
  sp_fiber_t w;
  ASSERT_EQ(0, Spawn(rt_, &w, [&] {
    dl = sp_deadline_in(100 * kMs);
    rc = sp_write_all(p[1], out.data(), n, dl, &done);
    ret_at = sp_now();
  }));
  std::atomic<bool> stop{false};
  Joined drainer;
  JoinOrRescue(w, 5, "write_all blocked in write(2) past its deadline", [&] {
    drainer = Joined([&] {  // read until the stuck write(2) can finish
      ASSERT_EQ(0, fcntl(p[0], F_SETFL, O_NONBLOCK));
      for (std::vector<uint8_t> sink(1 << 16); !stop;)
        if (read(p[0], sink.data(), sink.size()) <= 0) usleep(1000);
    });
  });
  stop = true;
  if (drainer.joinable()) return;  // the pipe's content is gone; reported above
  EXPECT_EQ(-ETIMEDOUT, rc) << sp_strerror(rc);
  EXPECT_GE(ret_at, dl);
  EXPECT_GT(done, 0u) << "a page of room, yet nothing went in";
  EXPECT_LT(done, n);
  // the pipe holds the fill, then exactly `done` bytes of the stream
  ASSERT_EQ(0, fcntl(p[0], F_SETFL, O_NONBLOCK));
  std::vector<uint8_t> rest(filled + n);
  size_t k = 0;
  for (ssize_t m; (m = read(p[0], rest.data() + k, rest.size() - k)) > 0;) k += m;
  ASSERT_EQ(filled + done, k) << "*done is not what the pipe received";
  EXPECT_EQ(-1, CheckPattern(rest.data() + filled, done, 52, 0));
  close(p[0]);
  close(p[1]);
}

SP_INSTANTIATE_WORKERS(BlockingFdTest);

}  // namespace
