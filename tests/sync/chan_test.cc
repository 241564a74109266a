// chan_test.cc: channels (sync/chan.c) with Go's semantics, from fibers
// and from foreign threads.
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class ChanTest : public RtTest {};

struct Chan {
  sp_chan_t *c = nullptr;
  Chan(size_t esz, size_t cap) { EXPECT_EQ(0, sp_chan_make(&c, esz, cap)); }
  ~Chan() { EXPECT_EQ(0, sp_chan_free(c)); }
};

TEST_P(ChanTest, UnbufferedRendezvous) {
  Chan ch(sizeof(int), 0);
  std::atomic<bool> received{false};
  RunInFiber([&] {
    sp_fiber_t r;
    struct A {
      sp_chan_t *c;
      std::atomic<bool> *got;
    } a{ch.c, &received};
    int64_t t0 = sp_now();  // before the receiver starts its sleep
    ASSERT_EQ(0, sp_spawn(nullptr, &r, [](void *p) -> void * {
                auto *a = static_cast<A *>(p);
                sp_sleep_for(20000000);  // the sender must wait for us
                int v = 0;
                if (sp_chan_recv(a->c, &v, SP_FOREVER) != 0) return (void *)1;
                a->got->store(true);
                return (void *)(intptr_t)v;
              }, &a, nullptr));
    int v = 42;
    ASSERT_EQ(0, sp_chan_send(ch.c, &v, SP_FOREVER));
    EXPECT_GE(sp_now() - t0, 20000000) << "send returned before a receiver took the value";
    void *res;
    ASSERT_EQ(0, sp_join(r, &res, SP_FOREVER));
    EXPECT_EQ(42, (intptr_t)res);
  });
  EXPECT_TRUE(received.load());
}

TEST_P(ChanTest, BufferedFifoAndLenCap) {
  Chan ch(sizeof(long), 8);
  EXPECT_EQ(8u, sp_chan_cap(ch.c));
  RunInFiber([&] {
    for (long i = 0; i < 8; i++) ASSERT_EQ(0, sp_chan_send(ch.c, &i, SP_FOREVER));
    EXPECT_EQ(8u, sp_chan_len(ch.c));
    long v = 99;
    EXPECT_EQ(-EAGAIN, sp_chan_send(ch.c, &v, 0)) << "full";
    EXPECT_EQ(-ETIMEDOUT, sp_chan_send(ch.c, &v, sp_deadline_in(2000000)));
    for (long i = 0; i < 8; i++) {
      ASSERT_EQ(0, sp_chan_recv(ch.c, &v, SP_FOREVER));
      EXPECT_EQ(i, v);
    }
    EXPECT_EQ(-EAGAIN, sp_chan_recv(ch.c, &v, 0)) << "empty";
    EXPECT_EQ(-ETIMEDOUT, sp_chan_recv(ch.c, &v, sp_deadline_in(2000000)));
  });
}

TEST_P(ChanTest, CloseDeliversBufferedThenZero) {
  Chan ch(sizeof(int), 4);
  int a = 1, b = 2, v = -1;
  ASSERT_EQ(0, sp_chan_send(ch.c, &a, 0));
  ASSERT_EQ(0, sp_chan_send(ch.c, &b, 0));
  ASSERT_EQ(0, sp_chan_close(ch.c));
  EXPECT_EQ(-EPIPE, sp_chan_close(ch.c)) << "second close";
  EXPECT_EQ(-EPIPE, sp_chan_send(ch.c, &a, 0)) << "send on closed";
  ASSERT_EQ(0, sp_chan_recv(ch.c, &v, 0));
  EXPECT_EQ(1, v);
  ASSERT_EQ(0, sp_chan_recv(ch.c, &v, 0));
  EXPECT_EQ(2, v);
  EXPECT_EQ(-EPIPE, sp_chan_recv(ch.c, &v, SP_FOREVER));
  EXPECT_EQ(0, v) << "closed receive yields the zero value";
}

TEST_P(ChanTest, CloseWakesAllReceiversAndSenders) {
  Chan rc(sizeof(int), 0), sc(sizeof(int), 0);
  const int n = 50;
  std::atomic<int> got_epipe{0};
  struct A {
    sp_chan_t *c;
    std::atomic<int> *n;
    int op;
  } ra{rc.c, &got_epipe, SP_RECV}, sa{sc.c, &got_epipe, SP_SEND};
  std::vector<sp_fiber_t> fs;
  for (int i = 0; i < n; i++)
    for (A *a : {&ra, &sa}) {
      sp_fiber_t f;
      ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
                  auto *a = static_cast<A *>(p);
                  int v = 7;
                  int r = a->op == SP_RECV ? sp_chan_recv(a->c, &v, SP_FOREVER)
                                           : sp_chan_send(a->c, &v, SP_FOREVER);
                  if (r == -EPIPE && (a->op == SP_SEND || v == 0)) a->n->fetch_add(1);
                  return nullptr;
                }, a, nullptr));
      fs.push_back(f);
    }
  usleep(30000);  // let them block
  ASSERT_EQ(0, sp_chan_close(rc.c));
  ASSERT_EQ(0, sp_chan_close(sc.c));
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(2 * n, got_epipe.load());
}

TEST_P(ChanTest, SignalChannelOfZeroSizeElements) {
  Chan ch(0, 3);
  ASSERT_EQ(0, sp_chan_send(ch.c, nullptr, 0));
  ASSERT_EQ(0, sp_chan_send(ch.c, nullptr, 0));
  EXPECT_EQ(2u, sp_chan_len(ch.c));
  ASSERT_EQ(0, sp_chan_recv(ch.c, nullptr, 0));
  Chan un(0, 0);
  RunInFiber([&] {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *c) -> void * {
                return (void *)(intptr_t)sp_chan_send(static_cast<sp_chan_t *>(c), nullptr,
                                                      SP_FOREVER);
              }, un.c, nullptr));
    ASSERT_EQ(0, sp_chan_recv(un.c, nullptr, SP_FOREVER));
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
    EXPECT_EQ(0, (intptr_t)r);
  });
  ASSERT_EQ(0, sp_chan_recv(ch.c, nullptr, 0));
}

TEST_P(ChanTest, WaitersServedFifo) {
  Chan ch(sizeof(int), 0);
  const int n = 10;
  std::vector<sp_fiber_t> fs(n);
  struct A {
    sp_chan_t *c;
    int id;
  };
  std::vector<A> as(n);
  const uint64_t parks0 = Parks();
  for (int i = 0; i < n; i++) {
    as[i] = {ch.c, i};
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], [](void *p) -> void * {
                auto *a = static_cast<A *>(p);
                return (void *)(intptr_t)sp_chan_send(a->c, &a->id, SP_FOREVER);
              }, &as[i], nullptr));
    AwaitParks(parks0 + i + 1);  // each sender is queued before the next is spawned
  }
  for (int i = 0; i < n; i++) {
    int v = -1;
    ASSERT_EQ(0, sp_chan_recv(ch.c, &v, SP_FOREVER));
    EXPECT_EQ(i, v);
  }
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
}

TEST_P(ChanTest, FreeWithWaitersIsRefused) {
  sp_chan_t *c;
  ASSERT_EQ(0, sp_chan_make(&c, sizeof(int), 0));
  const uint64_t parks0 = Parks();
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *c) -> void * {
              int v;
              return (void *)(intptr_t)sp_chan_recv(static_cast<sp_chan_t *>(c), &v, SP_FOREVER);
            }, c, nullptr));
  ASSERT_LT(parks0, AwaitParks(parks0 + 1)) << "the receiver never blocked";
  EXPECT_EQ(-EBUSY, sp_chan_free(c));
  ASSERT_EQ(0, sp_chan_close(c));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(-EPIPE, (intptr_t)r);
  EXPECT_EQ(0, sp_chan_free(c));
}

TEST_P(ChanTest, BadInput) {
  sp_chan_t *c = nullptr;
  EXPECT_EQ(-EINVAL, sp_chan_make(nullptr, 4, 1));
  EXPECT_EQ(-EINVAL, sp_chan_make(&c, SIZE_MAX / 2, 4)) << "size overflow";
  EXPECT_EQ(-EINVAL, sp_chan_send(nullptr, &c, 0));
  EXPECT_EQ(-EINVAL, sp_chan_recv(nullptr, &c, 0));
  EXPECT_EQ(-EINVAL, sp_chan_close(nullptr));
  EXPECT_EQ(-EINVAL, sp_chan_free(nullptr));
  EXPECT_EQ(0u, sp_chan_len(nullptr));
}

// Many producers and consumers, fibers and foreign threads mixed: every
// value arrives exactly once (checksum and count).
TEST_P(ChanTest, StressNothingLostOrDuplicated) {
  for (size_t cap : {(size_t)0, (size_t)1, (size_t)64}) {
    Chan ch(sizeof(long), cap);
    // 1.2M values in all over the three capacities (plain build)
    const long per = sptest::Scaled(100000);
    const int producers = 4, consumers = 4;
    std::atomic<long> sum{0}, count{0};
    struct P {
      sp_chan_t *c;
      long base, n;
    };
    std::vector<P> ps(producers);
    std::vector<sp_fiber_t> fs;
    for (int i = 0; i < producers; i++) {
      ps[i] = {ch.c, i * per, per};
      sp_fiber_t f;
      ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
                  auto *p = static_cast<P *>(a);
                  for (long v = p->base; v < p->base + p->n; v++)
                    if (sp_chan_send(p->c, &v, SP_FOREVER) != 0) return (void *)1;
                  return nullptr;
                }, &ps[i], nullptr));
      fs.push_back(f);
    }
    struct C {
      sp_chan_t *c;
      std::atomic<long> *sum, *count;
    } cs{ch.c, &sum, &count};
    for (int i = 0; i < consumers - 1; i++) {
      sp_fiber_t f;
      ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
                  auto *c = static_cast<C *>(a);
                  long v;
                  while (sp_chan_recv(c->c, &v, SP_FOREVER) == 0) {
                    c->sum->fetch_add(v);
                    c->count->fetch_add(1);
                  }
                  return nullptr;
                }, &cs, nullptr));
      fs.push_back(f);
    }
    std::thread foreign([&] {  // one consumer is a plain thread
      long v;
      while (sp_chan_recv(ch.c, &v, SP_FOREVER) == 0) {
        sum.fetch_add(v);
        count.fetch_add(1);
      }
    });
    for (int i = 0; i < producers; i++) {
      void *r;
      ASSERT_EQ(0, sp_join(fs[i], &r, SP_FOREVER));
      EXPECT_EQ(nullptr, r);
    }
    ASSERT_EQ(0, sp_chan_close(ch.c));
    for (size_t i = producers; i < fs.size(); i++) ASSERT_EQ(0, sp_join(fs[i], nullptr, SP_FOREVER));
    foreign.join();
    long total = producers * per;
    EXPECT_EQ(total, count.load()) << "cap " << cap;
    EXPECT_EQ(total * (total - 1) / 2, sum.load()) << "cap " << cap;
  }
}

// A foreign thread feeds a channel that fibers consume, and the other way.
TEST_P(ChanTest, ForeignThreadProducerAndConsumer) {
  Chan in(sizeof(int), 0), out(sizeof(int), 0);
  sp_fiber_t f;
  struct A {
    sp_chan_t *in, *out;
  } a{in.c, out.c};
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *p) -> void * {
              auto *a = static_cast<A *>(p);
              int v;
              while (sp_chan_recv(a->in, &v, SP_FOREVER) == 0) {
                v *= 2;
                if (sp_chan_send(a->out, &v, SP_FOREVER) != 0) return (void *)1;
              }
              sp_chan_close(a->out);
              return nullptr;
            }, &a, nullptr));
  std::thread feeder([&] {
    for (int i = 0; i < 1000; i++) sp_chan_send(in.c, &i, SP_FOREVER);
    sp_chan_close(in.c);
  });
  long sum = 0;
  int v;
  while (sp_chan_recv(out.c, &v, SP_FOREVER) == 0) sum += v;
  feeder.join();
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(2L * 999 * 1000 / 2, sum);
}

SP_INSTANTIATE_WORKERS(ChanTest);

}  // namespace
