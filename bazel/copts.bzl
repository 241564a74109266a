"""Shared compiler options for Spindle's C code and tests."""

# C11 with GNU extensions, warnings as errors. Public symbols are marked
# SP_API; libspindle.so exports only sp_* (bazel/libspindle.lds).
SP_COPTS = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    # fiber backtraces in dumps walk frame pointers (runtime/backtrace_linux.c)
    "-fno-omit-frame-pointer",
]

SP_TEST_COPTS = [
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]
