// race_test.cc: under --config=tsan, Spindle's primitives are visible to
// ThreadSanitizer as synchronisation (Go's race detector model): a handoff
// through a channel, a mutex, a WaitGroup or a join is not reported, and a
// real race between two fibers on different workers is. Without TSan the
// handoff tests still check the values; the race test is skipped.
#include <atomic>

#include "arch/context.h"
#include "tests/support/rt_fixture.h"

namespace {

struct Shared {
  long plain = 0;  // written by one fiber, read by another
  long slots[101] = {};
  sp_chan_t *ch = nullptr;
  sp_mutex_t mu = {};
  sp_waitgroup_t wg = {};
};

sp_runtime_t *MakeRt(int workers) { return sptest::NewRuntime(workers); }

TEST(RaceTest, ChannelHandoffIsSynchronisation) {
  sp_runtime_t *rt = MakeRt(2);
  Shared s;
  ASSERT_EQ(0, sp_chan_make(&s.ch, sizeof(int), 0));
  sp_fiber_t w, r;
  ASSERT_EQ(0, sp_spawn(rt, &w, [](void *p) -> void * {
              auto *s = static_cast<Shared *>(p);
              for (int i = 1; i <= 100; i++) {
                s->slots[i] = i;  // plain write, then hand over through the channel
                if (sp_chan_send(s->ch, &i, SP_FOREVER) != 0) return (void *)1;
              }
              return nullptr;
            }, &s, nullptr));
  ASSERT_EQ(0, sp_spawn(rt, &r, [](void *p) -> void * {
              auto *s = static_cast<Shared *>(p);
              for (int i = 1; i <= 100; i++) {
                int v;
                if (sp_chan_recv(s->ch, &v, SP_FOREVER) != 0) return (void *)1;
                if (s->slots[v] != v) return (void *)2;  // plain read after the handoff
              }
              return nullptr;
            }, &s, nullptr));
  void *a, *b;
  ASSERT_EQ(0, sp_join(w, &a, SP_FOREVER));
  ASSERT_EQ(0, sp_join(r, &b, SP_FOREVER));
  EXPECT_EQ(nullptr, a);
  EXPECT_EQ(nullptr, b);
  EXPECT_EQ(0, sp_chan_free(s.ch));
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

TEST(RaceTest, MutexWaitGroupAndJoinAreSynchronisation) {
  sp_runtime_t *rt = MakeRt(2);
  Shared s;
  for (int i = 0; i < 8; i++)
    ASSERT_EQ(0, sp_wg_go(&s.wg, rt, [](void *p) -> void * {
                auto *s = static_cast<Shared *>(p);
                for (int k = 0; k < 100; k++) {
                  sp_mutex_lock(&s->mu);
                  s->plain++;
                  sp_mutex_unlock(&s->mu);
                  if (k % 10 == 0) sp_yield();
                }
                return nullptr;
              }, &s));
  ASSERT_EQ(0, sp_wg_wait(&s.wg, SP_FOREVER));
  EXPECT_EQ(800, s.plain);  // read after Wait: ordered by the WaitGroup
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *p) -> void * {
              static_cast<Shared *>(p)->plain = -1;
              return nullptr;
            }, &s, nullptr));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(-1, s.plain);  // read after join: ordered by the join
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

// Two fibers on different workers write the same variable with nothing
// ordering them: TSan must report it and (halt_on_error) stop the process.
[[maybe_unused]] void RacyProgram() {
  sp_runtime_t *rt = MakeRt(2);
  static long x;
  static std::atomic<int> started;
  auto racer = [](void *) -> void * {
    started.fetch_add(1, std::memory_order_relaxed);  // relaxed: no ordering
    int64_t give_up = sp_now() + 5000000000LL;
    while (started.load(std::memory_order_relaxed) < 2 && sp_now() < give_up) {
    }
    x++;  // the race
    return nullptr;
  };
  sp_fiber_t a, b;
  sp_spawn(rt, &a, racer, nullptr, nullptr);
  sp_spawn(rt, &b, racer, nullptr, nullptr);
  sp_join(a, nullptr, SP_FOREVER);
  sp_join(b, nullptr, SP_FOREVER);
  sp_runtime_destroy(rt);
  exit(0);  // reached only if TSan stayed silent
}

TEST(RaceTest, RealRaceBetweenFibersIsReported) {
#ifndef SP_HAVE_TSAN
  GTEST_SKIP() << "needs --config=tsan";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(RacyProgram(), "ThreadSanitizer: data race");
#endif
}

}  // namespace
