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
import asyncio
import atexit
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import cpu_seconds, free_ports, log, pct, rss_kib, stop_process, verdict  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["dns", "blocking", "sse"]
DOMAIN = "roster"

# --------------------------------------------------------------------------------------------
# small helpers


def fmt_ms(seconds):
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


class Http:
    """One keep-alive HTTP/1.1 connection; http.client is light enough for tight timing loops."""

    def __init__(self, hostport, timeout=10.0):
        host, port = hostport.rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method, path, body=None):
        """Returns (status, headers, body bytes). Reconnects once if the kept-alive connection broke."""
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self._connect()
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return resp.status, hdrs, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def get_json(self, path):
        status, _, data = self.request("GET", path)
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


def consul_register(http, iid, address, service="web", port=80, tags=()):
    body = json.dumps({"Name": service, "ID": iid, "Address": address, "Port": port, "Tags": list(tags)})
    status, _, data = http.request("PUT", "/v1/agent/service/register", body)
    if status != 200:
        raise RuntimeError(f"register {iid} -> {status}: {data[:200]!r}")


def addr_of(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}"


# --------------------------------------------------------------------------------------------
# nodes and the cluster

CHILDREN = []  # every Popen / Process we started, to be stopped by PID on exit


class Node:
    def __init__(self, cluster, name, ports):
        self.cluster, self.name = cluster, name
        self.http_port, self.dns_port, self.bind_port = ports
        self.http = f"127.0.0.1:{self.http_port}"
        self.bind = f"127.0.0.1:{self.bind_port}"
        self.data_dir = os.path.join(cluster.dir, name)
        self.log_path = os.path.join(cluster.dir, f"{name}.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, joins):
        c = self.cluster
        os.makedirs(self.data_dir, exist_ok=True)
        cmd = [c.bin, "agent", "--node-name", self.name, "--data-dir", self.data_dir,
               "--http", self.http, "--dns", f"127.0.0.1:{self.dns_port}",
               "--bind", self.bind, "--advertise", self.bind]
        for j in joins:
            cmd += ["--join", j]
        cmd += ["--tls-ca", os.path.join(c.certs, "ca.pem"),
                "--tls-cert", os.path.join(c.certs, f"{self.name}.pem"),
                "--tls-key", os.path.join(c.certs, f"{self.name}-key.pem"),
                "--log-level", c.log_level]
        with open(self.log_path, "ab") as logf:
            logf.write(f"===== {time.strftime('%FT%T')}: {' '.join(cmd)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        CHILDREN.append(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=6.0):
        return stop_process(self.proc, self.name, timeout)


class Cluster:
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
        for n in self.nodes:
            if n.alive():
                try:
                    os.kill(n.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        return {n.name: n.stop() for n in self.nodes}


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


# --------------------------------------------------------------------------------------------
# (b) DNS queries per second


DNSPERF_RE = {
    "qps": re.compile(r"Queries per second:\s+([0-9.]+)"),
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "avg_latency": re.compile(r"Average Latency \(s\):\s+([0-9.]+)"),
    "rcodes": re.compile(r"Response codes:\s+(.*)"),
}


def run_dnsperf(node, qfile, seconds, clients, threads, outstanding):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(node.dns_port), "-d", qfile, "-l", str(seconds),
           "-c", str(clients), "-T", str(threads), "-q", str(outstanding), "-t", "2"]
    cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, stdin=subprocess.DEVNULL)
    cpu1, t1 = cpu_seconds(node.pid), time.monotonic()
    out = r.stdout + r.stderr
    got = {k: (m.group(1) if (m := rx.search(out)) else None) for k, rx in DNSPERF_RE.items()}
    if r.returncode != 0 or got["qps"] is None:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}\n{out[-2000:]}")
    got["qps"] = float(got["qps"])
    got["server_cpu"] = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else None
    shown = cmd[:1] + ["-s", "127.0.0.1", "-p", "PORT"] + cmd[5:]
    shown[shown.index("-d") + 1] = "queries.txt"
    got["cmd"] = " ".join(shown)
    return got


async def _udp_load(port, payloads, seconds, outstanding):
    """A minimal asyncio UDP load client: keeps `outstanding` queries in flight for `seconds`."""
    loop = asyncio.get_running_loop()
    done = 0
    stop_at = loop.time() + seconds

    class Proto(asyncio.DatagramProtocol):
        def __init__(self):
            self.transport = None
            self.i = 0

        def connection_made(self, transport):
            self.transport = transport
            for _ in range(outstanding):
                self.send()

        def send(self):
            self.i += 1
            self.transport.sendto(payloads[self.i % len(payloads)])

        def datagram_received(self, data, addr):
            nonlocal done
            done += 1
            if loop.time() < stop_at:
                self.send()

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", port))
    await asyncio.sleep(seconds)
    transport.close()
    return done / seconds


def dns_query_bytes(name, qid):
    header = qid.to_bytes(2, "big") + b"\x01\x00" + b"\x00\x01\x00\x00\x00\x00\x00\x00"
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"
    return header + qname + b"\x00\x01\x00\x01"


def echo_server(port, stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            continue
        s.sendto(data, addr)
    s.close()


def bench_dns(cluster, args):
    n1, n2 = cluster["n1"], cluster["n2"]
    target = n2
    h = Http(n1.http)
    try:
        for i in range(1, 4):
            consul_register(h, f"web-{i}", f"10.0.0.{i}")
    finally:
        h.close()
    want = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    wait_for(lambda: dig_a(target, f"web.service.{DOMAIN}") == want, 10, f"{target.name}'s DNS to answer {want}")
    lines = []
    lines.append("### DNS queries per second at one node")
    lines.append("")
    lines.append(f"Target node {target.name}; 3 healthy `web` instances registered at n1; every query is "
                 f"`web.service.{DOMAIN} A` over UDP (answer: 3 A records).")
    lines.append("")
    qps = None
    if shutil.which("dnsperf"):
        qfile = os.path.join(cluster.dir, "queries.txt")
        with open(qfile, "w") as f:
            f.write(f"web.service.{DOMAIN} A\n" * 1000)
        # Short probes to pick the client shape, then the measured 20 s run.
        probes = []
        for clients, threads, outstanding in ((1, 1, 100), (4, 1, 200), (8, 2, 400)):
            got = run_dnsperf(target, qfile, 3, clients, threads, outstanding)
            probes.append(((clients, threads, outstanding), got))
            log(f"dns probe -c {clients} -T {threads} -q {outstanding}: {got['qps']:.0f} qps, lost {got['lost']}")
        (clients, threads, outstanding), _ = max(probes, key=lambda p: p[1]["qps"])
        log(f"dns: measured run, {args.dns_seconds} s, -c {clients} -T {threads} -q {outstanding}")
        got = run_dnsperf(target, qfile, args.dns_seconds, clients, threads, outstanding)
        qps = got["qps"]
        lines.append(f"Client: dnsperf {dnsperf_version()}, `{got['cmd']}` "
                     f"(the client shape was the best of three 3 s probes).")
        lines.append("")
        lines.append("| measure | value |")
        lines.append("|---|---|")
        lines.append(f"| queries per second ({args.dns_seconds} s run) | **{qps:,.0f}** |")
        lines.append(f"| queries sent / completed / lost | {got['sent']} / {got['completed']} / {got['lost']} |")
        lines.append(f"| response codes | {got['rcodes']} |")
        lines.append(f"| average latency | {fmt_ms(float(got['avg_latency'])) if got['avg_latency'] else 'n/a'} |")
        if got["server_cpu"] is not None:
            lines.append(f"| roster CPU during the run | {got['server_cpu'] * 100:.0f} % of one core "
                         f"(≈ {qps / max(got['server_cpu'], 1e-9):,.0f} queries per CPU-second) |")
        for (c, t, q), p in probes:
            lines.append(f"| probe `-c {c} -T {t} -q {q}` (3 s) | {p['qps']:,.0f} qps, lost {p['lost']} |")
    else:
        payloads = [dns_query_bytes(f"web.service.{DOMAIN}", i) for i in range(1, 1001)]
        qps = asyncio.run(_udp_load(target.dns_port, payloads, args.dns_seconds, 200))
        (port,) = free_ports(1)
        stop = threading.Event()
        t = threading.Thread(target=echo_server, args=(port, stop), daemon=True)
        t.start()
        ceiling = asyncio.run(_udp_load(port, payloads, 5, 200))
        stop.set()
        t.join(2)
        lines.append("dnsperf is not installed; the client is this script's asyncio UDP loop with 200 queries "
                     "in flight, so the figure is bounded by the client as well.")
        lines.append("")
        lines.append("| measure | value |")
        lines.append("|---|---|")
        lines.append(f"| queries per second ({args.dns_seconds} s run) | **{qps:,.0f}** |")
        lines.append(f"| the same client against a Python echo server (its ceiling) | {ceiling:,.0f} |")
    lines.append("")
    lines.append(f"Target ≥ 20,000 qps: {verdict(qps is not None and qps >= 20000)}. "
                 "Client and server share the machine's 2 cores.")
    lines.append("")
    return lines


def dnsperf_version():
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dnsperf"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "?"
    except Exception:
        return "?"


# --------------------------------------------------------------------------------------------
# (a) blocking-query wake latency


def blocking_watcher(hostport, service, prefix, out_q, ready):
    """In its own process: loops on ?index=N&wait=60s and reports (return time, [write numbers seen])."""
    h = Http(hostport, timeout=90)
    status, hdrs, _ = h.request("GET", f"/v1/health/service/{service}")
    index = hdrs.get("x-consul-index", "0")
    ready.set()
    while True:
        status, hdrs, data = h.request("GET", f"/v1/health/service/{service}?index={index}&wait=60s")
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


# --------------------------------------------------------------------------------------------
# (c) 1,000 SSE watchers


ID_RE = re.compile(rb'"instance_id"\s*:\s*"([^"]+)"')


async def _sse_conn(port, path, prefix, state, connected, fail):
    """One SSE watcher: HTTP/1.1 GET, then reads the (possibly chunked) body, line by line."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        fail.append(repr(exc))
        connected.release()
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status_line + b" ":
        fail.append(status_line.decode(errors="replace"))
        connected.release()
        return
    chunked = b"transfer-encoding: chunked" in head.lower()
    buf = b""
    announced = False

    async def body_pieces():
        if not chunked:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    try:
        async for piece in body_pieces():
            buf += piece
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not announced and line.startswith(b":"):
                    announced = True
                    connected.release()
                elif line.startswith(b"data:"):
                    m = ID_RE.search(line)
                    if m and m.group(1).startswith(prefix):
                        now = time.monotonic()
                        k = int(m.group(1)[len(prefix):])
                        got = state.get(k)
                        if got is None:
                            state[k] = [now, now, 1]
                        else:
                            got[1] = now
                            got[2] += 1
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError) as exc:
        fail.append(repr(exc))
    finally:
        if not announced:
            connected.release()
        writer.close()


def sse_worker(wid, port, count, prefix, out_q, stop):
    """In its own process: `count` watchers; reports ("connected", ...) and per event (k, first, last, n)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    except (ValueError, OSError):
        pass

    async def main():
        state, fail = {}, []
        connected = asyncio.Semaphore(0)
        tasks = [asyncio.create_task(_sse_conn(port, "/registry/watch?service=web", prefix.encode(), state, connected, fail))
                 for _ in range(count)]
        for _ in range(count):
            await asyncio.wait_for(connected.acquire(), 60)
        out_q.put(("connected", wid, count - len(fail), fail[:3]))
        reported = set()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            for k, (first, last, n) in list(state.items()):
                if k not in reported and n >= count - len(fail):
                    reported.add(k)
                    out_q.put(("event", wid, k, first, last, n))
        for t in tasks:
            t.cancel()
        out_q.put(("done", wid, {k: v[2] for k, v in state.items()}, fail[:3]))

    asyncio.run(main())


def bench_sse(cluster, args):
    node = cluster[args.sse_node]
    total, workers = args.watchers, args.sse_workers
    prefix = "sse-ev-"
    ctx = mp.get_context("fork")
    out_q, stop = ctx.Queue(), ctx.Event()
    h = Http(node.http)
    # Settle: make sure the node is idle before the first RSS reading.
    rss_before = rss_kib(node.pid)
    threads_before = threads_of(node.pid)
    per = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    procs = []
    t_connect = time.monotonic()
    for wid, count in enumerate(per):
        p = ctx.Process(target=sse_worker, args=(wid, node.http_port, count, prefix, out_q, stop), daemon=True)
        p.start()
        CHILDREN.append(p)
        procs.append(p)
    connected, fails = 0, []
    events = {}  # k -> [first, last, n]
    try:
        deadline = time.monotonic() + 90
        got_workers = 0
        while got_workers < workers:
            item = out_q.get(timeout=max(0.1, deadline - time.monotonic()))
            if item[0] == "connected":
                got_workers += 1
                connected += item[2]
                fails += item[3]
        connect_time = time.monotonic() - t_connect
        time.sleep(1.0)  # measurement pause: let the node's memory settle after the connection burst
        rss_connected = rss_kib(node.pid)
        threads_connected = threads_of(node.pid)
        log(f"sse: {connected}/{total} watchers connected in {connect_time:.1f} s; RSS {rss_before} → {rss_connected} KiB")

        # Control: writes to a service nobody watches, with the watchers connected.
        control = []
        cpu_c0 = cpu_seconds(node.pid)
        for k in range(10):
            t_send = time.monotonic()
            consul_register(h, f"sse-ctl-{k}", addr_of(k + 9000), service="api")
            control.append(time.monotonic() - t_send)
            time.sleep(0.02)
        cpu_control = (cpu_seconds(node.pid) - cpu_c0) / 10 if cpu_c0 is not None else None
        acked = {}
        per_worker = {}  # k -> list of (first, last, n) from each worker
        cpu_e0 = cpu_seconds(node.pid)
        for k in range(args.events):
            t_send = time.monotonic()
            consul_register(h, f"{prefix}{k}", addr_of(k + 5000))
            acked[k] = (t_send, time.monotonic())
            deadline = time.monotonic() + 10
            while len(per_worker.get(k, [])) < workers and time.monotonic() < deadline:
                try:
                    item = out_q.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item[0] == "event":
                    per_worker.setdefault(item[2], []).append(item[3:])
            time.sleep(0.1)  # spacing between events, so each is measured alone
        cpu_event = (cpu_seconds(node.pid) - cpu_e0) / args.events if cpu_e0 is not None else None
        rss_after = rss_kib(node.pid)
    finally:
        stop.set()
        h.close()
        delivered = {}
        deadline = time.monotonic() + 10
        done = 0
        while done < len(procs) and time.monotonic() < deadline:
            try:
                item = out_q.get(timeout=0.5)
            except queue.Empty:
                continue
            if item[0] == "done":
                done += 1
                for k, n in item[2].items():
                    delivered[k] = delivered.get(k, 0) + n
                fails += item[3]
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()  # by its PID
                p.join(5)

    last_lat, first_lat, last_from_send, complete = [], [], [], 0
    write_rtt = [a[1] - a[0] for a in acked.values()]
    for k in range(args.events):
        reps = per_worker.get(k, [])
        if len(reps) == workers and sum(r[2] for r in reps) >= connected:
            complete += 1
            last_lat.append(max(r[1] for r in reps) - acked[k][1])
            first_lat.append(min(r[0] for r in reps) - acked[k][1])
            last_from_send.append(max(r[1] for r in reps) - acked[k][0])
    lines = [f"### {total:,} concurrent SSE watchers on one node ({node.name})", ""]
    lines.append(f"{total:,} raw HTTP/1.1 connections to `/registry/watch?service=web`, spread over {workers} "
                 f"asyncio client processes on the same machine; each event is the registration of a new `web` "
                 f"instance at {node.name} itself, {args.events} events one at a time.")
    lines.append("")
    lines.append("| measure | value |")
    lines.append("|---|---|")
    lines.append(f"| watchers connected (stream opened) | {connected:,}/{total:,} in {connect_time:.1f} s |")
    lines.append(f"| node RSS before they connect | {fmt_kib(rss_before)} ({threads_before} threads) |")
    lines.append(f"| node RSS with them connected | {fmt_kib(rss_connected)} ({threads_connected} threads); "
                 f"+{fmt_kib(rss_connected - rss_before)}, ≈ {(rss_connected - rss_before) / max(connected, 1):.1f} KiB per watcher |")
    lines.append(f"| node RSS after {args.events} events | {fmt_kib(rss_after)} |")
    lines.append(f"| events delivered to every watcher | {complete}/{args.events} |")
    if last_lat:
        lines.append(f"| **fan-out: write's 200 → LAST watcher has it** | p50 **{fmt_ms(pct(last_lat, 50))}**, "
                     f"p99 **{fmt_ms(pct(last_lat, 99))}**, max {fmt_ms(max(last_lat))} |")
        lines.append(f"| write sent → LAST watcher has it | p50 {fmt_ms(pct(last_from_send, 50))}, "
                     f"p99 {fmt_ms(pct(last_from_send, 99))}, max {fmt_ms(max(last_from_send))} |")
        lines.append(f"| write's 200 → FIRST watcher has it (negative: before the writer read its 200) | "
                     f"p50 {fmt_ms(pct(first_lat, 50))}, p99 {fmt_ms(pct(first_lat, 99))} |")
    lines.append(f"| write round trip (PUT → 200) of those `web` writes | p50 {fmt_ms(pct(write_rtt, 50))}, p99 {fmt_ms(pct(write_rtt, 99))} |")
    lines.append(f"| control: write round trip to unwatched `api`, watchers connected | p50 {fmt_ms(pct(control, 50))}, "
                 f"p99 {fmt_ms(pct(control, 99))} |")
    if cpu_event is not None and cpu_control is not None:
        lines.append(f"| node CPU per write: `web` (fanned out to {connected:,}) / unwatched `api` | "
                     f"{fmt_ms(cpu_event)} / {fmt_ms(cpu_control)} (incl. idle gossip in the same window) |")
    if fails:
        lines.append(f"| client-side failures | {len(fails)}: {fails[:3]} |")
    lines.append("")
    if write_rtt and control and cpu_event is not None:
        lines.append(f"A write to the watched service is answered in p50 {fmt_ms(pct(write_rtt, 50))} against "
                     f"{fmt_ms(pct(control, 50))} for an unwatched one, and the node spends ≈ "
                     f"{max(cpu_event - (cpu_control or 0), 0) / max(connected, 1) * 1e6:.0f} µs of CPU per watcher per "
                     "event: the writer's 200 queues behind the fan-out, so \"write sent → last watcher\" is the "
                     "end-to-end figure, and \"write's 200 → last\" flatters it.")
        lines.append("")
    lines.append("The client is Python, so the spread between the first and the last watcher includes the time "
                 f"{workers} Python processes need to read {total:,} sockets on 2 cores shared with the cluster; "
                 "the node's own fan-out is at most the figure above.")
    lines.append("")
    return lines


# --------------------------------------------------------------------------------------------


def try_get_json(hostport, path, timeout=2.0):
    h = Http(hostport, timeout=timeout)
    try:
        return h.get_json(path)
    except Exception:
        return None
    finally:
        h.close()


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
