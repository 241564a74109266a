// scale.h: sizes for stress tests. Sanitizer builds run the same bodies
// with fewer iterations so the whole CI run stays well under its budget.
#pragma once

#include "arch/context.h"

namespace sptest {
#if defined(SP_HAVE_ASAN) || defined(SP_HAVE_TSAN)
constexpr int kScale = 10;  // divide iteration counts by this
#else
constexpr int kScale = 1;
#endif
inline long Scaled(long n) { return n / kScale > 0 ? n / kScale : 1; }
}  // namespace sptest
