#!/usr/bin/env bash
# The whole test suite: set up, then build and run every test in the normal
# build, every test again under ASan+UBSan, the concurrency tests (label
# "tsan") under ThreadSanitizer, and every fuzz target for 30 s (libFuzzer,
# clang). Exit 0 only if all pass.
#   scripts/test.sh [normal|asan|tsan|fuzz]...   (default: all four)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(normal asan tsan fuzz)
jobs=$(nproc 2>/dev/null || echo 2)
for v in "${variants[@]}"; do
  if [ "$v" = fuzz ]; then
    echo "== fuzz targets, 30 s each (build-fuzz) =="
    bash scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-30}"
    continue
  fi
  case "$v" in
    normal) dir=build;      opts=();                  sel=() ;;
    asan)   dir=build-asan; opts=(-DSLUICE_ASAN=ON);  sel=() ;;
    # clang's TSan: gcc 12's misses races through ck's atomics (docs/RINGS.md)
    tsan)   dir=build-tsan; opts=(-DSLUICE_TSAN=ON -DCMAKE_C_COMPILER=clang); sel=(-L tsan) ;;
    *) echo "test.sh: unknown variant $v (normal, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
  echo "== $v build ($dir) =="
  bash scripts/build.sh "$dir" "${opts[@]}"
  (cd "$dir" && ctest --output-on-failure --parallel "$jobs" "${sel[@]}")
done
echo "== all test variants passed: ${variants[*]} =="
