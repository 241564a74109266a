#include "tests/support/rt_fixture.h"

using sptest::RtTest;

class SmokeTest : public RtTest {};

static void *add_one(void *arg) { return (void *)((intptr_t)arg + 1); }

TEST_P(SmokeTest, SpawnJoinFromForeignThread) {
  for (int i = 0; i < 100; i++) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, add_one, (void *)(intptr_t)i, nullptr));
    void *r = nullptr;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(i + 1, (intptr_t)r);
  }
}

TEST_P(SmokeTest, YieldAndSleep) {
  RunInFiber([] {
    for (int i = 0; i < 1000; i++) ASSERT_EQ(0, sp_yield());
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_sleep_for(5000000));
    EXPECT_GE(sp_now() - t0, 5000000);
  });
}

SP_INSTANTIATE_WORKERS(SmokeTest);
