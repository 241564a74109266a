/*
 * watch.c: fd readiness as a channel (sp_watch_fd), so one sp_select can
 * wait on channels, timers (sync/sp_time.h), cancellation (sp_ctx_done)
 * and I/O together.
 *
 * Model: a small fiber per watch loops: wait for readiness (sp_poll_fd, on
 * the io backend), then send the ready events on the watch's unbuffered
 * channel, which completes only when a receiver (a select) takes it; then
 * it waits for readiness again. The fiber runs under a context of its own;
 * sp_watch_free cancels it and joins the fiber, so nothing is left behind.
 * Invariants:
 *   W1  The channel is freed only after the fiber was joined.
 *   W2  An error from the wait (a bad fd) is delivered once, as a negative
 *       value, and ends the watch (the channel is then closed).
 */
#include <errno.h>
#include <stdlib.h>

#include "io/sp_io.h"
#include "sync/sp_ctx.h"

struct sp_watch {
  int fd;
  short events;
  sp_chan_t *ch;
  sp_ctx_t *ctx;
  sp_fiber_t fiber;
};

static void *watch_loop(void *arg) {
  sp_watch_t *w = arg;
  sp_ctx_t *prev = sp_ctx_enter(w->ctx);
  for (;;) {
    int r = sp_poll_fd(w->fd, w->events, SP_FOREVER);
    if (r == -ECANCELED) break;
    if (sp_chan_send(w->ch, &r, SP_FOREVER) < 0 || r < 0) break; /* W2 */
  }
  sp_chan_close(w->ch);
  sp_ctx_leave(prev);
  return NULL;
}

int sp_watch_fd(sp_watch_t **out, int fd, short events) {
  if (!out || fd < 0 || !events) return -EINVAL;
  *out = NULL;
  if (!sp_runtime_current()) return -EPERM;
  sp_watch_t *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->fd = fd;
  w->events = events;
  int rc = sp_chan_make(&w->ch, sizeof(int), 0);
  if (rc == 0) rc = sp_ctx_with_cancel(NULL, &w->ctx);
  static const sp_spawn_opts_t opts = {"fd-watch", SP_STACK_MIN, 0};
  if (rc == 0) rc = sp_spawn(NULL, &w->fiber, watch_loop, w, &opts);
  if (rc < 0) {
    if (w->ctx) sp_ctx_release(w->ctx);
    if (w->ch) sp_chan_free(w->ch);
    free(w);
    return rc;
  }
  *out = w;
  return 0;
}

sp_chan_t *sp_watch_chan(sp_watch_t *w) { return w ? w->ch : NULL; }

int sp_watch_free(sp_watch_t *w) {
  if (!w) return -EINVAL;
  sp_ctx_cancel(w->ctx, 0);
  int rc = sp_join(w->fiber, NULL, SP_FOREVER); /* W1 */
  if (rc < 0) return rc;
  sp_ctx_release(w->ctx);
  rc = sp_chan_free(w->ch);
  free(w);
  return rc;
}
