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
import http.client
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import die_with_parent, free_ports, log, pct, rss_kib, run_threads, stop_process, verdict  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["propagation", "idle", "bootstrap", "failure"]

# --------------------------------------------------------------------------------------------
# small helpers


def fmt_ms(seconds):
    if seconds is None or seconds != seconds:
        return "n/a"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def fmt_bytes(n):
    if n is None:
        return "n/a"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f} B"


class Http:
    """One keep-alive HTTP/1.1 connection (http.client is much lighter than requests per call,
    which matters for the polling granularity)."""

    def __init__(self, hostport, timeout=10.0):
        host, port = hostport.rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method, path, body=None):
        """Returns (status, body bytes). Reconnects once if the kept-alive connection broke."""
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self._connect()
                headers = {}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def get_json(self, path):
        status, data = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {data[:200]!r}")
        return json.loads(data)

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


METRIC_RE = re.compile(r'^(roster_gossip_bytes_(?:sent|received))\{([^}]*)\}\s+([0-9.eE+-]+)\s*$')


def gossip_bytes(hostport):
    """{('sent'|'received', 'payload'|'wire'): bytes} from /metrics, or None."""
    h = Http(hostport, timeout=5)
    try:
        status, data = h.request("GET", "/metrics")
    except Exception:
        return None
    finally:
        h.close()
    if status != 200:
        return None
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        m = METRIC_RE.match(line)
        if not m:
            continue
        labels = dict(kv.split("=", 1) for kv in m.group(2).split(",") if "=" in kv)
        stage = labels.get("stage", "").strip('"')
        direction = "sent" if m.group(1).endswith("sent") else "received"
        out[(direction, stage)] = float(m.group(3))
    return out


# --------------------------------------------------------------------------------------------
# nodes and clusters

ALL_PROCS = []  # every Popen we started, so that atexit/signals can stop them by PID


class Node:
    def __init__(self, cluster, name, ports):
        self.cluster, self.name = cluster, name
        self.http_port, self.dns_port, self.bind_port = ports
        self.http = f"127.0.0.1:{self.http_port}"
        self.bind = f"127.0.0.1:{self.bind_port}"
        self.data_dir = os.path.join(cluster.dir, name)
        self.log_path = os.path.join(cluster.dir, f"{name}.log")
        self.proc = None
        self.killed = False
        self.started_at = None
        self.starts = 0

    def command(self, joins):
        c = self.cluster
        cmd = [c.bin, "agent", "--node-name", self.name, "--data-dir", self.data_dir,
               "--http", self.http, "--dns", f"127.0.0.1:{self.dns_port}",
               "--bind", self.bind, "--advertise", self.bind]
        for j in joins:
            cmd += ["--join", j]
        cmd += ["--tls-ca", os.path.join(c.certs, "ca.pem"),
                "--tls-cert", os.path.join(c.certs, f"{self.name}.pem"),
                "--tls-key", os.path.join(c.certs, f"{self.name}-key.pem"),
                "--log-level", c.log_level]
        return cmd

    def start(self, joins):
        os.makedirs(self.data_dir, exist_ok=True)
        cmd = self.command(joins)
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== start #{self.starts} {time.strftime('%FT%T')}: {' '.join(cmd)}\n".encode())
        logf.flush()
        self.started_at = time.monotonic()
        self.killed = False
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)
        logf.close()
        ALL_PROCS.append(self.proc)
        return self.started_at

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.killed = True
            self.proc.wait(timeout=10)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code, or None if killed."""
        return stop_process(self.proc, self.name, timeout)

    def health(self):
        return try_get_json(self.http, "/health", timeout=2)

    def members(self):
        got = try_get_json(self.http, "/v1/agent/members", timeout=2)
        if got is None:
            return None
        return {m.get("Name"): m.get("Status") for m in got}


class Cluster:
    def __init__(self, bench, label, size):
        self.bench = bench
        self.bin = bench.bin
        self.certs = bench.certs
        self.log_level = bench.args.log_level
        self.label = label
        self.dir = tempfile.mkdtemp(prefix=f"{label}-", dir=bench.work)
        self.nodes = []
        for i in range(size):
            self.add_node()

    def add_node(self):
        name = f"n{len(self.nodes) + 1}"
        self.bench.ensure_cert(name)
        node = Node(self, name, free_ports(3))
        self.nodes.append(node)
        return node

    def joins_for(self, node, among=None):
        among = among if among is not None else self.nodes
        return [n.bind for n in among if n is not node]

    def start(self, timeout=30.0):
        for n in self.nodes:
            n.start(self.joins_for(n))
        self.wait_healthy(self.nodes, timeout)
        self.wait_all_alive(self.nodes, timeout)

    def wait_healthy(self, nodes, timeout):
        deadline = time.monotonic() + timeout
        for n in nodes:
            while n.health() is None:
                if not n.alive():
                    raise RuntimeError(f"{self.label}: {n.name} exited (code {n.proc.returncode}); see {n.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.label}: {n.name} did not answer /health within {timeout:.0f} s")
                time.sleep(0.05)

    def wait_all_alive(self, nodes, timeout):
        """Every node in `nodes` lists every node in `nodes` with Status 1."""
        names = {n.name for n in nodes}
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            for n in nodes:
                m = n.members()
                if m is None or any(m.get(x) != 1 for x in names):
                    ok = False
                    break
            if ok:
                return time.monotonic()
            if time.monotonic() > deadline:
                views = {n.name: n.members() for n in nodes}
                raise RuntimeError(f"{self.label}: members not all alive after {timeout:.0f} s: {views}")
            time.sleep(0.05)

    def wait_instances(self, nodes, count, timeout):
        """Waits until every node's /health reports `count` instances; returns {name: seconds}."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        done = {}
        last = {}
        while len(done) < len(nodes):
            for n in nodes:
                if n.name in done:
                    continue
                h = n.health()
                if h is not None:
                    last[n.name] = h.get("instances")
                    if h.get("instances") == count:
                        done[n.name] = time.monotonic() - t0
            if len(done) == len(nodes):
                break
            if time.monotonic() > deadline:
                return done, last
            time.sleep(0.05)
        return done, last

    def stop(self):
        codes = {}
        # stop all at once (each by its PID), then collect
        for n in self.nodes:
            if n.alive():
                try:
                    os.kill(n.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for n in self.nodes:
            codes[n.name] = n.stop(timeout=6.0)
        return codes

    def log_summary(self):
        """{node: (count, {normalised line: count})} of lines with 'error' or 'warning'."""
        out = {}
        rx = re.compile(r"error|warn", re.I)
        for n in self.nodes:
            lines = {}
            total = 0
            try:
                with open(n.log_path, errors="replace") as f:
                    for line in f:
                        if line.startswith("===== start"):
                            continue
                        if rx.search(line):
                            total += 1
                            key = normalise_log_line(line.strip())
                            lines[key] = lines.get(key, 0) + 1
            except OSError:
                pass
            out[n.name] = (total, lines)
        return out


def normalise_log_line(line):
    line = re.sub(r"^\S*\d{4}-\d\d-\d\dT\S+\s*", "", line)  # leading timestamp
    line = re.sub(r"\b\d+\.\d+\.\d+\.\d+:\d+\b", "ADDR", line)
    line = re.sub(r"\b[0-9a-f]{8,}\b", "HEX", line)
    line = re.sub(r"\d+", "N", line)
    return line[:300]


# --------------------------------------------------------------------------------------------
# workload helpers


def register_body(i, prefix, kind="minimal"):
    body = {"Name": f"{prefix}-svc-{i % 100}", "ID": f"{prefix}-{i}", "Port": 10000 + (i % 50000)}
    if kind == "typical":
        body["Address"] = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        body["Tags"] = ["v1", "http", f"zone-{'abc'[i % 3]}"]
        body["Meta"] = {"version": f"1.{i % 7}.{i % 13}", "team": ["payments", "search", "identity"][i % 3],
                        "commit": f"{(i * 2654435761) & 0xffffffff:08x}"}
    return json.dumps(body).encode()


def register_many(hostport, count, prefix, threads=16, timeout=600.0, kind="minimal"):
    """Registers `count` new instances at one node from `threads` keep-alive connections.
    Returns (seconds, errors, first error text)."""
    next_i = [0]
    lock = threading.Lock()
    errors = [0]
    first_error = [None]
    deadline = time.monotonic() + timeout

    def worker():
        h = Http(hostport, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next_i[0]
                    if i >= count:
                        return
                    next_i[0] += 1
                body = register_body(i, prefix, kind)
                ok = False
                for _ in range(3):
                    try:
                        status, data = h.request("PUT", "/v1/agent/service/register", body)
                    except Exception as e:  # connection trouble: retry on a new connection
                        status, data = None, str(e).encode()
                    if status == 200:
                        ok = True
                        break
                if not ok:
                    with lock:
                        errors[0] += 1
                        if first_error[0] is None:
                            first_error[0] = f"{status}: {data[:200]!r}"
        finally:
            h.close()

    elapsed = run_threads(worker, threads, deadline)
    if next_i[0] < count:
        errors[0] += count - next_i[0]
        first_error[0] = first_error[0] or f"only {next_i[0]} of {count} sent within {timeout:.0f} s"
    return elapsed, errors[0], first_error[0]


# --------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        os.makedirs(os.path.join(REPO, ".run"), exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="bench-cluster-", dir=os.path.join(REPO, ".run"))
        self.certs = os.path.join(self.work, "certs")
        os.makedirs(self.certs)
        subprocess.run([self.bin, "tls", "ca", "create", "--dir", self.certs], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        self.clusters = []
        self.md = []           # markdown of the sections
        self.problems = []     # notable findings, also printed at the end
        self.logs = {}         # section -> log summary

    def ensure_cert(self, name):
        if not os.path.exists(os.path.join(self.certs, f"{name}.pem")):
            subprocess.run([self.bin, "tls", "cert", "create", "--dir", self.certs, "--node", name],
                           check=True, stdout=subprocess.DEVNULL, timeout=60)

    def cluster(self, label, size):
        c = Cluster(self, label, size)
        self.clusters.append(c)
        log(f"{label}: starting {size} nodes in {c.dir}")
        c.start()
        log(f"{label}: {size} nodes up and alive everywhere")
        return c

    def finish_cluster(self, section, c):
        codes = c.stop()
        killed = {n.name for n in c.nodes if n.killed}
        bad = {k: v for k, v in codes.items() if v != 0 and k not in killed}
        if bad:
            self.problems.append(f"{section} ({c.label}): graceful stop (SIGTERM) exit codes not 0: {bad} "
                                 "(None = still running after 6 s, killed)")
        self.logs.setdefault(section, []).append((c.label, c.log_summary()))
        if self.args.logs_dir:
            dst = os.path.join(self.args.logs_dir, c.label)
            os.makedirs(dst, exist_ok=True)
            for n in c.nodes:
                if os.path.exists(n.log_path):
                    shutil.copy(n.log_path, os.path.join(dst, f"{n.name}.log"))
        if not self.args.keep:
            shutil.rmtree(c.dir, ignore_errors=True)

    def stop_everything(self):
        for c in self.clusters:
            for n in c.nodes:
                if n.alive():
                    try:
                        n.stop(timeout=5)
                    except Exception:
                        pass

    # ---------------------------------------------------------------- 1. propagation

    def propagation(self):
        out = ["### 1. Replication latency (propagation)", ""]
        writes = self.args.writes
        out.append(f"{writes:,} sequential writes at n1 (`PUT /v1/agent/service/register`, a new ID each, one "
                   "keep-alive connection). For each write: the time from n1's 200 answer until "
                   "`GET /registry/instance/ID` answers 200 at **every** other node. One poller thread "
                   "per other node, each on its own keep-alive connection, starts polling in a tight loop as "
                   "soon as the 200 arrives; a node's time is the arrival of its first 200 answer, so "
                   "each figure is an upper bound, too high by at most one polling round trip.")
        out.append("")
        rows = []
        all_ok = True
        for size in (3, 5):
            c = self.cluster(f"propagation-{size}", size)
            try:
                res = self._propagation_run(c, writes)
                res["watch"] = self._propagation_watch_run(c, writes) if self.args.watch_check else None
            finally:
                self.finish_cluster("propagation", c)
            rows.append((size, res))
            if res["timeouts"] or res["p99"] > 0.050:
                all_ok = False
        out.append("| nodes | method | writes | p50 | p90 | p99 | max | > 50 ms | not seen within 5 s | polling round trip, median (p99) | n1 write latency p50 / p99 |")
        out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, r in rows:
            out.append(f"| {size} | polling | {r['n']:,} | {fmt_ms(r['p50'])} | {fmt_ms(r['p90'])} | **{fmt_ms(r['p99'])}** | "
                       f"{fmt_ms(r['max'])} | {r['slow']} | {r['timeouts']} | {fmt_ms(r['gran_p50'])} ({fmt_ms(r['gran_p99'])}) | "
                       f"{fmt_ms(r['w50'])} / {fmt_ms(r['w99'])} |")
            wr = r.get("watch")
            if wr:
                out.append(f"| {size} | watch stream | {wr['n']:,} | {fmt_ms(wr['p50'])} | {fmt_ms(wr['p90'])} | "
                           f"{fmt_ms(wr['p99'])} | {fmt_ms(wr['max'])} | {wr['slow']} | {wr['timeouts']} | no polling |  |")
        out.append("")
        if any(r.get("watch") for _, r in rows):
            out.append("*watch stream* is a cross-check on the same cluster right after the polling run: the same "
                       "number of new writes at n1, but instead of polling, one `GET /registry/watch` event stream "
                       "is held open at every other node and a node's time is the arrival of the event for the ID. "
                       "The polling clients compete with the nodes for the same cores (tight loops in Python), "
                       "so where the two methods differ, the watch figure is closer to Roster's own latency and "
                       "the polling figure includes the benchmark's interference.")
            out.append("")
        out.append(f"Target: p99 ≤ 50 ms, measured by polling as specified: {verdict(all_ok)}: "
                   + ", ".join(f"{s} nodes p99 {fmt_ms(r['p99'])}" for s, r in rows) + "."
                   + ("" if not all(r.get("watch") for _, r in rows) else
                      " With the watch stream: " + ", ".join(
                          f"{s} nodes p99 {fmt_ms(r['watch']['p99'])} ({verdict(not r['watch']['timeouts'] and r['watch']['p99'] <= 0.050)})"
                          for s, r in rows) + "."))
        for size, r in rows:
            if r["per_node_p99"]:
                out.append(f"- {size} nodes, p99 per receiving node: "
                           + ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(r["per_node_p99"].items())) + ".")
            if r["slow"]:
                out.append(f"- {size} nodes: {r['slow']} of {r['n']} writes took over 50 ms to reach every node; "
                           "the slowest (write number: time): "
                           + ", ".join(f"#{i}: {fmt_ms(t)}" for t, i in r["slowest"]) + ".")
            if r["errors"]:
                out.append(f"- {size} nodes: {r['errors']} write(s) failed at n1: {r['first_error']}")
        out.append("")
        return out

    def _propagation_watch_run(self, c, writes):
        """The same measurement without polling: a `/registry/watch` event stream at every other
        node; a node's time is the arrival of the event for the ID. No client load on the nodes
        between writes, so this separates Roster's own latency from the cost of polling."""
        writer, others = c.nodes[0], c.nodes[1:]
        seen = {}
        cond = threading.Condition()
        socks = []
        ready = threading.Semaphore(0)

        def watcher(node):
            try:
                s = socket.create_connection(("127.0.0.1", node.http_port), timeout=None)
                socks.append(s)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(b"GET /registry/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                f = s.makefile("rb")
                signalled = False
                for line in f:
                    if not signalled and line.startswith(b": watching"):
                        ready.release()
                        signalled = True
                    if line.startswith(b"data: "):
                        t = time.perf_counter()
                        try:
                            iid = json.loads(line[6:]).get("instance_id")
                        except ValueError:
                            continue
                        with cond:
                            seen.setdefault(iid, {})[node.name] = t
                            cond.notify_all()
            except OSError:
                pass
            finally:
                if not signalled:
                    ready.release()

        threads = [threading.Thread(target=watcher, args=(n,), daemon=True) for n in others]
        for t in threads:
            t.start()
        for _ in others:
            ready.acquire(timeout=10)
        w = Http(writer.http, timeout=10)
        lat, timeouts = [], 0
        deadline = time.monotonic() + self.args.propagation_budget
        try:
            for i in range(writes):
                if time.monotonic() > deadline:
                    break
                iid = f"watch{len(c.nodes)}-{i}"
                body = json.dumps({"Name": f"watch-svc-{i % 10}", "ID": iid, "Port": 30000 + i}).encode()
                try:
                    status, _ = w.request("PUT", "/v1/agent/service/register", body)
                except Exception:
                    status = None
                t0 = time.perf_counter()
                if status != 200:
                    continue
                with cond:
                    ok = cond.wait_for(lambda: len(seen.get(iid, {})) == len(others), timeout=5)
                    got = dict(seen.get(iid, {}))
                if ok:
                    lat.append(max(got.values()) - t0)
                else:
                    timeouts += 1
        finally:
            w.close()
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            for t in threads:
                t.join(5)
        res = {"n": len(lat) + timeouts, "timeouts": timeouts, "p50": pct(lat, 50), "p90": pct(lat, 90),
               "p99": pct(lat, 99), "max": max(lat) if lat else float("nan"), "slow": sum(x > 0.050 for x in lat)}
        log(f"{c.label} (watch): p50 {fmt_ms(res['p50'])} p99 {fmt_ms(res['p99'])} max {fmt_ms(res['max'])} "
            f"timeouts {timeouts}")
        if timeouts:
            self.problems.append(f"propagation ({c.label}, watch): {timeouts} write(s) without a watch event at every "
                                 "node within 5 s")
        return res

    def _propagation_run(self, c, writes):
        writer = c.nodes[0]
        others = c.nodes[1:]
        jobs = {n.name: queue.Queue() for n in others}
        results = queue.Queue()
        gran = []  # per-poll round trips, seconds (sampled)
        gran_lock = threading.Lock()
        timeout = 5.0

        def poller(node):
            h = Http(node.http, timeout=5)
            local_gran = []
            try:
                while True:
                    job = jobs[node.name].get()
                    if job is None:
                        return
                    iid, t0 = job
                    path = f"/registry/instance/{iid}"
                    seen = None
                    prev = time.perf_counter()
                    while True:
                        try:
                            status, _ = h.request("GET", path)
                        except Exception:
                            status = None
                        now = time.perf_counter()
                        if len(local_gran) < 200000:
                            local_gran.append(now - prev)
                        prev = now
                        if status == 200:
                            seen = now - t0
                            break
                        if now - t0 > timeout:
                            break
                    results.put((node.name, iid, seen))
            finally:
                h.close()
                with gran_lock:
                    gran.extend(local_gran)

        threads = [threading.Thread(target=poller, args=(n,), daemon=True) for n in others]
        for t in threads:
            t.start()
        w = Http(writer.http, timeout=10)
        lat_all, lat_idx, per_node, write_lat = [], [], {n.name: [] for n in others}, []
        timeouts = errors = slow = 0
        first_error = None
        deadline = time.monotonic() + self.args.propagation_budget
        n_done = 0
        try:
            for i in range(writes):
                if time.monotonic() > deadline:
                    log(f"{c.label}: time budget spent after {i} writes")
                    break
                iid = f"prop{len(c.nodes)}-{i}"
                body = json.dumps({"Name": f"prop-svc-{i % 10}", "ID": iid, "Port": 20000 + i}).encode()
                ts = time.perf_counter()
                try:
                    status, data = w.request("PUT", "/v1/agent/service/register", body)
                except Exception as e:
                    status, data = None, str(e).encode()
                t0 = time.perf_counter()
                if status != 200:
                    errors += 1
                    first_error = first_error or f"{status}: {data[:200]!r}"
                    continue
                write_lat.append(t0 - ts)
                for n in others:
                    jobs[n.name].put((iid, t0))
                worst = 0.0
                missing = False
                for _ in others:
                    name, _iid, seen = results.get(timeout=timeout + 10)
                    if seen is None:
                        missing = True
                    else:
                        per_node[name].append(seen)
                        worst = max(worst, seen)
                n_done += 1
                if missing:
                    timeouts += 1
                    continue
                lat_all.append(worst)
                lat_idx.append((worst, i))
                if worst > 0.050:
                    slow += 1
        finally:
            for n in others:
                jobs[n.name].put(None)
            for t in threads:
                t.join(10)
            w.close()
        gran_s = gran[len(others):] if len(gran) > len(others) else gran
        # The first poll of each write measures the hand-off from the writer, not polling; keep all
        # polls anyway: most writes need several.
        res = {
            "n": n_done, "timeouts": timeouts, "errors": errors, "first_error": first_error, "slow": slow,
            "p50": pct(lat_all, 50), "p90": pct(lat_all, 90), "p99": pct(lat_all, 99),
            "max": max(lat_all) if lat_all else float("nan"),
            "gran_p50": pct(gran_s, 50) if gran_s else float("nan"),
            "gran_p99": pct(gran_s, 99) if gran_s else float("nan"),
            "w50": pct(write_lat, 50), "w99": pct(write_lat, 99),
            "per_node_p99": {k: pct(v, 99) for k, v in per_node.items() if v},
            "slowest": sorted(lat_idx, reverse=True)[:5],
        }
        log(f"{c.label}: p50 {fmt_ms(res['p50'])} p99 {fmt_ms(res['p99'])} max {fmt_ms(res['max'])} "
            f"timeouts {timeouts} polling {fmt_ms(res['gran_p50'])}")
        if timeouts:
            self.problems.append(f"propagation ({c.label}): {timeouts} write(s) not visible at every node within 5 s")
        if errors:
            self.problems.append(f"propagation ({c.label}): {errors} register(s) failed at n1: {first_error}")
        return res

    # ---------------------------------------------------------------- 2. idle

    def idle(self):
        out = ["### 2. Idle gossip traffic", ""]
        count = self.args.idle_instances
        window = self.args.idle_window
        c = self.cluster("idle", 3)
        try:
            n1 = c.nodes[0]
            secs, errs, first = register_many(n1.http, count, "idle", threads=16, timeout=300)
            log(f"idle: registered {count:,} at n1 in {secs:.1f} s ({count / secs:,.0f}/s), {errs} errors")
            if errs:
                self.problems.append(f"idle: {errs} registration(s) failed: {first}")
            done, last = c.wait_instances(c.nodes, count, timeout=120)
            converged = len(done) == len(c.nodes)
            if not converged:
                self.problems.append(f"idle: not every node reached {count:,} instances within 120 s: {last}")
            log(f"idle: converged {done}; waiting 3 s, then sampling for {window} s")
            time.sleep(3)
            samples = {n.name: [] for n in c.nodes}  # (t, sent wire, sent payload, recv wire)
            t_end = time.monotonic() + window
            next_t = time.monotonic()
            while True:
                now = time.monotonic()
                for n in c.nodes:
                    g = gossip_bytes(n.http)
                    if g is not None:
                        samples[n.name].append((time.monotonic(), g.get(("sent", "wire")), g.get(("sent", "payload")),
                                                g.get(("received", "wire"))))
                if now >= t_end:
                    break
                next_t += 1.0
                time.sleep(max(0.0, next_t - time.monotonic()))
            rows = []
            worst_mean = 0.0
            for n in c.nodes:
                s = [x for x in samples[n.name] if x[1] is not None]
                if len(s) < 2:
                    rows.append((n.name, None, None, None, None))
                    continue
                dur = s[-1][0] - s[0][0]
                mean = (s[-1][1] - s[0][1]) / dur
                mean_payload = (s[-1][2] - s[0][2]) / dur if s[0][2] is not None else None
                mean_recv = (s[-1][3] - s[0][3]) / dur if s[0][3] is not None else None
                per_sec = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(s, s[1:]) if b[0] > a[0]]
                rows.append((n.name, mean, max(per_sec), mean_payload, mean_recv))
                worst_mean = max(worst_mean, mean)
            ok = converged and all(r[1] is not None and r[1] <= 2048 for r in rows)
        finally:
            self.finish_cluster("idle", c)
        out.append(f"3 nodes; {count:,} instances registered at n1 ({count / secs:,.0f} registrations/s from 16 "
                   f"keep-alive connections), every node's `/health` showing {count:,}, then 3 s of rest, then "
                   f"`roster_gossip_bytes_sent{{stage=\"wire\"}}` of every node read once a second for {window} s. "
                   "No health checks, no writes, no reads other than `/metrics` during the window.")
        out.append("")
        out.append("| node | sent, wire: mean | sent, wire: max 1-s interval | sent, payload (before LZ4): mean | received, wire: mean |")
        out.append("|---|---:|---:|---:|---:|")
        for name, mean, mx, mp, mr in rows:
            f = lambda v: "n/a" if v is None else f"{v:,.0f} B/s"
            out.append(f"| {name} | {f(mean)} | {f(mx)} | {f(mp)} | {f(mr)} |")
        out.append("")
        out.append(f"Target: ≤ 2 KB/s per node: {verdict(ok)} (highest node mean {worst_mean:,.0f} B/s). "
                   "These figures are the node's own frames after LZ4 and framing, *before* TLS: each TLS "
                   "record adds about 22 to 29 bytes (header, AEAD tag, and for TLS 1.3 the content type byte), "
                   "plus TCP/IP headers, so the bytes on the network are somewhat higher, most of all for "
                   "small frames such as pings and digests.")
        out.append("")
        return out

    # ---------------------------------------------------------------- 3. bootstrap

    def bootstrap(self):
        out = ["### 3. Bootstrap of a fresh node", ""]
        count = self.args.bootstrap_instances
        kinds = self.args.bootstrap_kinds
        results = []
        for kind in kinds:
            results.append((kind, self._bootstrap_run(kind, count)))
        desc = {
            "minimal": "`{\"Name\", \"ID\", \"Port\"}` only (service `boot-svc-0..99`, ID `boot-N`)",
            "typical": "what a real client sends: `Name`, `ID`, a distinct `Address` (10.x.y.z), `Port`, "
                       "3 `Tags` and 3 `Meta` keys",
        }
        out.append(f"3 nodes; {count:,} instances registered at n1 from {self.args.reg_threads} concurrent "
                   "keep-alive connections (each answer fsync'd at n1 before it is sent); then a **fresh n4** "
                   "(empty data dir, `--join` n1, n2, n3) is started, and the time is measured from its process "
                   "start (`Popen`) until its `/health` shows every instance, polled every ~5 ms. Registration "
                   "bodies, one fresh cluster each:")
        out.append("")
        for kind, _ in results:
            out.append(f"- **{kind}**: {desc.get(kind, kind)}.")
        out.append("")
        head = "| measure | " + " | ".join(k for k, _ in results) + " | target |"
        out.append(head)
        out.append("|---|" + "---:|" * len(results) + "---|")

        def row(label, f, target=""):
            out.append(f"| {label} | " + " | ".join(f(r) for _, r in results) + f" | {target} |")

        row("registration rate at n1", lambda r: f"{count / r['reg_secs']:,.0f}/s ({r['reg_secs']:.1f} s)"
            + (f", {r['reg_errs']} failed" if r["reg_errs"] else ""))
        row("n2, n3 hold all after the last answer", lambda r: ", ".join(
            f"{v:.2f} s" for _k, v in sorted(r.get("catchup", {}).items()) if _k != "n1") or "not reached")
        row("n4 answers `/health`", lambda r: "never" if r.get("first_answer") is None else f"{r['first_answer']:.2f} s")
        row("n4 slowest `/health` answer while bootstrapping", lambda r: fmt_ms(r.get("slowest_health")))
        row(f"**n4 holds {count:,} instances**",
            lambda r: "**not reached**" if r.get("reached") is None else f"**{r['reached']:.2f} s**",
            "≤ 3 s: " + verdict(all(r.get("reached") is not None and r["reached"] <= 3.0 for _, r in results)))
        row("n4 gossip bytes received, payload (without LZ4)", lambda r: fmt_bytes(r["recv_payload"]))
        row("n4 gossip bytes received, wire (LZ4 + framing, before TLS)", lambda r: fmt_bytes(r["recv_wire"]))
        row("**ratio payload / wire**", lambda r: "n/a" if r["ratio"] is None else f"**{r['ratio']:.2f}×**",
            "≥ 3×: " + ", ".join(f"{k} {verdict(r['ratio'] is not None and r['ratio'] >= 3.0)}" for k, r in results))
        row("payload per instance", lambda r: "n/a" if not r["recv_payload"] else f"{r['recv_payload'] / count:.0f} B")
        row("payload sent by n1, n2, n3 while n4 bootstrapped", lambda r: ", ".join(
            fmt_bytes(v) for _k, v in sorted((r.get("peer_sent") or {}).items())) or "n/a")
        names = sorted({n for _, r in results for n in r.get("rss", {})})
        for name in names:
            row(f"RSS of {name} (VmRSS)", lambda r, name=name: fmt_bytes(r["rss"][name] * 1024) if r.get("rss", {}).get(name) else "n/a")
        row("data dir size per node", lambda r: fmt_bytes(max(r.get("data_du", {}).values() or [0])))
        row("instances at n1..n4 at the end", lambda r: ", ".join(
            "?" if v is None else f"{v:,}" for _k, v in sorted(r.get("health", {}).items())))
        out.append("")
        out.append("One copy of the state is roughly the data dir size; when n4 receives much more payload than "
                   "that, the same records reached it from more than one peer (see the payload sent by n1..n3 "
                   "in the same window, which is almost all traffic to n4). RSS is read from `/proc/PID/status` "
                   "once n4 holds every instance. n4's instance count after its start:")
        out.append("")
        for kind, r in results:
            tl = r.get("timeline") or []
            if tl:
                out.append(f"- {kind}: " + ", ".join(f"{t:.2f} s: {n:,}" for t, n in thin_timeline(tl, 12)) + ".")
        out.append("")
        return out

    def _bootstrap_run(self, kind, count):
        c = self.cluster(f"bootstrap-{kind}", 3)
        res = {"reg_secs": float("nan"), "reg_errs": 0, "recv_payload": None, "recv_wire": None, "ratio": None}
        try:
            n1, n2, n3 = c.nodes
            log(f"bootstrap-{kind}: registering {count:,} instances at n1")
            secs, errs, first = register_many(n1.http, count, "boot", threads=self.args.reg_threads, timeout=300,
                                              kind=kind)
            res["reg_secs"], res["reg_errs"] = secs, errs
            log(f"bootstrap-{kind}: {count:,} in {secs:.1f} s ({count / secs:,.0f}/s), {errs} errors")
            if errs:
                self.problems.append(f"bootstrap-{kind}: {errs} registration(s) failed: {first}")
            done, last = c.wait_instances([n1, n2, n3], count, timeout=120)
            res["catchup"] = done
            if len(done) < 3:
                self.problems.append(f"bootstrap-{kind}: n1..n3 did not all reach {count:,} within 120 s after the "
                                     f"registrations: last /health counts {last}")
                log(f"bootstrap-{kind}: n1..n3 did not converge: {last}")
            log(f"bootstrap-{kind}: n1..n3 hold {last}; starting fresh n4")
            before = {n.name: (gossip_bytes(n.http) or {}).get(("sent", "payload")) for n in (n1, n2, n3)}
            n4 = c.add_node()
            t_start = n4.start([n.bind for n in (n1, n2, n3)])
            first_answer = None
            timeline = []  # (seconds since start, instances)
            reached = None
            deadline = t_start + self.args.bootstrap_timeout
            h = Http(n4.http, timeout=5)
            last_tl = -1.0
            slowest_health = 0.0
            while time.monotonic() < deadline:
                try:
                    asked = time.monotonic()
                    status, data = h.request("GET", "/health")
                    now = time.monotonic()
                    if first_answer is not None:
                        slowest_health = max(slowest_health, now - asked)
                    inst = json.loads(data).get("instances") if status == 200 else None
                except Exception:
                    h.close()
                    now, inst = time.monotonic(), None
                if inst is not None:
                    if first_answer is None:
                        first_answer = now - t_start
                    if now - t_start - last_tl >= 0.2:
                        timeline.append((now - t_start, inst))
                        last_tl = now - t_start
                    if inst == count:
                        reached = now - t_start
                        timeline.append((reached, inst))
                        break
                if not n4.alive():
                    self.problems.append(f"bootstrap-{kind}: n4 exited with code {n4.proc.returncode} while bootstrapping")
                    break
                time.sleep(0.005)
            h.close()
            res["first_answer"], res["reached"], res["timeline"] = first_answer, reached, timeline
            res["slowest_health"] = slowest_health
            if reached is None:
                self.problems.append(f"bootstrap-{kind}: n4 did not reach {count:,} instances within "
                                     f"{self.args.bootstrap_timeout:.0f} s of its start; count over time: "
                                     + ", ".join(f"{t:.1f}s:{n}" for t, n in thin_timeline(timeline, 15)))
            log(f"bootstrap-{kind}: n4 reached {count:,} after {reached} s")
            res["rss"] = {n.name: rss_kib(n.proc.pid) for n in c.nodes}
            time.sleep(1.5)  # the byte counters are sampled into the metrics periodically
            g4 = gossip_bytes(n4.http) or {}
            after = {n.name: (gossip_bytes(n.http) or {}).get(("sent", "payload")) for n in (n1, n2, n3)}
            res["peer_sent"] = {k: (after[k] - before[k]) if after.get(k) is not None and before.get(k) is not None
                                else None for k in before}
            res["recv_payload"], res["recv_wire"] = g4.get(("received", "payload")), g4.get(("received", "wire"))
            if res["recv_payload"] and res["recv_wire"]:
                res["ratio"] = res["recv_payload"] / res["recv_wire"]
            res["health"] = {n.name: (n.health() or {}).get("instances") for n in c.nodes}
            res["data_du"] = {n.name: du_bytes(n.data_dir) for n in c.nodes}
            bad = {k: v for k, v in res["health"].items() if v != count}
            if bad:
                self.problems.append(f"bootstrap-{kind}: at the end, nodes not holding {count:,}: {bad}")
        finally:
            self.finish_cluster("bootstrap", c)
        return res

    # ---------------------------------------------------------------- 4. failure

    def failure(self):
        out = ["### 4. Failure detection", ""]
        rounds = self.args.failure_rounds
        c = self.cluster("failure", 3)
        times, notes = [], []
        rejoin = []
        try:
            n1, n2, n3 = c.nodes
            for r in range(rounds):
                # Poll n1 and n2 concurrently; each records when it first shows n3 as 4.
                seen = {}
                stop = threading.Event()
                t_kill = [None]
                first_other = {}

                def watch(node):
                    h = Http(node.http, timeout=2)
                    try:
                        while not stop.is_set():
                            try:
                                status, data = h.request("GET", "/v1/agent/members")
                                now = time.monotonic()
                                m = {x.get("Name"): x.get("Status") for x in json.loads(data)} if status == 200 else {}
                            except Exception:
                                now, m = time.monotonic(), {}
                            if t_kill[0] is not None:
                                st = m.get("n3")
                                if st not in (1, None) and node.name not in first_other:
                                    first_other[node.name] = (st, now - t_kill[0])
                                if st == 4:
                                    seen[node.name] = now - t_kill[0]
                                    return
                            time.sleep(0.01)
                    finally:
                        h.close()

                ws = [threading.Thread(target=watch, args=(n,), daemon=True) for n in (n1, n2)]
                for w in ws:
                    w.start()
                time.sleep(0.3)
                t_kill[0] = time.monotonic()
                n3.kill9()
                deadline = time.monotonic() + self.args.failure_timeout
                for w in ws:
                    w.join(max(0.0, deadline - time.monotonic()))
                stop.set()
                for w in ws:
                    w.join(3)
                if len(seen) == 2:
                    t = max(seen.values())
                    times.append(t)
                    log(f"failure round {r + 1}: n1 {seen['n1']:.2f} s, n2 {seen['n2']:.2f} s")
                    notes.append((r + 1, seen.get("n1"), seen.get("n2"), t, first_other))
                else:
                    log(f"failure round {r + 1}: not failed everywhere within {self.args.failure_timeout} s: {seen}")
                    notes.append((r + 1, seen.get("n1"), seen.get("n2"), None, first_other))
                    self.problems.append(f"failure: round {r + 1}: n3 not Status 4 at both n1 and n2 within "
                                         f"{self.args.failure_timeout:.0f} s of kill -9 (seen: {seen}, members now: "
                                         f"n1 {n1.members()}, n2 {n2.members()})")
                if r + 1 < rounds:
                    t0 = time.monotonic()
                    n3.start(c.joins_for(n3))
                    try:
                        c.wait_healthy([n3], 30)
                        c.wait_all_alive(c.nodes, 30)
                        rejoin.append(time.monotonic() - t0)
                    except RuntimeError as e:
                        self.problems.append(f"failure: restarted n3 did not rejoin: {e}")
                        rejoin.append(None)
                        break
                    time.sleep(1.0)
        finally:
            self.finish_cluster("failure", c)
        out.append(f"3 nodes; `kill -9` of n3, then `GET /v1/agent/members` polled at n1 and n2 concurrently "
                   "(every ~10 ms) until both show n3 with Status 4 (failed). n3 is then restarted on the same "
                   "data dir and ports, and the next round starts once all three see each other alive.")
        out.append("")
        out.append("| round | n1 sees failed | n2 sees failed | both | first non-alive state seen (n1 / n2) |")
        out.append("|---:|---:|---:|---:|---|")
        status_name = {1: "alive", 2: "leaving", 3: "left", 4: "failed"}
        for rnd, a, b, t, fo in notes:
            f = lambda v: "—" if v is None else f"{v:.2f} s"
            desc = " / ".join(
                (f"{status_name.get(fo[k][0], fo[k][0])} at {fo[k][1]:.2f} s" if k in fo else "—") for k in ("n1", "n2"))
            out.append(f"| {rnd} | {f(a)} | {f(b)} | {f(t)} | {desc} |")
        out.append("")
        ok = len(times) == rounds and max(times) <= 5.0
        mx = f"{max(times):.2f} s" if times else "n/a"
        out.append(f"Max {mx} over {len(times)} of {rounds} rounds; target ≤ 5 s: {verdict(ok)}."
                   + (f" Restarted n3 seen alive by all three after: "
                      + ", ".join("n/a" if x is None else f"{x:.1f} s" for x in rejoin) + "." if rejoin else ""))
        out.append("")
        return out


def thin_timeline(tl, k):
    if len(tl) <= k:
        return tl
    step = (len(tl) - 1) / (k - 1)
    idx = sorted({int(round(i * step)) for i in range(k)})
    return [tl[i] for i in idx]


def du_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def machine_info(work):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1048576:.0f} GiB"
    except OSError:
        pass
    fs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True, text=True).stdout.strip() or "?"
    return cpu, mem, fs


def git(*a, where=REPO):
    try:
        return subprocess.run(["git", "-C", where, *a], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def binary_origin(path):
    """(worktree, short commit, dirty) of the git checkout the binary sits in, if any."""
    d = os.path.dirname(os.path.realpath(path))
    top = git("rev-parse", "--show-toplevel", where=d)
    if not top:
        return None
    return top, git("rev-parse", "--short", "HEAD", where=d), bool(git("status", "--porcelain", "--untracked-files=no", where=d))


def try_get_json(hostport, path, timeout=2.0):
    h = Http(hostport, timeout=timeout)
    try:
        return h.get_json(path)
    except Exception:
        return None
    finally:
        h.close()


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

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    cpu, mem, fs = machine_info(bench.work)
    origin = binary_origin(args.bin)
    if origin:
        btop, brev, bdirty = origin
        bin_note = (f"The binary `{args.bin}` was built from commit `{brev}`{' with uncommitted changes' if bdirty else ''}"
                    f" (checkout `{btop}`)" + ("." if brev == rev else f"; **the repository's HEAD is `{rev}`**."))
    else:
        bin_note = f"The binary `{args.bin}` is outside a git checkout; its commit is unknown."
    md = ["## Cluster benchmarks", ""]
    md.append(f"Written by `scripts/bench-cluster.sh` (`bench/cluster_bench.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"repository HEAD `{rev}`; sections: {', '.join(sections)}; "
              f"whole run {total:.0f} s.")
    md.append(f"Release build, every node a separate `roster agent` process on loopback with mutual TLS between "
              f"peers, `--log-level {args.log_level}`, data dirs on the real disk ({fs}). The nodes and the "
              f"Python load generator share **{os.cpu_count()} cores** (`nproc` = {nproc()}; {cpu}, {mem}), "
              "so these figures are pessimistic compared with one node per machine. " + bin_note)
    md.append("")
    md += body
    # log summary
    md.append("### Node logs")
    md.append("")
    md.append("Lines containing `error` or `warn` (case-insensitive) in every node's log, at "
              f"`--log-level {args.log_level}`, per section:")
    md.append("")
    any_lines = False
    for s in sections:
        for label, summary in bench.logs.get(s, []):
            parts = [f"{n} {cnt}" for n, (cnt, _l) in sorted(summary.items())]
            md.append(f"- {label}: " + ", ".join(parts) + ".")
            merged = {}
            for n, (cnt, lines) in summary.items():
                for k, v in lines.items():
                    merged.setdefault(k, [0, set()])
                    merged[k][0] += v
                    merged[k][1].add(n)
            for k, (v, ns) in sorted(merged.items(), key=lambda x: -x[1][0])[:6]:
                any_lines = True
                shown = k.replace("`", "'")
                md.append(f"  - {v}× ({', '.join(sorted(ns))}): `{shown}`")
    if not any_lines:
        md.append("")
        md.append("None.")
    md.append("")
    if bench.problems:
        md.append("### Problems seen")
        md.append("")
        for p in bench.problems:
            md.append(f"- {p}")
        md.append("")
    md.append("### Reproduce")
    md.append("")
    md.append("```sh")
    md.append("swift build -c release --product roster")
    only = "".join(f" --only {s}" for s in sections) if args.only else ""
    md.append(f"scripts/bench-cluster.sh{only}            # or: python3 bench/cluster_bench.py --bin .build/release/roster{only}")
    md.append("```")
    md.append("")
    md.append("Each node is started as (n1 of a 3-node cluster; certificates from `roster tls ca create --dir D` "
              "and `roster tls cert create --dir D --node nX`):")
    md.append("")
    md.append("```sh")
    md.append("roster agent --node-name n1 --data-dir DATA/n1 --http 127.0.0.1:H1 --dns 127.0.0.1:S1 \\\n"
              "  --bind 127.0.0.1:P1 --advertise 127.0.0.1:P1 --join 127.0.0.1:P2 --join 127.0.0.1:P3 \\\n"
              f"  --tls-ca D/ca.pem --tls-cert D/n1.pem --tls-key D/n1-key.pem --log-level {args.log_level}")
    md.append("```")
    md.append("")
    text = "\n".join(md)
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


def nproc():
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return str(os.cpu_count())


if __name__ == "__main__":
    sys.exit(main())
