// runtime_test.cc: runtime objects (runtime/runtime.c): create/destroy
// cycles, several runtimes at once, configuration, foreign threads,
// shutdown with deadlines, error text.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

namespace {

void *Echo(void *a) { return a; }

TEST(RuntimeTest, CreateDestroyRepeatedlyLeaksNothing) {
  // ASan's leak checker (CI runs this under --config=asan) sees any leak.
  for (int i = 0; i < 50; i++) {
    sp_config_t cfg;
    sp_config_init(&cfg);
    cfg.workers = 1 + i % 4;
    sp_runtime_t *rt;
    ASSERT_EQ(0, sp_runtime_create(&rt, &cfg));
    EXPECT_EQ(cfg.workers, sp_runtime_workers(rt));
    for (int k = 0; k < 20; k++) {
      sp_fiber_t f;
      ASSERT_EQ(0, sp_spawn(rt, &f, Echo, (void *)(intptr_t)k, nullptr));
      void *r;
      ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
      ASSERT_EQ(k, (intptr_t)r);
    }
    sp_spawn_opts_t d = {"detached", 0, 1};
    ASSERT_EQ(0, sp_spawn(rt, nullptr, Echo, nullptr, &d));
    ASSERT_EQ(0, sp_runtime_destroy(rt));  // waits for the detached one
  }
}

TEST(RuntimeTest, SeveralRuntimesSideBySide) {
  sp_runtime_t *a, *b;
  ASSERT_EQ(0, sp_runtime_create(&a, nullptr));
  ASSERT_EQ(0, sp_runtime_create(&b, nullptr));
  struct Arg {
    sp_runtime_t *want;
    int ok;
  } aa{a, 0}, bb{b, 0};
  auto body = [](void *p) -> void * {
    auto *arg = static_cast<Arg *>(p);
    arg->ok = sp_runtime_current() == arg->want;
    return nullptr;
  };
  sp_fiber_t fa, fb;
  ASSERT_EQ(0, sp_spawn(a, &fa, body, &aa, nullptr));
  ASSERT_EQ(0, sp_spawn(b, &fb, body, &bb, nullptr));
  ASSERT_EQ(0, sp_join(fa, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(fb, nullptr, SP_FOREVER));
  EXPECT_TRUE(aa.ok);
  EXPECT_TRUE(bb.ok);
  // a fiber of one runtime spawns into and joins a fiber of the other
  struct Cross {
    sp_runtime_t *other;
    int ok;
  } cross{b, 0};
  sp_fiber_t fc;
  ASSERT_EQ(0, sp_spawn(a, &fc, [](void *p) -> void * {
              auto *c = static_cast<Cross *>(p);
              sp_fiber_t g;
              if (sp_spawn(c->other, &g, Echo, (void *)9, nullptr) != 0) return nullptr;
              void *r;
              c->ok = sp_join(g, &r, SP_FOREVER) == 0 && (intptr_t)r == 9;
              return nullptr;
            }, &cross, nullptr));
  ASSERT_EQ(0, sp_join(fc, nullptr, SP_FOREVER));
  EXPECT_TRUE(cross.ok);
  ASSERT_EQ(0, sp_runtime_destroy(a));
  ASSERT_EQ(0, sp_runtime_destroy(b));
}

TEST(RuntimeTest, ForeignThreadsSpawnAndJoinConcurrently) {
  sp_runtime_t *rt = sptest::NewRuntime(2);
  ASSERT_NE(nullptr, rt);
  std::atomic<long> ok{0};
  const int threads = 6, each = (int)sptest::Scaled(3000);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < each; i++) {
        sp_fiber_t f;
        if (sp_spawn(rt, &f, Echo, (void *)(intptr_t)(t * each + i), nullptr) != 0) return;
        void *r;
        if (sp_join(f, &r, SP_FOREVER) == 0 && (intptr_t)r == t * each + i) ok++;
      }
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(threads * each, ok.load());
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

TEST(RuntimeTest, ShutdownDeadlineReportsLiveFibers) {
  sp_runtime_t *rt;
  ASSERT_EQ(0, sp_runtime_create(&rt, nullptr));
  sptest::Gate gate;
  sp_fiber_t f;
  sp_spawn_opts_t o = {"stuck-on-gate", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *g) -> void * {
              static_cast<sptest::Gate *>(g)->Wait();
              return (void *)1;
            }, &gate, &o));
  while (gate.Waiting() == 0) std::this_thread::yield();
  testing::internal::CaptureStderr();
  EXPECT_EQ(-ETIMEDOUT, sp_runtime_shutdown(rt, sp_deadline_in(20000000)));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("stuck-on-gate")) << err;
  EXPECT_NE(std::string::npos, err.find("runtime_test.cc")) << "spawn site missing: " << err;
  // shutting down: foreign spawns are refused, the runtime still runs
  sp_fiber_t g;
  EXPECT_EQ(-ECANCELED, sp_spawn(rt, &g, Echo, nullptr, nullptr));
  EXPECT_EQ(-EBUSY, sp_runtime_destroy(rt));
  gate.Open();
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(1, (intptr_t)r);
  EXPECT_EQ(0, sp_runtime_shutdown(rt, sp_deadline_in(5000000000LL)));
  EXPECT_EQ(0, sp_runtime_shutdown(rt, 0)) << "second shutdown is a no-op";
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

// Foreign threads spawn while the runtime shuts down (runtime.c R1): each
// spawn is either refused with -ECANCELED or counted before shutdown waits
// for live fibers, so every accepted fiber runs before shutdown returns,
// and nothing is queued on stopped workers.
TEST(RuntimeTest, ForeignSpawnsRacingShutdownAreRefusedOrRun) {
  const int rounds = (int)sptest::Scaled(60), threads = 3;
  long lost = 0, accepted_all = 0;
  for (int round = 0; round < rounds; round++) {
    sp_config_t cfg;
    sp_config_init(&cfg);
    cfg.workers = 1 + round % 2;
    sp_runtime_t *rt;
    ASSERT_EQ(0, sp_runtime_create(&rt, &cfg));
    std::atomic<long> ran{0}, accepted{0};
    std::atomic<int> started{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&] {
        started.fetch_add(1);
        sp_spawn_opts_t o = {"late", 0, 1};
        for (;;) {
          int rc = sp_spawn(rt, nullptr, [](void *a) -> void * {
            static_cast<std::atomic<long> *>(a)->fetch_add(1);
            return nullptr;
          }, &ran, &o);
          if (rc == -ECANCELED) return;
          ASSERT_EQ(0, rc) << sp_strerror(rc);
          accepted.fetch_add(1);
        }
      });
    while (started.load() < threads) std::this_thread::yield();
    ASSERT_EQ(0, sp_runtime_shutdown(rt, SP_FOREVER));
    long done_at_shutdown = ran.load();
    for (auto &t : ts) t.join();  // each saw -ECANCELED
    lost += accepted.load() - done_at_shutdown;
    accepted_all += accepted.load();
    ASSERT_EQ(0, sp_runtime_destroy(rt));
  }
  EXPECT_EQ(0, lost) << "fibers accepted but not run when shutdown returned";
  EXPECT_GT(accepted_all, 0) << "no spawn got in before the shutdown";
}

TEST(RuntimeTest, Configuration) {
  sp_runtime_t *rt = nullptr;
  EXPECT_EQ(-EINVAL, sp_runtime_create(nullptr, nullptr));
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = -1;
  EXPECT_EQ(-EINVAL, sp_runtime_create(&rt, &cfg));
  EXPECT_EQ(nullptr, rt);
  sp_config_init(&cfg);
  cfg.stack_size = 10;
  EXPECT_EQ(-EINVAL, sp_runtime_create(&rt, &cfg));
  EXPECT_EQ(-EINVAL, sp_runtime_shutdown(nullptr, 0));
  EXPECT_EQ(-EINVAL, sp_runtime_destroy(nullptr));
  EXPECT_EQ(0, sp_runtime_workers(nullptr));
  sp_stats_t st;
  EXPECT_EQ(-EINVAL, sp_runtime_stats(nullptr, &st));

  setenv("SPINDLE_WORKERS", "3", 1);
  ASSERT_EQ(0, sp_runtime_create(&rt, nullptr));
  EXPECT_EQ(3, sp_runtime_workers(rt));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  setenv("SPINDLE_WORKERS", "lots", 1);
  EXPECT_EQ(-EINVAL, sp_runtime_create(&rt, nullptr));
  unsetenv("SPINDLE_WORKERS");
  sp_config_init(&cfg);
  cfg.workers = 2;  // explicit config wins over the environment
  setenv("SPINDLE_WORKERS", "5", 1);
  ASSERT_EQ(0, sp_runtime_create(&rt, &cfg));
  EXPECT_EQ(2, sp_runtime_workers(rt));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
  unsetenv("SPINDLE_WORKERS");
  // default: the CPUs this process may use, at least one
  ASSERT_EQ(0, sp_runtime_create(&rt, nullptr));
  cpu_set_t set;
  ASSERT_EQ(0, sched_getaffinity(0, sizeof set, &set));
  EXPECT_GE(sp_runtime_workers(rt), 1);
  EXPECT_LE(sp_runtime_workers(rt), CPU_COUNT(&set));
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

void *SpawnWithBadStack(void *) {
  sp_spawn_opts_t bad = {"bad", 1, 0};
  sp_fiber_t g;
  int rc = sp_spawn(nullptr, &g, Echo, nullptr, &bad);
  if (rc != -EINVAL) return (void *)1;
  // misuse: join twice, sleep forever; each a code plus a message
  if (sp_spawn(nullptr, &g, Echo, nullptr, nullptr) != 0) return (void *)2;
  if (sp_join(g, nullptr, SP_FOREVER) != 0) return (void *)3;
  if (sp_join(g, nullptr, SP_FOREVER) != -ESRCH) return (void *)4;
  if (sp_sleep_until(SP_FOREVER) != -EINVAL) return (void *)5;
  return (void *)(intptr_t)rc;
}

TEST(RuntimeTest, DebugModeNamesTheFiber) {
  sp_runtime_t *rt = sptest::NewRuntime(0, [](sp_config_t &c) { c.debug = 1; });
  ASSERT_NE(nullptr, rt);
  sp_fiber_t f;
  sp_spawn_opts_t o = {"misuser", 0, 0};
  testing::internal::CaptureStderr();
  ASSERT_EQ(0, sp_spawn(rt, &f, SpawnWithBadStack, nullptr, &o));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(-EINVAL, (intptr_t)r);
  EXPECT_NE(std::string::npos, err.find("\"misuser\"")) << err;
  EXPECT_NE(std::string::npos, err.find("stack size")) << err;
  EXPECT_NE(std::string::npos, err.find("already joined")) << err;
  EXPECT_NE(std::string::npos, err.find("would never return")) << err;
  EXPECT_NE(std::string::npos, err.find("runtime_test.cc")) << "spawn site: " << err;
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

TEST(RuntimeTest, ErrorText) {
  EXPECT_STREQ("deadline passed", sp_strerror(-ETIMEDOUT));
  EXPECT_STREQ("success", sp_strerror(0));
  EXPECT_NE(nullptr, strstr(sp_strerror(-ENOMEM), "memory"));
  EXPECT_STREQ("not an error code", sp_strerror(5));
}

TEST(RuntimeTest, TimeHelpers) {
  int64_t a = sp_now(), b = sp_now();
  EXPECT_LE(a, b);
  EXPECT_EQ(SP_FOREVER, sp_deadline_in(-5));
  EXPECT_EQ(INT64_MAX, sp_deadline_in(INT64_MAX));
  EXPECT_GE(sp_deadline_in(1000), b + 1000);
}

}  // namespace

// A fiber of runtime A wakes a fiber of runtime B, which is then joined and
// destroyed at once: B's teardown must wait for the waker to leave B (its
// worker rings and eventfds are freed last; sched.c, workers_stop).
TEST(RuntimeTeardown, DestroyWhileAnotherRuntimesFiberWakesOneOfOurs) {
  sp_runtime_t *a = sptest::NewRuntime(2);
  static sp_waitgroup_t wg;
  const int rounds = (int)sptest::Scaled(100);
  for (int i = 0; i < rounds; i++) {
    sp_runtime_t *b = sptest::NewRuntime(2);
    sp_wg_add(&wg, 1);
    sp_fiber_t waiter, waker;
    ASSERT_EQ(0, sp_spawn(b, &waiter, [](void *) -> void * {
      sp_wg_wait(&wg, SP_FOREVER);
      return nullptr;
    }, nullptr, nullptr));
    ASSERT_EQ(0, sp_spawn(a, &waker, [](void *) -> void * {
      sp_sleep_for(100000);
      sp_wg_done(&wg);
      return nullptr;
    }, nullptr, nullptr));
    ASSERT_EQ(0, sp_join(waiter, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_runtime_destroy(b));  // the waker may still be inside b
    ASSERT_EQ(0, sp_join(waker, nullptr, SP_FOREVER));
  }
  ASSERT_EQ(0, sp_runtime_destroy(a));
}
