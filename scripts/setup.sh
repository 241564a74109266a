#!/usr/bin/env bash
# setup.sh: installs the Debian 12 packages Spindle needs, when missing.
# Idempotent; shared by scripts/test and scripts/showcase. Needs root (or
# sudo) only when something is missing. Nothing but Debian packages is
# downloaded.
set -euo pipefail

PKGS=(
  bazel-bootstrap      # Bazel 4.2.3, the build (offline with the shims in bazel/)
  build-essential      # gcc 12 and the gcc sanitizer runtimes
  clang llvm           # clang 14 config and llvm-symbolizer for sanitizer reports
  liburing-dev         # io_uring
  libboost-context-dev # make_fcontext / jump_fcontext
  libdw-dev            # elfutils: symbolized fiber backtraces in dumps
  libbz2-dev           # ... which a static libdw.a also needs
  googletest           # gtest sources, built by Bazel with our flags
  valgrind             # valgrind.h for --config=valgrind
  golang-go            # the Go twins of the benchmarks
  wrk                  # HTTP load for scripts/bench (http)
  pkg-config           # the install test compiles against spindle.pc
  util-linux           # setarch -R for the sanitizer configs
  gdb                  # runtime/spindle_gdb.py and its test
)

missing=()
for p in "${PKGS[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
