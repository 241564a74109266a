// breaker_test.cc: the circuit breaker (sync/breaker.c): transitions,
// exactly one trial in half-open among many fibers, stale tickets, and
// fibers and foreign threads hammering one breaker.
// The open timeout is checked on virtual time (sched.c S6), where a 30 s
// timeout passes at once and ends at exactly its nanosecond; the tests on
// real time keep foreign threads and several busy workers covered.
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "sync/sp_breaker.h"
#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"
#include "tests/support/spindle_gtest.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000, kSec = 1000 * kMs;

// Records every state change, in order.
struct Changes {
  std::mutex mu;
  std::vector<std::pair<int, int>> seen;
  static void Cb(sp_breaker_t *, int from, int to, void *arg) {
    auto *c = static_cast<Changes *>(arg);
    std::lock_guard<std::mutex> g(c->mu);
    c->seen.push_back({from, to});
  }
  std::vector<std::pair<int, int>> Get() {
    std::lock_guard<std::mutex> g(mu);
    return seen;
  }
};

int Fail(void *) { return -EIO; }
int Succeed(void *) { return 7; }

sp_breaker_t *Make(int threshold, int64_t timeout, int half_open_max, Changes *ch = nullptr) {
  sp_breaker_config_t cfg;
  sp_breaker_config_init(&cfg);
  cfg.failure_threshold = threshold;
  cfg.open_timeout = timeout;
  cfg.half_open_max = half_open_max;
  if (ch) {
    cfg.on_change = &Changes::Cb;
    cfg.arg = ch;
  }
  sp_breaker_t *b = nullptr;
  EXPECT_EQ(0, sp_breaker_create(&b, &cfg));
  return b;
}

// Opens b (closed, with the given threshold) by failing calls.
void Trip(sp_breaker_t *b, int threshold) {
  for (int i = 0; i < threshold; i++) EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  ASSERT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
}

// Waits (this thread) until an open breaker reports half-open.
void AwaitHalfOpen(sp_breaker_t *b) {
  int64_t give_up = sp_now() + 10000 * kMs;
  while (sp_breaker_state(b) != SP_BREAKER_HALF_OPEN && sp_now() < give_up) usleep(1000);
  ASSERT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
}

TEST(BreakerTest, ConfigValidationAndNames) {
  sp_breaker_config_t cfg;
  sp_breaker_config_init(&cfg);
  sp_breaker_t *b = nullptr;
  EXPECT_EQ(-EINVAL, sp_breaker_create(nullptr, &cfg));
  cfg.failure_threshold = -1;
  EXPECT_EQ(-EINVAL, sp_breaker_create(&b, &cfg));
  ASSERT_EQ(0, sp_breaker_create(&b, nullptr));  // defaults: 5 failures
  for (int i = 0; i < 4; i++) sp_breaker_call(b, Fail, nullptr);
  EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
  sp_breaker_call(b, Fail, nullptr);
  EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
  EXPECT_EQ(-EINVAL, sp_breaker_allow(b, nullptr));
  EXPECT_EQ(-EINVAL, sp_breaker_call(b, nullptr, nullptr));
  EXPECT_EQ(-EINVAL, sp_breaker_state(nullptr));
  EXPECT_STREQ("half-open", sp_breaker_state_name(SP_BREAKER_HALF_OPEN));
  EXPECT_STREQ("?", sp_breaker_state_name(9));
  sp_breaker_free(b);
  sp_breaker_free(nullptr);
}

TEST(BreakerTest, ConsecutiveFailuresOpenAndSuccessResetsTheStreak) {
  Changes ch;
  sp_breaker_t *b = Make(3, 1000 * kMs, 1, &ch);
  EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  EXPECT_EQ(7, sp_breaker_call(b, Succeed, nullptr));  // streak back to 0
  EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
  EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
  EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
  static std::atomic<int> ran;
  ran = 0;
  EXPECT_EQ(-ECONNREFUSED, sp_breaker_call(b, [](void *) { return ran++, 0; }, nullptr));
  EXPECT_EQ(0, ran.load()) << "an open breaker called fn";
  sp_breaker_ticket_t t;
  EXPECT_EQ(-ECONNREFUSED, sp_breaker_allow(b, &t));
  auto seen = ch.Get();
  ASSERT_EQ(1u, seen.size());
  EXPECT_EQ(std::make_pair((int)SP_BREAKER_CLOSED, (int)SP_BREAKER_OPEN), seen[0]);
  sp_breaker_free(b);
}

// On real time, from a foreign thread (the test's).
TEST(BreakerTest, OpenBecomesHalfOpenAfterTheTimeoutThenSuccessCloses) {
  Changes ch;
  sp_breaker_t *b = Make(1, 40 * kMs, 1, &ch);
  int64_t t0 = sp_now();
  Trip(b, 1);
  AwaitHalfOpen(b);
  EXPECT_GE(sp_now() - t0, 40 * kMs) << "half-open before the timeout";
  EXPECT_EQ(7, sp_breaker_call(b, Succeed, nullptr));
  EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
  auto seen = ch.Get();
  ASSERT_EQ(3u, seen.size());
  EXPECT_EQ(std::make_pair((int)SP_BREAKER_OPEN, (int)SP_BREAKER_HALF_OPEN), seen[1]);
  EXPECT_EQ(std::make_pair((int)SP_BREAKER_HALF_OPEN, (int)SP_BREAKER_CLOSED), seen[2]);
  sp_breaker_free(b);
}

class BreakerRtTest : public RtTest {};

// Many fibers arrive at a half-open breaker at once: exactly one trial runs,
// every other caller is rejected with -EBUSY while it is in flight, and the
// trial's outcome decides the state.
TEST_P(BreakerRtTest, ExactlyOneTrialAmongManyFibers) {
  for (int outcome = 0; outcome < 2; outcome++) {
    struct Shared {
      sp_breaker_t *b;
      sptest::Gate start, finish;
      std::atomic<int> trials{0}, busy{0}, other{0};
      std::atomic<int64_t> returned{0};  // when the trial returned (before its record)
      int result;
      Changes ch;
    } s;
    s.b = Make(1, 30 * kMs, 1, &s.ch);
    s.result = outcome == 0 ? 0 : -EIO;
    Trip(s.b, 1);
    AwaitHalfOpen(s.b);
    const int n = 64;
    std::vector<sp_fiber_t> fs(n);
    for (auto &f : fs)
      ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
                  auto *s = static_cast<Shared *>(p);
                  s->start.Wait();
                  int r = sp_breaker_call(s->b, [](void *p) -> int {
                    auto *s = static_cast<Shared *>(p);
                    s->trials++;
                    s->finish.Wait();  // in flight until every other caller was turned away
                    s->returned = sp_now();
                    return s->result;
                  }, s);
                  if (r == -EBUSY) s->busy++;
                  else if (r != s->result) s->other++;
                  return nullptr;
                }, &s, nullptr));
    while (s.start.Waiting() < (size_t)n) usleep(1000);
    s.start.Open();
    int64_t give_up = sp_now() + 30000 * kMs;
    while (s.busy.load() < n - 1 && s.other.load() == 0 && sp_now() < give_up) usleep(1000);
    EXPECT_EQ(1, s.trials.load());
    EXPECT_EQ(n - 1, s.busy.load());
    s.finish.Open();
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    EXPECT_EQ(1, s.trials.load());
    EXPECT_EQ(0, s.other.load());
    // A failed trial reopens it for 30 ms, which the joins may outlast:
    // half-open again is right only once that much passed since the trial.
    int state = sp_breaker_state(s.b);
    int64_t since = sp_now() - s.returned.load();
    std::vector<std::pair<int, int>> want = {
        {SP_BREAKER_CLOSED, SP_BREAKER_OPEN},
        {SP_BREAKER_OPEN, SP_BREAKER_HALF_OPEN},
        {SP_BREAKER_HALF_OPEN, outcome == 0 ? SP_BREAKER_CLOSED : SP_BREAKER_OPEN}};
    if (outcome == 1 && state == SP_BREAKER_HALF_OPEN) {
      EXPECT_GE(since, 30 * kMs) << "half-open again before the timeout";
      want.push_back({SP_BREAKER_OPEN, SP_BREAKER_HALF_OPEN});
    } else {
      EXPECT_EQ(outcome == 0 ? SP_BREAKER_CLOSED : SP_BREAKER_OPEN, state);
    }
    EXPECT_EQ(want, s.ch.Get());
    sp_breaker_free(s.b);
  }
}

// Fibers and foreign threads hammer one breaker whose service fails in
// bursts. The state changes the callback sees must form a valid path
// (closed -> open -> half-open -> closed | open), and while half-open no
// more than one trial may be in flight.
TEST_P(BreakerRtTest, ConcurrentCallersSeeAValidStateMachine) {
  struct Shared {
    sp_breaker_t *b;
    Changes ch;
    std::atomic<int> in_trial{0}, max_in_trial{0}, calls{0}, stop{0};
  } s;
  sp_breaker_config_t cfg;
  sp_breaker_config_init(&cfg);
  cfg.failure_threshold = 3;
  cfg.open_timeout = 2 * kMs;
  cfg.on_change = &Changes::Cb;
  cfg.arg = &s.ch;
  ASSERT_EQ(0, sp_breaker_create(&s.b, &cfg));
  auto body = [](Shared *s, unsigned seed) {
    while (!s->stop.load()) {
      seed = seed * 1103515245u + 12345u;
      bool fail = (seed >> 16) % 3 == 0;
      sp_breaker_ticket_t t;
      if (sp_breaker_allow(s->b, &t) != 0) {
        if (sp_runtime_current()) sp_yield();
        else std::this_thread::yield();
        continue;
      }
      s->calls++;
      if (t.state == SP_BREAKER_HALF_OPEN) {
        int now = ++s->in_trial;
        int m = s->max_in_trial.load();
        while (now > m && !s->max_in_trial.compare_exchange_weak(m, now)) {
        }
      }
      if (sp_runtime_current()) sp_yield();
      if (t.state == SP_BREAKER_HALF_OPEN) s->in_trial--;
      sp_breaker_record(s->b, &t, fail ? -EIO : 0);
    }
  };
  static decltype(body) *bodyp;
  bodyp = &body;
  const int nf = 16, nt = 2;
  std::vector<sp_fiber_t> fs(nf);
  for (int i = 0; i < nf; i++)
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], [](void *p) -> void * {
                (*bodyp)(static_cast<Shared *>(p), (unsigned)sp_fiber_id());
                return nullptr;
              }, &s, nullptr));
  std::vector<std::thread> ts;
  for (int i = 0; i < nt; i++) ts.emplace_back([&, i] { body(&s, 1000u + i); });
  usleep(300000);
  s.stop = 1;
  for (auto &t : ts) t.join();
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_LE(s.max_in_trial.load(), 1) << "two trials in flight at once";
  int final_state = sp_breaker_state(s.b);  // may settle an expired open first
  auto seen = s.ch.Get();
  EXPECT_GT(s.calls.load(), 0);
  int state = SP_BREAKER_CLOSED;
  for (auto &c : seen) {
    ASSERT_EQ(state, c.first) << "a change from a state it was not in";
    bool ok = (c.first == SP_BREAKER_CLOSED && c.second == SP_BREAKER_OPEN) ||
              (c.first == SP_BREAKER_OPEN && c.second == SP_BREAKER_HALF_OPEN) ||
              (c.first == SP_BREAKER_HALF_OPEN && c.second != SP_BREAKER_HALF_OPEN);
    ASSERT_TRUE(ok) << c.first << " -> " << c.second;
    state = c.second;
  }
  EXPECT_EQ(state, final_state);
  sp_breaker_free(s.b);
}

SP_INSTANTIATE_WORKERS(BreakerRtTest);

// ---- on virtual time ----
//
// One worker, virtual time and seeded scheduling (spindle_gtest.h): a fiber
// sleeps to the nanosecond a timeout ends, so a breaker is seen open at
// one nanosecond before and half-open at the timeout itself, and long
// timeouts cost no real time. sp_now() in these fibers reads the virtual
// clock, and so does the breaker called from them.

class BreakerVirtualTest : public spindle::testing::SeededFiberTest {};

TEST_P(BreakerVirtualTest, DefaultsOpenAfterFiveFailuresForOneSecond) {
  RunFiber([] {
    sp_breaker_t *b = nullptr;
    ASSERT_EQ(0, sp_breaker_create(&b, nullptr));
    Trip(b, 5);
    int64_t opened = sp_now();
    ASSERT_EQ(0, sp_sleep_until(opened + kSec - 1));
    EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
    ASSERT_EQ(0, sp_sleep_until(opened + kSec));
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
    sp_breaker_free(b);
  });
}

TEST_P(BreakerVirtualTest, OpenForExactlyTheTimeoutThenATrialCloses) {
  RunFiber([] {
    Changes ch;
    sp_breaker_t *b = Make(1, 30 * kSec, 1, &ch);
    Trip(b, 1);
    int64_t opened = sp_now();
    ASSERT_EQ(0, sp_sleep_until(opened + 30 * kSec - 1));
    sp_breaker_ticket_t t;
    EXPECT_EQ(-ECONNREFUSED, sp_breaker_allow(b, &t)) << "half-open before the timeout";
    EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
    ASSERT_EQ(0, sp_sleep_until(opened + 30 * kSec));
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b)) << "still open at the timeout";
    EXPECT_EQ(7, sp_breaker_call(b, Succeed, nullptr));
    EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
    auto seen = ch.Get();
    ASSERT_EQ(3u, seen.size());
    EXPECT_EQ(std::make_pair((int)SP_BREAKER_CLOSED, (int)SP_BREAKER_OPEN), seen[0]);
    EXPECT_EQ(std::make_pair((int)SP_BREAKER_OPEN, (int)SP_BREAKER_HALF_OPEN), seen[1]);
    EXPECT_EQ(std::make_pair((int)SP_BREAKER_HALF_OPEN, (int)SP_BREAKER_CLOSED), seen[2]);
    sp_breaker_free(b);
  });
}

// A failed trial opens the breaker for a whole new timeout, counted from
// the failure.
TEST_P(BreakerVirtualTest, FailedTrialReopensForAnotherTimeout) {
  RunFiber([] {
    sp_breaker_t *b = Make(1, 30 * kSec, 1);
    Trip(b, 1);
    int64_t opened = sp_now();
    ASSERT_EQ(0, sp_sleep_until(opened + 45 * kSec));  // well past the timeout
    EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr)) << "the trial was not let through";
    EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
    sp_breaker_ticket_t t;
    EXPECT_EQ(-ECONNREFUSED, sp_breaker_allow(b, &t));
    ASSERT_EQ(0, sp_sleep_until(opened + 75 * kSec - 1));
    EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b)) << "the reopened breaker did not wait a full timeout";
    ASSERT_EQ(0, sp_sleep_until(opened + 75 * kSec));
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
    sp_breaker_free(b);
  });
}

// A call let through while closed, recorded after the breaker opened and
// went half-open, must neither close it nor use up the trial.
TEST_P(BreakerVirtualTest, StaleTicketsAreIgnored) {
  RunFiber([] {
    sp_breaker_t *b = Make(2, 20 * kMs, 1);
    sp_breaker_ticket_t old1, old2, trial, t;
    ASSERT_EQ(0, sp_breaker_allow(b, &old1));
    ASSERT_EQ(0, sp_breaker_allow(b, &old2));
    Trip(b, 2);
    EXPECT_EQ(-ESTALE, sp_breaker_record(b, &old1, -EIO)) << "counted against an open breaker";
    ASSERT_EQ(0, sp_sleep_for(20 * kMs));
    ASSERT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
    EXPECT_EQ(-ESTALE, sp_breaker_record(b, &old2, 0));
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b)) << "a stale success closed it";
    ASSERT_EQ(0, sp_breaker_allow(b, &trial)) << "a stale record used up the trial";
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, trial.state);
    EXPECT_EQ(-EBUSY, sp_breaker_allow(b, &t));
    EXPECT_EQ(0, sp_breaker_record(b, &trial, 0));
    EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
    EXPECT_EQ(-ESTALE, sp_breaker_record(b, &trial, 0)) << "a ticket counted twice";
    sp_breaker_free(b);
  });
}

TEST_P(BreakerVirtualTest, SeveralTrialsAllMustSucceed) {
  RunFiber([] {
    sp_breaker_t *b = Make(1, 20 * kMs, 3);
    for (int round = 0; round < 2; round++) {
      Trip(b, 1);
      ASSERT_EQ(0, sp_sleep_for(20 * kMs));
      ASSERT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
      sp_breaker_ticket_t t[3], extra;
      for (auto &x : t) ASSERT_EQ(0, sp_breaker_allow(b, &x));
      EXPECT_EQ(-EBUSY, sp_breaker_allow(b, &extra));
      EXPECT_EQ(0, sp_breaker_record(b, &t[0], 0));
      EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
      if (round == 0) {  // the rest succeed: closed
        EXPECT_EQ(0, sp_breaker_record(b, &t[1], 0));
        EXPECT_EQ(0, sp_breaker_record(b, &t[2], 0));
        EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
      } else {  // one fails: open again, the last one is stale
        EXPECT_EQ(0, sp_breaker_record(b, &t[1], -EIO));
        EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
        EXPECT_EQ(-ESTALE, sp_breaker_record(b, &t[2], 0));
        EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
      }
    }
    sp_breaker_free(b);
  });
}

// The classifier: -ECANCELED counts for nothing and frees the trial slot;
// -EINVAL (say, a caller bug) is not the service's failure.
TEST_P(BreakerVirtualTest, ClassifierIgnoresAndReclassifies) {
  RunFiber([] {
    sp_breaker_config_t cfg;
    sp_breaker_config_init(&cfg);
    cfg.failure_threshold = 2;
    cfg.open_timeout = 20 * kMs;
    cfg.classify = [](int r, void *) -> int {
      if (r == -ECANCELED) return SP_BREAKER_IGNORE;
      return r < 0 && r != -EINVAL ? SP_BREAKER_FAILURE : SP_BREAKER_SUCCESS;
    };
    sp_breaker_t *b = nullptr;
    ASSERT_EQ(0, sp_breaker_create(&b, &cfg));
    for (int i = 0; i < 10; i++) {
      EXPECT_EQ(-EINVAL, sp_breaker_call(b, [](void *) { return -EINVAL; }, nullptr));
      EXPECT_EQ(-ECANCELED, sp_breaker_call(b, [](void *) { return -ECANCELED; }, nullptr));
    }
    EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
    EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr));
    EXPECT_EQ(-ECANCELED, sp_breaker_call(b, [](void *) { return -ECANCELED; }, nullptr));
    EXPECT_EQ(-EIO, sp_breaker_call(b, Fail, nullptr)) << "ignored results break no streak";
    EXPECT_EQ(SP_BREAKER_OPEN, sp_breaker_state(b));
    ASSERT_EQ(0, sp_sleep_for(20 * kMs));
    ASSERT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
    sp_breaker_ticket_t t, u;
    ASSERT_EQ(0, sp_breaker_allow(b, &t));
    EXPECT_EQ(-EBUSY, sp_breaker_allow(b, &u));
    EXPECT_EQ(0, sp_breaker_record(b, &t, -ECANCELED));  // abandoned trial
    EXPECT_EQ(SP_BREAKER_HALF_OPEN, sp_breaker_state(b));
    ASSERT_EQ(0, sp_breaker_allow(b, &u)) << "the abandoned trial kept its slot";
    EXPECT_EQ(0, sp_breaker_record(b, &u, 1));
    EXPECT_EQ(SP_BREAKER_CLOSED, sp_breaker_state(b));
    sp_breaker_free(b);
  });
}

// Many fibers wake at the very instant the timeout ends: exactly one trial
// runs (for a second of virtual time); every other caller is turned away
// with -EBUSY in that same instant, and the trial's outcome decides.
TEST_P(BreakerVirtualTest, ExactlyOneTrialAmongFibersArrivingAtOnce) {
  for (int outcome = 0; outcome < 2; outcome++) {
    RunFiber([outcome] {
      struct Shared {
        sp_breaker_t *b;
        int64_t at;  // when the timeout ends
        int result;
        int trials = 0, busy = 0, other = 0, late = 0;
      } s;
      s.b = Make(1, 30 * kSec, 1);
      s.result = outcome == 0 ? 0 : -EIO;
      Trip(s.b, 1);
      s.at = sp_now() + 30 * kSec;
      const int n = 64;
      std::vector<sp_fiber_t> fs(n);
      for (auto &f : fs)
        ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *p) -> void * {
                    auto *s = static_cast<Shared *>(p);
                    sp_sleep_until(s->at);
                    int r = sp_breaker_call(s->b, [](void *p) -> int {
                      auto *s = static_cast<Shared *>(p);
                      s->trials++;
                      sp_sleep_for(kSec);  // in flight while the others arrive
                      return s->result;
                    }, s);
                    if (r == -EBUSY) s->busy++, s->late += sp_now() != s->at;
                    else if (r != s->result) s->other++;
                    return nullptr;
                  }, &s, nullptr));
      for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
      EXPECT_EQ(1, s.trials);
      EXPECT_EQ(n - 1, s.busy);
      EXPECT_EQ(0, s.late) << "turned away after the instant they arrived in";
      EXPECT_EQ(0, s.other);
      EXPECT_EQ(s.at + kSec, sp_now());
      EXPECT_EQ(outcome == 0 ? SP_BREAKER_CLOSED : SP_BREAKER_OPEN, sp_breaker_state(s.b));
      sp_breaker_free(s.b);
    });
  }
}

SPINDLE_INSTANTIATE_SEEDED(BreakerVirtualTest);

}  // namespace
