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
echo "== bench suite, quick (sluice-bench --quick; figures are ratios within this run) =="
./build/tools/sluice-bench --quick --out build/sluice-bench-quick
