#!/usr/bin/env bash
# sluice-bench --quick as a smoke test (what CI runs of the bench suite): it
# must complete (exit 0, no suite failed) and write bench.json valid against
# docs/schema/bench.schema.json, checked by json_check (the validator of
# the schema's subset) and also by python3-jsonschema where it is
# installed, a summary, and the four plots as PNG files listed in
# bench.json. No timing is asserted: the figures of a quick run on a shared
# machine mean nothing.
# Exit 0 pass, 1 fail, 77 skip: only where gnuplot is missing (the JSON is
# checked all the same; scripts/setup.sh installs gnuplot-nox).
# The committed run (docs/bench/sluice-bench.json, whose figures
# docs/BENCHMARKS.md quotes) is checked against the schema as well.
# usage: test_sluice_bench.sh SLUICE_BENCH JSON_CHECK SCHEMA [COMMITTED_JSON]
set -euo pipefail
bench=$1 check=$2 schema=$3 committed=${4:-}
tmp=$(mktemp -d /tmp/sluice-bench-test-XXXXXX)
keep=0
trap '[ $keep = 1 ] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; keep=1; echo "(output kept in $tmp)"; exit 1; }

if [ -n "$committed" ]; then
  "$check" "$schema" "$committed" || fail "$committed does not match the schema"
fi
"$bench" --list >/dev/null || fail "sluice-bench --list"
if "$bench" no-such-suite >/dev/null 2>&1; then fail "an unknown suite was accepted"; fi

plots=1
command -v gnuplot >/dev/null 2>&1 || plots=0
args=(--quick --out "$tmp/run")
[ $plots = 1 ] || args+=(--no-plots)
if ! "$bench" "${args[@]}" >"$tmp/stdout.txt" 2>&1; then
  tail -n 80 "$tmp/stdout.txt"
  fail "sluice-bench ${args[*]} exited non-zero"
fi
json=$tmp/run/bench.json
[ -s "$json" ] || fail "no bench.json"

"$check" "$schema" "$json" || fail "bench.json does not match the schema (json_check)"
if python3 -c 'import jsonschema' 2>/dev/null; then
  python3 - "$schema" "$json" <<'PY' || fail "bench.json does not match the schema (python3-jsonschema)"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))
for e in errors[:20]:
    print(e.json_path, e.message[:300])
sys.exit(1 if errors else 0)
PY
  echo "bench.json: valid (python3-jsonschema too)"
else
  echo "python3-jsonschema absent: bench.json checked by json_check only"
fi
# The check can fail: a scribbled copy is refused.
sed 's/"quick": true/"quick": "yes"/' "$json" >"$tmp/bad.json"
if "$check" "$schema" "$tmp/bad.json" >/dev/null; then
  fail "json_check accepted a document the schema refuses"
fi

# Every suite ran (ok), or was skipped with a note (http: no script or no wrk).
if grep -q '"status": "failed"' "$json"; then fail "a suite failed (see $tmp/stdout.txt)"; fi
grep -q '"verdict"' "$json" || fail "bench.json has no figures"
[ -s "$tmp/run/summary.txt" ] && [ -s "$tmp/run/summary.md" ] || fail "no summary"

if [ $plots = 0 ]; then
  echo "SKIP: gnuplot is not installed (Debian package gnuplot-nox): the plots were not checked"
  exit 77
fi
for p in latency_cdf_rings latency_cdf_flow payload_sweep worker_scaling; do
  f=$tmp/run/$p.png
  [ -s "$f" ] || fail "$p.png is missing"
  magic=$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')
  [ "$magic" = 89504e470d0a1a0a ] || fail "$p.png is not a PNG file"
  grep -q "\"$p.png\"" "$json" || fail "$p.png is not listed in bench.json"
done
echo ok
