// spindle_gtest.h: googletest helpers for code that uses Spindle (Bazel:
// depend on //tests/support:spindle_gtest).
//
//   class MyTest : public spindle::testing::FiberTest {};
//   TEST_P(MyTest, Works) {
//     RunFiber([] { ...blocking-style test body, runs as a fiber... });
//   }
//   SPINDLE_INSTANTIATE_WORKERS(MyTest);   // runtimes of 1, 2, 4, 8 workers
//
// Each test gets a fresh runtime; at the end the fixture shuts it down and
// fails the test if fibers are still live (they leaked: never finished) or
// stacks are still in use. Override Configure to change the config, e.g.
// virtual time (then a 30 s timeout runs at once).
//
// SeededFiberTest runs on one worker with virtual time and seeded
// scheduling (sp_config_t.seed): each run draws a seed (or takes
// SPINDLE_SEED from the environment) and a failing test prints
//   reproduce with: SPINDLE_SEED=<seed>
// which replays the same interleaving exactly.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>

#include "runtime/spindle.h"

namespace spindle {
namespace testing {

// Shuts rt down, waiting up to ns for its fibers, and fails the current
// test if fibers are still live (leaked: never finished) or stacks are in
// use. Destroys rt when it stopped; returns whether it did (else rt keeps
// running and may be checked again).
inline bool ShutdownAndCheck(sp_runtime_t *rt, int64_t ns) {
  int rc = sp_runtime_shutdown(rt, sp_deadline_in(ns));
  sp_stats_t st;
  sp_runtime_stats(rt, &st);
  if (rc != 0 || st.live || st.stacks_used)  // one failure, saying everything
    ADD_FAILURE() << st.live << " fibers leaked (never finished; listed above), "
                  << st.stacks_used << " fiber stacks in use; shutdown: "
                  << (rc ? sp_strerror(rc) : "done");
  if (rc != 0) return false;
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  return true;
}

class FiberTest : public ::testing::TestWithParam<int> {
 protected:
  // Adjusts the runtime's config before it is created (workers is set).
  virtual void Configure(sp_config_t &) {}

  void SetUp() override {
    sp_config_t cfg;
    sp_config_init(&cfg);
    cfg.workers = GetParam();
    Configure(cfg);
    ASSERT_EQ(0, sp_runtime_create(&rt_, &cfg)) << "sp_runtime_create";
  }

  void TearDown() override {
    if (rt_ && ShutdownAndCheck(rt_, shutdown_ns_)) rt_ = nullptr;
  }

  // Runs body as a fiber of this test's runtime and waits for it.
  void RunFiber(std::function<void()> body) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, &Trampoline, &body, nullptr));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }

  int workers() const { return GetParam(); }
  sp_runtime_t *runtime() const { return rt_; }

  sp_runtime_t *rt_ = nullptr;
  int64_t shutdown_ns_ = 10LL * 1000 * 1000 * 1000;  // how long leaks may take to finish

 private:
  static void *Trampoline(void *arg) {
    (*static_cast<std::function<void()> *>(arg))();
    return nullptr;
  }
};

class SeededFiberTest : public FiberTest {
 protected:
  void Configure(sp_config_t &cfg) override {
    const char *env = std::getenv("SPINDLE_SEED");
    seed_ = env && *env ? std::strtoull(env, nullptr, 0)
                        : (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count() | 1;
    cfg.workers = 1;
    cfg.virtual_time = 1;
    cfg.seed = seed_;
  }
  void TearDown() override {
    FiberTest::TearDown();
    if (HasFailure())
      std::fprintf(stderr, "reproduce with: SPINDLE_SEED=%llu\n", (unsigned long long)seed_);
    RecordProperty("spindle_seed", std::to_string(seed_));
  }
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_ = 0;
};

inline std::string WorkersName(const ::testing::TestParamInfo<int> &i) {
  return "w" + std::to_string(i.param);
}

}  // namespace testing
}  // namespace spindle

#define SPINDLE_INSTANTIATE_WORKERS(Suite)                                 \
  INSTANTIATE_TEST_SUITE_P(Workers, Suite, ::testing::Values(1, 2, 4, 8), \
                           spindle::testing::WorkersName)
// SeededFiberTest always runs on one worker: run it once per seed drawn.
#define SPINDLE_INSTANTIATE_SEEDED(Suite) \
  INSTANTIATE_TEST_SUITE_P(Seeded, Suite, ::testing::Values(1), spindle::testing::WorkersName)
