// monitor_test.cc: the live monitor (runtime/monitor_linux.c) and its
// command-line client (//runtime:spindle-mon).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "tests/support/gate.h"
#include "tests/support/rt_fixture.h"

namespace {

std::string Shell(const std::string &cmd) {
  FILE *p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) pclose(p);
  return out;
}

TEST(MonitorTest, ClientShowsFibersOfARunningProcess) {
  sp_runtime_t *rt = sptest::NewRuntime(2);
  ASSERT_NE(nullptr, rt);
  ASSERT_EQ(0, sp_runtime_hold(rt));
  // Bazel's TEST_TMPDIR is too long for a Unix socket path (108 bytes);
  // a fresh directory, not the pid: sandboxed runs of this test side by
  // side (--runs_per_test) can have the same pid and share /tmp
  char dir[] = "/tmp/spmon.XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(dir));
  std::string path = std::string(dir) + "/s";
  ASSERT_EQ(0, sp_monitor_start(rt, path.c_str()));
  EXPECT_EQ(-EBUSY, sp_monitor_start(rt, path.c_str()));
  sptest::Gate gate;
  sp_fiber_t f;
  sp_spawn_opts_t o = {"watched", 0, 0};
  ASSERT_EQ(0, sp_spawn(rt, &f, [](void *g) -> void * {
              static_cast<sptest::Gate *>(g)->Wait();
              return nullptr;
            }, &gate, &o));
  while (gate.Waiting() == 0) usleep(1000);
  // the client tool, as a user would run it
  std::string tool = "runtime/spindle-mon";
  std::string out = Shell(tool + " " + path);
  EXPECT_NE(std::string::npos, out.find("2 workers, 1 fibers live")) << out;
  EXPECT_NE(std::string::npos, out.find("\"watched\" parked")) << out;
  EXPECT_NE(std::string::npos, out.find("switches ")) << "per-worker counters: " << out;
  EXPECT_EQ(0, sp_monitor_stop(rt));
  EXPECT_NE(0, access(path.c_str(), F_OK)) << "socket file removed";
  EXPECT_NE(std::string::npos, Shell(tool + " " + path + " 2>&1").find("connect")) << "stopped";
  gate.Open();
  ASSERT_EQ(0, sp_join(f, nullptr, SP_FOREVER));
  ASSERT_EQ(0, sp_runtime_release(rt));
  EXPECT_EQ(-EINVAL, sp_monitor_start(nullptr, "x"));
  EXPECT_EQ(-ENAMETOOLONG, sp_monitor_start(rt, std::string(200, 'x').c_str()));
  ASSERT_EQ(0, sp_monitor_start(rt, path.c_str()));  // destroy stops it too
  EXPECT_EQ(0, sp_runtime_destroy(rt));
  EXPECT_NE(0, access(path.c_str(), F_OK));
  EXPECT_EQ(0, rmdir(dir));
}

}  // namespace
