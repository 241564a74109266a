// sched_test.cc: the scheduler: yield storms, work stealing, forced
// migration (errno/TLS safety), idle workers, fairness of the injection
// queue. Built twice: with the normal run queues and with SP_RUNQ_CAP=4.
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class SchedTest : public RtTest {};

struct Storm {
  long yields;
  std::atomic<long> total{0};
};

void *Yielder(void *arg) {
  auto *s = static_cast<Storm *>(arg);
  for (long i = 0; i < s->yields; i++) {
    if (sp_yield() != 0) return (void *)1;
    s->total.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

TEST_P(SchedTest, YieldStorm) {
  Storm s;
  s.yields = sptest::Scaled(2000);
  const int n = 500;
  std::vector<sp_fiber_t> fs(n);
  for (int i = 0; i < n; i++) ASSERT_EQ(0, sp_spawn(rt_, &fs[i], Yielder, &s, nullptr));
  for (int i = 0; i < n; i++) {
    void *r;
    ASSERT_EQ(0, sp_join(fs[i], &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r);
  }
  EXPECT_EQ(n * s.yields, s.total.load());
}

// One fiber spawns CPU-bound fibers on its own worker; idle workers must
// steal them (the steal counter moves and more than one worker runs them).
TEST_P(SchedTest, StealingMovesWork) {
  if (workers() < 2) GTEST_SKIP() << "needs two workers";
  std::atomic<unsigned> seen_mask{0};
  struct Arg {
    std::atomic<unsigned> *mask;
  } arg{&seen_mask};
  RunInFiber([&] {
    // Four fibers fit the smallest run queue (SP_RUNQ_CAP=4), so they can
    // only reach other workers by being stolen, not via the injection queue.
    // Each spins without yielding until two workers have run one of them
    // (or 5 s pass): only a thief can make that happen.
    std::vector<sp_fiber_t> fs(4);
    for (auto &f : fs)
      ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *a) -> void * {
                  auto *m = static_cast<Arg *>(a)->mask;
                  m->fetch_or(1u << sp_worker_index());
                  int64_t give_up = sp_deadline_in(5000000000LL);
                  while (__builtin_popcount(m->load()) < 2 && sp_now() < give_up) {
                  }
                  return nullptr;
                }, &arg, nullptr));
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
  sp_stats_t st;
  ASSERT_EQ(0, sp_runtime_stats(rt_, &st));
  EXPECT_GT(st.steals, 0u);
  EXPECT_GT(__builtin_popcount(seen_mask.load()), 1) << "only one worker ran the work";
}

// Injection-queue fairness: fibers spawned from a foreign thread run even
// while every worker is busy with fibers that yield forever-ish.
TEST_P(SchedTest, InjectedFibersRunWhileWorkersBusy) {
  std::atomic<bool> stop{false};
  std::vector<sp_fiber_t> spinners(workers() * 4);
  for (auto &f : spinners)
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
                auto *stop = static_cast<std::atomic<bool> *>(a);
                while (!stop->load()) sp_yield();
                return nullptr;
              }, &stop, nullptr));
  for (int i = 0; i < 100; i++) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * { return (void *)5; }, nullptr, nullptr));
    void *r;
    ASSERT_EQ(0, sp_join(f, &r, sp_deadline_in(10000000000LL))) << "injected fiber starved";
    EXPECT_EQ(5, (intptr_t)r);
  }
  stop = true;
  for (auto &f : spinners) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
}

// Spawns go to the spawner's lifo; a spawner that then computes without
// yielding must not hide them from idle workers: thieves take them.
TEST_P(SchedTest, SpawnsOfABusyFiberAreStolen) {
  if (workers() < 2) GTEST_SKIP() << "needs two workers";
  std::atomic<int> ran{0};
  RunInFiber([&] {
    for (int i = 0; i < 8; i++)
      ASSERT_EQ(0, sp_go([](void *a) -> void * {
                  static_cast<std::atomic<int> *>(a)->fetch_add(1);
                  return nullptr;
                }, &ran));
    int64_t give_up = sp_deadline_in(5000000000LL);
    while (ran.load() < 8 && sp_now() < give_up) {
    }
  });
  EXPECT_EQ(8, ran.load());
}

// A fiber that keeps spawning and yielding does not starve a fiber waiting
// in the ring (the lifo of new spawns is preferred, but not forever).
TEST_P(SchedTest, SpawnStormDoesNotStarveTheRing) {
  std::atomic<bool> flag{false};
  RunInFiber([&] {
    sp_fiber_t b;
    ASSERT_EQ(0, sp_spawn(nullptr, &b, [](void *a) -> void * {
                static_cast<std::atomic<bool> *>(a)->store(true);
                return nullptr;
              }, &flag, nullptr));
    int64_t give_up = sp_deadline_in(5000000000LL);
    long spawned = 0;
    while (!flag.load() && sp_now() < give_up) {
      for (int i = 0; i < 20; i++, spawned++)
        ASSERT_EQ(0, sp_go([](void *) -> void * { return nullptr; }, nullptr));
      sp_yield();
    }
    EXPECT_TRUE(flag.load()) << "starved behind " << spawned << " spawns";
    ASSERT_EQ(0, sp_join(b, nullptr, SP_FOREVER));
  });
}

// A fiber woken by a fiber that then computes without yielding sits in
// that worker's runnext, which thieves take only in the last round of a
// spin. Two OS threads compete for the CPUs, so a thief's rounds get
// descheduled (its sched_yield gives the CPU away) and jump past the end
// of the spin: the last round must still come, or the fiber is never run.
TEST_P(SchedTest, WokenFiberOfABusyWorkerIsStolenUnderCpuContention) {
  if (workers() < 2) GTEST_SKIP() << "needs two workers";
  struct Arg {
    sp_chan_t *ch = nullptr;
    std::atomic<int> state{0};  // 1: about to receive; 2: woken and ran
  } arg;
  ASSERT_EQ(0, sp_chan_make(&arg.ch, sizeof(int), 0));  // before the hogs: no return past them
  std::atomic<bool> done{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 2; i++)
    hogs.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
      }
    });
  for (int round = 0; round < 20 && !HasFailure(); round++) {
    arg.state = 0;
    RunInFiber([&] {
      sp_fiber_t b;
      ASSERT_EQ(0, sp_spawn(nullptr, &b, [](void *p) -> void * {
                  auto *a = static_cast<Arg *>(p);
                  int v;
                  a->state = 1;
                  if (sp_chan_recv(a->ch, &v, SP_FOREVER) != 0) return (void *)1;
                  a->state = 2;
                  return nullptr;
                }, &arg, nullptr));
      while (arg.state.load() != 1) sp_yield();
      sp_sleep_for(1000000);  // b is parked in its receive by now
      int v = 7;
      ASSERT_EQ(0, sp_chan_send(arg.ch, &v, SP_FOREVER));  // b goes to our runnext
      int64_t give_up = sp_deadline_in(5000000000LL);
      while (arg.state.load() != 2 && sp_now() < give_up) {
      }
      EXPECT_EQ(2, arg.state.load()) << "round " << round << ": the woken fiber never ran";
      ASSERT_EQ(0, sp_join(b, nullptr, SP_FOREVER));
    });
  }
  done = true;
  for (auto &t : hogs) t.join();
  EXPECT_EQ(0, sp_chan_free(arg.ch));
}

SP_INSTANTIATE_WORKERS(SchedTest);

// ---- forced migration ------------------------------------------------

// Reads errno's address through a call gcc cannot fold or cache: libc
// declares __errno_location() const, so a plain `errno` after a switch may
// reuse the previous thread's address (the very bug this test guards
// against; reading it that way here would be a real data race).
// The asm launders the pointer: without it clang propagates the return
// value into the caller and reuses a cached TLS address after all.
__attribute__((noinline)) int *ErrnoAddr() {
  int *p = &errno;
  __asm__ volatile("" : "+r"(p)::"memory");
  return p;
}

struct MigrateResult {
  std::atomic<int> moves{0}, stays{0}, errno_bad{0}, tls_bad{0}, sleep_no_switch{0};
};

thread_local int tls_marker;
// Thread-locals and pthread_self() (declared const) through calls gcc
// cannot cache across the switch: the pattern fiber code must follow.
__attribute__((noinline)) int *TlsMarker() {
  int *p = &tls_marker;
  __asm__ volatile("" : "+r"(p)::"memory");
  return p;
}
__attribute__((noinline)) pthread_t Self() {
  pthread_t t = pthread_self();
  __asm__ volatile("" : "+r"(t)::"memory");
  return t;
}

void *Migrator(void *arg) {
  auto *r = static_cast<MigrateResult *>(arg);
  for (int i = 0; i < 200; i++) {
    int before = sp_worker_index();
    pthread_t t_before = Self();
    int token = (int)(sp_fiber_id() * 1000 + i);  // unique to this fiber and round
    *TlsMarker() = token;
    *ErrnoAddr() = token;
    bool slept = i % 3 == 0;
    if (slept)
      sp_sleep_for(100000);
    else
      sp_yield();
    int after = sp_worker_index();
    // errno and thread-locals belong to the thread now running us.
    if (pthread_equal(t_before, Self()) != (before == after)) r->tls_bad++;
    if (slept && after == before) {
      r->sleep_no_switch++;  // the deadline passed before it could park
    } else if (after != before) {
      r->moves++;
      // Our token would mean we read the previous thread's errno / TLS.
      if (*ErrnoAddr() == token) r->errno_bad++;
      if (*TlsMarker() == token) r->tls_bad++;
    } else {
      r->stays++;
    }
  }
  return nullptr;
}

TEST(SchedMigrate, EveryResumeMovesToAnotherWorker) {
  sp_runtime_t *rt = sptest::NewRuntime(3, [](sp_config_t &c) { c.migrate = 1; });
  ASSERT_NE(nullptr, rt);
  MigrateResult res;
  std::vector<sp_fiber_t> fs(20);
  for (auto &f : fs) ASSERT_EQ(0, sp_spawn(rt, &f, Migrator, &res, nullptr));
  for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(0, res.stays.load()) << "a resume stayed on the same worker";
  EXPECT_EQ(20 * 200, res.moves.load() + res.sleep_no_switch.load());
  EXPECT_LT(res.sleep_no_switch.load(), 20 * 200 / 3 / 2);
  EXPECT_EQ(0, res.errno_bad.load());
  EXPECT_EQ(0, res.tls_bad.load());
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

// ---- idle runtime uses no CPU ----------------------------------------

TEST(SchedIdle, IdleRuntimeDoesNotSpin) {
  sp_runtime_t *rt = sptest::NewRuntime(4);
  ASSERT_NE(nullptr, rt);
  // make the workers run something first, then go idle
  for (int i = 0; i < 100; i++) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * { return nullptr; }, nullptr, nullptr));
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  }
  usleep(50000);
  struct rusage a, b;
  getrusage(RUSAGE_SELF, &a);
  usleep(300000);
  getrusage(RUSAGE_SELF, &b);
  double cpu = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) + (b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
               1e-6 * ((b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
                       (b.ru_stime.tv_usec - a.ru_stime.tv_usec));
  EXPECT_LT(cpu, 0.03) << "idle workers burned " << cpu << " s of CPU in 0.3 s";
  // and a fiber woken now still runs promptly
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * { return (void *)3; }, nullptr, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, sp_deadline_in(5000000000LL)));
  EXPECT_EQ(3, (intptr_t)r);
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
