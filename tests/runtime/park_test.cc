// park_test.cc: the park/unpark state machine (runtime/park.c): wake-ups
// racing the parking fiber across threads, and event vs deadline races
// where exactly one side must win.
#include <errno.h>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/park.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class ParkTest : public RtTest {};

// A one-slot mailbox: the waiter publishes its parker, the waker takes it.
struct Slot {
  std::atomic<sp__parker_t *> p{nullptr};
  std::atomic<long> wakes{0};
};

// Ping-pong between two fibers through park/unpark, n rounds each way.
struct PingPong {
  Slot a, b;
  long rounds;
};

void WaitOn(Slot *s) {
  sp__parker_t p;
  sp__park_begin(&p);
  s->p.store(&p, std::memory_order_release);
  int rc = sp__park_wait(&p, SP_FOREVER);
  if (rc != 0) abort();
}

void WakeOne(Slot *s) {
  sp__parker_t *p;
  while ((p = s->p.exchange(nullptr, std::memory_order_acq_rel)) == nullptr) sp_yield();
  if (!sp__park_claim(p)) abort();
  sp__park_wake(p, 0);
  s->wakes++;
}

TEST_P(ParkTest, PingPongAcrossWorkers) {
  PingPong pp;
  pp.rounds = sptest::Scaled(30000);
  sp_fiber_t x, y;
  ASSERT_EQ(0, sp_spawn(rt_, &x, [](void *a) -> void * {
              auto *pp = static_cast<PingPong *>(a);
              for (long i = 0; i < pp->rounds; i++) {
                WakeOne(&pp->b);
                WaitOn(&pp->a);
              }
              return nullptr;
            }, &pp, nullptr));
  ASSERT_EQ(0, sp_spawn(rt_, &y, [](void *a) -> void * {
              auto *pp = static_cast<PingPong *>(a);
              for (long i = 0; i < pp->rounds; i++) {
                WaitOn(&pp->b);
                WakeOne(&pp->a);
              }
              return nullptr;
            }, &pp, nullptr));
  ASSERT_EQ(0, sp_join(x, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(y, nullptr, SP_FOREVER));
  EXPECT_EQ(pp.rounds, pp.a.wakes.load());
  EXPECT_EQ(pp.rounds, pp.b.wakes.load());
}

// Foreign threads wake fibers as they park: the waker often runs while the
// fiber is still switching out (PARKING -> WOKEN).
TEST_P(ParkTest, ForeignThreadWakesParkingFibers) {
  const long n = sptest::Scaled(20000);
  Slot s;
  sp_fiber_t f;
  struct Arg {
    Slot *s;
    long n;
  } arg{&s, n};
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
              auto *arg = static_cast<Arg *>(a);
              for (long i = 0; i < arg->n; i++) WaitOn(arg->s);
              return nullptr;
            }, &arg, nullptr));
  for (long i = 0; i < n; i++) {
    sp__parker_t *p;
    while ((p = s.p.exchange(nullptr)) == nullptr) std::this_thread::yield();
    ASSERT_TRUE(sp__park_claim(p));
    sp__park_wake(p, 0);
  }
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
}

// Event and deadline race: each park ends exactly once, with either the
// event's reason or -ETIMEDOUT, and the loser's claim fails.
TEST_P(ParkTest, EventRacesDeadlineExactlyOnce) {
  const long n = sptest::Scaled(5000);
  struct Shared {
    std::atomic<sp__parker_t *> p{nullptr};
    std::atomic<long> event_won{0}, deadline_won{0}, claims_lost{0};
    std::atomic<bool> done{false};
    std::atomic<long> acked{0};
  } sh;
  struct Arg {
    Shared *sh;
    long n;
  } arg{&sh, n};
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
              auto *arg = static_cast<Arg *>(a);
              for (long i = 0; i < arg->n; i++) {
                sp__parker_t p;
                sp__park_begin(&p);
                arg->sh->p.store(&p);
                int rc = sp__park_wait(&p, sp_deadline_in(i % 50 * 1000));
                // take the parker back; if the waker holds it, wait until it is done
                if (arg->sh->p.exchange(nullptr) == nullptr)
                  while (arg->sh->acked.load() != i + 1) sp_yield();
                else
                  arg->sh->acked.store(i + 1);
                if (rc == 0)
                  arg->sh->event_won++;
                else if (rc == -ETIMEDOUT)
                  arg->sh->deadline_won++;
                else
                  return (void *)1;
              }
              arg->sh->done = true;
              return nullptr;
            }, &arg, nullptr));
  long taken = 0;
  while (!sh.done.load()) {
    sp__parker_t *p = sh.p.exchange(nullptr);
    if (!p) {
      std::this_thread::yield();
      continue;
    }
    if (sp__park_claim(p))
      sp__park_wake(p, 0);
    else
      sh.claims_lost++;
    sh.acked.fetch_add(1);
    taken++;
  }
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(nullptr, r);
  EXPECT_EQ(n, sh.event_won.load() + sh.deadline_won.load());
  EXPECT_LE(sh.event_won.load(), taken);
  EXPECT_EQ(taken - sh.event_won.load(), sh.claims_lost.load()) << "a claim won twice";
}

// Abort: a waiter that withdraws before anyone claims never parks.
TEST_P(ParkTest, AbortWithdraws) {
  RunInFiber([] {
    for (int i = 0; i < 1000; i++) {
      sp__parker_t p;
      sp__park_begin(&p);
      ASSERT_TRUE(sp__park_abort(&p));
      ASSERT_FALSE(sp__park_claim(&p)) << "claim after abort";
    }
  });
}

SP_INSTANTIATE_WORKERS(ParkTest);

// Foreign threads park on the same machine (futex), woken by fibers.
TEST(ParkThread, ThreadWaitsFiberWakes) {
  sp_runtime_t *rt;
  ASSERT_EQ(0, sp_runtime_create(&rt, nullptr));
  for (int i = 0; i < 200; i++) {
    Slot s;
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt, &f, [](void *a) -> void * {
                WakeOne(static_cast<Slot *>(a));
                return nullptr;
              }, &s, nullptr));
    WaitOn(&s);
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }
  sp__parker_t p;
  sp__park_begin(&p);
  int64_t t0 = sp_now();
  EXPECT_EQ(-ETIMEDOUT, sp__park_wait(&p, sp_deadline_in(5000000)));
  EXPECT_GE(sp_now() - t0, 5000000);
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
