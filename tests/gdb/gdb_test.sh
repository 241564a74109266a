#!/usr/bin/env bash
# gdb_test.sh: runtime/spindle_gdb.py lists fibers and unwinds a parked
# fiber's stack, in a live (stopped) process.
set -euo pipefail
target=$1
script=$2
if ! command -v gdb >/dev/null; then
  echo "gdb not installed: skipping"
  exit 0
fi
out=$(gdb -nx -batch -ex "source $script" -ex run -ex "spindle fibers" -ex "spindle bt 1" \
  -ex "spindle bt 2" "$target" 2>&1) || true
echo "$out"
check() { grep -q -- "$1" <<<"$out" || { echo "FAIL: missing: $1"; exit 1; }; }
check 'fiber 1 "waiter" parked: chan recv'
check 'fiber 2 "sleeper" parked: sleep'
check 'spawned at tests/gdb/gdb_target.c:'
check 'in wait_for_work at .*gdb_target.c'
check 'in worker_fiber at .*gdb_target.c'
check 'in nap at .*gdb_target.c'
echo "PASS"
