#!/usr/bin/env python3
"""Health-check benchmarks for Roster (issue 4): how fast a down target shows everywhere, how fast
a survivor takes a killed owner's checks over, how many duplicate probes a handoff costs, and
the CPU one node spends on 10,000 HTTP checks at a 10 s interval.

    python3 bench/health_bench.py [--bin PATH] [--out FILE] [--only SECTION]...

Sections: follow, takeover, cpu. Probes go to bench/probe_target.py, which logs every probe
with the node that sent it (from Roster's User-Agent), so duplicates are counted, not guessed.
Nodes and targets are stopped by PID on every exit path; every wait has a deadline.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import subprocess
import sys
import threading
import time

from benchlib import cpu_seconds, fmt_ms, free_ports, log, pct, rss_kib, run_threads, stop_process
from roster_client import Http
from roster_cluster import Bench

HERE = os.path.dirname(os.path.abspath(__file__))
SECTIONS = ["follow", "takeover", "cpu"]


class Target:
    """bench/probe_target.py on a fixed port: started, stopped (connections refused), restarted."""

    def __init__(self, work: str):
        self.port = free_ports(1)[0]
        self.log_path = os.path.join(work, f"probes-{self.port}.log")
        self.proc = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "probe_target.py"), str(self.port), self.log_path])
        deadline = time.monotonic() + 10
        while not self._listening():
            if time.monotonic() > deadline:
                raise RuntimeError(f"probe target on port {self.port} did not listen")
            time.sleep(0.02)

    def _listening(self) -> bool:
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        stop_process(self.proc, "probe target", 5)
        self.proc = None

    def probes(self) -> list[tuple[float, str, str]]:
        """Every probe so far: (monotonic time, node, path)."""
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    t, node, path = line.split(" ", 2)
                    out.append((float(t), node, path.strip()))
        except (OSError, ValueError):
            pass
        return out


def register_http_check(node, iid: str, url: str, interval: str, timeout: str) -> None:
    body = json.dumps({"Name": "web", "ID": iid, "Port": 8080,
                       "Check": {"HTTP": url, "Interval": interval, "Timeout": timeout}})
    status, data = Http(node.http).request("PUT", "/v1/agent/service/register", body)
    if status != 200:
        raise RuntimeError(f"register {iid} at {node.name}: {status} {data[:200]!r}")


def check_status(http: Http, iid: str) -> str | None:
    for entry in http.get_json("/v1/health/service/web"):
        if entry["Service"]["ID"] == iid:
            return entry["Checks"][-1]["Status"] if entry["Checks"] else None
    return None


def wait_status_everywhere(nodes, iid: str, status: str, timeout: float) -> float:
    """Seconds until every node shows `iid`'s check as `status`, polling every 10 ms."""
    conns = [Http(n.http) for n in nodes]
    started = time.monotonic()
    while True:
        if all(check_status(c, iid) == status for c in conns):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{iid} not {status} everywhere within {timeout:.0f} s")
        time.sleep(0.01)


class HealthBench:
    def __init__(self, args):
        self.args = args
        self.bench = Bench(args)
        self.targets: list[Target] = []

    def target(self) -> Target:
        t = Target(self.bench.work)
        self.targets.append(t)
        t.start()
        return t

    def stop_everything(self) -> None:
        for t in self.targets:
            t.stop()
        self.bench.stop_everything()

    # ------------------------------------------------------------------ follow

    def follow(self) -> list[str]:
        c = self.bench.cluster("health-follow", 3)
        target = self.target()
        register_http_check(c.nodes[0], "follow-1", target.url("/follow"), "1s", "1s")
        wait_status_everywhere(c.nodes, "follow-1", "passing", 15)
        down, up = [], []
        for _ in range(self.args.follow_rounds):
            target.stop()
            down.append(wait_status_everywhere(c.nodes, "follow-1", "critical", 15))
            target.start()
            up.append(wait_status_everywhere(c.nodes, "follow-1", "passing", 15))
        self.bench.finish_cluster("follow", c)
        target.stop()
        n = len(down)
        return [
            "### Target down → critical on every node", "",
            f"3 nodes; one HTTP check with `Interval: 1s`, `Timeout: 1s`, registered at n1; the target stopped "
            f"and restarted {n} times; every node polled every 10 ms.", "",
            "| | p50 | max | bound (interval + timeout) |", "|---|---|---|---|",
            f"| target down → critical everywhere | {fmt_ms(pct(down, 50))} | {fmt_ms(max(down))} | 2 s |",
            f"| target back → passing everywhere | {fmt_ms(pct(up, 50))} | {fmt_ms(max(up))} | 2 s |", "",
        ]

    # ------------------------------------------------------------------ takeover

    def takeover(self) -> list[str]:
        c = self.bench.cluster("health-takeover", 3)
        n1, n2, n3 = c.nodes
        target = self.target()
        count, interval = self.args.takeover_checks, 1.0
        for i in range(count):
            register_http_check(n2, f"t-{i}", target.url(f"/t/{i}"), "1s", "1s")
        wait_until_probed(target, count, by={"n2"}, timeout=15)

        killed_at = time.monotonic()
        n2.kill9()
        detection: list[float] = []
        watcher = threading.Thread(target=lambda: detection.append(wait_failed(n1, "n2", killed_at)))
        watcher.start()
        first_by_survivor = wait_until_probed(target, count, by={"n1", "n3"}, since=killed_at, timeout=30)
        takeover = [t - killed_at for t in first_by_survivor.values()]
        watcher.join()
        detected = detection[0]

        time.sleep(5 * interval)  # steady state under the takers, for the duplicate count below
        restarted_at = time.monotonic()
        n2.start(c.joins_for(n2))
        back = wait_until_probed(target, count, by={"n2"}, since=restarted_at, timeout=30)
        time.sleep(5 * interval)
        end = time.monotonic()
        probes = target.probes()
        self.bench.finish_cluster("takeover", c)
        target.stop()

        kill_dups = duplicates(probes, killed_at, restarted_at, interval)
        back_dups = duplicates(probes, restarted_at, end, interval)
        hand_back = [t - restarted_at for t in back.values()]
        takers = {}
        for t, node, path in probes:
            if killed_at < t < restarted_at and node != "n2":
                takers.setdefault(node, set()).add(path)
        spread = ", ".join(f"{k}: {len(v)}" for k, v in sorted(takers.items()))
        return [
            "### Takeover of a killed owner's checks", "",
            f"3 nodes; {count} HTTP checks (`Interval: 1s`) registered through n2; n2 killed with `kill -9`, "
            "then restarted. The target logs every probe with the node that sent it.", "",
            "| | p50 | max |", "|---|---|---|",
            f"| n2 marked failed at n1 | {fmt_ms(detected)} | |",
            f"| kill → first probe of each check by a survivor | {fmt_ms(pct(takeover, 50))} | {fmt_ms(max(takeover))} |",
            f"| restart → first probe of each check by n2 again (hand-back) | {fmt_ms(pct(hand_back, 50))} | {fmt_ms(max(hand_back))} |",
            "", f"Checks per taker: {spread} (rendezvous hashing spreads them over the survivors).", "",
            "| window | probes | duplicate probes | per check |", "|---|---|---|---|",
            f"| takeover (kill → restart) | {kill_dups[0]} | {kill_dups[1]} | {kill_dups[1] / count:.2f} |",
            f"| hand-back (restart → +{end - restarted_at:.0f} s) | {back_dups[0]} | {back_dups[1]} | {back_dups[1] / count:.2f} |",
            "", "A duplicate is a probe of a check by a node within half an interval of a probe of the same "
            "check by another node: two nodes probing at once.", "",
        ]

    # ------------------------------------------------------------------ cpu

    def cpu(self) -> list[str]:
        c = self.bench.cluster("health-cpu", 1)
        node = c.nodes[0]
        target = self.target()
        count = self.args.cpu_checks
        register_concurrently(node, count, target, interval="10s", timeout="2s")
        log(f"cpu: {count} checks registered; warming up {self.args.cpu_warmup:.0f} s")
        time.sleep(self.args.cpu_warmup)
        before_probes = len(target.probes())
        cpu0, t0 = cpu_seconds(node.proc.pid), time.monotonic()
        time.sleep(self.args.cpu_window)
        cpu1, t1 = cpu_seconds(node.proc.pid), time.monotonic()
        probes = len(target.probes()) - before_probes
        health = node.health() or {}
        rss = (rss_kib(node.proc.pid) or 0) / 1024
        self.bench.finish_cluster("cpu", c)
        target.stop()
        share = (cpu1 - cpu0) / (t1 - t0)
        return [
            "### CPU of 10,000 checks", "",
            f"One node running {count} HTTP checks at `Interval: 10s` against one local target (keep-alive); "
            f"measured over {t1 - t0:.0f} s after {self.args.cpu_warmup:.0f} s of warm-up.", "",
            "| checks | probes/s seen by the target | node CPU (share of one core) | node RSS |", "|---|---|---|---|",
            f"| {count} | {probes / (t1 - t0):.0f} | {share * 100:.1f} % | {rss:.0f} MiB |", "",
            f"The node held {health.get('instances', '?')} instances at the end.", "",
        ]


def wait_until_probed(target: Target, count: int, by: set[str], since: float = 0.0, timeout: float = 30) -> dict[str, float]:
    """{path: time of its first probe by a node in `by` after `since`}, once all `count` checks have one."""
    deadline = time.monotonic() + timeout
    while True:
        first: dict[str, float] = {}
        for t, node, path in target.probes():
            if t >= since and node in by and path not in first:
                first[path] = t
        if len(first) >= count:
            return first
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(first)} of {count} checks probed by {sorted(by)} within {timeout:.0f} s")
        time.sleep(0.05)


def wait_failed(observer, name: str, since: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = observer.members() or {}
        if members.get(name) == 4:  # Serf's "failed"
            return time.monotonic() - since
        time.sleep(0.02)
    return float("nan")


def duplicates(probes, start: float, end: float, interval: float) -> tuple[int, int]:
    """(probes in [start, end), probes within half an interval of another node's probe of the same check)."""
    by_path: dict[str, list[tuple[float, str]]] = {}
    for t, node, path in probes:
        if start <= t < end:
            by_path.setdefault(path, []).append((t, node))
    total = dups = 0
    for events in by_path.values():
        events.sort()
        total += len(events)
        for (t0, a), (t1, b) in zip(events, events[1:]):
            if a != b and t1 - t0 < interval / 2:
                dups += 1
    return total, dups


def register_concurrently(node, count: int, target: Target, interval: str, timeout: str, threads: int = 16) -> None:
    ids = iter(range(count))
    lock = threading.Lock()
    errors: list[str] = []

    def worker():
        http = Http(node.http)
        while True:
            with lock:
                i = next(ids, None)
            if i is None:
                return
            body = json.dumps({"Name": "web", "ID": f"cpu-{i}", "Port": 8080,
                               "Check": {"HTTP": target.url(f"/c/{i}"), "Interval": interval, "Timeout": timeout}})
            status, data = http.request("PUT", "/v1/agent/service/register", body)
            if status != 200:
                errors.append(f"{status} {data[:100]!r}")

    run_threads(worker, threads, deadline=time.monotonic() + 600)
    if errors:
        raise RuntimeError(f"{len(errors)} registrations failed, e.g. {errors[0]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ROSTER_BIN", ".build/release/roster"))
    ap.add_argument("--out", default=".run/bench-health.md")
    ap.add_argument("--only", action="append", choices=SECTIONS)
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--logs-dir", default="")
    ap.add_argument("--follow-rounds", type=int, default=10)
    ap.add_argument("--takeover-checks", type=int, default=100)
    ap.add_argument("--cpu-checks", type=int, default=10_000)
    ap.add_argument("--cpu-warmup", type=float, default=15)
    ap.add_argument("--cpu-window", type=float, default=30)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"health_bench: no roster binary at {args.bin} (make release, or --bin)")
    hb = HealthBench(args)
    atexit.register(hb.stop_everything)
    md = ["## Health checks", "",
          f"Written by `make bench-health` (`bench/health_bench.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
          "Release build, mutual TLS between nodes, all on loopback and sharing the machine's cores with the "
          "probe target and this harness.", ""]
    for section in args.only or SECTIONS:
        log(f"=== {section}")
        try:
            md += getattr(hb, section)()
        except Exception as e:  # noqa: BLE001 - reported in the output
            log(f"{section} failed: {e!r}")
            md += [f"### {section}", "", f"**Did not complete:** `{e}`", ""]
            hb.stop_everything()
    text = "\n".join(md)
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
