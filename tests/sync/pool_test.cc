// pool_test.cc: the bounded worker pool (sync/pool.c): every job exactly
// once (checksum) with fibers and threads submitting, back-pressure on a
// full queue, close and drain, results through a channel, cancellation.
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "sync/sp_ctx.h"
#include "sync/sp_pool.h"
#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSlack = 2000 * kMs;

template <class F>
bool Eventually(F cond) {
  int64_t give_up = sp_now() + 10000 * kMs;
  while (!cond()) {
    if (sp_now() > give_up) return false;
    usleep(500);
  }
  return true;
}

class PoolTest : public RtTest {};

TEST_P(PoolTest, CreateArguments) {
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  EXPECT_EQ(64u, cfg.queue);
  sp_pool_t *p = nullptr;
  EXPECT_EQ(-EINVAL, sp_pool_create(&p, &cfg)) << "no runtime on a foreign thread";
  EXPECT_EQ(-EINVAL, sp_pool_create(&p, nullptr));
  cfg.rt = rt_;
  cfg.workers = -1;
  EXPECT_EQ(-EINVAL, sp_pool_create(&p, &cfg));
  EXPECT_EQ(-EINVAL, sp_pool_create(nullptr, &cfg));
  EXPECT_EQ(-EINVAL, sp_pool_submit(nullptr, [](void *) { return 0; }, nullptr, 0));
  RunInFiber([&] {  // in a fiber: its runtime, one worker per thread
    sp_pool_t *q = nullptr;
    ASSERT_EQ(0, sp_pool_create(&q, nullptr));
    EXPECT_EQ(-EINVAL, sp_pool_submit(q, nullptr, nullptr, 0));
    EXPECT_EQ(-EAGAIN, sp_pool_wait(q, 0)) << "drained before close";
    EXPECT_EQ(-EBUSY, sp_pool_free(q));
    EXPECT_EQ(0, sp_pool_shutdown(q, SP_FOREVER));
    EXPECT_EQ(-EPIPE, sp_pool_close(q));
    EXPECT_EQ(0, sp_pool_free(q));
  });
}

// Fibers and a foreign thread submit N jobs through a small queue: each
// runs exactly once, each result reaches on_done exactly once.
TEST_P(PoolTest, EveryJobRunsExactlyOnce) {
  const long n = sptest::Scaled(20000);
  struct Shared {
    sp_pool_t *pool;
    std::unique_ptr<std::atomic<int>[]> ran;
    std::atomic<long> result_sum{0}, results{0}, submit_errors{0};
    long n;
  };
  static Shared *s;
  Shared shared;
  s = &shared;
  s->n = n;
  s->ran.reset(new std::atomic<int>[n]);
  for (long i = 0; i < n; i++) s->ran[i] = 0;
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 4;
  cfg.queue = 16;
  cfg.on_done = [](void *arg, int result, void *) {
    if (result != (int)((intptr_t)arg % 1000)) s->submit_errors++;
    s->result_sum += result;
    s->results++;
  };
  ASSERT_EQ(0, sp_pool_create(&s->pool, &cfg));
  auto job = [](void *arg) -> int {
    s->ran[(intptr_t)arg]++;
    if ((intptr_t)arg % 7 == 0) sp_yield();
    return (int)((intptr_t)arg % 1000);
  };
  static int (*jobp)(void *);
  jobp = job;
  // producers: 3 fibers and this thread, each an interleaved share
  const int np = 4;
  auto produce = [](int k) {
    for (long i = k; i < s->n; i += np)
      if (sp_pool_submit(s->pool, jobp, (void *)(intptr_t)i, SP_FOREVER) != 0) s->submit_errors++;
  };
  static decltype(produce) *producep;
  producep = &produce;
  std::vector<sp_fiber_t> fs(np - 1);
  for (int k = 0; k < np - 1; k++)
    ASSERT_EQ(0, sp_spawn(rt_, &fs[k], [](void *k) -> void * {
                (*producep)((int)(intptr_t)k);
                return nullptr;
              }, (void *)(intptr_t)k, nullptr));
  produce(np - 1);
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_pool_shutdown(s->pool, SP_FOREVER));
  EXPECT_EQ(0, s->submit_errors.load());
  long twice = 0, never = 0, want_sum = 0;
  for (long i = 0; i < n; i++) {
    if (s->ran[i] == 0) never++;
    if (s->ran[i] > 1) twice++;
    want_sum += i % 1000;
  }
  EXPECT_EQ(0, never) << "jobs lost";
  EXPECT_EQ(0, twice) << "jobs run twice";
  EXPECT_EQ(n, s->results.load());
  EXPECT_EQ(want_sum, s->result_sum.load());
  EXPECT_EQ(0, sp_pool_pending(s->pool));
  EXPECT_EQ(0, sp_pool_free(s->pool));
}

struct Blocked {
  sptest::Gate gate;
  std::atomic<int> ran{0}, started{0};
  static int Job(void *p) {
    auto *b = static_cast<Blocked *>(p);
    b->started++;
    b->gate.Wait();
    b->ran++;
    return 0;
  }
};

// One worker held by a job, a queue of 2: the next two submits queue, the
// third waits for room until its deadline (-ETIMEDOUT), or not at all
// (deadline 0: -EAGAIN).
TEST_P(PoolTest, FullQueuePushesBack) {
  Blocked b;
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 1;
  cfg.queue = 2;
  sp_pool_t *p = nullptr;
  ASSERT_EQ(0, sp_pool_create(&p, &cfg));
  ASSERT_EQ(0, sp_pool_submit(p, Blocked::Job, &b, SP_FOREVER));
  ASSERT_TRUE(Eventually([&] { return b.started.load() == 1; }));
  ASSERT_EQ(0, sp_pool_submit(p, Blocked::Job, &b, 0));
  ASSERT_EQ(0, sp_pool_submit(p, Blocked::Job, &b, 0));
  EXPECT_EQ(2, sp_pool_pending(p));
  EXPECT_EQ(-EAGAIN, sp_pool_submit(p, Blocked::Job, &b, 0));
  int64_t d = sp_deadline_in(30 * kMs);
  EXPECT_EQ(-ETIMEDOUT, sp_pool_submit(p, Blocked::Job, &b, d));
  EXPECT_GE(sp_now(), d);
  RunInFiber([&] {  // the same from a fiber
    int64_t d = sp_deadline_in(10 * kMs);
    EXPECT_EQ(-ETIMEDOUT, sp_pool_submit(p, Blocked::Job, &b, d));
    EXPECT_GE(sp_now(), d);
  });
  b.gate.Open();
  EXPECT_EQ(0, sp_pool_shutdown(p, SP_FOREVER));
  EXPECT_EQ(3, b.ran.load()) << "a refused job ran, or a queued one did not";
  EXPECT_EQ(0, sp_pool_free(p));
}

// Close wakes a submitter blocked on the full queue with -EPIPE (its job is
// not queued), refuses later submits, and the queued jobs still run; wait
// returns only when they have.
TEST_P(PoolTest, CloseRefusesNewJobsAndDrainsQueuedOnes) {
  static Blocked *b;
  Blocked blocked;
  b = &blocked;
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 1;
  cfg.queue = 1;
  static sp_pool_t *p;
  ASSERT_EQ(0, sp_pool_create(&p, &cfg));
  ASSERT_EQ(0, sp_pool_submit(p, Blocked::Job, b, SP_FOREVER));
  ASSERT_TRUE(Eventually([&] { return b->started.load() == 1; }));
  ASSERT_EQ(0, sp_pool_submit(p, Blocked::Job, b, SP_FOREVER));  // queued
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
              return (void *)(intptr_t)sp_pool_submit(p, Blocked::Job, b, SP_FOREVER);
            }, nullptr, nullptr));
  usleep(20000);  // (most likely) blocked for room by now
  EXPECT_EQ(0, sp_pool_close(p));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(-EPIPE, (int)(intptr_t)r);
  EXPECT_EQ(-EPIPE, sp_pool_submit(p, Blocked::Job, b, SP_FOREVER));
  EXPECT_EQ(-EPIPE, sp_pool_close(p));
  EXPECT_EQ(-ETIMEDOUT, sp_pool_wait(p, sp_deadline_in(20 * kMs))) << "drained with a job held";
  EXPECT_EQ(-EBUSY, sp_pool_free(p));
  b->gate.Open();
  EXPECT_EQ(0, sp_pool_wait(p, sp_deadline_in(10000 * kMs)));
  EXPECT_EQ(0, sp_pool_wait(p, 0));
  EXPECT_EQ(2, b->ran.load());
  EXPECT_EQ(0, sp_pool_free(p));
}

// Results through a channel: on_done sends each result on an unbuffered
// channel, a collector fiber receives them until it is closed.
TEST_P(PoolTest, ResultsThroughAChannel) {
  static sp_chan_t *results;
  ASSERT_EQ(0, sp_chan_make(&results, sizeof(long), 0));
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 3;
  cfg.queue = 4;
  cfg.on_done = [](void *arg, int result, void *) {
    long v = (long)(intptr_t)arg * 1000 + result;
    sp_chan_send(results, &v, SP_FOREVER);
  };
  sp_pool_t *p = nullptr;
  ASSERT_EQ(0, sp_pool_create(&p, &cfg));
  sp_fiber_t collector;
  ASSERT_EQ(0, sp_spawn(rt_, &collector, [](void *) -> void * {
              long sum = 0, v;
              while (sp_chan_recv(results, &v, SP_FOREVER) == 0) sum += v;
              return (void *)(intptr_t)sum;
            }, nullptr, nullptr));
  const long n = sptest::Scaled(2000);
  long want = 0;
  for (long i = 0; i < n; i++) {
    ASSERT_EQ(0, sp_pool_submit(p, [](void *a) { return (int)((intptr_t)a % 10); }, (void *)(intptr_t)i, SP_FOREVER));
    want += i * 1000 + i % 10;
  }
  ASSERT_EQ(0, sp_pool_shutdown(p, SP_FOREVER));  // every on_done has sent
  ASSERT_EQ(0, sp_chan_close(results));
  void *sum;
  ASSERT_EQ(0, sp_join(collector, &sum, SP_FOREVER));
  EXPECT_EQ(want, (long)(intptr_t)sum);
  EXPECT_EQ(0, sp_pool_free(p));
  EXPECT_EQ(0, sp_chan_free(results));
}

// ---- cancellation by the bound context (sync/sp_ctx.h) ----

// A submitter waiting for room is released by its context's cancel (its
// job is not queued); an already cancelled submitter fails even with room;
// a wait under a context with a deadline gives -ETIMEDOUT.
TEST_P(PoolTest, CancelledSubmitterAndWait) {
  struct Shared {
    Blocked b;
    sp_pool_t *p;
    sp_ctx_t *ctx;
    int r = 1;
  } s;
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 1;
  cfg.queue = 1;
  ASSERT_EQ(0, sp_pool_create(&s.p, &cfg));
  ASSERT_EQ(0, sp_pool_submit(s.p, Blocked::Job, &s.b, SP_FOREVER));
  ASSERT_TRUE(Eventually([&] { return s.b.started.load() == 1; }));
  ASSERT_EQ(0, sp_pool_submit(s.p, Blocked::Job, &s.b, SP_FOREVER));  // queue full
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &s.ctx));
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
              auto *s = static_cast<Shared *>(p);
              sp_ctx_t *prev = sp_ctx_enter(s->ctx);
              s->r = sp_pool_submit(s->p, Blocked::Job, &s->b, SP_FOREVER);
              sp_ctx_leave(prev);
              return nullptr;
            }, &s, nullptr));
  usleep(20000);
  int64_t t0 = sp_now();
  ASSERT_EQ(0, sp_ctx_cancel(s.ctx, 0));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-ECANCELED, s.r);
  EXPECT_LT(sp_now() - t0, kSlack);
  RunInFiber([&] {
    sp_ctx_t *prev = sp_ctx_enter(s.ctx);  // cancelled already
    EXPECT_EQ(-ECANCELED, sp_pool_submit(s.p, Blocked::Job, &s.b, 0));
    sp_ctx_leave(prev);
    sp_ctx_t *c;
    ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 20 * kMs, &c));
    prev = sp_ctx_enter(c);
    EXPECT_EQ(-ETIMEDOUT, sp_pool_wait(s.p, SP_FOREVER));
    sp_ctx_leave(prev);
    sp_ctx_release(c);
  });
  s.b.gate.Open();
  EXPECT_EQ(0, sp_pool_shutdown(s.p, SP_FOREVER));
  EXPECT_EQ(2, s.b.ran.load()) << "a cancelled submit queued its job";
  EXPECT_EQ(0, sp_pool_free(s.p));
  sp_ctx_release(s.ctx);
}

// A job that leaves a cancelled context bound does not poison its worker:
// the jobs after it (same single worker) still run, none is lost.
TEST_P(PoolTest, LeakedBindingDoesNotPoisonTheWorker) {
  static sp_ctx_t *ctx;
  static std::atomic<int> ran, later_ok;
  ran = later_ok = 0;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  ASSERT_EQ(0, sp_ctx_cancel(ctx, 0));
  sp_pool_config_t cfg;
  sp_pool_config_init(&cfg);
  cfg.rt = rt_;
  cfg.workers = 1;
  cfg.queue = 8;
  sp_pool_t *p = nullptr;
  ASSERT_EQ(0, sp_pool_create(&p, &cfg));
  ASSERT_EQ(0, sp_pool_submit(p, [](void *) -> int {
              sp_ctx_enter(ctx);  // and never leaves
              ran++;
              return 0;
            }, nullptr, SP_FOREVER));
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(0, sp_pool_submit(p, [](void *) -> int {
                ran++;
                if (sp_sleep_for(1000) == 0) later_ok++;  // no context bound
                return 0;
              }, nullptr, SP_FOREVER));
  EXPECT_EQ(0, sp_pool_shutdown(p, sp_deadline_in(10000 * kMs)));
  EXPECT_EQ(6, ran.load());
  EXPECT_EQ(5, later_ok.load()) << "later jobs ran under the leaked context";
  EXPECT_EQ(0, sp_pool_free(p));
  sp_ctx_release(ctx);
}

SP_INSTANTIATE_WORKERS(PoolTest);

}  // namespace
