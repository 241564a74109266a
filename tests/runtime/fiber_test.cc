// fiber_test.cc: spawn, join, detach, identity, fiber-local storage,
// pinning, and the bad inputs of runtime/fiber.c.
#include <alloca.h>
#include <errno.h>
#include <pthread.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

using sptest::RtTest;

namespace {

class FiberTest : public RtTest {};

void *Add1(void *arg) { return (void *)((intptr_t)arg + 1); }
void *Nop(void *) { return nullptr; }

struct Counter {
  std::atomic<long> n{0};
};
void *Bump(void *arg) {
  static_cast<Counter *>(arg)->n.fetch_add(1);
  return nullptr;
}

TEST_P(FiberTest, JoinReturnsResult) {
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, Add1, (void *)41, nullptr));
  void *r = nullptr;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(42, (intptr_t)r);
}

// A million fibers spawned from fibers (a tree: 1000 parents x 1000 children),
// all joined, results summed.
struct Tree {
  long children;
};
void *Parent(void *arg) {
  long n = static_cast<Tree *>(arg)->children;
  std::vector<sp_fiber_t> kids(n);
  sp_spawn_opts_t o = {"leaf", SP_STACK_MIN, 0};
  for (long i = 0; i < n; i++)
    if (sp_spawn(nullptr, &kids[i], Add1, (void *)i, &o) != 0) return (void *)-1;
  long sum = 0;
  for (long i = 0; i < n; i++) {
    void *r;
    if (sp_join(kids[i], &r, SP_FOREVER) != 0) return (void *)-1;
    sum += (intptr_t)r;
  }
  return (void *)sum;
}

TEST_P(FiberTest, MillionFibersSpawnJoin) {
  const long kids = sptest::kMaxLive < 1000 * 50 ? 40 : 1000;
  const long parents = sptest::Scaled(1000);
  Tree t{kids};
  std::vector<sp_fiber_t> ps(parents);
  for (long i = 0; i < parents; i++) ASSERT_EQ(0, sp_spawn(rt_, &ps[i], Parent, &t, nullptr));
  long total = 0;
  for (long i = 0; i < parents; i++) {
    void *r;
    ASSERT_EQ(0, sp_join(ps[i], &r, SP_FOREVER));
    ASSERT_NE(-1, (intptr_t)r);
    total += (intptr_t)r;
  }
  EXPECT_EQ(parents * (kids * (kids + 1) / 2), total);
  sp_stats_t st;
  ASSERT_EQ(0, sp_runtime_stats(rt_, &st));
  EXPECT_GE(st.spawned, (uint64_t)(parents * (kids + 1)));
}

// A fiber that fills all of its stack but a margin for the calls it makes.
struct StackUser {
  size_t size;
  uint32_t tag;
  bool yields;  // yields to the others while its pattern is on the stack
  std::atomic<int> *bad;
};
void *FillOwnStack(void *arg) {
  auto *u = static_cast<StackUser *>(arg);
  size_t n = (u->size - 12 * 1024) / sizeof(uint32_t);
  volatile uint32_t *buf = static_cast<volatile uint32_t *>(alloca(n * sizeof(uint32_t)));
  for (size_t i = 0; i < n; i++) buf[i] = u->tag ^ (uint32_t)i;
  if (u->yields)
    for (int k = 0; k < 3; k++) sp_yield();
  for (size_t i = 0; i < n; i++)
    if (buf[i] != (u->tag ^ (uint32_t)i)) {
      u->bad->fetch_add(1);
      break;
    }
  return nullptr;
}

// Fibers queued before they first run trade their stacks for ones freed
// since, of the same size class (sched.c S9). Each must still get a whole
// stack of the size it asked for (it fills it but a margin; a smaller one
// would fault on its guard page), and no stack may serve two live fibers:
// half of them yield with their pattern on the stack while the others run,
// finish, and leave their stacks to be traded.
TEST_P(FiberTest, QueuedFibersGetWholeStacksOfTheirOwnSize) {
#ifdef USE_VALGRIND  // memcheck takes frames over 2 MB for a stack switch
  static const size_t kSizes[] = {32 * 1024, 64 * 1024, 256 * 1024, 1 << 20};
#else
  static const size_t kSizes[] = {32 * 1024, 64 * 1024, 256 * 1024, 2 << 20, 3 << 20};
#endif
  const int per = 8;
  std::atomic<int> bad{0};
  std::vector<StackUser> us;
  for (int i = 0; i < per; i++)
    for (size_t sz : kSizes) us.push_back({sz, (uint32_t)(us.size() * 0x9e3779b9u), i % 2 == 0, &bad});
  RunInFiber([&] {
    std::vector<sp_fiber_t> fs(us.size());
    for (size_t i = 0; i < us.size(); i++) {  // one worker: all queued before any runs
                                               // (more: some stolen and run meanwhile)
      sp_spawn_opts_t o = {"filler", us[i].size, 0};
      ASSERT_EQ(0, sp_spawn(nullptr, &fs[i], FillOwnStack, &us[i], &o));
    }
    for (auto &f : fs) ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  });
  EXPECT_EQ(0, bad.load()) << "a fiber's stack was written while it was parked";
  sp_stats_t st;
  ASSERT_EQ(0, sp_runtime_stats(rt_, &st));
  EXPECT_EQ(0u, st.stacks_used);
}

TEST_P(FiberTest, DetachedFibersRunAndFreeThemselves) {
  Counter c;
  const int n = (int)sptest::ScaledLive(10000);
  sp_spawn_opts_t o = {"detached", 0, 1};
  for (int i = 0; i < n; i++) ASSERT_EQ(0, sp_spawn(rt_, nullptr, Bump, &c, &o));
  RunInFiber([] {});  // any fiber; then wait for the counter
  while (c.n.load() < n) std::this_thread::yield();
  SUCCEED();
}

TEST_P(FiberTest, GoMacroSpawnsDetachedFromFiber) {
  Counter c;
  RunInFiber([&] {
    for (int i = 0; i < 100; i++) ASSERT_EQ(0, sp_go(Bump, &c));
  });
  while (c.n.load() < 100) std::this_thread::yield();
}

TEST_P(FiberTest, DetachAfterFinishFreesBlock) {
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, Nop, nullptr, nullptr));
  while (sp_join(f, nullptr, 0) == -EAGAIN) std::this_thread::yield();  // joins it
  ASSERT_EQ(0, sp_spawn(rt_, &f, Nop, nullptr, nullptr));
  ASSERT_EQ(0, sp_detach(f));
  // The detached fiber may already be finished and freed: then the handle
  // is stale (-ESRCH); otherwise it is detached (-EINVAL). Never 0.
  int rc = sp_join(f, nullptr, SP_FOREVER);
  EXPECT_TRUE(rc == -EINVAL || rc == -ESRCH) << rc;
  rc = sp_detach(f);
  EXPECT_TRUE(rc == -EINVAL || rc == -ESRCH) << rc;
}

TEST_P(FiberTest, JoinDeadlineThenJoinAgain) {
  sptest::Gate gate;
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *g) -> void * {
              static_cast<sptest::Gate *>(g)->Wait();
              return (void *)7;
            }, &gate, nullptr));
  EXPECT_EQ(-EAGAIN, sp_join(f, nullptr, 0));
  EXPECT_EQ(-ETIMEDOUT, sp_join(f, nullptr, sp_deadline_in(2000000)));
  RunInFiber([&] {  // the same from a fiber
    EXPECT_EQ(-ETIMEDOUT, sp_join(f, nullptr, sp_deadline_in(2000000)));
  });
  while (gate.Waiting() == 0) std::this_thread::yield();
  gate.Open();
  void *r = nullptr;
  ASSERT_EQ(0, sp_join(f, &r, SP_FOREVER));
  EXPECT_EQ(7, (intptr_t)r);
  EXPECT_EQ(-ESRCH, sp_join(f, &r, SP_FOREVER)) << "stale handle after join";
  EXPECT_EQ(-ESRCH, sp_detach(f));
}

TEST_P(FiberTest, JoinRacesFinish) {
  // Deadlines that fire right around the moment the fiber finishes: every
  // join must end with the result exactly once, never hang or double-free.
  const int n = (int)sptest::Scaled(2000);
  for (int i = 0; i < n; i++) {
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *) -> void * {
                sp_sleep_for(20000);
                return (void *)1;
              }, nullptr, nullptr));
    void *r = nullptr;
    int rc;
    while ((rc = sp_join(f, &r, sp_deadline_in(i % 40 * 1000))) == -ETIMEDOUT) {
    }
    ASSERT_EQ(0, rc);
    ASSERT_EQ(1, (intptr_t)r);
  }
}

TEST_P(FiberTest, SecondConcurrentJoinIsRefused) {
  sptest::Gate gate;
  sp_fiber_t f;
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *g) -> void * {
              static_cast<sptest::Gate *>(g)->Wait();
              return nullptr;
            }, &gate, nullptr));
  std::atomic<int> first{1};
  std::thread t([&] { first = sp_join(f, nullptr, SP_FOREVER); });
  // wait until the thread is registered as the joiner
  int rc;
  while ((rc = sp_join(f, nullptr, 0)) == -EAGAIN) std::this_thread::yield();
  EXPECT_EQ(-EINVAL, rc);
  while (gate.Waiting() == 0) std::this_thread::yield();
  gate.Open();
  t.join();
  EXPECT_EQ(0, first.load());
}

TEST_P(FiberTest, IdentityAndNames) {
  EXPECT_EQ(0u, sp_fiber_id());
  EXPECT_STREQ("", sp_fiber_name());
  EXPECT_EQ(nullptr, sp_self().p);
  EXPECT_EQ(-1, sp_worker_index());
  EXPECT_EQ(nullptr, sp_runtime_current());
  sp_fiber_t f;
  sp_spawn_opts_t o = {"a-rather-long-fiber-name-that-gets-truncated", 0, 0};
  struct Seen {
    uint64_t id;
    std::string name;
    sp_runtime_t *rt;
    int worker;
    sp_fiber_t self;
  } seen{};
  ASSERT_EQ(0, sp_spawn(rt_, &f, [](void *a) -> void * {
              auto *s = static_cast<Seen *>(a);
              s->id = sp_fiber_id();
              s->name = sp_fiber_name();
              s->rt = sp_runtime_current();
              s->worker = sp_worker_index();
              s->self = sp_self();
              return nullptr;
            }, &seen, &o));
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  EXPECT_EQ(f.id, seen.id);
  EXPECT_EQ(f.p, seen.self.p);
  EXPECT_EQ(std::string(o.name).substr(0, SP_NAME_MAX), seen.name);
  EXPECT_EQ(rt_, seen.rt);
  EXPECT_GE(seen.worker, 0);
  EXPECT_LT(seen.worker, workers());
}

void *FlsBody(void *a) {
  int key = (int)(intptr_t)a & 0xff;
  int mine = (int)(intptr_t)a >> 8;
  if (sp_key_get(key) != nullptr) return (void *)1;
  if (sp_key_set(key, new int(mine)) != 0) return (void *)2;
  for (int k = 0; k < 10; k++) {
    sp_yield();
    if (*static_cast<int *>(sp_key_get(key)) != mine) return (void *)3;
  }
  if (sp_key_set(key + 1000, nullptr) != -EINVAL) return (void *)4;
  return nullptr;
}

TEST_P(FiberTest, FiberLocalStorage) {
  static std::atomic<int> destroyed{0};
  destroyed = 0;
  int key = sp_key_create(rt_, [](void *v) {
    delete static_cast<int *>(v);
    destroyed++;
  });
  ASSERT_GE(key, 0);
  EXPECT_EQ(-EPERM, sp_key_set(key, nullptr)) << "outside a fiber";
  EXPECT_EQ(nullptr, sp_key_get(key));
  const int n = 200;
  std::vector<sp_fiber_t> fs(n);
  for (int i = 0; i < n; i++)
    ASSERT_EQ(0, sp_spawn(rt_, &fs[i], FlsBody, (void *)(intptr_t)(key | (i << 8)), nullptr));
  for (int i = 0; i < n; i++) {
    void *r;
    ASSERT_EQ(0, sp_join(fs[i], &r, SP_FOREVER));
    EXPECT_EQ(nullptr, r);
  }
  EXPECT_EQ(n, destroyed.load());
}

TEST_P(FiberTest, KeysRunOut) {
  int k = 0, last = 0;
  for (int i = 0; i < SP_KEYS_MAX + 5 && k >= 0; i++) {
    last = k;
    k = sp_key_create(rt_, nullptr);
  }
  EXPECT_EQ(-EAGAIN, k);
  EXPECT_EQ(SP_KEYS_MAX - 1, last);
}

TEST_P(FiberTest, PinnedFiberStaysOnItsWorker) {
  RunInFiber([] {
    ASSERT_EQ(0, sp_pin());
    int w = sp_worker_index();
    for (int i = 0; i < 200; i++) {
      if (i % 2)
        sp_yield();
      else
        sp_sleep_for(10000);
      ASSERT_EQ(w, sp_worker_index());
    }
    ASSERT_EQ(0, sp_unpin());
  });
}

TEST_P(FiberTest, BadInput) {
  sp_fiber_t f;
  EXPECT_EQ(-EINVAL, sp_spawn(rt_, &f, nullptr, nullptr, nullptr)) << "NULL fn";
  sp_spawn_opts_t joinable = {"j", 0, 0};
  EXPECT_EQ(-EINVAL, sp_spawn(rt_, nullptr, Nop, nullptr, &joinable)) << "joinable without out";
  EXPECT_EQ(-EINVAL, sp_spawn(nullptr, &f, Nop, nullptr, nullptr)) << "no runtime on a thread";
  sp_spawn_opts_t tiny = {"tiny", 100, 0}, huge = {"huge", (size_t)1 << 40, 0};
  EXPECT_EQ(-EINVAL, sp_spawn(rt_, &f, Nop, nullptr, &tiny));
  EXPECT_EQ(-EINVAL, sp_spawn(rt_, &f, Nop, nullptr, &huge));
  EXPECT_EQ(-EINVAL, sp_join(sp_fiber_t{nullptr, 0}, nullptr, SP_FOREVER));
  EXPECT_EQ(-EPERM, sp_yield());
  EXPECT_EQ(-EPERM, sp_sleep_for(1000));
  EXPECT_EQ(-EPERM, sp_pin());
  EXPECT_EQ(-EPERM, sp_unpin());
  EXPECT_EQ(-EINVAL, sp_key_create(nullptr, nullptr)) << "no runtime on a thread";
  RunInFiber([&] {
    EXPECT_EQ(-EINVAL, sp_join(sp_self(), nullptr, SP_FOREVER)) << "join itself";
    EXPECT_EQ(-EINVAL, sp_sleep_until(SP_FOREVER));
    EXPECT_EQ(-EDEADLK, sp_runtime_shutdown(rt_, 0));
    EXPECT_EQ(-EDEADLK, sp_runtime_destroy(rt_));
    EXPECT_EQ(0, sp_sleep_until(0)) << "a past deadline returns at once";
  });
}

SP_INSTANTIATE_WORKERS(FiberTest);

}  // namespace
