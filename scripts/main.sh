#!/usr/bin/env bash
# The main job: set up, build, run the demonstration and the bench summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash scripts/build.sh build
echo "== demo: the shared-memory arena =="
./build/examples/arena_demo
echo
echo "== example: a three-step flow (decode, normalise, checksum) on text blocks =="
./build/examples/pipeline
echo
echo "== bench summary (quick; figures are ratios within this run) =="
for b in bench_alloc bench_rings bench_flow; do
  if [ -x "build/bench/$b" ]; then
    "build/bench/$b" --quick
    echo
  fi
done
