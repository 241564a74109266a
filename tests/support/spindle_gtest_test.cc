// spindle_gtest_test.cc: the user-facing fixtures of spindle_gtest.h,
// including that they catch a leaked fiber.
#include "tests/support/spindle_gtest.h"

#include <gtest/gtest-spi.h>


namespace {

constexpr int64_t kMs = 1000000;

class UserTest : public spindle::testing::FiberTest {};

TEST_P(UserTest, BodyRunsAsAFiberOfTheRuntime) {
  RunFiber([this] {
    EXPECT_EQ(runtime(), sp_runtime_current());
    EXPECT_EQ(0, sp_sleep_for(kMs));
  });
  EXPECT_EQ(workers(), sp_runtime_workers(runtime()));
}

SPINDLE_INSTANTIATE_WORKERS(UserTest);

class VirtualUserTest : public spindle::testing::FiberTest {
  void Configure(sp_config_t &c) override { c.virtual_time = 1; }
};

TEST_P(VirtualUserTest, AMinuteOfTimeoutsRunsAtOnce) {
  RunFiber([] {
    sp_chan_t *ch;
    ASSERT_EQ(0, sp_chan_make(&ch, 0, 0));
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(ch, nullptr, sp_deadline_in(60000 * kMs)));
    EXPECT_EQ(0, sp_chan_free(ch));
  });
}

SPINDLE_INSTANTIATE_WORKERS(VirtualUserTest);

class SeededUserTest : public spindle::testing::SeededFiberTest {};

TEST_P(SeededUserTest, RunsOnOneWorkerWithASeed) {
  EXPECT_NE(0u, seed());
  EXPECT_EQ(1, workers() == 1 ? sp_runtime_workers(runtime()) : 0);
  RunFiber([] { EXPECT_EQ(0, sp_sleep_for(1000 * kMs)); });
}

SPINDLE_INSTANTIATE_SEEDED(SeededUserTest);

// The leak check: a runtime left with a fiber parked forever fails the
// test at shutdown; once the fiber can finish, the check passes.
sp_runtime_t *leaky;
sp_chan_t *never;

TEST(ShutdownAndCheck, ReportsAFiberThatNeverFinished) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = 2;
  ASSERT_EQ(0, sp_runtime_create(&leaky, &cfg));
  ASSERT_EQ(0, sp_chan_make(&never, 0, 0));
  ASSERT_EQ(0, sp_spawn(leaky, nullptr, [](void *) -> void * {
    sp_chan_recv(never, nullptr, SP_FOREVER);
    return nullptr;
  }, nullptr, nullptr));
  EXPECT_NONFATAL_FAILURE(spindle::testing::ShutdownAndCheck(leaky, 50 * kMs), "fibers leaked");
  ASSERT_EQ(0, sp_chan_close(never));
  EXPECT_TRUE(spindle::testing::ShutdownAndCheck(leaky, 5000 * kMs));
  EXPECT_EQ(0, sp_chan_free(never));
}

}  // namespace
