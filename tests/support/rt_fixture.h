// rt_fixture.h: runs a test body on runtimes of 1, 2, 4 and 8 workers.
// Teardown shuts the runtime down and asserts no fiber is live and every
// stack went back to the pool.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>

#include "runtime/spindle.h"

namespace sptest {

class RtTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    sp_config_t cfg;
    sp_config_init(&cfg);
    cfg.workers = GetParam();
    ASSERT_EQ(0, sp_runtime_create(&rt_, &cfg));
    // The test thread and threads it starts feed fibers freely: they are
    // wakers, so no deadlock is reported (tests/runtime/deadlock_test.cc
    // covers detection on runtimes of its own).
    ASSERT_EQ(0, sp_runtime_hold(rt_));
  }
  void TearDown() override {
    if (!rt_) return;
    ASSERT_EQ(0, sp_runtime_release(rt_));
    ASSERT_EQ(0, sp_runtime_shutdown(rt_, sp_deadline_in(30000000000LL)));
    sp_stats_t st;
    ASSERT_EQ(0, sp_runtime_stats(rt_, &st));
    EXPECT_EQ(0u, st.live) << "fibers leaked";
    EXPECT_EQ(0u, st.stacks_used) << "stacks leaked";
    ASSERT_EQ(0, sp_runtime_destroy(rt_));
    rt_ = nullptr;
  }
  int workers() const { return GetParam(); }

  // Runs fn as a fiber of rt_ and waits for it from this (foreign) thread.
  void RunInFiber(std::function<void()> fn) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, &Trampoline, &fn, nullptr));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }

  // Parks of rt_'s fibers so far. A fiber that has parked is in its wait
  // queue, so counting parks tells that waiters are queued, however slow
  // the machine is.
  uint64_t Parks() {
    sp_stats_t st;
    EXPECT_EQ(0, sp_runtime_stats(rt_, &st));
    return st.parks;
  }
  // Waits (up to 5 s) until rt_ has counted `target` parks, or until
  // `stop` (checked every ms) says to give up; returns the last count.
  uint64_t AwaitParks(uint64_t target, std::function<bool()> stop = nullptr) {
    uint64_t n = Parks();
    for (int64_t give_up = sp_deadline_in(5000000000LL);
         n < target && !(stop && stop()) && sp_now() < give_up; n = Parks())
      usleep(1000);
    return n;
  }

  sp_runtime_t *rt_ = nullptr;

 private:
  static void *Trampoline(void *arg) {
    (*static_cast<std::function<void()> *>(arg))();
    return nullptr;
  }
};

// A runtime of its own for tests outside the fixture: `workers` workers and
// whatever else `tweak` sets in the config. Fails the test if creation fails.
inline sp_runtime_t *NewRuntime(int workers, std::function<void(sp_config_t &)> tweak = nullptr) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = workers;
  if (tweak) tweak(cfg);
  sp_runtime_t *rt = nullptr;
  EXPECT_EQ(0, sp_runtime_create(&rt, &cfg));
  return rt;
}

inline std::string WorkersName(const ::testing::TestParamInfo<int> &i) {
  return "w" + std::to_string(i.param);
}

}  // namespace sptest

#define SP_INSTANTIATE_WORKERS(Suite)                                      \
  INSTANTIATE_TEST_SUITE_P(Workers, Suite, ::testing::Values(1, 2, 4, 8), \
                           sptest::WorkersName)
