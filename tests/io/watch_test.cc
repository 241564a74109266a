// watch_test.cc: one sp_select over a channel, a timer, a context's done
// channel and fd readiness (io/watch.c), on both io backends.
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "tests/support/rt_fixture.h"

using sptest::RtTest;

namespace {

class WatchTest : public RtTest {};

constexpr int64_t kMs = 1000000;

TEST_P(WatchTest, OneSelectOverChannelTimerContextAndFd) {
  RunInFiber([] {
    int p[2];
    ASSERT_EQ(0, pipe(p));
    sp_chan_t *ch;
    ASSERT_EQ(0, sp_chan_make(&ch, sizeof(int), 0));
    sp_ctx_t *ctx;
    ASSERT_EQ(0, sp_ctx_with_cancel(nullptr, &ctx));
    sp_watch_t *w;
    ASSERT_EQ(0, sp_watch_fd(&w, p[0], POLLIN));
    sp_timer_t *t;
    ASSERT_EQ(0, sp_timer_start(&t, sp_deadline_in(40 * kMs)));
    int v = 0, ev = 0;
    int64_t when = 0;
    auto select = [&] {
      sp_case_t cs[4] = {{SP_RECV, ch, &v, 0, 0},
                         {SP_RECV, sp_timer_chan(t), &when, 0, 0},
                         {SP_RECV, sp_ctx_done(ctx), nullptr, 0, 0},
                         {SP_RECV, sp_watch_chan(w), &ev, 0, 0}};
      for (;;) {
        int i = sp_select(cs, 4, sp_deadline_in(5000 * kMs));
        // readiness may be stale (sp_io.h): ask the fd itself
        if (i != 3 || sp_poll_fd(p[0], POLLIN, 0) > 0) return i;
      }
    };
    EXPECT_EQ(1, select());  // nothing else is ready: the timer fires
    ASSERT_EQ(1, write(p[1], "x", 1));
    EXPECT_EQ(3, select());  // the pipe became readable
    EXPECT_TRUE(ev & POLLIN);
    char c;
    ASSERT_EQ(1, sp_read(p[0], &c, 1, SP_FOREVER));
    sp_fiber_t f;
    ASSERT_EQ(0, sp_spawn(nullptr, &f, [](void *a) -> void * {
      int x = 7;
      sp_chan_send(static_cast<sp_chan_t *>(a), &x, SP_FOREVER);
      return nullptr;
    }, ch, nullptr));
    EXPECT_EQ(0, select());  // the channel
    EXPECT_EQ(7, v);
    ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
    sp_ctx_cancel(ctx, 0);
    EXPECT_EQ(2, select());  // cancellation
    EXPECT_EQ(0, sp_watch_free(w));
    EXPECT_EQ(0, sp_timer_free(t));
    sp_ctx_release(ctx);
    EXPECT_EQ(0, sp_chan_free(ch));
    close(p[0]);
    close(p[1]);
  });
}

TEST_P(WatchTest, ABadFdIsReportedOnceThenTheChannelCloses) {
  RunInFiber([] {
    sp_watch_t *w;
    ASSERT_EQ(0, sp_watch_fd(&w, 1000000, POLLIN));  // no such fd: the wait fails
    int ev = 0;
    EXPECT_EQ(0, sp_chan_recv(sp_watch_chan(w), &ev, sp_deadline_in(5000 * kMs)));
    EXPECT_LT(ev, 0);
    EXPECT_EQ(-EPIPE, sp_chan_recv(sp_watch_chan(w), &ev, sp_deadline_in(5000 * kMs)));
    EXPECT_EQ(0, sp_watch_free(w));
  });
  sp_watch_t *w;
  EXPECT_EQ(-EPERM, sp_watch_fd(&w, 0, POLLIN));  // not from a foreign thread
  EXPECT_EQ(-EINVAL, sp_watch_free(nullptr));
}

SP_INSTANTIATE_WORKERS(WatchTest);

}  // namespace
