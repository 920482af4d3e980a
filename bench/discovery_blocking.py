"""The blocking section of discovery_bench.py: how soon a blocking query at n3
(`?index=N&wait=60s`) returns with a write made at n1.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import time

from benchlib import pct, verdict
from discovery_cluster import CHILDREN, addr_of, consul_register, fmt_ms
from roster_client import Http


def blocking_watcher(hostport, service, prefix, out_q, ready):
    """In its own process: loops on ?index=N&wait=60s and reports (return time, [write numbers seen])."""
    h = Http(hostport, timeout=90)
    status, hdrs, _ = h.exchange("GET", f"/v1/health/service/{service}")
    index = hdrs.get("x-consul-index", "0")
    ready.set()
    while True:
        status, hdrs, data = h.exchange("GET", f"/v1/health/service/{service}?index={index}&wait=60s")
        t = time.monotonic()
        if status != 200:
            out_q.put(("error", t, f"{status} {data[:200]!r}"))
            return
        new_index = hdrs.get("x-consul-index", index)
        seen = []
        for entry in json.loads(data):
            sid = entry.get("Service", {}).get("ID", "")
            if sid.startswith(prefix):
                seen.append(int(sid[len(prefix):]))
        out_q.put(("return", t, seen, int(new_index) <= int(index)))
        index = new_index


def bench_blocking(cluster, args):
    n1, n3 = cluster["n1"], cluster["n3"]
    prefix = "wake-"
    ctx = mp.get_context("fork")
    out_q, ready = ctx.Queue(), ctx.Event()
    watcher = ctx.Process(target=blocking_watcher, args=(n3.http, "web", prefix, out_q, ready), daemon=True)
    watcher.start()
    CHILDREN.append(watcher)
    if not ready.wait(10):
        raise RuntimeError("the blocking watcher did not start")
    time.sleep(0.2)  # let its first blocking query reach the server (a measurement pause, not a sync)

    writes = args.writes
    sent, acked = [0.0] * writes, [0.0] * writes
    h = Http(n1.http)
    first_seen = {}
    returns = 0
    empty_wakes = 0
    errors = []

    def drain(block_for=0.0):
        nonlocal returns, empty_wakes
        deadline = time.monotonic() + block_for
        while True:
            try:
                item = out_q.get(timeout=max(0.0, deadline - time.monotonic())) if block_for else out_q.get_nowait()
            except queue.Empty:
                return
            if item[0] == "error":
                errors.append(item[2])
                return
            _, t, seen, no_change = item
            returns += 1
            empty_wakes += 1 if no_change else 0
            for k in seen:
                first_seen.setdefault(k, t)
            if block_for and time.monotonic() >= deadline:
                return

    try:
        t0 = time.monotonic()
        for i in range(writes):
            slot = t0 + i * args.write_interval
            while time.monotonic() < slot:
                time.sleep(min(0.005, max(0.0, slot - time.monotonic())))
            sent[i] = time.monotonic()
            consul_register(h, f"{prefix}{i}", addr_of(i + 10), tags=["bench"])
            acked[i] = time.monotonic()
            drain()
        deadline = time.monotonic() + 10
        while len(first_seen) < writes and time.monotonic() < deadline and not errors:
            drain(0.2)
    finally:
        h.close()
        if watcher.is_alive():
            watcher.terminate()  # by its PID; it is blocked in a 60 s wait
        watcher.join(5)
    missing = [i for i in range(writes) if i not in first_seen]
    from_ack = [first_seen[i] - acked[i] for i in range(writes) if i in first_seen]
    from_send = [first_seen[i] - sent[i] for i in range(writes) if i in first_seen]
    write_ms = [acked[i] - sent[i] for i in range(writes)]
    duration = acked[-1] - sent[0]
    p99 = pct(from_ack, 99)
    lines = ["### Blocking-query wake latency (n1 writes, n3 watches)", ""]
    lines.append(f"A watcher process at n3 loops on `GET /v1/health/service/web?index=N&wait=60s`; a writer at n1 "
                 f"registers a new `web` instance every {args.write_interval * 1000:.0f} ms ({writes} writes in "
                 f"{duration:.1f} s, each answered 200 after the fsync). Latency = the watcher's first return that "
                 "includes the write, minus the moment the writer got its 200 (negative when n3's answer came "
                 "before n1's own 200 reached the writer).")
    lines.append("")
    lines.append("| measure | p50 | p99 | max |")
    lines.append("|---|---|---|---|")
    if from_ack:
        lines.append(f"| **write's 200 → watcher returns with it** | {fmt_ms(pct(from_ack, 50))} | **{fmt_ms(p99)}** | {fmt_ms(max(from_ack))} |")
        lines.append(f"| write sent → watcher returns with it | {fmt_ms(pct(from_send, 50))} | {fmt_ms(pct(from_send, 99))} | {fmt_ms(max(from_send))} |")
    lines.append(f"| write round trip at n1 (PUT → 200) | {fmt_ms(pct(write_ms, 50))} | {fmt_ms(pct(write_ms, 99))} | {fmt_ms(max(write_ms))} |")
    lines.append("")
    lines.append(f"Writes seen by the watcher: {len(first_seen)}/{writes}"
                 + (f" (missing: {missing[:10]}{'…' if len(missing) > 10 else ''})" if missing else "")
                 + f"; the watcher returned {returns} times ({returns / max(writes, 1):.2f} per write; "
                 f"{empty_wakes} returns without a new index)."
                 + (f" Watcher errors: {errors}." if errors else ""))
    lines.append("")
    lines.append(f"Target p99 ≤ 100 ms: {verdict(bool(from_ack) and not missing and p99 <= 0.100)}.")
    lines.append("")
    return lines
