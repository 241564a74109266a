// time_test.cc: timers, tickers and after-funcs on channels (sync/time.c,
// and periodic heap timers in runtime/timer.c). Each behaviour is checked
// on real time (on 1, 2, 4 and 8 workers) and on virtual time (sched.c S6),
// where a timer fires at exactly its deadline, a ticker exactly on its
// period, and which ticks a slow reader loses is known to the tick.
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/support/rt_fixture.h"
#include "tests/support/spindle_gtest.h"

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
    int64_t deadline = sp_deadline_in(30 * kMs);
    ASSERT_EQ(0, sp_timer_start(&t, deadline));
    // it cannot have fired before its deadline; after it, either is right
    // (stop drains a fired value, so nothing is delivered either way)
    int stopped = sp_timer_stop(t);
    if (sp_now() < deadline) {
      EXPECT_EQ(1, stopped);
    } else {
      EXPECT_LE(0, stopped);
    }
    EXPECT_EQ(0, sp_timer_stop(t));
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), nullptr, sp_deadline_in(80 * kMs)));
    // reset re-arms it; a fired, unread value is drained by the reset
    ASSERT_EQ(0, sp_timer_reset(t, sp_now()));
    sp_sleep_for(20 * kMs);  // it fires; its value stays unread
    int64_t t0 = sp_now(), when;
    EXPECT_EQ(0, sp_timer_reset(t, t0 + 40 * kMs));
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(5000 * kMs)));
    EXPECT_GE(when, t0 + 40 * kMs);  // the new time, not the stale one
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
  static std::atomic<int> ran, want;
  static std::atomic<bool> in_fiber;
  ran = 0;
  want = 1;
  RunInFiber([] {
    sp_timer_t *a, *b;
    ASSERT_EQ(0, sp_after_func(&a, sp_deadline_in(10 * kMs), [](void *) {
      in_fiber = sp_runtime_current() != nullptr;
      ran++;
    }, nullptr));
    int64_t b_at = sp_deadline_in(30 * kMs);
    ASSERT_EQ(0, sp_after_func(&b, b_at, [](void *) { ran += 100; }, nullptr));
    EXPECT_EQ(nullptr, sp_timer_chan(a));
    // b cannot have fired before its deadline; a stop after it may be late
    int stopped = sp_timer_stop(b);
    if (stopped == 0 && sp_now() >= b_at) {
      want = 101;
    } else {
      EXPECT_EQ(1, stopped);
    }
    sp_sleep_for(100 * kMs);
    EXPECT_EQ(0, sp_timer_free(a));
    EXPECT_EQ(0, sp_timer_free(b));
  });
  for (int i = 0; i < 10000 && ran != want; i++) usleep(1000);
  EXPECT_EQ(want.load(), ran.load());
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
  RunInFiber([&] { ASSERT_EQ(0, sp_timer_start(&t, SP_FOREVER)); });  // not armed
  const uint64_t parks0 = Parks();
  sp_fiber_t waiter;
  ASSERT_EQ(0, sp_spawn(rt_, &waiter, [](void *t) -> void * {
              sp_chan_t *c = sp_timer_chan(static_cast<sp_timer_t *>(t));
              return (void *)(intptr_t)sp_chan_recv(c, nullptr, SP_FOREVER);
            }, t, nullptr));
  ASSERT_LT(parks0, AwaitParks(parks0 + 1)) << "the waiter never blocked";
  EXPECT_EQ(-EBUSY, sp_timer_free(t));
  // refused: t is stopped but usable; arming it for now releases the waiter
  RunInFiber([&] { EXPECT_EQ(0, sp_timer_reset(t, sp_now())); });
  void *r;
  ASSERT_EQ(0, sp_join(waiter, &r, SP_FOREVER));
  EXPECT_EQ(0, (intptr_t)r);
  EXPECT_EQ(0, sp_timer_free(t));
}

SP_INSTANTIATE_WORKERS(TimeTest);

// ---- on virtual time ----
//
// One worker, virtual time and seeded scheduling (spindle_gtest.h): the
// clock jumps from timer to timer, and all timers due at one instant fire
// before any fiber they wake runs, so fire times, tick times and dropped
// ticks are exact for whatever interleaving the seed picks. Times are read
// with sp_now() in the fibers; the test thread sees real time.

class TimeVirtualTest : public spindle::testing::SeededFiberTest {};

constexpr int64_t kSec = 1000 * kMs, kMin = 60 * kSec, kHour = 60 * kMin;

TEST_P(TimeVirtualTest, TimerFiresOnceAtExactlyItsTime) {
  RunFiber([] {
    sp_timer_t *t;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_timer_start(&t, t0 + 30 * kMs));
    int64_t when = 0;
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + kHour));
    EXPECT_EQ(t0 + 30 * kMs, when);
    EXPECT_EQ(t0 + 30 * kMs, sp_now());
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), &when, sp_deadline_in(50 * kMs)));
    EXPECT_EQ(t0 + 80 * kMs, sp_now());
    EXPECT_EQ(0, sp_timer_stop(t));  // had fired
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

// A timer of ten minutes beside a channel whose value comes two minutes
// later: the select takes the timer at exactly ten minutes.
TEST_P(TimeVirtualTest, TimerOfTenMinutesInSelectBesideAChannel) {
  RunFiber([] {
    sp_chan_t *ch;
    ASSERT_EQ(0, sp_chan_make(&ch, sizeof(int64_t), 0));
    int64_t t0 = sp_now();
    sp_fiber_t sender;
    ASSERT_EQ(0, sp_spawn(nullptr, &sender, [](void *p) -> void * {
                sp_sleep_for(12 * kMin);
                int64_t now = sp_now();
                sp_chan_send(static_cast<sp_chan_t *>(p), &now, SP_FOREVER);
                return nullptr;
              }, ch, nullptr));
    sp_timer_t *t;
    ASSERT_EQ(0, sp_timer_start(&t, t0 + 10 * kMin));
    int64_t v = 0, when = 0;
    sp_case_t cs[2] = {{SP_RECV, ch, &v, 0, 0}, {SP_RECV, sp_timer_chan(t), &when, 0, 0}};
    EXPECT_EQ(1, sp_select(cs, 2, SP_FOREVER));
    EXPECT_EQ(t0 + 10 * kMin, when);
    EXPECT_EQ(t0 + 10 * kMin, sp_now());
    EXPECT_EQ(0, sp_select(cs, 1, SP_FOREVER));
    EXPECT_EQ(t0 + 12 * kMin, v);
    EXPECT_EQ(t0 + 12 * kMin, sp_now());
    ASSERT_EQ(0, sp_join(sender, nullptr, SP_FOREVER));
    EXPECT_EQ(0, sp_timer_free(t));
    EXPECT_EQ(0, sp_chan_free(ch));
  });
}

TEST_P(TimeVirtualTest, StopBeforeFiringDeliversNothing) {
  RunFiber([] {
    sp_timer_t *t;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_timer_start(&t, t0 + 30 * kMs));
    EXPECT_EQ(1, sp_timer_stop(t));
    EXPECT_EQ(0, sp_timer_stop(t));
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), nullptr, t0 + 80 * kMs));
    // reset re-arms it; a fired, unread value is drained by the reset
    ASSERT_EQ(0, sp_timer_reset(t, sp_now()));
    ASSERT_EQ(0, sp_sleep_for(20 * kMs));  // it fires at +80 ms; its value stays unread
    ASSERT_EQ(1u, sp_chan_len(sp_timer_chan(t)));
    EXPECT_EQ(0, sp_timer_reset(t, t0 + 140 * kMs));
    EXPECT_EQ(0u, sp_chan_len(sp_timer_chan(t))) << "the stale value was not drained";
    int64_t when;
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + kHour));
    EXPECT_EQ(t0 + 140 * kMs, when);  // the new time, not the stale one
    EXPECT_EQ(t0 + 140 * kMs, sp_now());
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

// Ticks come exactly on the period, counted from the start; while nobody
// reads, the channel keeps the first tick and drops the rest; the ticker
// keeps its phase; stop drains; reset starts a new period.
TEST_P(TimeVirtualTest, TickerTicksOnThePeriodAndDropsForASlowReader) {
  RunFiber([] {
    sp_timer_t *t;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ticker_start(&t, 10 * kMs));
    int64_t when;
    for (int i = 1; i <= 5; i++) {
      ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + kHour));
      EXPECT_EQ(t0 + i * 10 * kMs, when) << "tick " << i;
      EXPECT_EQ(when, sp_now());
    }
    ASSERT_EQ(0, sp_sleep_for(100 * kMs));  // ticks at +60 .. +150 ms; the channel holds one
    EXPECT_EQ(1u, sp_chan_len(sp_timer_chan(t)));
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, 0));
    EXPECT_EQ(t0 + 60 * kMs, when) << "not the first tick missed";
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + kHour));
    EXPECT_EQ(t0 + 160 * kMs, when) << "the ticker lost its phase";
    ASSERT_EQ(0, sp_sleep_for(25 * kMs));  // +185 ms: holds +170, dropped +180
    EXPECT_EQ(1, sp_timer_stop(t));
    EXPECT_EQ(0u, sp_chan_len(sp_timer_chan(t)));  // drained
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(sp_timer_chan(t), nullptr, sp_deadline_in(50 * kMs)));
    ASSERT_EQ(t0 + 235 * kMs, sp_now());
    ASSERT_EQ(0, sp_timer_reset(t, 5 * kMs));  // stopped: reset reports 0
    ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + kHour));
    EXPECT_EQ(t0 + 240 * kMs, when);
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

// Over a second, a reader that keeps up gets all 100 ticks of a 10 ms
// ticker; one that reads every 25 ms gets 40, each the first tick after
// its previous read (a tick due in the same instant as a read is fired
// first, so it is dropped while an older tick waits).
TEST_P(TimeVirtualTest, TickCountsOfAFastAndASlowReader) {
  RunFiber([] {
    sp_timer_t *t;
    int64_t t0 = sp_now(), when;
    ASSERT_EQ(0, sp_ticker_start(&t, 10 * kMs));
    int got = 0;
    while (sp_chan_recv(sp_timer_chan(t), &when, t0 + 1000 * kMs + 1) == 0) {
      got++;
      EXPECT_EQ(t0 + got * 10 * kMs, when);
    }
    EXPECT_EQ(100, got);
    EXPECT_EQ(0, sp_timer_free(t));

    t0 = sp_now();
    ASSERT_EQ(0, sp_ticker_start(&t, 10 * kMs));
    int64_t prev = 0;  // ms since t0 of the previous read
    for (int r = 1; r <= 40; r++) {
      ASSERT_EQ(0, sp_sleep_until(t0 + r * 25 * kMs));
      ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, 0)) << "read " << r;
      EXPECT_EQ(t0 + (prev / 10 + 1) * 10 * kMs, when) << "read " << r;
      prev = r * 25;
    }
    EXPECT_EQ(1, sp_timer_stop(t));
    EXPECT_EQ(0, sp_timer_free(t));

    t0 = sp_now();
    ASSERT_EQ(0, sp_ticker_start(&t, kMin));  // an hour of minute ticks
    for (int i = 1; i <= 60; i++) {
      ASSERT_EQ(0, sp_chan_recv(sp_timer_chan(t), &when, t0 + 2 * kHour));
      EXPECT_EQ(t0 + i * kMin, when);
    }
    EXPECT_EQ(t0 + kHour, sp_now());
    EXPECT_EQ(0, sp_timer_free(t));
  });
}

TEST_P(TimeVirtualTest, AfterFuncRunsAtExactlyItsTimeUnlessStopped) {
  static int ran;
  static int64_t ran_at;
  static bool in_fiber;
  ran = 0;
  RunFiber([] {
    sp_timer_t *a, *b;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_after_func(&a, t0 + 10 * kMs, [](void *) {
      in_fiber = sp_runtime_current() != nullptr;
      ran_at = sp_now();
      ran++;
    }, nullptr));
    ASSERT_EQ(0, sp_after_func(&b, t0 + 30 * kMs, [](void *) { ran += 100; }, nullptr));
    EXPECT_EQ(1, sp_timer_stop(b));
    ASSERT_EQ(0, sp_sleep_for(kHour));
    EXPECT_EQ(1, ran);
    EXPECT_EQ(t0 + 10 * kMs, ran_at);
    EXPECT_TRUE(in_fiber);
    EXPECT_EQ(0, sp_timer_free(a));
    EXPECT_EQ(0, sp_timer_free(b));
  });
}

SPINDLE_INSTANTIATE_SEEDED(TimeVirtualTest);

}  // namespace
