#!/bin/sh
# sluice-bench: the bench suite in one command. Runs every suite, or the
# ones named, each beside its baselines in the same run, and writes into
# the output directory:
#   bench.json       everything (docs/schema/bench.schema.json): the machine,
#                    kernel and git revision, each suite's runs with the
#                    benches' own JSON, the summary's figures, the plots
#   summary.txt      the summary table printed at the end (summary.md: the
#                    same in Markdown)
#   *.png            gnuplot plots: latency CDFs, payload sweep, worker scaling
#   raw/             each bench's output, JSON and figures file; data/ the
#                    plot data
# It is a POSIX shell script on purpose: it runs the bench binaries and
# joins their outputs with awk, so it needs neither Python nor jq (Python
# runs the multiprocessing baseline only, and its absence is reported, not
# fatal; gnuplot draws the plots, likewise). docs/BENCHMARKS.md describes
# every suite, figure and file.
#
# Usage: sluice-bench [--quick] [--out DIR] [--no-plots] [--verbose] [SUITE...]
#        sluice-bench --list
set -u

# shellcheck disable=SC2034 # the installed copy's paths below start with $here
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# Where the bench programs and this script's data are: set by CMake for the
# build tree or for the installed tree (relative to $here there).
bin_dir=${SLUICE_BENCH_BIN_DIR:-"@SLUICE_BENCH_BIN_DIR@"}
data_dir=${SLUICE_BENCH_DATA_DIR:-"@SLUICE_BENCH_DATA_DIR@"}
source_dir="@SLUICE_SOURCE_DIR@"
version="@PROJECT_VERSION@"

ALL_SUITES="rings latency throughput sweep scaling restart http idle"

suite_title() {
	case $1 in
	rings) echo "rings: sluice's rings beside raw ck_ring, pipes, sockets, mqueues, mutex+condvar" ;;
	latency) echo "flow latency: round trips beside a futex floor, Unix sockets, Python" ;;
	throughput) echo "throughput and batching: batch 1, 8, 64 beside Unix sockets, Python" ;;
	sweep) echo "payload sweep: 64 B .. 64 MiB through 3 steps beside Unix sockets" ;;
	scaling) echo "worker scaling: a CPU-heavy step, 1 .. 2xCPUs workers, beside linear" ;;
	restart) echo "restart: kill-to-ready latency; a busy flow under kills" ;;
	http) echo "attach/HTTP: the HTTP example under wrk (scripts/bench_http.sh)" ;;
	idle) echo "idle cost: an idle flow's CPU and memory beside Python's; arena bookkeeping" ;;
	esac
}

usage() {
	cat <<EOF
usage: sluice-bench [--quick] [--out DIR] [--no-plots] [--verbose] [SUITE...]
       sluice-bench --list
Runs the bench suites (all, or those named) and writes bench.json, the
summary and the plots into DIR (default: ./sluice-bench-DATE-TIME).
  --quick      the short run (under a minute on 2 cores): a smoke test
  --out DIR    the output directory (made; its previous results removed)
  --no-plots   do not run gnuplot
  --verbose    print each bench's own output when it is done
  --list       list the suites
Suites: $ALL_SUITES
EOF
}

quick=0 out="" plots=1 verbose=0 suites=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--out) [ $# -ge 2 ] || { usage >&2; exit 2; }; out=$2; shift ;;
	--out=*) out=${1#--out=} ;;
	--no-plots) plots=0 ;;
	--verbose) verbose=1 ;;
	--list)
		for s in $ALL_SUITES; do printf '%-11s %s\n' "$s" "$(suite_title "$s")"; done
		exit 0 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "sluice-bench: unknown option $1" >&2; usage >&2; exit 2 ;;
	*)
		case " $ALL_SUITES " in
		*" $1 "*) case " $suites " in *" $1 "*) ;; *) suites="$suites $1" ;; esac ;;
		*) echo "sluice-bench: unknown suite $1 (see --list)" >&2; exit 2 ;;
		esac ;;
	esac
	shift
done
# In the order of ALL_SUITES, whatever the order named.
if [ -z "$suites" ]; then
	suites=$ALL_SUITES
else
	sel=$suites suites=""
	for s in $ALL_SUITES; do
		case " $sel " in *" $s "*) suites="$suites $s" ;; esac
	done
fi
[ -n "$out" ] || out="sluice-bench-$(date +%Y%m%d-%H%M%S)"

for p in bench_rings bench_flow bench_scale bench_restart bench_cost; do
	if [ ! -x "$bin_dir/$p" ]; then
		echo "sluice-bench: $bin_dir/$p is missing (build the bench: cmake --build)" >&2
		exit 2
	fi
done
mkdir -p "$out/raw" "$out/data" || exit 2
out=$(CDPATH='' cd -- "$out" && pwd) || exit 2
raw=$out/raw
data=$out/data
rm -f "$raw"/* "$data"/* "$out"/*.png "$out/bench.json" "$out/summary.txt" "$out/summary.md"

# ---- helpers ---------------------------------------------------------------

case $(date +%3N) in
*N*) now_ms() { echo $(($(date +%s) * 1000)); } ;;
*) now_ms() { date +%s%3N; } ;;
esac
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1000 }'; }

# A JSON string: backslashes and quotes escaped, control characters dropped.
jstr() {
	printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

tty=0
[ -t 1 ] && tty=1
if sleep 0.1 2>/dev/null; then tick=0.2; else tick=1; fi
limit=1800
[ $quick = 1 ] && limit=300
timeout_cmd=""
command -v timeout >/dev/null 2>&1 && timeout_cmd="timeout --kill-after=10 $limit"
have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1
have_gnuplot=0
[ $plots = 1 ] && command -v gnuplot >/dev/null 2>&1 && have_gnuplot=1

nsuites=$(echo $suites | wc -w)
idx=0
suite="" suite_status="" suite_notes=""

# progress SUITE TEXT: the progress line (rewritten in place on a terminal).
progress() {
	if [ $tty = 1 ]; then
		printf '\r\033[K[%d/%d] %s' "$idx" "$nsuites" "$1" | cut -c1-"${COLUMNS:-100}" | tr -d '\n'
	fi
}

# run_step NAME COMMAND...: runs one bench of the current suite, its output
# to raw/NAME.log, with the progress line showing its last line; records
# the run (command, exit code, time, its JSON raw/NAME.json) for bench.json.
run_step() {
	name=$1
	shift
	log=$raw/$name.log
	t0=$(now_ms)
	if [ $tty = 1 ]; then
		$timeout_cmd "$@" >"$log" 2>&1 &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			el=$(( ($(now_ms) - t0) / 1000 ))
			last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r')
			progress "$suite: $name, ${el} s: $last"
			sleep "$tick"
		done
		wait "$pid"
		rc=$?
	else
		$timeout_cmd "$@" >"$log" 2>&1
		rc=$?
	fi
	t1=$(now_ms)
	if [ $tty = 1 ]; then printf '\r\033[K'; fi
	cmd=""
	for a in "$@"; do cmd="$cmd${cmd:+ }$a"; done
	res=null
	[ $rc = 0 ] && [ -s "$raw/$name.json" ] && res=$(cat "$raw/$name.json")
	{
		[ -s "$raw/$suite.runs" ] && printf ',\n'
		printf '{"program": %s, "command": %s, "exit_code": %d, "seconds": %s, "log": %s, "result": %s}' \
			"$(jstr "$name")" "$(jstr "$cmd")" "$rc" "$(secs "$t0" "$t1")" \
			"$(jstr "raw/$name.log")" "$res"
	} >>"$raw/$suite.runs"
	if [ $rc != 0 ]; then
		suite_status=failed
		echo "[$idx/$nsuites] $suite: $name FAILED (exit $rc); the end of raw/$name.log:"
		tail -n 15 "$log" | sed 's/^/    /'
	fi
	[ $verbose = 1 ] && cat "$log"
	return $rc
}

note() {
	suite_notes="$suite_notes${suite_notes:+, }$(jstr "$1")"
	echo "[$idx/$nsuites] $suite: $1"
}

# python_step NAME ARGS...: the Python multiprocessing baseline, if python3 is here.
python_step() {
	if [ $have_python = 0 ]; then
		note "python3 not found: the Python multiprocessing baseline is skipped"
		return 0
	fi
	pname=$1
	shift
	run_step "$pname" python3 "$data_dir/python/mp_pipeline.py" $q --json "$raw/$pname.json" \
		--metrics "$raw/$pname.tsv" --plot-dir "$data" "$@"
}

# ---- the suites ----------------------------------------------------------------------
# Quick: fewer and shorter rounds (each bench's --quick, trimmed further
# where the whole must stay under a minute on 2 cores).

q=""
[ $quick = 1 ] && q=--quick

suite_rings() {
	set --
	[ $quick = 1 ] && set -- --round-ms 40 --warmup-ms 20
	run_step bench_rings "$bin_dir/bench_rings" $q "$@" --json "$raw/bench_rings.json" \
		--metrics "$raw/bench_rings.tsv" --plot-dir "$data"
}

suite_latency() {
	set -- --idle-samples 4
	[ $quick = 1 ] && set -- --idle-ms 200
	run_step bench_flow_latency "$bin_dir/bench_flow" $q --tests rtt,lone "$@" \
		--json "$raw/bench_flow_latency.json" --metrics "$raw/bench_flow_latency.tsv" \
		--plot-dir "$data"
	python_step mp_pipeline_rtt --tests rtt
}

suite_throughput() {
	run_step bench_flow_throughput "$bin_dir/bench_flow" $q --tests tput \
		--json "$raw/bench_flow_throughput.json" --metrics "$raw/bench_flow_throughput.tsv"
	python_step mp_pipeline_tput --tests tput
}

suite_sweep() {
	run_step bench_flow_sweep "$bin_dir/bench_flow" $q --tests sweep \
		--json "$raw/bench_flow_sweep.json" --metrics "$raw/bench_flow_sweep.tsv" --plot-dir "$data"
}

suite_scaling() {
	set --
	[ $quick = 1 ] && set -- --round-ms 150
	run_step bench_scale "$bin_dir/bench_scale" $q "$@" --json "$raw/bench_scale.json" \
		--metrics "$raw/bench_scale.tsv" --plot-dir "$data"
}

suite_restart() {
	set --
	[ $quick = 1 ] && set -- --rounds 2 --round-ms 500
	run_step bench_restart "$bin_dir/bench_restart" $q "$@" --json "$raw/bench_restart.json" \
		--metrics "$raw/bench_restart.tsv"
}

# The HTTP bench belongs to the HTTP example (scripts/bench_http.sh, a
# bash script that builds its own RelWithDebInfo tree and runs wrk for
# minutes): run in a full run when it is in the source tree and wrk is
# installed, with its JSON kept beside the others'; skipped by --quick,
# which must stay under a minute.
suite_http() {
	script=$source_dir/scripts/bench_http.sh
	if [ ! -f "$script" ]; then
		suite_status=skipped
		note "skipped: scripts/bench_http.sh is not in this tree"
	elif [ $quick = 1 ]; then
		suite_status=skipped
		note "skipped by --quick: run 'sluice-bench http' or scripts/bench_http.sh"
	elif ! command -v wrk >/dev/null 2>&1; then
		suite_status=skipped
		note "skipped: wrk is not installed (Debian package wrk; scripts/setup.sh --bench)"
	elif ! command -v bash >/dev/null 2>&1; then
		suite_status=skipped
		note "skipped: scripts/bench_http.sh needs bash"
	else
		run_step bench_http bash "$script" --json "$raw/bench_http.json"
	fi
}

suite_idle() {
	run_step bench_cost "$bin_dir/bench_cost" $q --json "$raw/bench_cost.json" \
		--metrics "$raw/bench_cost.tsv"
	python_step mp_pipeline_idle --tests idle
}

# ---- run -------------------------------------------------------------------------------

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
T0=$(now_ms)
mode="full"
[ $quick = 1 ] && mode="quick"
echo "sluice-bench $version ($mode): $nsuites suites into $out"
[ $have_python = 0 ] && echo "sluice-bench: python3 not found: the Python multiprocessing baseline will be skipped"
[ $plots = 1 ] && [ $have_gnuplot = 0 ] && echo "sluice-bench: gnuplot not found (Debian package gnuplot-nox): no plots"
: >"$raw/suites"
failed_any=0
for suite in $suites; do
	idx=$((idx + 1))
	suite_status=ok suite_notes=""
	: >"$raw/$suite.runs"
	if [ $tty = 1 ]; then progress "$suite: starting"; else echo "[$idx/$nsuites] $suite: running"; fi
	s0=$(now_ms)
	"suite_$suite"
	s1=$(now_ms)
	[ $suite_status = failed ] && failed_any=1
	printf '[%d/%d] %-10s %-7s %6s s\n' "$idx" "$nsuites" "$suite" "$suite_status" "$(secs "$s0" "$s1")"
	{
		[ -s "$raw/suites" ] && printf ',\n'
		printf '{"name": %s, "title": %s, "status": %s, "seconds": %s, "notes": [%s],\n"runs": [\n' \
			"$(jstr "$suite")" "$(jstr "$(suite_title "$suite")")" "$(jstr "$suite_status")" \
			"$(secs "$s0" "$s1")" "$suite_notes"
		cat "$raw/$suite.runs"
		printf ']}'
	} >>"$raw/suites"
done

# ---- the summary -------------------------------------------------------------------------

set --
for f in "$raw"/*.tsv; do [ -e "$f" ] && set -- "$@" "$f"; done
[ $# = 0 ] && set -- /dev/null
awk -v txt="$out/summary.txt" -v md="$out/summary.md" -v json="$raw/figures.json" \
	-f "$data_dir/suite/figures.awk" "$data_dir/suite/figures.txt" "$@" ||
	{ echo "sluice-bench: the summary failed" >&2; failed_any=1; }

# ---- plots ---------------------------------------------------------------------------------

plot_list=""
plot() { # plot NAME SCRIPT GNUPLOT-VARIABLES
	if (cd "$data" && gnuplot -e "term='$term'; out='../$1'; $3" "$data_dir/plots/$2") \
		>>"$raw/gnuplot.log" 2>&1 && [ -s "$out/$1" ]; then
		plot_list="$plot_list${plot_list:+, }$(jstr "$1")"
	else
		echo "sluice-bench: plot $1 failed (raw/gnuplot.log)"
		failed_any=1
	fi
}
existing() { # the data files named that exist, in that order
	r=""
	for f in "$@"; do [ -s "$data/$f.dat" ] && r="$r${r:+ }$f.dat"; done
	echo "$r"
}
if [ $have_gnuplot = 1 ]; then
	term=png
	gnuplot -e "set terminal pngcairo" </dev/null >/dev/null 2>&1 && term=pngcairo
	f=$(existing rings_rtt_sluice-spsc-spin rings_rtt_sluice-spsc-busy rings_rtt_ck-spsc \
		rings_rtt_futex-spin rings_rtt_pipe rings_rtt_unix-stream rings_rtt_unix-seqpacket \
		rings_rtt_posix-mq rings_rtt_mutex-condvar)
	[ -n "$f" ] && plot latency_cdf_rings.png cdf.gp \
		"ttl='Round trip of a 64-byte descriptor between two processes'; files='$f'"
	f=$(existing flow_rtt_sluice_1step flow_rtt_sluice_1step_busy_poll flow_rtt_futex_spin \
		flow_rtt_busy_poll_handoff flow_rtt_unix_1step flow_rtt_python_mp)
	[ -n "$f" ] && plot latency_cdf_flow.png cdf.gp \
		"ttl='Round trip of a task through a 1-step no-op pipeline'; files='$f'"
	[ -s "$data/flow_sweep.dat" ] && plot payload_sweep.png sweep.gp "in='flow_sweep.dat'"
	[ -s "$data/scale.dat" ] && plot worker_scaling.png scaling.gp "in='scale.dat'"
fi

# ---- bench.json ------------------------------------------------------------------------------

T1=$(now_ms)
load1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
loadarr() { [ -n "$1" ] && echo "[$(echo "$1" | sed 's/ /, /g')]" || echo null; }
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
memkib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
rev=null dirty=null
if command -v git >/dev/null 2>&1 && [ -d "$source_dir" ] &&
	r=$(git -C "$source_dir" rev-parse HEAD 2>/dev/null); then
	rev=$(jstr "$r")
	dirty=false
	[ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=true
fi
pyver=null
[ $have_python = 1 ] && pyver=$(jstr "$(python3 --version 2>&1)")
gpver=null
[ $have_gnuplot = 1 ] && gpver=$(jstr "$(gnuplot --version 2>&1)")
cmdline="sluice-bench"
[ $quick = 1 ] && cmdline="$cmdline --quick"
for s in $suites; do cmdline="$cmdline $s"; done
{
	printf '{\n"schema": "sluice-bench/1",\n"version": %s,\n"started": %s,\n' \
		"$(jstr "$version")" "$(jstr "$started")"
	printf '"seconds": %s,\n"quick": %s,\n"command": %s,\n' "$(secs "$T0" "$T1")" \
		"$([ $quick = 1 ] && echo true || echo false)" "$(jstr "$cmdline")"
	printf '"machine": {"cpu_model": %s, "cpus": %d, "memory_kib": %s, "kernel": %s, ' \
		"$(jstr "${model:-unknown}")" "$(getconf _NPROCESSORS_ONLN)" "${memkib:-null}" \
		"$(jstr "$(uname -r)")"
	printf '"kernel_version": %s, "os": %s, "loadavg_before": %s, "loadavg_after": %s},\n' \
		"$(jstr "$(uname -v)")" "$(jstr "${os:-unknown}")" "$(loadarr "$load0")" "$(loadarr "$load1")"
	printf '"git": {"revision": %s, "dirty": %s},\n"python": %s,\n"gnuplot": %s,\n' \
		"$rev" "$dirty" "$pyver" "$gpver"
	printf '"suites": [\n'
	cat "$raw/suites"
	printf '],\n"figures": '
	if [ -s "$raw/figures.json" ]; then cat "$raw/figures.json"; else printf '[]\n'; fi
	printf ',\n"plots": [%s]\n}\n' "$plot_list"
} >"$out/bench.json"

[ -s "$out/summary.txt" ] && cat "$out/summary.txt"
echo
echo "sluice-bench: done in $(secs "$T0" "$T1") s: $out/bench.json, summary.txt, summary.md${plot_list:+, $(echo "$plot_list" | tr -d '"')}"
exit $failed_any
