// ratelimit_test.cc: the token bucket (sync/ratelimit.c): burst and try,
// throughput against the rate, FIFO order of fibers and threads, large
// requests not overtaken, deadlines, and cancellation by a context.
// Most behaviour is checked on virtual time (sched.c S6), where every grant
// and timeout happens at exactly the nanosecond the bucket allows, so the
// times are asserted exactly. The tests on real time keep real scheduling
// covered (foreign threads, several workers under load): there, bounds are
// one-sided where the limiter guarantees them (it never grants early) and
// generous where the box may be slow (sanitizers, load).
#include <errno.h>
#include <math.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sync/sp_ctx.h"
#include "sync/sp_ratelimit.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"
#include "tests/support/spindle_gtest.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000, kSec = 1000 * kMs;
constexpr int64_t kSlack = 2000 * kMs;  // how late a wake-up may be on a loaded box

// Waits (this thread) until cond() holds; fails the test after 10 s.
template <class F>
bool Eventually(F cond) {
  int64_t give_up = sp_now() + 10000 * kMs;
  while (!cond()) {
    if (sp_now() > give_up) return false;
    usleep(500);
  }
  return true;
}

TEST(RateLimitTest, ArgumentsAndBurst) {
  sp_ratelimit_t *rl = nullptr;
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(nullptr, 1, 1));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, 0, 1));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, -1, 1));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, NAN, 1));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, INFINITY, 1));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, 10, 0));
  EXPECT_EQ(-EINVAL, sp_ratelimit_create(&rl, 1e-9, 1000000)) << "refill takes for ever";
  ASSERT_EQ(0, sp_ratelimit_create(&rl, 10, 5));
  EXPECT_EQ(5, sp_ratelimit_tokens(rl)) << "starts full";
  EXPECT_EQ(-EINVAL, sp_ratelimit_try(rl, 6));
  EXPECT_EQ(-EINVAL, sp_ratelimit_acquire(rl, 6, SP_FOREVER)) << "more than the burst never succeeds";
  EXPECT_EQ(-EINVAL, sp_ratelimit_acquire(rl, -1, SP_FOREVER));
  EXPECT_EQ(-EINVAL, sp_ratelimit_acquire(nullptr, 1, SP_FOREVER));
  EXPECT_EQ(0, sp_ratelimit_try(rl, 3));
  EXPECT_EQ(0, sp_ratelimit_acquire(rl, 2, 0));
  EXPECT_EQ(-EAGAIN, sp_ratelimit_try(rl, 1));
  EXPECT_EQ(-EAGAIN, sp_ratelimit_acquire(rl, 1, 0)) << "deadline 0 is a try";
  EXPECT_EQ(0, sp_ratelimit_acquire(rl, 0, 0)) << "nothing is always there";
  EXPECT_EQ(0, sp_ratelimit_tokens(rl));
  EXPECT_EQ(0, sp_ratelimit_waiting(rl));
  EXPECT_EQ(0, sp_ratelimit_free(rl));
  EXPECT_EQ(-EINVAL, sp_ratelimit_free(nullptr));
}

// A foreign thread waits (blocks) for a token: no sooner than the rate allows.
TEST(RateLimitTest, ForeignThreadWaitsForTheRefill) {
  sp_ratelimit_t *rl = nullptr;
  ASSERT_EQ(0, sp_ratelimit_create(&rl, 50, 2));  // 20 ms per token
  int64_t t0 = sp_now();
  ASSERT_EQ(0, sp_ratelimit_try(rl, 2));
  ASSERT_EQ(0, sp_ratelimit_acquire(rl, 2, SP_FOREVER));
  int64_t took = sp_now() - t0;
  EXPECT_GE(took, 40 * kMs) << "granted before the tokens were there";
  EXPECT_LT(took, 40 * kMs + kSlack);
  // The next token exists at t0 + 60 ms whenever the thread got back here
  // (tokens accrue from t0), so a deadline of t0 + 55 ms must time out. A
  // thread that was descheduled past 50 ms (a loaded machine, TSan) cannot
  // check this without racing the refill; it checks the other half only.
  int64_t d = t0 + 55 * kMs;
  if (sp_now() < t0 + 50 * kMs) {
    EXPECT_EQ(-ETIMEDOUT, sp_ratelimit_acquire(rl, 1, d));
    EXPECT_GE(sp_now(), d);
  }
  EXPECT_EQ(0, sp_ratelimit_acquire(rl, 1, SP_FOREVER));
  EXPECT_GE(sp_now(), t0 + 60 * kMs) << "granted before the token was there";
  EXPECT_EQ(0, sp_ratelimit_free(rl));
}

class RateLimitRtTest : public RtTest {};

// Fibers and a thread take tokens as fast as they can for 300 ms: the
// grants never exceed burst + rate * elapsed (exact), and come close to it
// (generous lower bound).
TEST_P(RateLimitRtTest, ThroughputMatchesTheRate) {
  struct Shared {
    sp_ratelimit_t *rl;
    int64_t stop;
    std::atomic<long> grants{0}, errors{0};
  } s;
  const double rate = 200;
  const int64_t burst = 10;
  int64_t t0 = sp_now();  // before create: the bucket fills from then on
  ASSERT_EQ(0, sp_ratelimit_create(&s.rl, rate, burst));
  s.stop = t0 + 300 * kMs;
  auto body = [](Shared *s) {
    for (;;) {
      int r = sp_ratelimit_acquire(s->rl, 1, s->stop);
      if (r == -ETIMEDOUT) break;
      if (r != 0) {
        s->errors++;
        break;
      }
      s->grants++;
    }
  };
  static decltype(body) *bodyp;
  bodyp = &body;
  std::vector<sp_fiber_t> fs(8);
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
                (*bodyp)(static_cast<Shared *>(p));
                return nullptr;
              }, &s, nullptr));
  std::thread th([&] { body(&s); });
  th.join();
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  double elapsed = (double)(sp_now() - t0) / 1e9;
  double expected = burst + rate * 0.3;  // 70
  EXPECT_EQ(0, s.errors.load());
  EXPECT_LE(s.grants.load(), (long)(burst + rate * elapsed) + 1) << "over the rate";
  EXPECT_GE(s.grants.load(), (long)(expected * 0.5)) << "far under the rate";
  EXPECT_EQ(0, sp_ratelimit_waiting(s.rl));
  EXPECT_EQ(0, sp_ratelimit_free(s.rl));
}

// Waiters (fibers and one foreign thread) queued one after another are
// served in that order: the try empties the bucket, so waiter i gets the
// (i+1)-th token, at t0 + (i+1) * 20 ms or later, and one served ahead of
// its turn reads the time too early. (The order they get back in is no
// proof: a waiter descheduled after its grant comes back after the next.)
TEST_P(RateLimitRtTest, WaitersAreServedInArrivalOrder) {
  struct Shared {
    sp_ratelimit_t *rl;
    std::atomic<int> done{0};
    int64_t at[8];  // when each was served; 0: it was not
  } s;
  struct Arg {
    Shared *s;
    int id;
  };
  const int n = 8, thread_id = 3;
  ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 50, 1));  // 20 ms per token
  int64_t t0 = sp_now();
  ASSERT_EQ(0, sp_ratelimit_try(s.rl, 1));
  auto body = [](Arg *a) {
    // a deadline, so that a lost wake-up fails the test instead of hanging it
    int64_t at = sp_ratelimit_acquire(a->s->rl, 1, sp_deadline_in(20000 * kMs)) == 0 ? sp_now() : 0;
    a->s->at[a->id] = at;
    a->s->done++;
  };
  static decltype(body) *bodyp;
  bodyp = &body;
  std::vector<Arg> args(n);
  std::vector<sp_fiber_t> fs;
  std::thread th;
  for (int i = 0; i < n; i++) {
    args[i] = {&s, i};
    if (i == thread_id) {
      th = std::thread([&, i] { body(&args[i]); });
    } else {
      fs.emplace_back();
      ASSERT_EQ(0, sp_spawn(rt_, &fs.back(), [](void *p) -> void * {
                  (*bodyp)(static_cast<Arg *>(p));
                  return nullptr;
                }, &args[i], nullptr));
    }
    // the next one arrives only once this one is in line (or served)
    ASSERT_TRUE(Eventually([&] { return sp_ratelimit_waiting(s.rl) + s.done.load() >= i + 1; }));
  }
  th.join();
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  for (int i = 0; i < n; i++) {
    ASSERT_NE(0, s.at[i]) << "waiter " << i << " was not served";
    EXPECT_GE(s.at[i], t0 + (i + 1) * 20 * kMs) << "waiter " << i << " served ahead of its turn";
  }
  EXPECT_GE(sp_now() - t0, n * 20 * kMs) << "more tokens than the rate gives";
  EXPECT_EQ(0, sp_ratelimit_free(s.rl));
}

// Many fibers and threads with small deadlines and mixed sizes: every call
// ends (granted or timed out), nobody is left waiting, free succeeds.
TEST_P(RateLimitRtTest, MixedStressLeavesNoWaiter) {
  struct Shared {
    sp_ratelimit_t *rl;
    std::atomic<long> ok{0}, timedout{0}, bad{0};
  } s;
  ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 2000, 8));
  auto body = [](Shared *s, unsigned seed) {
    for (int i = 0; i < 40; i++) {
      seed = seed * 1103515245u + 12345u;
      int64_t n = 1 + (seed >> 16) % 8;
      int r = sp_ratelimit_acquire(s->rl, n, sp_deadline_in(((seed >> 8) % 5) * kMs));
      if (r == 0) s->ok++;
      else if (r == -ETIMEDOUT || r == -EAGAIN) s->timedout++;
      else s->bad++;
    }
  };
  static decltype(body) *bodyp;
  bodyp = &body;
  std::vector<sp_fiber_t> fs(sptest::ScaledLive(32));
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
                (*bodyp)(static_cast<Shared *>(p), (unsigned)sp_fiber_id());
                return nullptr;
              }, &s, nullptr));
  std::thread th([&] { body(&s, 77); });
  th.join();
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(0, s.bad.load());
  EXPECT_GT(s.ok.load(), 0);
  EXPECT_EQ(0, sp_ratelimit_waiting(s.rl));
  EXPECT_EQ(0, sp_ratelimit_free(s.rl));
}

SP_INSTANTIATE_WORKERS(RateLimitRtTest);

// ---- on virtual time ----
//
// One worker, virtual time and seeded scheduling (spindle_gtest.h): the
// clock moves only when every fiber waits, and then straight to the next
// timer, so the times below are exact for whatever interleaving the seed
// picks (a failure prints SPINDLE_SEED=N, which replays it). Times are read
// with sp_now() in fibers (the test thread sees real time), and each
// limiter is created in a fiber, so that its bucket fills on the virtual
// clock. Waits have deadlines an hour off: a lost wake-up fails the test
// (at once, in virtual time) instead of hanging it.

class RateLimitVirtualTest : public spindle::testing::SeededFiberTest {};

constexpr int64_t kHour = 3600 * kSec;

// Spawns fn(arg) in the calling fiber's runtime.
sp_fiber_t Go(sp_fn_t fn, void *arg) {
  sp_fiber_t f{};
  EXPECT_EQ(0, sp_spawn(nullptr, &f, fn, arg, nullptr));
  return f;
}

// Yields until cond() holds. Meanwhile the virtual clock stands still: the
// caller stays runnable.
template <class F>
bool YieldUntil(F cond) {
  for (int i = 0; i < 1000000; i++) {
    if (cond()) return true;
    sp_yield();
  }
  return false;
}

// The burst is there at once; after it, one token per 1/rate exactly.
TEST_P(RateLimitVirtualTest, HundredPerSecondGrantsThe101stTokenAtTenMs) {
  RunFiber([] {
    sp_ratelimit_t *rl;
    ASSERT_EQ(0, sp_ratelimit_create(&rl, 100, 100));
    int64_t t0 = sp_now();
    for (int i = 0; i < 100; i++) ASSERT_EQ(0, sp_ratelimit_acquire(rl, 1, SP_FOREVER));
    EXPECT_EQ(t0, sp_now()) << "waited for the burst";
    EXPECT_EQ(-EAGAIN, sp_ratelimit_try(rl, 1));
    ASSERT_EQ(0, sp_ratelimit_acquire(rl, 1, t0 + kHour));
    EXPECT_EQ(t0 + 10 * kMs, sp_now()) << "the 101st token";
    for (int i = 0; i < 99; i++) ASSERT_EQ(0, sp_ratelimit_acquire(rl, 1, t0 + kHour));
    EXPECT_EQ(t0 + 1000 * kMs, sp_now()) << "200 tokens: the burst, then 100 in a second";
    EXPECT_EQ(0, sp_ratelimit_tokens(rl));
    EXPECT_EQ(0, sp_ratelimit_free(rl));
  });
}

// n tokens one by one with a burst of 1 take exactly (n - 1) costs; a cost
// that is not a whole number of ns is rounded up (never granted early).
TEST_P(RateLimitVirtualTest, FixedCountTakesExactlyItsTime) {
  RunFiber([] {
    sp_ratelimit_t *rl;
    ASSERT_EQ(0, sp_ratelimit_create(&rl, 200, 1));  // 5 ms per token
    int64_t t0 = sp_now();
    for (int i = 0; i < 40; i++) ASSERT_EQ(0, sp_ratelimit_acquire(rl, 1, t0 + kHour));
    EXPECT_EQ(t0 + 39 * 5 * kMs, sp_now());
    EXPECT_EQ(0, sp_ratelimit_free(rl));

    ASSERT_EQ(0, sp_ratelimit_create(&rl, 3, 1));  // 333333333.3 ns per token
    t0 = sp_now();
    for (int i = 1; i <= 3; i++) {
      ASSERT_EQ(0, sp_ratelimit_acquire(rl, 1, t0 + kHour));
      EXPECT_EQ(t0 + (i - 1) * 333333334, sp_now()) << "token " << i;
    }
    EXPECT_EQ(0, sp_ratelimit_free(rl));

    ASSERT_EQ(0, sp_ratelimit_create(&rl, 0.5, 2));  // one token every 2 s
    t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_acquire(rl, 2, 0));
    ASSERT_EQ(0, sp_ratelimit_acquire(rl, 2, t0 + kHour));
    EXPECT_EQ(t0 + 4 * kSec, sp_now());
    EXPECT_EQ(0, sp_ratelimit_free(rl));
  });
}

// Fibers queued one after another are served in that order, each exactly
// when its token is there.
TEST_P(RateLimitVirtualTest, WaitersAreServedInArrivalOrderAtExactTimes) {
  RunFiber([] {
    constexpr int n = 8;
    struct Shared {
      sp_ratelimit_t *rl;
      int pos = 0;
      int order[n];
      int64_t at[n];
    } s;
    struct Arg {
      Shared *s;
      int id;
    } args[n];
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 50, 1));  // 20 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(s.rl, 1));
    sp_fiber_t fs[n];
    for (int i = 0; i < n; i++) {
      args[i] = {&s, i};
      fs[i] = Go([](void *p) -> void * {
        auto *a = static_cast<Arg *>(p);
        if (sp_ratelimit_acquire(a->s->rl, 1, sp_deadline_in(kHour)) == 0) {
          a->s->at[a->id] = sp_now();
          a->s->order[a->s->pos++] = a->id;
        }
        return nullptr;
      }, &args[i]);
      // the next one arrives only once this one is in line
      ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == i + 1; }));
    }
    EXPECT_EQ(t0, sp_now()) << "the clock moved while a fiber was runnable";
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    ASSERT_EQ(n, s.pos);
    for (int i = 0; i < n; i++) {
      EXPECT_EQ(i, s.order[i]) << "served out of order at " << i;
      EXPECT_EQ(t0 + (i + 1) * 20 * kMs, s.at[i]) << "waiter " << i;
    }
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

// A large request at the head is not overtaken by a small one behind it,
// nor by try, although tokens for the small one are there.
TEST_P(RateLimitVirtualTest, LargeRequestIsNotOvertaken) {
  RunFiber([] {
    struct Shared {
      sp_ratelimit_t *rl;
      int pos = 0, big = 0, small = 0;
      int64_t big_at = 0, small_at = 0;
    } s;
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 100, 10));  // 10 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(s.rl, 10));
    sp_fiber_t fb = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      if (sp_ratelimit_acquire(s->rl, 10, sp_deadline_in(kHour)) == 0) s->big = ++s->pos, s->big_at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 1; }));
    sp_fiber_t fsm = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      if (sp_ratelimit_acquire(s->rl, 1, sp_deadline_in(kHour)) == 0) s->small = ++s->pos, s->small_at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 2; }));
    ASSERT_EQ(0, sp_sleep_for(30 * kMs));
    EXPECT_EQ(3, sp_ratelimit_tokens(s.rl));
    EXPECT_EQ(-EAGAIN, sp_ratelimit_try(s.rl, 1)) << "try jumped the queue";
    EXPECT_EQ(0, s.pos) << "granted early";
    ASSERT_EQ(0, sp_join(fb, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_join(fsm, nullptr, SP_FOREVER));
    EXPECT_EQ(1, s.big);
    EXPECT_EQ(2, s.small);
    EXPECT_EQ(t0 + 100 * kMs, s.big_at);
    EXPECT_EQ(t0 + 110 * kMs, s.small_at) << "the small request waited for one token after the big one";
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

// The head times out: it takes nothing, returns exactly at its deadline,
// and the waiter behind it takes its turn in the same instant.
TEST_P(RateLimitVirtualTest, DeadlineTakesNothingAndPassesTheTurnOn) {
  RunFiber([] {
    struct Shared {
      sp_ratelimit_t *rl;
      int64_t deadline;
      int big_r = 1, small_r = 1;
      int64_t big_at = 0, small_at = 0;
    } s;
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 100, 10));  // 10 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(s.rl, 10));
    s.deadline = t0 + 40 * kMs;  // 10 tokens need 100 ms
    sp_fiber_t fb = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      s->big_r = sp_ratelimit_acquire(s->rl, 10, s->deadline);
      s->big_at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 1; }));
    sp_fiber_t fsm = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      s->small_r = sp_ratelimit_acquire(s->rl, 2, sp_deadline_in(kHour));
      s->small_at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_EQ(0, sp_join(fb, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_join(fsm, nullptr, SP_FOREVER));
    EXPECT_EQ(-ETIMEDOUT, s.big_r);
    EXPECT_EQ(s.deadline, s.big_at);
    EXPECT_EQ(0, s.small_r) << "the waiter behind the timed-out head was not served";
    EXPECT_EQ(s.deadline, s.small_at) << "the waiter behind slept past its turn";
    EXPECT_EQ(2, sp_ratelimit_tokens(s.rl)) << "4 tokens at +40 ms, 2 taken: the head took none";
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

TEST_P(RateLimitVirtualTest, FreeWithAWaiterIsRefused) {
  RunFiber([] {
    struct Shared {
      sp_ratelimit_t *rl;
      int r = 1;
      int64_t at = 0;
    } s;
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 4, 1));  // 250 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(s.rl, 1));
    sp_fiber_t f = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      s->r = sp_ratelimit_acquire(s->rl, 1, sp_deadline_in(kHour));
      s->at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 1; }));
    EXPECT_EQ(-EBUSY, sp_ratelimit_free(s.rl));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(0, s.r);
    EXPECT_EQ(t0 + 250 * kMs, s.at);
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

// ---- cancellation by the bound context (sync/sp_ctx.h) ----

// A waiter whose context is cancelled returns -ECANCELED in that instant,
// takes nothing, and the waiter behind it gets its token as if the
// cancelled one had never been there.
TEST_P(RateLimitVirtualTest, CancelledContextEndsTheWait) {
  RunFiber([] {
    struct Shared {
      sp_ratelimit_t *rl;
      sp_ctx_t *ctx;
      int r = 1, behind_r = 1;
      int64_t at = 0, behind_at = 0;
    } s;
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, 10, 10));  // 100 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(s.rl, 10));
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &s.ctx));
    sp_fiber_t f = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      sp_ctx_t *prev = sp_ctx_enter(s->ctx);
      s->r = sp_ratelimit_acquire(s->rl, 10, SP_FOREVER);  // would take 1 s
      s->at = sp_now();
      sp_ctx_leave(prev);
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 1; }));
    sp_fiber_t g = Go([](void *p) -> void * {
      auto *s = static_cast<Shared *>(p);
      s->behind_r = sp_ratelimit_acquire(s->rl, 1, sp_deadline_in(kHour));
      s->behind_at = sp_now();
      return nullptr;
    }, &s);
    ASSERT_TRUE(YieldUntil([&] { return sp_ratelimit_waiting(s.rl) == 2; }));
    ASSERT_EQ(0, sp_sleep_for(50 * kMs));
    ASSERT_EQ(0, sp_ctx_cancel(s.ctx, 0));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    ASSERT_EQ(0, sp_join(g, nullptr, SP_FOREVER));
    EXPECT_EQ(-ECANCELED, s.r);
    EXPECT_EQ(t0 + 50 * kMs, s.at) << "not woken by the cancel";
    EXPECT_EQ(0, s.behind_r);
    EXPECT_EQ(t0 + 100 * kMs, s.behind_at);
    EXPECT_EQ(0, sp_ratelimit_waiting(s.rl));
    sp_ctx_release(s.ctx);
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

// A context's deadline ends the wait with -ETIMEDOUT exactly then; an
// already cancelled context fails at once even with tokens in the bucket
// (which stay there).
TEST_P(RateLimitVirtualTest, ContextDeadlineAndAlreadyCancelled) {
  RunFiber([] {
    sp_ratelimit_t *rl = nullptr;
    ASSERT_EQ(0, sp_ratelimit_create(&rl, 10, 5));  // 100 ms per token
    int64_t t0 = sp_now();
    ASSERT_EQ(0, sp_ratelimit_try(rl, 5));
    sp_ctx_t *c;
    ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 30 * kMs, &c));
    sp_ctx_t *prev = sp_ctx_enter(c);
    EXPECT_EQ(-ETIMEDOUT, sp_ratelimit_acquire(rl, 5, SP_FOREVER));
    EXPECT_EQ(t0 + 30 * kMs, sp_now());
    sp_ctx_leave(prev);
    sp_ctx_release(c);

    ASSERT_EQ(0, sp_sleep_for(150 * kMs));  // +180 ms: 1.8 tokens
    EXPECT_EQ(1, sp_ratelimit_tokens(rl)) << "the timed-out acquire took tokens";
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &c));
    ASSERT_EQ(0, sp_ctx_cancel(c, 0));
    prev = sp_ctx_enter(c);
    EXPECT_EQ(-ECANCELED, sp_ratelimit_acquire(rl, 1, SP_FOREVER));
    EXPECT_EQ(-ECANCELED, sp_ratelimit_acquire(rl, 0, SP_FOREVER));
    sp_ctx_leave(prev);
    sp_ctx_release(c);
    EXPECT_EQ(1, sp_ratelimit_tokens(rl)) << "a cancelled acquire took tokens";
    EXPECT_EQ(t0 + 180 * kMs, sp_now());
    EXPECT_EQ(0, sp_ratelimit_waiting(rl));
    EXPECT_EQ(0, sp_ratelimit_free(rl));
  });
}

SPINDLE_INSTANTIATE_SEEDED(RateLimitVirtualTest);

// Virtual time on 1, 2, 4 and 8 workers: exact on one, bounds on several.
class RateLimitVirtualRtTest : public spindle::testing::FiberTest {
  void Configure(sp_config_t &c) override { c.virtual_time = 1; }
};

// Fibers take tokens as fast as they can for 300 ms of virtual time: the
// burst plus one token per 5 ms, the 60th at the deadline itself.
TEST_P(RateLimitVirtualRtTest, ThroughputIsExactlyTheRate) {
  RunFiber([this] {
    struct Shared {
      sp_ratelimit_t *rl;
      int64_t stop;
      std::atomic<long> grants{0}, errors{0};
      std::atomic<int64_t> last{0};  // the latest grant
    } s;
    const double rate = 200;
    const int64_t burst = 10;
    ASSERT_EQ(0, sp_ratelimit_create(&s.rl, rate, burst));
    int64_t t0 = sp_now();
    s.stop = t0 + 300 * kMs;
    std::vector<sp_fiber_t> fs(8);
    for (auto &f : fs)
      f = Go([](void *p) -> void * {
        auto *s = static_cast<Shared *>(p);
        for (;;) {
          int r = sp_ratelimit_acquire(s->rl, 1, s->stop);
          if (r == -ETIMEDOUT) break;
          if (r != 0) {
            s->errors++;
            break;
          }
          s->grants++;
          int64_t now = sp_now(), m = s->last.load();
          while (now > m && !s->last.compare_exchange_weak(m, now)) {
          }
        }
        return nullptr;
      }, &s);
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(0, s.errors.load());
    // never over the rate, on any number of workers
    EXPECT_LE(s.grants.load(), burst + (long)(rate * (double)(s.last.load() - t0) / 1e9));
    if (workers() == 1) {
      EXPECT_EQ(burst + 60, s.grants.load());
      EXPECT_EQ(s.stop, s.last.load());
      EXPECT_EQ(s.stop, sp_now());
    } else {
      EXPECT_GE(s.grants.load(), burst + 50);
      EXPECT_GE(sp_now(), s.stop);
    }
    EXPECT_EQ(0, sp_ratelimit_waiting(s.rl));
    EXPECT_EQ(0, sp_ratelimit_free(s.rl));
  });
}

SPINDLE_INSTANTIATE_WORKERS(RateLimitVirtualRtTest);

}  // namespace
