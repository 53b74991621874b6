#!/usr/bin/env bash
# fuzz.sh [SECONDS]: build the libFuzzer targets (clang, ASan+UBSan, see
# docs/FUZZING.md) in build-fuzz, replay the committed corpora, then run
# each target for SECONDS (default 600), one after another. Prints each
# target's executions; exits 1 if any target crashed (the input is in
# build-fuzz/tests/fuzz/artifacts/, the log next to it).
set -euo pipefail
secs=${1:-600}
case "$secs" in
  ''|*[!0-9]*) echo "usage: fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build-fuzz
jobs=$(nproc 2>/dev/null || echo 2)

# Only the library, the tools and the fuzz targets: the tests and benches
# have their own ASan build (scripts/test.sh).
CC=${CC:-clang} cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON \
  -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF -DSLUICE_FUZZ_SECONDS="$secs" \
  >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 || { tail -n 60 "$dir.build.log"; exit 1; }

echo "== replaying the committed corpora =="
ctest --test-dir "$dir" -L fuzz -R '_replay$' --output-on-failure

targets=$(ctest --test-dir "$dir" -N -L fuzz | awk '/Test +#/ {print $3}' | grep -v '_replay$')
failed=()
for t in $targets; do
  log=$dir/tests/fuzz/$t.log
  echo "== $t: ${secs} s (log: $log) =="
  if ctest --test-dir "$dir" -R "^${t}\$" -V >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$t")
  fi
  runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
  cov=$(grep -E '#[0-9]+[[:space:]]+DONE' "$log" | grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' | tail -n 1 || true)
  echo "$t: $status; ${runs:-no final stats}s; ${cov}"
  if [ "$status" != ok ]; then
    grep -E 'ERROR|FUZZ CHECK|SUMMARY|Test unit written' "$log" | head -n 20 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: crashes in ${failed[*]} (inputs in $dir/tests/fuzz/artifacts/) =="
  exit 1
fi
echo "== fuzz: every target ran ${secs} s without a crash =="
