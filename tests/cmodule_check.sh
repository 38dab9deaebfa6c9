#!/usr/bin/env bash
# The C extension API from outside, as a module author meets it: install
# aqueue to a temporary prefix, build examples/cmodule against that install
# alone (find_package(aqueue), and again by hand with pkg-config), install the
# module into the prefix, and run its specs with the installed aqueue-run (and
# with the sanitizer build, which checks the module's frees too). Also: a
# module built for another ABI is refused with both versions named.
#   tests/cmodule_check.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/lib/pkgconfig/aqueue.pc" || fail "no aqueue.pc installed"
test -f "$prefix/lib/cmake/aqueue/aqueueConfig.cmake" || fail "no aqueueConfig.cmake installed"

# 1. find_package(aqueue) + aqueue_add_module, then install into the prefix
cmake -S "$root/examples/cmodule" -B "$tmp/cmod" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configuring examples/cmodule against the installed aqueue"; }
cmake --build "$tmp/cmod" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building examples/cmodule"; }
flags="$tmp/cmod/CMakeFiles/cmod.dir/flags.make"
grep -q -- "$prefix/include" "$flags" || fail "the example was not built with the installed aqueue.h"
if grep -q -- "$root/engine" "$flags"; then fail "the example was built with the source tree's headers"; fi
cmake --install "$tmp/cmod" >/dev/null
test -f "$prefix/lib/aqueue/modules/cmod.so" || fail "the module was not installed into the prefix's modules folder"

# 2. the same module by hand, with pkg-config only
cflags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags aqueue)
moduledir=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --variable=moduledir aqueue)
cc -shared -fPIC -Wall -Wextra -Werror $cflags -o "$tmp/by_hand.so" "$root/examples/cmodule/cmod.c" -lz ||
  fail "building the module with pkg-config --cflags aqueue"
[ "$(cd "$moduledir" && pwd)" = "$prefix/lib/aqueue/modules" ] || fail "pkg-config moduledir is $moduledir"

# 3. its specs, with the installed aqueue-run: no environment variable involved
cd "$root"
env -u LUA_PATH -u LUA_CPATH "$prefix/bin/aqueue-run" tests/run_spec.lua -o plainTerminal \
  examples/cmodule/spec/cmod_spec.lua || fail "the example's specs with the installed aqueue-run"
if [ -x "$build/aqueue-run-asan" ]; then
  ASAN_OPTIONS=detect_leaks=1:exitcode=99 LUA_CPATH="$prefix/lib/aqueue/modules/?.so;;" \
    "$build/aqueue-run-asan" tests/run_spec.lua -o plainTerminal examples/cmodule/spec/cmod_spec.lua ||
    fail "the example's specs under AddressSanitizer"
fi

# 4. a module built for another ABI
cat >"$tmp/abi_other.c" <<'C'
#include <aqueue.h>
AQ_EXPORT int luaopen_abi_other(lua_State *L) {
  aq_abi_check(L, AQUEUE_ABI_VERSION + 1, "abi_other");
  return 0;
}
C
cc -shared -fPIC -Wall -Werror $cflags -o "$tmp/abi_other.so" "$tmp/abi_other.c"
echo 'package.cpath = arg[1] .. "/?.so;" .. package.cpath; require("abi_other")' >"$tmp/abi.lua"
if out=$("$prefix/bin/aqueue-run" "$tmp/abi.lua" "$tmp" 2>&1); then fail "a module of another ABI was loaded"; fi
abi=$(sed -n 's/^#define AQUEUE_ABI_VERSION \([0-9]*\).*/\1/p' "$prefix/include/aqueue.h")
case "$out" in
  *"abi_other was built for aqueue ABI $((abi + 1)), but this aqueue-run"*"has ABI $abi"*) ;;
  *) echo "$out"; fail "the ABI mismatch message" ;;
esac
echo "ok: examples/cmodule builds against the installed aqueue alone and its specs pass"
