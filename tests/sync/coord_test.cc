// coord_test.cc: Cond, WaitGroup, Once and Semaphore (sync/cond.c,
// waitgroup.c, once.c, sema.c), from fibers and foreign threads.
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class CoordTest : public RtTest {};

TEST_P(CoordTest, CondSignalAndBroadcast) {
  static sp_mutex_t m;
  static sp_cond_t c;
  static int ready, woke;
  ready = woke = 0;
  const int n = 6;
  std::vector<sp_fiber_t> fs(n);
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                sp_mutex_lock(&m);
                ready++;
                while (ready >= 0) sp_cond_wait(&c, &m, SP_FOREVER);  // until broadcast sets -1
                woke++;
                sp_mutex_unlock(&m);
                return nullptr;
              }, nullptr, nullptr));
  for (;;) {
    sp_mutex_lock(&m);
    int r = ready;
    sp_mutex_unlock(&m);
    if (r == n) break;
    usleep(1000);
  }
  usleep(5000);
  sp_mutex_lock(&m);
  ready = -1;
  sp_mutex_unlock(&m);
  EXPECT_EQ(n, sp_cond_broadcast(&c));
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(n, woke);
  EXPECT_EQ(0, sp_cond_signal(&c)) << "nobody waits";
}

TEST_P(CoordTest, CondWaitDeadlineRelocks) {
  sp_mutex_t m = {};
  sp_cond_t c = {};
  EXPECT_EQ(-EPERM, sp_cond_wait(&c, &m, 0)) << "mutex not locked";
  RunInFiber([&] {
    ASSERT_EQ(0, sp_mutex_lock(&m));
    EXPECT_EQ(-ETIMEDOUT, sp_cond_wait(&c, &m, sp_deadline_in(3000000)));
    EXPECT_EQ(-EAGAIN, sp_mutex_trylock(&m)) << "the mutex is held again";
    ASSERT_EQ(0, sp_mutex_unlock(&m));
  });
}

TEST_P(CoordTest, WaitGroupFanInAndReuse) {
  sp_waitgroup_t wg = {};
  static std::atomic<long> ran;
  for (int round = 0; round < 3; round++) {
    ran = 0;
    const int n = (int)sptest::ScaledLive(10000);
    for (int i = 0; i < n; i++)
      ASSERT_EQ(0, sp_wg_go(&wg, rt_, [](void *) -> void * {
                  ran++;
                  return nullptr;
                }, nullptr));
    ASSERT_EQ(0, sp_wg_wait(&wg, SP_FOREVER));  // a foreign thread waits
    EXPECT_EQ(n, ran.load());
  }
  EXPECT_EQ(-EINVAL, sp_wg_done(&wg)) << "below zero";
  EXPECT_EQ(0, sp_wg_wait(&wg, 0));
  EXPECT_EQ(2, sp_wg_add(&wg, 2));
  EXPECT_EQ(-EAGAIN, sp_wg_wait(&wg, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_wg_wait(&wg, sp_deadline_in(2000000)));
  RunInFiber([&] {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *g) -> void * {
                sp_sleep_for(3000000);
                sp_wg_done(static_cast<sp_waitgroup_t *>(g));
                sp_wg_done(static_cast<sp_waitgroup_t *>(g));
                return nullptr;
              }, &wg, nullptr));
    EXPECT_EQ(0, sp_wg_wait(&wg, SP_FOREVER));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
}

// A WaitGroup may be freed as soon as a wait returns 0, even when earlier
// waits timed out (they leave the waiters mark behind) and the last done
// runs on another worker at that moment. Under ASan/TSan a done that still
// touched the group after the wait returned is a use after free.
TEST_P(CoordTest, WaitGroupFreedRightAfterWait) {
  for (int round = 0; round < sptest::Scaled(2000); round++) {
    auto *wg = new sp_waitgroup_t{};
    ASSERT_EQ(1, sp_wg_add(wg, 1));
    ASSERT_EQ(-ETIMEDOUT, sp_wg_wait(wg, sp_deadline_in(10000)));  // leaves WAITERS set
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *g) -> void * {
                sp_wg_done(static_cast<sp_waitgroup_t *>(g));
                return nullptr;
              }, wg, nullptr));
    if (round % 2) {
      while (sp_wg_wait(wg, 0) != 0) {
      }
    } else {
      ASSERT_EQ(0, sp_wg_wait(wg, SP_FOREVER));
    }
    delete wg;  // the done may have returned or not: it must not touch wg now
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }
}

TEST_P(CoordTest, OnceUnderContention) {
  static sp_once_t once;
  static std::atomic<int> calls, after;
  once = sp_once_t{};
  calls = after = 0;
  const int n = 32;
  std::vector<sp_fiber_t> fs(n);
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                sp_once(&once, [](void *) {
                  sp_sleep_for(5000000);  // others must wait for us
                  calls++;
                }, nullptr);
                if (calls.load() == 1) after++;
                return nullptr;
              }, nullptr, nullptr));
  sp_once(&once, [](void *) { calls++; }, nullptr);  // a foreign thread too
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(1, calls.load());
  EXPECT_EQ(n, after.load()) << "someone returned before fn finished";
}

TEST_P(CoordTest, SemaphoreWeightsAndFifo) {
  sp_sema_t s;
  ASSERT_EQ(0, sp_sema_init(&s, 10));
  EXPECT_EQ(-EINVAL, sp_sema_acquire(&s, 11, 0)) << "more than the capacity";
  EXPECT_EQ(-EINVAL, sp_sema_release(&s, 1)) << "nothing held";
  ASSERT_EQ(0, sp_sema_acquire(&s, 7, 0));
  EXPECT_EQ(-EAGAIN, sp_sema_acquire(&s, 4, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_sema_acquire(&s, 4, sp_deadline_in(2000000)));
  // FIFO: a waiting big request (8) keeps a later small one (3) out,
  // although 3 units are free; after the release only the big one fits.
  static std::atomic<int> order;
  order = 0;
  struct A {
    sp_sema_t *s;
    int64_t n;
    int got;
  } big{&s, 8, 0}, small{&s, 3, 0};
  auto body = [](void *p) -> void * {
    auto *a = static_cast<A *>(p);
    if (sp_sema_acquire(a->s, a->n, SP_FOREVER) != 0) return (void *)1;
    a->got = ++order;
    sp_sema_release(a->s, a->n);
    return nullptr;
  };
  // each waiter is queued once it has parked; stop early if one got in
  const uint64_t parks0 = Parks();
  auto got_in = [&] { return order.load() != 0; };
  sp_fiber_t fb, fsm;
  ASSERT_EQ(0, sp_spawn(rt_, &fb, body, &big, nullptr));
  AwaitParks(parks0 + 1, got_in);
  ASSERT_EQ(0, sp_spawn(rt_, &fsm, body, &small, nullptr));
  uint64_t parks = AwaitParks(parks0 + 2, got_in);  // or it got in (then order is 1)
  EXPECT_EQ(0, order.load()) << "the small request overtook the big one";
  EXPECT_LE(parks0 + 2, parks) << "not both in line";
  ASSERT_EQ(0, sp_sema_release(&s, 7));
  ASSERT_EQ(0, sp_join(fb, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(fsm, nullptr, SP_FOREVER));
  EXPECT_EQ(1, big.got);
  EXPECT_EQ(2, small.got);
  EXPECT_EQ(-EINVAL, sp_sema_init(&s, -1));
}

// The semaphore bounds concurrency: never more than its size inside.
TEST_P(CoordTest, SemaphoreBoundsConcurrency) {
  static sp_sema_t s;
  static std::atomic<int> inside, peak;
  ASSERT_EQ(0, sp_sema_init(&s, 3));
  inside = peak = 0;
  std::vector<sp_fiber_t> fs(24);
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                for (int i = 0; i < 20; i++) {
                  if (sp_sema_acquire(&s, 1, SP_FOREVER) != 0) return (void *)1;
                  int now = ++inside;
                  int p = peak.load();
                  while (now > p && !peak.compare_exchange_weak(p, now)) {
                  }
                  sp_yield();
                  --inside;
                  sp_sema_release(&s, 1);
                }
                return nullptr;
              }, nullptr, nullptr));
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
}

SP_INSTANTIATE_WORKERS(CoordTest);

}  // namespace
