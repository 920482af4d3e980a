"""The two systems of etcd_bench.py behind one interface (start/stop, pids, write, read and
register specs for wrk, watch streams, bulk load, data size): Roster, a cluster of
roster_cluster, and Etcd, a 3-member etcd cluster driven through its JSON gateway; with the
raw streaming connection both watches are read through and the registration body both store.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from benchlib import die_with_parent, du_bytes, free_ports, run_threads, stop_process
from roster_client import Http, register_body, register_many


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64(text):
    return base64.b64decode(text).decode("utf-8", "replace")


def prefix_end(prefix):
    """etcd's range_end for every key that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def instance_body(service, iid, i):
    """The Consul registration body; etcd stores the same bytes as the key's value."""
    return json.dumps({"Name": service, "ID": iid, "Address": f"10.0.{(i >> 8) & 255}.{i & 255}",
                       "Port": 8000 + i % 50000, "Tags": ["v1", "http"], "Meta": {"team": "bench"}},
                      separators=(",", ":"))


def request_json(h, method, path, obj=None):
    """One JSON request on a roster_client.Http connection; the decoded answer, or RuntimeError."""
    status, data = h.request(method, path, None if obj is None else json.dumps(obj).encode())
    if status != 200:
        raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
    return json.loads(data) if data else {}


# --------------------------------------------------------------------------------------------
# watch streams (one raw HTTP connection, read line by line)


class Stream:
    """Sends one HTTP request and hands every line of the streamed answer to `on_line`, from a
    thread of its own, until close()."""

    def __init__(self, port, request, on_line):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.sock.sendall(request)
        self.on_line = on_line
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.sock.makefile("rb"):
                self.on_line(line.strip(), time.perf_counter())
        except (OSError, ValueError):
            pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


# --------------------------------------------------------------------------------------------
# the two systems, behind one interface


class Roster:
    label = "Roster"

    def __init__(self, bench, name):
        self.bench = bench
        self.cluster = bench.cluster(name, 3)
        self.nodes = self.cluster.nodes

    def describe(self):
        return "Roster, 3 nodes, peer mTLS"

    def pids(self):
        return {n.name: n.proc.pid for n in self.nodes}

    def http(self, i):
        return Http(self.nodes[i].http, timeout=30)

    def write(self, h, service, iid, i):
        status, data = h.request("PUT", "/v1/agent/service/register", instance_body(service, iid, i).encode())
        if status != 200:
            raise RuntimeError(f"register {iid}: {status} {data[:200]!r}")

    def read_wrk(self, service):
        return "read.lua", f"http://{self.nodes[0].http}/v1/health/service/{service}", []

    def read_once(self, service):
        h = self.http(0)
        try:
            return h.request("GET", f"/v1/health/service/{service}")
        finally:
            h.close()

    def register_wrk(self, work):
        return "register.lua", f"http://{self.nodes[0].http}/v1/agent/service/register", []

    def watch(self, i, service, on_event):
        """A /registry/watch stream at node i; on_event(instance_id, t) for every change, and
        on_event(None, t) once the stream is established."""
        def on_line(line, t):
            if line.startswith(b": watching"):
                on_event(None, t)
            elif line.startswith(b"data: "):
                on_event(json.loads(line[6:]).get("instance_id"), t)
        req = f"GET /registry/watch?service={service} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        return Stream(self.nodes[i].http_port, req, on_line)

    def load(self, count, threads):
        secs, errors, first = register_many(self.nodes[0].http, count, "mem", threads=threads, timeout=600,
                                            kind="typical")
        if errors:
            raise RuntimeError(f"{errors} of {count:,} registrations failed: {first}")
        done, last = self.cluster.wait_instances(self.nodes, count, timeout=120)
        if len(done) < len(self.nodes):
            raise RuntimeError(f"not every node holds {count:,} instances after 120 s: {last}")
        return secs

    def data_bytes(self):
        return {n.name: du_bytes(n.data_dir) for n in self.nodes}

    def stop(self, section):
        self.bench.finish_cluster(section, self.cluster)


class EtcdMember:
    def __init__(self, cluster, index):
        self.cluster, self.name = cluster, f"e{index + 1}"
        self.client_port, self.peer_port = free_ports(2)
        self.url = f"127.0.0.1:{self.client_port}"
        self.data_dir = os.path.join(cluster.dir, self.name)
        self.log_path = os.path.join(cluster.dir, f"{self.name}.log")
        self.proc = None

    def peer_url(self):
        return f"{self.cluster.peer_scheme}://127.0.0.1:{self.peer_port}"

    def command(self):
        c = self.cluster
        cmd = ["etcd", "--name", self.name, "--data-dir", self.data_dir,
               "--listen-client-urls", f"http://{self.url}", "--advertise-client-urls", f"http://{self.url}",
               "--listen-peer-urls", self.peer_url(), "--initial-advertise-peer-urls", self.peer_url(),
               "--initial-cluster", ",".join(f"{m.name}={m.peer_url()}" for m in c.members),
               "--initial-cluster-token", os.path.basename(c.dir), "--initial-cluster-state", "new",
               "--logger", "zap", "--log-level", "warn"]
        if c.certs:
            cmd += ["--peer-client-cert-auth", "--peer-trusted-ca-file", os.path.join(c.certs, "ca.pem"),
                    "--peer-cert-file", os.path.join(c.certs, f"{self.name}.pem"),
                    "--peer-key-file", os.path.join(c.certs, f"{self.name}-key.pem")]
        return cmd

    def start(self):
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status(self):
        h = Http(self.url, timeout=5)
        try:
            return request_json(h, "POST", "/v3/maintenance/status", {})
        finally:
            h.close()


class Etcd:
    """A 3-member etcd cluster on loopback, driven through its JSON gateway (grpc-gateway, /v3/...)."""
    label = "etcd"

    def __init__(self, work, name, certs, size=3):
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
        self.certs, self.peer_scheme = certs, ("https" if certs else "http")
        self.members = []
        for i in range(size):
            self.members.append(EtcdMember(self, i))
        self.leases = []

    def start(self):
        """Starts every member, waits for a leader, moves leadership to member 1 and grants the
        leases that the timed writes use."""
        for m in self.members:
            m.start()
        self.wait_ready(30)
        self.make_leader(0)
        self.leases = self.grant_leases(64)  # before any timed write

    def describe(self):
        return f"etcd {etcd_version()}, 3 members, peer mTLS" if self.certs else f"etcd {etcd_version()}, 3 members"

    def pids(self):
        return {m.name: m.proc.pid for m in self.members}

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            dead = [m for m in self.members if not m.alive()]
            if dead:
                raise RuntimeError(f"etcd {dead[0].name} exited (code {dead[0].proc.returncode}); see {dead[0].log_path}: "
                                   + tail(dead[0].log_path))
            try:
                if all(int(m.status().get("leader", 0)) != 0 for m in self.members):
                    return
            except (RuntimeError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd cluster without a leader after {timeout} s; logs in {self.dir}")
            time.sleep(0.1)

    def make_leader(self, index):
        """Moves leadership to member `index`, so that writes at it need no forwarding hop."""
        st = [m.status() for m in self.members]
        target, leader = st[index]["header"]["member_id"], st[0]["leader"]
        if target != leader:
            current = next(m for m, s in zip(self.members, st) if s["header"]["member_id"] == leader)
            h = Http(current.url, timeout=10)
            try:
                request_json(h, "POST", "/v3/maintenance/transfer-leadership", {"targetID": target})
            finally:
                h.close()
            self.wait_ready(10)
        self.leader = self.members[index].name

    def leader_name(self):
        leader = self.members[0].status()["leader"]
        return next((m.name for m in self.members if m.status()["header"]["member_id"] == leader), "?")

    def http(self, i):
        return Http(self.members[i].url, timeout=30)

    def grant_leases(self, count, ttl=3600):
        h = self.http(0)
        try:
            return [request_json(h, "POST", "/v3/lease/grant", {"TTL": ttl})["ID"] for _ in range(count)]
        finally:
            h.close()

    def lease_for(self, i):
        return self.leases[i % len(self.leases)]

    def put_request(self, service, iid, value, lease):
        return {"key": b64(f"/services/{service}/{iid}"), "value": b64(value), "lease": lease}

    def write(self, h, service, iid, i):
        request_json(h, "POST", "/v3/kv/put", self.put_request(service, iid, instance_body(service, iid, i),
                                                               self.lease_for(i)))

    def range_request(self, service):
        prefix = f"/services/{service}/"
        return {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), "serializable": True}

    def read_wrk(self, service):
        return "read.lua", f"http://{self.members[0].url}/v3/kv/range", \
            ["POST", json.dumps(self.range_request(service), separators=(",", ":"))]

    def read_once(self, service):
        h = self.http(0)
        try:
            return h.request("POST", "/v3/kv/range", json.dumps(self.range_request(service)).encode())
        finally:
            h.close()

    def register_wrk(self, work):
        path = os.path.join(work, "etcd-leases.txt")
        with open(path, "w") as f:
            f.write("\n".join(self.leases) + "\n")
        return "register.lua", f"http://{self.members[0].url}/v3/kv/put", ["etcd", path]

    def watch(self, i, service, on_event):
        """The gateway's streaming /v3/watch over /services/SERVICE/ at member i; on_event(iid, t)
        for every put, and on_event(None, t) once the watch is created. HTTP/1.0, so that the
        stream is newline-delimited JSON without chunked framing."""
        prefix = f"/services/{service}/"
        body = json.dumps({"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}}).encode()

        def on_line(line, t):
            if not line.startswith(b"{"):
                return
            result = json.loads(line).get("result", {})
            if result.get("created"):
                on_event(None, t)
            for ev in result.get("events", []):
                on_event(unb64(ev["kv"]["key"]).rsplit("/", 1)[-1], t)
        req = (f"POST /v3/watch HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        return Stream(self.members[i].client_port, req, on_line)

    def load(self, count, threads, batch=128):
        """`count` instances as in Roster's memory run (register_body(..., "typical")), in
        transactions of `batch` puts (etcd's --max-txn-ops default), 1,000 leases."""
        leases = self.grant_leases(1000)
        todo = list(range(0, count, batch))
        lock, errors = threading.Lock(), []

        def worker():
            h = self.http(0)
            try:
                while True:
                    with lock:
                        if not todo or errors:
                            return
                        start = todo.pop()
                    puts = []
                    for i in range(start, min(count, start + batch)):
                        body = register_body(i, "mem", "typical")
                        svc = json.loads(body)
                        puts.append({"requestPut": self.put_request(svc["Name"], svc["ID"], body, leases[i % len(leases)])})
                    try:
                        request_json(h, "POST", "/v3/kv/txn", {"success": puts})
                    except Exception as e:
                        with lock:
                            errors.append(str(e))
            finally:
                h.close()

        secs = run_threads(worker, threads, time.monotonic() + 600)
        if errors:
            raise RuntimeError(f"etcd load failed: {errors[0]}")
        self.wait_count("/services/", count, 120)
        return secs

    def wait_count(self, prefix, count, timeout):
        """Until every member's own (serializable) count of keys under `prefix` is `count`."""
        req = {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), "serializable": True, "count_only": True}
        deadline = time.monotonic() + timeout
        while True:
            counts = {}
            for m in self.members:
                h = Http(m.url, timeout=10)
                try:
                    counts[m.name] = int(request_json(h, "POST", "/v3/kv/range", req).get("count", 0))
                finally:
                    h.close()
            if all(v == count for v in counts.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd members do not all hold {count:,} keys after {timeout} s: {counts}")
            time.sleep(0.2)

    def data_bytes(self):
        return {m.name: du_bytes(m.data_dir) for m in self.members}

    def stop(self, section=None):
        for m in self.members:
            if m.alive():
                os.kill(m.proc.pid, signal.SIGTERM)
        for m in self.members:
            stop_process(m.proc, f"etcd {m.name}", 10)


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return ""


def etcd_version():
    try:
        out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split("\n")[0].split(":", 1)[1].strip()
    except Exception:
        return "?"
