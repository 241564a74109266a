// lock_test.cc: the internal lock (runtime/lock.h, futex_linux.c): mutual
// exclusion and no lost wake-up with more threads than cores, critical
// sections long enough that waiters give up spinning and sleep on the
// futex, and the unlock protocol of this build (membarrier-backed plain
// store, or fetch_and under TSan / without membarrier).
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/lock.h"
#include "tests/support/scale.h"

namespace {

TEST(LockTest, ExclusionAndSleepersUnderContention) {
  static sp__lock_t lk;  // all-zero: unlocked (L2)
  static long counter;    // guarded by lk, deliberately not atomic
  static std::atomic<int> inside{0}, overlap{0};
  counter = 0;
  const int threads = 8;  // more than the cores here: holders get preempted
  const long per = sptest::Scaled(20000);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([per, t] {
      for (long i = 0; i < per; i++) {
        sp__lock(&lk);
        if (inside.fetch_add(1) != 0) overlap++;
        counter++;
        // now and then hold it for a while, past the lockers' spinning, so
        // they register as sleepers and the unlock must wake them
        if ((i + t) % 101 == 0) usleep(100);
        inside.fetch_sub(1);
        sp__unlock(&lk);
      }
    });
  for (auto &th : ts) th.join();
  EXPECT_EQ(0, overlap.load()) << "two holders at once";
  EXPECT_EQ(threads * per, counter);
  EXPECT_EQ(0u, __atomic_load_n(&lk.v, __ATOMIC_RELAXED))
      << "held or sleepers left registered after everyone finished";
  RecordProperty("asymmetric_unlock", sp__lock_asym);
}

}  // namespace
