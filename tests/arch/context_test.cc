// context_test.cc: the context-switch contract (arch/context.h): ping-pong
// with data, a context resumed on another thread, C++ exceptions inside a
// context, and per-context floating-point control state.
#include <fenv.h>

#include <stdexcept>
#include <thread>

#include "arch/context.h"
#include "arch/stack.h"
#include "tests/support/rt_fixture.h"

namespace {

struct Pair {
  sp__ctx_t main, co;
  long counter = 0;
};

// The context's body: bump the counter each time it is resumed.
void PingBody(transfer_t t) {
  sp__ctx_entered();
  Pair *p = static_cast<Pair *>(t.data);
  p->main.fctx = t.fctx;
  for (;;) {
    p->counter += (long)(intptr_t)t.data == 0 ? 0 : 1;
    t = sp__ctx_jump(&p->main, (void *)(intptr_t)p->counter);
    p->main.fctx = t.fctx;
  }
}

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sp__stack_pool_init(&pool_);
    const char *why;
    ASSERT_EQ(0, sp__stack_alloc(&pool_, nullptr, 64 * 1024, &stack_, &why));
  }
  void TearDown() override {
    sp__stack_free(&pool_, nullptr, stack_);
    sp__stack_pool_destroy(&pool_);
  }
  sp__stack_pool_t pool_;
  sp__stack_t stack_;
};

TEST_F(ContextTest, PingPongPassesData) {
  Pair p;
  sp__ctx_init_thread(&p.main);
  sp__ctx_make(&p.co, stack_.lo, stack_.size, PingBody);
  transfer_t t = sp__ctx_jump(&p.co, &p);
  for (long i = 1; i <= 1000; i++) {
    p.co.fctx = t.fctx;
    EXPECT_EQ(i, (intptr_t)t.data);
    t = sp__ctx_jump(&p.co, (void *)1);
  }
  sp__ctx_release(&p.co);
}

// A context switched out on one thread is resumed on another.
TEST_F(ContextTest, ResumeOnAnotherThread) {
  Pair p;
  sp__ctx_init_thread(&p.main);
  sp__ctx_make(&p.co, stack_.lo, stack_.size, PingBody);
  transfer_t t = sp__ctx_jump(&p.co, &p);
  p.co.fctx = t.fctx;
  long seen = 0;
  for (int round = 0; round < 10; round++) {
    std::thread th([&] {
      sp__ctx_t here;
      sp__ctx_init_thread(&here);
      p.main = here;  // the body returns to whoever resumed it
      transfer_t r = sp__ctx_jump(&p.co, (void *)1);
      p.co.fctx = r.fctx;
      seen = (intptr_t)r.data;
    });
    th.join();
    EXPECT_EQ(round + 2, seen);
  }
  sp__ctx_release(&p.co);
}

struct ThrowCtx {
  sp__ctx_t main, co;
  int caught = 0;
};

void ThrowBody(transfer_t t) {
  sp__ctx_entered();
  auto *c = static_cast<ThrowCtx *>(t.data);
  c->main.fctx = t.fctx;
  for (int i = 0; i < 100; i++) {
    try {
      throw std::runtime_error("inside a context");
    } catch (const std::exception &) {
      c->caught++;
    }
  }
  sp__ctx_jump_final(&c->main, nullptr);
}

TEST_F(ContextTest, ExceptionsInsideAContext) {
  ThrowCtx c;
  sp__ctx_init_thread(&c.main);
  sp__ctx_make(&c.co, stack_.lo, stack_.size, ThrowBody);
  sp__ctx_jump(&c.co, &c);
  EXPECT_EQ(100, c.caught);
  sp__ctx_release(&c.co);
}

struct FpCtx {
  sp__ctx_t main, co;
  int seen_round = -1;
};

void FpBody(transfer_t t) {
  sp__ctx_entered();
  auto *c = static_cast<FpCtx *>(t.data);
  c->main.fctx = t.fctx;
  fesetround(FE_UPWARD);  // this context's own rounding mode
  t = sp__ctx_jump(&c->main, nullptr);
  c->main.fctx = t.fctx;
  c->seen_round = fegetround();
  sp__ctx_jump_final(&c->main, nullptr);
}

// MXCSR and the x87 control word are saved per context (context.h).
TEST_F(ContextTest, RoundingModeIsPerContext) {
  FpCtx c;
  sp__ctx_init_thread(&c.main);
  sp__ctx_make(&c.co, stack_.lo, stack_.size, FpBody);
  ASSERT_EQ(FE_TONEAREST, fegetround());
  transfer_t t = sp__ctx_jump(&c.co, &c);
  c.co.fctx = t.fctx;
  EXPECT_EQ(FE_TONEAREST, fegetround()) << "the context's mode leaked out";
  fesetround(FE_DOWNWARD);
  sp__ctx_jump(&c.co, nullptr);
  EXPECT_EQ(FE_UPWARD, c.seen_round) << "the context's mode was not restored";
  EXPECT_EQ(FE_DOWNWARD, fegetround());
  fesetround(FE_TONEAREST);
  sp__ctx_release(&c.co);
}

}  // namespace
