#!/usr/bin/env bash
# install_test.sh TARBALL HELLO_C
#
# Unpacks the install tree (//:install_tree) into a scratch prefix, as
# scripts/install does, and uses it the way a user outside Bazel would:
# plain cc with pkg-config, against libspindle.so and against libspindle.a.
# Also checks the layout, the soname and that libspindle.so exports the
# public API (sp_*) and nothing internal (sp__*).

# pkg-config's output is meant to be word-split, as in cc $(pkg-config ...).
# shellcheck disable=SC2046,SC2086
set -euo pipefail

tarball=$(realpath "$1")
hello=$(realpath "$2")

fail() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }
# grep -q in a pipeline can stop reading early and, with pipefail, fail the
# writer (SIGPIPE); this reads all of its input.
has() { grep "$@" >/dev/null; }

work=${TEST_TMPDIR:-$(mktemp -d)}
# Anywhere will do: the .pc file is relocatable (${pcfiledir}).
prefix=$work/prefix
rm -rf "$prefix" "$work/build"
mkdir -p "$prefix" "$work/build"
tar -xf "$tarball" -C "$prefix"
cp "$hello" "$work/build/hello.c"
cd "$work/build"

# Only our install: no system-wide spindle.pc, no inherited settings.
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR LD_LIBRARY_PATH CFLAGS LDFLAGS
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
CC=${CC_FOR_INSTALL_TEST:-cc}
WARN=(-std=c11 -Wall -Wextra -Werror)

step "layout"
for f in include/spindle/spindle.h include/spindle/runtime/sp_runtime.h \
  lib/libspindle.a lib/libspindle.so.0 lib/pkgconfig/spindle.pc; do
  [[ -f "$prefix/$f" && ! -L "$prefix/$f" ]] || fail "missing file $f"
done
[[ -L "$prefix/lib/libspindle.so" && "$(readlink "$prefix/lib/libspindle.so")" == libspindle.so.0 ]] ||
  fail "lib/libspindle.so is not a symlink to libspindle.so.0"
tar -tvf "$tarball"

step "pkg-config"
pkg-config --validate spindle || fail "pkg-config --validate spindle"
pkg-config --modversion spindle
cflags=$(pkg-config --cflags spindle)
libs=$(pkg-config --libs spindle)
static_libs=$(pkg-config --static --libs spindle)
echo "cflags: $cflags"
echo "libs: $libs"
echo "static libs: $static_libs"
libdir=$(pkg-config --variable=libdir spindle)
[[ "$(cd "$libdir" && pwd -P)" == "$(cd "$prefix/lib" && pwd -P)" ]] ||
  fail "libdir $libdir is not $prefix/lib (the .pc file must be relocatable)"

step "every installed header compiles on its own, as C and as C++"
while IFS= read -r h; do
  rel=${h#"$prefix/include/spindle/"}
  printf '#include <%s>\n' "$rel" | "$CC" "${WARN[@]}" $cflags -fsyntax-only -x c - ||
    fail "$rel does not compile as C"
  printf '#include <%s>\nint main() { return 0; }\n' "$rel" |
    c++ -std=c++17 -Wall -Wextra -Werror $cflags -fsyntax-only -x c++ - ||
    fail "$rel does not compile as C++"
done < <(find "$prefix/include/spindle" -name '*.h' | sort)

step "libspindle.so: soname and exported symbols"
so=$prefix/lib/libspindle.so.0
readelf -d "$so" | has 'Library soname: \[libspindle.so.0\]' || fail "soname is not libspindle.so.0"
nm -D "$so" >nm_all.txt
if grep -E ' sp__' nm_all.txt; then fail "libspindle.so exports internal sp__ symbols (above)"; fi
nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ && $2 != "U" && $2 != "w" { print $3 }' |
  sed 's/@.*//' | sort -u >exported.txt
if grep -v -E '^sp_[a-z]' exported.txt; then fail "libspindle.so exports non-API symbols (above)"; fi
# The API: every SP_API function (and SP_API extern variable: the inline
# mutex fast paths read one) declared in the installed headers.
find "$prefix/include/spindle" -name '*.h' -exec cat {} + |
  sed -n -E -e 's/^SP_API[^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' \
    -e 's/^SP_API extern [^(;]*[ *]([A-Za-z_][A-Za-z0-9_]*);.*/\1/p' | sort -u >declared.txt
[[ -s declared.txt ]] || fail "found no SP_API declarations in the headers"
if comm -23 declared.txt exported.txt | grep .; then fail "declared SP_API but not exported (above)"; fi
if comm -13 declared.txt exported.txt | grep .; then
  fail "exported but not declared SP_API in an installed header (above)"
fi
echo "$(wc -l <exported.txt) symbols exported, all declared SP_API"

step "libspindle.a: PIC objects of the whole library"
ar t "$prefix/lib/libspindle.a"
nm --defined-only "$prefix/lib/libspindle.a" | has ' T sp_runtime_create$' ||
  fail "libspindle.a lacks sp_runtime_create"
# PIC all through: the archive links whole into a shared object.
"$CC" -shared -o libwhole.so -Wl,--whole-archive "$prefix/lib/libspindle.a" \
  -Wl,--no-whole-archive $(pkg-config --static --libs-only-other --libs-only-l spindle |
    sed -E 's/(^| )-lspindle( |$)/ /') ||
  fail "libspindle.a does not link into a shared object (non-PIC objects?)"

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

step "dynamic: cc hello.c \$(pkg-config --cflags --libs spindle)"
"$CC" "${WARN[@]}" hello.c $cflags $libs -o hello_dyn
needed hello_dyn | has -x libspindle.so.0 || fail "hello_dyn does not need libspindle.so.0"
LD_LIBRARY_PATH="$prefix/lib" ldd hello_dyn
LD_LIBRARY_PATH="$prefix/lib" ldd hello_dyn | has -F "$prefix/lib/libspindle.so.0" ||
  fail "hello_dyn does not load the installed libspindle.so.0"
LD_LIBRARY_PATH="$prefix/lib" ./hello_dyn || fail "hello_dyn failed"
# The same with an rpath instead of LD_LIBRARY_PATH.
"$CC" "${WARN[@]}" hello.c $cflags $libs -Wl,-rpath,"$libdir" -o hello_rpath
./hello_rpath || fail "hello_rpath failed"

step "static: cc -static hello.c \$(pkg-config --static --cflags --libs spindle)"
"$CC" "${WARN[@]}" -static hello.c $(pkg-config --static --cflags --libs spindle) -o hello_static
[[ -z "$(needed hello_static)" ]] || fail "hello_static is not static: $(needed hello_static)"
./hello_static || fail "hello_static failed"

step "libspindle.a, system libc: cc hello.c ... -Wl,-Bstatic \$(pkg-config --static --libs spindle) -Wl,-Bdynamic"
"$CC" "${WARN[@]}" hello.c $cflags -Wl,-Bstatic $static_libs -Wl,-Bdynamic -o hello_mixed
needed hello_mixed
if needed hello_mixed | grep -E '^lib(spindle|boost_context)'; then
  fail "hello_mixed should link spindle and boost_context statically"
fi
./hello_mixed || fail "hello_mixed failed"

echo "install_test: PASS"
