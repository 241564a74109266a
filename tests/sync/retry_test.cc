// retry_test.cc: retry with exponential backoff (sync/retry.c): attempt
// counts, backoff growth and cap, jitter bounds and reproducibility,
// permanent errors, the overall deadline, foreign threads, and
// cancellation by a context.
// The schedules are checked on virtual time (sched.c S6): each sleep ends at
// exactly its nanosecond, so the gaps between attempts equal the delays and
// a seed replays the same jittered schedule to the nanosecond. The tests on
// real time keep foreign threads (which really sleep) and several busy
// workers covered.
#include <errno.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "sync/sp_ctx.h"
#include "sync/sp_retry.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"
#include "tests/support/spindle_gtest.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000, kSec = 1000 * kMs;
constexpr int64_t kSlack = 2000 * kMs;  // how late a wake-up may be on a loaded box

// An operation that fails `fails` times with -EAGAIN, then returns 42,
// noting when each attempt started.
struct Flaky {
  int fails;
  std::atomic<int> calls{0};
  int64_t at[64];
  static int Op(void *p, int attempt, int64_t) {
    auto *f = static_cast<Flaky *>(p);
    int c = f->calls++;
    if (c < 64) f->at[c] = sp_now();
    if (attempt != c + 1) return -EPROTO;  // attempts count from 1, in order
    return c < f->fails ? -EAGAIN : 42;
  }
};

sp_retry_policy_t NoJitter(int max_attempts, int64_t initial, double mult, int64_t max_delay) {
  sp_retry_policy_t p;
  sp_retry_policy_init(&p);
  p.max_attempts = max_attempts;
  p.initial_delay = initial;
  p.multiplier = mult;
  p.max_delay = max_delay;
  p.jitter = SP_RETRY_JITTER_NONE;
  return p;
}

TEST(RetryTest, PolicyValidationAndDelays) {
  sp_retry_policy_t p = NoJitter(5, 10 * kMs, 2, 80 * kMs);
  int64_t want[] = {10, 20, 40, 80, 80, 80};
  for (int k = 1; k <= 6; k++) EXPECT_EQ(want[k - 1] * kMs, sp_retry_delay(&p, k, 0.3)) << k;
  EXPECT_EQ(-EINVAL, sp_retry_delay(&p, 0, 0.3));
  p.max_delay = 0;  // no cap: grows until it saturates
  EXPECT_EQ(640 * kMs, sp_retry_delay(&p, 7, 0.3));
  EXPECT_EQ((int64_t)1 << 62, sp_retry_delay(&p, 1000, 0.3));
  p.multiplier = 0.5;
  EXPECT_EQ(-EINVAL, sp_retry_delay(&p, 1, 0.3));
  EXPECT_EQ(-EINVAL, sp_retry(&p, Flaky::Op, nullptr, nullptr));
  p = NoJitter(5, 10 * kMs, 2, 80 * kMs);
  p.jitter = 7;
  EXPECT_EQ(-EINVAL, sp_retry(&p, Flaky::Op, nullptr, nullptr));
  p.jitter = SP_RETRY_JITTER_PROPORTIONAL;
  p.jitter_fraction = 1.5;
  EXPECT_EQ(-EINVAL, sp_retry(&p, Flaky::Op, nullptr, nullptr));
  p = NoJitter(-1, 10 * kMs, 2, 0);
  EXPECT_EQ(-EINVAL, sp_retry(&p, Flaky::Op, nullptr, nullptr));
  p = NoJitter(1, 10 * kMs, 2, 0);
  EXPECT_EQ(-EINVAL, sp_retry(&p, nullptr, nullptr, nullptr));
}

TEST(RetryTest, JitterBounds) {
  sp_retry_policy_t p = NoJitter(0, 100 * kMs, 2, 500 * kMs);
  p.jitter = SP_RETRY_JITTER_FULL;
  EXPECT_EQ(0, sp_retry_delay(&p, 2, 0.0));
  EXPECT_EQ(100 * kMs, sp_retry_delay(&p, 2, 0.5));
  p.jitter = SP_RETRY_JITTER_PROPORTIONAL;
  p.jitter_fraction = 0.25;
  EXPECT_EQ(150 * kMs, sp_retry_delay(&p, 2, 0.0));
  int64_t top = sp_retry_delay(&p, 2, 0.999999999);
  EXPECT_GT(top, 249 * kMs);
  EXPECT_LE(top, 250 * kMs);
  EXPECT_EQ(500 * kMs, sp_retry_delay(&p, 4, 0.99)) << "jitter above the cap is capped";
}

// From a foreign thread: the sleeps are real (nanosleep), attempts counted.
TEST(RetryTest, ForeignThreadRetriesUntilSuccess) {
  sp_retry_policy_t p = NoJitter(10, 5 * kMs, 2, 0);
  Flaky f{3};
  sp_retry_result_t res;
  int64_t t0 = sp_now();
  EXPECT_EQ(42, sp_retry(&p, Flaky::Op, &f, &res));
  int64_t took = sp_now() - t0;
  EXPECT_EQ(4, res.attempts);
  EXPECT_EQ(42, res.last_err);
  EXPECT_EQ(SP_RETRY_OK, res.stop);
  EXPECT_GE(took, (5 + 10 + 20) * kMs);
  EXPECT_LT(took, (5 + 10 + 20) * kMs + kSlack);
}

class RetryRtTest : public RtTest {};

// Many fibers (and a thread) retrying at once, each with its own seed:
// calls share nothing, every one succeeds after its failures.
TEST_P(RetryRtTest, ConcurrentCallsAreIndependent) {
  struct Arg {
    Flaky f{0};
    int r = 0, attempts = 0;
    uint64_t seed = 0;
  };
  const int n = (int)sptest::ScaledLive(64);
  std::vector<Arg> args(n + 1);
  auto body = [](Arg *a) {
    sp_retry_policy_t p = NoJitter(10, 1 * kMs, 2, 4 * kMs);
    p.jitter = SP_RETRY_JITTER_FULL;
    p.seed = a->seed;
    sp_retry_result_t res;
    a->r = sp_retry(&p, Flaky::Op, &a->f, &res);
    a->attempts = res.attempts;
  };
  static decltype(body) *bodyp;
  bodyp = &body;
  std::vector<sp_fiber_t> fs(n);
  for (int i = 0; i <= n; i++) {
    args[i].f.fails = i % 4;
    args[i].seed = 1 + i;
  }
  for (int i = 0; i < n; i++)
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], [](void *p) -> void * {
                (*bodyp)(static_cast<Arg *>(p));
                return nullptr;
              }, &args[i], nullptr));
  std::thread th([&] { body(&args[n]); });
  th.join();
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  for (int i = 0; i <= n; i++) {
    EXPECT_EQ(42, args[i].r) << i;
    EXPECT_EQ(i % 4 + 1, args[i].attempts) << i;
  }
}

SP_INSTANTIATE_WORKERS(RetryRtTest);

// ---- on virtual time ----
//
// One worker, virtual time and seeded scheduling (spindle_gtest.h): sp_retry
// sleeps with sp_sleep_until, which ends at exactly its deadline, so every
// gap between attempts is exactly the delay sp_retry chose, whatever
// interleaving the seed picks. Times are read with sp_now() in the fibers
// (Flaky::at); the test thread sees real time.

class RetryVirtualTest : public spindle::testing::SeededFiberTest {};

// Backoff grows by the multiplier up to the cap: the gaps between attempt
// starts are exactly the delays, and the run takes exactly their sum.
TEST_P(RetryVirtualTest, BackoffGrowsAndIsCappedExactly) {
  RunFiber([] {
    sp_retry_policy_t p = NoJitter(6, 4 * kSec, 2, 20 * kSec);
    Flaky f{100};
    sp_retry_result_t res;
    int64_t t0 = sp_now();
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Flaky::Op, &f, &res));
    EXPECT_EQ(6, res.attempts);
    EXPECT_EQ(6, f.calls.load());
    EXPECT_EQ(-EAGAIN, res.last_err);
    EXPECT_EQ(SP_RETRY_EXHAUSTED, res.stop);
    EXPECT_EQ(t0, f.at[0]) << "slept before the first attempt";
    int64_t want[] = {4, 8, 16, 20, 20};  // s
    for (int k = 0; k < 5; k++) EXPECT_EQ(want[k] * kSec, f.at[k + 1] - f.at[k]) << "gap " << k;
    EXPECT_EQ(t0 + 68 * kSec, sp_now()) << "no sleep after the last attempt";
  });
}

TEST_P(RetryVirtualTest, PermanentErrorsStopAtOnce) {
  RunFiber([] {
    sp_retry_policy_t p = NoJitter(10, 50 * kMs, 2, 0);
    static int calls;
    calls = 0;
    sp_retry_result_t res;
    // by the flag, on the second attempt: one sleep only
    int64_t t0 = sp_now();
    EXPECT_EQ(-EACCES, sp_retry(&p, [](void *, int attempt, int64_t) -> int {
                calls++;
                return attempt == 2 ? SP_RETRY_PERMANENT(-EACCES) : -EAGAIN;
              }, nullptr, &res));
    EXPECT_EQ(2, calls);
    EXPECT_EQ(2, res.attempts);
    EXPECT_EQ(-EACCES, res.last_err);
    EXPECT_EQ(SP_RETRY_PERMANENT, res.stop);
    EXPECT_EQ(t0 + 50 * kMs, sp_now());
    // by the predicate, on the first attempt: no sleep at all
    calls = 0;
    p.permanent = [](int err, void *) -> int { return err == -ENOENT; };
    t0 = sp_now();
    EXPECT_EQ(-ENOENT, sp_retry(&p, [](void *, int, int64_t) -> int { return calls++, -ENOENT; }, nullptr, &res));
    EXPECT_EQ(1, calls);
    EXPECT_EQ(SP_RETRY_PERMANENT, res.stop);
    EXPECT_EQ(t0, sp_now()) << "slept before giving up on a permanent error";
  });
}

// The overall deadline: the last attempt is made only if it can start
// before the deadline; no sleep runs past it; a past deadline means no
// attempt at all.
TEST_P(RetryVirtualTest, DeadlineStopsWithoutAPointlessSleep) {
  RunFiber([] {
    sp_retry_policy_t p = NoJitter(0, 40 * kMs, 2, 0);  // attempts at 0, 40, 120 ms
    int64_t t0 = sp_now();
    p.deadline = t0 + 100 * kMs;
    static int64_t seen_deadline;
    struct Op {
      static int Run(void *p, int attempt, int64_t deadline) {
        seen_deadline = deadline;
        return Flaky::Op(p, attempt, deadline);
      }
    };
    Flaky f{100};
    sp_retry_result_t res;
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Op::Run, &f, &res));
    EXPECT_EQ(SP_RETRY_DEADLINE, res.stop);
    EXPECT_EQ(p.deadline, seen_deadline) << "op was not given the deadline";
    EXPECT_EQ(2, res.attempts);
    EXPECT_EQ(t0 + 40 * kMs, f.at[1]);
    EXPECT_EQ(t0 + 40 * kMs, sp_now()) << "slept towards the deadline for nothing";

    // an attempt that can start exactly at the deadline is not made
    p.deadline = sp_now() + 40 * kMs;
    Flaky h{100};
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Flaky::Op, &h, &res));
    EXPECT_EQ(1, res.attempts);
    EXPECT_EQ(SP_RETRY_DEADLINE, res.stop);

    p.deadline = sp_now() - 1;
    Flaky g{0};
    EXPECT_EQ(-ETIMEDOUT, sp_retry(&p, Flaky::Op, &g, &res));
    EXPECT_EQ(0, res.attempts);
    EXPECT_EQ(0, g.calls.load());
    EXPECT_EQ(SP_RETRY_DEADLINE, res.stop);
  });
}

// A jittered schedule: the delays sp_retry sleeps (seen through notify)
// stay in bounds, each gap between attempts is exactly the delay notified,
// and the same policy seed replays the same schedule to the nanosecond.
TEST_P(RetryVirtualTest, JitteredScheduleRepeatsWithTheSeed) {
  struct Seen {
    std::vector<int64_t> delay, gap;  // notified; measured between attempts
  };
  auto run = [](int jitter, uint64_t seed) {
    Seen s;
    sp_retry_policy_t p = NoJitter(6, 1 * kSec, 2, 8 * kSec);
    p.jitter = jitter;
    p.jitter_fraction = 0.5;
    p.seed = seed;
    p.notify = [](int, int, int64_t delay, void *p) { static_cast<Seen *>(p)->delay.push_back(delay); };
    p.arg = &s;
    Flaky f{100};
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Flaky::Op, &f, nullptr));
    for (int k = 1; k < f.calls.load(); k++) s.gap.push_back(f.at[k] - f.at[k - 1]);
    return s;
  };
  RunFiber([&] {
    for (int jitter : {SP_RETRY_JITTER_FULL, SP_RETRY_JITTER_PROPORTIONAL}) {
      Seen a = run(jitter, 12345), b = run(jitter, 12345), c = run(jitter, 999);
      ASSERT_EQ(5u, a.delay.size());
      EXPECT_EQ(a.delay, a.gap) << "a gap between attempts is not the delay chosen";
      EXPECT_EQ(c.delay, c.gap);
      EXPECT_EQ(a.gap, b.gap) << "the same seed gave another schedule";
      EXPECT_NE(a.gap, c.gap) << "another seed gave the same schedule";
      for (size_t k = 0; k < a.delay.size(); k++) {
        int64_t base = std::min<int64_t>(kSec << k, 8 * kSec);
        if (jitter == SP_RETRY_JITTER_FULL) {
          EXPECT_GE(a.delay[k], 0);
          EXPECT_LE(a.delay[k], base);
        } else {
          EXPECT_GE(a.delay[k], base / 2);
          EXPECT_LE(a.delay[k], std::min<int64_t>(base * 3 / 2, 8 * kSec));
        }
      }
    }
  });
}

// Cancelled during a long sleep: sp_retry returns -ECANCELED in the instant
// of the cancel, with the attempts made and op's last error reported.
TEST_P(RetryVirtualTest, CancellationStopsPromptly) {
  RunFiber([] {
    struct Shared {
      sp_ctx_t *ctx;
      Flaky f{100};
      int r = 1;
      sp_retry_result_t res{};
      int64_t at = 0;
    } s;
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &s.ctx));
    int64_t t0 = sp_now();
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *p) -> void * {
                auto *s = static_cast<Shared *>(p);
                sp_ctx_t *prev = sp_ctx_enter(s->ctx);
                sp_retry_policy_t pol = NoJitter(0, 10 * kSec, 2, 0);  // attempts at 0, 10 s, 30 s
                s->r = sp_retry(&pol, Flaky::Op, &s->f, &s->res);
                s->at = sp_now();
                sp_ctx_leave(prev);
                return nullptr;
              }, &s, nullptr));
    ASSERT_EQ(0, sp_sleep_for(25 * kSec));  // into the second sleep
    ASSERT_EQ(0, sp_ctx_cancel(s.ctx, 0));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(-ECANCELED, s.r);
    EXPECT_EQ(t0 + 25 * kSec, s.at) << "the sleep was not cut short";
    EXPECT_EQ(2, s.res.attempts);
    EXPECT_EQ(t0 + 10 * kSec, s.f.at[1]);
    EXPECT_EQ(-EAGAIN, s.res.last_err);
    EXPECT_EQ(SP_RETRY_CANCELED, s.res.stop);
    sp_ctx_release(s.ctx);
  });
}

// A context deadline (sooner than the policy's) ends the retry with
// -ETIMEDOUT exactly then; an already cancelled context means no attempt
// at all; a cancel cause is passed through.
TEST_P(RetryVirtualTest, ContextDeadlineCauseAndAlreadyCancelled) {
  RunFiber([] {
    sp_retry_policy_t p = NoJitter(0, 20 * kMs, 1, 0);  // attempts at 0, 20, 40, 60 ms
    sp_ctx_t *c;
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 70 * kMs, &c));
    sp_ctx_t *prev = sp_ctx_enter(c);
    Flaky f{1000};
    sp_retry_result_t res;
    EXPECT_EQ(-ETIMEDOUT, sp_retry(&p, Flaky::Op, &f, &res));
    EXPECT_EQ(t0 + 70 * kMs, sp_now());
    EXPECT_EQ(4, res.attempts);
    EXPECT_EQ(SP_RETRY_CANCELED, res.stop);
    sp_ctx_leave(prev);
    sp_ctx_release(c);

    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &c));
    ASSERT_EQ(0, sp_ctx_cancel(c, -ESHUTDOWN));
    prev = sp_ctx_enter(c);
    Flaky g{0};
    EXPECT_EQ(-ESHUTDOWN, sp_retry(&p, Flaky::Op, &g, &res));
    EXPECT_EQ(0, g.calls.load());
    EXPECT_EQ(0, res.attempts);
    EXPECT_EQ(SP_RETRY_CANCELED, res.stop);
    sp_ctx_leave(prev);
    sp_ctx_release(c);
  });
}

SPINDLE_INSTANTIATE_SEEDED(RetryVirtualTest);

// Virtual time on 1, 2, 4 and 8 workers: many fibers retrying at once with
// full jitter, each with its own seed. Every gap between attempts is
// exactly the notified delay on one worker, and never shorter on several.
class RetryVirtualRtTest : public spindle::testing::FiberTest {
  void Configure(sp_config_t &c) override { c.virtual_time = 1; }
};

TEST_P(RetryVirtualRtTest, ConcurrentCallsKeepTheirOwnSchedules) {
  struct Arg {
    Flaky f{0};
    int r = 0, attempts = 0;
    uint64_t seed = 0;
    std::vector<int64_t> delay;
  };
  const int n = (int)sptest::ScaledLive(64);
  std::vector<Arg> args(n);
  for (int i = 0; i < n; i++) {
    args[i].f.fails = i % 6;
    args[i].seed = 1 + i;
  }
  RunFiber([&] {
    std::vector<sp_fiber_t> fs(n);
    for (int i = 0; i < n; i++)
      ASSERT_EQ(0, sp_spawn(nullptr, &fs[i], [](void *p) -> void * {
                  auto *a = static_cast<Arg *>(p);
                  sp_retry_policy_t pol = NoJitter(10, 1 * kSec, 2, 4 * kSec);
                  pol.jitter = SP_RETRY_JITTER_FULL;
                  pol.seed = a->seed;
                  pol.notify = [](int, int, int64_t d, void *p) { static_cast<Arg *>(p)->delay.push_back(d); };
                  pol.arg = a;
                  sp_retry_result_t res;
                  a->r = sp_retry(&pol, Flaky::Op, &a->f, &res);
                  a->attempts = res.attempts;
                  return nullptr;
                }, &args[i], nullptr));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(42, args[i].r) << i;
    ASSERT_EQ(i % 6 + 1, args[i].attempts) << i;
    ASSERT_EQ((size_t)(i % 6), args[i].delay.size()) << i;
    for (int k = 0; k < i % 6; k++) {
      int64_t gap = args[i].f.at[k + 1] - args[i].f.at[k];
      if (workers() == 1) {
        EXPECT_EQ(args[i].delay[k], gap) << "fiber " << i << " gap " << k;
      } else {
        EXPECT_GE(gap, args[i].delay[k]) << "fiber " << i << " gap " << k;
      }
    }
  }
  if (n > 6) {
    EXPECT_NE(args[n - 1].delay, args[n - 7].delay) << "two seeds, one schedule";
  }
}

SPINDLE_INSTANTIATE_WORKERS(RetryVirtualRtTest);

}  // namespace
