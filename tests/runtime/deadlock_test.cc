// deadlock_test.cc: "all fibers are asleep - deadlock!" (runtime/deadlock.c):
// reported when nothing can ever wake the fibers a foreign thread waits for,
// and never when a timer or a registered foreign thread still can.
#include <errno.h>
#include <unistd.h>

#include <thread>

#include "tests/support/rt_fixture.h"

namespace {

sp_runtime_t *MakeRt(int mode) {
  return sptest::NewRuntime(2, [mode](sp_config_t &c) { c.deadlock = mode; });
}

void *RecvForever(void *c) {
  int v;
  return (void *)(intptr_t)sp_chan_recv(static_cast<sp_chan_t *>(c), &v, SP_FOREVER);
}

void JoinStuckFiber() {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_ABORT);
  sp_chan_t *c;
  sp_chan_make(&c, sizeof(int), 0);
  sp_fiber_t f;
  sp_spawn_opts_t o = {"stuck", 0, 0};
  sp_spawn(rt, &f, RecvForever, c, &o);
  sp_join(f, nullptr, SP_FOREVER);  // never returns: nobody will send
  exit(0);
}

TEST(DeadlockTest, AbortsWithReportAndDump) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(JoinStuckFiber(),
               "all fibers are asleep - deadlock!(.|\n)*\"stuck\" parked: chan recv");
}

TEST(DeadlockTest, ReturnModeJoinGetsEdeadlk) {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_RETURN);
  sp_chan_t *c;
  ASSERT_EQ(0, sp_chan_make(&c, sizeof(int), 0));
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, RecvForever, c, nullptr));
  EXPECT_EQ(-EDEADLK, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-EDEADLK, sp_runtime_shutdown(rt, SP_FOREVER)) << "shutdown is stranded too";
  ASSERT_EQ(0, sp_chan_close(c));  // now it can finish
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER)) << "the handle stays joinable";
  EXPECT_EQ(-EPIPE, (intptr_t)r);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  EXPECT_EQ(0, sp_chan_free(c));
}

// No false positives: a timer can still wake the fiber.
TEST(DeadlockTest, SleepingFiberIsNotDeadlocked) {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_ABORT);
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *) -> void * {
              sp_sleep_for(50000000);
              return (void *)1;
            }, nullptr, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(1, (intptr_t)r);
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// No false positives: a registered foreign thread sends later.
TEST(DeadlockTest, HeldRuntimeWaitsForItsForeignSender) {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_ABORT);
  sp_chan_t *c;
  ASSERT_EQ(0, sp_chan_make(&c, sizeof(int), 0));
  ASSERT_EQ(0, sp_runtime_hold(rt));  // before the fiber can block
  std::thread sender([&] {
    usleep(50000);
    int v = 7;
    sp_chan_send(c, &v, SP_FOREVER);
    sp_runtime_release(rt);
  });
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, RecvForever, c, nullptr));
  void *r;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(0, (intptr_t)r);
  sender.join();
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  EXPECT_EQ(0, sp_chan_free(c));
}

// A holder that leaves without sending turns the wait into a deadlock.
TEST(DeadlockTest, ReleaseOfTheLastHoldReports) {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_RETURN);
  sp_chan_t *c;
  ASSERT_EQ(0, sp_chan_make(&c, sizeof(int), 0));
  ASSERT_EQ(0, sp_runtime_hold(rt));
  std::thread quitter([&] {
    usleep(50000);
    sp_runtime_release(rt);
  });
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, RecvForever, c, nullptr));
  EXPECT_EQ(-EDEADLK, sp_join(f, nullptr, SP_FOREVER));
  quitter.join();
  EXPECT_EQ(-EINVAL, sp_runtime_release(rt)) << "release without a hold";
  ASSERT_EQ(0, sp_chan_close(c));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  EXPECT_EQ(0, sp_chan_free(c));
}

// Fibers that wait on each other in a cycle, with the main thread joining.
TEST(DeadlockTest, CycleBetweenFibers) {
  sp_runtime_t *rt = MakeRt(SP_DEADLOCK_RETURN);
  static sp_mutex_t a, b;
  static sp_waitgroup_t both;
  a = sp_mutex_t{};
  b = sp_mutex_t{};
  both = sp_waitgroup_t{};
  ASSERT_EQ(2, sp_wg_add(&both, 2));
  auto lock_both = [](void *first) -> void * {
    sp_mutex_t *x = first ? &a : &b, *y = first ? &b : &a;
    sp_mutex_lock(x);
    sp_wg_done(&both);  // both hold one, then want the other
    sp_wg_wait(&both, SP_FOREVER);
    sp_mutex_lock(y);
    return nullptr;
  };
  sp_fiber_t f1, f2;
  ASSERT_EQ(0, sp_spawn(rt, &f1, lock_both, (void *)1, nullptr));
  ASSERT_EQ(0, sp_spawn(rt, &f2, lock_both, nullptr, nullptr));
  EXPECT_EQ(-EDEADLK, sp_join(f1, nullptr, SP_FOREVER));
  EXPECT_EQ(-EDEADLK, sp_runtime_shutdown(rt, SP_FOREVER));
  // the runtime cannot be destroyed with these fibers stuck; it is left
  // running (the process ends with the test)
}

TEST(DeadlockTest, BadConfig) {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.deadlock = 9;
  sp_runtime_t *rt;
  EXPECT_EQ(-EINVAL, sp_runtime_create(&rt, &cfg));
  EXPECT_EQ(-EINVAL, sp_runtime_hold(nullptr));
  EXPECT_EQ(-EINVAL, sp_runtime_release(nullptr));
}

}  // namespace
