"""Starting, watching and stopping real multi-node mutual-TLS Roster clusters on loopback: one
node (Node), a cluster of them (Cluster), and the per-run bookkeeping that certificates, data
dirs, node logs and problems go through (Bench). cluster_bench.py builds its sections on Bench;
etcd_bench.py and health_bench.py use it for their Roster clusters, discovery_bench.py reuses
Node and stop_nodes.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from benchlib import die_with_parent, free_ports, log, stop_process
from roster_client import try_get_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ALL_PROCS = []  # every Popen we started, so that atexit/signals can stop them by PID


class Node:
    """One `roster agent` process of a cluster, with its ports, data dir and log."""

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
    """`size` nodes of one label, every node joining every other."""

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
        return stop_nodes(self.nodes)

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



def stop_nodes(nodes, timeout=6.0):
    """SIGTERM to every node of `nodes`, then waits for each (SIGKILL after `timeout`).
    Returns {name: exit code, or None if it had to be killed}."""
    codes = {}
    # stop all at once (each by its PID), then collect
    for n in nodes:
        if n.alive():
            try:
                os.kill(n.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for n in nodes:
        codes[n.name] = n.stop(timeout=timeout)
    return codes


class Bench:
    """One benchmark run: a work dir under .run/ with a CA, the clusters started so far, and what the
    sections found (problems, node log summaries). The sections are methods of subclasses."""

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
