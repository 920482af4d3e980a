"""Helpers shared by the benchmark harnesses (cluster_bench.py, discovery_bench.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def verdict(ok):
    return "**met**" if ok else "**MISSED**"


def free_ports(count):
    """Ports free for TCP and UDP on 127.0.0.1 (DNS listens on both)."""
    held, ports = [], []
    deadline = time.monotonic() + 10
    while len(ports) < count and time.monotonic() < deadline:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
        except OSError:
            t.close()
            u.close()
            continue
        held += [t, u]
        ports.append(p)
    for s in held:
        s.close()
    if len(ports) < count:
        raise RuntimeError("could not find free ports")
    return ports


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def stop_process(proc, name, timeout):
    """SIGTERM, then SIGKILL after `timeout`. Returns the exit code, or None if it had to be killed."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) still running {timeout:.0f} s after SIGTERM: SIGKILL")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return None
    return proc.returncode
