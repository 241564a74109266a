// crash_test.cc: a fault on a worker outside any fiber (its scheduler:
// Spindle's own code) names the worker and calls it a Spindle bug, and the
// process still dies of the signal. A fiber's crash is in
// tests/arch/stack_test.cc (StackGuard.CrashNamesTheFiber).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "arch/context.h" /* SP_HAVE_ASAN, SP_HAVE_TSAN */
#include "runtime/spindle.h"

namespace {

pthread_t g_worker;

void *RecordWorker(void *) {
  g_worker = pthread_self();
  return nullptr;
}

// The fault cannot be made on purpose without a bug in the scheduler, so
// the signal is sent to the worker while it sleeps in its scheduler.
[[maybe_unused]] void SegvIdleWorker() {
  sp_config_t cfg;
  sp_config_init(&cfg);
  cfg.workers = 1;
  sp_runtime_t *rt;
  if (sp_runtime_create(&rt, &cfg) != 0) _exit(3);
  sp_fiber_t f;
  if (sp_spawn(rt, &f, RecordWorker, nullptr, nullptr) != 0) _exit(4);
  sp_join(f, nullptr, SP_FOREVER);
  usleep(50 * 1000);  // the worker has nothing to run: it sleeps
  pthread_kill(g_worker, SIGSEGV);
  sleep(10);
  _exit(5);  // not reached: the signal kills the process
}

TEST(CrashReport, OutsideAFiberNamesTheWorker) {
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
  GTEST_SKIP() << "the sanitizers report crashes themselves";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(SegvIdleWorker(), testing::KilledBySignal(SIGSEGV),
              "spindle: worker 0 crashed outside any fiber, in Spindle's scheduler "
              "\\(a Spindle bug\\): SIGSEGV sent by process [0-9]+");
#endif
}

}  // namespace
