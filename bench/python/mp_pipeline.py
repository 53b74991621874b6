#!/usr/bin/env python3
"""The Python baseline of sluice-bench: the same no-op pipelines as sluice's
flow benchmarks, built with Python's standard multiprocessing (processes
started by fork, multiprocessing.Queue between them: a pipe, a lock and a
feeder thread per queue, every task pickled on the way in and out).

Tests (--tests, default all):
  rtt   a 1-step pipeline (parent -> worker -> parent), one task in flight,
        64-byte payload; each round trip timed with perf_counter_ns:
        p50/p90/p99/p99.9/max. Parent on the first allowed CPU, worker on
        the second, as bench_flow places its 1-step pipelines.
  tput  the same pipeline with 1024 tasks in flight; tasks/s, median of
        rounds with min and max.
  idle  a pipeline of 3 steps x 2 workers (bench_cost's flow), run through
        2,000 tasks, then left alone: each worker's CPU time over --idle-s
        from /proc/PID/schedstat, and after it every process's resident
        memory from /proc/PID/smaps (RSS, PSS, private), PSS summed for the
        total.

Writes what sluice-bench reads: --metrics FILE (key, value, unit per line,
keys "python.*"), --json FILE, --plot-dir DIR (the round trips' CDF).
Standard library only.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time

PAYLOAD = bytes(64)
WINDOW = 1024


def pin(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def worker(q_in, q_out, cpu):
    """A no-op step: hands every task on unchanged; None stops it."""
    pin(cpu)
    while True:
        t = q_in.get()
        if t is None:
            q_out.put(None)
            return
        q_out.put(t)


class Pipeline:
    """steps x nprocs workers joined by queues; tasks go in at queues[0]
    and come out of queues[-1]."""

    def __init__(self, ctx, steps, nprocs, cpus):
        self.queues = [ctx.Queue() for _ in range(steps + 1)]
        self.procs = []
        self.nprocs = nprocs
        for s in range(steps):
            for _ in range(nprocs):
                p = ctx.Process(target=worker, args=(self.queues[s], self.queues[s + 1],
                                                     cpus[s % len(cpus)] if cpus else None))
                p.daemon = True
                p.start()
                self.procs.append(p)

    def stop(self):
        # One None per worker of the first step; each step passes on as many
        # Nones as it has workers, so every worker of every step gets one.
        for _ in range(self.nprocs):
            self.queues[0].put(None)
        for p in self.procs:
            p.join(10)
        for q in self.queues:
            q.close()


def pct(sorted_v, q):
    """Nearest-rank quantile of a sorted list."""
    if not sorted_v:
        return 0
    k = max(0, min(len(sorted_v) - 1, int(q * len(sorted_v) + 0.999999) - 1))
    return sorted_v[k]


def run_rtt(ctx, cpus, rounds, iters):
    p = Pipeline(ctx, 1, 1, [cpus[1]])
    q_in, q_out = p.queues[0], p.queues[-1]
    for i in range(200):  # warm-up
        q_in.put((i, PAYLOAD))
        q_out.get()
    samples, round_p50 = [], []
    now = time.perf_counter_ns
    for _ in range(rounds):
        r = []
        for i in range(iters):
            t0 = now()
            q_in.put((i, PAYLOAD))
            q_out.get()
            r.append(now() - t0)
        r.sort()
        round_p50.append(pct(r, 0.5))
        samples.extend(r)
    p.stop()
    samples.sort()
    return samples, round_p50


def run_tput(ctx, cpus, rounds, round_s):
    p = Pipeline(ctx, 1, 1, [cpus[1]])
    q_in, q_out = p.queues[0], p.queues[-1]
    rates = []
    for _ in range(rounds):
        inflight, done, seq = 0, 0, 0
        t0 = time.perf_counter()
        end = t0 + round_s
        while True:
            running = time.perf_counter() < end
            if not running and inflight == 0:
                break
            while running and inflight < WINDOW:
                q_in.put((seq, PAYLOAD))
                seq += 1
                inflight += 1
            q_out.get()
            inflight -= 1
            if running:
                done += 1
        rates.append(done / round_s)
    p.stop()
    return rates


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def ctx_switches(pid):
    n = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                n += int(line.split()[1])
    return n


def smaps(pid):
    """RSS, PSS, private (clean + dirty), KiB."""
    rss = pss = priv = 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                priv += int(line.split()[1])
    return {"rss_kib": rss, "pss_kib": pss, "private_kib": priv}


def run_idle(ctx, idle_s, steps=3, nprocs=2, warm=2000):
    p = Pipeline(ctx, steps, nprocs, None)
    q_in, q_out = p.queues[0], p.queues[-1]
    for start in range(0, warm, 64):
        for i in range(64):
            q_in.put((start + i, PAYLOAD))
        for i in range(64):
            q_out.get()
    time.sleep(0.2)
    pids = [w.pid for w in p.procs]
    c0 = [cpu_ns(x) for x in pids]
    s0 = [ctx_switches(x) for x in pids]
    t0 = time.monotonic()
    time.sleep(idle_s)
    secs = time.monotonic() - t0
    procs = []
    for i, x in enumerate(pids):
        procs.append({"role": f"worker s{i // nprocs}.{i % nprocs}",
                      "idle_cpu_pct_core": 100.0 * (cpu_ns(x) - c0[i]) / 1e9 / secs,
                      "idle_wakeups_per_s": (ctx_switches(x) - s0[i]) / secs})
    mem = [dict(role="parent", **smaps(os.getpid()))]
    for i, x in enumerate(pids):
        procs[i].update(smaps(x))
    p.stop()
    return mem + procs, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tests", default="rtt,tput,idle")
    ap.add_argument("--json")
    ap.add_argument("--metrics")
    ap.add_argument("--plot-dir")
    ap.add_argument("--idle-s", type=float)
    a = ap.parse_args()
    tests = set(a.tests.split(","))
    if not tests <= {"rtt", "tput", "idle"}:
        ap.error("--tests: rtt, tput, idle")
    ctx = mp.get_context("fork")
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    cpus = allowed[:2] if len(allowed) >= 2 else [allowed[0], allowed[0]]
    rounds = 3 if a.quick else 7
    idle_s = a.idle_s or (2 if a.quick else 5)
    out = {"bench": "python_mp", "command": " ".join(sys.argv),
           "python": platform.python_version(), "start_method": "fork",
           "config": {"quick": a.quick, "rounds": rounds, "tests": sorted(tests)}}
    metrics = []

    def metric(key, value, unit):
        metrics.append(f"{key}\t{value:.10g}\t{unit}")

    print(f"mp_pipeline: Python {platform.python_version()}, multiprocessing "
          f"(fork, Queue), CPUs {cpus}")
    pin(cpus[0])
    if "rtt" in tests:
        iters = 1000 if a.quick else 4000
        s, rp = run_rtt(ctx, cpus, rounds, iters)
        r = {"count": len(s), "min_ns": s[0], "p50_ns": pct(s, 0.5), "p90_ns": pct(s, 0.9),
             "p99_ns": pct(s, 0.99), "p999_ns": pct(s, 0.999), "max_ns": s[-1],
             "mean_ns": statistics.fmean(s), "p50_by_round_ns": rp}
        out["round_trip"] = r
        for k in ("p50", "p90", "p99", "p999", "max"):
            metric(f"python.rtt.{k}", r[k + "_ns"], "ns")
        print(f"round trip, 1 step, {len(s)} samples: p50 {r['p50_ns'] / 1e3:.1f} us, "
              f"p90 {r['p90_ns'] / 1e3:.1f} us, p99 {r['p99_ns'] / 1e3:.1f} us, "
              f"p99.9 {r['p999_ns'] / 1e3:.1f} us, max {r['max_ns'] / 1e3:.1f} us")
        if a.plot_dir:
            with open(os.path.join(a.plot_dir, "flow_rtt_python_mp.dat"), "w") as f:
                f.write("# title: Python multiprocessing, 1 step\n")
                n = len(s)
                step = max(1, n // 400)
                f.write(f"{s[0]} 0\n")
                for i in list(range(step - 1, n, step)) + [n - 1]:
                    f.write(f"{s[i]} {(i + 1) / n:.6f}\n")
    if "tput" in tests:
        rates = run_tput(ctx, cpus, rounds, 0.15 if a.quick else 0.3)
        t = {"tasks_per_s_median": statistics.median(rates), "min": min(rates),
             "max": max(rates), "rounds": rates, "window": WINDOW}
        out["throughput"] = t
        metric("python.tput.median", t["tasks_per_s_median"], "/s")
        metric("python.tput.min", t["min"], "/s")
        metric("python.tput.max", t["max"], "/s")
        print(f"throughput, 1 step, {WINDOW} in flight: {t['tasks_per_s_median']:.0f} tasks/s "
              f"(rounds {t['min']:.0f}-{t['max']:.0f})")
    if "idle" in tests:
        procs, secs = run_idle(ctx, idle_s)
        workers = [p for p in procs if p["role"].startswith("worker")]
        total_pct = sum(p["idle_cpu_pct_core"] for p in workers)
        wake = sum(p["idle_wakeups_per_s"] for p in workers)
        total = sum(p["pss_kib"] for p in procs)
        wpriv = [p["private_kib"] for p in workers]
        out["idle"] = {"seconds": secs, "workers_pct_core": total_pct, "wakeups_per_s": wake}
        out["processes"] = procs
        out["memory"] = {"total_pss_kib": total}
        metric("python.idle.flow_pct", total_pct, "%")
        metric("python.idle.wakeups", wake, "/s")
        metric("python.mem.total_kib", total, "KiB")
        metric("python.mem.worker_private_max_kib", max(wpriv), "KiB")
        metric("python.mem.worker_private_mean_kib", statistics.fmean(wpriv), "KiB")
        metric("python.mem.parent_pss_kib", procs[0]["pss_kib"], "KiB")
        metric("python.mem.parent_private_kib", procs[0]["private_kib"], "KiB")
        print(f"idle 3 x 2 workers over {secs:.1f} s: {total_pct:.3f}% of a core, "
              f"{wake:.1f} wake-ups/s")
        print(f"{'process':<12} {'RSS KiB':>8} {'PSS KiB':>8} {'private KiB':>11}")
        for p in procs:
            print(f"{p['role']:<12} {p['rss_kib']:>8} {p['pss_kib']:>8} {p['private_kib']:>11}")
        print(f"memory in all (PSS summed): {total} KiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    if a.metrics:
        with open(a.metrics, "w") as f:
            f.write("".join(m + "\n" for m in metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
