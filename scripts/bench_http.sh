#!/usr/bin/env bash
# bench_http.sh: the HTTP example (examples/http_service.c) under wrk, in
# its three modes, in one run: the work done through a sluice flow, in the
# web processes themselves (inproc), and through a flow process over Unix
# sockets (socket). Results: a markdown table on stdout, and JSON.
#
#   scripts/bench_http.sh [--duration S] [--warmup S] [--rounds R]
#       [--threads T] [--connections C] [--procs N] [--workers W]
#       [--body BYTES] [--modes "sluice inproc socket"] [--build DIR]
#       [--json FILE] [--markdown FILE]
#
# Needs wrk (Debian package): `scripts/setup.sh --bench` installs it when
# run as root; otherwise this prints the command to run and exits 77.
# Builds http_service (RelWithDebInfo) in DIR (default build-rel).
#
# A mode is a --mode of the service, or sluice-WAIT for --mode sluice
# --wait WAIT (sluice-sleep, sluice-poll). Each round runs every mode, the order rotating from round to round. A
# run starts the service on a free port, drives it with wrk for a warm-up
# (discarded) and then for the measured time (--latency, a Lua script that
# POSTs a fixed body: bench/http/post_body.lua), and stops it with SIGTERM.
# It records requests/s, the latency percentiles, the non-2xx count (a run
# with any fails the bench), and the CPU time of all the service's
# processes per request (bash's `times` in a subshell that waited for the
# service, which waited for all of its own), and over the warm-up and
# measured time together: the CPUs the service used, wrk's CPU time per
# request, and the CPUs everything else on the machine used (/proc/stat's
# busy time, steal included, less the service's and wrk's). The table
# gives each mode's median over the rounds and the medians of the
# per-round ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

duration=10 warmup=2 rounds=3 threads=1 connections=16 procs=2 workers=1 body=4096
modes="sluice inproc socket" build=build-rel json="" markdown=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --body) body=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --markdown) markdown=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench_http: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null; then
  if ! bash scripts/setup.sh --bench; then
    echo "bench_http: wrk is missing (see above); skipped" >&2
    exit 77
  fi
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 \
    || { cat "$build.configure.log"; exit 1; }
fi
cmake --build "$build" --target http_service -j2 >"$build.build.log" 2>&1 \
  || { tail -n 40 "$build.build.log"; exit 1; }
bin=$build/examples/http_service

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# round mode rps p50 p75 p90 p99 cpu_us requests non2xx batch wrk_cpu_us service_cpus other_cpus
results=$tmp/results

# "1m2.500s" -> seconds
secs() { awk -v t="$1" 'BEGIN { split(t, a, "m"); sub("s", "", a[2]); print a[1] * 60 + a[2] }'; }
# CPU seconds this shell's finished children used, from a file `times`
# wrote (it must run in this shell, not in a $(...) subshell)
child_cpu() { local u s; read -r u s < <(sed -n 2p "$1"); awk -v a="$(secs "$u")" -v b="$(secs "$s")" 'BEGIN { print a + b }'; }
# CPU seconds the whole machine spent busy (steal included), from /proc/stat
machine_busy() { awk '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8 + $9) / 100; exit }' /proc/stat; }
# "234.00us", "7.56ms", "1.20s" -> microseconds
usecs() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub("us", "", v); print v + 0 }
    else if (v ~ /ms$/) { sub("ms", "", v); print v * 1000 }
    else if (v ~ /s$/) { sub("s", "", v); print v * 1000000 }
    else print "nan" }'
}

# One run of one mode; appends a line to $results.
run_mode() {
  local round=$1 mode=$2 d=$tmp/$1-$2
  mkdir -p "$d"
  # The subshell waits for the service, then `times` gives the CPU time of
  # the service and every process it (transitively) waited for.
  # "sluice-sleep": --mode sluice --wait sleep
  local wait_arg=()
  [[ $mode == *-* ]] && wait_arg=(--wait "${mode#*-}")
  ( "$bin" --mode "${mode%%-*}" "${wait_arg[@]}" --port 0 --procs "$procs" --workers "$workers" \
      --max-body $((body > 65536 ? body : 65536)) >"$d/out" 2>"$d/err" &
    echo $! >"$d/pid"; set +e; wait $!; echo $? >"$d/rc"; times >"$d/times" ) &
  local sub=$!
  local port="" i
  for i in $(seq 100); do
    port=$(sed -n 's/^http_service: ready: mode [a-z]*, port \([0-9]*\),.*/\1/p' "$d/out" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "bench_http: $mode did not start:" >&2; cat "$d/err" >&2; exit 1
  fi
  local url=http://127.0.0.1:$port/work
  local t0 b0 c0 t1 b1 c1
  times >"$d/times0"
  t0=$(date +%s.%N) b0=$(machine_busy) c0=$(child_cpu "$d/times0")
  BODY_SIZE=$body wrk -t"$threads" -c"$connections" -d"${warmup}s" -s bench/http/post_body.lua "$url" >"$d/warm"
  BODY_SIZE=$body wrk -t"$threads" -c"$connections" -d"${duration}s" --latency \
    -s bench/http/post_body.lua "$url" >"$d/wrk"
  times >"$d/times1"
  t1=$(date +%s.%N) b1=$(machine_busy) c1=$(child_cpu "$d/times1")
  kill -TERM "$(cat "$d/pid")"
  wait "$sub"
  if [ "$(cat "$d/rc")" != 0 ]; then
    echo "bench_http: $mode exited $(cat "$d/rc"):" >&2; cat "$d/err" >&2; exit 1
  fi
  local rps p50 p75 p90 p99 reqs warm non2xx cpu batch wcpu scpus ocpus
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$d/wrk")
  p50=$(usecs "$(awk '$1 == "50%" { print $2 }' "$d/wrk")")
  p75=$(usecs "$(awk '$1 == "75%" { print $2 }' "$d/wrk")")
  p90=$(usecs "$(awk '$1 == "90%" { print $2 }' "$d/wrk")")
  p99=$(usecs "$(awk '$1 == "99%" { print $2 }' "$d/wrk")")
  reqs=$(awk '/requests in/ { print $1 }' "$d/wrk")
  warm=$(awk '/requests in/ { print $1 }' "$d/warm")
  non2xx=$(cat "$d/warm" "$d/wrk" | awk '/Non-2xx/ { n += $NF } END { print n + 0 }')
  if [ "$non2xx" != 0 ] || grep -q "Socket errors" "$d/wrk"; then
    echo "bench_http: $mode: $non2xx non-2xx answers or socket errors:" >&2; cat "$d/wrk" >&2; exit 1
  fi
  # children's user and system time: the second line of `times`
  local ut st
  read -r ut st < <(sed -n 2p "$d/times")
  local svc wall
  svc=$(awk -v u="$(secs "$ut")" -v s="$(secs "$st")" 'BEGIN { print u + s }')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  cpu=$(awk -v c="$svc" -v n=$((reqs + warm)) 'BEGIN { printf "%.2f", c * 1e6 / n }')
  wcpu=$(awk -v a="$c0" -v b="$c1" -v n=$((reqs + warm)) 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
  scpus=$(awk -v c="$svc" -v w="$wall" 'BEGIN { printf "%.2f", c / w }')
  ocpus=$(awk -v b0="$b0" -v b1="$b1" -v c="$svc" -v a="$c0" -v b="$c1" -v w="$wall" \
    'BEGIN { o = (b1 - b0 - c - (b - a)) / w; printf "%.2f", o < 0 ? 0 : o }')
  batch=$(sed -n 's/^http_service:   step crc32 .*(avg \([0-9.]*\),.*/\1/p' "$d/err")
  echo "$round $mode $rps $p50 $p75 $p90 $p99 $cpu $reqs $non2xx ${batch:--} $wcpu $scpus $ocpus" >>"$results"
  printf '  round %s %-12s %7.0f req/s  p50 %6.0f us  p90 %6.0f us  p99 %6.0f us  service %5.1f us CPU/req, %4.2f CPUs; wrk %4.1f us/req; others %4.2f CPUs\n' \
    "$round" "$mode" "$rps" "$p50" "$p90" "$p99" "$cpu" "$scpus" "$wcpu" "$ocpus" >&2
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# median of column $2 over the runs of mode $1
col_median() { awk -v m="$1" -v c="$2" '$2 == m { print $c }' "$results" | median; }
# median over rounds of (mode $1's column $3) / (mode $2's column $3)
ratio_median() {
  awk -v a="$1" -v b="$2" -v c="$3" '$2 == a { x[$1] = $c } $2 == b { y[$1] = $c }
    END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$results" | median
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -ra mode_list <<<"$modes"
nm=${#mode_list[@]}
echo "bench_http: $rounds rounds of ${mode_list[*]}, ${duration}s each after ${warmup}s of warm-up; wrk -t$threads -c$connections, body $body B; $procs web processes; load before: $load_before" >&2
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < nm; k++)); do
    run_mode "$r" "${mode_list[$(((k + r - 1) % nm))]}"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ---------------------------------------------------------------------
cmdline="scripts/bench_http.sh --modes \\\"$modes\\\" --duration $duration --warmup $warmup --rounds $rounds --threads $threads --connections $connections --procs $procs --workers $workers --body $body"
table=$tmp/table.md
# Ratios: each sluice mode over each baseline in the run.
pairs=()
for a in "${mode_list[@]}"; do
  [[ $a == sluice* ]] || continue
  for b in "${mode_list[@]}"; do
    [[ $b == sluice* ]] || pairs+=("$a $b")
  done
done
{
  echo "| mode | requests/s | p50 us | p75 us | p90 us | p99 us | service CPU us / request | service CPUs | wrk CPU us / request | others' CPUs |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for m in "${mode_list[@]}"; do
    printf '| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.2f | %.1f | %.2f |\n' "$m" \
      "$(col_median "$m" 3)" "$(col_median "$m" 4)" "$(col_median "$m" 5)" \
      "$(col_median "$m" 6)" "$(col_median "$m" 7)" "$(col_median "$m" 8)" \
      "$(col_median "$m" 13)" "$(col_median "$m" 12)" "$(col_median "$m" 14)"
  done
  for pair in "${pairs[@]}"; do
    read -r a b <<<"$pair"
    printf '| %s / %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | | |\n' "$a" "$b" \
      "$(ratio_median "$a" "$b" 3)" "$(ratio_median "$a" "$b" 4)" "$(ratio_median "$a" "$b" 5)" \
      "$(ratio_median "$a" "$b" 6)" "$(ratio_median "$a" "$b" 7)" "$(ratio_median "$a" "$b" 8)" \
      "$(ratio_median "$a" "$b" 13)"
  done
} >"$table"
echo >&2
echo "Medians over $rounds rounds (ratios: medians of the per-round ratios); load $load_before -> $load_after" >&2
cat "$table"
if [ -n "$markdown" ]; then cp "$table" "$markdown"; fi

# ---- JSON ---------------------------------------------------------------------------
if [ -n "$json" ]; then
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
  {
    echo "{"
    echo "  \"bench\": \"http\","
    echo "  \"command\": \"$cmdline\","
    echo "  \"started\": \"$started\","
    echo "  \"machine\": {\"nproc\": $(nproc), \"cpu\": \"$model\", \"kernel\": \"$(uname -r)\", \"wrk\": \"$(wrk --version 2>&1 | head -n1 | cut -d' ' -f2)\"},"
    echo "  \"load_before\": \"$load_before\", \"load_after\": \"$load_after\","
    echo "  \"config\": {\"duration_s\": $duration, \"warmup_s\": $warmup, \"rounds\": $rounds, \"threads\": $threads, \"connections\": $connections, \"procs\": $procs, \"workers\": $workers, \"body_bytes\": $body},"
    echo "  \"runs\": ["
    awk '{ printf "%s    {\"round\": %d, \"mode\": \"%s\", \"requests_per_s\": %s, \"p50_us\": %s, \"p75_us\": %s, \"p90_us\": %s, \"p99_us\": %s, \"cpu_us_per_request\": %s, \"requests\": %s, \"non_2xx\": %s, \"crc32_avg_batch\": %s, \"wrk_cpu_us_per_request\": %s, \"service_cpus\": %s, \"other_cpus\": %s}", (NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ($11 == "-" ? "null" : $11), $12, $13, $14 } END { print "" }' "$results"
    echo "  ],"
    echo "  \"median\": {"
    first=1
    for m in "${mode_list[@]}"; do
      [ $first = 1 ] || echo ","
      first=0
      printf '    "%s": {"requests_per_s": %s, "p50_us": %s, "p75_us": %s, "p90_us": %s, "p99_us": %s, "cpu_us_per_request": %s, "service_cpus": %s, "wrk_cpu_us_per_request": %s, "other_cpus": %s}' \
        "$m" "$(col_median "$m" 3)" "$(col_median "$m" 4)" "$(col_median "$m" 5)" \
        "$(col_median "$m" 6)" "$(col_median "$m" 7)" "$(col_median "$m" 8)" \
        "$(col_median "$m" 13)" "$(col_median "$m" 12)" "$(col_median "$m" 14)"
    done
    echo
    echo "  },"
    echo "  \"ratios\": {"
    first=1
    for pair in "${pairs[@]}"; do
      read -r a b <<<"$pair"
      [ $first = 1 ] || echo ","
      first=0
      printf '    "%s_over_%s": {"requests_per_s": %s, "p50": %s, "p75": %s, "p90": %s, "p99": %s, "cpu_per_request": %s, "service_cpus": %s}' \
        "$a" "$b" "$(ratio_median "$a" "$b" 3)" "$(ratio_median "$a" "$b" 4)" \
        "$(ratio_median "$a" "$b" 5)" "$(ratio_median "$a" "$b" 6)" \
        "$(ratio_median "$a" "$b" 7)" "$(ratio_median "$a" "$b" 8)" "$(ratio_median "$a" "$b" 13)"
    done
    echo
    echo "  }"
    echo "}"
  } >"$json"
  echo "bench_http: JSON in $json" >&2
fi
