// trace_test.cc: scheduler tracing (runtime/trace.c) writes Chrome
// trace-event JSON with the expected events, one track per worker.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "tests/support/rt_fixture.h"

namespace {

std::string Slurp(FILE *f) {
  fflush(f);
  rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

// Brackets and braces balance outside strings, and nothing follows the end.
bool LooksLikeJson(const std::string &s) {
  int depth = 0;
  bool in_str = false, esc = false;
  size_t end = 0;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') {
      if (--depth < 0) return false;
      if (depth == 0) end = i;
    }
  }
  return depth == 0 && !in_str && s.find_first_not_of(" \n", end + 1) == std::string::npos;
}

TEST(TraceTest, WritesChromeTraceEventJson) {
  // one worker: the interleaving, and so the set of events, is deterministic
  sp_runtime_t *rt = sptest::NewRuntime(1);
  ASSERT_NE(nullptr, rt);
  ASSERT_EQ(0, sp_trace_start(rt));
  sp_chan_t *c;
  ASSERT_EQ(0, sp_chan_make(&c, sizeof(int), 0));
  sp_fiber_t a, b;
  ASSERT_EQ(0, sp_spawn(rt, &a, [](void *ch) -> void * {
              for (int i = 0; i < 50; i++) sp_chan_send(static_cast<sp_chan_t *>(ch), &i, SP_FOREVER);
              sp_sleep_for(1000000);
              return nullptr;
            }, c, nullptr));
  ASSERT_EQ(0, sp_spawn(rt, &b, [](void *ch) -> void * {
              int v;
              for (int i = 0; i < 50; i++) sp_chan_recv(static_cast<sp_chan_t *>(ch), &v, SP_FOREVER);
              return nullptr;
            }, c, nullptr));
  // Two yielders in the one worker's own queue, so every yield switches.
  // A fiber spawns them: spawned from this (foreign) thread they would go
  // through the injection queue, and the first could run all its yields
  // (no-ops with nothing else queued) before the worker took the second.
  sp_fiber_t yp;
  ASSERT_EQ(0, sp_spawn(rt, &yp, [](void *) -> void * {
              sp_fiber_t y[2];
              for (sp_fiber_t &f : y)
                if (sp_spawn(nullptr, &f, [](void *) -> void * {
                      for (int i = 0; i < 10; i++) sp_yield();
                      return nullptr;
                    }, nullptr, nullptr) != 0)
                  return (void *)1;
              for (sp_fiber_t &f : y) sp_join(f, nullptr, SP_FOREVER);
              return nullptr;
            }, nullptr, nullptr));
  sp_fiber_t io;  // I/O on the ring (or the epoll fallback): submit and complete
  ASSERT_EQ(0, sp_spawn(rt, &io, [](void *) -> void * {
              int p[2];
              if (pipe(p) != 0) return nullptr;
              char ch = 'x';
              sp_write(p[1], &ch, 1, SP_FOREVER);
              sp_read(p[0], &ch, 1, SP_FOREVER);
              close(p[0]);
              close(p[1]);
              return nullptr;
            }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(io, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(a, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_join(b, nullptr, SP_FOREVER));
  void *yr = (void *)2;
  ASSERT_EQ(0, sp_join(yp, &yr, SP_FOREVER));
  ASSERT_EQ(nullptr, yr) << "spawning the yielders failed";
  ASSERT_EQ(0, sp_trace_stop(rt));
  FILE *f = tmpfile();
  int n = sp_trace_write(rt, fileno(f));
  std::string js = Slurp(f);
  EXPECT_GT(n, 100) << js.substr(0, 2000);
  EXPECT_TRUE(LooksLikeJson(js)) << js.substr(0, 2000);
  EXPECT_EQ(0u, js.find("{\"displayTimeUnit\":\"ns\",\"traceEvents\":["));
  EXPECT_NE(std::string::npos, js.find("\"name\":\"worker 0\""));
  EXPECT_NE(std::string::npos, js.find("\"ph\":\"X\"")) << "run spans";
  EXPECT_NE(std::string::npos, js.find("\"name\":\"park: chan ")) << "park with its reason";
  EXPECT_NE(std::string::npos, js.find("\"name\":\"park: sleep\""));
  EXPECT_NE(std::string::npos, js.find("\"name\":\"wake\""));
  EXPECT_NE(std::string::npos, js.find("\"name\":\"yield\""));
  EXPECT_NE(std::string::npos, js.find("\"name\":\"exit\""));
  char why[160];
  if (sp_io_backend(rt, why, sizeof why) == SP_IO_URING) {  // ring operations are traced
    EXPECT_NE(std::string::npos, js.find("\"name\":\"io submit: io read\"")) << why;
    EXPECT_NE(std::string::npos, js.find("\"name\":\"io complete\"")) << why;
  }
  // a real JSON parser agrees, where one is at hand
  if (system("command -v python3 >/dev/null 2>&1") == 0) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' /proc/self/fd/%d",
             fileno(f));
    EXPECT_EQ(0, system(cmd)) << "python3 json.load rejected the trace";
  }
  fclose(f);
  // tracing stopped: nothing more is recorded
  sp_fiber_t g;
  ASSERT_EQ(0, sp_spawn(rt, &g, [](void *) -> void * { return nullptr; }, nullptr, nullptr));
  ASSERT_EQ(0, sp_join(g, nullptr, SP_FOREVER));
  FILE *f2 = tmpfile();
  EXPECT_EQ(n, sp_trace_write(rt, fileno(f2)));
  fclose(f2);
  EXPECT_EQ(-EINVAL, sp_trace_write(nullptr, 1));
  EXPECT_EQ(-EINVAL, sp_trace_start(nullptr));
  EXPECT_EQ(0, sp_chan_free(c));
  EXPECT_EQ(0, sp_runtime_destroy(rt));
}

}  // namespace
