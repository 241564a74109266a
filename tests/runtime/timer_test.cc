// timer_test.cc: sleeping fibers and deadlines (runtime/timer.c), and the
// timer heap itself.
#include <errno.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <vector>

#include "runtime/timer.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class TimerTest : public RtTest {};

struct Order {
  std::mutex mu;
  std::vector<int> woke;
  int64_t base;
  std::atomic<int> early{0};
  std::atomic<int> started_late{0};  // deadline already past when it slept
};
struct Sleeper {
  Order *o;
  int slot;
};

void *SleepSlot(void *arg) {
  auto *s = static_cast<Sleeper *>(arg);
  // slots 5 ms apart: ordering holds on a noisy machine
  int64_t d = s->o->base + (int64_t)s->slot * 5000000;
  if (sp_now() >= d) s->o->started_late++;  // the machine stalled us: no order to test
  if (sp_sleep_until(d) != 0) return (void *)1;
  if (sp_now() < d) s->o->early++;
  std::lock_guard<std::mutex> g(s->o->mu);
  s->o->woke.push_back(s->slot);
  return nullptr;
}

TEST_P(TimerTest, SleepersWakeInDeadlineOrder) {
  Order o;
  o.base = sp_deadline_in(100000000);  // 100 ms for all 20 to reach their sleep
  const int n = 20;
  std::vector<Sleeper> ss(n);
  std::vector<sp_fiber_t> fs(n);
  std::vector<int> slots(n);
  for (int i = 0; i < n; i++) slots[i] = i;
  std::shuffle(slots.begin(), slots.end(), std::mt19937(42));
  for (int i = 0; i < n; i++) {
    ss[i] = {&o, slots[i]};
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], SleepSlot, &ss[i], nullptr));
  }
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ((size_t)n, o.woke.size());
  EXPECT_EQ(0, o.early.load());
  // One worker runs its timers in deadline order, batches included. With
  // several, the order in which fibers on different workers get to record
  // depends on thread preemption (a loaded 2-core CI box reorders them), so
  // only the single-worker order is exact; not-early holds everywhere.
  // (Fibers that only started after their deadline, because the worker
  // thread itself was stalled longer than that, never slept: no order.)
  if (workers() == 1 && o.started_late.load() == 0) {
    for (int i = 0; i < n; i++) EXPECT_EQ(i, o.woke[i]);
  }
}

TEST_P(TimerTest, SleepIsNeverEarlyAndRarelyVeryLate) {
  RunInFiber([] {
    int late = 0;
    for (int i = 0; i < 20; i++) {
      int64_t d = sp_deadline_in(2000000);
      ASSERT_EQ(0, sp_sleep_until(d));
      int64_t now = sp_now();
      EXPECT_GE(now, d) << "woke early";
      if (now - d > 50000000) late++;  // 50 ms: generous for a shared 2-core box
    }
    EXPECT_LE(late, 2);
  });
}

// Many fibers sleeping with random short deadlines on all workers: every
// one wakes exactly once, after its deadline.
TEST_P(TimerTest, ManySleepers) {
  const int n = (int)sptest::Scaled(20000);
  std::atomic<int> early{0}, done{0};
  struct Arg {
    std::atomic<int> *early, *done;
    int64_t ns;
  };
  std::vector<Arg> args(n);
  std::mt19937 rng(7);
  std::vector<sp_fiber_t> fs(n);
  for (int i = 0; i < n; i++) {
    args[i] = {&early, &done, (int64_t)(rng() % 20000000)};
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], [](void *a) -> void * {
                auto *arg = static_cast<Arg *>(a);
                int64_t d = sp_deadline_in(arg->ns);
                sp_sleep_until(d);
                if (sp_now() < d) arg->early->fetch_add(1);
                arg->done->fetch_add(1);
                return nullptr;
              }, &args[i], nullptr));
  }
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(n, done.load());
  EXPECT_EQ(0, early.load());
}

// A sleeping runtime (all workers idle) wakes for the earliest deadline.
TEST_P(TimerTest, IdleRuntimeWakesForDeadline) {
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
              int64_t d = sp_deadline_in(30000000);
              sp_sleep_until(d);
              return (void *)(intptr_t)(sp_now() >= d);
            }, nullptr, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, sp_deadline_in(5000000000LL)));
  EXPECT_EQ(1, (intptr_t)r);
}

SP_INSTANTIATE_WORKERS(TimerTest);

// ---- the heap ----------------------------------------------------------

struct Fired {
  std::vector<int64_t> when;
};
void Record(sp__timer_t *t) { static_cast<Fired *>(t->arg)->when.push_back(t->when); }

TEST(TimerHeap, FiresInOrderAndDeleteWorks) {
  sp__timer_heap_t h;
  sp__timer_heap_init(&h);
  Fired fired;
  const int n = 1000;
  std::vector<sp__timer_t> ts(n);
  std::mt19937 rng(1);
  for (int i = 0; i < n; i++) {
    ts[i] = sp__timer_t{};
    ts[i].when = 1 + (int64_t)(rng() % 100000);
    ts[i].idx = -1;
    ts[i].fire = Record;
    ts[i].arg = &fired;
    ASSERT_EQ(0, sp__timer_add(&h, &ts[i]));
  }
  int deleted = 0;
  for (int i = 0; i < n; i += 3) deleted += sp__timer_del(&ts[i]);
  EXPECT_EQ((n + 2) / 3, deleted);
  EXPECT_EQ(0, sp__timer_del(&ts[0])) << "second delete";
  EXPECT_EQ(n - deleted, sp__timer_run(&h, INT64_MAX - 1));
  EXPECT_TRUE(std::is_sorted(fired.when.begin(), fired.when.end()));
  EXPECT_EQ(INT64_MAX, sp__timer_next(&h));
  EXPECT_EQ(0, sp__timer_del(&ts[1])) << "delete after fire";
  sp__timer_heap_destroy(&h);
}

TEST(TimerHeap, RunsOnlyDueTimers) {
  sp__timer_heap_t h;
  sp__timer_heap_init(&h);
  Fired fired;
  sp__timer_t a{}, b{};
  a.when = 10, b.when = 20;
  a.fire = b.fire = Record;
  a.arg = b.arg = &fired;
  ASSERT_EQ(0, sp__timer_add(&h, &b));
  ASSERT_EQ(0, sp__timer_add(&h, &a));
  EXPECT_EQ(10, sp__timer_next(&h));
  EXPECT_EQ(0, sp__timer_run(&h, 9));
  EXPECT_EQ(1, sp__timer_run(&h, 15));
  EXPECT_EQ(20, sp__timer_next(&h));
  EXPECT_EQ(1, sp__timer_run(&h, 20));
  sp__timer_heap_destroy(&h);
}

}  // namespace
