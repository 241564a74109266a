// file_test.cc: file I/O through io/ on a temp file: sequential transfers
// that use and move the file position, positioned and vectored ones,
// fsync and statx, read_exact at end of file, error codes, and many fibers
// reading at random offsets at once. Run from fibers and from the test's own
// (foreign) thread; BUILD runs it on io_uring and on the epoll fallback.
#include <sys/mman.h>
#include <sys/stat.h>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class FileTest : public sptest::RtTest {};

struct TmpFile {
  std::string path = TmpPath("file");
  ~TmpFile() { unlink(path.c_str()); }
};

// Reads the whole file with sp_pread and checks it against want.
void ExpectContent(int fd, const std::vector<uint8_t> &want) {
  std::vector<uint8_t> got(want.size() + 100, 0xEE);
  ssize_t n = sp_pread(fd, got.data(), got.size(), 0, SP_FOREVER);
  ASSERT_EQ((ssize_t)want.size(), n) << sp_strerror((int)n);
  EXPECT_EQ(0, memcmp(got.data(), want.data(), want.size()));
}

// The whole sequence of calls, from a fiber or from a foreign thread.
void RoundTrip(const std::string &path) {
  int fd = sp_open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << sp_strerror(fd);
  const size_t n = 64 * 1024;
  std::vector<uint8_t> want(2 * n);
  FillPattern(want.data(), want.size(), 1, 0);
  // sp_write uses and advances the file position, as write(2)
  ASSERT_EQ((ssize_t)n, sp_write(fd, want.data(), n, SP_FOREVER));
  ASSERT_EQ((ssize_t)n, sp_write(fd, want.data() + n, n, SP_FOREVER));
  EXPECT_EQ((off_t)(2 * n), lseek(fd, 0, SEEK_CUR));
  // positioned write inside, leaving the position alone
  FillPattern(want.data() + 1000, 5000, 2, 0);
  ASSERT_EQ(5000, sp_pwrite(fd, want.data() + 1000, 5000, 1000, SP_FOREVER));
  EXPECT_EQ((off_t)(2 * n), lseek(fd, 0, SEEK_CUR)) << "pwrite moved the position";
  ExpectContent(fd, want);
  EXPECT_EQ((off_t)(2 * n), lseek(fd, 0, SEEK_CUR)) << "pread moved the position";
  // sequential reads from the start, to end of file (0)
  ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
  Sum got, exp;
  exp.Add(want.data(), want.size());
  std::vector<uint8_t> buf(7777);
  for (;;) {
    ssize_t r = sp_read(fd, buf.data(), buf.size(), SP_FOREVER);
    ASSERT_GE(r, 0) << sp_strerror((int)r);
    if (r == 0) break;
    got.Add(buf.data(), r);
  }
  EXPECT_TRUE(got == exp) << "read " << got.n << " bytes of " << exp.n;
  // writev at the end of file (empty element included), readv it back
  uint8_t a[100], b[7000], c[1];
  FillPattern(a, sizeof a, 3, 0);
  FillPattern(b, sizeof b, 4, 0);
  c[0] = 0x5A;
  iovec wv[4] = {{a, sizeof a}, {nullptr, 0}, {b, sizeof b}, {c, 1}};
  ASSERT_EQ((ssize_t)(sizeof a + sizeof b + 1), sp_writev(fd, wv, 4, SP_FOREVER));
  ASSERT_EQ((off_t)(2 * n), lseek(fd, 2 * n, SEEK_SET));
  uint8_t ra[100], rb[7000], rc[5];
  memset(rc, 0, sizeof rc);
  iovec rv[3] = {{ra, sizeof ra}, {rb, sizeof rb}, {rc, sizeof rc}};
  ASSERT_EQ((ssize_t)(sizeof a + sizeof b + 1), sp_readv(fd, rv, 3, SP_FOREVER));
  EXPECT_EQ(0, memcmp(ra, a, sizeof a));
  EXPECT_EQ(0, memcmp(rb, b, sizeof b));
  EXPECT_EQ(0x5A, rc[0]);
  EXPECT_EQ(0, sp_fsync(fd));
  const uint64_t size = 2 * n + sizeof a + sizeof b + 1;
  struct statx st;
  memset(&st, 0, sizeof st);
  ASSERT_EQ(0, sp_statx(AT_FDCWD, path.c_str(), 0, STATX_SIZE | STATX_TYPE, &st));
  EXPECT_TRUE(st.stx_mask & STATX_SIZE);
  EXPECT_EQ(size, st.stx_size);
  EXPECT_TRUE(S_ISREG(st.stx_mode));
  memset(&st, 0, sizeof st);
  ASSERT_EQ(0, sp_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st));
  EXPECT_EQ(size, st.stx_size);
  struct stat mine;
  ASSERT_EQ(0, fstat(fd, &mine));
  EXPECT_EQ(0, sp_close(fd));
  // The number may already be reused: workers create their rings and
  // eventfds on their own threads, maybe just now. So the check is that fd
  // no longer names this file, not that the number is free.
  struct stat now;
  if (fstat(fd, &now) == 0) {
    EXPECT_FALSE(now.st_dev == mine.st_dev && now.st_ino == mine.st_ino) << "fd still open after sp_close";
  }
}

TEST_P(FileTest, RoundTripFromFiber) {
  TmpFile tf;
  RunInFiber([&] { RoundTrip(tf.path); });
}

TEST_P(FileTest, RoundTripFromForeignThread) {
  TmpFile tf;
  RoundTrip(tf.path);
}

TEST_P(FileTest, ReadExactStopsAtEndOfFile) {
  TmpFile tf;
  RunInFiber([&] {
    int fd = sp_open(tf.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    std::vector<uint8_t> data(3000), buf(4096, 0xEE);
    FillPattern(data.data(), data.size(), 5, 0);
    size_t done = 12345;
    ASSERT_EQ(0, sp_write_all(fd, data.data(), 1000, SP_FOREVER, &done));
    EXPECT_EQ(1000u, done);
    ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
    done = 12345;
    EXPECT_EQ(-ENODATA, sp_read_exact(fd, buf.data(), buf.size(), SP_FOREVER, &done));
    EXPECT_EQ(1000u, done) << "*done must count the bytes read before end of file";
    EXPECT_EQ(0, memcmp(buf.data(), data.data(), 1000));
    EXPECT_EQ(0xEE, buf[1000]) << "wrote past the bytes read";
    EXPECT_EQ(-ENODATA, sp_read_exact(fd, buf.data(), 10, SP_FOREVER, nullptr)) << "at EOF";
    ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
    done = 12345;
    EXPECT_EQ(0, sp_read_exact(fd, buf.data(), 1000, SP_FOREVER, &done)) << "exactly to EOF";
    EXPECT_EQ(1000u, done);
    done = 12345;
    EXPECT_EQ(0, sp_read_exact(fd, buf.data(), 0, SP_FOREVER, &done)) << "nothing to read";
    EXPECT_EQ(0u, done);
    // write_all of more, then read it back exactly
    ASSERT_EQ(0, sp_write_all(fd, data.data() + 1000, 2000, SP_FOREVER, nullptr));
    ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
    ASSERT_EQ(0, sp_read_exact(fd, buf.data(), 3000, SP_FOREVER, &done));
    EXPECT_EQ(3000u, done);
    EXPECT_EQ(-1, CheckPattern(buf.data(), 3000, 5, 0));
    EXPECT_EQ(0, sp_close(fd));
  });
}

// Every call that takes an fd, with fd -1.
struct BadFdCall {
  const char *name;
  long (*call)();
};
char g_buf[16];
iovec g_iov = {g_buf, sizeof g_buf};
const BadFdCall kBadFdCalls[] = {
    {"sp_read", [] { return (long)sp_read(-1, g_buf, sizeof g_buf, SP_FOREVER); }},
    {"sp_write", [] { return (long)sp_write(-1, g_buf, sizeof g_buf, SP_FOREVER); }},
    {"sp_pread", [] { return (long)sp_pread(-1, g_buf, sizeof g_buf, 0, SP_FOREVER); }},
    {"sp_pwrite", [] { return (long)sp_pwrite(-1, g_buf, sizeof g_buf, 0, SP_FOREVER); }},
    {"sp_readv", [] { return (long)sp_readv(-1, &g_iov, 1, SP_FOREVER); }},
    {"sp_writev", [] { return (long)sp_writev(-1, &g_iov, 1, SP_FOREVER); }},
    {"sp_read_exact", [] { return (long)sp_read_exact(-1, g_buf, 4, SP_FOREVER, nullptr); }},
    {"sp_fsync", [] { return (long)sp_fsync(-1); }},
    {"sp_close", [] { return (long)sp_close(-1); }},
    {"sp_statx", [] {
       struct statx st;
       return (long)sp_statx(-1, "relative", 0, STATX_SIZE, &st);
     }},
};

TEST_P(FileTest, BadFdIsEbadfFromFiber) {
  RunInFiber([] {
    for (const auto &c : kBadFdCalls) EXPECT_EQ(-EBADF, c.call()) << c.name;
  });
}

// Each call on a thread of its own, so one that hangs fails alone.
TEST(FileForeignTest, BadFdIsEbadfNotAHang) {
  for (const auto &c : kBadFdCalls) {
    auto res = std::make_shared<std::atomic<long>>(1);
    auto call = c.call;
    bool finished = FinishesWithin(2, [res, call] { *res = call(); });
    EXPECT_TRUE(finished) << c.name << "(-1, ...) on a foreign thread never returns";
    if (finished) {
      EXPECT_EQ(-EBADF, res->load()) << c.name;
    }
  }
}

void ExpectErrors(const std::string &dir) {
  char b[16] = {};  // written to read-only fds: still defined bytes (valgrind)
  size_t done = 99;
  struct statx st;
  EXPECT_EQ(-ENOENT, sp_open((dir + "/missing/file").c_str(), O_RDONLY, 0));
  EXPECT_EQ(-ENOENT, sp_statx(AT_FDCWD, (dir + "/missing").c_str(), 0, STATX_SIZE, &st));
  std::string p = TmpPath("err");
  int fd = sp_open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0) << sp_strerror(fd);
  EXPECT_EQ(-EEXIST, sp_open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
  EXPECT_EQ(-EBADF, sp_read(fd, b, sizeof b, SP_FOREVER)) << "write-only fd";
  EXPECT_EQ(0, sp_close(fd));
  fd = sp_open(p.c_str(), O_RDONLY, 0);
  ASSERT_GE(fd, 0) << sp_strerror(fd);
  EXPECT_EQ(-EBADF, sp_write(fd, b, sizeof b, SP_FOREVER)) << "read-only fd";
  EXPECT_EQ(-EBADF, sp_write_all(fd, b, sizeof b, SP_FOREVER, &done));
  EXPECT_EQ(0u, done);
  EXPECT_EQ(-EINVAL, sp_pread(fd, b, sizeof b, -1, SP_FOREVER)) << "negative offset";
  EXPECT_EQ(0, sp_close(fd));
  fd = sp_open(dir.c_str(), O_RDONLY | O_DIRECTORY, 0);
  ASSERT_GE(fd, 0) << sp_strerror(fd);
  EXPECT_EQ(-EISDIR, sp_read(fd, b, sizeof b, SP_FOREVER));
  EXPECT_EQ(0, sp_close(fd));
  unlink(p.c_str());
}

TEST_P(FileTest, ErrorCodesFromFiber) {
  RunInFiber([] { ExpectErrors(TmpDir()); });
}

TEST_P(FileTest, ErrorCodesFromForeignThread) { ExpectErrors(TmpDir()); }

// Lengths are size_t: one of 4 GiB or more is not cut to 32 bits (4 GiB
// would become 0, a false end of file). The buffer is reserved address
// space; only its first page is touched.
TEST_P(FileTest, LengthsOfFourGibAndMoreAreNotTruncated) {
#if defined(SP_HAVE_TSAN)
  GTEST_SKIP() << "TSan shadows every mapped byte";
#endif
  const size_t huge = (size_t)1 << 32;
  void *m = mmap(nullptr, huge + 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) GTEST_SKIP() << "no 4 GiB of address space";
  char *buf = static_cast<char *>(m);
  TmpFile tf;
  RunInFiber([&] {
    int fd = sp_open(tf.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    ASSERT_EQ(10, sp_write(fd, "0123456789", 10, SP_FOREVER));
    EXPECT_EQ(10, sp_pread(fd, buf, huge, 0, SP_FOREVER)) << "len 1 << 32";
    EXPECT_EQ(10, sp_pread(fd, buf, huge + 3, 0, SP_FOREVER)) << "len (1 << 32) + 3";
    ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
    EXPECT_EQ(10, sp_read(fd, buf, huge, SP_FOREVER));
    ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
    size_t done = 0;
    EXPECT_EQ(-ENODATA, sp_read_exact(fd, buf, huge, SP_FOREVER, &done));
    EXPECT_EQ(10u, done);
    EXPECT_EQ(0, memcmp(buf, "0123456789", 10));
    EXPECT_EQ(0, sp_close(fd));
  });
  munmap(m, huge + 4096);
}

// Many fibers pread 4 KiB at random offsets (some across end of file) and
// check every byte.
TEST_P(FileTest, ConcurrentRandomPreads) {
  TmpFile tf;
  const size_t size = 8 << 20;
  const int fibers = 32;
  const long reads = sptest::Scaled(200);
  std::atomic<long> checked{0};
  RunInFiber([&] {
    int fd = sp_open(tf.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    std::vector<uint8_t> chunk(1 << 20);
    for (size_t off = 0; off < size; off += chunk.size()) {
      FillPattern(chunk.data(), chunk.size(), 9, off);
      ASSERT_EQ(0, sp_write_all(fd, chunk.data(), chunk.size(), SP_FOREVER, nullptr));
    }
    std::vector<sp_fiber_t> fs(fibers);
    for (int i = 0; i < fibers; i++)
      ASSERT_EQ(0, Spawn(nullptr, &fs[i], [&, i] {
        uint64_t x = 0x1234567 + i;
        std::vector<uint8_t> buf(4096);
        for (long k = 0; k < reads; k++) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          size_t off = (k % 16 == 0) ? size - 100 + x % 100 : x % (size - 4096);
          size_t want = std::min<size_t>(4096, size - off);
          ssize_t n = sp_pread(fd, buf.data(), buf.size(), (off_t)off, SP_FOREVER);
          ASSERT_EQ((ssize_t)want, n) << "at " << off << ": " << sp_strerror((int)n);
          ASSERT_EQ(-1, CheckPattern(buf.data(), want, 9, off)) << "at " << off;
          checked++;
        }
      }));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_close(fd));
  });
  EXPECT_EQ(fibers * reads, checked.load());
}

// A fiber reading a cached file in a tight loop (reads served inline,
// without parking: io/ops.c O3) still lets the other fibers of its worker
// run: on one worker, a fiber spawned before the loop runs long before the
// loop's 20,000 reads are done.
TEST(FileFairnessTest, CachedReadLoopLetsOthersRun) {
  sp_runtime_t *rt = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, rt);
  TmpFile tf;
  std::atomic<bool> other_ran{false};
  long seen_at = -1;
  sp_fiber_t f;
  ASSERT_EQ(0, Spawn(rt, &f, [&] {
    int fd = sp_open(tf.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << sp_strerror(fd);
    std::vector<uint8_t> buf(4096, 7);
    ASSERT_EQ(0, sp_write_all(fd, buf.data(), buf.size(), SP_FOREVER, nullptr));
    sp_fiber_t other;
    ASSERT_EQ(0, Spawn(nullptr, &other, [&] { other_ran = true; }));
    for (long k = 0; k < 20000 && seen_at < 0; k++) {
      ASSERT_EQ(4096, sp_pread(fd, buf.data(), buf.size(), 0, SP_FOREVER));
      if (other_ran) seen_at = k;
    }
    ASSERT_EQ(0, sp_join(other, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_close(fd));
  }));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_GE(seen_at, 0) << "the other fiber never ran during 20,000 cached reads";
  EXPECT_LT(seen_at, 1000);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

SP_INSTANTIATE_WORKERS(FileTest);

}  // namespace
