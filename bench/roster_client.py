"""Talking to one Roster node over its HTTP API: a keep-alive connection (Http), a JSON GET that
never raises (try_get_json), the gossip byte counters of /metrics, and bulk registrations.
Shared by cluster_bench.py, etcd_bench.py, discovery_bench.py and health_bench.py.
"""

import http.client
import json
import re
import socket
import threading
import time

from benchlib import run_threads


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

    def _roundtrip(self, method, path, body):
        """Returns (response, body bytes). Reconnects once if the kept-alive connection broke."""
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
                return resp, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def request(self, method, path, body=None):
        """Returns (status, body bytes). Reconnects once if the kept-alive connection broke."""
        resp, data = self._roundtrip(method, path, body)
        return resp.status, data

    def exchange(self, method, path, body=None):
        """Like request(), with the answer's headers: (status, {lower-case name: value}, body bytes)."""
        resp, data = self._roundtrip(method, path, body)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

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


def try_get_json(hostport, path, timeout=2.0):
    """GET `path` on a connection of its own; the decoded JSON, or None on any failure."""
    h = Http(hostport, timeout=timeout)
    try:
        return h.get_json(path)
    except Exception:
        return None
    finally:
        h.close()


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


def register_body(i, prefix, kind="minimal"):
    """The JSON body of the i-th registration: "minimal" (Name, ID, Port) or "typical" (also an
    Address, Tags and Meta, what a real client sends)."""
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
