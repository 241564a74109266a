// debug_test.cc: debug mode's reports (runtime/watchdog.c, dump.c): slow
// fibers and fibers never joined.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <string>

#include "tests/support/rt_fixture.h"

namespace {

sp_runtime_t *DebugRt(int64_t slow_ns) {
  return sptest::NewRuntime(2, [slow_ns](sp_config_t &c) {
    c.debug = 1;
    c.slow_fiber_ns = slow_ns;
  });
}

TEST(DebugTest, SlowFiberIsReportedOnce) {
  testing::internal::CaptureStderr();
  sp_runtime_t *rt = DebugRt(20000000);  // 20 ms
  sp_fiber_t f;
  sp_spawn_opts_t o = {"hog", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
              int64_t until = sp_now() + 300000000;  // 300 ms without a switch point
              while (sp_now() < until) {
              }
              return nullptr;
            }, nullptr, &o));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  size_t at = err.find("\"hog\" (spawned at tests/runtime/debug_test.cc:");
  ASSERT_NE(std::string::npos, at) << err;
  EXPECT_NE(std::string::npos, err.find("without reaching a switch point")) << err;
  EXPECT_EQ(std::string::npos, err.find("\"hog\"", at + 1)) << "reported twice: " << err;
}

TEST(DebugTest, FibersThatYieldAreNotReported) {
  testing::internal::CaptureStderr();
  // generous threshold: the OS may preempt a worker between two switch
  // points on a loaded machine, which the watchdog cannot tell apart
  sp_runtime_t *rt = DebugRt(300000000);
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
              int64_t until = sp_now() + 100000000;
              while (sp_now() < until) sp_sleep_for(1000000);  // switch points every 1 ms
              return nullptr;
            }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::string::npos, err.find("without reaching a switch point")) << err;
}

TEST(DebugTest, NeverJoinedFibersAreListedAtDestroy) {
  testing::internal::CaptureStderr();
  sp_runtime_t *rt = DebugRt(0);
  sp_fiber_t forgotten, joined;
  sp_spawn_opts_t o = {"forgotten", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &forgotten, [](void *) -> void * { return nullptr; }, nullptr, &o));
  ASSERT_EQ(0, sp_spawn(rt, &joined, [](void *) -> void * { return nullptr; }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(joined, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("\"forgotten\" (spawned at tests/runtime/debug_test.cc:"))
      << err;
  EXPECT_NE(std::string::npos, err.find("never joined or detached")) << err;
  EXPECT_EQ(std::string::npos, err.find("never joined", err.find("never joined") + 1))
      << "only the forgotten one: " << err;
}

// Channels a debug-mode runtime's fibers made and never freed are listed at
// destroy with where they were made; freed ones are not.
TEST(DebugTest, NeverFreedChannelsAreListedAtDestroy) {
  testing::internal::CaptureStderr();
  sp_runtime_t *rt = DebugRt(0);
  static sp_chan_t *leaked;
  static int line;
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
    sp_chan_t *freed;
    EXPECT_EQ(0, sp_chan_make(&freed, 8, 4));
    EXPECT_EQ(0, sp_chan_free(freed));
    line = __LINE__ + 1;
    EXPECT_EQ(0, sp_chan_make(&leaked, 0, 0));  // the line reported
    return nullptr;
  }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("was never freed")) << err;
  EXPECT_NE(std::string::npos, err.find("at tests/runtime/debug_test.cc:" + std::to_string(line) + " "))
      << err;
  EXPECT_EQ(std::string::npos, err.find("never freed", err.find("never freed") + 1)) << err;
  EXPECT_EQ(0, sp_chan_free(leaked));  // still freeable after its runtime is gone
}

// Mutex misuse in debug mode: a recursive lock is refused and an unlock by
// a fiber that does not hold the mutex is reported, both naming the fiber.
TEST(DebugTest, MutexMisuseNamesTheFiber) {
  testing::internal::CaptureStderr();
  sp_runtime_t *rt = DebugRt(0);
  static sp_mutex_t m;
  m = sp_mutex_t{};
  sp_fiber_t a, b;
  sp_spawn_opts_t oa = {"relocker", 0, 0}, ob = {"stranger", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &a, [](void *) -> void * {
              if (sp_mutex_lock(&m) != 0) return (void *)1;
              return (void *)(intptr_t)sp_mutex_lock(&m);  // recursive: -EDEADLK
            }, nullptr, &oa));
  void *r;
  ASSERT_EQ(0, sp_join(a, &r, SP_FOREVER));
  EXPECT_EQ(-EDEADLK, (intptr_t)r);
  ASSERT_EQ(0, sp_spawn(rt, &b, [](void *) -> void * {
              return (void *)(intptr_t)sp_mutex_unlock(&m);  // held by "relocker"
            }, nullptr, &ob));
  ASSERT_EQ(0, sp_join(b, &r, SP_FOREVER));
  EXPECT_EQ(0, (intptr_t)r) << "Go allows it: the mutex is unlocked";
  EXPECT_EQ(0, sp_mutex_trylock(&m));  // a foreign thread: no owner record
  EXPECT_EQ(0, sp_mutex_unlock(&m));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("\"relocker\" (spawned at tests/runtime/debug_test.cc:"))
      << err;
  EXPECT_NE(std::string::npos, err.find("recursive lock")) << err;
  EXPECT_NE(std::string::npos, err.find("\"stranger\"")) << err;
  EXPECT_NE(std::string::npos, err.find("does not hold it (fiber " + std::to_string(a.id))) << err;
}

__attribute__((noinline)) void *UseStack(void *arg) {
  size_t n = (size_t)(intptr_t)arg;
  volatile char buf[24 * 1024];
  for (size_t i = 0; i < n && i < sizeof buf; i += 512) buf[i] = 1;
  return (void *)(intptr_t)buf[0];
}

// The census reports the deepest stack use per spawn site at destroy.
TEST(DebugTest, StackCensusPerSpawnSite) {
  testing::internal::CaptureStderr();
  sp_runtime_t *rt = DebugRt(0);
  for (int i = 0; i < 3; i++) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt, &f, UseStack, (void *)(intptr_t)(20 * 1024), nullptr));  // deep
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }
  sp_fiber_t g;
  ASSERT_EQ(0, sp_spawn(rt, &g, UseStack, (void *)(intptr_t)0, nullptr));  // shallow
  ASSERT_EQ(0, sp_join(g, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("stack census")) << err;
  // deep site: 3 fibers, at least 20 KiB of the 64 KiB default
  size_t at = err.find(": 3 fiber(s), deepest ");
  ASSERT_NE(std::string::npos, at) << err;
  double kib = atof(err.c_str() + at + strlen(": 3 fiber(s), deepest "));
  EXPECT_GE(kib, 20.0) << err;
  EXPECT_LT(kib, 64.0) << err;
  EXPECT_NE(std::string::npos, err.find(": 1 fiber(s), deepest ")) << err;
  EXPECT_NE(std::string::npos, err.find("of 64 KiB")) << err;
}

}  // namespace
