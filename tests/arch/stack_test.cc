// stack_test.cc: fiber stacks (arch/stack.c): pooling, guard pages, the
// memory-map budget, and -ENOMEM instead of crashes.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include <fstream>
#include <string>
#include <vector>

#include "arch/stack.h"
#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"
#include "tests/support/scale.h"

namespace {

int MapCount() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n++;
  return n;
}

// A cache or free-array entry without its "fresh" mark (arch/stack.c K4).
void *Untag(void *e) { return (void *)((uintptr_t)e & ~(uintptr_t)1); }

bool KernelHasGuardInstall() {  // MADV_GUARD_INSTALL arrived in Linux 6.13
  struct utsname u;
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  sscanf(u.release, "%d.%d", &major, &minor);
  return major > 6 || (major == 6 && minor >= 13);
}

// A stack pool with one worker's cache, destroyed after the test.
class StackPool : public testing::Test {
 protected:
  void SetUp() override { sp__stack_pool_init(&pool); }
  void TearDown() override { sp__stack_pool_destroy(&pool); }
  sp__stack_pool_t pool;
  sp__stack_cache_t cache{};
  const char *why = nullptr;
};

TEST_F(StackPool, ReusesFreedStacks) {
  sp__stack_t a, b, c;
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, 20000, &a, &why));
  EXPECT_EQ(32u * 1024, a.size) << "rounded up to the size class";
  memset(a.lo, 0xab, a.size);  // the whole usable range is writable
  sp__stack_free(&pool, &cache, a);
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, 32 * 1024, &b, &why));
  EXPECT_EQ(a.lo, b.lo) << "cache hit";
  ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, 64 * 1024, &c, &why));  // no cache
  EXPECT_EQ(2u, pool.mapped);
  // in use = the pool's count (cacheless allocations) + each cache's
  EXPECT_EQ(1, pool.in_use);
  EXPECT_EQ(1, cache.used);
  sp__stack_free(&pool, &cache, c);  // freed through another cache than its own
  EXPECT_EQ(1, pool.in_use);
  EXPECT_EQ(0, cache.used);
  sp__stack_free(&pool, &cache, b);
  EXPECT_EQ(0, pool.in_use + cache.used);
  sp__stack_t big;  // larger than the largest class: a mapping of its own
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, 5 << 20, &big, &why));
  memset(big.lo, 1, big.size);
  sp__stack_free(&pool, &cache, big);
  sp__stack_cache_drain(&pool, &cache);  // folds the cache's count into the pool's
  EXPECT_EQ(0, pool.in_use);
  EXPECT_EQ(0, cache.used);
}

// A fiber spawned on a fresh stack (no fiber has run on it) trades it at
// its first run for the used one on top of its worker's cache of the same
// class (sched.c S9) and leaves its own in that place, still marked fresh
// (K4) wherever it goes next.
TEST_F(StackPool, SwapTradesAFreshStackForTheOneFreedLast) {
  sp__stack_t a, b, fresh, other, big;
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, SP_STACK_MIN, &a, &why));
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, SP_STACK_MIN, &b, &why));
  ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &fresh, &why));
  ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, 64 * 1024, &other, &why));
  ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, 5 << 20, &big, &why));
  EXPECT_TRUE(fresh.fresh) << "carved: never run on";
  sp__stack_free(&pool, &cache, a);
  sp__stack_free(&pool, &cache, b);  // class 0's cache: a, b (top), both run on
  void *fresh_lo = fresh.lo;
  sp__stack_swap_cached(&cache, &fresh);
  EXPECT_EQ(b.lo, fresh.lo) << "the top of the cache: the stack freed last";
  EXPECT_EQ((size_t)SP_STACK_MIN, fresh.size);
  EXPECT_FALSE(fresh.fresh);
  ASSERT_EQ(2, cache.n[0]) << "a swap neither adds nor takes a stack";
  EXPECT_EQ(Untag(cache.slot[0][1]), fresh_lo) << "the caller's stack takes the top's place";
  EXPECT_EQ(a.lo, cache.slot[0][0]);
  sp__stack_swap_cached(&cache, &fresh);  // used now: kept
  EXPECT_EQ(b.lo, fresh.lo);

  sp__stack_t again;  // the top: fresh's old stack, still never run on
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, SP_STACK_MIN, &again, &why));
  EXPECT_EQ(fresh_lo, again.lo);
  EXPECT_TRUE(again.fresh) << "the mark travels with the stack";
  sp__stack_swap_cached(&cache, &again);  // the top now: a, used
  EXPECT_EQ(a.lo, again.lo);
  ASSERT_EQ(1, cache.n[0]);
  sp__stack_t c2;  // the top is fresh too: no trade
  ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &c2, &why));
  void *c2_lo = c2.lo;
  sp__stack_swap_cached(&cache, &c2);
  EXPECT_EQ(c2_lo, c2.lo);
  sp__stack_free(&pool, &cache, again);  // a, run on again
  sp__stack_t hit;
  ASSERT_EQ(0, sp__stack_alloc(&pool, &cache, SP_STACK_MIN, &hit, &why));
  EXPECT_EQ(a.lo, hit.lo);
  EXPECT_FALSE(hit.fresh);
  sp__stack_swap_cached(&cache, &hit);
  EXPECT_EQ(a.lo, hit.lo);

  void *other_lo = other.lo, *big_lo = big.lo;
  sp__stack_swap_cached(&cache, &other);  // class 2's cache is empty
  EXPECT_EQ(other_lo, other.lo);
  sp__stack_swap_cached(&cache, &big);  // no class: a mapping of its own
  EXPECT_EQ(big_lo, big.lo);
  memset(fresh.lo, 0x5a, fresh.size);  // whole and writable
  for (sp__stack_t s : {fresh, hit, c2, other, big}) sp__stack_free(&pool, &cache, s);
  sp__stack_cache_drain(&pool, &cache);
  EXPECT_EQ(0, pool.in_use) << "every stack handed out came back once";
  ASSERT_EQ(4u, pool.nfree[0]);
  EXPECT_EQ(1u, pool.nfree[2]);
  int fresh_seen = 0;  // through the pool too, only the one never run on is fresh
  for (int i = 0; i < 4; i++) {
    sp__stack_t s;
    ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &s, &why));
    EXPECT_EQ(s.lo, Untag(s.lo));
    if (s.fresh) {
      fresh_seen++;
      EXPECT_EQ(fresh_lo, s.lo);
    }
  }
  EXPECT_EQ(1, fresh_seen);
}

// A trade just before leaves a fresh stack on top, above the used one
// freed last: the next trade looks past it (a few entries deep).
TEST_F(StackPool, SwapLooksPastAFreshTop) {
  sp__stack_t u1, u2, s1, s2, s3;
  for (sp__stack_t *s : {&u1, &u2, &s1, &s2, &s3})
    ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, s, &why));
  void *u1_lo = u1.lo, *u2_lo = u2.lo, *s1_lo = s1.lo, *s2_lo = s2.lo, *s3_lo = s3.lo;
  sp__stack_free(&pool, &cache, u1);
  sp__stack_free(&pool, &cache, u2);  // [u1, u2]
  sp__stack_swap_cached(&cache, &s1);  // takes u2: [u1, s1 (fresh)]
  EXPECT_EQ(u2_lo, s1.lo);
  sp__stack_swap_cached(&cache, &s2);  // past s1 to u1: [s2, s1], both fresh
  EXPECT_EQ(u1_lo, s2.lo);
  EXPECT_FALSE(s2.fresh);
  EXPECT_EQ(s2_lo, Untag(cache.slot[0][0]));
  EXPECT_EQ(s1_lo, Untag(cache.slot[0][1]));
  sp__stack_swap_cached(&cache, &s3);  // nothing used left: kept
  EXPECT_EQ(s3_lo, s3.lo);
  EXPECT_TRUE(s3.fresh);
  for (sp__stack_t s : {s1, s2, s3}) sp__stack_free(&pool, &cache, s);
  sp__stack_cache_drain(&pool, &cache);
  EXPECT_EQ(0, pool.in_use);

  // only a few entries deep: a used stack under 4 fresh ones is not taken
  std::vector<sp__stack_t> d(6);
  for (auto &x : d) ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &x, &why));
  sp__stack_cache_t deep{};
  deep.slot[0][0] = d[0].lo;  // used
  for (int i = 1; i <= 4; i++) deep.slot[0][i] = (void *)((uintptr_t)d[i].lo | 1);
  deep.n[0] = 5;
  void *d5_lo = d[5].lo;
  sp__stack_swap_cached(&deep, &d[5]);
  EXPECT_EQ(d5_lo, d[5].lo) << "looked deeper than 4 entries";
  deep.slot[0][1] = d[1].lo;  // now one within reach
  sp__stack_swap_cached(&deep, &d[5]);
  EXPECT_EQ(d[1].lo, d[5].lo);
  EXPECT_EQ(d5_lo, Untag(deep.slot[0][1]));
}

// A full cache (arch/stack.c K5) sends its fresh stacks to the pool first
// and keeps the one being freed; full of used stacks, it sends that one and
// its newer half, and keeps the older half.
TEST_F(StackPool, FullCacheSpillsFreshStacksFirst) {
  const int full = SP__STACK_CACHE, half = SP__STACK_CACHE / 2;
  std::vector<sp__stack_t> s(2 * full + 2);
  for (auto &x : s) ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &x, &why));

  for (int i = 0; i < full; i++) sp__stack_free(&pool, &cache, s[i]);  // all used
  ASSERT_EQ(full, cache.n[0]);
  EXPECT_EQ(0u, pool.nfree[0]);
  sp__stack_free(&pool, &cache, s[full]);
  ASSERT_EQ(half, cache.n[0]);
  for (int i = 0; i < half; i++) EXPECT_EQ(s[i].lo, cache.slot[0][i]) << "the older half stays";
  ASSERT_EQ((size_t)half + 1, pool.nfree[0]);
  EXPECT_EQ(s[full].lo, pool.free[0][0]) << "then the one freed, then the newer half from the top";
  for (int i = 1; i <= half; i++) EXPECT_EQ(s[full - i].lo, pool.free[0][i]);
  sp__stack_cache_drain(&pool, &cache);

  // fresh entries (bit 0, K4), as trades leave them, below and among used ones
  sp__stack_cache_t mixed{};
  const int fresh = full - half + 2, used = full - fresh;
  std::vector<void *> want_kept;
  // fresh ones on even places, and on every place once the rest must be
  int nf = 0;
  for (int i = 0; i < full; i++) {
    sp__stack_t &x = s[full + 1 + i];
    bool f = nf < fresh && (i % 2 == 0 || full - i <= fresh - nf);
    mixed.slot[0][i] = f ? (void *)((uintptr_t)x.lo | 1) : x.lo;
    if (f)
      nf++;
    else
      want_kept.push_back(x.lo);
  }
  ASSERT_EQ(fresh, nf);
  ASSERT_EQ(used, (int)want_kept.size());
  mixed.n[0] = full;
  size_t pooled = pool.nfree[0];
  const sp__stack_t &last = s[2 * full + 1];
  sp__stack_free(&pool, &mixed, last);
  ASSERT_EQ(used + 1, mixed.n[0]) << "the used ones and the one freed stay";
  for (int i = 0; i < used; i++) EXPECT_EQ(want_kept[i], mixed.slot[0][i]) << "in their order";
  EXPECT_EQ(last.lo, mixed.slot[0][used]) << "the one freed is on top";
  EXPECT_EQ(pooled + fresh, pool.nfree[0]) << "every fresh one went to the pool";
  int fresh_in_pool = 0;
  for (size_t i = pooled; i < pool.nfree[0]; i++) fresh_in_pool += (uintptr_t)pool.free[0][i] & 1;
  EXPECT_EQ(fresh, fresh_in_pool) << "still marked fresh there";
  sp__stack_cache_drain(&pool, &mixed);
  EXPECT_EQ(s.size(), pool.nfree[0]) << "each stack back once";

  // a few fresh ones among more than half used: the fresh ones go, then the
  // one freed and the newest used ones, down to half
  std::vector<sp__stack_t> t(full + 1);
  for (auto &x : t) ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, SP_STACK_MIN, &x, &why));
  sp__stack_cache_t most{};
  std::vector<void *> used_lo;
  for (int i = 0; i < full; i++) {
    bool f = i % 5 == 2;  // 3 of 16
    most.slot[0][i] = f ? (void *)((uintptr_t)t[i].lo | 1) : t[i].lo;
    if (!f) used_lo.push_back(t[i].lo);
  }
  most.n[0] = full;
  ASSERT_GT((int)used_lo.size(), half);
  pooled = pool.nfree[0];
  sp__stack_free(&pool, &most, t[full]);
  ASSERT_EQ(half, most.n[0]);
  for (int i = 0; i < half; i++) EXPECT_EQ(used_lo[i], most.slot[0][i]) << "the oldest used stay";
  EXPECT_EQ(pooled + (size_t)(full + 1 - half), pool.nfree[0]);
}

TEST_F(StackPool, ManyStacksFewMapEntries) {
  if (!KernelHasGuardInstall()) GTEST_SKIP() << "kernel lacks MADV_GUARD_INSTALL (< 6.13)";
  int before = MapCount();
  const int n = 100000;  // more than vm.max_map_count / 2 would allow with mprotect
  std::vector<sp__stack_t> st(n);
  for (int i = 0; i < n; i++) ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, 16384, &st[i], &why)) << why;
  EXPECT_LT(MapCount() - before, 100) << "guard pages cost map entries";
  for (auto &s : st) sp__stack_free(&pool, nullptr, s);
}

void *Crash(void *) {
  // a wild pointer into the unmapped first page: not null, so that
  // --config=ubsan lets the fault happen instead of reporting the store
  *reinterpret_cast<volatile int *>(uintptr_t{16}) = 1;
  return nullptr;
}

[[maybe_unused]] void CrashInFiber() {  // unused under the sanitizers
  sp_runtime_t *rt;
  sp_runtime_create(&rt, nullptr);
  sp_fiber_t f;
  sp_spawn_opts_t o = {"crasher", 0, 0};
  sp_spawn(rt, &f, Crash, nullptr, &o);
  sp_join(f, nullptr, SP_FOREVER);
}

// Other crashes inside a fiber name it too, and the process still dies of
// the original signal.
TEST(StackGuard, CrashNamesTheFiber) {
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
  GTEST_SKIP() << "the sanitizers report crashes themselves";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(CrashInFiber(), testing::KilledBySignal(SIGSEGV),
              "spindle: fiber [0-9]+ \"crasher\" \\(spawned at .*stack_test.cc:[0-9]+\\) "
              "crashed: SIGSEGV at 0x10");
#endif
}

// The fallback for kernels before 6.13: mprotect, one map entry per guard.
TEST_F(StackPool, MprotectFallbackGuards) {
  pool.guard_mode = SP__GUARD_MPROTECT;
  int before = MapCount();
  const int n = 100;
  std::vector<sp__stack_t> st(n);
  for (auto &s : st) {
    ASSERT_EQ(0, sp__stack_alloc(&pool, nullptr, 16384, &s, &why)) << why;
    memset(s.lo, 1, s.size);
  }
  EXPECT_EQ(SP__GUARD_MPROTECT, pool.guard_mode);
  EXPECT_GE(MapCount() - before, n) << "each mprotect guard splits the mapping";
  for (auto &s : st) sp__stack_free(&pool, nullptr, s);
}

void TouchBelowMprotectStack() {
  sp__stack_pool_t pool;
  sp__stack_pool_init(&pool);
  pool.guard_mode = SP__GUARD_MPROTECT;
  sp__stack_t s;
  const char *why;
  if (sp__stack_alloc(&pool, nullptr, 16384, &s, &why) != 0) exit(3);
  static_cast<volatile char *>(s.lo)[-1] = 1;  // the guard page
  exit(0);
}

TEST(StackGuard, MprotectGuardFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
  EXPECT_DEATH(TouchBelowMprotectStack(), "");
#else
  EXPECT_EXIT(TouchBelowMprotectStack(), testing::KilledBySignal(SIGSEGV), "");
#endif
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"  // overflowing is the point
void Overflow(volatile char *p, int depth) {
  volatile char buf[1024];
  buf[0] = (char)depth;
  if (p) p[0] = buf[0];
  Overflow(buf, depth + 1);
}

void *Recurse(void *) {
  Overflow(nullptr, 0);
  return nullptr;
}

void OverflowInFiber() {
  sp_runtime_t *rt;
  sp_runtime_create(&rt, nullptr);
  sp_fiber_t f;
  sp_spawn_opts_t o = {"deep", SP_STACK_MIN, 0};
  sp_spawn(rt, &f, Recurse, nullptr, &o);
  sp_join(f, nullptr, SP_FOREVER);
}

TEST(StackGuard, OverflowHitsTheGuardPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if defined(SP_HAVE_ASAN)
  EXPECT_DEATH(OverflowInFiber(), "stack-overflow");
#elif defined(SP_HAVE_TSAN)
  EXPECT_DEATH(OverflowInFiber(), "");
#else
  EXPECT_EXIT(OverflowInFiber(), testing::KilledBySignal(SIGSEGV),
              "spindle: fiber [0-9]+ \"deep\" \\(spawned at .*stack_test.cc:[0-9]+\\) "
              "overflowed its 16 KiB stack");
#endif
}

void *WaitGate(void *g) {
  static_cast<sptest::Gate *>(g)->Wait();
  return nullptr;
}

void SpawnUntilENOMEM() {
        sp_config_t cfg;
        sp_config_init(&cfg);
        cfg.workers = 1;
        cfg.debug = 1;
        sp_runtime_t *rt;
        if (sp_runtime_create(&rt, &cfg) != 0) exit(3);
        struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30};
        setrlimit(RLIMIT_AS, &rl);
        sp_spawn_opts_t o = {"big", (size_t)256 << 20, 0};
        std::vector<sp_fiber_t> fs;
        sptest::Gate gate;
        for (int i = 0; i < 64; i++) {
          sp_fiber_t f;
          int rc = sp_spawn(rt, &f, WaitGate, &gate, &o);
          if (rc == -ENOMEM) {
            gate.Open();
            for (auto &h : fs) sp_join(h, nullptr, SP_FOREVER);
            exit(sp_runtime_destroy(rt) == 0 ? 42 : 4);
          }
          if (rc != 0) exit(5);
          fs.push_back(f);
        }
        exit(6);
}

// When address space runs out, spawn says -ENOMEM (naming the limit in
// debug mode) instead of crashing. Run in a child so the limit stays there.
TEST(StackGuard, SpawnReturnsENOMEMWhenStacksRunOut) {
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
  GTEST_SKIP() << "sanitizers reserve address space of their own (RLIMIT_AS)";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(SpawnUntilENOMEM(), testing::ExitedWithCode(42), "no stack of 268435456 bytes: mmap");
}

// A million parked fibers fit the default vm.max_map_count (65530): the
// stacks' guard pages do not take a map entry each.
TEST(StackGuard, MillionParkedFibers) {
  if (!KernelHasGuardInstall()) GTEST_SKIP() << "kernel lacks MADV_GUARD_INSTALL (< 6.13)";
  sp_runtime_t *rt;
  ASSERT_EQ(0, sp_runtime_create(&rt, nullptr));
  const long n = sptest::ScaledLive(1000000);
  sptest::Gate gate;
  sp_spawn_opts_t o = {"parked", SP_STACK_MIN, 1};
  for (long i = 0; i < n; i++)
    ASSERT_EQ(0, sp_spawn(rt, nullptr, [](void *g) -> void * {
                static_cast<sptest::Gate *>(g)->Wait();
                return nullptr;
              }, &gate, &o));
  while ((long)gate.Waiting() < n) usleep(10000);
#ifndef SP_HAVE_TSAN  // TSan maps memory per fiber of its own
  EXPECT_LT(MapCount(), 10000);
#endif
  sp_stats_t st;
  ASSERT_EQ(0, sp_runtime_stats(rt, &st));
  EXPECT_EQ((uint64_t)n, st.live);
  EXPECT_EQ(n, gate.Open());
  ASSERT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
