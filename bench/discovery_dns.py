"""The dns section of discovery_bench.py: DNS queries per second at one node, with dnsperf, or
without it with a small asyncio UDP load client whose own ceiling is measured too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time

from benchlib import cpu_seconds, free_ports, log, verdict
from discovery_cluster import consul_register, dig_a, fmt_ms, wait_for
from roster_client import Http

DOMAIN = "roster"


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
