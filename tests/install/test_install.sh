#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a
# consumer program against it through find_package(sluice) and through
# pkg-config. Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
build=$1 consumer=$2 cmake=$3
if [ -n "${SLUICE_INSTALL_TEST_SKIP:-}" ]; then
  echo "SKIP: ${SLUICE_INSTALL_TEST_SKIP}"; exit 77
fi
tmp=$(mktemp -d /tmp/sluice-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; fail "cmake --install"; }
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n1)
[ -f "$tmp/prefix/include/sluice/arena.h" ] || fail "public header not installed"
[ -f "$libdir/cmake/sluice/sluiceConfig.cmake" ] || fail "CMake package not installed"
[ -f "$libdir/pkgconfig/sluice.pc" ] || fail "sluice.pc not installed"
[ -f "$libdir/libsluice.a" ] || fail "static library not installed"
ls "$libdir"/libsluice.so.0 >/dev/null || fail "SOVERSION link missing"

# sluice-bench, with the bench programs in libexec/sluice and its data in
# share/sluice/bench, found relative to itself: one short suite through
# the installed copy.
if [ -x "$build/tools/sluice-bench" ]; then
  [ -x "$tmp/prefix/bin/sluice-bench" ] || fail "sluice-bench not installed"
  for p in bench_rings bench_flow bench_scale bench_restart bench_cost; do
    [ -x "$tmp/prefix/libexec/sluice/$p" ] || fail "libexec/sluice/$p not installed"
  done
  "$tmp/prefix/bin/sluice-bench" --quick --no-plots --out "$tmp/bench" restart \
    >"$tmp/bench.log" 2>&1 || { cat "$tmp/bench.log"; fail "installed sluice-bench"; }
  grep -q '"name": "restart", "title": "[^"]*", "status": "ok"' "$tmp/bench/bench.json" \
    || fail "installed sluice-bench: restart suite not ok"
fi

# Only the public API is exported from the shared library. (The symbol
# list is captured first: `nm | grep -q` under pipefail fails whenever grep
# quits before nm has written everything, SIGPIPE.)
syms=$(nm -D --defined-only "$libdir/libsluice.so" | awk '{print $3}')
others=$(grep -v '^sluice_' <<<"$syms" || true)
[ -z "$others" ] || { echo "$others"; fail "symbols other than sluice_* exported"; }
grep -qx 'sluice_arena_create' <<<"$syms" || fail "sluice_arena_create not exported"

# 1. find_package(sluice)
"$cmake" -S "$consumer" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  >"$tmp/c.log" 2>&1 || { cat "$tmp/c.log"; fail "configure consumer"; }
"$cmake" --build "$tmp/cbuild" >>"$tmp/c.log" 2>&1 || { cat "$tmp/c.log"; fail "build consumer"; }
LD_LIBRARY_PATH="$libdir" "$tmp/cbuild/consumer" || fail "consumer (find_package) failed"

# 2. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$tmp/consumer_pc" "$consumer/consumer.c" $(pkg-config --cflags --libs sluice) \
  || fail "build consumer with pkg-config"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_pc" || fail "consumer (pkg-config) failed"
# and statically
cc -o "$tmp/consumer_static" "$consumer/consumer.c" -static-libgcc \
  $(pkg-config --cflags sluice) "$libdir/libsluice.a" $(pkg-config --static --libs-only-l --libs-only-other sluice | sed 's/-lsluice//') \
  || fail "static link with pkg-config --static"
"$tmp/consumer_static" || fail "consumer (static) failed"
echo "ok"
