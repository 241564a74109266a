// scale.h: sizes for stress tests. Sanitizer builds run the same bodies
// with fewer iterations so the whole CI run stays well under its budget.
#pragma once

#include "arch/context.h"

#ifdef USE_VALGRIND  // --config=valgrind: much slower, scale down at run time
#include <valgrind/valgrind.h>
#define SP_TEST_SLOWDOWN (RUNNING_ON_VALGRIND ? 50 : 1)
#else
#define SP_TEST_SLOWDOWN 1
#endif

namespace sptest {
#if defined(SP_HAVE_TSAN)
constexpr int kScale = 20;  // divide iteration counts by this
// TSan counts every fiber as a thread and dies beyond 8128 live ones.
constexpr long kMaxLive = 4000;
#elif defined(SP_HAVE_ASAN)
constexpr int kScale = 10;
constexpr long kMaxLive = 1L << 40;
#else
constexpr int kScale = 1;
constexpr long kMaxLive = 1L << 40;
#endif
inline long Scaled(long n) {
  long d = (long)kScale * SP_TEST_SLOWDOWN;
  return n / d > 0 ? n / d : 1;
}
// Scaled, and capped to what may be live at once under TSan.
inline long ScaledLive(long n) {
  long s = Scaled(n);
  return s < kMaxLive ? s : kMaxLive;
}
}  // namespace sptest
