#!/usr/bin/env python3
"""Roster side by side with etcd, in one run on one machine.

    python3 bench/etcd_bench.py [--bin .build/release/roster] [--out .run/bench-etcd.md]
                                [--only reads|propagation|registrations|memory]... [--duration 10s] [--keep]

Both systems run as 3-node clusters on loopback, started by this script:
  - Roster: the release binary, mutual TLS between peers (certificates from `roster tls`), each
    acknowledged write fsync'd at the receiving node (SPEC 4.1); the cluster helpers of
    cluster_bench.py.
  - etcd: the Debian package (`etcd-server`), default durability (WAL fsync'd before a write is
    acknowledged by a quorum), peer mutual TLS with the same CA, client traffic plaintext through
    its JSON gateway, like Roster's HTTP API. Writes go to etcd's leader (leadership is moved to
    member 1), its best case.

Sections, each for both systems, the same client for both (wrk + bench/*.lua, 2 threads, 64
connections, the same duration; or the same Python client):
  reads          GET /v1/health/service/web  vs  POST /v3/kv/range over /services/web/, serializable;
                 10 instances behind both.
  propagation    500 sequential writes at node 1; one watcher at node 3 (Roster: SSE /registry/watch;
                 etcd: the gateway's streaming /v3/watch). Latency from sending the write until the
                 watcher has the event, and from the write's acknowledgement.
  registrations  PUT /v1/agent/service/register  vs  POST /v3/kv/put with a lease attached (leases
                 granted first, keys spread over 50 service prefixes, the same service JSON as value).
  memory         VmRSS of every node of a fresh cluster after 100,000 instances are registered.

Every process it starts runs in its own session and is stopped by its PID on every exit path
(SIGTERM, then SIGKILL). Data directories live under .run/ (the real disk, so fsync is real) and
are removed unless --keep. It prints a Markdown section and writes it to --out.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile
import time

from benchlib import fsync_latency, log
from etcd_measure import measure_memory, measure_propagation, measure_reads, measure_registrations
from etcd_report import markdown
from etcd_systems import Etcd, Roster
from roster_cluster import Bench as RosterBench

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["reads", "propagation", "registrations", "memory"]


# --------------------------------------------------------------------------------------------
# the run


class Run:
    def __init__(self, args):
        self.args = args
        self.roster = RosterBench(argparse.Namespace(bin=args.bin, log_level=args.log_level, keep=args.keep,
                                                     logs_dir=""))
        self.work = tempfile.mkdtemp(prefix="bench-etcd-", dir=os.path.join(REPO, ".run"))
        self.etcd_certs = self._etcd_certs() if args.etcd_peer_tls else None
        # measured first, while no cluster of this run is writing to the disk
        self.fsync = fsync_latency(os.path.join(self.work, "fsync.probe"))
        self.etcds = []
        self.results = {}   # (section, system label) -> result
        self.systems = {}   # system label -> describe()
        self.problems = []

    def _etcd_certs(self):
        for i in range(3):
            self.roster.ensure_cert(f"e{i + 1}")
        return self.roster.certs

    def start_roster(self, name):
        roster = Roster(self.roster, name)
        self.systems[roster.label] = roster.describe()
        return roster

    def start_etcd(self, name):
        etcd = Etcd(self.work, name, self.etcd_certs)
        self.etcds.append(etcd)  # before it starts, so that cleanup() stops whatever did start
        log(f"{name}: starting 3 etcd members in {etcd.dir}")
        etcd.start()
        log(f"{name}: etcd up, leader {etcd.leader_name()}")
        self.systems[etcd.label] = etcd.describe()
        return etcd

    def stop(self, systems, section):
        for system in systems:
            try:
                system.stop(section)
            except Exception as e:
                self.problems.append(f"{section}: stopping {system.label}: {e}")

    def measure(self, section, system, fn, *a):
        try:
            self.results[(section, system.label)] = fn(system, *a)
        except Exception as e:
            log(f"{section} {system.label} failed: {e!r}")
            self.problems.append(f"{section}, {system.label}: did not complete: {e}")

    def run(self, sections):
        """reads, propagation and registrations on one pair of clusters, both up at once, each
        section for Roster then etcd; memory on a fresh cluster of each, one at a time."""
        a = self.args
        shared = [("reads", measure_reads, (a,)),
                  ("propagation", measure_propagation, (a.writes, a.propagation_budget)),
                  ("registrations", measure_registrations, (a, self.work))]
        if any(name in sections for name, _, _ in shared):
            pair = []
            try:
                pair.append(self.start_roster("roster-main"))
                pair.append(self.start_etcd("etcd-main"))
                for name, fn, extra in shared:
                    if name in sections:
                        for system in pair:
                            self.measure(name, system, fn, *extra)
            finally:
                self.stop(pair, "main")
        if "memory" in sections:
            for start, name in ((self.start_roster, "roster-memory"), (self.start_etcd, "etcd-memory")):
                system = start(name)
                try:
                    self.measure("memory", system, measure_memory, a.memory_instances, a.load_threads)
                finally:
                    self.stop([system], "memory")

    def stop_everything(self):
        for e in self.etcds:
            e.stop()
        self.roster.stop_everything()

    def cleanup(self):
        self.stop_everything()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
            shutil.rmtree(self.roster.work, ignore_errors=True)
        else:
            log(f"kept {self.work} and {self.roster.work}")


# --------------------------------------------------------------------------------------------


def duration_seconds(text):
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def check_tools(args):
    missing = [t for t in ("etcd", "wrk") if shutil.which(t) is None]
    if missing:
        sys.exit(f"etcd_bench: {' and '.join(missing)} not found: apt-get install -y "
                 + " ".join({"etcd": "etcd-server etcd-client", "wrk": "wrk"}[t] for t in missing)
                 + " (make bench-etcd does it)")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"etcd_bench: no roster binary at {args.bin} (make release, or --bin)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ROSTER_BIN", os.path.join(REPO, ".build/release/roster")))
    ap.add_argument("--out", default=os.path.join(REPO, ".run/bench-etcd.md"))
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    ap.add_argument("--duration", default="10s", help="of each wrk run, e.g. 10s")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--writes", type=int, default=500, help="propagation: sequential writes per system")
    ap.add_argument("--propagation-budget", type=float, default=60.0, help="propagation: seconds per system")
    ap.add_argument("--memory-instances", type=int, default=100000)
    ap.add_argument("--load-threads", type=int, default=32, help="memory: client connections for the load")
    ap.add_argument("--no-etcd-peer-tls", dest="etcd_peer_tls", action="store_false",
                    help="etcd peers in plaintext (Roster's peers always use mutual TLS)")
    ap.add_argument("--log-level", default="warning", help="of the Roster nodes")
    ap.add_argument("--keep", action="store_true", help="keep data dirs and logs under .run/")
    args = ap.parse_args()
    args.duration_s = duration_seconds(args.duration)
    args.bin = os.path.abspath(args.bin)
    check_tools(args)
    sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]

    run = Run(args)
    atexit.register(run.cleanup)

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping every node")
        sys.exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    run.run(sections)
    text = markdown(run, sections, time.monotonic() - started)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    log(f"wrote {args.out}")
    return 1 if run.problems else 0


if __name__ == "__main__":
    sys.exit(main())
