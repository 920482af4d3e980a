"""The measurements of etcd_bench.py, the same code for both systems (see etcd_systems): wrk runs
with the CPU the nodes spent, discovery reads, registrations, propagation to a watcher, and
memory after a bulk load.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time

from benchlib import cpu_seconds, log, pct, rss_breakdown

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READ_INSTANCES = 10
STREAM_TIMEOUT = 5.0


def fmt_ms(ms):
    """Milliseconds (unlike benchlib.fmt_ms, which takes seconds), finer below 10 ms."""
    if ms is None or ms != ms:
        return "n/a"
    return f"{ms:.2f} ms" if ms < 10 else (f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms")


# --------------------------------------------------------------------------------------------
# wrk


def run_wrk(script, url, script_args, args):
    """One wrk run with the settings shared by both systems; the `wrk-json` line of bench/wrklib.lua."""
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}", "--latency",
           "-s", os.path.join("bench", script), url]
    if script_args:
        cmd += ["--", *script_args]
    log(" ".join(cmd))
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.duration_s + 60)
    for line in out.stdout.splitlines():
        if line.startswith("wrk-json: "):
            res = json.loads(line[len("wrk-json: "):])
            res["command"] = " ".join(cmd)
            log(f"  {res['rps']:,.0f}/s p50 {res['p50_ms']:.2f} ms p99 {res['p99_ms']:.2f} ms, "
                f"non-200 {res['non200']}, socket errors {res['socket_errors']}")
            return res
    raise RuntimeError(f"wrk printed no summary (exit {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")


# --------------------------------------------------------------------------------------------
# the measurements, the same code for both systems


def run_wrk_on(system, wrk_spec, args):
    """run_wrk, plus the CPU time every node of `system` and wrk itself used meanwhile, and the
    nodes' CPU per request: a figure less sensitive than throughput to what else the shared
    cores are doing."""
    pids = system.pids()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_wrk(*wrk_spec, args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu"] = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    res["wrk_cpu"] = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    res["cpu_us_per_req"] = sum(res["cpu"].values()) / max(1, res["requests"]) * 1e6
    log(f"  CPU per request, all nodes: {res['cpu_us_per_req']:.0f} µs; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in res["cpu"].items()) + f", wrk {res['wrk_cpu']:.1f} s")
    return res


def measure_reads(system, args):
    h = system.http(0)
    try:
        for i in range(READ_INSTANCES):
            system.write(h, "web", f"web-{i}", i)
    finally:
        h.close()
    time.sleep(0.5)
    status, data = system.read_once("web")
    if status != 200:
        raise RuntimeError(f"{system.label}: read of web -> {status}: {data[:200]!r}")
    res = run_wrk_on(system, system.read_wrk("web"), args)
    res["answer_bytes"] = len(data)
    return res


def measure_registrations(system, args, work):
    return run_wrk_on(system, system.register_wrk(work), args)


def measure_propagation(system, writes, budget):
    """Sequential writes at node 1, one watcher at node 3. Per write: the time from sending it
    until the watcher has the event (`total`), and from its acknowledgement (`after_ack`)."""
    seen, cond, ready = {}, threading.Condition(), threading.Event()

    def on_event(iid, t):
        if iid is None:
            ready.set()
            return
        with cond:
            seen.setdefault(iid, t)
            cond.notify_all()

    stream = system.watch(2, "prop", on_event)
    h = system.http(0)
    total, after_ack, ack, missing = [], [], [], 0
    try:
        if not ready.wait(10):
            raise RuntimeError(f"{system.label}: the watch at node 3 did not start within 10 s")
        system.write(h, "prop", "prop-warmup", 0)  # connection set-up and first-use costs, untimed
        time.sleep(0.2)
        deadline = time.monotonic() + budget
        for i in range(writes):
            if time.monotonic() > deadline:
                log(f"{system.label} propagation: time budget spent after {i} writes")
                break
            iid = f"prop-{i}"
            t_send = time.perf_counter()
            system.write(h, "prop", iid, i)
            t_ack = time.perf_counter()
            with cond:
                if not cond.wait_for(lambda: iid in seen, timeout=STREAM_TIMEOUT):
                    missing += 1
                    continue
                t_seen = seen[iid]
            total.append((t_seen - t_send) * 1000)
            after_ack.append(max(0.0, t_seen - t_ack) * 1000)
            ack.append((t_ack - t_send) * 1000)
    finally:
        h.close()
        stream.close()
    res = {"n": len(total), "missing": missing,
           "p50": pct(total, 50), "p90": pct(total, 90), "p99": pct(total, 99), "max": max(total, default=float("nan")),
           "ack_p50": pct(ack, 50), "ack_p99": pct(ack, 99),
           "after_ack_p50": pct(after_ack, 50), "after_ack_p99": pct(after_ack, 99)}
    log(f"{system.label} propagation: p50 {fmt_ms(res['p50'])} p99 {fmt_ms(res['p99'])}, {missing} missing")
    return res


def measure_memory(system, count, threads):
    secs = system.load(count, threads)
    time.sleep(2.0)  # let background work (gossip, compaction, snapshots) settle
    rss = {name: rss_breakdown(pid) for name, pid in system.pids().items()}
    res = {"load_s": secs, "rss": rss, "data": system.data_bytes()}
    mib = [v[0] / 1024 for v in rss.values() if v[0]]
    res["max_mib"] = max(mib) if mib else float("nan")
    res["mean_mib"] = sum(mib) / len(mib) if mib else float("nan")
    log(f"{system.label} memory: RSS " + ", ".join(f"{k} {v[0] / 1024:.0f} MiB" for k, v in rss.items() if v[0])
        + f" (load {secs:.1f} s)")
    return res
