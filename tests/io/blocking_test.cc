// blocking_test.cc: sp_blocking: fn runs on a helper thread and its result
// comes back; the calling fiber parks while its worker runs other fibers;
// more calls at once than the pool has threads all complete; from a foreign
// thread fn runs inline.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "tests/io/io_support.h"

using namespace iotest;

namespace {

class BlockingTest : public sptest::RtTest {};

struct TidArg {
  long tid = 0;
  int x = 0;
};

void *RecordTid(void *p) {
  auto *a = static_cast<TidArg *>(p);
  a->tid = Tid();
  return (void *)(intptr_t)(a->x * 2);
}

TEST_P(BlockingTest, RunsOnAnotherThreadAndReturnsItsResult) {
  RunInFiber([] {
    long before = Tid();
    TidArg a;
    a.x = 21;
    void *res = nullptr;
    ASSERT_EQ(0, sp_blocking(RecordTid, &a, &res));
    long after = Tid();
    EXPECT_EQ(42, (intptr_t)res);
    EXPECT_NE(0, a.tid);
    EXPECT_NE(before, a.tid) << "fn ran on the calling worker";
    EXPECT_NE(after, a.tid);
    a.tid = 0;
    EXPECT_EQ(0, sp_blocking(RecordTid, &a, nullptr)) << "result may be NULL";
    EXPECT_NE(0, a.tid);
  });
}

TEST_P(BlockingTest, FromForeignThreadRunsInline) {
  TidArg a;
  a.x = 5;
  void *res = nullptr;
  ASSERT_EQ(0, sp_blocking(RecordTid, &a, &res));
  EXPECT_EQ(10, (intptr_t)res);
  EXPECT_EQ(Tid(), a.tid);
}

// fn waits for a flag that only another fiber sets: on one worker that
// fiber runs only if the worker is not the thread stuck in fn.
struct Flag {
  std::mutex mu;
  std::condition_variable cv;
  bool set = false;
};

TEST_P(BlockingTest, WorkerKeepsRunningOtherFibers) {
  Flag flag;
  RunInFiber([&] {
    sp_fiber_t other;
    ASSERT_EQ(0, Spawn(nullptr, &other, [&] {
      for (int i = 0; i < 3; i++) sp_yield(), sp_sleep_for(kMs);
      std::lock_guard<std::mutex> g(flag.mu);
      flag.set = true;
      flag.cv.notify_all();
    }));
    void *res = nullptr;
    ASSERT_EQ(0, sp_blocking([](void *p) -> void * {
      auto *f = static_cast<Flag *>(p);
      std::unique_lock<std::mutex> lk(f->mu);
      return (void *)(intptr_t)f->cv.wait_for(lk, std::chrono::seconds(10), [f] { return f->set; });
    }, &flag, &res));
    EXPECT_EQ(1, (intptr_t)res) << "no other fiber ran while fn blocked";
    ASSERT_EQ(0, sp_join(other, nullptr, SP_FOREVER));
  });
}

// The shape from the issue: a 200 ms usleep in fn while another fiber on a
// 1-worker runtime ticks.
TEST(BlockingSingleWorkerTest, LongCallDoesNotStopTheWorker) {
  sp_runtime_t *rt = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, rt);
  std::atomic<bool> done{false};
  std::atomic<int> ticks{0};
  int64_t elapsed = 0;
  sp_fiber_t a, b{};
  ASSERT_EQ(0, Spawn(rt, &a, [&] {
    // b is spawned here, so it is on the one worker before the call starts
    int rc = Spawn(nullptr, &b, [&] {
      while (!done) {
        sp_sleep_for(2 * kMs);
        if (!done) ticks++;
      }
    });
    EXPECT_EQ(0, rc);
    int64_t t0 = sp_now();
    EXPECT_EQ(0, sp_blocking([](void *) -> void * {
      usleep(200000);
      return nullptr;
    }, nullptr, nullptr));
    elapsed = sp_now() - t0;
    done = true;
  }));
  ASSERT_EQ(0, sp_join(a, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(b, nullptr, SP_FOREVER));
  EXPECT_GE(elapsed, 199 * kMs) << "sp_blocking returned before fn did";
  EXPECT_GE(ticks.load(), 5) << "the worker was blocked while fn slept";
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// Many more calls than a pool has threads: every one completes with its
// own result, and some run at the same time.
TEST_P(BlockingTest, ManyConcurrentCallsAllComplete) {
  const int n = (int)std::max(20L, sptest::Scaled(200));
  static std::atomic<int> running, peak;
  running = 0, peak = 0;
  std::vector<intptr_t> results(n, -1);
  RunInFiber([&] {
    std::vector<sp_fiber_t> fs(n);
    for (int i = 0; i < n; i++)
      ASSERT_EQ(0, Spawn(nullptr, &fs[i], [&results, i] {
        void *r = nullptr;
        int rc = sp_blocking([](void *p) -> void * {
          int now = ++running;
          for (int pk = peak.load(); now > pk && !peak.compare_exchange_weak(pk, now);) {
          }
          usleep(5000);
          running--;
          return (void *)((intptr_t)p * 3);
        }, (void *)(intptr_t)i, &r);
        EXPECT_EQ(0, rc) << sp_strerror(rc);
        results[i] = (intptr_t)r;
      }));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
  for (int i = 0; i < n; i++) EXPECT_EQ(3 * i, results[i]) << "call " << i;
  EXPECT_GE(peak.load(), 2) << "the pool never ran two calls at once";
  EXPECT_EQ(0, running.load());
}

SP_INSTANTIATE_WORKERS(BlockingTest);

}  // namespace
