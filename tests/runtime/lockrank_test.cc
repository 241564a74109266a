// lockrank_test.cc: debug builds abort on a lock-order inversion and on a
// fiber switching out with a runtime lock held (runtime/lockrank.h).
#include "runtime/lockrank.h"
#include "tests/support/rt_fixture.h"

namespace {

#ifndef NDEBUG
void Invert() {
  static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
  SP_MLOCK(&a, RANK_IDLE);
  SP_MLOCK(&b, RANK_QUEUE);  // QUEUE ranks before IDLE: inverted
}

void SwitchWithLockHeld() {
  sp_runtime_t *rt = sptest::NewRuntime(1);
  sp_fiber_t f;
  sp_spawn(rt, &f, [](void *) -> void * {
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    SP_MLOCK(&m, RANK_LEAF);
    sp_yield();  // L1: never across a switch
    return nullptr;
  }, nullptr, nullptr);
  sp_spawn(rt, &f, [](void *) -> void * { return nullptr; }, nullptr, nullptr);
  sp_join(f, nullptr, SP_FOREVER);
}
#endif

TEST(LockRankTest, InversionAborts) {
#ifdef NDEBUG
  GTEST_SKIP() << "checks are compiled out with NDEBUG";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(Invert(), "lockrank: lock .* \\(rank 4\\) taken while holding .* \\(rank 5\\)");
#endif
}

TEST(LockRankTest, SwitchWithALockHeldAborts) {
#ifdef NDEBUG
  GTEST_SKIP() << "checks are compiled out with NDEBUG";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(SwitchWithLockHeld(), "switches out holding 1 runtime lock");
#endif
}

}  // namespace
