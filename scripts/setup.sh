#!/usr/bin/env bash
# Installs what sluice needs from Debian's packages, when it is missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
# Exit 0 when everything is present, 1 when something is missing.
#   scripts/setup.sh           what building and testing need
#   scripts/setup.sh --bench   that, and what only the benchmarks need
set -euo pipefail

# Build and test: compiler, CMake, ck, liburcu; ASan and UBSan runtimes
# come with gcc; the TSan build uses clang and its runtime. The inspector's
# tests use promtool (in Debian's package prometheus; the service it ships
# is not needed or started by the tests) to check the Prometheus output,
# and tmux to drive the live view in a terminal.
# The bench suite (sluice-bench, which main.sh runs and test_sluice_bench
# checks): gnuplot-nox draws its plots (without it there are none and the
# test skips); python3 runs its Python multiprocessing baseline (without it
# that baseline is skipped); python3-jsonschema lets the test check
# bench.json with a full draft 2020-12 validator beside its own json_check.
# None of them is needed to build or to use sluice.
packages=(
  build-essential cmake pkg-config
  libck-dev liburcu-dev
  clang libclang-rt-14-dev
  prometheus tmux gnuplot-nox python3 python3-jsonschema
)
# Bench only: wrk drives the HTTP example (scripts/bench_http.sh asks for
# it). The test path does not install it: no test needs it.
if [ "${1:-}" = --bench ]; then
  packages+=(wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "setup: missing Debian packages: ${missing[*]}" >&2
echo "setup: run as root:  apt-get install -y ${missing[*]}" >&2
exit 1
