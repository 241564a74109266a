// mutex_test.cc: sp_mutex_t and sp_rwmutex_t (sync/mutex.c, rwmutex.c).
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class MutexTest : public RtTest {};

TEST_P(MutexTest, Basics) {
  sp_mutex_t m = {};
  EXPECT_EQ(-EPERM, sp_mutex_unlock(&m)) << "unlock of an unlocked mutex";
  ASSERT_EQ(0, sp_mutex_lock(&m));
  EXPECT_EQ(-EAGAIN, sp_mutex_trylock(&m));
  EXPECT_EQ(-ETIMEDOUT, sp_mutex_lock_until(&m, sp_deadline_in(2000000)));
  RunInFiber([&] { EXPECT_EQ(-ETIMEDOUT, sp_mutex_lock_until(&m, sp_deadline_in(2000000))); });
  ASSERT_EQ(0, sp_mutex_unlock(&m));
  ASSERT_EQ(0, sp_mutex_trylock(&m));
  ASSERT_EQ(0, sp_mutex_unlock(&m));
  EXPECT_EQ(-EPERM, sp_mutex_unlock(&m));
  EXPECT_EQ(-EINVAL, sp_mutex_lock(nullptr));
  EXPECT_EQ(-EINVAL, sp_mutex_unlock(nullptr));
}

// Fibers and a foreign thread increment a plain counter under the mutex.
TEST_P(MutexTest, StressMutualExclusion) {
  static sp_mutex_t m;
  static long counter;
  static std::atomic<int> inside;
  counter = 0;
  inside = 0;
  const long per = sptest::Scaled(20000);
  const int n = 8;
  std::vector<sp_fiber_t> fs(n);
  auto body = [](void *a) -> void * {
    long per = (long)(intptr_t)a;
    for (long i = 0; i < per; i++) {
      if (sp_mutex_lock(&m) != 0) return (void *)1;
      if (inside.fetch_add(1) != 0) return (void *)2;
      counter++;
      if (i % 64 == 0) sp_yield();  // hold it across a switch now and then
      inside.fetch_sub(1);
      if (sp_mutex_unlock(&m) != 0) return (void *)3;
    }
    return nullptr;
  };
  for (auto &f : fs) ASSERT_EQ(0, sp_spawn(rt_, &f, body, (void *)(intptr_t)per, nullptr));
  std::thread t([&] {
    for (long i = 0; i < per; i++) {
      sp_mutex_lock(&m);
      counter++;
      sp_mutex_unlock(&m);
    }
  });
  for (auto &f : fs) {
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r);
  }
  t.join();
  EXPECT_EQ((n + 1) * per, counter);
}

// Starvation mode: a waiter gets the mutex even while another fiber
// relocks it in a tight loop (Go's TestMutexFairness).
TEST_P(MutexTest, StarvationModeLetsWaitersIn) {
  static sp_mutex_t m;
  static std::atomic<bool> stop;
  stop = false;
  sp_fiber_t hog;
  ASSERT_EQ(0, sp_spawn(rt_, &hog, [](void *) -> void * {
              while (!stop.load()) {
                sp_mutex_lock(&m);
                sp_sleep_for(100000);  // hold it 100 us, then relock at once
                sp_mutex_unlock(&m);
              }
              return nullptr;
            }, nullptr, nullptr));
  usleep(5000);
  sp_fiber_t waiter;
  ASSERT_EQ(0, sp_spawn(rt_, &waiter, [](void *) -> void * {
              for (int i = 0; i < 10; i++) {
                sp_sleep_for(100000);
                if (sp_mutex_lock_until(&m, sp_deadline_in(5000000000LL)) != 0) return (void *)1;
                sp_mutex_unlock(&m);
              }
              return nullptr;
            }, nullptr, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(waiter, &r, SP_FOREVER));
  EXPECT_EQ(nullptr, r) << "waiter starved";
  stop = true;
  ASSERT_EQ(0, sp_join(hog, nullptr, SP_FOREVER));
}

TEST_P(MutexTest, RwReadersShareWritersExclude) {
  static sp_rwmutex_t rw;
  static std::atomic<int> readers, writers;
  static std::atomic<bool> bad;
  readers = writers = 0;
  bad = false;
  const int n = 16;
  std::vector<sp_fiber_t> fs(n);
  for (int i = 0; i < n; i++)
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], [](void *a) -> void * {
                bool writer = (intptr_t)a % 4 == 0;
                for (int k = 0; k < 200; k++) {
                  if (writer) {
                    sp_rwmutex_lock(&rw);
                    if (writers.fetch_add(1) != 0 || readers.load() != 0) bad = true;
                    sp_yield();
                    writers.fetch_sub(1);
                    sp_rwmutex_unlock(&rw);
                  } else {
                    sp_rwmutex_rlock(&rw);
                    readers.fetch_add(1);
                    if (writers.load() != 0) bad = true;
                    sp_yield();
                    readers.fetch_sub(1);
                    sp_rwmutex_runlock(&rw);
                  }
                }
                return nullptr;
              }, (void *)(intptr_t)i, nullptr));
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_FALSE(bad.load());
  // Readers share: four readers all inside at once (each waits, holding
  // its read lock, until it sees the other three).
  readers = 0;
  std::vector<sp_fiber_t> rs(4);
  for (auto &f : rs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                sp_rwmutex_rlock(&rw);
                readers++;
                int64_t give_up = sp_deadline_in(5000000000LL);
                while (readers.load() < 4 && sp_now() < give_up) sp_yield();
                bool all = readers.load() >= 4;
                sp_rwmutex_runlock(&rw);
                return all ? nullptr : (void *)1;
              }, nullptr, nullptr));
  for (auto &f : rs) {
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r) << "readers did not share the lock";
  }
}

// A stream of readers does not starve a writer (Go's TestRWMutex writer
// preference): the writer gets in while readers keep coming.
TEST_P(MutexTest, RwWriterNotStarvedByReaders) {
  static sp_rwmutex_t rw;
  static std::atomic<bool> stop;
  stop = false;
  std::vector<sp_fiber_t> rs(4);
  for (auto &f : rs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                while (!stop.load()) {
                  sp_rwmutex_rlock(&rw);
                  sp_sleep_for(200000);
                  sp_rwmutex_runlock(&rw);
                }
                return nullptr;
              }, nullptr, nullptr));
  usleep(5000);
  sp_fiber_t w;
  ASSERT_EQ(0, sp_spawn(rt_, &w, [](void *) -> void * {
              for (int i = 0; i < 5; i++) {
                if (sp_rwmutex_lock_until(&rw, sp_deadline_in(5000000000LL)) != 0) return (void *)1;
                sp_rwmutex_unlock(&rw);
              }
              return nullptr;
            }, nullptr, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(w, &r, SP_FOREVER));
  EXPECT_EQ(nullptr, r) << "writer starved";
  stop = true;
  for (auto &f : rs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
}

TEST_P(MutexTest, RwMisuseAndDeadlines) {
  sp_rwmutex_t rw = {};
  EXPECT_EQ(-EPERM, sp_rwmutex_runlock(&rw));
  EXPECT_EQ(-EPERM, sp_rwmutex_unlock(&rw));
  ASSERT_EQ(0, sp_rwmutex_rlock(&rw));
  ASSERT_EQ(0, sp_rwmutex_rlock(&rw));
  EXPECT_EQ(-EAGAIN, sp_rwmutex_lock_until(&rw, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_rwmutex_lock_until(&rw, sp_deadline_in(2000000)));
  ASSERT_EQ(0, sp_rwmutex_runlock(&rw));
  ASSERT_EQ(0, sp_rwmutex_runlock(&rw));
  ASSERT_EQ(0, sp_rwmutex_lock(&rw));
  EXPECT_EQ(-EAGAIN, sp_rwmutex_rlock_until(&rw, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_rwmutex_rlock_until(&rw, sp_deadline_in(2000000)));
  ASSERT_EQ(0, sp_rwmutex_unlock(&rw));
  ASSERT_EQ(0, sp_rwmutex_rlock(&rw)) << "a timed-out writer must not block readers";
  ASSERT_EQ(0, sp_rwmutex_runlock(&rw));
}

SP_INSTANTIATE_WORKERS(MutexTest);

}  // namespace
