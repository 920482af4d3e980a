#!/usr/bin/env python3
"""Cluster benchmarks for Roster: replication latency, idle gossip traffic, bootstrap of a fresh
node, and failure detection, on real multi-node mutual-TLS clusters on loopback.

    python3 bench/cluster_bench.py [--bin PATH] [--out FILE] [--only SECTION]... [--keep]

Sections (each runnable alone with --only): propagation, idle, bootstrap, failure.
It prints a Markdown section and writes it to --out (default /tmp/cluster-bench.md).

Every node this script starts runs in a session of its own and is stopped by its PID on every
exit path (SIGTERM, then SIGKILL after 5 s). Every wait is bounded in time. Data directories
live under the repository's .run/ (git-ignored, on the real disk, so fsync is real).
"""

import argparse
import atexit
import os
import shutil
import signal
import sys
import time

from benchlib import log
from cluster_bootstrap import BootstrapSection
from cluster_failure import FailureSection
from cluster_idle import IdleSection
from cluster_propagation import PropagationSection
from cluster_report import markdown
from roster_cluster import Bench as ClusterRun

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["propagation", "idle", "bootstrap", "failure"]


class Bench(PropagationSection, IdleSection, BootstrapSection, FailureSection, ClusterRun):
    """The cluster benchmark: roster_cluster.Bench with one method per section (see SECTIONS),
    each returning its Markdown lines."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ROSTER_BIN", os.path.join(REPO, ".build/release/roster")))
    ap.add_argument("--out", default="/tmp/cluster-bench.md")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs and logs under .run/")
    ap.add_argument("--logs-dir", default="/tmp/cluster-bench-logs", help="copy every node's log here ('' to skip)")
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--writes", type=int, default=1000)
    ap.add_argument("--no-watch-check", dest="watch_check", action="store_false",
                    help="skip the event-stream cross-check of the propagation section")
    ap.add_argument("--propagation-budget", type=float, default=120.0, help="seconds per cluster size")
    ap.add_argument("--idle-instances", type=int, default=10000)
    ap.add_argument("--idle-window", type=int, default=20)
    ap.add_argument("--bootstrap-instances", type=int, default=100000)
    ap.add_argument("--bootstrap-timeout", type=float, default=60.0)
    ap.add_argument("--bootstrap-kinds", type=lambda v: v.split(","), default=["minimal", "typical"],
                    help="registration bodies for the bootstrap runs, comma-separated: minimal,typical")
    ap.add_argument("--reg-threads", type=int, default=32)
    ap.add_argument("--failure-rounds", type=int, default=5)
    ap.add_argument("--failure-timeout", type=float, default=20.0)
    args = ap.parse_args()
    sections = args.only or SECTIONS
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"cluster_bench: no roster binary at {args.bin} (swift build -c release --product roster, or --bin)")
    if args.logs_dir:
        shutil.rmtree(args.logs_dir, ignore_errors=True)

    bench = Bench(args)

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping the nodes")
        bench.stop_everything()
        sys.exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(bench.stop_everything)

    started = time.monotonic()
    body = []
    failed_sections = []
    for s in sections:
        log(f"=== {s}")
        t = time.monotonic()
        try:
            body += getattr(bench, s)()
        except Exception as e:
            log(f"{s} failed: {e!r}")
            failed_sections.append(s)
            bench.problems.append(f"{s}: the section did not complete: {e}")
            body += [f"### {s}", "", f"**Did not complete:** `{e}`", ""]
            bench.stop_everything()
            for c in bench.clusters:
                if c.label.startswith(s) and s not in [x for x, _ in bench.logs.items()]:
                    bench.logs.setdefault(s, []).append((c.label, c.log_summary()))
        log(f"=== {s} took {time.monotonic() - t:.0f} s")
    total = time.monotonic() - started

    text = markdown(bench, args, sections, body, total)
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}" + (f"; node logs in {args.logs_dir}" if args.logs_dir else ""))
    bench.stop_everything()
    if not args.keep:
        shutil.rmtree(bench.work, ignore_errors=True)
    else:
        log(f"kept {bench.work}")
    return 1 if failed_sections else 0


if __name__ == "__main__":
    sys.exit(main())
