// group_test.cc: task groups (sync/group.c): success, the first failure
// cancelling siblings, every failure kept, the limit, the wait deadline,
// nested groups, foreign threads and misuse, on 1/2/4/8 workers.
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "sync/sp_ctx.h"
#include "sync/sp_group.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSec = 1000 * kMs;

class GroupTest : public RtTest {};

// A channel nobody sends to: receivers block until cancelled (or closed).
struct Chan {
  sp_chan_t *c = nullptr;
  Chan() { EXPECT_EQ(0, sp_chan_make(&c, 0, 0)); }
  ~Chan() { EXPECT_EQ(0, sp_chan_free(c)); }
};

// Waits (parking) until v reaches n, or fails the test after 30 s.
void AwaitCount(const std::atomic<int> &v, int n) {
  int64_t end = sp_deadline_in(30 * kSec);
  while (v.load() < n && sp_now() < end) sp_sleep_for(200000);
  ASSERT_GE(v.load(), n) << "members did not start in 30 s";
}

TEST_P(GroupTest, ManyMembersSucceed) {
  static std::atomic<int> ran;
  ran = 0;
  const int n = (int)sptest::ScaledLive(20000);
  RunInFiber([&] {
    sp_group_t *g;
    ASSERT_EQ(0, sp_group_init(&g, nullptr, 0));
    for (int i = 0; i < n; i++)
      ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                  if (sp_ctx_current() == nullptr) return -EFAULT;  // no context entered
                  ran++;
                  return 0;
                }, nullptr));
    EXPECT_EQ(0, sp_group_wait(g, SP_FOREVER));
    EXPECT_EQ(n, ran.load());
    EXPECT_EQ(0, sp_group_errors(g, nullptr, 0));
    EXPECT_EQ(0, sp_group_free(g));
  });
}

// Members return their blocked call's result: a sibling's failure must
// make sp_sleep_for and sp_chan_recv return -ECANCELED long before 60 s.
struct Blocked {
  sp_chan_t *never;
  std::atomic<int> started{0}, cancelled{0}, other{0};
  int total;
};

TEST_P(GroupTest, FirstErrorWinsAndCancelsSiblings) {
  Chan never;
  static Blocked b;
  b.never = never.c;
  b.started = b.cancelled = b.other = 0;
  const int k = 8;  // sleepers and as many receivers
  b.total = 2 * k;
  RunInFiber([&] {
    sp_group_t *g;
    ASSERT_EQ(0, sp_group_init(&g, nullptr, 0));
    for (int i = 0; i < k; i++) {
      ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                  b.started++;
                  int rc = sp_sleep_for(60 * kSec);
                  (rc == -ECANCELED ? b.cancelled : b.other)++;
                  return rc;
                }, nullptr));
      ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                  b.started++;
                  int rc = sp_chan_recv(b.never, nullptr, SP_FOREVER);
                  (rc == -ECANCELED ? b.cancelled : b.other)++;
                  return rc;
                }, nullptr));
    }
    static int64_t failed_at;
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                AwaitCount(b.started, b.total);
                sp_sleep_for(5 * kMs);  // let the last ones reach their call
                failed_at = sp_now();
                return -EIO;
              }, nullptr));
    EXPECT_EQ(-EIO, sp_group_wait(g, sp_deadline_in(30 * kSec)));
    int64_t took = sp_now() - failed_at;
    EXPECT_LT(took, 10 * kSec) << "siblings were not cancelled promptly";
    EXPECT_EQ(2 * k, b.cancelled.load());
    EXPECT_EQ(0, b.other.load());
    int errs[4] = {0};
    EXPECT_EQ(1, sp_group_errors(g, errs, 4)) << "cancelled siblings are not failures";
    EXPECT_EQ(-EIO, errs[0]);
    EXPECT_EQ(-ECANCELED, sp_ctx_err(sp_group_ctx(g)));
    EXPECT_EQ(-ECANCELED, sp_group_go(g, [](void *) -> int { return 0; }, nullptr))
        << "a cancelled group starts nothing";
    EXPECT_EQ(0, sp_group_free(g));
  });
}

TEST_P(GroupTest, AllErrorsCollected) {
  static sp_chan_t *go_ahead;  // members wait for it: all exist before any fails
  static const int codes[] = {-EIO, 0, -ENOENT, -EPERM, 0, -EIO, -EACCES, 1};
  const int n = sizeof codes / sizeof codes[0];
  RunInFiber([&] {
    for (int round = 0; round < 3; round++) {
      Chan start;
      go_ahead = start.c;
      sp_group_t *g;
      ASSERT_EQ(0, sp_group_init(&g, nullptr, 0));
      for (int i = 0; i < n; i++)
        ASSERT_EQ(0, sp_group_go(g, [](void *p) -> int {
                    sp_chan_recv(go_ahead, nullptr, SP_FOREVER);  // -EPIPE, or cancelled
                    return *static_cast<const int *>(p);
                  }, const_cast<int *>(&codes[i])));
      ASSERT_EQ(0, sp_chan_close(start.c));
      int rc = sp_group_wait(g, SP_FOREVER);
      std::vector<int> errs(16, 0);
      int cnt = sp_group_errors(g, errs.data(), errs.size());
      ASSERT_EQ(5, cnt);
      errs.resize(cnt);
      EXPECT_EQ(rc, errs[0]) << "wait returns the first failure";
      std::vector<int> want = {-EIO, -ENOENT, -EPERM, -EIO, -EACCES};
      std::sort(errs.begin(), errs.end());
      std::sort(want.begin(), want.end());
      EXPECT_EQ(want, errs);
      int two[2];
      EXPECT_EQ(5, sp_group_errors(g, two, 2)) << "the count, even when more than n";
      EXPECT_EQ(rc, two[0]);
      EXPECT_EQ(0, sp_group_free(g));
    }
  });
}

struct Limited {
  std::atomic<int> running{0}, max{0}, done{0};
};

TEST_P(GroupTest, LimitRespected) {
  static Limited l;
  for (int limit : {1, 3}) {
    l.running = l.max = l.done = 0;
    const int n = (int)std::max(20L, sptest::Scaled(300));
    RunInFiber([&] {
      sp_group_t *g;
      ASSERT_EQ(0, sp_group_init(&g, nullptr, limit));
      for (int i = 0; i < n; i++)
        ASSERT_EQ(0, sp_group_go(g, [](void *p) -> int {
                    int cur = ++l.running;
                    int m = l.max.load();
                    while (cur > m && !l.max.compare_exchange_weak(m, cur)) {
                    }
                    sp_sleep_for((intptr_t)p % 3 == 0 ? 200000 : 0);
                    sp_yield();
                    l.running--;
                    l.done++;
                    return 0;
                  }, (void *)(intptr_t)i));
      EXPECT_EQ(0, sp_group_wait(g, SP_FOREVER));
      EXPECT_EQ(0, sp_group_free(g));
    });
    EXPECT_EQ(n, l.done.load());
    EXPECT_GE(l.max.load(), 1);
    EXPECT_LE(l.max.load(), limit) << "more members ran at once than the limit";
  }
}

TEST_P(GroupTest, LimitedSpawnerWaitsAndIsCancelled) {
  // A member that spawns siblings waits for a slot in the group's context:
  // the group's failure ends that wait with -ECANCELED.
  static std::atomic<int> spawn_rc;
  static std::atomic<int> blocked;
  spawn_rc = 1;
  blocked = 0;
  RunInFiber([&] {
    sp_group_t *g;
    ASSERT_EQ(0, sp_group_init(&g, nullptr, 2));
    static sp_group_t *gs;
    gs = g;
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                blocked++;
                return sp_sleep_for(60 * kSec);  // holds the second slot
              }, nullptr));
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                // both slots are held (ours and the sleeper's): this waits
                spawn_rc = sp_group_go(gs, [](void *) -> int { return 0; }, nullptr);
                return 0;
              }, nullptr));
    sp_sleep_for(20 * kMs);
    EXPECT_EQ(1, spawn_rc.load()) << "the spawner should be waiting for a slot";
    EXPECT_EQ(-EBUSY, sp_group_free(g)) << "members run, a sp_group_go waits";
    ASSERT_EQ(0, sp_ctx_cancel(sp_group_ctx(g), 0));
    EXPECT_EQ(-ECANCELED, sp_group_wait(g, sp_deadline_in(30 * kSec)));
    EXPECT_EQ(-ECANCELED, spawn_rc.load());
    EXPECT_EQ(0, sp_group_free(g));
  });
}

TEST_P(GroupTest, WaitDeadlineCancelsAndStillWaits) {
  static std::atomic<int> started, timed_out, stubborn_done;
  started = timed_out = stubborn_done = 0;
  RunInFiber([&] {
    sp_group_t *g;
    ASSERT_EQ(0, sp_group_init(&g, nullptr, 0));
    for (int i = 0; i < 4; i++)
      ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                  started++;
                  int rc = sp_sleep_for(60 * kSec);
                  if (rc == -ETIMEDOUT) timed_out++;
                  return rc;
                }, nullptr));
    // This one ignores cancellation: it polls the clock for 300 ms.
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                started++;
                int64_t end = sp_deadline_in(300 * kMs);
                while (sp_now() < end) sp_yield();
                stubborn_done = 1;
                return 0;
              }, nullptr));
    AwaitCount(started, 5);
    EXPECT_EQ(-EAGAIN, sp_group_wait(g, 0)) << "members run";
    EXPECT_EQ(0, sp_ctx_err(sp_group_ctx(g))) << "a try cancels nothing";
    EXPECT_EQ(-EBUSY, sp_group_free(g));
    int64_t t0 = sp_now();
    EXPECT_EQ(-ETIMEDOUT, sp_group_wait(g, sp_deadline_in(50 * kMs)));
    int64_t took = sp_now() - t0;
    EXPECT_GE(took, 45 * kMs);
    EXPECT_LT(took, 20 * kSec);
    EXPECT_EQ(1, stubborn_done.load()) << "wait returned while a member ran";
    EXPECT_EQ(4, timed_out.load());
    EXPECT_EQ(-ETIMEDOUT, sp_ctx_err(sp_group_ctx(g)));
    EXPECT_EQ(0, sp_group_errors(g, nullptr, 0)) << "the deadline is no member's failure";
    EXPECT_EQ(-ETIMEDOUT, sp_group_wait(g, SP_FOREVER)) << "again: same result";
    EXPECT_EQ(0, sp_group_free(g));
  });
}

TEST_P(GroupTest, FailureBeforeDeadlineIsReturned) {
  RunInFiber([&] {
    sp_group_t *g;
    ASSERT_EQ(0, sp_group_init(&g, nullptr, 0));
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                // ignores cancellation: 100 ms of polling once the group failed
                while (sp_ctx_err(sp_ctx_current()) == 0) sp_yield();
                int64_t end = sp_deadline_in(100 * kMs);
                while (sp_now() < end) sp_yield();
                return 0;
              }, nullptr));
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int { return -ENOSPC; }, nullptr));
    while (sp_ctx_err(sp_group_ctx(g)) == 0) sp_sleep_for(100000);
    EXPECT_EQ(-ENOSPC, sp_group_wait(g, sp_deadline_in(1 * kMs)));
    EXPECT_EQ(0, sp_group_free(g));
  });
}

struct Nested {
  sp_chan_t *never;
  std::atomic<int> inner_started{0}, inner_cancelled{0};
  std::atomic<int> inner_wait_rc{1};
  bool explicit_parent;
};

TEST_P(GroupTest, NestedGroupsCancelDownward) {
  Chan never;
  static Nested s;
  for (bool explicit_parent : {false, true}) {
    s.never = never.c;
    s.inner_started = s.inner_cancelled = 0;
    s.inner_wait_rc = 1;
    s.explicit_parent = explicit_parent;
    RunInFiber([&] {
      sp_group_t *outer;
      ASSERT_EQ(0, sp_group_init(&outer, nullptr, 0));
      static sp_group_t *outer_g;
      outer_g = outer;
      ASSERT_EQ(0, sp_group_go(outer, [](void *) -> int {
                  sp_group_t *inner;
                  // NULL: the current context, which is the outer group's
                  int rc = sp_group_init(&inner, s.explicit_parent ? sp_group_ctx(outer_g) : nullptr,
                                         0);
                  if (rc < 0) return -EFAULT;
                  for (int i = 0; i < 6; i++)
                    sp_group_go(inner, [](void *) -> int {
                      s.inner_started++;
                      int r = sp_chan_recv(s.never, nullptr, SP_FOREVER);
                      if (r == -ECANCELED) s.inner_cancelled++;
                      return r;
                    }, nullptr);
                  rc = sp_group_wait(inner, SP_FOREVER);
                  s.inner_wait_rc = rc;
                  sp_group_free(inner);
                  return rc;
                }, nullptr));
      ASSERT_EQ(0, sp_group_go(outer, [](void *) -> int {
                  AwaitCount(s.inner_started, 6);
                  return -EIO;
                }, nullptr));
      EXPECT_EQ(-EIO, sp_group_wait(outer, sp_deadline_in(60 * kSec)));
      EXPECT_EQ(6, s.inner_cancelled.load());
      EXPECT_EQ(-ECANCELED, s.inner_wait_rc.load())
          << "the inner group reports the cancellation from its parent";
      int errs[4];
      EXPECT_EQ(1, sp_group_errors(outer, errs, 4));
      EXPECT_EQ(-EIO, errs[0]);
      EXPECT_EQ(0, sp_group_free(outer));
    });
  }
}

TEST_P(GroupTest, InnerFailureDoesNotCancelUpward) {
  RunInFiber([&] {
    sp_group_t *outer;
    ASSERT_EQ(0, sp_group_init(&outer, nullptr, 0));
    static std::atomic<int> sibling_rc;
    sibling_rc = 1;
    static sp_group_t *outer_g;
    outer_g = outer;
    ASSERT_EQ(0, sp_group_go(outer, [](void *) -> int {
                sp_group_t *inner;
                if (sp_group_init(&inner, nullptr, 0) < 0) return -EFAULT;
                sp_group_go(inner, [](void *) -> int { return -EIO; }, nullptr);
                int rc = sp_group_wait(inner, SP_FOREVER);
                sp_group_free(inner);
                // the inner failure is handled here: the outer group lives on
                return rc == -EIO && sp_ctx_err(sp_group_ctx(outer_g)) == 0 ? 0 : -EFAULT;
              }, nullptr));
    ASSERT_EQ(0, sp_group_go(outer, [](void *) -> int {
                sibling_rc = sp_sleep_for(30 * kMs);
                return sibling_rc.load();
              }, nullptr));
    EXPECT_EQ(0, sp_group_wait(outer, SP_FOREVER));
    EXPECT_EQ(0, sibling_rc.load());
    EXPECT_EQ(0, sp_group_free(outer));
  });
}

TEST_P(GroupTest, ParentCancelReachesMembers) {
  Chan never;
  static sp_chan_t *nv;
  nv = never.c;
  static std::atomic<int> started;
  started = 0;
  sp_ctx_t *parent;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &parent));
  sp_group_t *g;
  ASSERT_EQ(0, sp_group_init_rt(&g, rt_, parent, 0));
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                started++;
                return sp_chan_recv(nv, nullptr, SP_FOREVER);
              }, nullptr));
  while (started.load() < 5) usleep(1000);
  usleep(5000);
  ASSERT_EQ(0, sp_ctx_cancel(parent, 0));
  EXPECT_EQ(-ECANCELED, sp_group_wait(g, sp_deadline_in(30 * kSec)))
      << "a cancellation from the parent is a failure of the members";
  EXPECT_EQ(5, sp_group_errors(g, nullptr, 0));
  EXPECT_EQ(0, sp_group_free(g));
  sp_ctx_release(parent);
}

TEST_P(GroupTest, ForeignThreads) {
  sp_group_t *g = nullptr;
  EXPECT_EQ(-EINVAL, sp_group_init(&g, nullptr, 0)) << "no runtime on a foreign thread";
  EXPECT_EQ(nullptr, g);
  ASSERT_EQ(0, sp_group_init_rt(&g, rt_, nullptr, 2));
  static std::atomic<int> ran, wrong_ctx, running, max;
  ran = wrong_ctx = running = max = 0;
  static sp_ctx_t *want;
  want = sp_group_ctx(g);
  auto body = [](void *) -> int {
    if (sp_ctx_current() != want || sp_runtime_current() == nullptr) wrong_ctx++;
    int cur = ++running;
    int m = max.load();
    while (cur > m && !max.compare_exchange_weak(m, cur)) {
    }
    sp_sleep_for(100000);
    running--;
    ran++;
    return 0;
  };
  const int per = 50;
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++)
    ts.emplace_back([&] {
      for (int i = 0; i < per; i++) EXPECT_EQ(0, sp_group_go(g, body, nullptr));
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(0, sp_group_wait(g, SP_FOREVER));  // a foreign thread waits
  EXPECT_EQ(3 * per, ran.load());
  EXPECT_EQ(0, wrong_ctx.load());
  EXPECT_LE(max.load(), 2);
  EXPECT_EQ(0, sp_group_free(g));
}

TEST_P(GroupTest, FiberOfAnotherRuntime) {
  // Members run in the group's runtime, whoever starts them. (The wait is
  // made from this thread: a member waking a fiber of `other` can still be
  // inside that runtime's wake-up when `other` is destroyed, a runtime bug
  // reported separately.)
  sp_runtime_t *other = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, other);
  sp_group_t *g;
  ASSERT_EQ(0, sp_group_init_rt(&g, rt_, nullptr, 0));
  static sp_runtime_t *want;
  static std::atomic<int> ran, wrong_rt;
  want = rt_;
  ran = wrong_rt = 0;
  struct Args {
    sp_group_t *g;
    int go_fail;
  } a{g, 0};
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(other, &f, [](void *p) -> void * {
              auto *a = static_cast<Args *>(p);
              for (int i = 0; i < 100; i++)
                if (sp_group_go(a->g, [](void *) -> int {
                      if (sp_runtime_current() != want) wrong_rt++;
                      ran++;
                      return 0;
                    }, nullptr) != 0)
                  a->go_fail++;
              return nullptr;
            }, &a, nullptr));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(0, sp_runtime_destroy(other));
  EXPECT_EQ(0, a.go_fail);
  EXPECT_EQ(0, sp_group_wait(g, SP_FOREVER));
  EXPECT_EQ(100, ran.load());
  EXPECT_EQ(0, wrong_rt.load());
  EXPECT_EQ(0, sp_group_free(g));
}

TEST_P(GroupTest, WaitIsShieldedFromTheCallersContext) {
  RunInFiber([&] {
    sp_ctx_t *mine;
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &mine));
    sp_group_t *g;
    // background parent: the caller's context does not reach the members
    ASSERT_EQ(0, sp_group_init(&g, sp_ctx_background(), 0));
    static std::atomic<int> done;
    done = 0;
    ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
                int rc = sp_sleep_for(30 * kMs);
                done = 1;
                return rc;
              }, nullptr));
    sp_ctx_t *prev = sp_ctx_enter(mine);
    ASSERT_EQ(0, sp_ctx_cancel(mine, 0));
    EXPECT_EQ(-ECANCELED, sp_sleep_for(1 * kMs)) << "the caller is cancelled";
    EXPECT_EQ(0, sp_group_wait(g, SP_FOREVER)) << "but the wait still waits";
    EXPECT_EQ(1, done.load());
    EXPECT_EQ(mine, sp_ctx_current()) << "the caller's context is back";
    sp_ctx_leave(prev);
    EXPECT_EQ(0, sp_group_free(g));
    sp_ctx_release(mine);
  });
}

TEST_P(GroupTest, Misuse) {
  EXPECT_EQ(-EINVAL, sp_group_init(nullptr, nullptr, 0));
  EXPECT_EQ(-EINVAL, sp_group_init_rt(nullptr, rt_, nullptr, 0));
  sp_group_t *g = nullptr;
  EXPECT_EQ(-EINVAL, sp_group_init_rt(&g, rt_, nullptr, -1));
  EXPECT_EQ(-EINVAL, sp_group_go(nullptr, [](void *) -> int { return 0; }, nullptr));
  EXPECT_EQ(-EINVAL, sp_group_wait(nullptr, SP_FOREVER));
  EXPECT_EQ(-EINVAL, sp_group_errors(nullptr, nullptr, 0));
  EXPECT_EQ(-EINVAL, sp_group_free(nullptr));
  EXPECT_EQ(nullptr, sp_group_ctx(nullptr));
  ASSERT_EQ(0, sp_group_init_rt(&g, rt_, nullptr, 0));
  EXPECT_EQ(-EINVAL, sp_group_go(g, nullptr, nullptr));
  EXPECT_EQ(-EINVAL, sp_group_errors(g, nullptr, 3));
  EXPECT_EQ(0, sp_group_free(g)) << "a group with no members needs no wait";

  Chan never;
  static sp_chan_t *nv;
  nv = never.c;
  static sp_group_t *gs;
  static std::atomic<int> self_wait;
  self_wait = 1;
  ASSERT_EQ(0, sp_group_init_rt(&g, rt_, nullptr, 0));
  gs = g;
  ASSERT_EQ(0, sp_group_go(g, [](void *) -> int {
              self_wait = sp_group_wait(gs, SP_FOREVER);
              return sp_chan_recv(nv, nullptr, SP_FOREVER);  // -EPIPE once closed
            }, nullptr));
  for (int i = 0; i < 30000 && self_wait.load() == 1; i++) usleep(1000);
  EXPECT_EQ(-EDEADLK, self_wait.load()) << "a member waiting for its own group";
  EXPECT_EQ(-EBUSY, sp_group_free(g)) << "a member runs";
  ASSERT_EQ(0, sp_chan_close(never.c));
  EXPECT_EQ(-EPIPE, sp_group_wait(g, SP_FOREVER));
  EXPECT_EQ(-ECANCELED, sp_group_go(g, [](void *) -> int { return 0; }, nullptr))
      << "after wait, as errgroup: the group is done";
  EXPECT_EQ(-EPIPE, sp_group_wait(g, 0));
  EXPECT_EQ(0, sp_group_free(g));
}

TEST_P(GroupTest, Stress) {
  // Groups of groups failing at random points, from several fibers at once.
  const int rounds = (int)sptest::Scaled(40);
  RunInFiber([&] {
    for (int r = 0; r < rounds; r++) {
      sp_group_t *g;
      ASSERT_EQ(0, sp_group_init(&g, nullptr, r % 3 == 0 ? 4 : 0));
      for (int i = 0; i < 8; i++) {
        int rc = sp_group_go(g, [](void *p) -> int {
          intptr_t i = (intptr_t)p;
          sp_group_t *inner;
          if (sp_group_init(&inner, nullptr, 0) < 0) return -EFAULT;
          for (intptr_t j = 0; j < 8; j++)
            if (sp_group_go(inner, [](void *q) -> int {
                  intptr_t v = (intptr_t)q;
                  int rc = sp_sleep_for((v % 5) * 100000);
                  if (rc < 0) return rc;
                  return v == 37 ? -EIO : 0;
                }, (void *)(i * 8 + j)) < 0)
              break;
          int rc = sp_group_wait(inner, SP_FOREVER);
          if (sp_group_free(inner) != 0) return -EFAULT;
          return rc;
        }, (void *)(intptr_t)i);
        if (rc < 0) {
          ASSERT_EQ(-ECANCELED, rc);
          break;
        }
      }
      EXPECT_EQ(-EIO, sp_group_wait(g, sp_deadline_in(60 * kSec)));
      int errs[64];
      int cnt = sp_group_errors(g, errs, 64);
      EXPECT_GE(cnt, 1);
      for (int i = 0; i < cnt && i < 64; i++) EXPECT_NE(-EFAULT, errs[i]);
      EXPECT_EQ(0, sp_group_free(g));
    }
  });
}

SP_INSTANTIATE_WORKERS(GroupTest);

}  // namespace
