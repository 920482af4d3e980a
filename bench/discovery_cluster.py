"""The 3-node cluster discovery_bench.py runs its sections on (its nodes are roster_cluster
nodes, started as this harness always has), and the small helpers the sections share:
formatting, registrations, DNS look-ups with dig, bounded waits, and CHILDREN, every process
to stop on exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

import roster_cluster
from benchlib import free_ports
from roster_client import try_get_json


# --------------------------------------------------------------------------------------------
# small helpers


def fmt_ms(seconds):
    """Seconds as milliseconds, finer than benchlib.fmt_ms below 10 ms, and negative ones too."""
    if seconds is None or seconds != seconds:
        return "n/a"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if abs(ms) < 10 else (f"{ms:.1f} ms" if abs(ms) < 100 else f"{ms:.0f} ms")


def fmt_kib(k):
    if k is None:
        return "n/a"
    return f"{k / 1024:.1f} MiB" if k >= 1024 else f"{k} KiB"


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def consul_register(http, iid, address, service="web", port=80, tags=()):
    body = json.dumps({"Name": service, "ID": iid, "Address": address, "Port": port, "Tags": list(tags)})
    status, data = http.request("PUT", "/v1/agent/service/register", body)
    if status != 200:
        raise RuntimeError(f"register {iid} -> {status}: {data[:200]!r}")


def addr_of(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}"


# --------------------------------------------------------------------------------------------
# nodes and the cluster

CHILDREN = []  # every Popen / Process we started, to be stopped by PID on exit


class Node(roster_cluster.Node):
    """A roster_cluster.Node (the same ports, data dir and command line), started without
    die_with_parent, with a log header of its own, and recorded in CHILDREN."""

    @property
    def pid(self):
        return self.proc.pid

    def start(self, joins):
        os.makedirs(self.data_dir, exist_ok=True)
        cmd = self.command(joins)
        with open(self.log_path, "ab") as logf:
            logf.write(f"===== {time.strftime('%FT%T')}: {' '.join(cmd)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        CHILDREN.append(self.proc)


class Cluster:
    """`size` nodes with certificates of their own, every node joining every other."""

    def __init__(self, args, work, size=3):
        self.bin = args.bin
        self.log_level = args.log_level
        self.dir = tempfile.mkdtemp(prefix="discovery-", dir=work)
        self.certs = os.path.join(self.dir, "certs")
        self.make_certs(size)
        ports = free_ports(3 * size)
        self.nodes = [Node(self, f"n{i + 1}", ports[3 * i:3 * i + 3]) for i in range(size)]

    def make_certs(self, size):
        def run(*a):
            r = subprocess.run([self.bin, *a], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError(f"roster {' '.join(a)} -> {r.returncode}: {r.stdout}{r.stderr}")
        os.makedirs(self.certs, exist_ok=True)
        run("tls", "ca", "create", "--dir", self.certs)
        for i in range(size):
            run("tls", "cert", "create", "--dir", self.certs, "--node", f"n{i + 1}")

    def __getitem__(self, name):
        return next(n for n in self.nodes if n.name == name)

    def start(self, timeout=30.0):
        for n in self.nodes:
            n.start([o.bind for o in self.nodes if o is not n])
        deadline = time.monotonic() + timeout
        names = {n.name for n in self.nodes}
        while True:
            views = {}
            for n in self.nodes:
                if not n.alive():
                    raise RuntimeError(f"{n.name} exited with {n.proc.returncode}; see {n.log_path}")
                got = try_get_json(n.http, "/v1/agent/members")
                views[n.name] = {m.get("Name"): m.get("Status") for m in got} if got else None
            if all(v and all(v.get(x) == 1 for x in names) for v in views.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not form within {timeout:.0f} s: {views}")
            time.sleep(0.05)

    def stop(self):
        return roster_cluster.stop_nodes(self.nodes)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def dig_a(node, name, extra=()):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(node.dns_port), "+short", "+time=2", "+tries=1", *extra, name],
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    return sorted(x for x in r.stdout.split() if x and not x.startswith(";"))

