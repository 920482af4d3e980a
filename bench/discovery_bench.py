#!/usr/bin/env python3
"""Discovery benchmarks for Roster on a release-built 3-node mutual-TLS cluster on loopback.

How to run (from the repository root, after `swift build -c release --product roster`):

    python3 bench/discovery_bench.py [--bin .build/release/roster] [--out /tmp/discovery-bench.md]
                                     [--only dns|blocking|sse]... [--keep]

Sections (each runnable alone with --only; by default all three, in this order):
  dns       DNS queries per second at one node: `dnsperf` (Debian package `dnsperf`) for 20 s with
            a query file of `web.service.roster A` lines. Without dnsperf it falls back to a small
            asyncio UDP load client and measures that client's own ceiling against a trivial echo
            server too. Target >= 20,000 qps.
  blocking  Blocking-query wake latency: a watcher at n3 loops on
            `GET /v1/health/service/web?index=N&wait=60s`; a writer at n1 registers a new web
            instance every ~50 ms, 300 writes. Latency = time from the writer's 200 to the return of
            the watcher's first answer that includes that write. Target p99 <= 100 ms.
  sse       1,000 concurrent SSE watchers (`/registry/watch?service=web`) on one node: its RSS
            before and after they connect, and the fan-out latency of one event (a write's 200 to
            the LAST of the 1,000 watchers receiving it), p50/p99 over 20 events.

It prints a Markdown section and writes it to --out. Every node it starts runs in its own session
and is stopped by its PID on every exit path (SIGTERM, then SIGKILL after 6 s); helper processes
are ended by their PIDs too. Every wait is bounded in time. Data directories live under the
repository's .run/ (git-ignored, on the real disk, so fsync is real) and are removed unless --keep.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time

from benchlib import log
from discovery_blocking import bench_blocking
from discovery_cluster import CHILDREN, Cluster
from discovery_dns import bench_dns
from discovery_sse import bench_sse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["dns", "blocking", "sse"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release/roster"))
    ap.add_argument("--out", default="/tmp/discovery-bench.md")
    ap.add_argument("--only", action="append", choices=SECTIONS)
    ap.add_argument("--keep", action="store_true", help="keep data directories and logs")
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--write-interval", type=float, default=0.05)
    ap.add_argument("--dns-seconds", type=int, default=20)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--sse-workers", type=int, default=4)
    ap.add_argument("--sse-node", default="n2")
    ap.add_argument("--events", type=int, default=20)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.path.exists(args.bin):
        sys.exit(f"no roster binary at {args.bin}; build one with `swift build -c release --product roster`")
    sections = args.only or SECTIONS
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
    except (ValueError, OSError):
        pass

    work = os.path.join(REPO, ".run")
    os.makedirs(work, exist_ok=True)
    cluster = None

    def cleanup():
        for c in CHILDREN:
            try:
                if isinstance(c, subprocess.Popen):
                    if c.poll() is None:
                        c.kill()
                elif c.is_alive():
                    c.kill()
            except Exception:
                pass

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    out = ["## Discovery", ""]
    try:
        version = subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(os.path.dirname(args.bin))), "log", "-1",
                                  "--format=%h %cs"], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        version = ""
    out.append(f"`python3 bench/discovery_bench.py` on {platform.node()}, {os.cpu_count()} cores, "
               f"Linux {platform.release()}; binary `{args.bin}`{f' (commit {version})' if version else ''}; "
               f"3-node mutual-TLS cluster on 127.0.0.1, nodes at `--log-level {args.log_level}`, "
               f"run {time.strftime('%Y-%m-%d %H:%M')}.")
    out.append("")
    try:
        cluster = Cluster(args, work)
        log(f"starting a 3-node cluster in {cluster.dir}")
        cluster.start()
        for name in sections:
            log(f"section {name}")
            fn = {"dns": bench_dns, "blocking": bench_blocking, "sse": bench_sse}[name]
            try:
                out += fn(cluster, args)
            except Exception as exc:  # noqa: BLE001 - reported in the output
                log(f"section {name} failed: {exc!r}")
                out += [f"### {name}: FAILED", "", f"```\n{exc!r}\n```", ""]
            dead = [n.name for n in cluster.nodes if not n.alive()]
            if dead:
                raise RuntimeError(f"nodes {dead} died during {name}; see {cluster.dir}")
    finally:
        if cluster is not None:
            codes = cluster.stop()
            log(f"stopped: exit codes {codes}")
            if not args.keep:
                shutil.rmtree(cluster.dir, ignore_errors=True)
            else:
                log(f"kept {cluster.dir}")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
