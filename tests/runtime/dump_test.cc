// dump_test.cc: sp_runtime_dump (runtime/dump.c) shows every fiber with
// what it waits on, for how long, and where it was spawned.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>

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

struct World {
  sp_chan_t *ch = nullptr;
  sp_mutex_t mu = {};
  sp_fiber_t sleeper{};
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
  ASSERT_EQ(0, sp_spawn(rt, &w.sleeper, [](void *) -> void * {
              sp_sleep_for(800000000);  // 0.8 s
              return nullptr;
            }, nullptr, &o2));
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
  usleep(100000);  // all four park
  int count = 0;
  std::string d = DumpToString(rt, &count);
  EXPECT_EQ(4, count) << d;
  if (getenv("SP_SHOW_DUMP")) fputs(d.c_str(), stderr);
  char buf[64];
  snprintf(buf, sizeof buf, "chan recv %p", (void *)w.ch);
  EXPECT_NE(std::string::npos, d.find("\"reader\" parked: " + std::string(buf))) << d;
  snprintf(buf, sizeof buf, "mutex lock %p", (void *)&w.mu);
  EXPECT_NE(std::string::npos, d.find("\"locker\" parked: " + std::string(buf))) << d;
  EXPECT_NE(std::string::npos, d.find("\"sleeper\" parked: sleep until +")) << d;
  EXPECT_NE(std::string::npos,
            d.find("\"joiner\" parked: join fiber " + std::to_string(w.sleeper.id)))
      << d;
  EXPECT_NE(std::string::npos, d.find("spawned at tests/runtime/dump_test.cc:")) << d;
  // parked fibers come with symbolized backtraces (backtrace_linux.c): the
  // reader's passes through the channel code and back into this file
  size_t at = d.find("\"reader\" parked");
  size_t next = d.find("  fiber ", at + 1);
  std::string rtrace = d.substr(at, next == std::string::npos ? std::string::npos : next - at);
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

  ASSERT_EQ(0, sp_chan_close(w.ch));
  ASSERT_EQ(0, sp_mutex_unlock(&w.mu));
  for (sp_fiber_t f : {reader, locker, joiner}) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-EINVAL, sp_runtime_dump(nullptr, 1));
  EXPECT_EQ(-EINVAL, sp_runtime_dump(rt, -1));
  EXPECT_EQ(0, sp_chan_free(w.ch));
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// SIGQUIT dumps every runtime (opt-in) and the process keeps running.
TEST(DumpTest, SigquitDumpsAndKeepsRunning) {
  sp_runtime_t *rt = sptest::NewRuntime(1, [](sp_config_t &c) { c.dump_on_sigquit = 1; });
  ASSERT_NE(nullptr, rt);
  sp_fiber_t f;
  sp_spawn_opts_t o = {"napper", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
              sp_sleep_for(300000000);
              return nullptr;
            }, nullptr, &o));
  usleep(20000);
  testing::internal::CaptureStderr();
  ASSERT_EQ(0, raise(SIGQUIT));
  usleep(100000);  // the dump thread writes
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("SIGQUIT: dump of every runtime")) << err;
  EXPECT_NE(std::string::npos, err.find("\"napper\" parked: sleep until")) << err;
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
