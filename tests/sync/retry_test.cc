// retry_test.cc: retry with exponential backoff (sync/retry.c): attempt
// counts, backoff growth and cap (measured: elapsed time never under the
// sum of the sleeps), jitter bounds and reproducibility, permanent errors,
// the overall deadline, foreign threads, and cancellation by a context.
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "sync/sp_ctx.h"
#include "sync/sp_retry.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000;
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

TEST(RetryTest, JitterBoundsAndSeeds) {
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

  // The delays sp_retry sleeps (seen through notify) stay in bounds and
  // repeat with the seed.
  struct Seen {
    std::vector<int64_t> d;
    static void Note(int, int, int64_t delay, void *p) { static_cast<Seen *>(p)->d.push_back(delay); }
  };
  auto run = [](int jitter, uint64_t seed) {
    Seen s;
    sp_retry_policy_t p = NoJitter(6, 1 * kMs, 2, 8 * kMs);
    p.jitter = jitter;
    p.jitter_fraction = 0.5;
    p.seed = seed;
    p.notify = &Seen::Note;
    p.arg = &s;
    Flaky f{100};
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Flaky::Op, &f, nullptr));  // a foreign thread: nanosleep
    return s.d;
  };
  for (int jitter : {SP_RETRY_JITTER_FULL, SP_RETRY_JITTER_PROPORTIONAL}) {
    auto a = run(jitter, 12345), b = run(jitter, 12345), c = run(jitter, 999);
    ASSERT_EQ(5u, a.size());
    EXPECT_EQ(a, b) << "the same seed gave other delays";
    EXPECT_NE(a, c) << "another seed gave the same delays";
    for (size_t k = 0; k < a.size(); k++) {
      int64_t base = std::min<int64_t>(kMs << k, 8 * kMs);
      if (jitter == SP_RETRY_JITTER_FULL) {
        EXPECT_GE(a[k], 0);
        EXPECT_LE(a[k], base);
      } else {
        EXPECT_GE(a[k], base / 2);
        EXPECT_LE(a[k], std::min<int64_t>(base * 3 / 2, 8 * kMs));
      }
    }
  }
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

// Backoff grows by the multiplier up to the cap: each gap between attempt
// starts is at least its delay (and not hugely more), and the whole run
// at least their sum.
TEST_P(RetryRtTest, BackoffGrowsAndIsCapped) {
  RunInFiber([&] {
    sp_retry_policy_t p = NoJitter(6, 4 * kMs, 2, 20 * kMs);
    Flaky f{100};
    sp_retry_result_t res;
    int64_t t0 = sp_now();
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Flaky::Op, &f, &res));
    int64_t took = sp_now() - t0;
    EXPECT_EQ(6, res.attempts);
    EXPECT_EQ(6, f.calls.load());
    EXPECT_EQ(-EAGAIN, res.last_err);
    EXPECT_EQ(SP_RETRY_EXHAUSTED, res.stop);
    int64_t want[] = {4, 8, 16, 20, 20};  // ms
    int64_t sum = 0;
    for (int k = 0; k < 5; k++) {
      int64_t gap = f.at[k + 1] - f.at[k];
      EXPECT_GE(gap, want[k] * kMs) << "gap " << k;
      EXPECT_LT(gap, want[k] * kMs + kSlack) << "gap " << k;
      sum += want[k] * kMs;
    }
    EXPECT_GE(took, sum);
  });
}

TEST_P(RetryRtTest, PermanentErrorsStopAtOnce) {
  RunInFiber([&] {
    sp_retry_policy_t p = NoJitter(10, 50 * kMs, 2, 0);
    static std::atomic<int> calls;
    calls = 0;
    sp_retry_result_t res;
    // by the flag, on the second attempt: one sleep only
    int64_t t0 = sp_now();
    EXPECT_EQ(-EACCES, sp_retry(&p, [](void *, int attempt, int64_t) -> int {
                calls++;
                return attempt == 2 ? SP_RETRY_PERMANENT(-EACCES) : -EAGAIN;
              }, nullptr, &res));
    EXPECT_EQ(2, calls.load());
    EXPECT_EQ(2, res.attempts);
    EXPECT_EQ(-EACCES, res.last_err);
    EXPECT_EQ(SP_RETRY_PERMANENT, res.stop);
    EXPECT_LT(sp_now() - t0, 50 * kMs + kSlack);
    // by the predicate, on the first attempt: no sleep at all
    calls = 0;
    p.permanent = [](int err, void *) -> int { return err == -ENOENT; };
    t0 = sp_now();
    EXPECT_EQ(-ENOENT, sp_retry(&p, [](void *, int, int64_t) -> int { return calls++, -ENOENT; }, nullptr, &res));
    EXPECT_EQ(1, calls.load());
    EXPECT_EQ(SP_RETRY_PERMANENT, res.stop);
    EXPECT_LT(sp_now() - t0, 50 * kMs) << "slept before giving up on a permanent error";
  });
}

// The overall deadline: the last attempt is made only if it can start
// before the deadline; no sleep runs past it; a past deadline means no
// attempt at all.
TEST_P(RetryRtTest, DeadlineStopsWithoutAPointlessSleep) {
  RunInFiber([&] {
    sp_retry_policy_t p = NoJitter(0, 40 * kMs, 2, 0);  // attempts at 0, 40, 120 ms
    int64_t t0 = sp_now();
    p.deadline = t0 + 100 * kMs;
    static std::atomic<int64_t> seen_deadline;
    struct Op {
      static int Run(void *p, int attempt, int64_t deadline) {
        seen_deadline = deadline;
        return Flaky::Op(p, attempt, deadline);
      }
    };
    Flaky f{100};
    sp_retry_result_t res;
    EXPECT_EQ(-EAGAIN, sp_retry(&p, Op::Run, &f, &res));
    int64_t took = sp_now() - t0;
    EXPECT_EQ(SP_RETRY_DEADLINE, res.stop);
    EXPECT_EQ(p.deadline, seen_deadline.load()) << "op was not given the deadline";
    EXPECT_GE(res.attempts, 1);
    EXPECT_LE(res.attempts, 2);
    if (res.attempts == 2) {
      EXPECT_GE(took, 40 * kMs);
    }
    EXPECT_LT(took, 100 * kMs) << "slept to or past the deadline for nothing";

    p.deadline = sp_now() - 1;
    Flaky g{0};
    EXPECT_EQ(-ETIMEDOUT, sp_retry(&p, Flaky::Op, &g, &res));
    EXPECT_EQ(0, res.attempts);
    EXPECT_EQ(0, g.calls.load());
    EXPECT_EQ(SP_RETRY_DEADLINE, res.stop);
  });
}

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

// ---- cancellation by the bound context (sync/sp_ctx.h) ----

// Cancelled during a long sleep: sp_retry returns -ECANCELED at once, with
// the attempts made and op's last error reported.
TEST_P(RetryRtTest, CancellationStopsPromptly) {
  struct Shared {
    sp_ctx_t *ctx;
    Flaky f{100};
    int r = 1;
    sp_retry_result_t res{};
    int64_t at = 0;
  } s;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &s.ctx));
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
              auto *s = static_cast<Shared *>(p);
              sp_ctx_t *prev = sp_ctx_enter(s->ctx);
              sp_retry_policy_t pol = NoJitter(0, 10000 * kMs, 2, 0);  // 10 s sleeps
              s->r = sp_retry(&pol, Flaky::Op, &s->f, &s->res);
              s->at = sp_now();
              sp_ctx_leave(prev);
              return nullptr;
            }, &s, nullptr));
  int64_t give_up = sp_now() + 10000 * kMs;
  while (s.f.calls.load() < 1 && sp_now() < give_up) usleep(1000);
  usleep(20000);  // into the sleep
  int64_t cancelled_at = sp_now();
  ASSERT_EQ(0, sp_ctx_cancel(s.ctx, 0));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-ECANCELED, s.r);
  EXPECT_LT(s.at - cancelled_at, kSlack) << "the sleep was not cut short";
  EXPECT_EQ(1, s.res.attempts);
  EXPECT_EQ(-EAGAIN, s.res.last_err);
  EXPECT_EQ(SP_RETRY_CANCELED, s.res.stop);
  sp_ctx_release(s.ctx);
}

// A context deadline (sooner than the policy's) ends the retry with
// -ETIMEDOUT; an already cancelled context means no attempt at all; a
// cancel cause is passed through.
TEST_P(RetryRtTest, ContextDeadlineCauseAndAlreadyCancelled) {
  RunInFiber([&] {
    sp_retry_policy_t p = NoJitter(0, 20 * kMs, 1, 0);
    sp_ctx_t *c;
    ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 70 * kMs, &c));
    sp_ctx_t *prev = sp_ctx_enter(c);
    Flaky f{1000};
    sp_retry_result_t res;
    int64_t t0 = sp_now();
    EXPECT_EQ(-ETIMEDOUT, sp_retry(&p, Flaky::Op, &f, &res));
    int64_t took = sp_now() - t0;
    EXPECT_GE(took, 60 * kMs);
    EXPECT_LT(took, 70 * kMs + kSlack);
    EXPECT_GE(res.attempts, 1);
    EXPECT_LE(res.attempts, 4);
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

SP_INSTANTIATE_WORKERS(RetryRtTest);

}  // namespace
