// select_test.cc: sp_select (sync/select.c): ready cases, uniform choice,
// default, deadlines, nil cases, close, and the race where cases fire
// while the select is still arming.
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class SelectTest : public RtTest {};

struct Chans {
  std::vector<sp_chan_t *> c;
  Chans(int n, size_t esz, size_t cap) : c(n) {
    for (auto &x : c) EXPECT_EQ(0, sp_chan_make(&x, esz, cap));
  }
  ~Chans() {
    for (auto *x : c) EXPECT_EQ(0, sp_chan_free(x));
  }
};

TEST_P(SelectTest, PicksTheReadyCase) {
  Chans ch(3, sizeof(int), 1);
  int v = 5, out = 0;
  ASSERT_EQ(0, sp_chan_send(ch.c[1], &v, 0));
  sp_case_t cs[3] = {{SP_RECV, ch.c[0], &out}, {SP_RECV, ch.c[1], &out}, {SP_RECV, ch.c[2], &out}};
  EXPECT_EQ(1, sp_select(cs, 3, 0));
  EXPECT_EQ(5, out);
  EXPECT_EQ(0, cs[1].result);
}

TEST_P(SelectTest, DefaultWhenNothingReady) {
  Chans ch(2, sizeof(int), 0);
  int out;
  sp_case_t cs[2] = {{SP_RECV, ch.c[0], &out}, {SP_SEND, ch.c[1], &out}};
  EXPECT_EQ(-EAGAIN, sp_select(cs, 2, 0));
  int64_t t0 = sp_now();
  EXPECT_EQ(-ETIMEDOUT, sp_select(cs, 2, sp_deadline_in(10000000)));
  EXPECT_GE(sp_now() - t0, 10000000);
  RunInFiber([&] { EXPECT_EQ(-ETIMEDOUT, sp_select(cs, 2, sp_deadline_in(5000000))); });
  EXPECT_EQ(-EAGAIN, sp_select(nullptr, 0, 0)) << "no cases, default";
}

// With all cases ready, each is chosen about equally often (chi-square).
TEST_P(SelectTest, UniformChoiceAmongReady) {
  const int k = 4, rounds = 8000;
  Chans ch(k, 0, 1);
  int hits[k] = {0};
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < k; i++) {
      if (sp_chan_len(ch.c[i]) == 0) {
        ASSERT_EQ(0, sp_chan_send(ch.c[i], nullptr, 0));
      }
    }
    sp_case_t cs[k];
    for (int i = 0; i < k; i++) cs[i] = {SP_RECV, ch.c[i], nullptr};
    int got = sp_select(cs, k, 0);
    ASSERT_GE(got, 0);
    hits[got]++;
  }
  double expect = (double)rounds / k, chi2 = 0;
  for (int i = 0; i < k; i++) chi2 += (hits[i] - expect) * (hits[i] - expect) / expect;
  // 3 degrees of freedom: P(chi2 > 25.9) = 1e-5 for a uniform choice, so the
  // test almost never fails by chance; a 10% skew on one case gives ~50+
  EXPECT_LT(chi2, 25.9) << hits[0] << " " << hits[1] << " " << hits[2] << " " << hits[3];
}

TEST_P(SelectTest, NilCaseNeverFires) {
  Chans ch(1, sizeof(int), 1);
  int v = 3, out = 0;
  ASSERT_EQ(0, sp_chan_send(ch.c[0], &v, 0));
  sp_case_t cs[2] = {{SP_RECV, nullptr, &out}, {SP_SEND, nullptr, &v}};
  EXPECT_EQ(-EAGAIN, sp_select(cs, 2, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_select(cs, 2, sp_deadline_in(2000000)));
  sp_case_t cs2[2] = {{SP_RECV, nullptr, &out}, {SP_RECV, ch.c[0], &out}};
  EXPECT_EQ(1, sp_select(cs2, 2, SP_FOREVER));
  EXPECT_EQ(3, out);
}

TEST_P(SelectTest, ClosedChannelCases) {
  Chans ch(2, sizeof(int), 0);
  ASSERT_EQ(0, sp_chan_close(ch.c[0]));
  int out = 9;
  sp_case_t r[1] = {{SP_RECV, ch.c[0], &out}};
  EXPECT_EQ(0, sp_select(r, 1, SP_FOREVER));
  EXPECT_EQ(-EPIPE, r[0].result);
  EXPECT_EQ(0, out) << "zero value";
  sp_case_t s[1] = {{SP_SEND, ch.c[0], &out}};
  EXPECT_EQ(0, sp_select(s, 1, SP_FOREVER));
  EXPECT_EQ(-EPIPE, s[0].result);
  // a select blocked on a channel that gets closed wakes with -EPIPE
  RunInFiber([&] {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *c) -> void * {
                sp_sleep_for(10000000);
                sp_chan_close(static_cast<sp_chan_t *>(c));
                return nullptr;
              }, ch.c[1], nullptr));
    int o = 7;
    sp_case_t cs[2] = {{SP_RECV, ch.c[1], &o}, {SP_RECV, nullptr, &o}};
    EXPECT_EQ(0, sp_select(cs, 2, SP_FOREVER));
    EXPECT_EQ(-EPIPE, cs[0].result);
    EXPECT_EQ(0, o);
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
}

// Blocked select, woken by exactly one of its cases; a send and a receive
// on the same channel in one select never match each other.
TEST_P(SelectTest, BlockedSelectWokenOnce) {
  Chans ch(3, sizeof(int), 0);
  RunInFiber([&] {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *c) -> void * {
                sp_sleep_for(5000000);
                int v = 11;
                return (void *)(intptr_t)sp_chan_send(static_cast<sp_chan_t *>(c), &v, SP_FOREVER);
              }, ch.c[2], nullptr));
    int a = 1, b = 0;
    sp_case_t cs[3] = {{SP_SEND, ch.c[0], &a}, {SP_RECV, ch.c[0], &b}, {SP_RECV, ch.c[2], &b}};
    EXPECT_EQ(2, sp_select(cs, 3, SP_FOREVER));
    EXPECT_EQ(11, b);
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(0, (intptr_t)r);
    EXPECT_EQ(-EAGAIN, sp_chan_send(ch.c[0], &a, 0)) << "the select left no waiter behind";
  });
}

// Stress: producers on several channels, consumers selecting over all of
// them (with deadlines, so timeouts race deliveries): every value is
// received exactly once.
TEST_P(SelectTest, StressExactlyOnce) {
  const int k = 4;
  Chans ch(k, sizeof(long), 0);
  Chans done(1, 0, 0);
  const long per = sptest::Scaled(5000);
  std::atomic<long> sum{0}, count{0};
  struct P {
    sp_chan_t *c;
    long base, n;
  };
  std::vector<P> ps(k);
  std::vector<sp_fiber_t> prod(k), cons(3);
  for (int i = 0; i < k; i++) {
    ps[i] = {ch.c[i], i * per, per};
    ASSERT_EQ(0, sp_spawn(rt_, &prod[i], [](void *a) -> void * {
                auto *p = static_cast<P *>(a);
                for (long v = p->base; v < p->base + p->n; v++)
                  if (sp_chan_send(p->c, &v, SP_FOREVER) != 0) return (void *)1;
                return nullptr;
              }, &ps[i], nullptr));
  }
  struct C {
    Chans *ch, *done;
    std::atomic<long> *sum, *count;
  } cc{&ch, &done, &sum, &count};
  for (auto &f : cons)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
                auto *c = static_cast<C *>(a);
                for (;;) {
                  long v = -1;
                  sp_case_t cs[k + 1];
                  for (int i = 0; i < k; i++) cs[i] = {SP_RECV, c->ch->c[i], &v};
                  cs[k] = {SP_RECV, c->done->c[0], nullptr};
                  int i = sp_select(cs, k + 1, sp_deadline_in(200000));
                  if (i == -ETIMEDOUT) continue;
                  if (i < 0) return (void *)2;
                  if (i == k) return nullptr;  // done closed
                  c->sum->fetch_add(v);
                  c->count->fetch_add(1);
                }
              }, &cc, nullptr));
  for (auto &f : prod) {
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r);
  }
  ASSERT_EQ(0, sp_chan_close(done.c[0]));
  for (auto &f : cons) {
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r);
  }
  long total = k * per;
  EXPECT_EQ(total, count.load());
  EXPECT_EQ(total * (total - 1) / 2, sum.load());
}

TEST_P(SelectTest, BadInput) {
  sp_case_t bad[1] = {{7, nullptr, nullptr}};
  EXPECT_EQ(-EINVAL, sp_select(bad, 1, 0));
  EXPECT_EQ(-EINVAL, sp_select(nullptr, 2, 0));
  EXPECT_EQ(-EINVAL, sp_select(bad, -1, 0));
  EXPECT_EQ(-EINVAL, sp_select(bad, SP_SELECT_MAX + 1, 0));
}

SP_INSTANTIATE_WORKERS(SelectTest);

}  // namespace
