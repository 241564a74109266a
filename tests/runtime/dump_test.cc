// dump_test.cc: sp_runtime_dump (runtime/dump.c) shows every fiber with
// what it waits on, for how long, and where it was spawned.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"

namespace {

std::string DumpToString(sp_runtime_t *rt, int *count) {
  FILE *f = tmpfile();
  *count = sp_runtime_dump(rt, fileno(f));
  fflush(f);
  rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

constexpr int64_t kPollCap = 10000000000;  // 10 s

bool Has(const std::string &s, const std::string &x) { return s.find(x) != std::string::npos; }

// The lines of fiber `name` in dump d: its line and its backtrace.
std::string FiberBlock(const std::string &d, const std::string &name) {
  size_t at = d.find("\"" + name + "\" ");
  if (at == std::string::npos) return "";
  size_t next = d.find("  fiber ", at + 1);
  return d.substr(at, next == std::string::npos ? std::string::npos : next - at);
}

struct World {
  sp_chan_t *ch = nullptr;
  sp_mutex_t mu = {};
  sp_fiber_t sleeper{};
  std::atomic<bool> stop{false};
};

TEST(DumpTest, ShowsWaitReasonsAndSpawnSites) {
  sp_runtime_t *rt = sptest::NewRuntime(2);
  ASSERT_NE(nullptr, rt);
  World w;
  ASSERT_EQ(0, sp_chan_make(&w.ch, sizeof(int), 0));
  ASSERT_EQ(0, sp_mutex_lock(&w.mu));  // held by this thread: the locker waits
  sp_spawn_opts_t o1 = {"reader", 0, 0}, o2 = {"sleeper", 0, 0}, o3 = {"locker", 0, 0},
                  o4 = {"joiner", 0, 0};
  sp_fiber_t reader, locker, joiner;
  ASSERT_EQ(0, sp_spawn(rt, &reader, [](void *p) -> void * {
              int v;
              return (void *)(intptr_t)sp_chan_recv(static_cast<World *>(p)->ch, &v, SP_FOREVER);
            }, &w, &o1));
  ASSERT_EQ(0, sp_spawn(rt, &w.sleeper, [](void *p) -> void * {
              auto *w = static_cast<World *>(p);
              while (!w->stop) sp_sleep_for(200000000);  // 0.2 s naps until told to stop
              return nullptr;
            }, &w, &o2));
  ASSERT_EQ(0, sp_spawn(rt, &locker, [](void *p) -> void * {
              auto *w = static_cast<World *>(p);
              sp_mutex_lock(&w->mu);
              sp_mutex_unlock(&w->mu);
              return nullptr;
            }, &w, &o3));
  ASSERT_EQ(0, sp_spawn(rt, &joiner, [](void *p) -> void * {
              return (void *)(intptr_t)sp_join(static_cast<World *>(p)->sleeper, nullptr,
                                               SP_FOREVER);
            }, &w, &o4));
  char buf[64];
  snprintf(buf, sizeof buf, "chan recv %p", (void *)w.ch);
  const std::string reading = "\"reader\" parked: " + std::string(buf);
  snprintf(buf, sizeof buf, "mutex lock %p", (void *)&w.mu);
  const std::string locking = "\"locker\" parked: " + std::string(buf);
  const std::string sleeping = "\"sleeper\" parked: sleep until +";
  const std::string joining = "\"joiner\" parked: join fiber " + std::to_string(w.sleeper.id);
  // dump until all four show parked, the reader with its backtrace (taken
  // only once it is fully parked); 10 s cap, then the checks below fail
  int count = 0;
  std::string d;
  for (int64_t t0 = sp_now();; usleep(2000)) {
    d = DumpToString(rt, &count);
    if ((count == 4 && Has(d, reading) && Has(d, locking) && Has(d, sleeping) &&
         Has(d, joining) && Has(FiberBlock(d, "reader"), "      #0 0x")) ||
        sp_now() - t0 > kPollCap)
      break;
  }
  EXPECT_EQ(4, count) << d;
  if (getenv("SP_SHOW_DUMP")) fputs(d.c_str(), stderr);
  EXPECT_TRUE(Has(d, reading)) << d;
  EXPECT_TRUE(Has(d, locking)) << d;
  EXPECT_TRUE(Has(d, sleeping)) << d;
  EXPECT_TRUE(Has(d, joining)) << d;
  EXPECT_NE(std::string::npos, d.find("spawned at tests/runtime/dump_test.cc:")) << d;
  // parked fibers come with symbolized backtraces (backtrace_linux.c): the
  // reader's passes through the channel code and back into this file
  std::string rtrace = FiberBlock(d, "reader");
  // (function names always; file:line where libdw finds the line table:
  // gcc's DWARF here, not clang 14's)
  auto has = [&](const char *x) { return rtrace.find(x) != std::string::npos; };
  EXPECT_TRUE(has("sp_chan_recv") || has("chan_op") || has(" (sync/chan.c:")) << rtrace;
  EXPECT_TRUE(has("DumpTest") || has("tests/runtime/dump_test.cc:")) << rtrace;
#ifndef __clang__
  EXPECT_TRUE(has(" (sync/chan.c:") && has("tests/runtime/dump_test.cc:")) << rtrace;
#endif
  EXPECT_NE(std::string::npos, rtrace.find("      #0 0x")) << rtrace;
  EXPECT_NE(std::string::npos, d.find("2 workers, 4 fibers live")) << d;
  EXPECT_NE(std::string::npos, d.find("  worker 1: ")) << d;
  // it reports how long they have waited (the coarse clock ticks every few ms)
  EXPECT_NE(std::string::npos, d.find(" ms (worker ")) << d;

  w.stop = true;
  ASSERT_EQ(0, sp_chan_close(w.ch));
  ASSERT_EQ(0, sp_mutex_unlock(&w.mu));
  for (sp_fiber_t f : {reader, locker, joiner}) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-EINVAL, sp_runtime_dump(nullptr, 1));
  EXPECT_EQ(-EINVAL, sp_runtime_dump(rt, -1));
  EXPECT_EQ(0, sp_chan_free(w.ch));
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// Points fd 2 at a temporary file while it lives; Read() gives what was
// written so far.
struct StderrToFile {
  FILE *f = tmpfile();
  int saved = dup(2);
  StderrToFile() {
    fflush(stderr);
    dup2(fileno(f), 2);
  }
  ~StderrToFile() {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
  }
  std::string Read() {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = pread(fileno(f), buf, sizeof buf, (off_t)s.size())) > 0) s.append(buf, (size_t)n);
    return s;
  }
};

// Complete lines of s that contain x.
int CountLines(const std::string &s, const std::string &x) {
  int n = 0;
  for (size_t at = 0, end; (end = s.find('\n', at)) != std::string::npos; at = end + 1)
    n += s.substr(at, end - at).find(x) != std::string::npos;
  return n;
}

// SIGQUIT dumps every runtime (opt-in) and the process keeps running.
TEST(DumpTest, SigquitDumpsAndKeepsRunning) {
  sp_runtime_t *rt = sptest::NewRuntime(1, [](sp_config_t &c) { c.dump_on_sigquit = 1; });
  ASSERT_NE(nullptr, rt);
  static std::atomic<bool> stop;
  stop = false;
  sp_fiber_t f;
  sp_spawn_opts_t o = {"napper", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
              while (!stop) sp_sleep_for(100000000);  // 0.1 s naps until told to stop
              return nullptr;
            }, nullptr, &o));
  const std::string napping = "\"napper\" parked: sleep until";
  int count;
  for (int64_t t0 = sp_now(); !Has(DumpToString(rt, &count), napping) && sp_now() - t0 < kPollCap;)
    usleep(2000);  // it naps
  std::string err;
  {
    StderrToFile cap;
    ASSERT_EQ(0, raise(SIGQUIT));
    // the dump thread writes; poll (10 s cap). A dump that caught the
    // napper between two naps asks for another.
    int awake = 0;
    for (int64_t t0 = sp_now(); sp_now() - t0 < kPollCap; usleep(2000)) {
      err = cap.Read();
      if (Has(err, "SIGQUIT: dump of every runtime") && Has(err, napping)) break;
      int n = CountLines(err, "\"napper\" ");
      if (n > awake) awake = n, raise(SIGQUIT);
    }
  }
  EXPECT_TRUE(Has(err, "SIGQUIT: dump of every runtime")) << err;
  EXPECT_TRUE(Has(err, napping)) << err;
  stop = true;
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
