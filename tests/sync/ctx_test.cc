// ctx_test.cc: cancellation contexts (sync/ctx.c, runtime/cancel.c): every
// kind of blocking call returns promptly when the context it runs under is
// cancelled or expires; trees cancel downward; done channels, callbacks and
// timeout scopes.
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class CtxTest : public RtTest {};

constexpr int64_t kMs = 1000000;

// Runs `block` in a fiber bound to ctx; returns what it returned.
struct Blocked {
  sp_ctx_t *ctx;
  int (*block)(void *);
  void *arg;
  std::atomic<int> started{0};
  int rc = 1;
};

void *RunBlocked(void *a) {
  auto *b = static_cast<Blocked *>(a);
  sp_ctx_t *prev = sp_ctx_enter(b->ctx);
  b->started = 1;
  b->rc = b->block(b->arg);
  sp_ctx_leave(prev);
  return nullptr;
}

// Starts block under a fresh context, cancels it after 20 ms, and checks
// the call returned -ECANCELED quickly.
void ExpectCancelled(sp_runtime_t *rt, int (*block)(void *), void *arg) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  Blocked b{ctx, block, arg};
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, RunBlocked, &b, nullptr));
  while (!b.started) usleep(1000);
  usleep(20000);
  int64_t t0 = sp_now();
  ASSERT_EQ(0, sp_ctx_cancel(ctx, 0));
  ASSERT_EQ(0, sp_join(f, nullptr, sp_deadline_in(5000 * kMs)));
  EXPECT_EQ(-ECANCELED, b.rc);
  EXPECT_LT(sp_now() - t0, 2000 * kMs);
  EXPECT_EQ(-ECANCELED, sp_ctx_err(ctx));
  sp_ctx_release(ctx);
}

TEST_P(CtxTest, CancelWakesEveryKindOfWait) {
  ExpectCancelled(rt_, [](void *) { return sp_sleep_for(60000 * kMs); }, nullptr);

  sp_chan_t *ch;
  ASSERT_EQ(0, sp_chan_make(&ch, sizeof(int), 0));
  ExpectCancelled(rt_, [](void *c) {
    int v;
    return sp_chan_recv(static_cast<sp_chan_t *>(c), &v, SP_FOREVER);
  }, ch);
  ExpectCancelled(rt_, [](void *c) {
    int v = 1;
    return sp_chan_send(static_cast<sp_chan_t *>(c), &v, SP_FOREVER);
  }, ch);
  ExpectCancelled(rt_, [](void *c) {
    int v;
    sp_case_t cs[1] = {{SP_RECV, static_cast<sp_chan_t *>(c), &v, 0, 0}};
    return sp_select(cs, 1, SP_FOREVER);
  }, ch);
  EXPECT_EQ(0, sp_chan_free(ch));  // no waiter left behind

  static sp_mutex_t m;
  sp_mutex_lock(&m);  // held by this thread: the fiber blocks
  ExpectCancelled(rt_, [](void *) { return sp_mutex_lock_until(&m, SP_FOREVER); }, nullptr);
  sp_mutex_unlock(&m);

  static sp_waitgroup_t wg;
  sp_wg_add(&wg, 1);
  ExpectCancelled(rt_, [](void *) { return sp_wg_wait(&wg, SP_FOREVER); }, nullptr);
  sp_wg_done(&wg);

  int p[2];
  ASSERT_EQ(0, pipe(p));
  ExpectCancelled(rt_, [](void *fd) {
    char buf[8];
    return (int)sp_read(*static_cast<int *>(fd), buf, sizeof buf, SP_FOREVER);
  }, &p[0]);
  // nothing read was lost: the pipe still works
  ASSERT_EQ(1, write(p[1], "x", 1));
  char c;
  ASSERT_EQ(1, read(p[0], &c, 1));
  close(p[0]);
  close(p[1]);
}

// A cancelled cond wait still returns with the mutex held (cond.c V2),
// even when another fiber holds the mutex at that moment.
TEST_P(CtxTest, CancelledCondWaitReturnsHoldingTheMutex) {
  static sp_mutex_t m;
  static sp_cond_t c;
  static sp_ctx_t *ctx;
  static std::atomic<int> waiting, holder_unlock, waiter_rc, waiter_unlock;
  waiting = 0;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  sp_fiber_t waiter, holder;
  ASSERT_EQ(0, sp_spawn(rt_, &waiter, [](void *) -> void * {
    sp_ctx_t *prev = sp_ctx_enter(ctx);
    sp_mutex_lock(&m);
    waiting = 1;
    waiter_rc = sp_cond_wait(&c, &m, SP_FOREVER);
    waiter_unlock = sp_mutex_unlock(&m);  // must own it
    sp_ctx_leave(prev);
    return nullptr;
  }, nullptr, nullptr));
  while (!waiting) usleep(1000);
  ASSERT_EQ(0, sp_spawn(rt_, &holder, [](void *) -> void * {
    sp_mutex_lock(&m);  // the waiter released it inside cond_wait
    sp_ctx_cancel(ctx, 0);
    sp_sleep_for(20 * kMs);  // the waiter must wait for us, cancelled or not
    holder_unlock = sp_mutex_unlock(&m);
    return nullptr;
  }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(holder, nullptr, sp_deadline_in(5000 * kMs)));
  ASSERT_EQ(0, sp_join(waiter, nullptr, sp_deadline_in(5000 * kMs)));
  EXPECT_EQ(-ECANCELED, waiter_rc.load());
  EXPECT_EQ(0, holder_unlock.load());
  EXPECT_EQ(0, waiter_unlock.load());
  sp_ctx_release(ctx);
}

TEST_P(CtxTest, CancelledContextFailsCallsAtOnce) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  ASSERT_EQ(0, sp_ctx_cancel(ctx, -ECONNABORTED));  // a cause of our own
  EXPECT_EQ(-EALREADY, sp_ctx_cancel(ctx, 0));      // the first cause stays
  RunInFiber([&] {
    sp_ctx_t *prev = sp_ctx_enter(ctx);
    EXPECT_EQ(ctx, sp_ctx_current());
    EXPECT_EQ(-ECONNABORTED, sp_sleep_for(1000 * kMs));
    int p[2];
    ASSERT_EQ(0, pipe(p));
    char b;
    EXPECT_EQ(-ECONNABORTED, sp_read(p[0], &b, 1, SP_FOREVER));
    close(p[0]);
    close(p[1]);
    sp_ctx_leave(prev);
    EXPECT_EQ(nullptr, sp_ctx_current());
    EXPECT_EQ(0, sp_sleep_for(1 * kMs));  // unbound again
  });
  sp_ctx_release(ctx);
}

TEST_P(CtxTest, DeadlineExpiresWaitsAndTheContext) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 50 * kMs, &ctx));
  EXPECT_NE(SP_FOREVER, sp_ctx_deadline(ctx));
  RunInFiber([&] {
    sp_ctx_t *prev = sp_ctx_enter(ctx);
    sp_chan_t *ch;
    ASSERT_EQ(0, sp_chan_make(&ch, 0, 0));
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(ch, nullptr, SP_FOREVER));
    // not before the context's deadline (the 50 ms count from its creation,
    // not from when this fiber started: a slow start made a 45 ms check fail)
    EXPECT_GE(sp_now(), sp_ctx_deadline(ctx));
    EXPECT_EQ(0, sp_chan_free(ch));
    sp_ctx_leave(prev);
  });
  EXPECT_EQ(-ETIMEDOUT, sp_ctx_err(ctx));
  sp_ctx_release(ctx);
}

TEST_P(CtxTest, DeadlineCutsAnIoWaitAndReportsTimeout) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_timeout(nullptr, 40 * kMs, &ctx));
  RunInFiber([&] {
    int p[2];
    ASSERT_EQ(0, pipe(p));
    char buf[4] = {'a', 'a', 'a', 'a'};
    sp_ctx_t *prev = sp_ctx_enter(ctx);
    EXPECT_EQ(-ETIMEDOUT, sp_read(p[0], buf, sizeof buf, SP_FOREVER));
    sp_ctx_leave(prev);
    ASSERT_EQ(2, write(p[1], "zz", 2));
    usleep(10000);
    EXPECT_EQ('a', buf[0]);  // the cancelled read never wrote the buffer
    EXPECT_EQ(2, sp_read(p[0], buf, sizeof buf, SP_FOREVER));  // nor ate the bytes
    close(p[0]);
    close(p[1]);
  });
  sp_ctx_release(ctx);
}

TEST_P(CtxTest, TreeCancelsDownwardNotUpward) {
  sp_ctx_t *root, *mid, *leaf, *other;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &root));
  ASSERT_EQ(0, sp_ctx_with_cancel(root, &mid));
  ASSERT_EQ(0, sp_ctx_with_timeout(mid, 60000 * kMs, &leaf));
  ASSERT_EQ(0, sp_ctx_with_cancel(root, &other));
  ASSERT_EQ(0, sp_ctx_cancel(mid, 0));
  EXPECT_EQ(-ECANCELED, sp_ctx_err(mid));
  EXPECT_EQ(-ECANCELED, sp_ctx_err(leaf));
  EXPECT_EQ(0, sp_ctx_err(root));
  EXPECT_EQ(0, sp_ctx_err(other));
  sp_ctx_t *late;  // a child made after its parent was cancelled starts cancelled
  ASSERT_EQ(0, sp_ctx_with_cancel(mid, &late));
  EXPECT_EQ(-ECANCELED, sp_ctx_err(late));
  ASSERT_EQ(0, sp_ctx_cancel(root, -EPIPE));
  EXPECT_EQ(-EPIPE, sp_ctx_err(other));
  for (sp_ctx_t *c : {late, leaf, mid, other, root}) sp_ctx_release(c);
  // the background context is never cancelled
  EXPECT_EQ(-EINVAL, sp_ctx_cancel(sp_ctx_background(), 0));
  EXPECT_EQ(0, sp_ctx_err(sp_ctx_background()));
  EXPECT_EQ(nullptr, sp_ctx_done(sp_ctx_background()));
}

TEST_P(CtxTest, DoneChannelInSelectAndAfterCancel) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  static std::atomic<int> calls;
  calls = 0;
  ASSERT_EQ(0, sp_ctx_after_cancel(ctx, [](void *) { calls++; }, nullptr));
  sp_chan_t *work;
  ASSERT_EQ(0, sp_chan_make(&work, sizeof(int), 0));
  sp_fiber_t f;
  struct A {
    sp_ctx_t *ctx;
    sp_chan_t *work;
  } a{ctx, work};
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
    auto *a = static_cast<A *>(p);
    int v;  // not bound: the done channel is what ends the select
    sp_case_t cs[2] = {{SP_RECV, a->work, &v, 0, 0}, {SP_RECV, sp_ctx_done(a->ctx), nullptr, 0, 0}};
    int i = sp_select(cs, 2, SP_FOREVER);
    return (void *)(intptr_t)(i == 1 && cs[1].result == -EPIPE);
  }, &a, nullptr));
  usleep(20000);
  EXPECT_EQ(0, calls.load());
  ASSERT_EQ(0, sp_ctx_cancel(ctx, 0));
  EXPECT_EQ(1, calls.load());
  void *ok;
  ASSERT_EQ(0, sp_join(f, &ok, sp_deadline_in(5000 * kMs)));
  EXPECT_TRUE(ok);
  // registering on a cancelled context runs the callback at once
  ASSERT_EQ(0, sp_ctx_after_cancel(ctx, [](void *) { calls++; }, nullptr));
  EXPECT_EQ(2, calls.load());
  sp_ctx_release(ctx);
  EXPECT_EQ(0, sp_chan_free(work));
}

TEST_P(CtxTest, TimeoutScope) {
  RunInFiber([] {
    int64_t t0 = sp_now();
    int rc = 0, after = 0;
    SP_TIMEOUT_SCOPE(30 * kMs) {
      rc = sp_sleep_for(10000 * kMs);
      EXPECT_NE(nullptr, sp_ctx_current());
    }
    EXPECT_EQ(-ETIMEDOUT, rc);
    EXPECT_LT(sp_now() - t0, 5000 * kMs);
    EXPECT_EQ(nullptr, sp_ctx_current());  // left on the way out
    for (int i = 0; i < 3; i++) {
      SP_TIMEOUT_SCOPE(1000 * kMs) {
        after++;
        break;  // leaving early still leaves the scope
      }
    }
    EXPECT_EQ(3, after);
    EXPECT_EQ(nullptr, sp_ctx_current());
    // a nested scope cannot outlive its parent's deadline
    SP_TIMEOUT_SCOPE(20 * kMs) {
      SP_TIMEOUT_SCOPE(60000 * kMs) { rc = sp_sleep_for(60000 * kMs); }
    }
    EXPECT_EQ(-ETIMEDOUT, rc);
  });
}

TEST_P(CtxTest, ManyFibersCancelTogether) {
  const int n = (int)sptest::ScaledLive(5000);
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  static std::atomic<int> cancelled, started;
  cancelled = started = 0;
  std::vector<sp_fiber_t> fs(n);
  for (auto &f : fs)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *c) -> void * {
      sp_ctx_t *prev = sp_ctx_enter(static_cast<sp_ctx_t *>(c));
      started++;
      if (sp_sleep_for(600000 * kMs) == -ECANCELED) cancelled++;
      sp_ctx_leave(prev);
      return nullptr;
    }, ctx, nullptr));
  while (started < n) usleep(1000);
  sp_ctx_release(ctx);  // cancels, and drops our reference: fibers hold theirs
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, sp_deadline_in(20000 * kMs)));
  EXPECT_EQ(n, cancelled.load());
}

TEST_P(CtxTest, ForeignThreadsCannotBindButCanCancel) {
  sp_ctx_t *ctx;
  ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
  EXPECT_EQ(nullptr, sp_ctx_enter(ctx));  // the test thread is no fiber
  EXPECT_EQ(nullptr, sp_ctx_current());
  std::thread t([&] { EXPECT_EQ(0, sp_ctx_cancel(ctx, 0)); });
  t.join();
  EXPECT_EQ(-ECANCELED, sp_ctx_err(ctx));
  sp_ctx_release(ctx);
}

SP_INSTANTIATE_WORKERS(CtxTest);

}  // namespace
