// time_test.cc: timers, tickers and after-funcs on channels (sync/time.c,
// and periodic heap timers in runtime/timer.c).
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/support/rt_fixture.h"

using sptest::RtTest;

namespace {

class TimeTest : public RtTest {};

constexpr int64_t kMs = 1000000;

TEST_P(TimeTest, TimerFiresOnceWithItsTime) {
  RunInFiber([] {
    sp_timer_t *t;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_timer_start(&t, t0 + 30 * kMs));
    int64_t when = 0;
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(5000 * kMs)));
    EXPECT_GE(when, t0 + 30 * kMs);
    EXPECT_GE(sp_now(), t0 + 30 * kMs);
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(50 * kMs)));
    EXPECT_EQ(0, sp_timer_stop(t));  // had fired
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

TEST_P(TimeTest, StopBeforeFiringDeliversNothing) {
  RunInFiber([] {
    sp_timer_t *t;
    ASSERT_EQ(0, sp_timer_start(&t, sp_deadline_in(30 * kMs)));
    EXPECT_EQ(1, sp_timer_stop(t));
    EXPECT_EQ(0, sp_timer_stop(t));
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), nullptr, sp_deadline_in(80 * kMs)));
    // reset re-arms it; a fired, unread value is drained by the reset
    ASSERT_EQ(0, sp_timer_reset(t, sp_now()));
    sp_sleep_for(20 * kMs);  // it fires; its value stays unread
    EXPECT_EQ(0, sp_timer_reset(t, sp_deadline_in(40 * kMs)));
    int64_t t0 = sp_now(), when;
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(5000 * kMs)));
    EXPECT_GE(when, t0 + 35 * kMs);  // the new time, not the stale one
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

TEST_P(TimeTest, TickerTicksAndDropsForASlowReader) {
  RunInFiber([] {
    sp_timer_t *t;
    ASSERT_EQ(0, sp_ticker_start(&t, 10 * kMs));
    int64_t prev = 0, when;
    for (int i = 0; i < 5; i++) {
      ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(5000 * kMs)));
      EXPECT_GT(when, prev);
      prev = when;
    }
    sp_sleep_for(100 * kMs);  // ~10 ticks pass; the channel holds one
    EXPECT_EQ(1u, sp_chan_len(sp_timer_chan(t)));
    EXPECT_EQ(1, sp_timer_stop(t));
    EXPECT_EQ(0u, sp_chan_len(sp_timer_chan(t)));  // drained
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), nullptr, sp_deadline_in(50 * kMs)));
    ASSERT_EQ(0, sp_timer_reset(t, 5 * kMs));  // stopped: reset reports 0
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(5000 * kMs)));
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

TEST_P(TimeTest, TimerInSelectBesideAChannel) {
  RunInFiber([] {
    sp_chan_t *ch;
    ASSERT_EQ(0, sp_chan_make(&ch, sizeof(int), 0));
    sp_timer_t *t;
    ASSERT_EQ(0, sp_timer_start(&t, sp_deadline_in(20 * kMs)));
    int v;
    int64_t when;
    sp_case_t cs[2] = {{SP_RECV, ch, &v, 0, 0}, {SP_RECV, sp_timer_chan(t), &when, 0, 0}};
    EXPECT_EQ(1, sp_select(cs, 2, SP_FOREVER));
    EXPECT_EQ(0, sp_timer_free(t));
    EXPECT_EQ(0, sp_chan_free(ch));
  });
}

TEST_P(TimeTest, AfterFuncRunsInAFiberUnlessStopped) {
  static std::atomic<int> ran;
  static std::atomic<bool> in_fiber;
  ran = 0;
  RunInFiber([] {
    sp_timer_t *a, *b;
    ASSERT_EQ(0, sp_after_func(&a, sp_deadline_in(10 * kMs), [](void *) {
      in_fiber = sp_runtime_current() != nullptr;
      ran++;
    }, nullptr));
    ASSERT_EQ(0, sp_after_func(&b, sp_deadline_in(30 * kMs), [](void *) { ran += 100; }, nullptr));
    EXPECT_EQ(nullptr, sp_timer_chan(a));
    EXPECT_EQ(1, sp_timer_stop(b));
    sp_sleep_for(100 * kMs);
    EXPECT_EQ(0, sp_timer_free(a));
    EXPECT_EQ(0, sp_timer_free(b));
  });
  for (int i = 0; i < 500 && ran == 0; i++) usleep(1000);
  EXPECT_EQ(1, ran.load());
  EXPECT_TRUE(in_fiber.load());
}

TEST_P(TimeTest, MisuseIsAnError) {
  sp_timer_t *t = nullptr;
  EXPECT_EQ(-EPERM, sp_timer_start(&t, sp_deadline_in(kMs)));  // not a fiber
  EXPECT_EQ(-EINVAL, sp_timer_stop(nullptr));
  EXPECT_EQ(-EINVAL, sp_timer_free(nullptr));
  RunInFiber([] {
    sp_timer_t *t;
    EXPECT_EQ(-EINVAL, sp_ticker_start(&t, 0));
    EXPECT_EQ(-EINVAL, sp_after_func(&t, sp_deadline_in(kMs), nullptr, nullptr));
  });
}

TEST_P(TimeTest, FreeWithAWaiterIsRefused) {
  sp_timer_t *t = nullptr;
  RunInFiber([&] { ASSERT_EQ(0, sp_timer_start(&t, SP_FOREVER)); });  // never fires
  std::atomic<int> rc{1};
  std::thread waiter([&] { rc = sp_chan_recv(sp_timer_chan(t), nullptr, sp_deadline_in(300 * kMs)); });
  usleep(50000);
  EXPECT_EQ(-EBUSY, sp_timer_free(t));
  waiter.join();
  EXPECT_EQ(-ETIMEDOUT, rc.load());
  EXPECT_EQ(0, sp_timer_free(t));
}

SP_INSTANTIATE_WORKERS(TimeTest);

}  // namespace
